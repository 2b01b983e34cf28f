import Core

/// One image's explanation.
public struct Explanation: Sendable, Equatable {
    /// The class explained.
    public var classIndex: Int
    /// The score explained (for a classifier, that class's logit).
    public var score: Float
    /// The network's output for the image (a classifier's logits `[K]`), from the explanation's own forward pass.
    public var logits: [Float]
    /// What was explained: the output elements whose score the map explains, and the detection they belong to.
    public var target: OutputTarget
    /// The target layers, in the order given (empty for the input-gradient methods).
    public var layers: [String]
    /// Per target layer, the map at feature resolution `[h,w]` after the ReLU, before normalisation.
    /// Saliency has one `[H,W]` entry (unnormalised), guided backprop and guided Grad-CAM one `[3,H,W]`.
    public var raws: [Tensor]
    /// The final map at input size (`H x W`), in [0, 1]. For guided backprop and guided Grad-CAM it
    /// is the min-max of `max_channels |raw|`.
    public var map: Heatmap

    /// The detection explained, for a detector.
    public var detection: Detection? { target.detection }

    /// The first (usually only) layer's raw map.
    public var raw: Tensor { raws.first ?? Tensor(shape: [0]) }

    /// An explanation with the given parts.
    public init(classIndex: Int, score: Float, logits: [Float], layers: [String], raws: [Tensor], map: Heatmap,
                target: OutputTarget? = nil) {
        self.target = target ?? OutputTarget(element: classIndex, classIndex: classIndex)
        self.classIndex = classIndex
        self.score = score
        self.logits = logits
        self.layers = layers
        self.raws = raws
        self.map = map
    }

    /// A `[3,H,W]` gradient image scaled for viewing as pytorch-grad-cam's `deprocess_image` does:
    /// standardised, times 0.1, plus 0.5, clipped to [0, 1] (the CLI multiplies by 255).
    public static func viewable(_ gradient: Tensor) -> Tensor {
        let values = gradient.storage
        guard !values.isEmpty else { return gradient }
        let count = Double(values.count)
        let mean = values.reduce(0.0) { $0 + Double($1) } / count
        let variance = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / count
        let scale = 0.1 / (variance.squareRoot() + 1e-5)
        return Tensor(shape: gradient.shape,
                      storage: values.map { Float(min(max((Double($0) - mean) * scale + 0.5, 0), 1)) })
    }
}

/// The methods by command-line name.
public enum ExplanationMethod: String, CaseIterable, Sendable {
    /// CAM (Zhou et al.), for global-average-pooling + linear heads.
    case cam
    /// Grad-CAM.
    case gradcam
    /// Grad-CAM++.
    case gradcamPlusPlus = "gradcam++"
    /// XGrad-CAM.
    case xgradcam
    /// HiResCAM.
    case hirescam
    /// Element-wise Grad-CAM.
    case gradcamElementwise = "gradcam-elementwise"
    /// LayerCAM.
    case layercam
    /// Score-CAM.
    case scorecam
    /// Ablation-CAM.
    case ablationcam
    /// Eigen-CAM.
    case eigencam
    /// Eigen-Grad-CAM.
    case eigengradcam
    /// Vanilla saliency: `max_colour |d logit / d input|`.
    case saliency
    /// Guided backpropagation.
    case guidedBackprop = "guided-backprop"
    /// Guided backpropagation times the upsampled Grad-CAM map.
    case guidedGradcam = "guided-gradcam"

    /// The layer-based method object, or nil for `cam` (which needs the network's head) and the
    /// input-gradient methods.
    public func activationMapMethod(batchSize: Int? = nil) -> (any ActivationMapMethod)? {
        switch self {
        case .gradcam: GradCAM()
        case .gradcamPlusPlus: GradCAMPlusPlus()
        case .xgradcam: XGradCAM()
        case .hirescam: HiResCAM()
        case .gradcamElementwise: GradCAMElementWise()
        case .layercam: LayerCAM()
        case .scorecam: ScoreCAM(batchSize: batchSize ?? 16)
        case .ablationcam: AblationCAM(batchSize: batchSize ?? 32)
        case .eigencam: EigenCAM()
        case .eigengradcam: EigenGradCAM()
        case .cam, .saliency, .guidedBackprop, .guidedGradcam: nil
        }
    }
}
