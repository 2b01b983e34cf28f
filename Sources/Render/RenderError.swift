/// Why a rendering step refused its input.
public enum RenderError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A blend weight outside 0...1 (or not a number).
    case invalidAlpha(Float)

    /// One line naming what was wrong.
    public var description: String {
        switch self {
        case let .invalidAlpha(alpha):
            "render: --alpha must be between 0 and 1, got \(alpha)"
        }
    }
}
