/// Why a rendering step refused its input.
public enum RenderError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A map or image size that is zero or negative.
    case emptySize(width: Int, height: Int)
    /// A map whose value count is not `width * height`.
    case mapSizeMismatch(width: Int, height: Int, count: Int)
    /// A blend weight outside 0...1 (or not a number).
    case invalidAlpha(Float)

    /// One line naming what was wrong.
    public var description: String {
        switch self {
        case let .emptySize(width, height):
            "render: a map or image must be at least 1x1, got \(width)x\(height)"
        case let .mapSizeMismatch(width, height, count):
            "render: a \(width)x\(height) map needs \(Self.product(width, height)) values, got \(count)"
        case let .invalidAlpha(alpha):
            "render: --alpha must be between 0 and 1, got \(alpha)"
        }
    }

    /// `a * b` in words that survive overflow.
    private static func product(_ a: Int, _ b: Int) -> String {
        let (n, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? "\(a)*\(b)" : "\(n)"
    }

    /// Throws unless `count` values make a non-empty `width x height` map.
    static func checkMap(count: Int, width: Int, height: Int) throws(RenderError) {
        guard width > 0, height > 0 else { throw .emptySize(width: width, height: height) }
        guard width.multipliedReportingOverflow(by: height) == (count, false) else {
            throw .mapSizeMismatch(width: width, height: height, count: count)
        }
    }
}
