import Core
import Engine
import Explain
import Foundation

/// The explain stage for a real method: each frame fitted and normalised by a
/// `FramePreprocessor`, batches run through Explain's `Explainer` on the engine network, each
/// final map put back in frame coordinates and labelled `name 87.3%` (softmax probability of
/// the explained class).
public struct NetworkExplainer: FrameExplainer {
    /// The engine network explained.
    public let network: EngineNetwork
    /// The method.
    public let method: ExplanationMethod
    /// The class explained: `top1` decides per frame; an index or a label holds for the whole video.
    public let target: ClassTarget
    /// The class names (for labels and `.label` targets).
    public let labels: ClassLabels
    /// Resizing and normalisation of each frame.
    public let preprocessor: FramePreprocessor
    /// Threads each network call may use (`NetworkThreads`); nil leaves the engine's default.
    public let threads: Int?
    /// The Explain explainer and the frame sizes waiting between `prepare` and `explain`.
    private let state: State

    /// An explainer of `network` by `method`; throws when the method cannot explain the network
    /// (e.g. `cam` without a linear head), a layer does not exist, or `target` names no class.
    public init(network: Network, method: ExplanationMethod, options: ExplainerOptions = ExplainerOptions(),
                target: ClassTarget = .top1, labels: ClassLabels,
                fit: FrameFit = .squash, normalization: InputNormalization = .imageNet, threads: Int? = nil) throws {
        let engine = EngineNetwork(network)
        self.threads = threads.map { max(1, $0) }
        self.network = engine
        self.method = method
        self.target = target
        self.labels = labels
        let shape = network.inputShape
        preprocessor = FramePreprocessor(inputWidth: shape[3], inputHeight: shape[2], fit: fit, normalization: normalization)
        let capture = LogitCapture()
        let explainer = try Explainer(network: LogitCapturingNetwork(base: engine, capture: capture), method: method,
                                      options: options, labels: labels)
        let classes = Self.classCount(network)
        for layer in explainer.layers where !network.layers.contains(where: { $0.name == layer }) {
            throw ExplainError.invalidOption("the model has no layer '\(layer)' (camvid layers lists them)")
        }
        switch target {
        case .top1: break
        case .index(let index):
            if let classes, index < 0 || index >= classes { throw ExplainError.classIndexOutOfRange(index, classes: classes) }
        case .label(let label):
            _ = try labels.index(of: label)
        }
        state = State(explainer: explainer, capture: capture)
    }

    /// The number of classes of a classifier's `[1,K]` output, when it has that shape.
    public static func classCount(_ network: Network) -> Int? {
        guard let output = network.layers.last(where: { $0.name == network.outputName }), output.shape.count == 2 else { return nil }
        return output.shape[1]
    }

    /// The target layers the method explains (empty for the input-gradient methods).
    public var layers: [String] { state.explainer.layers }

    /// The frame fitted and normalised to `[1,3,h,w]`.
    public func prepare(_ frame: VideoFrame) throws -> ModelInput {
        let geometry = preprocessor.geometry(frameWidth: frame.image.width, frameHeight: frame.image.height)
        state.remember(geometry, for: frame.index)
        return ModelInput(frameIndex: frame.index, tensor: preprocessor.tensor(for: frame.image))
    }

    /// Notes where frame `index` went in the input, for `explain` (a grid prepares each frame once for all tiles).
    func remember(_ geometry: ModelInputGeometry, for index: Int) {
        state.remember(geometry, for: index)
    }

    /// Explains the batch at once `[N,3,h,w]`; one explanation per input, in order.
    public func explain(_ batch: [ModelInput]) async throws -> [FrameExplanation] {
        try explainNow(batch)
    }

