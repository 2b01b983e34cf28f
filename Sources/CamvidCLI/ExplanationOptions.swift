import ArgumentParser
import Core
import Engine
import Explain
import Foundation
import Media
import Render
import Pipeline

/// What the video command draws on each frame (`--method`): `none`, or one of Explain's methods.
enum VideoMethod: Equatable, ExpressibleByArgument, CustomStringConvertible {
    /// No network: every frame is re-encoded unchanged, through the whole pipeline.
    case none
    /// A map by one of Explain's methods.
    case explained(ExplanationMethod)

    init?(argument: String) {
        if argument == "none" {
            self = .none
        } else if let method = ExplanationMethod(rawValue: argument) {
            self = .explained(method)
        } else {
            return nil
        }
    }

    static var allValueStrings: [String] { ["none"] + ExplanationMethod.allCases.map(\.rawValue) }

    var description: String {
        switch self {
        case .none: "none"
        case .explained(let method): method.rawValue
        }
    }

    var defaultValueDescription: String { description }
}

extension FrameFit: ExpressibleByArgument {}

/// The options choosing the network, the class, the layers and the preprocessing of an
/// explanation: the same for a video and (later) for an image.
struct ExplanationOptions: ParsableArguments {
    @Option(help: ArgumentHelp("ONNX model file (default: the bundled EfficientNet-Lite0); its class names are ImageNet's when it has 1000 outputs, else 'class K'.", valueName: "file.onnx"))
    var model: String?

    @Option(name: .customLong("class"),
            help: ArgumentHelp("The class explained: top1 (decided per frame), a class index or an ImageNet label (for the whole video). Several give a grid of tiles.", valueName: "class"))
    var classes: [String] = []

    @Option(help: ArgumentHelp("Target layer(s), comma-separated (default: the network's default layer; see `camvid layers`); several are averaged.", valueName: "a,b"))
    var layer: String?

    @Option(help: "How a frame is fitted to the network's square input: squash (resize, aspect ignored), crop (centre), pad (letterbox).")
    var fit: FrameFit = .squash

    @Option(help: ArgumentHelp("Per-channel input mean R,G,B in 0…1 (default ImageNet's 0.485,0.456,0.406).", valueName: "r,g,b"))
    var mean: String?

    @Option(help: ArgumentHelp("Per-channel input std R,G,B (default ImageNet's 0.229,0.224,0.225).", valueName: "r,g,b"))
    var std: String?

    @Flag(help: "Project the weighted activations on their first principal component (pytorch-grad-cam eigen_smooth).")
    var eigenSmooth = false

    @Flag(help: "Average over six flipped and scaled copies of each frame (pytorch-grad-cam aug_smooth; 6x slower).")
    var augSmooth = false

    @Flag(help: "Extend guided backprop's ReLU rule to Clip (ReLU6) nodes (guided-backprop, guided-gradcam); off by default, as pytorch-grad-cam, which guides only nn.ReLU.")
    var guidedClip = false

    mutating func validate() throws {
        _ = try normalization()
        for word in classes where word.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--class needs top1, an index or a label")
        }
        if let layer, layers(layer).isEmpty { throw ValidationError("--layer '\(layer)' names no layer") }
    }

    /// The class targets, `top1` when none is given.
    var targets: [ClassTarget] {
        classes.isEmpty ? [.top1] : classes.map(ClassTarget.init(argument:))
    }

    /// `--mean` / `--std` as a normalisation.
    func normalization() throws -> InputNormalization {
        let mean = try self.mean.map { try Self.triple($0, option: "--mean") } ?? InputNormalization.imageNet.mean
        let std = try self.std.map { try Self.triple($0, option: "--std") } ?? InputNormalization.imageNet.std
        guard let normalization = InputNormalization(mean: mean, std: std) else {
            throw ValidationError("--std values must be positive")
        }
        return normalization
    }

    /// Explain's options for `--layer`, `--eigen-smooth`, `--aug-smooth`, `--guided-clip`.
    var explainerOptions: ExplainerOptions {
        ExplainerOptions(layers: layer.map(layers), eigenSmooth: eigenSmooth, augSmooth: augSmooth, guidesClip: guidedClip)
    }

    /// The network (`--model` or the bundled default) at its 224x224 input size, and its class names.
    func loadNetwork() throws -> (Network, ClassLabels) {
        let url = model.map { URL(fileURLWithPath: $0) } ?? DefaultModel.url
        let network = try Network(contentsOf: url, inputHeight: DefaultModel.inputSize, inputWidth: DefaultModel.inputSize)
        let classes = NetworkExplainer.classCount(network)
        let labels = classes == ImageNetClasses.names.count ? ClassLabels(names: ImageNetClasses.names) : ClassLabels(names: [])
        return (network, labels)
    }

    /// One explainer per (method, class): a single one, or the tiles of a grid.
    func explainers(methods: [ExplanationMethod], network: Network, labels: ClassLabels, threads: Int? = nil) throws -> [NetworkExplainer] {
        let normalization = try normalization()
        try ExplainArguments.checkGuidedClip(guidedClip, methods: methods)
        var explainers: [NetworkExplainer] = []
        for method in methods {
            for target in targets {
                explainers.append(try NetworkExplainer(
                    network: network, method: method, options: explainerOptions, target: target,
                    labels: labels, fit: fit, normalization: normalization, threads: threads))
            }
        }
        return explainers
    }

    private func layers(_ list: String) -> [String] {
        list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    private static func triple(_ text: String, option: String) throws -> [Float] {
        let values = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count == 3, values.allSatisfy({ $0?.isFinite == true }) else {
            throw ValidationError("\(option) '\(text)' is not three numbers R,G,B")
        }
        return values.compactMap { $0 }
    }
}

