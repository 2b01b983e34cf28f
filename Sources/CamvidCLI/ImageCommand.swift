import Annotate
import ArgumentParser
import Core
import Foundation
import Media
import Pipeline
import Synchronization

/// `camvid image IN OUT`: one picture explained as a one-frame video: the same options, the same
/// preprocessing and the same records (`--json`, `--cams`) as `camvid IN OUT`.
public struct ImageCommand: AsyncParsableCommand {
    /// The command's name, summary and notes.
    public static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Explain one picture: write it with the class activation map and the class label blended on.",
        discussion: """
            Examples:
              camvid image cat.png cat-gradcam.png
              camvid image cat.jpg out.jpg --method scorecam --class "tiger cat"

            The picture (any format FFmpeg reads; of a video, its first frame) goes through the
            video pipeline as a one-frame video: fitted to the model's input with area averaging
            (OpenCV INTER_AREA, as pytorch-grad-cam's examples prepare pictures), scaled to
            [0, 1], normalised with --mean and --std; the map is upsampled (bilinear) to the
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

    @OptionGroup var explanation: ExplanationOptions

    /// No summary line.
    @Flag(name: [.short, .long], help: "No summary line.")
    public var quiet = false

    /// Creates the command (argument parsing fills it in).
    public init() {}

    /// Explains the picture and writes the overlay; says what it did in one line on standard error.
    public func run() async throws {
        FFmpegLog.setLevel(.quiet)
        let setup = try ExplanationSetup(explanation)
        let drawn = Mutex<FrameExplanation?>(nil)
        let summary = try await FailureInFile.naming(input) {
            let decoder = try FrameDecoder(MediaInput(input), settings: DecoderSettings(threads: 1, deliversOtherStreams: false))
            return try await VideoPipeline.run(
                source: DecoderSource(decoder, frameLimit: 1),
                converter: FrameConverter(file: input, preprocessor: setup.preprocessor),
                explainer: try setup.explainer(explanation.records), overlay: ExplanationOverlay(setup.overlay),
                sink: PictureSink(path: output) { frame in drawn.withLock { $0 = frame.explanation } },
                configuration: PipelineConfiguration(channelCapacity: 1, batchSize: 1))
        }
        guard summary.framesWritten == 1 else { throw FailureInFile(file: input, error: CommandError("\(input) holds no picture")) }
        // The scores are the command's result: standard output, one line per explanation (a grid's tiles in order).
        if let explanation = drawn.withLock({ $0 }) {
            for tile in explanation.tiles.isEmpty ? [explanation] : explanation.tiles {
                if let metrics = tile.metrics { print("\(tile.method ?? ""): \(MetricOptions.line(metrics))") }
            }
        }
        guard !quiet else { return }
        let label = drawn.withLock { $0 }.flatMap { drawn in drawn.label.map { "\($0) (class \(drawn.classIndex ?? -1)), " } }
        let what = (label ?? "") + setup.description
        ErrorReport.note("\(input) -> \(output): \(what)")
    }
}
