import Core
import Engine
import Explain
import Render

/// Explains frames with a network and a method: each batch of prepared frames through Explain's
/// `Explainer` on the engine at once, each final map put back in frame coordinates. A classifier's
/// frame is labelled `name 87.3%` (the softmax probability of the explained class, from the batch's
/// own logits); a detector's frame carries its explained detections, each map normalised within its
/// box; a segmenter's is labelled with the class and the share of the picture it covers.
public struct NetworkExplainer: Sendable {
    /// The method.
    public let method: ExplanationMethod
    /// The class explained: `top1` decides per frame; an index or a label holds for the whole video
    /// (for a detector: only detections of that class).
    public let target: ClassTarget
    /// What the network does.
    public let task: ModelTask
    /// What each frame's explanations target in the network's output.
    private let explanationTarget: any ExplanationTarget
    /// The class names (for labels and `.label` targets).
    public let labels: ClassLabels
    /// Threads each network call may use (`NetworkThreads`); nil leaves the engine's default.
    public let threads: Int?
    /// Scores each explanation's faithfulness (`--metrics`); nil for none.
    public let faithfulness: FaithfulnessEvaluator?
    private let explainer: Explainer<EngineNetwork>

    /// An explainer of `network` by `method`; throws when the network is no classifier, the method
    /// cannot explain it (e.g. `cam` without a linear head), a layer does not exist, or `target`
    /// names no class. With `metrics`, each explanation is scored by them (the explained class's probability).
    public init(network: Network, method: ExplanationMethod, options: ExplainerOptions = ExplainerOptions(),
                target: ClassTarget = .top1, labels: ClassLabels, threads: Int? = nil,
                detection: DetectionSettings = DetectionSettings(), metrics: FaithfulnessSettings? = nil) throws {
        self.method = method
        // The metrics' imputations use the threads the network may use.
        faithfulness = metrics.map { settings in
            var settings = settings
            if let threads { settings.threads = max(1, threads) }
            return FaithfulnessEvaluator(settings)
        }
        self.target = target
        self.labels = labels
        self.threads = threads.map { max(1, $0) }
        guard let task = ModelTask(network: network, labels: labels) else {
            throw ModelTask.unsupported(network)
        }
        self.task = task
        explainer = try Explainer(network: EngineNetwork(network), method: method, options: options, labels: labels)
        try network.requireLayers(explainer.layers)
        if case .index(let index) = target, index < 0 || index >= task.classes {
            throw ExplainError.classIndexOutOfRange(index, classes: task.classes)
        }
        if case .label(let label) = target { _ = try labels.index(of: label) }
        explanationTarget = try task.explanationTarget(target, labels: labels, detection: detection)
    }

    /// The target layers the method explains (empty for the input-gradient methods).
    public var layers: [String] { explainer.layers }

    /// Explains `frames` (each prepared for this network) as one batch.
    public func explain(_ frames: inout [Frame]) throws {
        let explanations = try self.explanations(of: Self.batch(frames), frames: frames)
        for i in frames.indices { frames[i].explanation = explanations[i] }
    }

    /// The network inputs of `frames` as one batch `[N,3,h,w]`.
    public static func batch(_ frames: [Frame]) throws -> Tensor {
        let tensors = try frames.map { frame -> Tensor in
            guard let input = frame.input else {
                throw ExplainError.missingTensor("frame \(frame.index) was not prepared for the network")
            }
            return input.tensor
        }
        return tensors.count == 1 ? tensors[0] : Tensor.concatenate(tensors)
    }

    /// One explanation per frame of `batch`, its map placed on the frame.
    func explanations(of batch: Tensor, frames: [Frame]) throws -> [FrameExplanation] {
        try timedExplanations(of: batch, frames: frames).explanations
    }

