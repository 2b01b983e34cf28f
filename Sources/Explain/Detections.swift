import Core

/// One object a detector found: its box in the network input's pixels, its score and class, and where
/// in the output it came from (its anchor: the output column or row), which is what an explanation of it targets.
public struct Detection: Sendable, Equatable {
    /// Left, top, right and bottom edges, in input pixels.
    public var x1: Float, y1: Float, x2: Float, y2: Float
    /// The detection's confidence (a class score, times the objectness for the original YOLOv5 head).
    public var score: Float
    /// The class detected.
    public var classIndex: Int
    /// The output column (anchor-free head) or row (anchor-based and NMS-free heads) of the detection.
    public var anchor: Int

    /// A detection with the given parts.
    public init(x1: Float, y1: Float, x2: Float, y2: Float, score: Float, classIndex: Int, anchor: Int) {
        (self.x1, self.y1, self.x2, self.y2, self.score, self.classIndex, self.anchor) = (x1, y1, x2, y2, score, classIndex, anchor)
    }

    var area: Float { max(0, x2 - x1) * max(0, y2 - y1) }

    /// Intersection over union with `other` (0 when both are empty).
    func overlap(_ other: Detection) -> Float {
        let width = max(0, min(x2, other.x2) - max(x1, other.x1)), height = max(0, min(y2, other.y2) - max(y1, other.y1))
        let intersection = width * height
        let union = area + other.area - intersection
        return union > 0 ? intersection / union : 0
    }
}

/// The layout of a YOLO detector's output, per image.
public enum DetectorHead: String, Sendable, Equatable, CaseIterable {
    /// Ultralytics' anchor-free head (YOLOv5u, v8, 11, and the box part of their -seg and -pose models): `[4 + C (+ extra), A]`,
    /// rows centre x, centre y, width, height in input pixels, then the C class scores, one column per anchor point.
    case anchorFree = "anchor-free"
    /// The original YOLOv5 head: `[A, 5 + C]`, one row per anchor box: centre x, centre y, width, height, objectness,
    /// then the C class probabilities; a detection's score is objectness times class probability.
    case anchorBased = "anchor-based"
    /// An NMS-free end-to-end head (YOLOv10, ultralytics' end2end exports): `[K, 6]`, rows x1, y1, x2, y2, score, class.
    case nmsFree = "nms-free"

    /// The head whose layout `output` (one image's, `[a, b]`) has for a `inputHeight` x `inputWidth` input, when one does:
    /// the number of anchors must be that of a YOLO grid of strides 8, 16, 32 (and 64 for P6 models) over the input
    /// (three anchor boxes per cell for the anchor-based head); an NMS-free head is `[K, 6]` otherwise.
    /// `classes` (the model's named classes, when it names them) must fit the rows.
    public static func recognise(_ output: [Int], inputHeight: Int, inputWidth: Int, classes: Int? = nil) -> DetectorHead? {
        guard output.count == 2 else { return nil }
        let grids = [[8, 16, 32], [8, 16, 32, 64]].map { strides in
            strides.reduce(0) { $0 + ((inputHeight + $1 - 1) / $1) * ((inputWidth + $1 - 1) / $1) }
        }
        let (a, b) = (output[0], output[1])
        if grids.contains(b), a > 4, a >= 4 + (classes ?? 1) { return .anchorFree }
        if grids.contains(where: { 3 * $0 == a }), b > 5, b >= 5 + (classes ?? 1) { return .anchorBased }
        if b == 6, a >= 1 { return .nmsFree }
        return nil
    }

    /// The number of class scores in an output of this layout `[a, b]`: `classes` when the model names them (the
    /// rows after them, mask coefficients or keypoints, are not scores), else every row after the box.
    public func classCount(_ output: [Int], named classes: Int?) -> Int {
        switch self {
        case .anchorFree: min(classes ?? Int.max, output[0] - 4)
        case .anchorBased: min(classes ?? Int.max, output[1] - 5)
        case .nmsFree: classes ?? 0
        }
    }

