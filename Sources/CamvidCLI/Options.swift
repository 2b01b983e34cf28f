import Annotate
import ArgumentParser
import Core
import Engine
import Explain
import Foundation
import Render

/// `--model`: the network explained, shared by every command.
struct ModelOptions: ParsableArguments {
    @Option(help: ArgumentHelp("ONNX model file (default: the bundled EfficientNet-Lite0): a classifier, a YOLO detector or a segmenter; its class names are those of its 'names' metadata (as ultralytics writes them), else ImageNet's for a classifier of 1000 classes, COCO's for a detector of 80, else 'class K'.", valueName: "file.onnx"))
    var model: String?

    /// The model file given, or the bundled EfficientNet-Lite0 where `DefaultModel` finds it.
    func url() throws -> URL {
        try model.map { URL(fileURLWithPath: $0) } ?? DefaultModel.location().modelFile
    }

    /// The network for `inputHeight` x `inputWidth` inputs (unless given, the size the model declares, else 224x224),
    /// and its class names.
    func load(inputHeight: Int? = nil, inputWidth: Int? = nil) throws -> (Network, ClassLabels) {
        let network = try Network(contentsOf: url(), inputHeight: inputHeight, inputWidth: inputWidth)
        // The exporter's own names first (ultralytics writes them), else ImageNet's or COCO's by the task and class count.
        if let names = network.metadata["names"].flatMap(ClassLabels.init(metadataNames:)) { return (network, names) }
        switch ModelTask(network: network, namedClasses: nil) {
        case .classifier(ImageNetClasses.names.count): return (network, ClassLabels(names: ImageNetClasses.names))
        case .detector(_, ClassLabels.coco80.names.count): return (network, ClassLabels.coco80)
        default: return (network, ClassLabels(names: []))
        }
    }
}

/// `--class`: what is explained, shared by every command that explains.
struct ClassOptions: ParsableArguments {
    @Option(name: .customLong("class"),
            help: ArgumentHelp("The class explained: top1 (each frame's own most probable class), a class index or a label (case-insensitive unique prefix) held for every frame. Several give a grid of tiles (video, image).", valueName: "class"))
    var classes: [String] = []

    mutating func validate() throws {
        for word in classes where word.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--class needs top1, an index or a label")
        }
    }

    /// The targets given, `top1` when none is.
    var targets: [ClassTarget] { classes.isEmpty ? [.top1] : classes.map(ClassTarget.init(argument:)) }

    /// The one target of a command that explains one class at a time.
    func single() throws -> ClassTarget {
        guard targets.count == 1 else { throw CommandError("give one --class, not \(classes.count)") }
        return targets[0]
    }
}

/// What `--method` names: a method, or `none` (video and image: no network, frames unchanged).
enum MethodChoice: Equatable, ExpressibleByArgument, CustomStringConvertible {
    /// No network: every frame is re-encoded unchanged.
    case none
    /// One of Explain's methods.
    case explained(ExplanationMethod)

