import Annotate
import ArgumentParser
import Core
import Engine
import Explain
import Foundation

/// `camvid tensor`: logits, a layer's activation, the class gradient and a method's maps for a tensor in a `.npy` file.
public struct TensorCommand: ParsableCommand {
    /// The command's name, summary and the contract of its output files.
    public static let configuration = CommandConfiguration(
        commandName: "tensor",
        abstract: "Run a network on a float32 [N,3,H,W] .npy tensor; write logits, a layer's activation, d logit[class] / d layer, and a method's maps.",
        discussion: """
            Output files (float32 .npy), a contract other tools rely on:
              --logits      [N,classes]
              --activation  [N,C,h,w]  the --layer tensor (one layer)
              --gradient    [N,C,h,w]  d logit[class] / d layer (one layer)
              --raw         the --method's map at feature resolution after the ReLU, before
                            normalisation: [N,h,w]; with several layers [N,L,h,w] (same size
                            needed); saliency [N,H,W] unnormalised; guided-backprop and
                            guided-gradcam the input gradient (times the map) [N,3,H,W]
              --map         the final map at input size, normalised to [0,1]: [N,H,W]
            --metrics prints each row's faithfulness scores on standard output:
              ROW: METHOD class K NAME: drop V relative_drop V increase V road_morf V …
            --method defaults to gradcam when --raw, --map or --metrics is given; --class to each row's top-1.
            --target i,j,... explains one element of each row's output instead of a class: for a
            YOLO detector's [N, 4+C, A] output, 4+c,a is class c's score at anchor a; --gradient is
            then d element / d layer. A detector without --target explains each row's detections (up
            to --max-detections, after --confidence and --iou): --map is then their maps combined,
            each normalised within its box [N,H,W], as the video's --cams. A segmenter's --class is
            its class's predicted region (top1: the class predicted at the most pixels).
            """
    )

    /// The input tensor, float32 `[N, 3, H, W]`.
    @Option(name: .long, help: "Input .npy, float32 [N,3,H,W], already normalised.")
    public var input: String

    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Method") var method: MethodOptions
    @OptionGroup(title: "Class") var classes: ClassOptions
    @OptionGroup(title: "Detectors") var detection: DetectionOptions

    /// An element of each row's output to explain instead of a class.
    @Option(name: .long, help: ArgumentHelp("Explain this element of each row's output (indices after the batch, e.g. 4,117: a detector's class-0 score at anchor 117) instead of a class.", valueName: "i,j,…"))
    public var target: String?
    @OptionGroup(title: "Faithfulness") var metrics: MetricOptions

    /// Where to write the method's raw map.
    @Option(name: .long, help: "Write the method's map before normalisation (see below) to this .npy.")
    public var raw: String?

    /// Where to write the method's final map `[N, H, W]`.
    @Option(name: .long, help: "Write the method's final normalised map [N,H,W] to this .npy.")
    public var map: String?

    /// Network batch size of the Score-CAM / Ablation-CAM probes.
    @Option(name: .long, help: ArgumentHelp("Probe batch for scorecam / ablationcam (default 16 / 32, as pytorch-grad-cam).", valueName: "n"))
    public var batchSize: Int?

    /// Times `--method` over this many runs after a first run and prints ms per image.
    @Option(name: .long, help: ArgumentHelp("Time --method over this many runs after a first one; print ms/image of both.", valueName: "n"))
    public var `repeat`: Int?

    /// Where to write the logits `[N, classes]`.
    @Option(name: .long, help: "Write the logits [N,classes] to this .npy.")
    public var logits: String?

    /// Where to write the layer's output `[N, C, h, w]`.
    @Option(name: .long, help: "Write the layer's output [N,C,h,w] to this .npy.")
    public var activation: String?

    /// Where to write `d logit[class] / d layer` `[N, C, h, w]`.
    @Option(name: .long, help: "Write d logit[class] / d layer [N,C,h,w] to this .npy.")
    public var gradient: String?

    /// Times the requested work over this many runs instead of a single one (prints ms per batch).
    @Option(name: .long, help: ArgumentHelp("Time forward (and forward+gradient) over this many runs.", visibility: .hidden))
    public var benchmark: Int?

    /// Creates the command (argument parsing fills it in).
    public init() {}

    public mutating func validate() throws {
        if let runs = self.repeat, runs < 1 { throw ValidationError("--repeat must be at least 1, got \(runs)") }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if target != nil, !classes.classes.isEmpty { throw ValidationError("give --class or --target, not both") }
        _ = try elementIndices()
    }

    /// `--target` as indices.
    private func elementIndices() throws -> [Int]? {
        guard let target else { return nil }
        let indices = target.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !indices.isEmpty, indices.allSatisfy({ ($0 ?? -1) >= 0 }) else {
            throw ValidationError("--target '\(target)' is not comma-separated indices, e.g. 4,117")
        }
        return indices.compactMap { $0 }
    }

