import Testing
import Pipeline

@Suite struct PipelineConfigurationTests {
    @Test func raisesCapacitiesToOne() {
        let configuration = PipelineConfiguration(channelCapacity: 0, batchSize: -3)
        #expect(configuration.channelCapacity == 1)
        #expect(configuration.batchSize == 1)
    }
}
