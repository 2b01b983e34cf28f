import Foundation
import Media
import TestSupport
import Testing
import MediaTestSupport

/// A clip of a bright disc crossing a dark background from left to right.
enum MovingDiscClip {
    /// The disc's centre column in frame `index` of `count`.
    static func centre(_ index: Int, count: Int, width: Int) -> Double {
        let start = Double(width) * 0.1, end = Double(width) * 0.9
        return start + (end - start) * Double(index) / Double(max(count - 1, 1))
    }

    /// Writes `count` frames at 25 fps of a white disc of radius `height / 8` on near-black.
    static func write(_ url: URL, count: Int, width: Int = 320, height: Int = 240) throws {
        _ = PatternClips.quiet
        let video = VideoStreamInfo(width: width, height: height, timeBase: Rational(1, 25), averageFrameRate: Rational(25, 1))
        let encoder = try FrameEncoder(output: MediaOutput(url.path), source: SourceDescription(video: video))
        let radius = Double(height) / 8
        for index in 0..<count {
            let cx = centre(index, count: count, width: width), cy = Double(height) / 2
            var pixels = [UInt8](repeating: 16, count: width * height * 3)
            for y in 0..<height {
                for x in 0..<width {
                    let dx = Double(x) + 0.5 - cx, dy = Double(y) + 0.5 - cy
                    if dx * dx + dy * dy <= radius * radius {
                        let i = (y * width + x) * 3
                        pixels[i] = 250; pixels[i + 1] = 250; pixels[i + 2] = 245
                    }
                }
            }
            try encoder.encode(rgb: pixels, width: width, height: height,
                               timing: FrameTiming(index: index, pts: Int64(index), duration: 1))
        }
        try encoder.finish()
    }
}