    /// One explanation per frame of `batch` (the frames' inputs as one tensor), its map placed on the frame, with
    /// the time the method took and the time its metrics took.
    public func timedExplanations(of batch: Tensor, frames: [Frame]) throws
        -> (explanations: [FrameExplanation], explaining: Duration, scoring: Duration) {
        if let threads { NetworkThreads.limitCallingThread(to: threads) }
        let clock = ContinuousClock()
        var explained: [[Explanation]] = []
        let explaining = try clock.measure { explained = try explainer.explanations(of: batch, for: [explanationTarget]) }
        var scoring = Duration.zero
        let results = try zip(frames, explained).enumerated().map { i, pair in
            let (frame, explanations) = pair
            guard let geometry = frame.input?.geometry else {
                throw ExplainError.missingTensor("frame \(frame.index) was not prepared for the network")
            }
            var result: FrameExplanation
            switch task {
            case .classifier:
                guard let explanation = explanations.first else { throw ExplainError.invalidOption("frame \(frame.index): no class explained") }
                let probabilities = softmax(explanation.logits)
                let k = explanation.classIndex
                let probability = probabilities.indices.contains(k) ? probabilities[k] : 0
                result = FrameExplanation(
                    heatmap: geometry.frameMap(explanation.map),
                    label: LabelStyle.text(className: labels.name(of: k), probability: probability),
                    classIndex: k, probabilities: probabilities, method: method.rawValue)
            case .detector:
                result = detectionExplanation(explanations, geometry: geometry)
            case .segmenter:
                guard let explanation = explanations.first else { throw ExplainError.invalidOption("frame \(frame.index): no class explained") }
                let k = explanation.classIndex
                let share = Float(explanation.target.elements.count) / Float(max(1, geometry.inputWidth * geometry.inputHeight))
                result = FrameExplanation(heatmap: geometry.frameMap(explanation.map),
                                          label: "\(labels.name(of: k)) \(LabelStyle.percent(share)) of the picture",
                                          classIndex: k, method: method.rawValue)
            }
            // A detector's frame has one map per detection: its metrics are not scored (one score per frame).
            if !task.isDetector, let explanation = explanations.first {
                let started = clock.now
                result.metrics = try metrics(of: explanation, input: batch.slice(i))
                scoring += clock.now - started
            }
            return result
        }
        return (results, explaining, scoring)
    }

    /// The faithfulness of `explanation` of `input` `[3,h,w]` (its map at the input's resolution), nil without `--metrics`.
    public func metrics(of explanation: Explanation, input: Tensor) throws -> FaithfulnessScores? {
        try faithfulness.map { try explainer.network.network.faithfulness(of: explanation, input: input, evaluator: $0) }
    }

    /// A detector's frame: each detection in frame pixels with where its own map peaks, and the maps combined, each
    /// normalised within its box (pytorch-grad-cam's `renormalize_cam_in_bounding_boxes`).
    private func detectionExplanation(_ explanations: [Explanation], geometry: ModelInputGeometry) -> FrameExplanation {
        let explained = explanations.compactMap { explanation in explanation.detection.map { (map: explanation.map, detection: $0) } }
        let (width, height) = (Double(geometry.frameWidth), Double(geometry.frameHeight))
        let detections = explained.map { map, detection -> FrameDetection in
            let (x1, y1) = geometry.framePoint(x: Double(detection.x1), y: Double(detection.y1))
            let (x2, y2) = geometry.framePoint(x: Double(detection.x2), y: Double(detection.y2))
            let peak = map.values.indices.max { map.values[$0] < map.values[$1] }.map { map.values.firstIndex(of: map.values[$0]) ?? $0 } ?? 0
            let (peakX, peakY) = geometry.framePoint(x: Double(peak % max(map.width, 1)) + 0.5, y: Double(peak / max(map.width, 1)) + 0.5)
            return FrameDetection(x1: min(max(x1, 0), width), y1: min(max(y1, 0), height), x2: min(max(x2, 0), width), y2: min(max(y2, 0), height),
                                  classIndex: detection.classIndex, name: labels.name(of: detection.classIndex), score: detection.score,
                                  anchor: detection.anchor, peakX: min(max(peakX, 0), width), peakY: min(max(peakY, 0), height))
        }
        let combined = explained.isEmpty ? nil
            : geometry.frameMap(Heatmap.renormalisedInBoxes(explanations, width: geometry.inputWidth, height: geometry.inputHeight))
        var frame = FrameExplanation(heatmap: combined, method: method.rawValue)
        frame.detections = detections
        return frame
    }
}

