import Foundation

/// A request to stop reading the input early (Ctrl-C): the pipeline then drains the frames
/// in flight and finalises the output, as at the end of the input.
public final class StopSignal: @unchecked Sendable {
    // Guarded by `lock`: set from a signal handler's queue, read by the decode stage.
    private let lock = NSLock()
    private var stopped = false
    private var handlers: [@Sendable () -> Void] = []

    /// A signal not yet raised.
    public init() {}

    /// Whether `stop()` has been called.
    public var isStopped: Bool {
        lock.withLock { stopped }
    }

    /// Asks the pipeline to stop reading; later calls change nothing.
    public func stop() {
        let toRun: [@Sendable () -> Void] = lock.withLock {
            guard !stopped else { return [] }
            stopped = true
            return handlers
        }
        toRun.forEach { $0() }
    }

    /// Runs `handler` once when the signal is raised (at once if it already was): e.g. to
    /// interrupt a decoder blocked reading a device or a pipe.
    public func onStop(_ handler: @escaping @Sendable () -> Void) {
        let runNow: Bool = lock.withLock {
            if stopped { return true }
            handlers.append(handler)
            return false
        }
        if runNow { handler() }
    }
}
