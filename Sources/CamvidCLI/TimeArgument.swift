import ArgumentParser
import Media

/// Parses a time given on the command line: seconds (`90`, `2.5`) or `[hh:]mm:ss[.fff]`.
enum TimeArgument {
    /// The time in seconds, or nil when `text` is not a time ≥ 0.
    static func seconds(_ text: String) -> Double? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count) else { return nil }
        var total = 0.0
        for (position, part) in parts.enumerated() {
            let isLast = position == parts.count - 1
            guard let value = Double(part), value.isFinite, value >= 0 else { return nil }
            // Only the seconds may have a fraction; minutes and seconds stay below 60 after the first part.
            if !isLast && value != value.rounded() { return nil }
            if position > 0 && value >= 60 { return nil }
            total = total * 60 + value
        }
        return total
    }
}

/// `--start` and `--duration`: the span of the input explained, cut frame-exactly.
struct SpanOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Start this far into the input: seconds or [hh:]mm:ss[.fff].", valueName: "time"))
    var start: String?

    @Option(help: ArgumentHelp("Process only this much of the input: seconds or [hh:]mm:ss[.fff].", valueName: "time"))
    var duration: String?

    mutating func validate() throws {
        if let start, TimeArgument.seconds(start) == nil {
            throw ValidationError("--start '\(start)' is not a time (seconds or [hh:]mm:ss)")
        }
        if let duration {
            guard let seconds = TimeArgument.seconds(duration), seconds > 0 else {
                throw ValidationError("--duration '\(duration)' is not a time > 0 (seconds or [hh:]mm:ss)")
            }
        }
    }

    /// The span given (all of the input by default).
    var span: TimeSpan {
        TimeSpan(start: start.flatMap(TimeArgument.seconds), duration: duration.flatMap(TimeArgument.seconds))
    }
}
