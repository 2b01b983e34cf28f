import Core
import Engine
import Explain
import Foundation
import Synchronization

/// `ExplainableNetwork` over the engine's ONNX `Network`: where Explain's methods meet the engine.
public struct EngineNetwork: ExplainableNetwork, Sendable {
    /// A forward pass, plus batch-of-one passes of its images made on demand for re-runs.
    public final class Pass {
        let forward: ForwardPass
        let input: Tensor
        private var singles: [Int: ForwardPass] = [:]

        init(forward: ForwardPass, input: Tensor) {
            self.forward = forward
            self.input = input
        }

        /// The engine repeats only a batch-of-one pass for a re-run of another batch size.
        func single(_ image: Int, network: Network) throws -> ForwardPass {
            if forward.batchSize == 1 { return forward }
            if let pass = singles[image] { return pass }
            guard image >= 0, image < input.shape[0] else {
                throw ExplainError.invalidOption("image \(image) is outside the batch of \(input.shape[0])")
            }
            let pass = try network.forward(Tensor.stack([input.slice(image)]), retaining: [])
            singles[image] = pass
            return pass
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
    /// token gradients outside the class token); else the last output on a spatial grid.
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
        return norms.count >= 2 ? norms[norms.count - 2].name : network.lastSpatialLayer
    }

    /// Runs the engine, retaining `names`.
    public func forward(_ input: Tensor, retaining names: Set<String>) throws -> Pass {
        Pass(forward: try network.forward(input, retaining: names), input: input)
    }

    /// The logits of the pass.
    public func logits(of pass: Pass) -> Tensor { pass.forward.logits }

    /// A retained tensor.
    public func activation(_ name: String, in pass: Pass) throws -> Tensor {
        guard let value = pass.forward[name] else {
            throw ExplainError.missingTensor("tensor '\(name)' was not retained by the forward pass")
        }
        return value
    }

    /// The engine's backward pass from the logits.
    public func gradients(of pass: Pass, seed: Tensor, withRespectTo names: Set<String>, rules: GradientRules) throws -> [String: Tensor] {
        try network.backward(pass.forward, seed: seed, at: nil, to: names,
                             rules: rules)
    }

    /// The engine's re-run downstream of `name`, from a batch-of-one pass of image `image`.
    public func logits(of pass: Pass, image: Int, replacing name: String, with value: Tensor) throws -> Tensor {
        let source = try pass.single(image, network: network)
        let outputs = try network.rerun(source, replacing: name, with: value, outputs: [network.outputName])
        guard let logits = outputs[network.outputName] else {
            throw ExplainError.missingTensor("the re-run from '\(name)' produced no '\(network.outputName)'")
        }
        return logits
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
