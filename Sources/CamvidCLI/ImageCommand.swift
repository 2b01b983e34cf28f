import ArgumentParser
import Core
import Engine
import Explain
import Foundation
import Media
import Pipeline
import Render

/// `camvid image IN OUT`: explains one picture and writes it with the heat map and class label.
public struct ImageCommand: ParsableCommand {
    /// The command's name, summary and notes.
    public static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Explain one picture: write it with the class activation map and the class label blended on.",
        discussion: """
            Examples:
              camvid image cat.png cat-gradcam.png
              camvid image cat.jpg out.jpg --method scorecam --class "tiger cat"

            The picture (any format FFmpeg reads) is prepared as pytorch-grad-cam's examples do:
            RGB, squashed to the model's input size with area averaging (OpenCV INTER_AREA), scaled
            to [0, 1], normalised with --mean and --std. The map is upsampled (bilinear) to the
            picture's own size and blended over it; the label reads "CLASS PROBABILITY%". The
            output format follows OUT's extension (png, jpg, bmp, …).
            """
    )

    /// The picture to explain.
    @Argument(help: "The picture (png, jpg, … anything FFmpeg reads).")
    public var input: String

    /// Where the annotated picture goes.
    @Argument(help: "The annotated picture; the format follows the extension (png, jpg, …).")
    public var output: String

    /// The method's command-line name.
    @Option(help: ArgumentHelp("The explanation method: \(ExplanationMethod.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "name"))
    public var method: String = ExplanationMethod.gradcam.rawValue

    /// The ONNX model (default: the bundled EfficientNet-Lite0).
    @Option(help: ArgumentHelp("ONNX model file (default: bundled EfficientNet-Lite0).", valueName: "file.onnx"))
    public var model: String?

    /// The class explained.
    @Option(name: .customLong("class"), help: ArgumentHelp("top1, a class index, or an ImageNet label (case-insensitive unique prefix).", valueName: "class"))
    public var target: String = "top1"

    /// Target layers (tensor names).
    @Option(help: ArgumentHelp("Target tensor(s), comma-separated (default: the network's last spatial layer; see `camvid layers`).", valueName: "T[,T...]"))
    public var layer: String?

    /// The heat map's colours.
    @Option(help: ArgumentHelp("The heat map's colours: \(Colormap.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "name"))
    public var colormap: String = Colormap.jet.rawValue

    /// Opacity of the heat map.
    @Option(help: "Opacity of the heat map, 0 to 1.")
    public var alpha: Float = 0.5

    /// pytorch-grad-cam's `aug_smooth`.
    @Flag(help: "Average the map over horizontal flips and brightness 0.9/1/1.1 (pytorch-grad-cam aug_smooth).")
    public var augSmooth = false

    /// pytorch-grad-cam's `eigen_smooth`.
    @Flag(help: "Use the first principal component of the weighted activations (pytorch-grad-cam eigen_smooth).")
    public var eigenSmooth = false

    /// Guided backprop's ReLU rule extended to Clip (ReLU6).
    @Flag(help: "Extend guided backprop's ReLU rule to Clip (ReLU6) nodes (guided-backprop, guided-gradcam); off by default, as pytorch-grad-cam, which guides only nn.ReLU.")
    public var guidedClip = false

    /// How the picture is fitted to the model's input.
    @Option(help: ArgumentHelp("How the picture is fitted to the model's input: squash (resize ignoring the aspect ratio, as the reference does).", valueName: "squash"))
    public var fit: String = "squash"

    /// Channel means for normalisation.
    @Option(help: ArgumentHelp("Per-channel mean subtracted after scaling to [0, 1].", valueName: "r,g,b"))
    public var mean: String = "0.485,0.456,0.406"

    /// Channel standard deviations for normalisation.
    @Option(help: ArgumentHelp("Per-channel standard deviation divided by after the mean.", valueName: "r,g,b"))
    public var std: String = "0.229,0.224,0.225"

    /// Creates the command (argument parsing fills it in).
    public init() {}

    /// Explains the picture and writes the overlay; prints one summary line.
    public func run() throws {
        FFmpegLog.setLevel(.quiet)
        let summary = try ExplainArguments.reporting(context: input) { try render() }
        print(summary)
    }

    /// Does the work; returns the summary line.
    private func render() throws -> String {
        let method = try ExplainArguments.method(self.method)
        let layers = try ExplainArguments.layers(layer)
        try ExplainArguments.checkGuidedClip(guidedClip, methods: [method])
        guard fit == "squash" else { throw CommandError("--fit '\(fit)' is not supported; the only fit is squash") }
        guard alpha >= 0, alpha <= 1 else { throw CommandError("--alpha must be between 0 and 1, got \(alpha)") }
        guard let colors = Colormap(rawValue: colormap) else {
            throw CommandError("unknown --colormap '\(colormap)'; choose one of \(Colormap.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let mean = try ExplainArguments.triple(self.mean, option: "--mean", positive: false)
        let std = try ExplainArguments.triple(self.std, option: "--std", positive: true)
        let target = ClassTarget(argument: self.target)
        if case let .label(label) = target { _ = try ExplainArguments.labels.index(of: label) }

        let picture = try PictureFile.read(input)
        let modelURL = ExplainArguments.modelURL(model)
        let network = try Network(contentsOf: modelURL)
        try ExplainArguments.checkLayers(layers, in: network, model: modelURL.lastPathComponent)
        let (height, width) = (network.inputShape[2], network.inputShape[3])
        guard let normalization = InputNormalization(mean: mean, std: std) else { throw CommandError("--std values must be positive") }
        let x = FramePreprocessor(inputWidth: width, inputHeight: height, normalization: normalization).tensor(for: picture)

        let explainer = try Explainer(network: EngineNetwork(network), method: method,
                                      options: ExplainerOptions(layers: layers, eigenSmooth: eigenSmooth, augSmooth: augSmooth, guidesClip: guidedClip),
                                      labels: ExplainArguments.labels)
        guard let explanation = try explainer.explain(x, target: target).first else {
            throw CommandError("\(method.rawValue) gave no explanation")
        }
        let logits = try network.forward(x).logits.storage
        let probability = softmax(logits)[explanation.classIndex]
        let name = ExplainArguments.labels.name(of: explanation.classIndex)
        let label = LabelStyle.text(className: name, probability: probability)

        var image = picture
        let overlay = try Overlay(colormap: colors, alpha: alpha)
        overlay.apply(Heatmap(width: explanation.map.shape[1], height: explanation.map.shape[0], values: explanation.map.storage),
                      label: label, to: &image)
        try PictureFile.write(image, to: output)
        let at = explanation.layers.isEmpty ? "" : " at \(explanation.layers.joined(separator: ","))"
        return "\(input): \(label) (class \(explanation.classIndex)), \(method.rawValue)\(at) -> \(output)"
    }
}
