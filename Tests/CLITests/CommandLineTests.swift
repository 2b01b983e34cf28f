import Testing
import Foundation
import CamvidCLI
import Core
import EngineTestSupport
import TestSupport

@Suite struct CommandLineTests {
    @Test func helpNamesTheTool() {
        #expect(Camvid.helpMessage().contains("camvid"))
    }
}

@Suite struct ModelKindTests {
    /// A model whose output is no classifier's, detector's or segmenter's: one line naming the model file, its output
    /// and what camvid explains; nothing written.
    @Test func anUnknownOutputIsOneLineNamingIt() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-unknown-model")
        defer { try? FileManager.default.removeItem(at: folder) }
        var builder = ONNXModelBuilder(opset: 17, inputShape: [1, 3, 8, 8])
        builder.addNode("Flatten", inputs: ["input"], outputs: ["rows"], attributes: ["axis": .int(2)])
        builder.addOutput("rows")
        let model = folder.appendingPathComponent("rows.onnx"), output = folder.appendingPathComponent("out.mp4")
        try builder.serialized().write(to: model)
        let result = try CamvidProcess.run([ReferenceData.packageFile("Samples/bigbuckbunny.mp4").path, output.path,
                                            "--model", model.path, "--duration", "1"])
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1, "\(result.standardError)")
        #expect(result.standardError.hasPrefix("camvid: rows.onnx: the model's output 'rows' has shape [3, 64]; camvid explains classifiers"),
                "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }
}

@Suite struct ModelClassNamesTests {
    /// A classifier whose exporter wrote its class names (`names` metadata, ultralytics' Python dict) is labelled with them.
    @Test func namesComeFromTheModelsMetadata() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-model-names")
        defer { try? FileManager.default.removeItem(at: folder) }
        // Mean colour -> identity head: the logits are the mean red, green and blue.
        var builder = ONNXModelBuilder(opset: 17, inputShape: [nil, 3, 8, 8])
        builder.addInitializer("w", Tensor(shape: [3, 3], storage: [1, 0, 0, 0, 1, 0, 0, 0, 1]))
        builder.addNode("GlobalAveragePool", inputs: ["input"], outputs: ["g"])
        builder.addNode("Flatten", inputs: ["g"], outputs: ["f"])
        builder.addNode("Gemm", inputs: ["f", "w"], outputs: ["logits"], attributes: ["transB": .int(1)])
        builder.addOutput("logits")
        builder.addMetadata("names", "{0: 'red', 1: 'green', 2: 'blue'}")
        let model = folder.appendingPathComponent("colours.onnx"), input = folder.appendingPathComponent("x.npy")
        try builder.serialized().write(to: model)
        try NumPyFile.write(Tensor(shape: [1, 3, 8, 8], storage: (0..<192).map { $0 >= 128 ? 1 : 0 }), path: input.path)
        let result = try CamvidProcess.run(["tensor", "--model", model.path, "--input", input.path])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.hasPrefix("0: class 2 blue logit 1.0"), "\(result.standardOutput)")
    }
}

@Suite struct MissingModelTests {
    /// Without the bundled model (here: `$CAMVID_MODEL_DIR` names an empty folder) a command says where it looked, in one line.
    @Test func aMissingModelIsOneLineNamingThePlace() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["CAMVID_MODEL_DIR"] = "/nonexistent/camvid-models"
        let result = try CamvidProcess.run(["layers"], environment: environment)
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1, "\(result.standardError)")
        #expect(result.standardError.hasPrefix("camvid: the default model efficientnet_lite0.onnx is not in /nonexistent/camvid-models"),
                "\(result.standardError)")
    }
}

@Suite struct VersionAndDoctorTests {
    @Test func versionNamesTheVersionAndCommit() throws {
        let result = try CamvidProcess.run(["--version"])
        #expect(result.status == 0)
        #expect(result.standardOutput.hasPrefix("camvid \(BuildInfo.version) (commit "), "\(result.standardOutput)")
    }

    /// The in-tree binary finds the model in SwiftPM's bundle and names what it loaded.
    @Test func doctorSaysWhatItRunsOn() throws {
        let result = try CamvidProcess.run(["doctor"])
        #expect(result.status == 0, "\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.first == BuildInfo.versionLine)
        for prefix in ["executable: /", "Swift runtime: ", "model: /", "FFmpeg: ", "  libavformat ", "  video encoder: ", "oneDNN: 2.",
                       "  instruction set: ", "  threads per network call: ", "CPU: "] {
            #expect(lines.contains { $0.hasPrefix(prefix) }, "no line '\(prefix)…' in \(result.standardOutput)")
        }
        #expect(result.standardOutput.contains("efficientnet_lite0.onnx (SwiftPM's resource bundle beside the executable)"))
    }
}
