import Core

/// Options shared by every method.
public struct ExplainerOptions: Sendable, Equatable {
    /// Target layers (tensor names); nil means the network's default layer. Several layers give the
    /// mean of the per-layer maps, min-maxed again.
    public var layers: [String]?
    /// Replace the channel sum by the principal projection of the weighted activations (pytorch-grad-cam `eigen_smooth`).
    public var eigenSmooth: Bool
    /// Average over pytorch-grad-cam's six test-time augmentations (`aug_smooth`).
    public var augSmooth: Bool
    /// Network batch size for Score-CAM and Ablation-CAM probes; nil keeps pytorch-grad-cam's 16 and 32.
    public var batchSize: Int?
    /// Extend guided backpropagation to Clip (ReLU6) nodes.
    public var guidesClip: Bool
    /// How the target layers are read as grids (transformers' tokens, channels-last outputs).
    public var grid: GridChoice

    /// Options; the defaults are pytorch-grad-cam's.
    public init(layers: [String]? = nil, eigenSmooth: Bool = false, augSmooth: Bool = false,
                batchSize: Int? = nil, guidesClip: Bool = false, grid: GridChoice = .automatic) {
        self.layers = layers
        self.eigenSmooth = eigenSmooth
        self.augSmooth = augSmooth
        self.batchSize = batchSize
        self.guidesClip = guidesClip
        self.grid = grid
    }
}

/// The shared steps of pytorch-grad-cam's BaseCAM, usable without a network.
public enum CAMSteps {
    /// The raw map `[h,w]` of one image at one layer: the channel sum (or, with `eigenSmooth` or for
    /// Eigen-CAM, the principal projection) of the method's weighted activations, then `max(·, 0)`.
    public static func rawMap(_ method: any ActivationMapMethod, evidence: LayerEvidence, eigenSmooth: Bool = false) throws -> Tensor {
        if let weightedMethod = method as? any ChannelWeightedMethod, !method.alwaysProjects, !eigenSmooth {
            // The same sum as channelSum(weightedActivations), without materialising w_c · A_c.
            let weights = try weightedMethod.channelWeights(evidence)
            let a = evidence.activation
            guard a.rank == 3, weights.count == a.shape[0] else {
                throw ExplainError.badShape("\(method.name): \(weights.count) weights for activations \(a.shape) at \(evidence.layer)")
            }
            let cam = weightedChannelSum(a, weights: weights)
            return Tensor(shape: cam.shape, storage: Normalization.relu(cam.storage))
        }
        let weighted = try method.weightedActivations(evidence)
        guard weighted.rank == 3 else {
            throw ExplainError.badShape("\(method.name): weighted activations \(weighted.shape) at \(evidence.layer) are not [C,h,w]")
        }
        let cam = method.alwaysProjects || eigenSmooth ? PrincipalProjection.project(weighted) : channelSum(weighted)
        return Tensor(shape: cam.shape, storage: Normalization.relu(cam.storage))
    }

    /// `sum_c x_c` of `[C,h,w]`, accumulated in Double.
    public static func channelSum(_ x: Tensor) -> Tensor {
        weightedChannelSum(x, weights: nil)
    }

    /// `sum_c Float(w_c · x_c)` of `[C,h,w]` (each product rounded to Float, then accumulated in Double).
    static func weightedChannelSum(_ x: Tensor, weights: [Float]?) -> Tensor {
        let channels = x.shape[0], size = x.count / max(channels, 1)
        var sum = [Double](repeating: 0, count: size)
        sum.withUnsafeMutableBufferPointer { total in
            x.storage.withUnsafeBufferPointer { values in
                for c in 0..<channels {
                    let row = UnsafeBufferPointer(rebasing: values[(c * size)..<((c + 1) * size)])
                    if let weights {
                        let w = weights[c]
                        for p in 0..<size { total[p] += Double(row[p] * w) }
                    } else {
                        for p in 0..<size { total[p] += Double(row[p]) }
                    }
                }
            }
        }
        return Tensor(shape: Array(x.shape.dropFirst()), storage: sum.map { Float($0) })
    }

    /// The final map `[H,W]` from per-layer raw maps: per-layer min-max + resize, mean, min-max.
    public static func finalMap(raws: [Tensor], height: Int, width: Int) -> Heatmap {
        Heatmap(Normalization.aggregate(raws.map { Normalization.layerMap(raw: $0, height: height, width: width) }))
    }