    /// What explaining `detection` targets in one image's output `output` `[a, b]`: its class score at its anchor
    /// (times its objectness for the anchor-based head; its score for the NMS-free head).
    public func target(of detection: Detection, output: [Int]) -> OutputTarget {
        switch self {
        case .anchorFree:
            return OutputTarget(element: (4 + detection.classIndex) * output[1] + detection.anchor,
                                classIndex: detection.classIndex, detection: detection)
        case .anchorBased:
            let row = detection.anchor * output[1]
            return OutputTarget(elements: [row + 4, row + 5 + detection.classIndex], weights: [1, 1], combination: .product,
                                classIndex: detection.classIndex, detection: detection)
        case .nmsFree:
            return OutputTarget(element: detection.anchor * 6 + 4, classIndex: detection.classIndex, detection: detection)
        }
    }
}

/// Non-maximum suppression with ultralytics' predictor's defaults: each anchor keeps its best class when that
/// score passes `confidence`, then, class by class, a box is dropped when it overlaps a higher-scoring one by more than
/// `iou`; at most `maxDetections`, highest scores first. An NMS-free head's rows are only thresholded.
public struct NonMaximumSuppression: Sendable, Equatable {
    /// Candidates scoring at or below this are dropped.
    public var confidence: Float
    /// A box overlapping a kept box of its class by more than this is dropped.
    public var iou: Float
    /// The most detections kept per image.
    public var maxDetections: Int

    /// Suppression with the given thresholds (ultralytics' defaults: 0.25, 0.7, 300).
    public init(confidence: Float = 0.25, iou: Float = 0.7, maxDetections: Int = 300) {
        (self.confidence, self.iou, self.maxDetections) = (confidence, iou, maxDetections)
    }

    /// The detections of each image of an anchor-free head's output `[N, 4 + C, A]`.
    public func detections(anchorFreeHead output: Tensor) throws -> [[Detection]] {
        guard output.rank == 3, output.shape[1] > 4 else {
            throw ExplainError.invalidOption("a detector output [N, 4 + classes, anchors] was expected, not \(output.shape)")
        }
        return (0..<output.shape[0]).map { detections(output.slice($0), head: .anchorFree, classes: output.shape[1] - 4) }
    }

    /// The detections in one image's output `output` of layout `head`, with `classes` class scores.
    public func detections(_ output: Tensor, head: DetectorHead, classes: Int) -> [Detection] {
        let values = output.storage
        guard output.rank == 2, classes >= 1 || head == .nmsFree else { return [] }
        switch head {
        case .anchorFree:
            let anchors = output.shape[1]
            func value(_ row: Int, _ anchor: Int) -> Float { values[row * anchors + anchor] }
            var candidates: [Detection] = []
            for anchor in 0..<anchors {
                var best = 4
                for row in 5..<(4 + classes) where value(row, anchor) > value(best, anchor) { best = row }
                let score = value(best, anchor)
                guard score > confidence else { continue }
                candidates.append(Self.centred(value(0, anchor), value(1, anchor), value(2, anchor), value(3, anchor),
                                               score: score, classIndex: best - 4, anchor: anchor))
            }
            return suppressed(candidates)
        case .anchorBased:
            // YOLOv5's own rule: objectness first, then each class probability times it.
            let width = output.shape[1]
            var candidates: [Detection] = []
            for anchor in 0..<output.shape[0] {
                let row = anchor * width
                let objectness = values[row + 4]
                guard objectness > confidence else { continue }
                var best = 0
                for c in 1..<classes where values[row + 5 + c] > values[row + 5 + best] { best = c }
                let score = values[row + 5 + best] * objectness
                guard score > confidence else { continue }
                candidates.append(Self.centred(values[row], values[row + 1], values[row + 2], values[row + 3],
                                               score: score, classIndex: best, anchor: anchor))
            }
            return suppressed(candidates)
        case .nmsFree:
            var kept: [Detection] = []
            for k in 0..<output.shape[0] where values[k * 6 + 4] > confidence && kept.count < maxDetections {
                let row = k * 6
                kept.append(Detection(x1: values[row], y1: values[row + 1], x2: values[row + 2], y2: values[row + 3],
                                      score: values[row + 4], classIndex: Int(values[row + 5].rounded()), anchor: k))
            }
            return kept
        }
    }

