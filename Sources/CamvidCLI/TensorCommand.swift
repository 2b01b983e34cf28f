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
            --method defaults to gradcam when --raw or --map is given.
            """
    )

    /// The ONNX model (default: the bundled EfficientNet-Lite0).
    @Option(name: .long, help: "ONNX model file (default: bundled EfficientNet-Lite0).")
    public var model: String?

    /// The input tensor, float32 `[N, 3, H, W]`.
    @Option(name: .long, help: "Input .npy, float32 [N,3,H,W], already normalised.")
    public var input: String

    /// The class whose logit is differentiated and explained (default: each row's top-1).
    @Option(name: .customLong("class"), help: "Class index for the gradient and the maps (default: each row's top-1).")
    public var classIndex: Int?

    /// The target layer(s) (default: the network's default target layer).
    @Option(name: .long, help: ArgumentHelp("Target tensor name(s), comma-separated (default: the default target layer, see `camvid layers`).", valueName: "T[,T...]"))
    public var layer: String?

    /// The explanation method for `--raw`, `--map` and `--repeat`.
    @Option(name: .long, help: ArgumentHelp("Method for --raw/--map/--repeat: \(ExplanationMethod.allCases.map(\.rawValue).joined(separator: ", ")) (default gradcam).", valueName: "name"))
    public var method: String?

    /// Where to write the method's raw map.
    @Option(name: .long, help: "Write the method's map before normalisation (see below) to this .npy.")
    public var raw: String?

    /// Where to write the method's final map `[N, H, W]`.
    @Option(name: .long, help: "Write the method's final normalised map [N,H,W] to this .npy.")
    public var map: String?

    /// pytorch-grad-cam's `aug_smooth` for the maps.
    @Flag(name: .long, help: "Average the maps over pytorch-grad-cam's six test-time augmentations.")
    public var augSmooth = false

    /// pytorch-grad-cam's `eigen_smooth` for the maps.
    @Flag(name: .long, help: "Principal projection of the weighted activations instead of their sum.")
    public var eigenSmooth = false

    /// Guided backprop's ReLU rule extended to Clip (ReLU6).
    @Flag(name: .long, help: "Extend guided backprop's ReLU rule to Clip (ReLU6) nodes (guided-backprop, guided-gradcam); off by default, as pytorch-grad-cam, which guides only nn.ReLU.")
    public var guidedClip = false

    /// Network batch size of the Score-CAM / Ablation-CAM probes.
    @Option(name: .long, help: ArgumentHelp("Probe batch for scorecam / ablationcam (default 16 / 32, as pytorch-grad-cam).", valueName: "n"))
    public var batchSize: Int?

    /// Times `--method` over this many runs after a first one and prints ms per image, the first run's too.
    @Option(name: .long, help: ArgumentHelp("Time --method over this many runs after a first one; print ms/image (and the first run's).", valueName: "n"))
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

    /// Runs the network and writes the requested files; an error is one line on standard error.
    public func run() throws {
        try ExplainArguments.reporting(context: input) { try work() }
    }

    private func work() throws {
        let x = try NumPyFile.read(path: input)
        guard x.rank == 4, x.shape[0] >= 1 else {
            throw CommandError("\(input): expected a float32 [N,3,H,W] tensor, got shape \(x.shape)")
        }
        let url = model.map { URL(fileURLWithPath: $0) } ?? DefaultModel.url
        let layers = try ExplainArguments.layers(layer)
        let method = try self.method.map(ExplainArguments.method)
        if guidedClip, raw == nil, map == nil, self.repeat == nil {
            throw CommandError("--guided-clip needs --method guided-backprop or guided-gradcam with --raw, --map or --repeat")
        }
        let network = try Network(contentsOf: url, inputHeight: x.shape[2], inputWidth: x.shape[3])
        try ExplainArguments.checkLayers(layers, in: network, model: url.lastPathComponent)
        let target = layers?.first ?? network.defaultTargetLayer
        let wantsLayer = activation != nil || gradient != nil
        if wantsLayer, let layers, layers.count > 1 {
            throw CommandError("--activation and --gradient take one --layer, got \(layers.joined(separator: ","))")
        }
        if let runs = self.repeat {
            guard runs >= 1 else { throw CommandError("--repeat must be at least 1, got \(runs)") }
            try timeMethod(method ?? .gradcam, network: network, x: x, layers: layers, runs: runs)
            return
        }
        if let runs = benchmark {
            try Self.time(network, x, target: target, runs: max(runs, 1))
            return
        }
        if raw != nil || map != nil {
            try writeMaps(method ?? .gradcam, network: network, x: x, layers: layers)
        } else if let method {
            throw CommandError("--method \(method.rawValue) needs --raw, --map or --repeat")
        }
        let pass = try network.forward(x, retaining: wantsLayer ? [target] : [])
        if let logits { try NumPyFile.write(pass.logits, path: logits) }
        if let activation, let value = pass[target] { try NumPyFile.write(value, path: activation) }
        if let gradient {
            let seed = try Self.seed(pass.logits, classIndex: classIndex)
            let gradients = try network.backward(pass, seed: seed, to: [target])
            if let value = gradients[target] { try NumPyFile.write(value, path: gradient) }
        }
        if logits == nil && activation == nil && gradient == nil && raw == nil && map == nil {
            for row in 0..<pass.logits.shape[0] {
                let top = Self.topClass(pass.logits, row: row)
                print("\(row): class \(top) \(ImageNetClasses.name(top)) logit \(pass.logits.storage[row * pass.logits.shape[1] + top])")
            }
        }
    }

    /// The explainer `--method`, `--layer`, `--aug-smooth`, `--eigen-smooth`, `--batch-size` and `--guided-clip` describe.
    private func explainer(_ method: ExplanationMethod, network: Network, layers: [String]?) throws -> Explainer<EngineNetwork> {
        try ExplainArguments.checkGuidedClip(guidedClip, methods: [method])
        return try Explainer(network: EngineNetwork(network), method: method,
                             options: ExplainerOptions(layers: layers, eigenSmooth: eigenSmooth, augSmooth: augSmooth, batchSize: batchSize,
                                                       guidesClip: guidedClip),
                             labels: ExplainArguments.labels)
    }

    private var classTarget: ClassTarget { classIndex.map(ClassTarget.index) ?? .top1 }

    /// Writes `--raw` and `--map` (shapes in the configuration's discussion).
    private func writeMaps(_ method: ExplanationMethod, network: Network, x: Tensor, layers: [String]?) throws {
        let explanations = try explainer(method, network: network, layers: layers).explain(x, target: classTarget)
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
        if let map { try NumPyFile.write(Tensor.stack(explanations.map(\.map)), path: map) }
    }

    /// Runs `method` once, then `runs` times, and prints `METHOD: T ms/image (...; first run F ms/image)`: the first run
    /// pays what a single `camvid tensor` pays once the network is loaded (its plans and kernels for this batch).
    private func timeMethod(_ method: ExplanationMethod, network: Network, x: Tensor, layers: [String]?, runs: Int) throws {
        let explainer = try explainer(method, network: network, layers: layers)
        let first = DispatchTime.now().uptimeNanoseconds
        _ = try explainer.explain(x, target: classTarget)
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<runs { _ = try explainer.explain(x, target: classTarget) }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6, firstElapsed = Double(start - first) / 1e6
        print(String(format: "%@: %.2f ms/image (batch %d, %d runs, %@; first run %.2f ms/image)", method.rawValue,
                     elapsed / Double(runs * x.shape[0]), x.shape[0], runs, explainer.layers.joined(separator: ","),
                     firstElapsed / Double(x.shape[0])))
    }

    /// One-hot rows at `classIndex`, or at each row's top-1.
    static func seed(_ logits: Tensor, classIndex: Int?) throws -> Tensor {
        let classes = logits.shape.last ?? 0, rows = logits.count / max(classes, 1)
        var seed = Tensor(shape: logits.shape)
        for row in 0..<rows {
            let k = classIndex ?? topClass(logits, row: row)
            guard k >= 0 && k < classes else { throw CommandError("--class \(k) is outside 0..<\(classes)") }
            seed.storage[row * classes + k] = 1
        }
        return seed
    }

    static func topClass(_ logits: Tensor, row: Int) -> Int {
        let classes = logits.shape.last ?? 0
        var best = 0
        for k in 0..<classes where logits.storage[row * classes + k] > logits.storage[row * classes + best] { best = k }
        return best
    }

    /// Prints the mean time of `runs` forward and forward+gradient calls after a first one, and the first ones' times.
    private static func time(_ network: Network, _ x: Tensor, target: String, runs: Int) throws {
        /// Milliseconds of the first call (it builds plans and primitives) and the mean of the next `runs`.
        func measure(_ body: () throws -> Void) rethrows -> (first: Double, mean: Double) {
            let first = DispatchTime.now().uptimeNanoseconds
            try body()
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<runs { try body() }
            return (Double(start - first) / 1e6, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / Double(runs))
        }
        let forward = try measure { _ = try network.forward(x) }
        let both = try measure {
            let pass = try network.forward(x, retaining: [target])
            _ = try network.backward(pass, seed: try seed(pass.logits, classIndex: nil), to: [target])
        }
        let n = Double(x.shape[0])
        print(String(format: "batch %d forward %.2f ms/frame forward+gradient %.2f ms/frame (target %@; first calls %.2f and %.2f ms/frame)",
                     x.shape[0], forward.mean / n, both.mean / n, target, forward.first / n, both.first / n))
    }
}
