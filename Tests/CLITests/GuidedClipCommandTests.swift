import Core
import Foundation
import Testing
import CamvidCLI
import Engine
import TestSupport

/// `--guided-clip`: guided backprop's ReLU rule extended to Clip (ReLU6), on the bundled EfficientNet-Lite0.
@Suite(.serialized) struct GuidedClipCommandTests {
    static func close(_ a: Tensor, _ b: Tensor, _ tolerance: Float = 1e-4) -> Bool {
        let scale = max(b.storage.map(abs).max() ?? 0, 1e-6)
        return a.shape == b.shape && zip(a.storage, b.storage).allSatisfy { abs($0 - $1) <= tolerance * scale }
    }

    @Test func tensorGuidedClipGuidesTheReLU6s() throws {
        guard let reference = ReferenceData.referenceOrSkip("GuidedClipCommandTests.tensorGuidedClipGuidesTheReLU6s") else { return }
        let dir = try ReferenceData.temporaryDirectory("camvid-guided-clip")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = reference.appendingPathComponent("inputs/chelsea.npy").path
        func raw(_ method: String, _ extra: [String] = []) throws -> Tensor {
            let path = dir.appendingPathComponent("\(method)\(extra.joined()).npy").path
            try TensorCommand.parse(["--input", input, "--method", method, "--raw", path] + extra).run()
            return try NumPyFile.read(path: path)
        }
        let byDefault = try raw("guided-backprop"), extended = try raw("guided-backprop", ["--guided-clip"])

        // The library's input gradients of the top-1 class under each rule.
        let network = try Network(contentsOf: DefaultModel.url)
        let x = try NumPyFile.read(path: input)
        let pass = try network.forward(x)
        let top = pass.logits.storage.indices.max { pass.logits.storage[$0] < pass.logits.storage[$1] } ?? 0
        var seed = Tensor(shape: [1, 1000])
        seed.storage[top] = 1
        let plain = try #require(try network.backward(pass, seed: seed, to: [network.inputName])[network.inputName])
        let guided = try #require(try network.backward(pass, seed: seed, to: [network.inputName],
                                                       rules: .guidedBackpropIncludingClip)[network.inputName])
        // Without the option the ReLU6 network's guided backprop is its plain gradient (as the reference cases hold);
        // with it, the gradient with every Clip guided, which is another one.
        #expect(byDefault.shape == [1, 3, 224, 224] && extended.shape == [1, 3, 224, 224])
        #expect(Self.close(byDefault, plain), "guided-backprop without --guided-clip is the plain gradient")
        #expect(Self.close(extended, guided), "guided-backprop --guided-clip is the gradient with every Clip guided")
        #expect(!Self.close(extended, byDefault, 1e-2))

        // Guided Grad-CAM with the option is that guided gradient times a map in [0, 1]: same signs, no larger.
        let gradcamDefault = try raw("guided-gradcam"), gradcamExtended = try raw("guided-gradcam", ["--guided-clip"])
        #expect(!Self.close(gradcamExtended, gradcamDefault, 1e-2))
        let slack = 1e-6 * (extended.storage.map(abs).max() ?? 1)
        let inMapRange = zip(gradcamExtended.storage, extended.storage).allSatisfy { product, g in
            product * g >= 0 && abs(product) <= abs(g) + slack
        }
        #expect(inMapRange, "guided-gradcam --guided-clip multiplies the Clip-guided gradient by the Grad-CAM map")
        #expect(gradcamExtended.storage.contains { $0 != 0 })
    }

    @Test func guidedClipWithoutAGuidedMethodIsAnError() throws {
        let dir = try ReferenceData.temporaryDirectory("camvid-guided-clip-error")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("x.npy").path
        try NumPyFile.write(Tensor(shape: [1, 3, 224, 224]), path: input)
        let raw = dir.appendingPathComponent("raw.npy").path
        let picture = dir.appendingPathComponent("missing.png").path, video = dir.appendingPathComponent("missing.mp4").path
        for arguments in [["tensor", "--input", input, "--method", "gradcam", "--raw", raw, "--guided-clip"],
                          ["tensor", "--input", input, "--logits", raw, "--guided-clip"],
                          ["image", picture, dir.appendingPathComponent("out.png").path, "--method", "saliency", "--guided-clip"],
                          [video, dir.appendingPathComponent("out.mp4").path, "--method", "none", "--guided-clip"]] {
            let result = try CamvidProcess.run(arguments)
            #expect(result.status == 1 && result.standardError.contains("--guided-clip"), "\(arguments): \(result.standardError)")
        }
        #expect(!FileManager.default.fileExists(atPath: raw))
    }
}
