import Engine
import Testing

@Suite struct EngineRuntimeTests {
    @Test func namesOneDNNItsInstructionSetAndThreads() {
        let runtime = EngineRuntime.current()
        #expect(runtime.oneDNNVersion.hasPrefix("2."))
        #expect(runtime.oneDNNFile?.contains("libdnnl") == true, "\(runtime.oneDNNFile ?? "nil")")
        #expect(runtime.threading == "OpenMP")
        #expect(!runtime.instructionSet.hasPrefix("ISA 0x") && !runtime.instructionSet.isEmpty)
        #expect(runtime.threadsPerCall >= 1 && runtime.logicalProcessors >= 1)
    }
}