/// The video command's per-frame outputs beside the video: `--json`, `--cams`, `--smooth`, `--grid`.
struct VideoExplanationOutputs: ParsableArguments {
    @Option(help: ArgumentHelp("Write one JSON line per frame as it finishes: frame, pts, class, top5, peak, box, and with a grid 'tiles' (each tile's method, class, top5, peak, box, in grid order); '-' for standard output when the video goes to a file.", valueName: "file.jsonl"))
    var json: String?

    @Option(help: ArgumentHelp("Bounding boxes in --json cover the map at or above this value (0…1).", valueName: "value"))
    var boxThreshold: Float = 0.5

    @Option(help: ArgumentHelp("Write every frame's map as float32 [frames,h,w] to this .npy, with a grid [frames,tiles,h,w] in grid order (streamed; h,w as the map drawn).", valueName: "file.npy"))
    var cams: String?

    @Option(help: ArgumentHelp("Exponential temporal smoothing of the maps over a span of N frames (off by default): each frame then shows a decaying average of its own map and the earlier frames', not its own explanation alone.", valueName: "N"))
    var smooth: Int?

    @Option(help: ArgumentHelp("Tiles of the same frame explained by each of these methods (comma-separated), in one output of the input's size; with several --class, one tile per method and class (method by method). --json and --cams then record every tile.", valueName: "m1,m2,…"))
    var grid: String?

    mutating func validate() throws {
        guard boxThreshold >= 0, boxThreshold <= 1 else { throw ValidationError("--box-threshold must be between 0 and 1, got \(boxThreshold)") }
        if let smooth, smooth < 1 { throw ValidationError("--smooth must be at least 1 frame, got \(smooth)") }
        _ = try gridMethods()
    }

    /// The methods of `--grid`, nil without it.
    func gridMethods() throws -> [ExplanationMethod]? {
        guard let grid else { return nil }
        let names = grid.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let methods = try names.map { name -> ExplanationMethod in
            guard let method = ExplanationMethod(rawValue: name) else {
                throw ValidationError("--grid: unknown method '\(name)'; choose among \(ExplanationMethod.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return method
        }
        guard !methods.isEmpty else { throw ValidationError("--grid names no method") }
        return methods
    }
}

/// Everything the video command needs for `--method` and the explanation options: the explainer,
/// the overlay, and (once the input is open) the records written beside the video.
struct VideoExplanationSetup {
    /// The explainer before smoothing and records.
    let base: any FrameExplainer
    let overlay: any FrameOverlay
    let labels: ClassLabels
    let outputs: VideoExplanationOutputs
    /// The grid's tile count (`--grid` or several `--class`), nil for a single explanation.
    let tileCount: Int?

    /// Loads the network and checks the method, layers and classes (before any file is opened).
    init(method: VideoMethod, options: ExplanationOptions, outputs: VideoExplanationOutputs, overlay: Overlay,
         networkThreads: Int? = nil) throws {
        self.outputs = outputs
        let methods: [ExplanationMethod]
        switch method {
        case .none:
            guard outputs.json == nil, outputs.cams == nil, outputs.grid == nil, outputs.smooth == nil else {
                throw ValidationError("--json, --cams, --smooth and --grid need a method (not --method none)")
            }
            try ExplainArguments.checkGuidedClip(options.guidedClip, methods: [])
            base = IdentityExplainer()
            self.overlay = HeatmapOverlay(overlay)
            labels = ClassLabels(names: [])
            tileCount = nil
            return
        case .explained(let chosen):
            methods = try outputs.gridMethods() ?? [chosen]
        }
        let (network, labels) = try options.loadNetwork()
        self.labels = labels
        let tiles = try options.explainers(methods: methods, network: network, labels: labels, threads: networkThreads)
        // `--grid` with one method and class is still a grid, so its records have one layout whatever the list.
        if tiles.count == 1 && outputs.grid == nil {
            base = tiles[0]
            self.overlay = HeatmapOverlay(overlay)
            tileCount = nil
        } else {
            guard let grid = GridExplainer(tiles: tiles) else { throw ValidationError("--grid needs at least one tile") }
            base = grid
            self.overlay = GridOverlay(overlay)
            tileCount = tiles.count
        }
    }

    /// Creates the `--json` / `--cams` files and returns the explainer to run (wrapped for
    /// smoothing and records when asked) and those files, to finish at the end.
    func start(timeBase: Media.Rational) throws -> (explainer: any FrameExplainer, sinks: [any ExplanationSink]) {
        var sinks: [any ExplanationSink] = []
        if let path = outputs.json { sinks.append(try ExplanationLog(path: path, labels: labels, boxThreshold: outputs.boxThreshold)) }
        if let path = outputs.cams { sinks.append(try HeatmapArrayFile(path: path, tiles: tileCount)) }
        let smoothing = outputs.smooth.flatMap { $0 > 1 ? TemporalSmoothing(frames: $0) : nil }
        if sinks.isEmpty && smoothing == nil { return (base, []) }
        return (RecordingExplainer(base, smoothing: smoothing, sinks: sinks, timeBase: timeBase), sinks)
    }

    /// Completes the `--json` and `--cams` files; the first failure is thrown after all are tried.
    static func finish(_ sinks: [any ExplanationSink]) throws {
        var failure: Error?
        for sink in sinks {
            do { try sink.finish() } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
    }
}
