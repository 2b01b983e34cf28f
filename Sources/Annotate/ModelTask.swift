import Core
import Engine
import Explain

/// What a model does, recognised from its output's shape (and the class names it carries): what its
/// explanations target and how frames are prepared for it.
public enum ModelTask: Sendable, Equatable {
    /// `[N, K]` class scores.
    case classifier(classes: Int)
    /// A YOLO detector's boxes and class scores (the box part of -seg and -pose models too).
    case detector(DetectorHead, classes: Int)
    /// Semantic segmentation: `[N, C, H, W]` class scores per pixel of the input.
    case segmenter(classes: Int)

    /// The task of `network` with its first output, `namedClasses` being the number of classes its metadata names; nil
    /// for an output none of the three has.
    public init?(network: Network, namedClasses: Int?) {
        guard let shape = network.layers.last(where: { $0.name == network.outputName })?.shape, shape.count >= 2, shape[0] == 1 else { return nil }
        let (height, width) = (network.inputShape[2], network.inputShape[3])
        let perImage = Array(shape.dropFirst())
        if perImage.count == 1 {
            self = .classifier(classes: perImage[0])
        } else if let head = DetectorHead.recognise(perImage, inputHeight: height, inputWidth: width, classes: namedClasses) {
            self = .detector(head, classes: head.classCount(perImage, named: namedClasses))
        } else if perImage.count == 3, perImage[1] == height, perImage[2] == width, perImage[0] >= 1 {
            self = .segmenter(classes: perImage[0])
        } else {
            return nil
        }
    }

    /// The task of `network`, its named classes being `labels` (none when it names none).
    public init?(network: Network, labels: ClassLabels) {
        self.init(network: network, namedClasses: labels.names.isEmpty ? nil : labels.names.count)
    }

    /// The error for a model that is none of them, naming its output and its shape.
    public static func unsupported(_ network: Network) -> ExplainError {
        let shape = network.layers.last { $0.name == network.outputName }?.shape ?? []
        return ExplainError.invalidOption(
            "the model's output '\(network.outputName)' has shape \(shape); camvid explains classifiers [N, classes], YOLO detectors "
                + "([N, 4 + classes, anchors], [N, anchors, 5 + classes], [N, K, 6]) and segmenters [N, classes, H, W] at the input's size")
    }

    /// What explaining `target` means for this task: the class itself (classifier); the detections, all or only those of
    /// the class when one is named (detector); the class's predicted region (segmenter).
    public func explanationTarget(_ target: ClassTarget, labels: ClassLabels, detection: DetectionSettings) throws -> any ExplanationTarget {
        switch self {
        case .classifier:
            return target
        case let .detector(head, classes):
            return DetectionTarget(head: head, classes: classes, suppression: detection.suppression, limit: detection.maxDetections,
                                   onlyClass: try labels.fixedClass(target, classes: classes))
        case .segmenter:
            return SemanticSegmentationTarget(category: target)
        }
    }

    /// What it is, in words (`a YOLO detector (anchor-free head, 80 classes)`).
    public var description: String {
        switch self {
        case let .classifier(classes): "a classifier of \(classes) classes"
        // An NMS-free head's output does not hold its class count (0 here): only the names a model carries do.
        case let .detector(head, classes): "a YOLO detector (\(head.rawValue) head, \(classes == 0 ? "classes not named" : "\(classes) classes"))"
        case let .segmenter(classes): "a segmenter of \(classes) classes"
        }
    }

    /// A detector's.
    public var isDetector: Bool {
        if case .detector = self { return true }
        return false
    }

    /// The number of classes.
    public var classes: Int {
        switch self {
        case let .classifier(classes), let .detector(_, classes), let .segmenter(classes): classes
        }
    }
}

/// `--confidence`, `--iou`, `--max-detections`: which detections a detector's frames explain.
public struct DetectionSettings: Sendable, Equatable {
    /// The suppression (ultralytics' defaults).
    public var suppression: NonMaximumSuppression
    /// The most detections explained per frame, highest scores first.
    public var maxDetections: Int

    /// Settings; by default ultralytics' thresholds and five detections a frame.
    public init(suppression: NonMaximumSuppression = NonMaximumSuppression(), maxDetections: Int = 5) {
        self.suppression = suppression
        self.maxDetections = maxDetections
    }
}
