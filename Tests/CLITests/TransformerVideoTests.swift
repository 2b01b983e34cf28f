import Annotate
import Core
import Foundation
import Media
import MediaTestSupport
import TestSupport
import Testing

/// A vision transformer explaining a clip: each output frame's map is what `camvid tensor` gives for that frame.
@Suite(.serialized) struct TransformerVideoTests {
    static let models = ReferenceData.packageFile("Tests/Fixtures/Transformers")

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