    /// pytorch-grad-cam's test-time augmentations (ttach `HorizontalFlip` × `Multiply([0.9, 1, 1.1])`),
    /// in ttach's order: (flip, factor).
    public static let augmentations: [(flip: Bool, factor: Float)] = [
        (false, 0.9), (false, 1), (false, 1.1), (true, 0.9), (true, 1), (true, 1.1),
    ]

    /// Mirrors the last dimension (width) of any tensor.
    public static func flippedHorizontally(_ x: Tensor) -> Tensor {
        guard let width = x.shape.last, width > 1 else { return x }
        var out = x.storage
        let rows = x.count / width
        for r in 0..<rows {
            for c in 0..<width { out[r * width + c] = x.storage[r * width + width - 1 - c] }
        }
        return Tensor(shape: x.shape, storage: out)
    }
}

/// Explains images with one method through any `ExplainableNetwork`.
public struct Explainer<Network: ExplainableNetwork> {
    /// The network explained.
    public let network: Network
    /// The method.
    public let method: ExplanationMethod
    /// The options.
    public let options: ExplainerOptions
    /// Class names for `.label` targets.
    public let labels: ClassLabels
    /// The target layers used by the CAM methods (and by guided Grad-CAM's Grad-CAM).
    public let layers: [String]
    private let mapMethod: (any ActivationMapMethod)?
    /// For Ablation-CAM: the head whose channel means stand in for its feature layer in re-runs.
    private let ablationHead: LinearHead?

    /// An explainer; for `cam` this finds the network's linear head or throws `ExplainError.noLinearHead`.
    public init(network: Network, method: ExplanationMethod, options: ExplainerOptions = ExplainerOptions(),
                labels: ClassLabels = ClassLabels(names: [])) throws {
        self.network = network
        self.method = method
        self.options = options
        self.labels = labels
        if let batchSize = options.batchSize, batchSize < 1 {
            throw ExplainError.invalidOption("batch size must be at least 1, got \(batchSize)")
        }
        if let layers = options.layers, layers.isEmpty {
            throw ExplainError.invalidOption("no target layer given")
        }
        // An ablated channel is constant, so past a GAP + linear head only its mean matters.
        ablationHead = method == .ablationcam ? (try? network.linearHead()).flatMap { $0.pooledLayer == nil ? nil : $0 } : nil
        switch method {
        case .cam:
            let head = try network.linearHead()
            if let layers = options.layers, layers != [head.featureLayer] {
                throw ExplainError.invalidOption("cam reads the classifier head's input '\(head.featureLayer)'; it cannot explain \(layers.joined(separator: ", ")) (use gradcam)")
            }
            layers = [head.featureLayer]
            mapMethod = ClassifierWeightCAM(head: head)
        case .saliency, .guidedBackprop:
            if options.augSmooth || options.eigenSmooth {
                throw ExplainError.invalidOption("\(method.rawValue) has no aug-smooth or eigen-smooth; they apply to the CAM methods")
            }
            layers = []
            mapMethod = nil
        case .guidedGradcam:
            layers = options.layers ?? [network.defaultTargetLayer]
            mapMethod = GradCAM()
        default:
            layers = options.layers ?? [network.defaultTargetLayer]
            mapMethod = method.activationMapMethod(batchSize: options.batchSize)
        }
    }

    /// Explains each image of `input` `[N,3,H,W]` for the same class (`top1` resolves per image).
    public func explain(_ input: Tensor, target: ClassTarget = .top1) throws -> [Explanation] {
        try explain(input, targets: [target])
    }

    /// Explains each image of `input` `[N,3,H,W]`; `targets` holds one class for all or one per image.
    public func explain(_ input: Tensor, targets: [ClassTarget]) throws -> [Explanation] {
        try explanations(of: input, for: targets).map { explanations in
            guard let first = explanations.first else { throw ExplainError.invalidOption("a class target resolved to no score") }
            return first
        }
    }

