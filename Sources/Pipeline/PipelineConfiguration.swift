/// How the stages of the pipeline are joined.
public struct PipelineConfiguration: Sendable, Equatable {
    /// How many items each channel between two stages holds before the upstream stage waits.
    public var channelCapacity: Int
    /// How many frames the explain stage takes at once.
    public var batchSize: Int
    /// Drop the oldest waiting frame instead of waiting when the pipeline falls behind a live source.
    public var realtime: Bool

    /// A configuration; capacities and batch sizes below 1 are raised to 1.
    public init(channelCapacity: Int = 4, batchSize: Int = 4, realtime: Bool = false) {
        self.channelCapacity = max(1, channelCapacity)
        self.batchSize = max(1, batchSize)
        self.realtime = realtime
    }
}
