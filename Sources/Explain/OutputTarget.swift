import Core

/// The score an explanation is about: a weighted sum of elements of one image's network output
/// (pytorch-grad-cam's target callables, as data). A classifier's class is one logit; a detection
/// is its class score at its anchor; a segmented class is its scores over the pixels it wins.
public struct OutputTarget: Sendable, Equatable {
    /// Positions in one image's output (its batch dimension dropped), flattened in C order.
    public var elements: [Int]
    /// One weight per element.
    public var weights: [Float]
    /// How the weighted elements combine into the score.
    public var combination: Combination
    /// The class the score belongs to, for labels and records.
    public var classIndex: Int
    /// The detection the score belongs to, for a detector.
    public var detection: Detection?

    /// How weighted elements make a score.
    public enum Combination: Sendable, Equatable {
        /// `sum_i w_i · x_i`.
        case sum
        /// `prod_i w_i · x_i` (the original YOLOv5 head's objectness times class probability).
        case product
    }

    /// The sum (or product) of `weights[i] · output[elements[i]]`.
    public init(elements: [Int], weights: [Float], combination: Combination = .sum, classIndex: Int, detection: Detection? = nil) {
        precondition(elements.count == weights.count, "one weight per element")
        self.elements = elements
        self.weights = weights
        self.combination = combination
        self.classIndex = classIndex
        self.detection = detection
    }

    /// One element with weight 1.
    public init(element: Int, classIndex: Int, detection: Detection? = nil) {
        self.init(elements: [element], weights: [1], classIndex: classIndex, detection: detection)
    }

    /// The score in one image's output values (summed in order, in Float, as PyTorch's `sum` of a product).
    public func score(in output: ArraySlice<Float>) -> Float {
        switch combination {
        case .sum:
            var total: Float = 0
            for (element, weight) in zip(elements, weights) { total += weight * output[output.startIndex + element] }
            return total
        case .product:
            var total: Float = 1
            for (element, weight) in zip(elements, weights) { total *= weight * output[output.startIndex + element] }
            return total
        }
    }

    /// The score of each row of `outputs` `[M, ...]`, each row one image's output.
    public func scores(ofRows outputs: Tensor) throws -> [Float] {
        let rows = outputs.shape.first ?? 0
        let size = rows > 0 ? outputs.count / rows : 0
        guard (elements.max() ?? -1) < size else {
            throw ExplainError.badShape("outputs \(outputs.shape) have no element \(elements.max() ?? 0) per image")
        }
        return (0..<rows).map { score(in: outputs.storage[($0 * size)..<(($0 + 1) * size)]) }
    }

    /// Adds the score's gradient with respect to row `row` of `output` into the same row of `seed` (the gradient
    /// seed of the whole batch's output): the weights of a sum; for a product, each weight times the other factors.
    public func placeGradient(in seed: inout Tensor, row: Int, output: Tensor) {
        let size = seed.count / max(seed.shape[0], 1)
        for (i, (element, weight)) in zip(elements, weights).enumerated() {
            var gradient = weight
            if combination == .product {
                for (j, (other, otherWeight)) in zip(elements, weights).enumerated() where j != i {
                    gradient *= otherWeight * output.storage[row * size + other]
                }
            }
            seed.storage[row * size + element] += gradient
        }
    }
}

/// What an explanation is about, decided from each image's own output: a class (`ClassTarget`), an
/// element or weighted elements (`OutputTarget`, `ElementTarget`), a segmented class
/// (`SemanticSegmentationTarget`), a detector's detections (`DetectionTarget`).
public protocol ExplanationTarget: Sendable {
    /// The scores to explain in one image's output `output` (its batch dimension dropped), in order:
    /// usually one; a detector's target gives one per kept detection, possibly none.
    func resolve(_ output: Tensor, labels: ClassLabels) throws -> [OutputTarget]
}

