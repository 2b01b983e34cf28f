import Core
/// Why an explanation cannot be computed; every case names what was wrong.
public enum ExplainError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A class label matched no ImageNet name; `candidates` are the closest names.
    case unknownLabel(String, candidates: [String])
    /// A class label is a prefix of several names.
    case ambiguousLabel(String, candidates: [String])
    /// A class index outside the logits.
    case classIndexOutOfRange(Int, classes: Int)
    /// CAM (Zhou et al.) needs a global-average-pooling + linear head the network does not have.
    case noLinearHead(String)
    /// A tensor has a shape the method cannot use.
    case badShape(String)
    /// A named tensor is not available.
    case missingTensor(String)
    /// An option is out of range or contradicts another.
    case invalidOption(String)

    /// A sentence for the user.
    public var description: String {
        switch self {
        case let .unknownLabel(label, candidates):
            let hint = candidates.isEmpty ? "" : "; closest: \(candidates.joined(separator: ", "))"
            return "unknown class label '\(label)'\(hint)"
        case let .ambiguousLabel(label, candidates):
            return "class label '\(label)' is ambiguous; it matches: \(candidates.joined(separator: ", "))"
        case let .classIndexOutOfRange(index, classes):
            return "class index \(index) is outside 0..<\(classes)"
        case let .noLinearHead(reason):
            return "cam needs a network ending in global average pooling + one linear layer (\(reason)); use gradcam, which gives the same map for such networks and works for any"
        case let .badShape(message), let .missingTensor(message), let .invalidOption(message):
            return message
        }
    }
}