    /// Explains each image of `input` `[N,3,H,W]` for what `targets` (one for all images, or one per image) picks in
    /// its own output: per image, one explanation per score the target resolves to (a detector's target: one per
    /// kept detection, possibly none), all from one forward pass of the batch.
    public func explanations(of input: Tensor, for targets: [any ExplanationTarget]) throws -> [[Explanation]] {
        guard input.rank == 4, input.shape[0] > 0 else {
            throw ExplainError.badShape("input must be [N,3,H,W], got \(input.shape)")
        }
        let count = input.shape[0]
        guard targets.count == 1 || targets.count == count else {
            throw ExplainError.invalidOption("\(targets.count) targets for \(count) images")
        }
        let perImage = targets.count == 1 ? Array(repeating: targets[0], count: count) : targets
        switch method {
        case .saliency, .guidedBackprop:
            return try inputGradientExplanations(input, targets: perImage)
        case .guidedGradcam:
            let cams = try camExplanations(input, targets: perImage)
            let guided = try inputGradients(input, targets: cams.map { $0.map(\.target) }, rules: guidedRules)
            let (height, width) = (input.shape[2], input.shape[3])
            return cams.indices.map { i in
                cams[i].indices.map { r in
                    let gb = guided[r].slice(i)
                    let plane = height * width
                    let map = cams[i][r].map.values
                    let raw = Tensor(shape: gb.shape, storage: gb.storage.indices.map { gb.storage[$0] * map[$0 % plane] })
                    var explanation = cams[i][r]
                    (explanation.raws, explanation.map) = ([raw], Self.magnitudeMap(raw))
                    return explanation
                }
            }
        default:
            return try camExplanations(input, targets: perImage)
        }
    }

    private var guidedRules: GradientRules {
        options.guidesClip ? .guidedBackpropIncludingClip : .guidedBackprop
    }

    /// A forward pass's output split into images, and each image's targets resolved in its own output.
    private struct ResolvedTargets {
        /// Per image, its output (batch dimension dropped).
        var outputs: [Tensor]
        /// Per image, the scores explained.
        var targets: [[OutputTarget]]

        /// The number of backward passes: one per target of the image with the most (each seeds one target per image).
        var rounds: Int { targets.map(\.count).max() ?? 0 }
    }

    private func resolve(_ targets: [any ExplanationTarget], output: Tensor) throws -> ResolvedTargets {
        guard output.rank >= 2, output.shape[0] == targets.count else {
            throw ExplainError.badShape("output \(output.shape) does not match \(targets.count) images")
        }
        let outputs = (0..<targets.count).map { output.slice($0) }
        return ResolvedTargets(outputs: outputs, targets: try targets.indices.map { try targets[$0].resolve(outputs[$0], labels: labels) })
    }

    /// The gradient seed of round `round`: each image's `round`-th target's gradient with respect to its output.
    private func seed(_ resolved: ResolvedTargets, round: Int, output: Tensor) -> Tensor {
        var seed = Tensor(shape: output.shape)
        for (i, targets) in resolved.targets.enumerated() where round < targets.count {
            targets[round].placeGradient(in: &seed, row: i, output: output)
        }
        return seed
    }

    private func explanation(_ target: OutputTarget, output: Tensor, layers: [String], raws: [Tensor], map: Heatmap) -> Explanation {
        Explanation(classIndex: target.classIndex, score: target.score(in: output.storage[...]), logits: output.storage,
                    layers: layers, raws: raws, map: map, target: target)
    }

    // MARK: CAM methods

    private func camExplanations(_ input: Tensor, targets: [any ExplanationTarget]) throws -> [[Explanation]] {
        guard let mapMethod else { throw ExplainError.invalidOption("\(method.rawValue) is not a CAM method") }
        let plain = try camPass(input, method: mapMethod, targets: targets)
        guard options.augSmooth else { return plain }
        // pytorch-grad-cam's aug_smooth runs its plain forward on each augmented copy with the caller's
        // targets: a given class stays fixed, while without targets (`top1`) each copy explains its own
        // top-1 class. Any other target keeps the scores the plain image resolved to (a detection stays the
        // same output element). The explanation keeps the plain image's class and score for its label.
        // The five copies other than the identity go through the network as one batch.
        let count = input.shape[0]
        let copyTargets: [any ExplanationTarget] = targets.indices.map { i in
            targets[i] is ClassTarget ? targets[i] : ResolvedScores(targets: plain[i].map(\.target))
        }
        let others = CAMSteps.augmentations.filter { $0.flip || $0.factor != 1 }
        let flipped = CAMSteps.flippedHorizontally(input)
        var storage: [Float] = []
        storage.reserveCapacity(others.count * input.count)
        for augmentation in others {
            let source = augmentation.flip ? flipped.storage : input.storage
            storage += source.map { $0 * augmentation.factor }
        }
        let augmented = try camPass(Tensor(shape: [others.count * count] + input.shape.dropFirst(), storage: storage),
                                    method: mapMethod, targets: Array(repeating: copyTargets, count: others.count).flatMap { $0 })
        // The mean of the six de-augmented final maps in ttach's order (as NumPy adds them), without a further min-max.
        return try plain.indices.map { i in
            try plain[i].indices.map { r in
                var sum = [Float](repeating: 0, count: plain[i][r].map.values.count)
                var next = 0
                for augmentation in CAMSteps.augmentations {
                    let isIdentity = !augmentation.flip && augmentation.factor == 1
                    let copy = isIdentity ? plain[i] : augmented[next * count + i]
                    guard r < copy.count else {
                        throw ExplainError.invalidOption("aug-smooth: an augmented copy of image \(i) resolved to \(copy.count) targets, not \(plain[i].count)")
                    }
                    let result = copy[r].map.tensor
                    let map = augmentation.flip ? CAMSteps.flippedHorizontally(result) : result
                    for p in map.storage.indices { sum[p] += map.storage[p] }
                    if !isIdentity { next += 1 }
                }
                var explanation = plain[i][r]
                explanation.map.values = sum.map { $0 / Float(CAMSteps.augmentations.count) }
                return explanation
            }
        }
    }

