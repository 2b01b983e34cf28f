import Annotate
import ArgumentParser
import Foundation
import Media

/// `camvid concat OUT PART... --audio-from IN`: the parts of a sharded run joined into one video.
struct ConcatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "concat",
        abstract: "Join the parts of a sharded run (camvid IN PART --shard I/N) into one video, without re-encoding.",
        discussion: """
            Examples:
              camvid concat out.mp4 parts/part-*.mp4 --audio-from in.mp4
              camvid concat out.mp4 parts/*.mp4 --audio-from in.mp4 --json frames.jsonl --cams maps.npy

            The parts may be given in any order: each says which shard it is. They must be complete, contiguous \
            and consistent: every shard 0…N-1 exactly once, all from this source with the same span and encoder \
            settings; a missing, duplicated or truncated part is an error naming it. The video packets are copied \
            as they are; the source's audio and subtitles are copied once, as an unsharded run copies them; the \
            parts' --json and --cams shards are joined (frames renumbered from 0). Each output is written under a \
            temporary name and renamed when complete.
            """
    )

    @Argument(help: "The joined video (the container follows its name, or --format).")
    var output: String

    @Argument(help: "The parts, in any order.")
    var parts: [String]

    @Option(help: ArgumentHelp("The source the parts were made from: its audio and subtitles are copied once.", valueName: "IN"))
    var audioFrom: String

    @Option(help: ArgumentHelp("The source's input format, as for the run that made the parts.", valueName: "name"))
    var inputFormat: String?

    @Option(help: ArgumentHelp("The output container (mp4, matroska, …); chosen from OUT's name when absent.", valueName: "name"))
    var format: String?

    @Option(help: ArgumentHelp("Join the parts' --json shards into this file.", valueName: "file.jsonl"))
    var json: String?

    @Option(help: ArgumentHelp("Join the parts' --cams shards into this .npy.", valueName: "file.npy"))
    var cams: String?

    @Flag(name: [.short, .long], help: "No summary.")
    var quiet = false

    @Flag(help: "Show FFmpeg's own warnings.")
    var verbose = false

    mutating func validate() throws {
        guard !parts.isEmpty else { throw ValidationError("give the parts to join") }
        if output == "-" { throw ValidationError("concat writes a file renamed when complete, not standard output") }
    }

    func run() throws {
        FFmpegLog.setLevel(verbose ? .warning : .quiet)
        let started = Date()
        let join = try PartJoin(parts: parts, source: MediaInput(audioFrom, format: inputFormat),
                                output: MediaOutput(output, format: format), json: json, cams: cams)
        let summary = try join.run()
        guard !quiet else { return }
        let seconds = Date().timeIntervalSince(started)
        ErrorReport.note(String(format: "joined %d parts (%d frames) and %d packets of %@'s other streams into %@ in %.1f s",
                                summary.parts, summary.frames, summary.otherPackets, audioFrom, output, seconds))
    }
}
