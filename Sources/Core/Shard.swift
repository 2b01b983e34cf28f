/// One of `count` shares of a job that workers run apart (`--shard I/N`), numbered from 0 as Slurm
/// array tasks and Kubernetes Indexed Jobs number theirs.
///
/// The rule, the same for a video's frames and an archive's files: a range `[lower, upper)` is cut
/// at `boundary(k) = lower + ⌊(upper − lower)·k / count⌋` for k = 1…count−1, and share `index`
/// takes what lies in `[boundary(index), boundary(index + 1))`, the first share also everything
/// below its end and the last everything from its start on. Integer arithmetic only, so every
/// worker cuts at the same place.
public struct Shard: Sendable, Hashable, CustomStringConvertible {
    /// This share, 0-based.
    public let index: Int
    /// How many shares there are (at least 1).
    public let count: Int

    /// Share `index` of `count`; nil unless 0 ≤ index < count.
    public init?(index: Int, count: Int) {
        guard count >= 1, (0..<count).contains(index) else { return nil }
        self.index = index
        self.count = count
    }

    /// `I/N` as written on the command line; nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) else { return nil }
        self.init(index: index, count: count)
    }

    /// `I/N`.
    public var description: String { "\(index)/\(count)" }

    /// Where share `k` begins within `[lower, upper)`: `lower + ⌊(upper − lower)·k / count⌋`.
    public func boundary(_ k: Int, lower: Int64, upper: Int64) -> Int64 {
        let width = UInt64(max(0, upper - lower))
        // A full-width product: hours of 90 kHz ticks times thousands of shares cannot overflow.
        let product = width.multipliedFullWidth(by: UInt64(k))
        let quotient = UInt64(count).dividingFullWidth(product).quotient
        return lower + Int64(quotient)
    }

    /// This share's part of `[lower, upper)`: nil at the ends that stay open (the first share's
    /// start, the last share's end).
    public func bounds(lower: Int64, upper: Int64) -> (start: Int64?, end: Int64?) {
        (index == 0 ? nil : boundary(index, lower: lower, upper: upper),
         index == count - 1 ? nil : boundary(index + 1, lower: lower, upper: upper))
    }

    /// The items of `total` that are this share's (an archive's files, by their position in the list).
    public func items(of total: Int) -> Range<Int> {
        let (start, end) = bounds(lower: 0, upper: Int64(total))
        return Int(start ?? 0)..<Int(end ?? Int64(total))
    }
}
