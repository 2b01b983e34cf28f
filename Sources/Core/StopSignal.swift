import Synchronization

/// A request to stop reading the input early (Ctrl-C): the decoder's blocking reads return and
/// the pipeline drains the frames in flight and finalises the output, as at the end of the input.
///
/// Raised from any thread (a signal handler's queue); read by the decode stage and, through
/// FFmpeg's interrupt callback, by a read blocked on a device or a pipe.
public final class StopSignal: Sendable {
    private let raised = Atomic<Bool>(false)

    /// A signal not yet raised.
    public init() {}

    /// Raises the signal; later calls change nothing.
    public func stop() { raised.store(true, ordering: .releasing) }

    /// Whether `stop()` has been called.
    public var isStopped: Bool { raised.load(ordering: .acquiring) }
}
