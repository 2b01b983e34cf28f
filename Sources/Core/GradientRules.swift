/// How backward treats operators whose gradient an explanation method redefines.
public struct GradientRules: Sendable, Equatable {
    /// ReLU passes only positive gradients, and only where its input was positive (guided backprop).
    public var guidedRelu: Bool
    /// Clip (ReLU6) passes only positive gradients, and only where its input was strictly inside its bounds.
    ///
    /// Off by default and in `guidedBackprop`: pytorch-grad-cam guides only `nn.ReLU`, so ReLU6 keeps its plain gradient.
    public var guidedClip: Bool

    /// Creates rules.
    public init(guidedRelu: Bool = false, guidedClip: Bool = false) {
        self.guidedRelu = guidedRelu
        self.guidedClip = guidedClip
    }

    /// The true gradient.
    public static let standard = GradientRules()
    /// Guided backpropagation (Springenberg et al.): ReLU gates both by input and by gradient sign.
    public static let guidedBackprop = GradientRules(guidedRelu: true)
    /// Guided backpropagation with Clip (ReLU6) guided like ReLU.
    public static let guidedBackpropIncludingClip = GradientRules(guidedRelu: true, guidedClip: true)
}