    /// What each row's explanation targets: `--target`'s element (its class read from a detector's layout), else the class.
    private func explanationTarget(task: ModelTask?, labels: ClassLabels) throws -> any ExplanationTarget {
        guard let indices = try elementIndices() else {
            let target = try classes.single()
            return try task?.explanationTarget(target, labels: labels, detection: detection.settings) ?? target
        }
        switch task {
        case .detector(.anchorFree, _)? where indices.count == 2 && indices[0] >= 4: return ElementTarget(indices: indices, classIndex: indices[0] - 4)
        case .detector(.anchorBased, _)? where indices.count == 2 && indices[1] >= 5: return ElementTarget(indices: indices, classIndex: indices[1] - 5)
        default: return ElementTarget(indices: indices)
        }
    }

    /// Runs the network and writes the requested files.
    public func run() throws {
        let x = try NumPyFile.read(path: input)
        guard x.rank == 4, x.shape[0] >= 1 else {
            throw CommandError("\(input): expected a float32 [N,3,H,W] tensor, got shape \(x.shape)")
        }
        let faithfulness = try metrics.settings().map(FaithfulnessEvaluator.init)
        let explaining = raw != nil || map != nil || self.repeat != nil || faithfulness != nil
        let chosen: ExplanationMethod
        switch method.chosen {
        case .none: throw CommandError("tensor needs a method, not none")
        case .explained(let explained): chosen = explained
        }
        if method.method != nil, !explaining { throw CommandError("--method \(chosen.rawValue) needs --raw, --map, --metrics or --repeat") }
        if method.guidedClip && !explaining {
            throw CommandError("--guided-clip needs --method guided-backprop or guided-gradcam with --raw, --map or --repeat")
        }
        let (network, labels) = try model.load(inputHeight: x.shape[2], inputWidth: x.shape[3])
        let task = ModelTask(network: network, labels: labels)
        let target = try explanationTarget(task: task, labels: labels)
        try network.requireLayers(method.layers ?? [])
        let layer = method.layers?.first ?? EngineNetwork(network).defaultTargetLayer
        let wantsLayer = activation != nil || gradient != nil
        if wantsLayer, let layers = method.layers, layers.count > 1 {
            throw CommandError("--activation and --gradient take one --layer, got \(layers.joined(separator: ","))")
        }
        if let runs = benchmark {
            try Self.time(network, x, layer: layer, target: target, labels: labels, runs: max(runs, 1))
            return
        }
        if explaining {
            try method.checkGuidedClip([chosen])
            let explainer = try Explainer(network: EngineNetwork(network), method: chosen,
                                          options: method.explainerOptions(batchSize: batchSize), labels: labels)
            let scoring = faithfulness.map { evaluator in
                { (explanation: Explanation, input: Tensor) throws -> FaithfulnessScores in
                    try network.faithfulness(of: explanation, input: input, evaluator: evaluator)
                }
            }
            if let runs = self.repeat {
                try Self.time(explainer, x, target: target, runs: runs, metrics: scoring)
                return
            }
            let explained = try explainer.explanations(of: x, for: [target])
            if target is DetectionTarget {
                try writeDetectionMaps(explained, height: x.shape[2], width: x.shape[3])
            } else {
                let explanations = explained.map { $0[0] }
                try writeMaps(explanations, method: chosen)
                if let scoring {
                    for (row, explanation) in explanations.enumerated() {
                        let k = explanation.classIndex
                        print("\(row): \(chosen.rawValue) class \(k) \(labels.name(of: k)): \(MetricOptions.line(try scoring(explanation, x.slice(row))))")
                    }
                }
            }
        }
        let pass = try network.forward(x, retaining: wantsLayer ? [layer] : [])
        if let logits { try NumPyFile.write(pass.logits, path: logits) }
        if let activation, let value = pass[layer] { try NumPyFile.write(value, path: activation) }
        if let gradient {
            let seed = try Self.seed(pass.logits, target: target, labels: labels)
            let gradients = try network.backward(pass, seed: seed, to: [layer])
            if let value = gradients[layer] { try NumPyFile.write(value, path: gradient) }
        }
        if logits == nil && activation == nil && gradient == nil && !explaining {
            for row in 0..<pass.logits.shape[0] {
                let output = pass.logits.slice(row), scores = output.storage
                let top = try labels.resolve(.top1, logits: scores)
                if output.rank == 1 {
                    print("\(row): class \(top) \(labels.name(of: top)) logit \(scores[top]) of \(scores.count)")
                } else {
                    // Not a classifier: the largest element and where it is.
                    var indices: [Int] = [], rest = top
                    for size in output.shape.reversed() { indices.insert(rest % size, at: 0); rest /= size }
                    print("\(row): output \(output.shape), largest \(scores[top]) at \(indices.map(String.init).joined(separator: ","))")
                }
            }
        }
    }