    private func camPass(_ input: Tensor, method mapMethod: any ActivationMapMethod, targets: [any ExplanationTarget]) throws -> [[Explanation]] {
        let pooledLayer = ablationHead.flatMap { layers.contains($0.featureLayer) ? $0.pooledLayer : nil }
        let pass = try network.forward(input, retaining: Set(layers + (pooledLayer.map { [$0] } ?? [])))
        let output = network.logits(of: pass)
        let means = try pooledLayer.map { try network.activation($0, in: pass) }
        let resolved = try resolve(targets, output: output)
        // Per round, the gradient of each image's round-th score.
        var gradients: [[String: Tensor]] = []
        if mapMethod.usesGradients {
            for round in 0..<resolved.rounds {
                gradients.append(try network.gradients(of: pass, seed: seed(resolved, round: round, output: output),
                                                       withRespectTo: Set(layers), rules: .standard))
            }
        }
        let (height, width) = (input.shape[2], input.shape[3])
        // Each layer's output as it is, its reading, and both (and the gradients) on the grid.
        var outputs: [String: (own: Tensor, reading: GridReading, grid: Tensor, gradients: [Tensor])] = [:]
        for layer in layers {
            let a = try network.activation(layer, in: pass)
            guard a.shape.first == input.shape[0] else {
                throw ExplainError.badShape("target layer \(layer) has shape \(a.shape); its batch is not the input's \(input.shape[0])")
            }
            let reading = try options.grid.reading(for: a.shape, inputHeight: height, inputWidth: width, layer: layer)
            let layerGradients = try gradients.map { roundGradients -> Tensor in
                guard let g = roundGradients[layer], g.shape == a.shape else {
                    throw ExplainError.missingTensor("no gradient of shape \(a.shape) for target layer \(layer)")
                }
                return reading.grid(g)
            }
            outputs[layer] = (a, reading, reading.grid(a), layerGradients)
        }
        return try (0..<input.shape[0]).map { i in
            try resolved.targets[i].enumerated().map { round, target in
                let score = target.score(in: resolved.outputs[i].storage[...])
                let raws = try layers.map { layer -> Tensor in
                    guard let output = outputs[layer] else { throw ExplainError.missingTensor("target layer \(layer) was not retained") }
                    var ablations: (([Int], Float) throws -> [Float])?
                    if let pooledLayer, let means, layer == ablationHead?.featureLayer {
                        ablations = { channels, value in
                            try target.scores(ofRows: self.network.logits(of: pass, image: i, replacing: pooledLayer,
                                                                          with: Self.ablatedMeans(means.slice(i), channels, value)))
                        }
                    }
                    let evidence = LayerEvidence(
                        layer: layer, activation: output.grid.slice(i), gradient: output.gradients.isEmpty ? nil : output.gradients[round].slice(i),
                        classIndex: target.classIndex, score: score, image: input.slice(i),
                        reading: output.reading, layerOutput: output.own.slice(i),
                        scoreInputs: { batch in try target.scores(ofRows: self.network.logits(of: self.network.forward(batch, retaining: []))) },
                        scoreReplacements: { batch in try target.scores(ofRows: self.network.logits(of: pass, image: i, replacing: layer, with: batch)) },
                        scoreAblations: ablations)
                    return try CAMSteps.rawMap(mapMethod, evidence: evidence, eigenSmooth: options.eigenSmooth)
                }
                return explanation(target, output: resolved.outputs[i], layers: layers, raws: raws,
                                   map: CAMSteps.finalMap(raws: raws, height: height, width: width))
            }
        }
    }

