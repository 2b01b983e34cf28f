import Foundation
import Synchronization

/// The progress line on standard error: frames, rate, elapsed time and (when the frame count
/// is known) the time left, rewritten in place with `\r` at most four times a second.
public final class ProgressReporter: Sendable {
    /// The frame count expected, when the input's duration or frame count is known.
    public let expectedFrames: Int?
    private let enabled: Bool
    private let interval: Duration
    private let write: @Sendable (String) -> Void
    private let clock = ContinuousClock()

    private let start: ContinuousClock.Instant
    /// Counted from the encode stage, read from the command.
    private let state = Mutex(State())

    private struct State {
        var frames = 0
        var lastPrint: ContinuousClock.Instant?
        var printedWidth = 0
    }

    /// A reporter writing through `write`; it prints nothing when `enabled` is false.
    public init(expectedFrames: Int?, enabled: Bool, interval: Duration = .milliseconds(250),
                write: @escaping @Sendable (String) -> Void) {
        self.expectedFrames = expectedFrames.flatMap { $0 > 0 ? $0 : nil }
        self.enabled = enabled
        self.interval = interval
        self.write = write
        self.start = clock.now
    }

    /// The reporter for standard error: silent with `quiet` or when standard error is not a terminal.
    public static func standardError(quiet: Bool, expectedFrames: Int?) -> ProgressReporter {
        ProgressReporter(expectedFrames: expectedFrames, enabled: !quiet && isatty(2) == 1) { text in
            FileHandle.standardError.write(Data(text.utf8))
        }
    }

    /// How many frames have been written so far.
    public var framesWritten: Int {
        state.withLock { $0.frames }
    }

    /// What the run did, in one line: `wrote N frames to OUTPUT in T s (F fps): WHAT`.
    public func summary(output: String, what: String) -> String {
        let (count, elapsed) = (framesWritten, (clock.now - start).seconds)
        return String(format: "wrote %d frames to %@ in %.1f s (%.1f fps): %@", count, output, elapsed,
                      elapsed > 0 ? Double(count) / elapsed : 0, what)
    }

    /// Counts one written frame and redraws the line when the interval has passed.
    public func frameWritten() {
        let text: String? = state.withLock { state in
            state.frames += 1
            guard enabled else { return nil }
            let now = clock.now
            if let lastPrint = state.lastPrint, now - lastPrint < interval { return nil }
            state.lastPrint = now
            return redrawn(&state, now: now)
        }
        if let text { write(text) }
    }

    /// Draws the final line and ends it, when anything was drawn at all.
    public func finish() {
        let text: String? = state.withLock { state in
            guard enabled, state.lastPrint != nil else { return nil }
            return redrawn(&state, now: clock.now) + "\n"
        }
        if let text { write(text) }
    }

    /// `\r` and the line, padded to cover a longer previous line.
    private func redrawn(_ state: inout State, now: ContinuousClock.Instant) -> String {
        let line = ProgressReporter.line(frames: state.frames, elapsed: (now - start).seconds, expectedFrames: expectedFrames)
        let padding = String(repeating: " ", count: max(0, state.printedWidth - line.count))
        state.printedWidth = line.count
        return "\r" + line + padding
    }

    /// One progress line, e.g. `frame 120/1440  24.0 fps  elapsed 0:05  ETA 0:55`.
    public static func line(frames: Int, elapsed: Double, expectedFrames: Int?) -> String {
        let rate = elapsed > 0 ? Double(frames) / elapsed : 0
        var parts: [String] = []
        if let expectedFrames {
            parts.append("frame \(frames)/\(expectedFrames)")
        } else {
            parts.append("frame \(frames)")
        }
        parts.append(String(format: "%.1f fps", rate))
        parts.append("elapsed \(clockTime(elapsed))")
        if let expectedFrames, rate > 0 {
            parts.append("ETA \(clockTime(Double(max(0, expectedFrames - frames)) / rate))")
        }
        return parts.joined(separator: "  ")
    }

    /// `m:ss`, or `h:mm:ss` from an hour.
    static func clockTime(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        let (hours, minutes, secs) = (total / 3600, (total / 60) % 60, total % 60)
        if hours > 0 { return String(format: "%d:%02d:%02d", hours, minutes, secs) }
        return String(format: "%d:%02d", minutes, secs)
    }
}

extension Duration {
    /// The duration in seconds as a floating-point number.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