extension OutputTarget: ExplanationTarget {
    /// Itself, once its elements are known to lie in the output.
    public func resolve(_ output: Tensor, labels: ClassLabels) throws -> [OutputTarget] {
        if let bad = elements.first(where: { $0 < 0 || $0 >= output.count }) {
            throw ExplainError.invalidOption("target element \(bad) is outside the output \(output.shape)")
        }
        return [self]
    }
}

extension ClassTarget: ExplanationTarget {
    /// The class's logit, for a classifier's output `[K]`.
    public func resolve(_ output: Tensor, labels: ClassLabels) throws -> [OutputTarget] {
        guard output.rank == 1 else {
            throw ExplainError.invalidOption("a class target needs a classifier's output [N, classes]; this output is [N, "
                                             + "\(output.shape.map(String.init).joined(separator: ", "))] (name an element instead)")
        }
        let k = try labels.resolve(self, logits: output.storage)
        return [OutputTarget(element: k, classIndex: k)]
    }
}

/// One element of each image's output by its indices (`camvid tensor --target 4,117`: for a detector's
/// `[N, 4 + C, A]` output, class 0's score at anchor 117).
public struct ElementTarget: ExplanationTarget, Equatable {
    /// Indices into one image's output, one per dimension after the batch.
    public var indices: [Int]
    /// The class the element scores; nil takes the first index (a classifier's class).
    public var classIndex: Int?

    /// The element at `indices`, scoring class `classIndex`.
    public init(indices: [Int], classIndex: Int? = nil) {
        self.indices = indices
        self.classIndex = classIndex
    }

    /// The element's position.
    public func resolve(_ output: Tensor, labels: ClassLabels) throws -> [OutputTarget] {
        guard indices.count == output.rank else {
            throw ExplainError.invalidOption("target \(indices.map(String.init).joined(separator: ",")) has \(indices.count) indices; "
                                             + "each image's output is \(output.shape)")
        }
        var position = 0
        for (index, size) in zip(indices, output.shape) {
            guard index >= 0, index < size else {
                throw ExplainError.invalidOption("target \(indices.map(String.init).joined(separator: ",")) is outside each image's output \(output.shape)")
            }
            position = position * size + index
        }
        return [OutputTarget(element: position, classIndex: classIndex ?? indices.first ?? 0)]
    }
}

/// pytorch-grad-cam's `SemanticSegmentationTarget` for a segmenter's output `[C, H, W]`: the sum of class
/// `category`'s scores over the pixels where it is the highest-scoring class.
public struct SemanticSegmentationTarget: ExplanationTarget, Equatable {
    /// The class: an index or a label; `top1` is the class predicted at the most pixels (the lowest index on a tie).
    public var category: ClassTarget

    /// The target of class `category`'s predicted region.
    public init(category: ClassTarget) {
        self.category = category
    }

    /// The class's scores over its pixels (possibly none: the score is then 0 and its gradient zero).
    public func resolve(_ output: Tensor, labels: ClassLabels) throws -> [OutputTarget] {
        guard output.rank == 3 else {
            throw ExplainError.invalidOption("a segmentation target needs a segmenter's output [N, classes, H, W], not [N, "
                                             + "\(output.shape.map(String.init).joined(separator: ", "))]")
        }
        let (classes, plane) = (output.shape[0], output.shape[1] * output.shape[2])
        // The winning class of each pixel (NumPy's argmax: the first of equal maxima).
        var winner = [Int](repeating: 0, count: plane)
        var pixels = [Int](repeating: 0, count: classes)
        output.storage.withUnsafeBufferPointer { values in
            for p in 0..<plane {
                var best = 0
                for c in 1..<max(classes, 1) where values[c * plane + p] > values[best * plane + p] { best = c }
                winner[p] = best
                pixels[best] += 1
            }
        }
        let category = try labels.fixedClass(self.category, classes: classes)
            ?? pixels.indices.max { pixels[$0] != pixels[$1] ? pixels[$0] < pixels[$1] : $0 > $1 } ?? 0
        let region = winner.indices.filter { winner[$0] == category }
        return [OutputTarget(elements: region.map { category * plane + $0 }, weights: [Float](repeating: 1, count: region.count),
                             classIndex: category)]
    }
}