    /// The synchronous body of `explain`.
    func explainNow(_ batch: [ModelInput]) throws -> [FrameExplanation] {
        guard !batch.isEmpty else { return [] }
        let tensors = try batch.map { input -> Tensor in
            guard let tensor = input.tensor else {
                throw ExplainError.missingTensor("frame \(input.frameIndex) was not prepared by this explainer")
            }
            return tensor
        }
        let geometries = batch.map { state.geometry(for: $0.frameIndex) }
        let input = tensors.count == 1 ? tensors[0] : Tensor.concatenate(tensors)
        if let threads { NetworkThreads.limitCallingThread(to: threads) }
        let (explanations, logits) = try state.explain(input, target: target)
        return try explanations.indices.map { i in
            let explanation = explanations[i]
            guard let geometry = geometries[i] else {
                throw ExplainError.invalidOption("frame \(batch[i].frameIndex) was not prepared by this explainer")
            }
            let probabilities = softmax(logits.slice(i).storage)
            let k = explanation.classIndex
            let probability = probabilities.indices.contains(k) ? probabilities[k] : 0
            return FrameExplanation(
                heatmap: geometry.frameMap(explanation.map.storage),
                label: "\(labels.name(of: k)) \(String(format: "%.1f", probability * 100))%",
                classIndex: k, probabilities: probabilities, method: method.rawValue)
        }
    }

    /// The explainer (not Sendable itself) and per-frame geometry, used by one explain call at a time.
    private final class State: @unchecked Sendable {
        private let lock = NSLock()
        // Guarded by `lock`.
        let explainer: Explainer<LogitCapturingNetwork>
        private let capture: LogitCapture
        private var geometries: [Int: ModelInputGeometry] = [:]

        init(explainer: Explainer<LogitCapturingNetwork>, capture: LogitCapture) {
            self.explainer = explainer
            self.capture = capture
        }

        func remember(_ geometry: ModelInputGeometry, for frame: Int) {
            lock.withLock { geometries[frame] = geometry }
        }

        func geometry(for frame: Int) -> ModelInputGeometry? {
            lock.withLock { geometries.removeValue(forKey: frame) }
        }

        /// The explanations and the logits `[N,K]` of the batch's own forward pass.
        func explain(_ input: Tensor, target: ClassTarget) throws -> ([Explanation], Tensor) {
            try lock.withLock {
                capture.start()
                let explanations = try explainer.explain(input, target: target)
                if let logits = capture.first, logits.rank == 2, logits.shape[0] == input.shape[0] {
                    return (explanations, logits)
                }
                // Every method's first pass is the batch itself; should that change, ask the network.
                let pass = try explainer.network.base.forward(input, retaining: [])
                return (explanations, explainer.network.base.logits(of: pass))
            }
        }
    }
}

/// Holds the logits of the first forward pass since `start`: an explanation's first pass is
/// the batch itself, so its probabilities come without a second forward run.
final class LogitCapture: @unchecked Sendable {
    // Used under NetworkExplainer.State's lock only.
    private(set) var first: Tensor?

    func start() { first = nil }

    func offer(_ logits: Tensor) {
        if first == nil { first = logits }
    }
}

/// The engine network, noting the logits of the first forward pass in a `LogitCapture`.
struct LogitCapturingNetwork: ExplainableNetwork {
    let base: EngineNetwork
    let capture: LogitCapture

    var inputName: String { base.inputName }
    var defaultTargetLayer: String { base.defaultTargetLayer }

    func forward(_ input: Tensor, retaining names: Set<String>) throws -> EngineNetwork.Pass {
        let pass = try base.forward(input, retaining: names)
        capture.offer(base.logits(of: pass))
        return pass
    }

    func logits(of pass: EngineNetwork.Pass) -> Tensor { base.logits(of: pass) }

    func activation(_ name: String, in pass: EngineNetwork.Pass) throws -> Tensor {
        try base.activation(name, in: pass)
    }

    func gradients(of pass: EngineNetwork.Pass, seed: Tensor, withRespectTo names: Set<String>, rules: GradientRules) throws -> [String: Tensor] {
        try base.gradients(of: pass, seed: seed, withRespectTo: names, rules: rules)
    }

    func logits(of pass: EngineNetwork.Pass, image: Int, replacing name: String, with value: Tensor) throws -> Tensor {
        try base.logits(of: pass, image: image, replacing: name, with: value)
    }

    func linearHead() throws -> LinearHead { try base.linearHead() }
}
