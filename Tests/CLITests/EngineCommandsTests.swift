import Annotate
import Core
import Foundation
import Testing
import CamvidCLI
import Engine
import TestSupport

@Suite(.serialized) struct EngineCommandsTests {
    @Test func layersListsEveryTensorAndMarksTheDefaultTarget() throws {
        let command = try LayersCommand.parse([])
        try command.run()
        let network = try Network(contentsOf: DefaultModel.url)
        let table = LayersCommand.table(network)
        #expect(table.contains("* \(EngineNetwork(network).defaultTargetLayer)"))
        #expect(table.split(separator: "\n").count == network.layers.count + 2)
    }

    @Test func tensorWritesLogitsActivationAndGradient() throws {
        guard let reference = ReferenceData.referenceOrSkip("EngineCommandsTests.tensorWritesLogitsActivationAndGradient") else { return }
        let dir = try ReferenceData.temporaryDirectory("camvid-tensor")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = reference.appendingPathComponent("inputs/chelsea.npy").path
        let paths = ["logits", "activation", "gradient"].map { dir.appendingPathComponent("\($0).npy").path }
        var command = try TensorCommand.parse(["--model", reference.appendingPathComponent("models/resnet18.onnx").path,
                                               "--input", input, "--layer", "relu_12",
                                               "--logits", paths[0], "--activation", paths[1], "--gradient", paths[2]])
        try command.run()
        let logits = try NumPyFile.read(path: paths[0])
        let activation = try NumPyFile.read(path: paths[1])
        let gradient = try NumPyFile.read(path: paths[2])
        #expect(logits.shape == [1, 1000])
        #expect(activation.shape == [1, 256, 14, 14] && gradient.shape == [1, 256, 14, 14])
        // --class defaults to the top-1 class, the one the reference suite used (PyTorch autograd).
        let expected = try NumPyFile.read(path: reference.appendingPathComponent("cases/resnet18__chelsea__layer3__grad.npy").path)
        let scale = expected.storage.map(abs).max() ?? 1
        #expect(zip(gradient.storage, expected.storage).allSatisfy { abs($0 - $1) <= 1e-3 * scale })

        // --logits alone runs forward only and writes nothing else.
        command = try TensorCommand.parse(["--input", input, "--logits", paths[0]])
        try FileManager.default.removeItem(atPath: paths[1])
        try command.run()
        #expect(try NumPyFile.read(path: paths[0]).shape == [1, 1000])
        #expect(!FileManager.default.fileExists(atPath: paths[1]))
    }

    @Test func tensorRejectsAnInputThatIsNotAnImageBatch() throws {
        let dir = try ReferenceData.temporaryDirectory("camvid-tensor")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("x.npy").path
        try NumPyFile.write(Tensor(shape: [3, 224]), path: path)
        let command = try TensorCommand.parse(["--input", path, "--logits", dir.appendingPathComponent("l.npy").path])
        #expect(throws: (any Error).self) { try command.run() }
    }
}
