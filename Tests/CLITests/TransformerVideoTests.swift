import Annotate
import Core
import Foundation
import Media
import MediaTestSupport
import TestSupport
import Testing

/// Vision transformers on the command line: `camvid tensor`'s contract, and a clip whose every frame's map is what
/// `camvid tensor` gives for that frame.
@Suite(.serialized) struct TransformerVideoTests {
    static let models = ReferenceData.packageFile("Tests/Fixtures/Transformers")

    /// `--activation` and `--gradient` in the tensor's own shape, `--raw` on the grid, `--map` at the input's size,
    /// the raw map pytorch-grad-cam's (the committed DeiT case: a class and a distillation token before an 8x8 grid).
    @Test func tensorKeepsItsContractOnTokens() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-transformer-tensor")
        defer { try? FileManager.default.removeItem(at: folder) }
        let paths = ["activation", "gradient", "raw", "map"].map { folder.appendingPathComponent("\($0).npy").path }
        let result = try CamvidProcess.run(["tensor", "--model", Self.models.appendingPathComponent("deit_distilled/legacy-opset18.onnx").path,
                                            "--input", Self.models.appendingPathComponent("input.npy").path, "--method", "gradcam",
                                            "--activation", paths[0], "--gradient", paths[1], "--raw", paths[2], "--map", paths[3]])
        #expect(result.status == 0, "\(result.standardError)")
        let (activation, gradient, raw, map) = try (NumPyFile.read(path: paths[0]), NumPyFile.read(path: paths[1]),
                                                    NumPyFile.read(path: paths[2]), NumPyFile.read(path: paths[3]))
        #expect(activation.shape.count == 3 && activation.shape[0] == 2 && activation.shape[1] == 66)
        #expect(gradient.shape == activation.shape)
        #expect(raw.shape == [2, 8, 8] && map.shape == [2, 32, 32])
        let expected = try NumPyFile.read(path: Self.models.appendingPathComponent("deit_distilled/gradcam__raw.npy").path)
        let scale = expected.storage.map(abs).max() ?? 1
        #expect(zip(raw.storage, expected.storage).allSatisfy { abs($0 - $1) <= 1e-3 * scale })
        #expect(raw.storage.contains { $0 > 0 })
    }

    @Test(arguments: ["vit/dynamo-opset20.onnx", "swin/legacy-opset17.onnx"])
    func eachFramesMapIsTheTensorCommands(model: String) throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-transformer-video")
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("disc.mkv"), out = folder.appendingPathComponent("out.mkv")
        let cams = folder.appendingPathComponent("cams.npy"), json = folder.appendingPathComponent("frames.jsonl")
        let modelPath = Self.models.appendingPathComponent(model).path
        try MovingDiscClip.write(clip, count: 6, width: 96, height: 64)
        let video = try CamvidProcess.run([clip.path, out.path, "--model", modelPath, "--method", "gradcam", "--batch-size", "1",
                                           "--cams", cams.path, "--json", json.path])
        #expect(video.status == 0, "\(video.standardError)")
        #expect(video.standardError.contains("wrote 6 frames"), "\(video.standardError)")

        // The frames as the video run decoded them, prepared as it prepares them.
        let decoder = try FrameDecoder(MediaInput(clip.path))
        let converter = PixelConverter()
        var preprocessor = FramePreprocessor(inputWidth: 32, inputHeight: 32)
        var inputs: [Tensor] = []
        while let item = try decoder.next() {
            guard case .frame(let frame) = item else { continue }
            let picture = RGBImage(width: frame.width, height: frame.height, pixels: try converter.rgb(frame))
            inputs.append(preprocessor.input(for: picture).tensor)
        }
        #expect(inputs.count == 6)
        let batch = folder.appendingPathComponent("frames.npy"), maps = folder.appendingPathComponent("maps.npy")
        try NumPyFile.write(Tensor.concatenate(inputs), path: batch.path)
        let tensor = try CamvidProcess.run(["tensor", "--input", batch.path, "--model", modelPath, "--method", "gradcam",
                                            "--map", maps.path])
        #expect(tensor.status == 0, "\(tensor.standardError)")

        let fromVideo = try NumPyFile.read(path: cams.path), fromTensor = try NumPyFile.read(path: maps.path)
        #expect(fromVideo.shape == [6, 32, 32] && fromTensor.shape == [6, 32, 32])
        let worst = zip(fromVideo.storage, fromTensor.storage).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-5, "\(model): video maps differ from the tensor command's by \(worst)")
        // The disc moves, and so does the explanation: the maps are not all the same.
        #expect(fromVideo.slice(0) != fromVideo.slice(5))
    }
}
