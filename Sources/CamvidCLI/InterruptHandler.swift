import Dispatch
import Foundation
import Synchronization
import Core

/// Turns SIGINT and SIGTERM into a request to stop reading: the pipeline drains the frames in
/// flight and finalises the output. A second signal ends the process at once.
///
/// The signals' default action is ignored and a dispatch source receives them instead, so the
/// handler runs as ordinary code (not in an async-signal context) and may raise the stop signal.
final class InterruptHandler: Sendable {
    /// The dispatch sources (kept alive with the handler) and the first signal received.
    private let state = Mutex<(sources: [DispatchSourceSignal], received: Int32?)>(([], nil))

    /// Installs the handlers; they raise `stop` on the first signal.
    init(stop: StopSignal) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                let first = state.withLock { state -> Bool in
                    guard state.received == nil else { return false }
                    state.received = number
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
            state.withLock { $0.sources.append(source) }
        }
    }

    /// The first signal received, if any.
    var signalReceived: Int32? {
        state.withLock { $0.received }
    }

    /// The signal's name for messages.
    static func name(of number: Int32) -> String {
        number == SIGINT ? "SIGINT" : number == SIGTERM ? "SIGTERM" : "signal \(number)"
    }
}