/// A `.npy` file's shape and float32 values (little-endian, C order).
func readNumPy(_ url: URL) throws -> (shape: [Int], values: [Float]) {
    let data = try Data(contentsOf: url)
    guard data.count >= 10, data.prefix(6) == Data([0x93] + Array("NUMPY".utf8)) else {
        throw TestFailure(description: "\(url.path) is not a .npy file")
    }
    let length = Int(data[8]) | Int(data[9]) << 8
    let header = String(decoding: data[10..<(10 + length)], as: UTF8.self)
    guard header.contains("'descr': '<f4'"), let open = header.range(of: "'shape': ("),
          let close = header[open.upperBound...].firstIndex(of: ")") else {
        throw TestFailure(description: "unexpected header \(header)")
    }
    let shape = header[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    let body = data[(10 + length)...]
    var values = [Float](repeating: 0, count: body.count / 4)
    _ = values.withUnsafeMutableBytes { body.copyBytes(to: $0) }
    return (shape, values)
}

/// One `--json` line, as parsed.
struct FrameLine: Decodable {
    struct ClassEntry: Decodable { var index: Int; var name: String; var probability: Double }
    struct Point: Decodable { var x: Double; var y: Double }
    struct Box: Decodable { var x: Int; var y: Int; var width: Int; var height: Int }
    var frame: Int
    var pts: Double
    var `class`: ClassEntry
    var top5: [ClassEntry]
    var peak: Point
    var box: Box?
}

func readLines(_ url: URL) throws -> [FrameLine] {
    let text = try String(contentsOf: url, encoding: .utf8)
    return try text.split(separator: "\n").map { try JSONDecoder().decode(FrameLine.self, from: Data($0.utf8)) }
}

/// `camvid IN OUT --method …`: explained video end to end.
@Suite(.serialized) struct ExplainedVideoTests {
    static let sample = ReferenceData.packageFile("Samples/bigbuckbunny.mp4")

    /// With Grad-CAM on: every frame, its pts and the audio are kept; `--json` carries the fields
    /// per frame; `--cams` holds `[frames,224,224]`, the maps the JSON summarises.
    @Test func gradcamKeepsTimingAndAudioAndWritesRecords() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-e2e")
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("out.mp4")
        let json = folder.appendingPathComponent("frames.jsonl")
        let cams = folder.appendingPathComponent("cams.npy")

        let result = try CamvidProcess.run([Self.sample.path, output.path, "--duration", "0.6", "--method", "gradcam",
                                            "--json", json.path, "--cams", cams.path, "--batch-size", "3"], in: folder)
        #expect(result.status == 0, "\(result.standardError)")
        let span = TimeSpan(duration: 0.6)
        let source = try PatternClips.read(MediaInput(Self.sample.path), span: span)
        let written = try PatternClips.read(MediaInput(output.path))
        #expect(written.pts == source.pts)
        #expect(written.packets.count == source.packets.count && !source.packets.isEmpty)
        for (a, b) in zip(written.packets, source.packets) { #expect(a.pts == b.pts && a.data == b.data) }

        let lines = try readLines(json)
        #expect(lines.map(\.frame) == Array(0..<source.pts.count))
        #expect(lines.map { Int64(($0.pts * 1_000_000).rounded()) } == source.pts)
        let (shape, maps) = try readNumPy(cams)
        #expect(shape == [source.pts.count, 224, 224])
        #expect(maps.count == source.pts.count * 224 * 224)
        for (i, line) in lines.enumerated() {
            #expect(line.top5.count == 5)
            #expect(line.top5.first?.index == line.class.index, "top1 explains the most probable class")
            #expect(zip(line.top5, line.top5.dropFirst()).allSatisfy { $0.probability >= $1.probability })
            #expect(line.class.probability > 0 && line.class.probability <= 1)
            // The peak is the centre of the map's highest cell, scaled to 1280x720.
            let map = maps[(i * 224 * 224)..<((i + 1) * 224 * 224)]
            let best = try #require(map.indices.max { map[$0] < map[$1] }.map { map.firstIndex(of: map[$0])! - map.startIndex })
            #expect(abs(line.peak.x - (Double(best % 224) + 0.5) * 1280 / 224) < 1e-6)
            #expect(abs(line.peak.y - (Double(best / 224) + 0.5) * 720 / 224) < 1e-6)
            let box = try #require(line.box)
            #expect(box.x <= Int(line.peak.x) && Int(line.peak.x) < box.x + box.width)
            #expect(box.y <= Int(line.peak.y) && Int(line.peak.y) < box.y + box.height)
        }
    }

    /// A white disc (radius 30 px) crossing a dark 320x240 frame: the `--json` peak follows it.
    ///
    /// LayerCAM on a 14x14 layer (`hardtanh_22`) is the robust choice: it weighs each position by
    /// its own positive gradient instead of a channel's global mean, which is what lets it
    /// localise from a shallower, finer layer (Jiang et al. 2021); there the peak stays within the
    /// disc in every frame and moves right frame after frame. The default Grad-CAM on the 7x7 last
    /// layer moves the same way, but in 46-pixel cells and with jumps of a cell, so for it only
    /// the direction of travel is checked.
    @Test func peakFollowsAMovingObject() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-e2e")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("disc.mkv")
        let count = 10
        try MovingDiscClip.write(input, count: count)

        let fine = folder.appendingPathComponent("layercam.jsonl"), coarse = folder.appendingPathComponent("gradcam.jsonl")
        let runs = [(fine, ["--method", "layercam", "--layer", "hardtanh_22"]), (coarse, ["--method", "gradcam"])]
        for (json, method) in runs {
            let result = try CamvidProcess.run([input.path, folder.appendingPathComponent("out.mkv").path,
                                                "--json", json.path] + method, in: folder)
            #expect(result.status == 0, "\(result.standardError)")
        }
        let xs = try readLines(fine).map(\.peak.x)
        #expect(xs.count == count)
        for (i, x) in xs.enumerated() {
            #expect(abs(x - MovingDiscClip.centre(i, count: count, width: 320)) < 30, "frame \(i): peak at x = \(x)")
        }
        #expect(zip(xs, xs.dropFirst()).allSatisfy { $0 <= $1 }, "\(xs)")
        let coarseXs = try readLines(coarse).map(\.peak.x)
        #expect(coarseXs.count == count)
        let first = coarseXs.prefix(3).reduce(0, +) / 3, last = coarseXs.suffix(3).reduce(0, +) / 3
        #expect(last - first > 320 / 4, "\(coarseXs)")
    }

    /// `--cams` with `--smooth N` holds the exponential average of the unsmoothed maps.
    @Test func smoothingIsAnExponentialAverageOfTheMaps() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-e2e")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("disc.mkv")
        try MovingDiscClip.write(input, count: 6, width: 160, height: 120)
        let plain = folder.appendingPathComponent("plain.npy"), smooth = folder.appendingPathComponent("smooth.npy")

        for (cams, extra) in [(plain, [String]()), (smooth, ["--smooth", "3"])] {
            // One frame per network call, so both runs sum in the same order (the pipeline batches waiting frames).
            let result = try CamvidProcess.run([input.path, folder.appendingPathComponent("out.mkv").path, "--batch-size", "1",
                                                "--cams", cams.path] + extra, in: folder)
            #expect(result.status == 0, "\(result.standardError)")
        }
        let (shape, raw) = try readNumPy(plain)
        let (smoothShape, shown) = try readNumPy(smooth)
        #expect(shape == [6, 224, 224] && smoothShape == shape)
        let size = 224 * 224, a: Float = 0.5  // 2 / (3 + 1)
        #expect(Array(shown[0..<size]) == Array(raw[0..<size]))
        var previous = Array(raw[0..<size])
        for t in 1..<6 {
            let expected = (0..<size).map { a * raw[t * size + $0] + (1 - a) * previous[$0] }
            #expect(Array(shown[(t * size)..<((t + 1) * size)]) == expected, "frame \(t)")
            previous = expected
        }
        #expect(shown != raw)
    }

    /// `--grid`: one output of the input's size, every frame kept.
    @Test func gridKeepsTheSizeAndFrames() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-e2e")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("disc.mkv")
        let output = folder.appendingPathComponent("grid.mkv")
        try MovingDiscClip.write(input, count: 4)

        let result = try CamvidProcess.run([input.path, output.path, "--grid", "gradcam,layercam,eigencam"], in: folder)
        #expect(result.status == 0, "\(result.standardError)")
        let decoder = try FrameDecoder(MediaInput(output.path))
        #expect(decoder.video.width == 320 && decoder.video.height == 240)
        #expect(try PatternClips.read(MediaInput(output.path)).pts.count == 4)
    }

    /// A class label that names nothing is one line listing the nearest names, before any output.
    @Test func unknownClassLabelListsCandidates() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-e2e")
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("out.mp4")
        let result = try CamvidProcess.run([Self.sample.path, output.path, "--class", "tabby cta"], in: folder)
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1)
        #expect(result.standardError.contains("unknown class label 'tabby cta'"))
        #expect(result.standardError.contains("281 tabby"))
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }
}
