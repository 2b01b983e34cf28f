import Dispatch
import Foundation
import Core

/// Turns SIGINT and SIGTERM into a request to stop reading: the pipeline drains the frames in
/// flight and finalises the output. A second signal ends the process at once.
///
/// The signals' default action is ignored and a dispatch source receives them instead, so the
/// handler runs as ordinary code (not in an async-signal context) and may raise the stop signal.
final class InterruptHandler: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var sources: [DispatchSourceSignal] = []
    private var received: Int32?

    /// Installs the handlers; they raise `stop` on the first signal.
    init(stop: StopSignal) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                let first = lock.withLock { () -> Bool in
                    guard received == nil else { return false }
                    received = number
                    return true
                }
                if first {
                    stop.stop()
                } else {
                    // The user insists: leave now with the signal's default action.
                    signal(number, SIG_DFL)
                    raise(number)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// The first signal received, if any.
    var signalReceived: Int32? {
        lock.withLock { received }
    }

    /// The signal's name for messages.
    static func name(of number: Int32) -> String {
        number == SIGINT ? "SIGINT" : number == SIGTERM ? "SIGTERM" : "signal \(number)"
    }
}
