import Annotate
import ArgumentParser
import Core
import Foundation
import Media
import Pipeline

/// `camvid IN OUT [options]`: decode, explain, blend, encode, keeping timing and audio.
struct VideoCommand: AsyncParsableCommand {
    static let examples = """
        Examples:
          camvid in.mp4 out.mp4 --method gradcam
          ffmpeg -f v4l2 -i /dev/video0 -f nut - | camvid - - --format nut | ffplay -
        """

    static let configuration = CommandConfiguration(
        commandName: "video",
        abstract: "Explain every frame of a video and write the annotated video (the default command).",
        discussion: examples + "\n\n"
            + "The output keeps the input's frames, timestamps and audio and subtitle streams (copied packet for packet). "
            + "Ctrl-C stops reading, finishes the frames in flight and finalises the output, which then plays and "
            + "holds every completed frame."
    )

    @Argument(help: "The input: a file, a URL, '-' for standard input, or a device or source named with --input-format.")
    var input: String

    @Argument(help: "The output file, or '-' for standard output (then give --format).")
    var output: String

    @Option(help: ArgumentHelp("The input format, like ffmpeg's -f before -i (v4l2, lavfi, nut, …); probed when absent.", valueName: "name"))
    var inputFormat: String?

    @Option(name: .customLong("input-option"),
            help: ArgumentHelp("A demuxer or device option KEY=VALUE (video_size=640x480, framerate=30); repeatable.", valueName: "key=value"))
    var inputOptions: [String] = []

    @Option(help: ArgumentHelp("The output container (mp4, matroska, nut, mpegts, …); chosen from OUT's name when absent.", valueName: "name"))
    var format: String?

    @OptionGroup(title: "Span") var span: SpanOptions

    @OptionGroup(title: "Sharding") var sharding: ShardOptions

    @Option(help: "H.264 constant rate factor, 0 (lossless) to 51.")
    var crf: Int = 23

    @Option(help: "libx264 preset (ultrafast … veryslow).")
    var preset: String = "superfast"

    @OptionGroup var explanation: ExplanationOptions

    @Flag(inversion: .prefixedNo,
          help: "Drop the oldest waiting frame when the pipeline falls behind (default: on for devices and lavfi, off for files and pipes).")
    var realtime: Bool?

    @Option(help: "Items each channel between two stages holds before the stage before it waits.")
    var channelCapacity: Int = 4

    @Option(help: "Frames the network takes at once (only frames already waiting are batched).")
    var batchSize: Int = 4

    @Option(help: ArgumentHelp("Threads each network call uses (0: OpenMP's default, all cores); one lets the other stages use the other cores.", valueName: "n"))
    var networkThreads: Int = 1

    @Flag(name: [.short, .long], help: "No progress line and no summary.")
    var quiet = false

    @Flag(help: "Show FFmpeg's own warnings.")
    var verbose = false

