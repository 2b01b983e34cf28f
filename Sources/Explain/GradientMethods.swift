import Core

/// Grad-CAM (Selvaraju et al.): `w_c = mean_hw g_c`.
public struct GradCAM: ChannelWeightedMethod {
    /// Grad-CAM.
    public init() {}
    /// `gradcam`.
    public var name: String { "gradcam" }
    /// The spatial mean of the gradient.
    public func channelWeights(_ e: LayerEvidence) throws -> [Float] {
        let g = try e.requireGradient(for: name)
        let n = Double(e.positions)
        return ChannelSums.sum(g.storage, channels: e.channels) { Double(g.storage[$0]) / n }
    }
}

/// Grad-CAM++ (Chattopadhay et al.): `alpha = g² / (2g² + (sum_hw A_c) g³ + 1e-6)`, 0 where `g == 0`;
/// `w_c = sum_hw relu(g) alpha`.
public struct GradCAMPlusPlus: ChannelWeightedMethod {
    /// Grad-CAM++.
    public init() {}
    /// `gradcam++`.
    public var name: String { "gradcam++" }
    /// The alpha-weighted sum of the positive gradient.
    public func channelWeights(_ e: LayerEvidence) throws -> [Float] {
        let g = try e.requireGradient(for: name), activationSums = e.activationSums, size = e.positions
        return ChannelSums.sum(g.storage, channels: e.channels) { i in
            let gi = Double(g.storage[i])
            guard gi > 0 else { return 0 }
            let g2 = gi * gi
            let alpha = g2 / (2 * g2 + Double(activationSums[i / size]) * g2 * gi + 1e-6)
            return gi * alpha
        }
    }
}

/// XGrad-CAM (Fu et al.): `w_c = sum_hw (g A_c) / (sum_hw A_c + 1e-7)`.
public struct XGradCAM: ChannelWeightedMethod {
    /// XGrad-CAM.
    public init() {}
    /// `xgradcam`.
    public var name: String { "xgradcam" }
    /// The activation-weighted gradient.
    public func channelWeights(_ e: LayerEvidence) throws -> [Float] {
        let g = try e.requireGradient(for: name), a = e.activation, activationSums = e.activationSums, size = e.positions
        return ChannelSums.sum(g.storage, channels: e.channels) { i in
            Double(g.storage[i]) * Double(a.storage[i]) / (Double(activationSums[i / size]) + 1e-7)
        }
    }
}

/// HiResCAM (Draelos and Carin): `map = sum_c g_c * A_c`.
public struct HiResCAM: ActivationMapMethod {
    /// HiResCAM.
    public init() {}
    /// `hirescam`.
    public var name: String { "hirescam" }
    /// `g * A`.
    public func weightedActivations(_ e: LayerEvidence) throws -> Tensor {
        ChannelSums.zip(try e.requireGradient(for: name), e.activation) { $0 * $1 }
    }
}

/// Element-wise Grad-CAM: `map = sum_c relu(g_c * A_c)`.
public struct GradCAMElementWise: ActivationMapMethod {
    /// Element-wise Grad-CAM.
    public init() {}
    /// `gradcam-elementwise`.
    public var name: String { "gradcam-elementwise" }
    /// `relu(g * A)`.
    public func weightedActivations(_ e: LayerEvidence) throws -> Tensor {
        ChannelSums.zip(try e.requireGradient(for: name), e.activation) { max($0 * $1, 0) }
    }
}

/// LayerCAM (Jiang et al.): `map = sum_c relu(g_c) * A_c`.
public struct LayerCAM: ActivationMapMethod {
    /// LayerCAM.
    public init() {}
    /// `layercam`.
    public var name: String { "layercam" }
    /// `relu(g) * A`.
    public func weightedActivations(_ e: LayerEvidence) throws -> Tensor {
        ChannelSums.zip(try e.requireGradient(for: name), e.activation) { max($0, 0) * $1 }
    }
}

/// Eigen-CAM (Muhammad and Yeasin): the projection of `A` on its first principal component.
public struct EigenCAM: ActivationMapMethod {
    /// Eigen-CAM.
    public init() {}
    /// `eigencam`.
    public var name: String { "eigencam" }
    /// Gradient-free.
    public var usesGradients: Bool { false }
    /// Always the projection.
    public var alwaysProjects: Bool { true }
    /// `A` itself.
    public func weightedActivations(_ e: LayerEvidence) throws -> Tensor { e.activation }
}

/// Eigen-Grad-CAM: the projection of `g * A` on its first principal component.
public struct EigenGradCAM: ActivationMapMethod {
    /// Eigen-Grad-CAM.
    public init() {}
    /// `eigengradcam`.
    public var name: String { "eigengradcam" }
    /// Always the projection.
    public var alwaysProjects: Bool { true }
    /// `g * A`.
    public func weightedActivations(_ e: LayerEvidence) throws -> Tensor {
        ChannelSums.zip(try e.requireGradient(for: name), e.activation) { $0 * $1 }
    }
}

/// CAM (Zhou et al.): the classifier's weights of the class times the last spatial activations.
/// Only for a global-average-pooling + linear head; its target layer is that head's input.
public struct ClassifierWeightCAM: ChannelWeightedMethod {
    /// The head whose weights are read.
    public let head: LinearHead
    /// CAM through `head`.
    public init(head: LinearHead) { self.head = head }
    /// `cam`.
    public var name: String { "cam" }
    /// Gradient-free.
    public var usesGradients: Bool { false }
    /// Row `class` of the linear layer.
    public func channelWeights(_ e: LayerEvidence) throws -> [Float] {
        let w = head.weights
        guard w.rank == 2, w.shape[1] == e.channels, e.classIndex < w.shape[0] else {
            throw ExplainError.badShape("cam: linear weights \(w.shape) do not fit \(e.channels) channels at \(e.layer) and class \(e.classIndex)")
        }
        return Array(w.storage[(e.classIndex * e.channels)..<((e.classIndex + 1) * e.channels)])
    }
}
