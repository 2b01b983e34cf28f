import Core

/// Everything a CAM method may use about one image at one target layer.
///
/// Network probes (Score-CAM, Ablation-CAM) go through closures the explainer supplies, so a method
/// never sees the network type.
public struct LayerEvidence {
    /// The target layer's tensor name.
    public let layer: String
    /// The layer's activation for this image on the grid, `[C,h,w]`.
    public let activation: Tensor
    /// How the layer's own output is read as that grid.
    public let reading: GridReading
    /// The layer's own output for this image (its layout, without the batch dimension): what a
    /// replacement downstream of the layer replaces.
    public let layerOutput: Tensor
    /// `d logit[class] / d activation` `[C,h,w]`, when the method uses gradients.
    public let gradient: Tensor?
    /// The class explained.
    public let classIndex: Int
    /// The class logit of the (unmodified) image.
    public let score: Float
    /// The network input of this image `[3,H,W]`.
    public let image: Tensor
    private let scoreInputs: (Tensor) throws -> [Float]
    private let scoreReplacements: (Tensor) throws -> [Float]
    private let scoreAblations: (([Int], Float) throws -> [Float])?

    /// Evidence with the given probes: `scoreInputs` maps images `[M,3,H,W]` to their class logits,
    /// `scoreReplacements` maps replacement layer outputs (`[M, ...]` in the layer's own layout) to the class
    /// logits downstream; `scoreAblations`, when given, maps channels `c` and a value `v` to the class logits with
    /// channel `c` set to `v` everywhere, one channel at a time (a shortcut the network may know, e.g. through its
    /// head). The layer's own output is `layerOutput`, read as the grid by `reading` (`[C,h,w]` as it is by default).
    public init(layer: String, activation: Tensor, gradient: Tensor?, classIndex: Int, score: Float, image: Tensor,
                reading: GridReading = .channelsFirst, layerOutput: Tensor? = nil,
                scoreInputs: @escaping (Tensor) throws -> [Float],
                scoreReplacements: @escaping (Tensor) throws -> [Float],
                scoreAblations: (([Int], Float) throws -> [Float])? = nil) {
        self.layer = layer
        self.activation = activation
        self.reading = reading
        self.layerOutput = layerOutput ?? activation
        self.gradient = gradient
        self.classIndex = classIndex
        self.score = score
        self.image = image
        self.scoreInputs = scoreInputs
        self.scoreReplacements = scoreReplacements
        self.scoreAblations = scoreAblations
    }

    /// The class logit of each image of `images` `[M,3,H,W]`.
    public func classScores(ofInputs images: Tensor) throws -> [Float] {
        try scoreInputs(images)
    }

    /// The class logit after replacing this layer's output by each of `outputs` (`[M, ...]`, the layer's layout).
    public func classScores(replacingOutputWith outputs: Tensor) throws -> [Float] {
        try scoreReplacements(outputs)
    }

    /// The class logit after setting each channel of `channels`, one at a time, to `value` at every position;
    /// full activation copies go downstream `batchSize` at a time (the network's shortcut takes them all at once).
    public func classScores(ablating channels: [Int], to value: Float, batchSize: Int) throws -> [Float] {
        if let scoreAblations { return try scoreAblations(channels, value) }
        var scores: [Float] = []
        scores.reserveCapacity(channels.count)
        var start = 0
        while start < channels.count {
            let end = min(start + max(batchSize, 1), channels.count)
            scores += try scoreReplacements(reading.ablatedCopies(of: layerOutput, channels: channels[start..<end], value: value))
            start = end
        }
        return scores
    }

    /// The gradient, or an error naming the method that needs it.
    public func requireGradient(for method: String) throws -> Tensor {
        guard let gradient else { throw ExplainError.missingTensor("\(method) needs the gradient at \(layer)") }
        return gradient
    }

    var channels: Int { activation.shape[0] }
    var positions: Int { activation.count / max(activation.shape[0], 1) }

    /// `sum_hw A_c` per channel (Grad-CAM++ and XGrad-CAM divide by it).
    var activationSums: [Float] {
        ChannelSums.sum(activation.storage, channels: channels) { Double(activation.storage[$0]) }
    }
}

/// A class activation map method in pytorch-grad-cam's BaseCAM shape: it states the weighted
/// activations `[C,h,w]`; the shared steps (channel sum or principal projection, ReLU, min-max,
/// resize, multi-layer mean) live once in `CAMExplainer`.
public protocol ActivationMapMethod: Sendable {
    /// The method's command-line name.
    var name: String { get }
    /// Whether the explainer must compute `d logit / d activation`.
    var usesGradients: Bool { get }
    /// Whether the map is always the principal projection (Eigen-CAM) rather than the channel sum.
    var alwaysProjects: Bool { get }
    /// The weighted activations `[C,h,w]` whose channel sum (or principal projection) is the map.
    func weightedActivations(_ evidence: LayerEvidence) throws -> Tensor
}

extension ActivationMapMethod {
    /// Most methods need gradients.
    public var usesGradients: Bool { true }
    /// Most methods sum over channels.
    public var alwaysProjects: Bool { false }
}

/// A method that weights each channel by one number (Grad-CAM and most of its family).
public protocol ChannelWeightedMethod: ActivationMapMethod {
    /// One weight per channel.
    func channelWeights(_ evidence: LayerEvidence) throws -> [Float]
}

/// A gradient-free method weighting each channel by the network's response to changed copies
/// (Score-CAM, Ablation-CAM), which go through the network `batchSize` at a time.
public protocol ProbingMethod: ChannelWeightedMethod {
    /// How many changed copies go through the network at once.
    var batchSize: Int { get }
}

extension ProbingMethod {
    /// Gradient-free.
    public var usesGradients: Bool { false }
}

extension ChannelWeightedMethod {
    /// `w_c * A_c`.
    public func weightedActivations(_ evidence: LayerEvidence) throws -> Tensor {
        let weights = try channelWeights(evidence)
        let a = evidence.activation, size = evidence.positions
        guard weights.count == evidence.channels else {
            throw ExplainError.badShape("\(name): \(weights.count) weights for \(evidence.channels) channels at \(evidence.layer)")
        }
        var out = a.storage
        out.withUnsafeMutableBufferPointer { values in
            for c in 0..<weights.count {
                let w = weights[c]
                for p in (c * size)..<((c + 1) * size) { values[p] *= w }
            }
        }
        return Tensor(shape: a.shape, storage: out)
    }
}

/// Per-channel reductions over the spatial positions of a `[C,h,w]` tensor, summed in Double.
enum ChannelSums {
    @inline(__always)
    static func sum(_ values: [Float], channels: Int, transform: (Int) -> Double) -> [Float] {
        let size = values.count / max(channels, 1)
        return (0..<channels).map { c in
            var total = 0.0
            for p in (c * size)..<((c + 1) * size) { total += transform(p) }
            return Float(total)
        }
    }

    /// Elementwise combination of two equal-shape tensors.
    @inline(__always)
    static func zip(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        var out = [Float](repeating: 0, count: a.count)
        out.withUnsafeMutableBufferPointer { result in
            a.storage.withUnsafeBufferPointer { x in
                b.storage.withUnsafeBufferPointer { y in
                    for i in 0..<result.count { result[i] = f(x[i], y[i]) }
                }
            }
        }
        return Tensor(shape: a.shape, storage: out)
    }
}
