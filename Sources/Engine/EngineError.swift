/// An error of the engine: a model it cannot load or a call it cannot serve.
///
/// The message names the file, ONNX node, operator or attribute at fault.
public struct EngineError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, in one sentence.
    public let description: String

    /// An error with the given message.
    public init(_ description: String) {
        self.description = description
    }
}
