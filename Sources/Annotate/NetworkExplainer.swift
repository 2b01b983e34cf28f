import Core
import Engine
import Explain
import Render

/// Explains frames with a network and a method: each batch of prepared frames through Explain's
/// `Explainer` on the engine at once, each final map put back in frame coordinates and labelled
/// `name 87.3%` (the softmax probability of the explained class, from the batch's own logits).
public struct NetworkExplainer: Sendable {
    /// The method.
    public let method: ExplanationMethod
    /// The class explained: `top1` decides per frame; an index or a label holds for the whole video.
    public let target: ClassTarget
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
                target: ClassTarget = .top1, labels: ClassLabels, threads: Int? = nil, metrics: FaithfulnessSettings? = nil) throws {
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
        guard network.classCount != nil else {
            let shape = network.layers.last { $0.name == network.outputName }?.shape ?? []
            throw ExplainError.invalidOption("the model's output '\(network.outputName)' has shape \(shape); camvid explains classifiers, "
                                             + "whose output is [N, classes] (detector and segmenter outputs are not supported yet)")
        }
        explainer = try Explainer(network: EngineNetwork(network), method: method, options: options, labels: labels)
        try network.requireLayers(explainer.layers)
        switch target {
        case .top1: break
        case .index(let index):
            if let classes = network.classCount, index < 0 || index >= classes {
                throw ExplainError.classIndexOutOfRange(index, classes: classes)
            }
        case .label(let label):
            _ = try labels.index(of: label)
        }
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
        var explanations: [Explanation] = []
        let explaining = try clock.measure { explanations = try explainer.explain(batch, target: target) }
        var scoring = Duration.zero
        let results = try zip(frames, explanations).enumerated().map { i, pair in
            let (frame, explanation) = pair
            let probabilities = softmax(explanation.logits)
            let k = explanation.classIndex
            let probability = probabilities.indices.contains(k) ? probabilities[k] : 0
            var result = FrameExplanation(
                heatmap: frame.input.flatMap { $0.geometry.frameMap(explanation.map) },
                label: LabelStyle.text(className: labels.name(of: k), probability: probability),
                classIndex: k, probabilities: probabilities, method: method.rawValue)
            let started = clock.now
            result.metrics = try metrics(of: explanation, input: batch.slice(i))
            scoring += clock.now - started
            return result
        }
        return (results, explaining, scoring)
    }

    /// The faithfulness of `explanation` of `input` `[3,h,w]` (its map at the input's resolution), nil without `--metrics`.
    public func metrics(of explanation: Explanation, input: Tensor) throws -> FaithfulnessScores? {
        try faithfulness.map { try explainer.network.network.faithfulness(of: explanation, input: input, evaluator: $0) }
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
                labelled.label = explanation.label.map { "\(tile.method.rawValue): \($0)" }
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
    public func faithfulness(of explanation: Explanation, input: Tensor, evaluator: FaithfulnessEvaluator) throws -> FaithfulnessScores {
        let k = explanation.classIndex
        let probabilities = softmax(explanation.logits)
        return try evaluator.evaluate(input: input, map: explanation.map, before: probabilities.indices.contains(k) ? probabilities[k] : nil) {
            try classProbabilities(of: $0, classIndex: k)
        }
    }

    /// The number of classes of a classifier's `[1,K]` output, when it has that shape.
    public var classCount: Int? {
        guard let output = layers.last(where: { $0.name == outputName }), output.shape.count == 2 else { return nil }
        return output.shape[1]
    }
}
