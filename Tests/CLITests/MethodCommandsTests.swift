import Core
import Foundation
import Testing
import CamvidCLI
import Engine
import Media
import TestSupport

/// `camvid image`, `camvid tensor --method/--raw/--map` and `camvid visualize`, as a user types them.
@Suite(.serialized) struct MethodCommandsTests {
    static let quiet: Void = FFmpegLog.setLevel(.quiet)

    func load(_ directory: URL, _ path: String) throws -> Tensor {
        try NumPyFile.read(path: directory.appendingPathComponent(path).path)
    }

    // MARK: Pictures and preprocessing

    /// A picture with smooth gradients and a bright square: something JPEG and PNG both keep recognisable.
    static func testPicture(width: Int, height: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                let inSquare = x > width / 4 && x < width / 2 && y > height / 3 && y < 2 * height / 3
                pixels[i] = inSquare ? 250 : UInt8(x * 255 / max(width - 1, 1))
                pixels[i + 1] = inSquare ? 240 : UInt8(y * 255 / max(height - 1, 1))
                pixels[i + 2] = inSquare ? 20 : 128
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    @Test func picturesRoundTripThroughPNGAndJPEG() throws {
        _ = Self.quiet
        let dir = try ReferenceData.temporaryDirectory("camvid-picture")
        defer { try? FileManager.default.removeItem(at: dir) }
        let picture = Self.testPicture(width: 161, height: 97)
        let png = dir.appendingPathComponent("p.png").path, jpg = dir.appendingPathComponent("p.jpg").path
        try PictureFile.write(picture, to: png)
        try PictureFile.write(picture, to: jpg)
        #expect(try PictureFile.read(png) == picture)
        let decoded = try PictureFile.read(jpg)
        #expect(decoded.width == 161 && decoded.height == 97)
        let meanError = zip(decoded.pixels, picture.pixels).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(picture.pixels.count)
        #expect(meanError < 4, "JPEG mean error \(meanError)")
        #expect(throws: MediaError.self) { try PictureFile.write(picture, to: dir.appendingPathComponent("p.nosuchformat").path) }
        #expect(throws: MediaError.self) { try PictureFile.read(dir.appendingPathComponent("absent.png").path) }
    }

    // MARK: camvid image

    @Test func imageOverlaysTheMapWhereTheReferencePeaksAndWritesTheLabel() async throws {
        _ = Self.quiet
        guard let reference = ReferenceData.referenceOrSkip("MethodCommandsTests.imageOverlaysTheMapWhereTheReferencePeaksAndWritesTheLabel") else { return }
        let dir = try ReferenceData.temporaryDirectory("camvid-image")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = reference.deletingLastPathComponent().appendingPathComponent("media/chelsea.png").path
        let output = dir.appendingPathComponent("chelsea-gradcam.png").path
        try await ImageCommand.parse([input, output]).run()
        let original = try PictureFile.read(input)
        let result = try PictureFile.read(output)
        #expect(result.width == original.width && result.height == original.height)

        // The label: white text on a dark box in the top-left corner (scale 1 for 300 rows);
        // no blend of a jet colour with the picture is that white.
        func isWhite(_ p: RGBImage, _ x: Int, _ y: Int) -> Bool {
            let i = (y * p.width + x) * 3
            return p.pixels[i] >= 230 && p.pixels[i + 1] >= 230 && p.pixels[i + 2] >= 230
        }
        var ink = 0
        for y in 4..<30 { for x in 4..<200 where isWhite(result, x, y) { ink += 1 } }
        var inkElsewhere = 0
        for y in 40..<original.height { for x in 0..<original.width where isWhite(result, x, y) { inkElsewhere += 1 } }
        #expect(ink > 100 && inkElsewhere == 0, "label ink \(ink), white pixels outside the label \(inkElsewhere)")

        // The heat: out = (frame + heat) / 2, so heat = 2 out - frame; jet is red at the map's peak, blue at its floor.
        let map = try load(reference, "cases/efficientnet_lite0__chelsea__head__gradcam.npy")
        func heat(at mapIndex: Int) -> (red: Int, blue: Int) {
            let x = (mapIndex % 224) * original.width / 224, y = (mapIndex / 224) * original.height / 224
            let i = (y * original.width + x) * 3
            return (2 * Int(result.pixels[i]) - Int(original.pixels[i]), 2 * Int(result.pixels[i + 2]) - Int(original.pixels[i + 2]))
        }
        let peak = try #require(map.storage.indices.max { map.storage[$0] < map.storage[$1] })
        let floor = try #require(map.storage.indices.filter { $0 / 224 > 40 }.min { map.storage[$0] < map.storage[$1] })
        let hot = heat(at: peak), cold = heat(at: floor)
        #expect(hot.red > hot.blue + 60, "heat at the reference peak \(hot)")
        #expect(cold.blue > cold.red + 60, "heat at the reference floor \(cold)")
    }

    @Test func imageExplainsAGeneratedJPEGWithAnyMethodIntoAnyFormat() async throws {
        _ = Self.quiet
        let dir = try ReferenceData.temporaryDirectory("camvid-image")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.jpg").path
        try PictureFile.write(Self.testPicture(width: 300, height: 180), to: input)
        for (method, extensionName, extra) in [("eigencam", "jpg", ["--aug-smooth"]), ("layercam", "bmp", ["--eigen-smooth"])] {
            let output = dir.appendingPathComponent("out-\(method).\(extensionName)").path
            try await ImageCommand.parse([input, output, "--method", method, "--class", "goldfish", "--alpha", "0.4",
                                    "--colormap", "viridis", "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25"] + extra).run()
            let result = try PictureFile.read(output)
            #expect(result.width == 300 && result.height == 180, "\(method): \(result.width)x\(result.height)")
        }
    }

    // MARK: camvid tensor --raw / --map

    @Test func tensorRawAndMapMatchTheReference() throws {
        guard let reference = ReferenceData.referenceOrSkip("MethodCommandsTests.tensorRawAndMapMatchTheReference") else { return }
        let dir = try ReferenceData.temporaryDirectory("camvid-tensor-maps")
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = dir.appendingPathComponent("raw.npy").path, map = dir.appendingPathComponent("map.npy").path
        let input = reference.appendingPathComponent("inputs/chelsea.npy").path
        let prefix = "cases/efficientnet_lite0__chelsea__"
        let methods = [("gradcam", "gradcam"), ("gradcam++", "gradcampp"), ("xgradcam", "xgradcam"), ("hirescam", "hirescam"),
                       ("gradcam-elementwise", "gradcam_elementwise"), ("layercam", "layercam")]
        for (method, manifestName) in methods {
            try TensorCommand.parse(["--input", input, "--method", method, "--layer", "hardtanh_32", "--raw", raw, "--map", map]).run()
            let gotRaw = try NumPyFile.read(path: raw), gotMap = try NumPyFile.read(path: map)
            let expectedRaw = try load(reference, "\(prefix)head__\(manifestName)__raw.npy")
            let expectedMap = try load(reference, "\(prefix)head__\(manifestName).npy")
            #expect(gotRaw.shape == [1, 7, 7] && gotMap.shape == [1, 224, 224], "\(method): \(gotRaw.shape) \(gotMap.shape)")
            let scale = expectedRaw.storage.map(abs).max() ?? 1
            let rawError = zip(gotRaw.storage, expectedRaw.storage).map { abs($0 - $1) }.max() ?? 1
            let mapError = zip(gotMap.storage, expectedMap.storage).map { abs($0 - $1) }.max() ?? 1
            #expect(rawError <= 1e-3 * scale && mapError <= 2e-2, "\(method): raw \(rawError / scale) map \(mapError)")
        }

        // Two layers: --raw stacks the 7x7 maps [N,L,h,w]; --map is the min-max of their per-layer maps' mean.
        try TensorCommand.parse(["--input", input, "--layer", "getitem_141,hardtanh_32", "--raw", raw, "--map", map]).run()
        let stacked = try NumPyFile.read(path: raw), combined = try NumPyFile.read(path: map)
        #expect(stacked.shape == [1, 2, 7, 7])
        let block15 = try load(reference, "\(prefix)block15__gradcam.npy"), head = try load(reference, "\(prefix)head__gradcam.npy")
        let mean = zip(block15.storage, head.storage).map { ($0 + $1) / 2 }
        let low = mean.min() ?? 0, high = mean.max() ?? 1
        let expected = mean.map { ($0 - low) / (high - low + 1e-7) }
        let worst = zip(combined.storage, expected).map { abs($0 - $1) }.max() ?? 1
        #expect(combined.shape == [1, 224, 224] && worst <= 2e-2, "two-layer map max diff \(worst)")

        // Saliency [N,H,W] unnormalised; guided backprop the input gradient [N,3,H,W] (reference is HWC).
        try TensorCommand.parse(["--input", input, "--method", "saliency", "--raw", raw]).run()
        let saliency = try NumPyFile.read(path: raw), expectedSaliency = try load(reference, "\(prefix)saliency.npy")
        // Input gradients pass every layer's float32 reordering: ~1e-2 of the peak at worst, ~1e-4 on average.
        func inputGradientClose(_ actual: [Float], _ expected: [Float]) -> (Bool, String) {
            let scale = expected.map(abs).max() ?? 1
            let errors = zip(actual, expected).map { abs($0 - $1) / scale }
            let worst = errors.max() ?? 1, mean = errors.reduce(0, +) / Float(max(errors.count, 1))
            return (worst <= 2e-2 && mean <= 1e-3, "max rel \(worst), mean rel \(mean)")
        }
        let (saliencyOK, saliencyDetail) = inputGradientClose(saliency.storage, expectedSaliency.storage)
        #expect(saliency.shape == [1, 224, 224] && saliencyOK, "saliency: \(saliencyDetail)")
        try TensorCommand.parse(["--input", input, "--method", "guided-backprop", "--raw", raw]).run()
        let guided = try NumPyFile.read(path: raw), hwc = try load(reference, "\(prefix)guidedbp.npy")
        #expect(guided.shape == [1, 3, 224, 224])
        var chw = [Float](repeating: 0, count: hwc.count)
        for p in 0..<(224 * 224) {
            for c in 0..<3 { chw[c * 224 * 224 + p] = hwc.storage[p * 3 + c] }
        }
        let (guidedOK, guidedDetail) = inputGradientClose(guided.storage, chw)
        #expect(guidedOK, "guided backprop: \(guidedDetail)")
    }

    @Test func tensorRepeatTimesAMethod() throws {
        let dir = try ReferenceData.temporaryDirectory("camvid-tensor-repeat")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("x.npy").path
        try NumPyFile.write(Tensor(shape: [1, 3, 224, 224], storage: (0..<(3 * 224 * 224)).map { Float($0 % 97) / 48 - 1 }), path: input)
        let result = try CamvidProcess.run(["tensor", "--input", input, "--method", "layercam", "--repeat", "1"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.hasPrefix("layercam: ") && result.standardOutput.contains("ms/image"), "\(result.standardOutput)")
    }

    // MARK: camvid visualize

    @Test func visualizeWritesADifferentPictureForEachClass() throws {
        _ = Self.quiet
        let dir = try ReferenceData.temporaryDirectory("camvid-visualize")
        defer { try? FileManager.default.removeItem(at: dir) }
        var pictures: [RGBImage] = []
        for target in ["goldfish", "285"] {
            let output = dir.appendingPathComponent("\(target).png").path
            try VisualizeCommand.parse(["--class", target, output, "--steps", "6"]).run()
            let picture = try PictureFile.read(output)
            #expect(picture.width == 224 && picture.height == 224)
            #expect(Set(picture.pixels).count > 50, "\(target): the picture has content")
            pictures.append(picture)
        }
        let differing = zip(pictures[0].pixels, pictures[1].pixels).filter { $0 != $1 }.count
        #expect(differing > pictures[0].pixels.count / 2, "\(differing) differing bytes")
    }

    // MARK: Errors

    @Test func badInputsFailWithOneLineNamingTheCulprit() throws {
        let dir = try ReferenceData.temporaryDirectory("camvid-errors")
        defer { try? FileManager.default.removeItem(at: dir) }
        let picture = dir.appendingPathComponent("p.png").path
        try PictureFile.write(Self.testPicture(width: 64, height: 48), to: picture)
        let out = dir.appendingPathComponent("o.png").path
        let cases: [(arguments: [String], mentions: String)] = [
            (["image", dir.appendingPathComponent("missing.png").path, out], "missing.png"),
            (["image", picture, out, "--method", "gradcan"], "gradcan"),
            (["image", picture, out, "--class", "tab"], "tabby"),
            (["image", picture, out, "--class", "qqqqq"], "qqqqq"),
            (["image", picture, out, "--layer", "no_such_tensor"], "no_such_tensor"),
            (["image", picture, out, "--model", dir.appendingPathComponent("absent.onnx").path], "absent.onnx"),
            (["image", picture, dir.appendingPathComponent("o.unknownext").path], "o.unknownext"),
            (["image", picture, out, "--std", "0,1,1"], "--std"),
            (["image", picture, out, "--fit", "sideways"], "sideways"),
            (["image", picture, out, "--method", "saliency", "--eigen-smooth"], "eigen-smooth"),
            (["tensor", "--input", dir.appendingPathComponent("absent.npy").path, "--raw", out], "absent.npy"),
            (["tensor", "--input", picture, "--map", out], "p.png"),
            (["visualize", "--class", "tab", out, "--steps", "1"], "tabby"),
            (["visualize", "--class", "1000", out, "--steps", "1"], "1000"),
        ]
        for (arguments, mentions) in cases {
            let result = try CamvidProcess.run(arguments)
            let lines = result.standardError.split(separator: "\n")
            #expect(result.status != 0, "\(arguments): exit status \(result.status)")
            #expect(lines.count == 1 && lines[0].hasPrefix("camvid: ") && lines[0].contains(mentions),
                    "\(arguments): stderr \(result.standardError)")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
