import Testing
import Foundation
import CamvidCLI
import TestSupport

@Suite struct CommandLineTests {
    @Test func helpNamesTheTool() {
        #expect(Camvid.helpMessage().contains("camvid"))
    }
}

@Suite struct ModelKindTests {
    /// A detector given where a classifier is explained: one line naming the model file and its output, nothing written.
    @Test func aDetectorIsNotExplainedAsAClassifier() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-detector-model")
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("out.mp4")
        let model = ReferenceData.packageFile("Tests/Fixtures/Detectors/yolov8n/model.onnx").path
        let result = try CamvidProcess.run([ReferenceData.packageFile("Samples/bigbuckbunny.mp4").path, output.path,
                                            "--model", model, "--duration", "1"])
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1, "\(result.standardError)")
        #expect(result.standardError.hasPrefix("camvid: model.onnx: the model's output 'output0' has shape [1, 14, 336]"),
                "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: output.path))
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
