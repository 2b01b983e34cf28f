import Annotate
import ArgumentParser
import Core
import Engine
import Explain
import Foundation
import Media
import Report

/// `camvid report IN -o report.html`: which explanation to trust on this video, as one self-contained HTML page.
struct ReportCommand: AsyncParsableCommand {
    static let defaultMethods: [ExplanationMethod] = [.gradcam, .gradcamPlusPlus, .scorecam, .layercam, .eigencam]

    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Compare explanation methods on sampled frames of a video: one self-contained HTML page of their faithfulness, cost and overlays.",
        discussion: """
            Examples:
              camvid report in.mp4 -o report.html
              camvid report in.mp4 -o r.html --methods gradcam,scorecam --every 25
              camvid report in.mp4 -o r.html --metrics road,deletion --frames 20
            """ + "\n\n"
            + "Each sampled frame is explained by every method (one frame at a time, so costs are per frame) and each "
            + "explanation scored by --metrics (default: all). The page holds a table of each method's scores over the "
            + "frames (mean ± standard deviation) and its cost in ms per frame, the best of each column marked; each score "
            + "over time, one line per method; the top-1 class and its probability over time; a contact sheet of the "
            + "frames with each method's overlay side by side. It needs no network or script to view."
    )

    @Argument(help: "The video (a file or URL FFmpeg reads).")
    var input: String

    @Option(name: [.short, .long], help: ArgumentHelp("The HTML page to write.", valueName: "report.html"))
    var output: String

    @Option(help: ArgumentHelp("The methods compared, comma-separated (default \(ReportCommand.defaultMethods.map(\.rawValue).joined(separator: ","))).", valueName: "m1,m2,…"))
    var methods: String?

    @Option(help: ArgumentHelp("Sample this many frames, spread evenly over the video (default 8); with --every, the most frames sampled.", valueName: "n"))
    var frames: Int?

    @Option(help: ArgumentHelp("Sample every n-th frame from the first instead.", valueName: "n"))
    var every: Int?

    @Option(help: ArgumentHelp("Width of the pictures in the contact sheet, in pixels (the frame's aspect kept).", valueName: "pixels"))
    var thumbnailWidth: Int = 320

    @OptionGroup(title: "Span") var span: SpanOptions
    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Method") var method: MethodOptions
    @OptionGroup(title: "Class") var classes: ClassOptions
    @OptionGroup(title: "Preprocessing") var preprocessing: PreprocessingOptions
    @OptionGroup(title: "Drawing") var drawing: OverlayOptions
    @OptionGroup(title: "Faithfulness") var metrics: MetricOptions

    @Flag(name: [.short, .long], help: "No progress lines and no summary.")
    var quiet = false

    mutating func validate() throws {
        if let frames, frames < 1 { throw ValidationError("--frames must be at least 1, got \(frames)") }
        if let every, every < 1 { throw ValidationError("--every must be at least 1, got \(every)") }
        guard thumbnailWidth >= 16 else { throw ValidationError("--thumbnail-width must be at least 16, got \(thumbnailWidth)") }
        if let methods { _ = try ExplanationMethod.list(methods, option: "--methods") }
    }

    /// `--methods`, or `--method` alone, or the default five.
    func chosenMethods() throws -> [ExplanationMethod] {
        switch (methods, method.method) {
        case (.some, .some): throw CommandError("give --methods (a list) or --method, not both")
        case (.some(let list), nil): return try ExplanationMethod.list(list, option: "--methods")
        case (nil, .some(.none)): throw CommandError("report compares explanations: --method none has none")
        case (nil, .some(.explained(let one))): return [one]
        case (nil, nil): return Self.defaultMethods
        }
    }

    func run() async throws {
        FFmpegLog.setLevel(.quiet)
        let clock = ContinuousClock(), started = clock.now
        let methods = try chosenMethods()
        try method.checkGuidedClip(methods)
        let target = try classes.single()
        guard let settings = try metrics.settings(defaultMetrics: FaithfulnessMetric.allCases) else {
            throw CommandError("--metrics names no metric")
        }
        let (network, labels) = try model.load()
        let explainers = try methods.map { chosen in
            do {
                return try NetworkExplainer(network: network, method: chosen, options: method.explainerOptions(), target: target,
                                            labels: labels, metrics: settings)
            } catch let error as ExplainError {
                throw FailureInFile(file: (try? model.url().lastPathComponent) ?? "the model", error: error)
            }
        }
        var comparison = MethodComparison(explainers: explainers, preprocessor: try preprocessing.preprocessor(for: network, task: explainers.first?.task),
                                          overlay: try drawing.overlay(), thumbnailWidth: thumbnailWidth)
        let (compared, sampling) = try await FailureInFile.naming(input) { () -> ([ComparedFrame], String) in
            let decoder = try FrameDecoder(MediaInput(input), span: span.span, settings: DecoderSettings(deliversOtherStreams: false))
            let (sampling, described) = try self.sampling(decoder)
            let compared = try comparison.run(decoder, sampling: sampling) { frame in
                guard !quiet else { return }
                ErrorReport.note(String(format: "frame %d at %.2f s explained by %d methods", frame.index, frame.seconds, methods.count))
            }
            return (compared, described)
        }
        guard !compared.isEmpty else { throw CommandError("\(input): no frame was sampled (the video holds none in the span)") }

        let report = try ComparisonReport(
            title: (input as NSString).lastPathComponent,
            details: details(network: network, explainers: explainers, target: target, labels: labels, settings: settings, sampling: sampling),
            methods: methods.map(\.rawValue),
            frames: compared.map { frame in try sampledFrame(frame, labels: labels) })
        let page = Data(ReportPage.html(report).utf8)
        do {
            try page.write(to: URL(fileURLWithPath: output))
        } catch {
            throw CommandError("\(output): cannot write the report: \(error.localizedDescription)")
        }
        guard !quiet else { return }
        let seconds = (clock.now - started).milliseconds / 1000
        ErrorReport.note(String(format: "wrote %@: %d frames x %d methods, %.1f MB, in %.1f s", output, compared.count, methods.count,
                                Double(page.count) / 1e6, seconds))
    }

    /// The frames sampled, and how that reads in the report.
    private func sampling(_ decoder: FrameDecoder) throws -> (FrameSampling, String) {
        let total = VideoJob.expectedFrameCount(of: decoder.video, span: span.span)
        if let every {
            let limit = frames.map { ", at most \($0)" } ?? ""
            return (.every(every, limit: frames), "every \(every)th frame\(limit)" + (total.map { " of about \($0)" } ?? ""))
        }
        guard let total else {
            throw CommandError("the length of \(input) is unknown, so frames cannot be spread over it: sample it with --every N")
        }
        let count = frames ?? 8
        return (.evenly(count: count, of: total), "\(min(count, total)) frames spread evenly over about \(total)")
    }

    private func details(network: Network, explainers: [NetworkExplainer], target: ClassTarget, labels: ClassLabels,
                         settings: FaithfulnessSettings, sampling: String) throws -> [String] {
        let layers = Set(explainers.flatMap(\.layers)).sorted().joined(separator: ", ")
        let explained: String
        switch target {
        case .top1: explained = "each frame's most probable class"
        case .index(let k): explained = "class \(k) \(labels.name(of: k))"
        case .label(let name): explained = "class \(labels.name(of: try labels.index(of: name)))"
        }
        var metricParts: [String] = []
        for metric in settings.metrics {
            switch metric {
            case .road: metricParts.append(String(format: "road (imputation noise %g, seed %llu)", settings.noise, settings.seed))
            case .deletion, .insertion: metricParts.append("\(metric.rawValue) (\(settings.steps) steps)")
            default: metricParts.append(metric.rawValue)
            }
        }
        return [
            "\(try model.url().lastPathComponent), input \(network.inputShape[3])x\(network.inputShape[2]), target layer \(layers.isEmpty ? "none" : layers)",
            "\(sampling); explaining \(explained)",
            "scores: " + metricParts.joined(separator: ", ") + ", each on the explained class's softmax probability",
            "made by \(BuildInfo.versionLine)",
        ]
    }

    private func picture(_ image: RGBImage) throws -> ComparisonReport.Picture {
        ComparisonReport.Picture(bytes: try PictureFile.encode(image, fileExtension: "jpg"), mimeType: "image/jpeg",
                                 width: image.width, height: image.height)
    }

    private func sampledFrame(_ frame: ComparedFrame, labels: ClassLabels) throws -> ComparisonReport.SampledFrame {
        let probabilities = frame.explained.first?.explanation.probabilities ?? []
        let top = probabilities.indices.max { probabilities[$0] < probabilities[$1] }
        return ComparisonReport.SampledFrame(
            index: frame.index, seconds: frame.seconds, topClass: top.map { labels.name(of: $0) } ?? "none",
            topProbability: top.map { probabilities[$0] } ?? 0, picture: try picture(frame.thumbnail),
            explained: try frame.explained.map { explained in
                ComparisonReport.Explained(
                    picture: try picture(explained.overlay), caption: explained.explanation.label ?? "",
                    scores: explained.explanation.metrics ?? FaithfulnessScores(),
                    explainingMilliseconds: explained.explaining.milliseconds, scoringMilliseconds: explained.scoring.milliseconds)
            })
    }
}