    /// A detector's `--map`: per row its detections' maps combined, each normalised within its box; and a line per
    /// detection.
    private func writeDetectionMaps(_ explained: [[Explanation]], height: Int, width: Int) throws {
        if raw != nil { throw CommandError("--raw takes one map per row; a detector's row has one per detection (use --target 4+c,a)") }
        for (row, explanations) in explained.enumerated() {
            for explanation in explanations {
                guard let d = explanation.detection else { continue }
                print(String(format: "%d: class %d score %.4f box %.1f,%.1f,%.1f,%.1f anchor %d", row, d.classIndex, d.score,
                             d.x1, d.y1, d.x2, d.y2, d.anchor))
            }
        }
        if let map {
            let maps = explained.map { explanations in
                Heatmap.renormalisedInBoxes(explanations, width: width, height: height).tensor
            }
            try NumPyFile.write(Tensor.stack(maps), path: map)
        }
    }

    /// Writes `--raw` and `--map` (shapes in the configuration's discussion).
    private func writeMaps(_ explanations: [Explanation], method: ExplanationMethod) throws {
        if let raw {
            let perImage = try explanations.map { explanation -> Tensor in
                guard let first = explanation.raws.first else { throw CommandError("\(method.rawValue) gave no raw map") }
                if explanation.raws.count == 1 { return first }
                guard explanation.raws.allSatisfy({ $0.shape == first.shape }) else {
                    let shapes = zip(explanation.layers, explanation.raws).map { "\($0) \($1.shape)" }.joined(separator: ", ")
                    throw CommandError("--raw stacks the layers' maps, which need one size; got \(shapes)")
                }
                return Tensor.stack(explanation.raws)
            }
            try NumPyFile.write(Tensor.stack(perImage), path: raw)
        }
        if let map { try NumPyFile.write(Tensor.stack(explanations.map(\.map.tensor)), path: map) }
    }

    /// Times the explainer's first run, then `runs` more, and prints both in ms per image: the
    /// first pays what later calls reuse (plans, primitives, buffers). With `metrics`, the scoring of the first run's
    /// explanations is timed alike, on a line of its own.
    private static func time(_ explainer: Explainer<EngineNetwork>, _ x: Tensor, target: any ExplanationTarget, runs: Int,
                             metrics: ((Explanation, Tensor) throws -> FaithfulnessScores)?) throws {
        let clock = ContinuousClock()
        var explanations: [Explanation] = []
        let first = try clock.measure { explanations = try explainer.explanations(of: x, for: [target]).map { $0[0] } }
        let rest = try clock.measure { for _ in 0..<runs { _ = try explainer.explanations(of: x, for: [target]) } }
        let images = Double(x.shape[0])
        print(String(format: "%@: %.2f ms/image (batch %d, %d runs, %@; first run %.2f ms/image)", explainer.method.rawValue,
                     rest.milliseconds / Double(runs) / images, x.shape[0], runs, explainer.layers.joined(separator: ","),
                     first.milliseconds / images))
        guard let metrics else { return }
        let scoreAll = { for (row, explanation) in explanations.enumerated() { _ = try metrics(explanation, x.slice(row)) } }
        let firstScoring = try clock.measure(scoreAll)
        let restScoring = try clock.measure { for _ in 0..<runs { try scoreAll() } }
        print(String(format: "metrics: %.2f ms/image (%d runs; first run %.2f ms/image)",
                     restScoring.milliseconds / Double(runs) / images, runs, firstScoring.milliseconds / images))
    }

    /// The gradient seed of each row's target: one-hot at a class or element.
    static func seed(_ output: Tensor, target: any ExplanationTarget, labels: ClassLabels) throws -> Tensor {
        var seed = Tensor(shape: output.shape)
        for row in 0..<output.shape[0] {
            for resolved in try target.resolve(output.slice(row), labels: labels) { resolved.placeGradient(in: &seed, row: row, output: output) }
        }
        return seed
    }

    /// Prints the mean time of `runs` forward and forward+gradient calls after a first one, and the first ones' times.
    private static func time(_ network: Network, _ x: Tensor, layer: String, target: any ExplanationTarget, labels: ClassLabels,
                             runs: Int) throws {
        let clock = ContinuousClock()
        /// Milliseconds of the first call (what a single call pays once the network is loaded) and the mean of the next `runs`.
        func measure(_ body: () throws -> Void) throws -> (first: Double, mean: Double) {
            let first = try clock.measure(body)
            return (first.milliseconds, try clock.measure { for _ in 0..<runs { try body() } }.milliseconds / Double(runs))
        }
        let forward = try measure { _ = try network.forward(x) }
        let both = try measure {
            let pass = try network.forward(x, retaining: [layer])
            _ = try network.backward(pass, seed: try seed(pass.logits, target: target, labels: labels), to: [layer])
        }
        let n = Double(x.shape[0])
        print(String(format: "batch %d forward %.2f ms/frame forward+gradient %.2f ms/frame (target %@; first calls %.2f and %.2f ms/frame)",
                     x.shape[0], forward.mean / n, both.mean / n, layer, forward.first / n, both.first / n))
    }
}

extension Duration {
    /// The duration in milliseconds as a floating-point number.
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1e3 + Double(attoseconds) * 1e-15
    }
}
