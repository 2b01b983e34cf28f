import Annotate
import ArgumentParser
import Core
import Engine
import Explain
import Foundation
import Media

/// `camvid visualize --class K OUT.png`: the input a network finds most typical of a class.
public struct VisualizeCommand: ParsableCommand {
    /// The command's name, summary and notes.
    public static let configuration = CommandConfiguration(
        commandName: "visualize",
        abstract: "Class model visualisation (Simonyan et al. 2014): the picture that maximises a class score.",
        discussion: """
            Examples:
              camvid visualize --class goldfish goldfish.png
              camvid visualize --class 285 --steps 300 --l2 0.005 cat.png

            Gradient ascent from a zero (mean-grey) input on S_c(I) - λ‖I‖², in the network's
            normalised input space. For display the result is de-normalised
            (pixel = value * std + mean, per channel) and then stretched linearly so that the
            0.5th percentile of all values (three channels together) becomes 0 and the 99.5th
            becomes 255, clipping the few beyond: one scale for all channels keeps the colour
            balance, and the percentiles keep a handful of extreme pixels from greying out the rest.
            """
    )

    /// Where the picture goes.
    @Argument(help: "The output picture; the format follows the extension (png, jpg, …).")
    public var output: String

    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Class") var classes: ClassOptions
    @OptionGroup(title: "The model's normalisation (undone for display)") var normalization: NormalizationOptions

    /// Gradient-ascent steps.
    @Option(help: "Gradient-ascent steps.")
    public var steps: Int = 100

    /// The L2 weight λ.
    @Option(help: "Weight λ of the L2 penalty λ‖I‖².")
    public var l2: Float = 0.01

    /// The step size.
    @Option(help: "Step size of the gradient ascent.")
    public var learningRate: Float = 1

    /// Creates the command (argument parsing fills it in).
    public init() {}

    public mutating func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        guard l2 >= 0, l2.isFinite else { throw ValidationError("--l2 must be ≥ 0, got \(l2)") }
        guard learningRate > 0, learningRate.isFinite else { throw ValidationError("--learning-rate must be > 0, got \(learningRate)") }
    }

    /// Optimises the input and writes the picture; says what it did in one line on standard error.
    public func run() throws {
        FFmpegLog.setLevel(.quiet)
        let target = try classes.single()
        if target == .top1 { throw CommandError("--class top1 needs a picture; give a class index or label") }
        let (network, labels) = try model.load()
        let classIndex = try labels.resolve(target, logits: [Float](repeating: 0, count: network.classCount ?? labels.names.count))
        let (height, width) = (network.inputShape[2], network.inputShape[3])
        let visualization = ClassModelVisualization(steps: steps, learningRate: learningRate, l2: l2)
        let image = try visualization.optimise(EngineNetwork(network), classIndex: classIndex, height: height, width: width)
        let normalization = try self.normalization.normalization()
        let pixels = Self.displayPixels(image, mean: normalization.mean, std: normalization.std)
        try PictureFile.write(RGBImage(width: width, height: height, pixels: pixels), to: output)
        let score = try network.forward(Tensor.stack([image])).logits.storage[classIndex]
        ErrorReport.note("\(output): class \(classIndex) \(labels.name(of: classIndex)), logit \(String(format: "%.2f", score)) after \(steps) steps")
    }

    /// `[3,H,W]` normalised input → RGB24: de-normalise per channel, then one linear stretch of
    /// the whole picture mapping its 0.5th and 99.5th percentiles to 0 and 255, clipped
    /// (a flat picture becomes mid-grey).
    public static func displayPixels(_ image: Tensor, mean: [Float], std: [Float]) -> [UInt8] {
        let plane = image.count / 3
        var values = [Float](repeating: 0, count: image.count)
        for c in 0..<3 {
            for p in 0..<plane { values[c * plane + p] = image.storage[c * plane + p] * std[c] + mean[c] }
        }
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return [] }
        let low = sorted[Int(Double(sorted.count - 1) * 0.005)], high = sorted[Int(Double(sorted.count - 1) * 0.995)]
        let scale: Float = high > low ? 255 / (high - low) : 0
        var pixels = [UInt8](repeating: 128, count: plane * 3)
        guard scale > 0 else { return pixels }
        for p in 0..<plane {
            for c in 0..<3 { pixels[p * 3 + c] = UInt8(min(max(((values[c * plane + p] - low) * scale).rounded(), 0), 255)) }
        }
        return pixels
    }
}
