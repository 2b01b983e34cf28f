import Core
import Engine
import Explain
import Foundation
import Synchronization

/// `ExplainableNetwork` over the engine's ONNX `Network`: where Explain's methods meet the engine.
public struct EngineNetwork: ExplainableNetwork, Sendable {
    /// A forward pass of the batch (or, for a network that runs one image at a time, one per image), plus batch-of-one
    /// passes of its images made on demand for re-runs.
    public final class Pass {
        /// One pass of the whole batch, or one per image.
        let parts: [ForwardPass]
        let input: Tensor
        private var singles: [Int: ForwardPass] = [:]
        /// The output of the whole batch, joined once when the pass has parts.
        lazy var output: Tensor = parts.count == 1 ? parts[0].logits : Tensor.concatenate(parts.map(\.logits))

        init(parts: [ForwardPass], input: Tensor) {
            self.parts = parts
            self.input = input
        }

        /// The engine repeats only a batch-of-one pass for a re-run of another batch size.
        func single(_ image: Int, network: Network) throws -> ForwardPass {
            guard image >= 0, image < input.shape[0] else {
                throw ExplainError.invalidOption("image \(image) is outside the batch of \(input.shape[0])")
            }
            if parts.count > 1 { return parts[image] }
            if parts[0].batchSize == 1 { return parts[0] }
            if let pass = singles[image] { return pass }
            let pass = try network.forward(Tensor.stack([input.slice(image)]), retaining: [])
            singles[image] = pass
            return pass
        }

        /// A tensor of the pass, joined across its parts.
        func tensor(_ name: String) -> Tensor? {
            if parts.count == 1 { return parts[0][name] }
            let pieces = parts.compactMap { $0[name] }
            return pieces.count == parts.count ? Tensor.concatenate(pieces) : nil
        }
    }

    /// The engine network.
    public let network: Network
    private let head = HeadCache()

    /// Explains `network`.
    public init(_ network: Network) {
        self.network = network
    }

    /// The measured head, shared by copies of this value: measuring it takes a few re-runs of the head.
    private final class HeadCache: Sendable {
        private let value = Mutex<LinearHead?>(nil)

        func get(_ make: () throws -> LinearHead) throws -> LinearHead {
            try value.withLock { value in
                if let value { return value }
                let made = try make()
                value = made
                return made
            }
        }
    }

    /// The engine's input name.
    public var inputName: String { network.inputName }
    /// The layer CAM methods explain when none is named: for a transformer, the first normalisation
    /// of its last block, as pytorch-grad-cam's documentation recommends (a block's output has zero
    /// token gradients outside the class token); for a YOLO detector, the finest feature map feeding its
    /// head (`detectorFeatureLayer`); for a segmenter, its backbone's output (`segmenterFeatureLayer`);
    /// else the last output on a spatial grid.
    ///
    /// A transformer's blocks normalise twice, on the input's grid (tokens or channels last): either
    /// the residual stream before attention and before the MLP (LayerNormalization nodes reading a
    /// tensor a residual Add also reads) or, post-norm (Swin V2), what each adds to it (nodes an Add
    /// reads). The last two are the last block's; the first of them is the one.
    public var defaultTargetLayer: String {
        let layers = network.layers
        let (height, width) = (network.inputShape[2], network.inputShape[3])
        let addInputs = Set(layers.filter { $0.opType == "Add" }.flatMap(\.inputs))
        // A block's normalisation reads the residual stream (pre-norm: its input also feeds the block's sum) or feeds
        // the sum itself (post-norm, Swin V2).
        let norms = layers.filter { layer in
            layer.opType == "LayerNormalization"
                && (layer.inputs.first.map(addInputs.contains) == true || addInputs.contains(layer.name))
                && GridReading.automatic(shape: layer.shape, inputHeight: height, inputWidth: width).map { $0 != .channelsFirst } == true
        }
        if norms.count >= 2 { return norms[norms.count - 2].name }
        switch ModelTask(network: network, namedClasses: nil) {
        case .detector: return detectorFeatureLayer ?? network.lastSpatialLayer
        case .segmenter: return segmenterFeatureLayer ?? network.lastSpatialLayer
        default: return network.lastSpatialLayer
        }
    }

