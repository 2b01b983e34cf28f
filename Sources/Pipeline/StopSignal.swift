import Foundation

/// A request to stop reading the input early (Ctrl-C): the pipeline then drains the frames
/// in flight and finalises the output, as at the end of the input.
public final class StopSignal: @unchecked Sendable {
    // Guarded by `lock`: set from a signal handler's queue, read by the decode stage.
    private let lock = NSLock()
    private var stopped = false

    /// A signal not yet raised.
    public init() {}

    /// Whether `stop()` has been called.
    public var isStopped: Bool {
        lock.withLock { stopped }
    }

    /// Asks the pipeline to stop reading (before its next read); later calls change nothing.
    public func stop() {
        lock.withLock { stopped = true }
    }
}
