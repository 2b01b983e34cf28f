import Core

/// One object a detector found: its box in the network input's pixels, its score and class, and the anchor (the
/// output column) it came from, which is what an explanation of it targets.
public struct Detection: Sendable, Equatable {
    /// Left, top, right and bottom edges, in input pixels.
    public var x1: Float, y1: Float, x2: Float, y2: Float
    public var score: Float
    public var classIndex: Int
    public var anchor: Int

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

/// Ultralytics' non-maximum suppression with its predictor's defaults: each anchor keeps its best class when that
/// score passes `confidence`, then, class by class, a box is dropped when it overlaps a higher-scoring one by more than
/// `iou`; at most `maxDetections`, highest scores first.
public struct NonMaximumSuppression: Sendable, Equatable {
    public var confidence: Float
    public var iou: Float
    public var maxDetections: Int

    public init(confidence: Float = 0.25, iou: Float = 0.7, maxDetections: Int = 300) {
        (self.confidence, self.iou, self.maxDetections) = (confidence, iou, maxDetections)
    }

    /// The detections of each image of an anchor-free head's output `[N, 4 + C, A]` (YOLOv5u, v8, 11: rows centre x,
    /// centre y, width, height in input pixels, then the C class scores, one column per anchor).
    public func detections(anchorFreeHead output: Tensor) throws -> [[Detection]] {
        guard output.rank == 3, output.shape[1] > 4 else {
            throw ExplainError.invalidOption("a detector output [N, 4 + classes, anchors] was expected, not \(output.shape)")
        }
        let (images, rows, anchors) = (output.shape[0], output.shape[1], output.shape[2])
        return (0..<images).map { image in
            let values = output.storage[(image * rows * anchors)..<((image + 1) * rows * anchors)]
            let base = values.startIndex
            func value(_ row: Int, _ anchor: Int) -> Float { values[base + row * anchors + anchor] }
            var candidates: [Detection] = []
            for anchor in 0..<anchors {
                var best = 4
                for row in 5..<rows where value(row, anchor) > value(best, anchor) { best = row }
                let score = value(best, anchor)
                guard score > confidence else { continue }
                let (cx, cy, w, h) = (value(0, anchor), value(1, anchor), value(2, anchor), value(3, anchor))
                candidates.append(Detection(x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2,
                                            score: score, classIndex: best - 4, anchor: anchor))
            }
            return suppressed(candidates)
        }
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