    /// A YOLO detector's finest feature map feeding its head (P3, stride 8): the last tensor at the finest head
    /// resolution (stride 8 or coarser) that the coarser levels are computed from (the head's own convolutions at that
    /// resolution come later but feed nothing coarser). Every anchor's score depends on it, so any detection has a
    /// map there; a coarser level is reached by small objects' scores not at all.
    public var detectorFeatureLayer: String? {
        let layers = network.layers
        let (height, width) = (network.inputShape[2], network.inputShape[3])
        let grids = layers.filter { $0.shape.count == 4 && $0.shape[2] > 1 && $0.shape[3] > 1 && $0.shape[2] * 8 <= height && $0.shape[3] * 8 <= width }
        guard let finest = grids.map({ $0.shape[2] * $0.shape[3] }).max() else { return nil }
        // Whether each tensor has a coarser grid downstream, from the last node back.
        var feedsCoarser = Set<String>()
        for layer in layers.reversed() {
            let size = layer.shape.count == 4 ? layer.shape[2] * layer.shape[3] : Int.max
            let coarser = layer.shape.count == 4 && size > 1 && size < finest
            if coarser || feedsCoarser.contains(layer.name) { feedsCoarser.formUnion(layer.inputs) }
        }
        return grids.last { $0.shape[2] * $0.shape[3] == finest && feedsCoarser.contains($0.name) }?.name
    }

    /// A segmenter's backbone output (pytorch-grad-cam's segmentation tutorial explains `backbone.layer4`): of the
    /// grids coarser than the input, the last with the most channels.
    public var segmenterFeatureLayer: String? {
        let (height, width) = (network.inputShape[2], network.inputShape[3])
        let grids = network.layers.filter { $0.shape.count == 4 && $0.shape[2] * $0.shape[3] > 1 && $0.shape[2] < height && $0.shape[3] < width }
        guard let most = grids.map({ $0.shape[1] }).max() else { return nil }
        return grids.last { $0.shape[1] == most }?.name
    }

    /// Runs the engine, retaining `names`: the batch at once, or one image at a time when the graph runs only that.
    public func forward(_ input: Tensor, retaining names: Set<String>) throws -> Pass {
        Pass(parts: try network.runnableBatches(input).map { try network.forward($0, retaining: names) }, input: input)
    }

    /// The logits of the pass.
    public func logits(of pass: Pass) -> Tensor { pass.output }

    /// A retained tensor.
    public func activation(_ name: String, in pass: Pass) throws -> Tensor {
        guard let value = pass.tensor(name) else {
            throw ExplainError.missingTensor("tensor '\(name)' was not retained by the forward pass")
        }
        return value
    }

    /// The engine's backward pass from the logits (image by image for a pass made of one per image).
    public func gradients(of pass: Pass, seed: Tensor, withRespectTo names: Set<String>, rules: GradientRules) throws -> [String: Tensor] {
        if pass.parts.count == 1 { return try network.backward(pass.parts[0], seed: seed, at: nil, to: names, rules: rules) }
        let perImage = try pass.parts.enumerated().map { i, part in
            try network.backward(part, seed: Tensor.stack([seed.slice(i)]), at: nil, to: names, rules: rules)
        }
        var joined: [String: Tensor] = [:]
        for name in names { joined[name] = Tensor.concatenate(perImage.compactMap { $0[name] }) }
        return joined
    }

    /// The engine's re-run downstream of `name`, from a batch-of-one pass of image `image` (one replacement at a time
    /// when the graph runs only that).
    public func logits(of pass: Pass, image: Int, replacing name: String, with value: Tensor) throws -> Tensor {
        let source = try pass.single(image, network: network)
        return Tensor.concatenate(try network.runnableBatches(value).map { row in
            let outputs = try network.rerun(source, replacing: name, with: row, outputs: [network.outputName])
            guard let logits = outputs[network.outputName] else {
                throw ExplainError.missingTensor("the re-run from '\(name)' produced no '\(network.outputName)'")
            }
            return logits
        })
    }

    /// Finds a global-average-pooling + linear head after the last spatial tensor and reads its weights.
    ///
    /// The operators after that tensor must be pooling, reshaping and one Gemm/MatMul (+Add); the
    /// weights are then measured by re-running the head on one-hot channel-mean probes (from the pooling's
    /// output, or constant channels when that output is not one value per channel), and linearity in the
    /// spatial mean is verified on a non-constant probe through the whole head.
    public func linearHead() throws -> LinearHead {
        try head.get(measureLinearHead)
    }