    private static func centred(_ cx: Float, _ cy: Float, _ w: Float, _ h: Float, score: Float, classIndex: Int, anchor: Int) -> Detection {
        Detection(x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score: score, classIndex: classIndex, anchor: anchor)
    }

    /// Greedy class-wise suppression, highest score first (ties keep the earlier anchor).
    func suppressed(_ candidates: [Detection]) -> [Detection] {
        let ordered = candidates.enumerated().sorted { a, b in
            a.element.score != b.element.score ? a.element.score > b.element.score : a.offset < b.offset
        }.map(\.element)
        var kept: [Detection] = []
        for candidate in ordered where kept.count < maxDetections {
            if !kept.contains(where: { $0.classIndex == candidate.classIndex && $0.overlap(candidate) > iou }) {
                kept.append(candidate)
            }
        }
        return kept
    }
}

/// A detector's detections as targets: each image's output decoded and suppressed, and each of its `limit`
/// highest-scoring detections explained for its own score.
public struct DetectionTarget: ExplanationTarget, Equatable {
    /// The output's layout.
    public var head: DetectorHead
    /// The number of class scores per anchor.
    public var classes: Int
    /// The suppression.
    public var suppression: NonMaximumSuppression
    /// The most detections explained per image (`--max-detections`).
    public var limit: Int
    /// Only detections of this class, when given.
    public var onlyClass: Int?

    /// Targets for the detections of a `head` output with `classes` classes (of class `onlyClass` alone, when given).
    public init(head: DetectorHead, classes: Int, suppression: NonMaximumSuppression = NonMaximumSuppression(), limit: Int = 5,
                onlyClass: Int? = nil) {
        (self.head, self.classes, self.suppression, self.limit, self.onlyClass) = (head, classes, suppression, limit, onlyClass)
    }

    /// One target per kept detection, highest score first.
    public func resolve(_ output: Tensor, labels: ClassLabels) throws -> [OutputTarget] {
        guard output.rank == 2 else {
            throw ExplainError.invalidOption("a \(head.rawValue) detector output was expected, not \(output.shape)")
        }
        return suppression.detections(output, head: head, classes: classes)
            .filter { onlyClass == nil || $0.classIndex == onlyClass }
            .prefix(max(limit, 0))
            .map { head.target(of: $0, output: output.shape) }
    }
}

extension Heatmap {
    /// pytorch-grad-cam's `renormalize_cam_in_bounding_boxes` for one map per detection: each map min-max normalised
    /// within its own box (edges truncated to whole pixels, as its tutorial's integer boxes), zero outside every
    /// box, overlaps keeping the larger value; then the whole min-max normalised again (`scale_cam_image`).
    public static func renormalisedInBoxes(_ explanations: [Explanation], width: Int, height: Int) -> Heatmap {
        renormalisedInBoxes(explanations.compactMap { e in e.detection.map { (e.map, $0) } }, width: width, height: height)
    }

    /// The same for maps paired with their detections.
    public static func renormalisedInBoxes(_ maps: [(map: Heatmap, detection: Detection)], width: Int, height: Int) -> Heatmap {
        var combined = [Float](repeating: 0, count: width * height)
        for (map, detection) in maps where map.width == width && map.height == height {
            let x0 = max(0, min(width, Int(max(0, detection.x1)))), x1 = max(0, min(width, Int(max(0, detection.x2))))
            let y0 = max(0, min(height, Int(max(0, detection.y1)))), y1 = max(0, min(height, Int(max(0, detection.y2))))
            guard x0 < x1, y0 < y1 else { continue }
            var low = Float.infinity, high = -Float.infinity
            for y in y0..<y1 {
                for x in x0..<x1 { low = min(low, map.values[y * width + x]) }
            }
            for y in y0..<y1 {
                for x in x0..<x1 { high = max(high, map.values[y * width + x] - low) }
            }
            for y in y0..<y1 {
                for x in x0..<x1 {
                    let p = y * width + x
                    combined[p] = max(combined[p], (map.values[p] - low) / (high + 1e-7))
                }
            }
        }
        let low = combined.min() ?? 0
        let high = (combined.max() ?? 0) - low
        return Heatmap(Tensor(shape: [height, width], storage: combined.map { ($0 - low) / (high + 1e-7) }))
    }
}
