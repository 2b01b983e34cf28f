import CFFmpeg

/// A rational number such as a time base (1/12800 s) or a frame rate (30000/1001 fps).
public struct Rational: Sendable, Hashable, CustomStringConvertible {
    /// The numerator.
    public var numerator: Int32
    /// The denominator (0 means unknown).
    public var denominator: Int32

    /// `numerator / denominator`.
    public init(_ numerator: Int32, _ denominator: Int32) {
        self.numerator = numerator
        self.denominator = denominator
    }

    init(_ value: AVRational) {
        self.init(value.num, value.den)
    }

    var av: AVRational { AVRational(num: numerator, den: denominator) }

    /// Whether both parts are positive (an unknown rate is 0/0 or 0/1).
    public var isValid: Bool { numerator > 0 && denominator > 0 }

    /// The value as a `Double` (0 when the denominator is 0).
    public var doubleValue: Double { denominator == 0 ? 0 : Double(numerator) / Double(denominator) }

    /// The inverse, `denominator / numerator`.
    public var inverse: Rational { Rational(denominator, numerator) }

    /// `numerator/denominator`.
    public var description: String { "\(numerator)/\(denominator)" }

    /// `value` ticks of this time base, in seconds.
    public func seconds(_ value: Int64) -> Double { Double(value) * doubleValue }

    /// `seconds` in ticks of this time base, rounded to the nearest tick.
    public func ticks(_ seconds: Double) -> Int64 {
        guard isValid else { return 0 }
        return Int64((seconds * Double(denominator) / Double(numerator)).rounded())
    }

    /// `value` ticks of this time base in ticks of `other`, rounded to the nearest (exact integer arithmetic).
    public func rescale(_ value: Int64, to other: Rational) -> Int64 {
        av_rescale_q(value, av, other.av)
    }
}

/// Where a frame sits in time: what travels with it from the decoder to the encoder.
public struct FrameTiming: Sendable, Hashable {
    /// 0-based position among the frames the decoder returned.
    public var index: Int
    /// Presentation time in the source video stream's time base.
    public var pts: Int64
    /// How long the frame is shown, in the same time base (always > 0).
    public var duration: Int64

    /// A timing; `duration` below 1 is raised to 1 tick.
    public init(index: Int, pts: Int64, duration: Int64) {
        self.index = index
        self.pts = pts
        self.duration = max(1, duration)
    }
}