    /// `[M, C(,1,1)]`: copy `m` of the channel means `means` `[C(,1,1)]` with entry `channels[m]` set to `value`,
    /// the mean of a channel set to `value` everywhere.
    static func ablatedMeans(_ means: Tensor, _ channels: [Int], _ value: Float) -> Tensor {
        let count = means.count
        var batch = [Float](repeating: 0, count: channels.count * count)
        for (copy, c) in channels.enumerated() {
            batch.replaceSubrange((copy * count)..<((copy + 1) * count), with: means.storage)
            batch[copy * count + c] = value
        }
        return Tensor(shape: [channels.count] + means.shape, storage: batch)
    }

    // MARK: Input-gradient methods

    private func inputGradientExplanations(_ input: Tensor, targets: [any ExplanationTarget]) throws -> [[Explanation]] {
        // Retaining the input keeps what a backward to it reads, so the backward recomputes nothing.
        let pass = try network.forward(input, retaining: [network.inputName])
        let output = network.logits(of: pass)
        let resolved = try resolve(targets, output: output)
        let rules: GradientRules = method == .guidedBackprop ? guidedRules : .standard
        let gradients = try inputGradients(pass, input: input, resolved: resolved, output: output, rules: rules)
        return (0..<input.shape[0]).map { i in
            resolved.targets[i].enumerated().map { round, target in
                let g = gradients[round].slice(i)
                if method == .saliency {
                    let raw = Self.channelMaxAbs(g)
                    return explanation(target, output: resolved.outputs[i], layers: [], raws: [raw],
                                       map: Heatmap(Tensor(shape: raw.shape, storage: Normalization.minMax(raw.storage))))
                }
                return explanation(target, output: resolved.outputs[i], layers: [], raws: [g], map: Self.magnitudeMap(g))
            }
        }
    }

    /// Per round, the input gradients of fixed scores (`targets[i]`: image i's, one per round).
    private func inputGradients(_ input: Tensor, targets: [[OutputTarget]], rules: GradientRules) throws -> [Tensor] {
        let pass = try network.forward(input, retaining: [network.inputName])
        let output = network.logits(of: pass)
        let resolved = try resolve(targets.map { ResolvedScores(targets: $0) }, output: output)
        return try inputGradients(pass, input: input, resolved: resolved, output: output, rules: rules)
    }

    private func inputGradients(_ pass: Network.Pass, input: Tensor, resolved: ResolvedTargets, output: Tensor,
                                rules: GradientRules) throws -> [Tensor] {
        try (0..<resolved.rounds).map { round in
            let gradients = try network.gradients(of: pass, seed: seed(resolved, round: round, output: output),
                                                  withRespectTo: [network.inputName], rules: rules)
            guard let g = gradients[network.inputName], g.shape == input.shape else {
                throw ExplainError.missingTensor("no input gradient of shape \(input.shape) for '\(network.inputName)'")
            }
            return g
        }
    }

    /// `max_c |x_c|` of `[C,H,W]`.
    static func channelMaxAbs(_ x: Tensor) -> Tensor {
        let channels = x.shape[0], plane = x.count / max(channels, 1)
        var out = [Float](repeating: 0, count: plane)
        for c in 0..<channels {
            for p in 0..<plane { out[p] = max(out[p], abs(x.storage[c * plane + p])) }
        }
        return Tensor(shape: Array(x.shape.dropFirst()), storage: out)
    }

    static func magnitudeMap(_ x: Tensor) -> Heatmap {
        let magnitude = channelMaxAbs(x)
        return Heatmap(Tensor(shape: magnitude.shape, storage: Normalization.minMax(magnitude.storage)))
    }
}

/// Scores already resolved for an image, held fixed (an augmented copy's, or guided Grad-CAM's second pass).
private struct ResolvedScores: ExplanationTarget {
    let targets: [OutputTarget]

    func resolve(_ output: Tensor, labels: ClassLabels) throws -> [OutputTarget] { targets }
}

extension Explainer: Sendable where Network: Sendable {}