    init?(argument: String) {
        if argument.lowercased() == "none" {
            self = .none
        } else if let method = ExplanationMethod(argument: argument) {
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
}

extension ExplanationMethod: ExpressibleByArgument {
    /// The methods of a comma-separated list given to `option` (`--grid`, `--methods`).
    static func list(_ text: String, option: String) throws -> [ExplanationMethod] {
        try commaSeparated(text, option: option, kind: "method", choices: allCases.map(\.rawValue), value: ExplanationMethod.init(argument:))
    }

    /// The method called `argument`: its command-line name, or pytorch-grad-cam's spelling (`gradcampp`, `guided_backprop`, …).
    public init?(argument: String) {
        let key = argument.lowercased()
        let aliases: [String: ExplanationMethod] = [
            "gradcampp": .gradcamPlusPlus, "gradcamplusplus": .gradcamPlusPlus,
            "gradcam_elementwise": .gradcamElementwise, "guided_backprop": .guidedBackprop,
            "guidedbp": .guidedBackprop, "guided_gradcam": .guidedGradcam,
        ]
        guard let method = ExplanationMethod(rawValue: key) ?? aliases[key] else { return nil }
        self = method
    }
}

/// `--method`, `--layer` and the method's switches, shared by every command that explains.
struct MethodOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The explanation method: \(MethodChoice.allValueStrings.joined(separator: ", ")) (default gradcam; none re-encodes frames unchanged).", valueName: "method"))
    var method: MethodChoice?

    @Option(help: ArgumentHelp("Target layer(s), comma-separated (default: the network's default layer; see `camvid layers`); several are averaged.", valueName: "a,b"))
    var layer: String?

    @Option(help: ArgumentHelp("How target layers are read as maps: auto (from the shape, as `camvid layers` shows), nchw, nhwc (channels last), tokens:K (a transformer's tokens after K leading ones, the grid from the input's aspect) or tokens:K:HxW.", valueName: "reading"))
    var layerGrid: GridChoice = .automatic

    @Flag(help: "Project the weighted activations on their first principal component (pytorch-grad-cam eigen_smooth).")
    var eigenSmooth = false

    @Flag(help: "Average over six flipped and scaled copies of each picture (pytorch-grad-cam aug_smooth; 6x slower).")
    var augSmooth = false

    @Flag(help: "Extend guided backprop's ReLU rule to Clip (ReLU6) nodes (guided-backprop, guided-gradcam); off by default, as pytorch-grad-cam, which guides only nn.ReLU.")
    var guidedClip = false

    mutating func validate() throws {
        if layer != nil, layers == nil { throw ValidationError("--layer '\(layer ?? "")' is not a comma-separated list of tensor names") }
    }

    /// The method chosen, gradcam when none is.
    var chosen: MethodChoice { method ?? .explained(.gradcam) }

    /// `--layer` as tensor names; nil without it (or when it names none).
    var layers: [String]? {
        guard let layer else { return nil }
        let names = layer.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        return names.contains(where: \.isEmpty) ? nil : names
    }

    /// Explain's options for these switches (`batchSize`: the probe batch of Score-CAM and Ablation-CAM).
    func explainerOptions(batchSize: Int? = nil) -> ExplainerOptions {
        ExplainerOptions(layers: layers, eigenSmooth: eigenSmooth, augSmooth: augSmooth, batchSize: batchSize, guidesClip: guidedClip,
                         grid: layerGrid)
    }

    /// `--guided-clip` changes only the guided methods, so asking for it without one is a mistake worth saying.
    func checkGuidedClip(_ methods: [ExplanationMethod]) throws {
        guard guidedClip, !methods.contains(where: { $0 == .guidedBackprop || $0 == .guidedGradcam }) else { return }
        let chosen = methods.isEmpty ? "none" : methods.map(\.rawValue).joined(separator: ", ")
        throw CommandError("--guided-clip applies to guided-backprop and guided-gradcam, not \(chosen)")
    }
}

extension FrameFit: ExpressibleByArgument {}

extension GridChoice: ExpressibleByArgument {
    public var defaultValueDescription: String { description }
}

/// `--mean` and `--std`: the network's input normalisation.
struct NormalizationOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Per-channel input mean R,G,B in 0…1 (default ImageNet's 0.485,0.456,0.406; 0,0,0 for a YOLO detector).", valueName: "r,g,b"))
    var mean: String?

    @Option(help: ArgumentHelp("Per-channel input std R,G,B (default ImageNet's 0.229,0.224,0.225; 1,1,1 for a YOLO detector).", valueName: "r,g,b"))
    var std: String?

    mutating func validate() throws { _ = try normalization() }

    /// The normalisation given, else `defaults` (ImageNet's unless said).
    func normalization(defaults: InputNormalization = .imageNet) throws -> InputNormalization {
        let mean = try self.mean.map { try Self.triple($0, option: "--mean") } ?? defaults.mean
        let std = try self.std.map { try Self.triple($0, option: "--std") } ?? defaults.std
        guard let normalization = InputNormalization(mean: mean, std: std) else {
            throw ValidationError("--std values must be positive")
        }
        return normalization
    }

    private static func triple(_ text: String, option: String) throws -> [Float] {
        let values = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count == 3, values.allSatisfy({ $0?.isFinite == true }) else {
            throw ValidationError("\(option) '\(text)' is not three numbers R,G,B")
        }
        return values.compactMap { $0 }
    }
}

/// `--fit`, `--mean`, `--std`: how a picture becomes the network's input (video and image alike).
struct PreprocessingOptions: ParsableArguments {
    @Option(help: "How a picture is fitted to the network's input: squash (resize, aspect ignored; the default), crop (centre), pad (aspect kept, padded with the mean colour), letterbox (as pad, grey padding: ultralytics', the default for a YOLO detector).")
    var fit: FrameFit?

    @OptionGroup var normalization: NormalizationOptions

