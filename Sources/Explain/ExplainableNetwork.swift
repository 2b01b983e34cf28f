import Core

/// A classifier ending in global average pooling followed by one linear layer, the shape CAM (Zhou et al.) needs.
public struct LinearHead: Sendable, Equatable {
    /// The last spatial tensor, `[N,C,h,w]`, whose spatial mean feeds the linear layer.
    public var featureLayer: String
    /// The linear layer's weights `[K,C]`: `logits = weights · mean_hw(features) + bias`.
    public var weights: Tensor
    /// The bias `[K]`, when the layer has one.
    public var bias: Tensor?
    /// The tensor holding the channel means (`[N,C]` or `[N,C,1,1]`) that the linear layer reads, when known.
    /// A change of `featureLayer` that only sets whole channels to constants (Ablation-CAM) re-runs from here,
    /// on 1/(h·w) of the data.
    public var pooledLayer: String?

    /// A head reading `featureLayer` through `weights` `[K,C]`, its channel means held in `pooledLayer`.
    public init(featureLayer: String, weights: Tensor, bias: Tensor? = nil, pooledLayer: String? = nil) {
        self.featureLayer = featureLayer
        self.weights = weights
        self.bias = bias
        self.pooledLayer = pooledLayer
    }
}

/// What an explanation method needs from a network, and nothing more.
///
/// The four operations of the design: forward, the activation of a tensor T, the gradient of a
/// seed on the logits with respect to T, and a re-run downstream of T with T replaced.
/// Input tensors are `[N,3,H,W]`; logits `[N,K]`.
public protocol ExplainableNetwork {
    /// What one forward pass keeps for the later operations.
    associatedtype Pass

    /// The name of the input tensor; a gradient with respect to it is the input gradient.
    var inputName: String { get }
    /// The tensor CAM methods explain when the caller names none (usually the last spatial layer).
    var defaultTargetLayer: String { get }

    /// Runs `input` `[N,3,H,W]`, keeping the named tensors for `activation(_:in:)` and backward passes.
    func forward(_ input: Tensor, retaining names: Set<String>) throws -> Pass
    /// The logits `[N,K]` of a pass.
    func logits(of pass: Pass) -> Tensor
    /// The value of a retained tensor, e.g. a layer's activation `[N,C,h,w]`.
    func activation(_ name: String, in pass: Pass) throws -> Tensor
    /// The gradient of `sum(seed * logits)` with respect to each named tensor (the input included), under `rule`.
    func gradients(of pass: Pass, seed: Tensor, withRespectTo names: Set<String>, rules: GradientRules) throws -> [String: Tensor]
    /// The logits `[M,K]` of `M` copies of image `image` of the pass, re-run downstream of tensor `name`
    /// whose value is replaced by `value` `[M,...]`.
    func logits(of pass: Pass, image: Int, replacing name: String, with value: Tensor) throws -> Tensor
    /// The global-average-pooling + linear head feeding the logits, or an error saying why there is none.
    func linearHead() throws -> LinearHead
}
