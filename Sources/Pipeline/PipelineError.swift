/// A failure inside the pipeline that is not already a media error naming its file.
public enum PipelineError: Error, CustomStringConvertible, Sendable {
    /// A stage failed on a frame (when known) for `reason`.
    case stageFailed(stage: String, frame: Int?, reason: String)

    /// One line: `STAGE: frame N: REASON`.
    public var description: String {
        switch self {
        case .stageFailed(let stage, let frame, let reason):
            if let frame { return "\(stage): frame \(frame): \(reason)" }
            return "\(stage): \(reason)"
        }
    }
}