    /// The preprocessor for `network`'s input; a YOLO detector's defaults are ultralytics' (letterbox, pixels / 255).
    func preprocessor(for network: Network, task: ModelTask?) throws -> FramePreprocessor {
        let detector = task?.isDetector == true
        return FramePreprocessor(inputWidth: network.inputShape[3], inputHeight: network.inputShape[2],
                                 fit: fit ?? (detector ? .letterbox : .squash),
                                 normalization: try normalization.normalization(defaults: detector ? .unscaled : .imageNet))
    }
}

/// `--confidence`, `--iou`, `--max-detections`: which of a detector's detections are explained.
struct DetectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Detections scoring at or below this are dropped (ultralytics' default 0.25).", valueName: "score"))
    var confidence: Float = 0.25

    @Option(help: ArgumentHelp("Non-maximum suppression drops a box overlapping a better one of its class by more than this IoU (ultralytics' default 0.7).", valueName: "iou"))
    var iou: Float = 0.7

    @Option(help: ArgumentHelp("The most detections explained per frame, highest scores first (each is one explanation).", valueName: "N"))
    var maxDetections: Int = 5

    mutating func validate() throws {
        guard confidence >= 0, confidence < 1 else { throw ValidationError("--confidence must be in [0, 1), got \(confidence)") }
        guard iou > 0, iou <= 1 else { throw ValidationError("--iou must be in (0, 1], got \(iou)") }
        guard maxDetections >= 1 else { throw ValidationError("--max-detections must be at least 1, got \(maxDetections)") }
    }

    /// The settings for Annotate.
    var settings: DetectionSettings {
        DetectionSettings(suppression: NonMaximumSuppression(confidence: confidence, iou: iou), maxDetections: maxDetections)
    }
}

extension Colormap: ExpressibleByArgument {}

/// `--colormap`, `--alpha`: how an explanation is drawn.
struct OverlayOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The heat map's colours: \(Colormap.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "name"))
    var colormap: Colormap = .jet

    @Option(help: "Opacity of the heat map, 0 to 1.")
    var alpha: Float = 0.5

    mutating func validate() throws { _ = try overlay() }

    /// Render's overlay for these choices.
    func overlay() throws -> Overlay {
        do {
            return try Overlay(colormap: colormap, alpha: alpha)
        } catch {
            throw ValidationError("--alpha must be between 0 and 1, got \(alpha)")
        }
    }
}

/// `--json`, `--cams`, `--smooth`, `--grid`: what is written beside the picture or video, and how
/// many explanations it shows.
struct RecordOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Write one JSON line per frame as it finishes: frame, pts, class, top5, peak, box, and with a grid 'tiles' (each tile's method, class, top5, peak, box, in grid order); '-' for standard output when the video goes to a file.", valueName: "file.jsonl"))
    var json: String?

    @Option(help: ArgumentHelp("Bounding boxes in --json cover the map at or above this value (0…1).", valueName: "value"))
    var boxThreshold: Float = 0.5

    @Option(help: ArgumentHelp("Write every frame's map as float32 [frames,h,w] to this .npy, with a grid [frames,tiles,h,w] in grid order (streamed; h,w as the map drawn).", valueName: "file.npy"))
    var cams: String?

    @Option(help: ArgumentHelp("Exponential temporal smoothing of the maps over a span of N frames (off by default): each frame then shows a decaying average of its own map and the earlier frames', not its own explanation alone.", valueName: "N"))
    var smooth: Int?

    @Option(help: ArgumentHelp("Tiles of the same picture explained by each of these methods (comma-separated), in one output of the input's size; with several --class, one tile per method and class (method by method). --json and --cams then record every tile.", valueName: "m1,m2,…"))
    var grid: String?

    mutating func validate() throws {
        guard boxThreshold >= 0, boxThreshold <= 1 else { throw ValidationError("--box-threshold must be between 0 and 1, got \(boxThreshold)") }
        if let smooth, smooth < 1 { throw ValidationError("--smooth must be at least 1 frame, got \(smooth)") }
        _ = try gridMethods()
    }

    /// Whether any of these options asks for an explanation.
    var needsExplanation: Bool { json != nil || cams != nil || smooth != nil || grid != nil }

    /// The methods of `--grid`, nil without it.
    func gridMethods() throws -> [ExplanationMethod]? {
        try grid.map { try ExplanationMethod.list($0, option: "--grid") }
    }

    /// The `--json` and `--cams` files, created (or truncated) now, at the paths given unless
    /// `paths` names others (a shard's temporary names, an archive input's own).
    func open(labels: ClassLabels, tiles: Int?, paths: (json: String?, cams: String?)? = nil) throws -> [any ExplanationRecord] {
        var records: [any ExplanationRecord] = []
        if let json = paths.map({ $0.json }) ?? json {
            records.append(try ExplanationLog(path: json, labels: labels, boxThreshold: boxThreshold))
        }
        if let cams = paths.map({ $0.cams }) ?? cams { records.append(try HeatmapArrayFile(path: cams, tiles: tiles)) }
        return records
    }

    /// `--smooth`, when it smooths at all.
    var smoothing: TemporalSmoothing? { smooth.flatMap { $0 > 1 ? TemporalSmoothing(frames: $0) : nil } }
}

/// Every option of an explained picture or video, grouped by concern: `video` and `image` take
/// the same ones.
struct ExplanationOptions: ParsableArguments {
    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Method") var method: MethodOptions
    @OptionGroup(title: "Class") var classes: ClassOptions
    @OptionGroup(title: "Preprocessing") var preprocessing: PreprocessingOptions
    @OptionGroup(title: "Detectors") var detection: DetectionOptions
    @OptionGroup(title: "Drawing") var drawing: OverlayOptions
    @OptionGroup(title: "Records and grid") var records: RecordOptions
    @OptionGroup(title: "Faithfulness") var metrics: MetricOptions
}