/// `--grid`: the same frame explained several ways (methods, classes), one tile each, in reading
/// order (left to right, top to bottom).
public struct GridExplainer: Sendable {
    /// One explainer per tile.
    public let tiles: [NetworkExplainer]

    /// A grid of `tiles`; nil when there are none.
    public init?(tiles: [NetworkExplainer]) {
        guard !tiles.isEmpty else { return nil }
        self.tiles = tiles
    }

    /// Per frame: the first tile's explanation, carrying every tile's (labelled with its method).
    public func explain(_ frames: inout [Frame]) throws {
        let batch = try NetworkExplainer.batch(frames)
        let perTile = try tiles.map { tile in
            try tile.explanations(of: batch, frames: frames).map { explanation -> FrameExplanation in
                var labelled = explanation
                // A detector's tile has no label of its own (its boxes carry theirs): the method names it.
                labelled.label = explanation.label.map { "\(tile.method.rawValue): \($0)" } ?? tile.method.rawValue
                return labelled
            }
        }
        for i in frames.indices {
            var combined = perTile[0][i]
            combined.tiles = perTile.map { $0[i] }
            frames[i].explanation = combined
        }
    }
}

extension Network {
    /// Throws, naming the first, unless every one of `names` is a tensor the network computes.
    public func requireLayers(_ names: [String]) throws {
        let known = Set(layers.map(\.name))
        for name in names where !known.contains(name) {
            throw ExplainError.invalidOption("the model has no layer '\(name)' (camvid layers lists them)")
        }
    }

    /// The score the faithfulness metrics read for a classifier's class: the softmax probability of `classIndex` for
    /// each image of `batch` (pytorch-grad-cam's `ClassifierOutputSoftmaxTarget`, torchcam's `logits_fn=softmax`).
    public func classProbabilities(of batch: Tensor, classIndex: Int) throws -> [Float] {
        let logits = try forward(batch).logits
        guard logits.rank == 2, logits.shape[0] == batch.shape[0], logits.shape[1] > classIndex, classIndex >= 0 else {
            throw ExplainError.badShape("logits \(logits.shape) hold no class \(classIndex) for \(batch.shape[0]) images")
        }
        return (0..<logits.shape[0]).map { softmax(logits.slice($0).storage)[classIndex] }
    }

    /// `explanation` of `input` `[3,h,w]` scored by `evaluator` on the explained class's probability; the score of
    /// the input itself comes from the explanation's own logits.
    /// A model that is no classifier (a segmenter) is scored by the explanation's own target (its class's scores over
    /// its region), the perturbed inputs run one at a time when the graph runs only that.
    public func faithfulness(of explanation: Explanation, input: Tensor, evaluator: FaithfulnessEvaluator) throws -> FaithfulnessScores {
        let k = explanation.classIndex
        guard classCount != nil else {
            let target = explanation.target
            return try evaluator.evaluate(input: input, map: explanation.map, before: target.score(in: explanation.logits[...])) { batch in
                try runnableBatches(batch).flatMap { try target.scores(ofRows: forward($0).logits) }
            }
        }
        let probabilities = softmax(explanation.logits)
        return try evaluator.evaluate(input: input, map: explanation.map, before: probabilities.indices.contains(k) ? probabilities[k] : nil) {
            try classProbabilities(of: $0, classIndex: k)
        }
    }

    /// The number of classes of a classifier's `[1,K]` output, when it has that shape (`ModelTask` says what any model does).
    public var classCount: Int? {
        guard let output = layers.last(where: { $0.name == outputName }), output.shape.count == 2 else { return nil }
        return output.shape[1]
    }
}
