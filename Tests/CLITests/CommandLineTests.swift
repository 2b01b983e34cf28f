import Testing
import CamvidCLI

@Suite struct CommandLineTests {
    @Test func helpNamesTheTool() {
        #expect(Camvid.helpMessage().contains("camvid"))
    }
}