    mutating func validate() throws {
        if output == "-" && explanation.records.json == "-" {
            throw ValidationError("--json - and the video cannot both go to standard output")
        }
        if output == "-" && format == nil {
            throw ValidationError("writing to standard output ('-') needs --format (e.g. --format nut)")
        }
        guard (0...51).contains(crf) else { throw ValidationError("--crf must be between 0 and 51, got \(crf)") }
        guard channelCapacity >= 1 else { throw ValidationError("--channel-capacity must be at least 1") }
        guard networkThreads >= 0 else { throw ValidationError("--network-threads must be 0 or more") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        for option in inputOptions where !option.contains("=") {
            throw ValidationError("--input-option '\(option)' is not KEY=VALUE")
        }
        if sharding.shard != nil || sharding.archive {
            if output == "-" || explanation.records.json == "-" {
                throw ValidationError("--shard and --archive write files renamed when complete, not standard output")
            }
        }
        if sharding.shard != nil && !sharding.archive && explanation.records.smooth != nil {
            throw ValidationError("--smooth cannot be sharded: each frame's map depends on the frames before it, which another shard explains")
        }
        if sharding.archive {
            for (option, path) in [("--json", explanation.records.json), ("--cams", explanation.records.cams)] {
                if let path, !path.contains("{name}") { throw ValidationError("\(option) with --archive needs {name} in its path, one file per input") }
            }
        }
    }

    func run() async throws {
        FFmpegLog.setLevel(verbose ? .warning : .quiet)
        // Every stage thread (decoder, converter, encoder threads, OpenMP) would otherwise get its own glibc arena,
        // each keeping its peak of multi-megabyte frame buffers: two arenas are enough on a few cores and lower the peak.
        MallocArenas.limit(to: 2)
        // A reader that goes away (ffplay closed) must be a write error, reported, not a silent kill.
        signal(SIGPIPE, SIG_IGN)
        let stop = StopSignal()
        let interrupts = InterruptHandler(stop: stop)
        // Option errors (an unknown --class label, a missing layer, --shard auto outside a job) come before any file is opened.
        let setup = try ExplanationSetup(explanation, networkThreads: networkThreads == 0 ? nil : networkThreads)
        let shard = try sharding.resolve(ProcessInfo.processInfo.environment)
        let records = explanation.records
        guard sharding.archive else {
            let files = try shard.map { try OutputFiles(shard: $0, video: output, json: records.json, cams: records.cams) }
            try await explain(input, to: output, files: files, setup: setup, stop: stop, interrupts: interrupts)
            return
        }
        let archive = try Archive(list: input, outputPattern: output)
        let mine = shard.map { archive.inputs[$0.items(of: archive.inputs.count)] } ?? archive.inputs[...]
        for item in mine where !stop.isStopped {
            let files = try OutputFiles(shard: nil, video: Archive.name(output, for: item),
                                        json: records.json.map { Archive.name($0, for: item) }, cams: records.cams.map { Archive.name($0, for: item) })
            if FileManager.default.fileExists(atPath: files.video) {
                if !quiet { ErrorReport.note("\(files.video) exists: \(item) is done") }
                continue
            }
            try await explain(item, to: files.video, files: files, setup: setup, stop: stop, interrupts: interrupts)
        }
    }

    /// Explains `input` into `output` (with `files`, under their temporary names until complete).
    private func explain(_ input: String, to output: String, files: OutputFiles?, setup: ExplanationSetup,
                         stop: StopSignal, interrupts: InterruptHandler) async throws {
        var options: [String: String] = [:]
        for option in inputOptions {
            let parts = option.split(separator: "=", maxSplits: 1)
            options[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        let job = try await FailureInFile.naming(input) {
            try VideoJob(input: MediaInput(input, format: inputFormat, options: options), span: span.span, files: files,
                         output: MediaOutput(output, format: format),
                         encoderSettings: EncoderSettings(crf: crf, preset: preset), stop: stop)
        }
        let written = job.encoder.output.location
        let recordPaths = files.map { files in (json: files.json.map(OutputFiles.temporary), cams: files.cams.map(OutputFiles.temporary)) }
        let progress = ProgressReporter.standardError(quiet: quiet, expectedFrames: job.expectedFrameCount)
        let summary = try await FailureInFile.naming(input) {
            try await job.run(
                preprocessor: setup.preprocessor, explainer: try setup.explainer(explanation.records, paths: recordPaths),
                overlay: ExplanationOverlay(setup.overlay),
                configuration: PipelineConfiguration(channelCapacity: channelCapacity, batchSize: batchSize, realtime: realtime ?? job.isLive),
                progress: progress)
        }
        if let number = interrupts.signalReceived, summary.stoppedEarly {
            let incomplete = files == nil ? "" : " (left under its temporary name: the run is incomplete)"
            ErrorReport.note("interrupted by \(InterruptHandler.name(of: number)): \(written) is finalised with \(summary.framesWritten) frames\(incomplete)")
            throw ExitCode(128 + number)
        }
        guard !quiet else { return }
        if summary.framesDropped > 0 {
            ErrorReport.note("dropped \(summary.framesDropped) of \(summary.framesWritten + summary.framesDropped) frames to keep up with the live input")
        }
        let decoder = job.decoder
        if decoder.skippedPacketCount > 0 || decoder.damagedFrameCount > 0 {
            ErrorReport.note("\(input): skipped \(decoder.skippedPacketCount) corrupt packets, \(decoder.damagedFrameCount) frames repaired by the decoder")
        }
        for stream in job.encoder.droppedStreams {
            ErrorReport.note("\(output): stream \(stream) of \(input) left out: the \(job.encoder.containerName) container cannot hold it")
        }
        let what = files?.shard.map { "\(setup.description), shard \($0)" } ?? setup.description
        ErrorReport.note(progress.summary(output: output, what: what))
    }
}

/// glibc's malloc arenas (`mallopt(M_ARENA_MAX)`), looked up at run time: Glibc's Swift module
/// has neither `mallopt` nor the `M_ARENA_MAX` macro of `<malloc.h>`.
enum MallocArenas {
    private typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    /// `M_ARENA_MAX` in `<malloc.h>`.
    private static let arenaMax: Int32 = -8

    /// Caps the number of arenas; does nothing where glibc's `mallopt` is absent.
    static func limit(to count: Int32) {
        #if canImport(Glibc)
        guard let symbol = dlsym(nil, "mallopt") else { return }
        _ = unsafeBitCast(symbol, to: Mallopt.self)(arenaMax, count)
        #endif
    }
}
