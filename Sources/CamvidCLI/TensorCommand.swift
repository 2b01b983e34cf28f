import ArgumentParser
import Engine
import Foundation

/// `camvid tensor`: logits, a layer's activation and the class gradient for a tensor in a `.npy` file.
public struct TensorCommand: ParsableCommand {
    /// The command's name and summary.
    public static let configuration = CommandConfiguration(
        commandName: "tensor",
        abstract: "Run a network on a float32 [N,3,H,W] .npy tensor; write logits, a layer's activation and d logit[class] / d layer."
    )

    /// The ONNX model (default: the bundled EfficientNet-Lite0).
    @Option(name: .long, help: "ONNX model file (default: bundled EfficientNet-Lite0).")
    public var model: String?

    /// The input tensor, float32 `[N, 3, H, W]`.
    @Option(name: .long, help: "Input .npy, float32 [N,3,H,W], already normalised.")
    public var input: String

    /// The class whose logit is differentiated (default: each row's top-1).
    @Option(name: .customLong("class"), help: "Class index for the gradient (default: each row's top-1).")
    public var classIndex: Int?

    /// The target layer (default: the network's default target layer).
    @Option(name: .long, help: "Target tensor name (default: the default target layer, see `camvid layers`).")
    public var layer: String?

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

    /// Runs the network and writes the requested files.
    public func run() throws {
        let x = try NumPyFile.read(path: input)
        guard x.rank == 4, x.shape[0] >= 1 else {
            throw ValidationError("\(input): expected a float32 [N,3,H,W] tensor, got shape \(x.shape)")
        }
        let url = model.map { URL(fileURLWithPath: $0) } ?? DefaultModel.url
        let network = try Network(contentsOf: url, inputHeight: x.shape[2], inputWidth: x.shape[3])
        let target = layer ?? network.defaultTargetLayer
        let wantsLayer = activation != nil || gradient != nil
        if let runs = benchmark {
            try Self.time(network, x, target: target, runs: max(runs, 1))
            return
        }
        let pass = try network.forward(x, retaining: wantsLayer ? [target] : [])
        if let logits { try NumPyFile.write(pass.logits, path: logits) }
        if let activation, let value = pass[target] { try NumPyFile.write(value, path: activation) }
        if let gradient {
            let seed = try Self.seed(pass.logits, classIndex: classIndex)
            let gradients = try network.backward(pass, seed: seed, to: [target])
            if let value = gradients[target] { try NumPyFile.write(value, path: gradient) }
        }
        if logits == nil && activation == nil && gradient == nil {
            for row in 0..<pass.logits.shape[0] {
                let top = Self.topClass(pass.logits, row: row)
                print("\(row): class \(top) \(ImageNetClasses.name(top)) logit \(pass.logits.storage[row * pass.logits.shape[1] + top])")
            }
        }
    }

    /// One-hot rows at `classIndex`, or at each row's top-1.
    static func seed(_ logits: Tensor, classIndex: Int?) throws -> Tensor {
        let classes = logits.shape.last ?? 0, rows = logits.count / max(classes, 1)
        var seed = Tensor(shape: logits.shape)
        for row in 0..<rows {
            let k = classIndex ?? topClass(logits, row: row)
            guard k >= 0 && k < classes else { throw ValidationError("--class \(k) is outside 0..<\(classes)") }
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

    private static func time(_ network: Network, _ x: Tensor, target: String, runs: Int) throws {
        func measure(_ body: () throws -> Void) rethrows -> Double {
            try body()  // warm-up: builds primitives and plans
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<runs { try body() }
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / Double(runs)
        }
        let forward = try measure { _ = try network.forward(x) }
        let both = try measure {
            let pass = try network.forward(x, retaining: [target])
            _ = try network.backward(pass, seed: try seed(pass.logits, classIndex: nil), to: [target])
        }
        let n = Double(x.shape[0])
        print(String(format: "batch %d forward %.2f ms/frame forward+gradient %.2f ms/frame (target %@)",
                     x.shape[0], forward / n, both / n, target))
    }
}
