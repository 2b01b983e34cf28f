import Core
import Media
import Pipeline

/// One `camvid IN OUT` run: the input open for decoding and the output open for encoding,
/// ready to run the pipeline between them.
///
/// A frame's buffers on its way: the *decode* buffer (FFmpeg's frame), the *RGB* buffer swscale
/// writes at the frame's size (`Frame.image`), the *model input* made from it (`Frame.input`,
/// freed once explained), the *map* (`Frame.explanation`, at the input's resolution), the
/// *blended frame* (the RGB buffer again, drawn on in place) and the *encoder input* (the
/// encoder's own frame, converted from the RGB buffer). The engine keeps its activations in
/// buffers it reuses from call to call.
public struct VideoJob {
    /// The input's decoder (the video stream and the streams to copy).
    public let decoder: FrameDecoder
    /// The output's encoder and muxer.
    public let encoder: FrameEncoder
    /// The span of the input decoded.
    public let span: TimeSpan
    /// Raised to stop reading (Ctrl-C): the frames in flight are finished and the output finalised.
    public let stop: StopSignal
    /// The files renamed into place when the run is complete (a shard's part, an archive's output).
    public let files: OutputFiles?

    /// Opens `input` (its `span` only) and `output`; throws a `MediaError` naming the file that
    /// cannot be read or written.
    ///
    /// With `files`, the video is written to its temporary name (`output` gives the container
    /// format); with a shard among them, only that shard of the span is read, and the video alone
    /// is written, tagged with its `PartManifest`.
    public init(input: MediaInput, span: TimeSpan = .all, files: OutputFiles? = nil, output: MediaOutput,
                encoderSettings: EncoderSettings = EncoderSettings(), stop: StopSignal = StopSignal()) throws {
        let shard = files?.shard
        decoder = try FrameDecoder(input, span: span, shard: shard,
                                   settings: DecoderSettings(deliversOtherStreams: shard == nil), stop: stop)
        var output = output
        if let files {
            output.location = OutputFiles.temporary(files.video)
        }
        if let files, let shard {
            output.metadata.merge(files.manifest(shard: shard, decoder: decoder, span: span, encoder: encoderSettings).tags) { $1 }
        }
        encoder = try FrameEncoder(output: output, source: decoder.source, settings: encoderSettings)
        self.span = span
        self.stop = stop
        self.files = files
    }

    /// Whether the input is a capture device or virtual source (frames may be dropped to keep up).
    public var isLive: Bool { decoder.video.isLive }

    /// About how many frames the run will write, when the input's length is known.
    public var expectedFrameCount: Int? { Self.expectedFrameCount(of: decoder.video, span: span, shard: files?.shard) }

    /// About how many frames `video` holds within `span` (and `shard` of it), when its length is known.
    public static func expectedFrameCount(of video: VideoStreamInfo, span: TimeSpan, shard: Shard? = nil) -> Int? {
        let rate = video.averageFrameRate.doubleValue
        var estimate = video.frameCountEstimate
        if let shard, let whole = estimate {
            // About an equal share (the cuts are by time).
            estimate = (whole + shard.count - 1) / shard.count
        }
        if let start = span.start, rate > 0, let whole = estimate {
            // The estimate counts from the beginning; the span starts later.
            estimate = max(0, whole - Int((start * rate).rounded()))
        }
        if let duration = span.duration, rate > 0 {
            let spanFrames = Int((duration * rate).rounded(.up))
            estimate = min(estimate ?? spanFrames, spanFrames)
        }
        return estimate
    }

    /// Runs decode → convert → explain → blend → encode to the end of the input (or until
    /// `stop`), then finalises the output and the explainer's records; its `files` are then
    /// renamed to their final names, unless the run stopped early or failed.
    ///
    /// `preprocessor` prepares each frame for the explainer's network (nil without one).
    /// Throws the first failure (naming the file and frame) after the output has been
    /// finalised with every frame completed before it.
    public func run(
        preprocessor: FramePreprocessor?, explainer: sending VideoExplainer, overlay: sending ExplanationOverlay,
        configuration: PipelineConfiguration, progress: ProgressReporter? = nil
    ) async throws -> PipelineSummary {
        let summary = try await VideoPipeline.run(
            source: DecoderSource(decoder), converter: FrameConverter(file: decoder.input.location, preprocessor: preprocessor),
            explainer: explainer, overlay: overlay, sink: VideoSink(encoder),
            configuration: configuration, stop: stop, progress: progress)
        // Only an input that ended before its span (or shard) did can be cut short.
        let reached = [encoder.lastFrameEnd, decoder.lastDecodedPts].compactMap { $0 }.max()
        if !summary.stoppedEarly, !decoder.endedAtSpanEnd, let shortfall = truncation(endingAt: reached) {
            throw MediaError(file: decoder.input.location, frame: summary.framesWritten, reason: shortfall)
        }
        if !summary.stoppedEarly { try files?.commit() }
        return summary
    }

    /// Why the input looks cut short, when the video ended well before the length its
    /// container declares (a streamable file such as Matroska or NUT truncated in transfer:
    /// FFmpeg reads such a file to its cut as if it ended there).
    ///
    /// Streams may legitimately end a little apart (audio outlasting video), so only a video
    /// ending before 90% of the declared length and more than a second early counts.
    func truncation(endingAt end: Int64?) -> String? {
        let video = decoder.video
        guard !video.isLive, let declared = video.duration, declared > 0 else { return nil }
        let reached = end.map { video.timeBase.seconds($0) } ?? 0
        guard reached < declared * 0.9, declared - reached > 1 else { return nil }
        return String(format: "the input ends at %.2f s, before the %.2f s it declares: the file is cut short", reached, declared)
    }
}
