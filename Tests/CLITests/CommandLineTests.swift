import Testing
import Foundation
import CamvidCLI

@Suite struct CommandLineTests {
    @Test func helpNamesTheTool() {
        #expect(Camvid.helpMessage().contains("camvid"))
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