    private func measureLinearHead() throws -> LinearHead {
        let layers = network.layers
        guard let index = layers.lastIndex(where: { $0.shape.count == 4 && $0.shape[2] * $0.shape[3] > 1 }) else {
            throw ExplainError.noLinearHead("no spatial layer")
        }
        let feature = layers[index]
        let tail = layers[(index + 1)...]
        let operators = tail.map(\.opType)
        let pooling: Set = ["ReduceMean", "GlobalAveragePool"]
        let shaping: Set = ["Reshape", "Flatten", "Squeeze", "Dropout", "Identity"]
        let linear: Set = ["Gemm", "MatMul", "Add"]
        guard operators.allSatisfy({ pooling.contains($0) || shaping.contains($0) || linear.contains($0) }),
              operators.filter(pooling.contains).count == 1,
              operators.filter({ $0 == "Gemm" || $0 == "MatMul" }).count == 1,
              tail.last?.name == network.outputName else {
            throw ExplainError.noLinearHead("after '\(feature.name)' the network applies \(operators.joined(separator: ", "))")
        }
        let channels = feature.shape[1]
        let base = try network.forward(Tensor(shape: network.inputShape), retaining: [])
        func run(from name: String, _ probes: Tensor) throws -> Tensor {
            let out = try network.rerun(base, replacing: name, with: probes, outputs: [network.outputName])
            guard let logits = out[network.outputName], logits.rank == 2 else {
                throw ExplainError.noLinearHead("the head after '\(feature.name)' does not give [N,K] logits")
            }
            return logits
        }
        // The pooling's output, when it holds one value per channel, is where the linear layer starts;
        // should the check below fail from there, the constant-channel probes decide.
        if let pooled = tail.first(where: { pooling.contains($0.opType) }),
           pooled.shape.first == 1, Tensor.elementCount(pooled.shape) == channels,
           let head = try? measure(feature: feature, pooled: pooled, run: run) {
            return head
        }
        return try measure(feature: feature, pooled: nil, run: run)
    }

    /// The head's weights from one-hot probes (of the channel means at `pooled`, else of constant channels
    /// at `feature`), verified through the whole head on a spatially varying probe.
    private func measure(feature: LayerInfo, pooled: LayerInfo?,
                         run: (_ from: String, _ probes: Tensor) throws -> Tensor) throws -> LinearHead {
        let (channels, height, width) = (feature.shape[1], feature.shape[2], feature.shape[3])
        let plane = height * width
        // Probe 0 is all zeros (the bias); probe 1 + c is channel c set to one.
        var rows: [Tensor] = []
        if let pooled {
            // One re-run of the linear layer alone, on the channel means directly.
            var probes = Tensor(shape: [channels + 1] + pooled.shape.dropFirst())
            for c in 0..<channels { probes.storage[(c + 1) * channels + c] = 1 }
            rows.append(try run(pooled.name, probes))
        } else {
            var start = 0
            let chunk = 64
            while start <= channels {
                let end = min(start + chunk, channels + 1)
                var probes = Tensor(shape: [end - start, channels, height, width])
                for probe in start..<end where probe > 0 {
                    let c = probe - 1
                    let offset = ((probe - start) * channels + c) * plane
                    for p in 0..<plane { probes.storage[offset + p] = 1 }
                }
                rows.append(try run(feature.name, probes))
                start = end
            }
        }
        let responses = Tensor.concatenate(rows)
        let classes = responses.shape[1]
        let bias = Array(responses.storage[0..<classes])
        var weights = [Float](repeating: 0, count: classes * channels)
        for c in 0..<channels {
            for k in 0..<classes {
                weights[k * channels + c] = responses.storage[(c + 1) * classes + k] - bias[k]
            }
        }
        // A spatially varying probe must give W · mean_hw + b, or the head is not GAP + linear.
        var check = Tensor(shape: [1, channels, height, width])
        var means = [Double](repeating: 0, count: channels)
        for c in 0..<channels {
            for p in 0..<plane {
                let value = Float(((c * 7 + p * 13) % 17)) / 8 - 1
                check.storage[c * plane + p] = value
                means[c] += Double(value) / Double(plane)
            }
        }
        // Through the whole tail, so this also proves that the pooled tensor holds the channel means.
        let measured = try run(feature.name, check)
        var worst = 0.0, scale = 0.0
        for k in 0..<classes {
            var expected = Double(bias[k])
            for c in 0..<channels { expected += Double(weights[k * channels + c]) * means[c] }
            worst = max(worst, abs(expected - Double(measured.storage[k])))
            scale = max(scale, abs(expected))
        }
        guard worst <= 1e-3 * max(scale, 1) else {
            throw ExplainError.noLinearHead("the head after '\(feature.name)' is not linear in its spatial mean")
        }
        return LinearHead(featureLayer: feature.name, weights: Tensor(shape: [classes, channels], storage: weights),
                          bias: Tensor(shape: [classes], storage: bias), pooledLayer: pooled?.name)
    }
}
