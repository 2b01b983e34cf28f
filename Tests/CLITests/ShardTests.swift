import Annotate
import Core
import Foundation
import Media
import MediaTestSupport
import TestSupport
import Testing

/// The sources the sharded runs are proven on: the sample (no B-frames, one keyframe), and two
/// made from its first second at 160x90 with its audio: one with B-frames, one with B-frames and a
/// variable frame rate (frames dropped irregularly, each keeping its pts).
enum ShardSource: String, CaseIterable, CustomTestStringConvertible {
    case sample, bFrames, variableRate

    var testDescription: String { rawValue }

    static let sampleClip = ReferenceData.packageFile("Samples/bigbuckbunny.mp4")

    /// The clip in `folder` and the span of it the runs explain.
    func make(in folder: URL) throws -> (clip: URL, span: [String]) {
        guard self != .sample else { return (Self.sampleClip, ["--duration", "0.6"]) }
        let clip = folder.appendingPathComponent("\(rawValue).mp4")
        _ = PatternClips.quiet
        let decoder = try FrameDecoder(MediaInput(Self.sampleClip.path), span: TimeSpan(duration: 1))
        var source = decoder.source
        (source.video.width, source.video.height) = (160, 90)
        // superfast keeps x264's B-frames (ultrafast has none).
        let encoder = try FrameEncoder(output: MediaOutput(clip.path), source: source, settings: EncoderSettings(preset: "superfast"))
        let converter = PixelConverter(file: Self.sampleClip.path)
        var kept = 0
        while let item = try decoder.next() {
            switch item {
            case .frame(let frame):
                // Irregular gaps: frames 2, 3, 9, 14, 15, 16 and 21 are dropped, the others keep their own pts.
                if self == .variableRate, [2, 3, 9, 14, 15, 16, 21].contains(frame.index) { continue }
                var timing = frame.timing
                timing.index = kept
                try encoder.encode(rgb: try converter.rgb(frame), width: frame.width, height: frame.height, timing: timing)
                kept += 1
            case .packet(let packet):
                try encoder.write(packet)
            }
        }
        try encoder.finish()
        return (clip, [])
    }
}

/// `--shard I/N` and `camvid concat`: a sharded run joined equals the unsharded run.
@Suite(.serialized) struct ShardTests {
    /// What the checks compare of a run: decoded frame pts, the audio packets, the records.
    struct Run: Equatable {
        var pts: [Int64]
        var audioPts: [Int64?]
        var audioData: [[UInt8]]
        var json: [String]
        var cams: Data

        init(video: URL, json: URL, cams: URL) throws {
            let contents = try PatternClips.read(MediaInput(video.path))
            pts = contents.pts
            audioPts = contents.packets.map(\.pts)
            audioData = contents.packets.map(\.data)
            self.json = try String(contentsOf: json, encoding: .utf8).split(separator: "\n").map(String.init)
            self.cams = try Data(contentsOf: cams)
        }
    }

    static func check(_ result: CamvidProcess.Result) {
        #expect(result.status == 0, "\(result.standardError)")
    }

    /// For N = 1, 2, 3 and 7 (more shards than the one keyframe of every clip): the same frame
    /// count and pts, the same audio packets, the same `--json` lines and the same `--cams` maps
    /// (`--batch-size 1`: a frame's map does not depend on the frames batched with it).
    @Test(arguments: ShardSource.allCases)
    func shardedAndJoinedEqualsUnsharded(source: ShardSource) throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-shard")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (clip, span) = try source.make(in: folder)
        if source != .sample {
            let decoded = try FrameDecoder(MediaInput(clip.path))
            var types: Set<Character> = [], durations: Set<Int64> = []
            while let item = try decoded.next() {
                if case .frame(let frame) = item { types.insert(frame.pictureType); durations.insert(frame.duration) }
            }
            #expect(types.contains("B"), "the clip has B-frames")
            #expect((durations.count > 1) == (source == .variableRate), "\(durations)")
        }
        func file(_ name: String) -> URL { folder.appendingPathComponent(name) }
        let common = [clip.path] + span + ["--batch-size", "1", "--quiet"]
        Self.check(try CamvidProcess.run(common + [file("whole.mp4").path, "--json", file("whole.jsonl").path,
                                                                              "--cams", file("whole.npy").path], in: folder))
        let whole = try Run(video: file("whole.mp4"), json: file("whole.jsonl"), cams: file("whole.npy"))
        #expect(whole.pts.count >= 10)
        #expect(!whole.audioPts.isEmpty, "the clip has audio")

        for count in [1, 2, 3, 7] {
            var parts: [String] = []
            for index in (0..<count).reversed() {
                let part = file("part-\(index)-of-\(count).mp4").path
                Self.check(try CamvidProcess.run(common + [part, "--shard", "\(index)/\(count)",
                                                 "--json", file("f-\(index)-of-\(count).jsonl").path, "--cams", file("m-\(index)-of-\(count).npy").path],
                                                 in: folder))
                #expect(!FileManager.default.fileExists(atPath: OutputFiles.temporary(part)), "the temporary part is renamed")
                parts.append(part)
            }
            let joined = file("joined-\(count).mp4"), json = file("joined-\(count).jsonl"), cams = file("joined-\(count).npy")
            Self.check(try CamvidProcess.run(["concat", joined.path] + parts + ["--audio-from", clip.path, "--json", json.path,
                                                                              "--cams", cams.path, "--quiet"], in: folder))
            let run = try Run(video: joined, json: json, cams: cams)
            #expect(run.pts == whole.pts, "N = \(count)")
            #expect(run.audioPts == whole.audioPts && run.audioData == whole.audioData, "N = \(count)")
            #expect(run.json == whole.json, "N = \(count)")
            #expect(run.cams == whole.cams, "N = \(count)")
        }
    }
}


/// What `camvid concat` refuses, `--shard auto`, empty shards, archives and interrupted shards.
@Suite(.serialized) struct ShardRefusalTests {
    /// A 12-frame pattern clip cut into `count` parts with `--method none` (fast); the parts' paths.
    static func parts(of clip: URL, count: Int, in folder: URL, prefix: String = "part") throws -> [String] {
        try (0..<count).map { index in
            let part = folder.appendingPathComponent("\(prefix)-\(index).mp4").path
            let result = try CamvidProcess.run([clip.path, part, "--shard", "\(index)/\(count)", "--method", "none", "--quiet"], in: folder)
            #expect(result.status == 0, "\(result.standardError)")
            return part
        }
    }

    static func concat(_ parts: [String], source: URL, in folder: URL, extra: [String] = []) throws -> CamvidProcess.Result {
        try CamvidProcess.run(["concat", folder.appendingPathComponent("joined.mp4").path] + parts + ["--audio-from", source.path, "--quiet"] + extra,
                              in: folder)
    }

    /// One line on standard error, a non-zero exit, and no output.
    static func expectRefused(_ result: CamvidProcess.Result, naming: String, saying: String, folder: URL) {
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1, "\(result.standardError)")
        #expect(result.standardError.contains(naming) && result.standardError.contains(saying), "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("joined.mp4").path))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("joined.partial.mp4").path))
    }

    @Test func aLostADuplicatedATruncatedOrAForeignPartIsRefused() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-shard")
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("clip.mkv"), other = folder.appendingPathComponent("other.mkv")
        try PatternClips.write(clip, count: 12)
        try PatternClips.write(other, count: 13)
        let parts = try Self.parts(of: clip, count: 3, in: folder)
        #expect(try Self.concat(parts, source: clip, in: folder).status == 0)
        try FileManager.default.removeItem(at: folder.appendingPathComponent("joined.mp4"))

        Self.expectRefused(try Self.concat([parts[0], parts[2]], source: clip, in: folder),
                           naming: "joined.mp4", saying: "shard 1/3 missing", folder: folder)
        let twin = folder.appendingPathComponent("copy-of-part-1.mp4").path
        try FileManager.default.copyItem(atPath: parts[1], toPath: twin)
        Self.expectRefused(try Self.concat(parts + [twin], source: clip, in: folder), naming: twin, saying: "given twice", folder: folder)
        let cut = folder.appendingPathComponent("cut-part-1.mp4")
        try ReferenceData.cutShort(URL(fileURLWithPath: parts[1]), keeping: 0.6, to: cut)
        Self.expectRefused(try Self.concat([parts[0], cut.path, parts[2]], source: clip, in: folder),
                           naming: cut.path, saying: "cut short", folder: folder)
        let foreign = try Self.parts(of: other, count: 3, in: folder, prefix: "other")
        Self.expectRefused(try Self.concat([parts[0], foreign[1], parts[2]], source: clip, in: folder),
                           naming: foreign[1], saying: "another source", folder: folder)
        Self.expectRefused(try Self.concat(parts, source: other, in: folder), naming: other.path, saying: "not the source", folder: folder)
        Self.expectRefused(try Self.concat(parts, source: clip, in: folder, extra: ["--json", folder.appendingPathComponent("j.jsonl").path]),
                           naming: parts[0], saying: "without --json", folder: folder)
        let notAPart = folder.appendingPathComponent("plain.mp4")
        #expect(try CamvidProcess.run([clip.path, notAPart.path, "--method", "none", "--quiet"], in: folder).status == 0)
        Self.expectRefused(try Self.concat([notAPart.path], source: clip, in: folder), naming: notAPart.path, saying: "not a whole part", folder: folder)
    }

    /// A `--json` shard that lost its last line is refused, naming it.
    @Test func aTruncatedRecordShardIsRefused() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-shard")
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("clip.mkv")
        MovingDiscClipWriter.write(clip, count: 4)
        var parts: [String] = []
        for index in 0..<2 {
            let part = folder.appendingPathComponent("part-\(index).mp4").path
            let json = folder.appendingPathComponent("f-\(index).jsonl").path
            let result = try CamvidProcess.run([clip.path, part, "--shard", "\(index)/2", "--json", json, "--quiet"], in: folder)
            #expect(result.status == 0, "\(result.standardError)")
            parts.append(part)
        }
        let shard = folder.appendingPathComponent("f-1.jsonl")
        let lines = try String(contentsOf: shard, encoding: .utf8).split(separator: "\n")
        try (lines.dropLast().joined(separator: "\n") + "\n").write(to: shard, atomically: true, encoding: .utf8)
        let joined = folder.appendingPathComponent("all.jsonl").path
        Self.expectRefused(try Self.concat(parts, source: clip, in: folder, extra: ["--json", joined]),
                           naming: shard.path, saying: "cut short", folder: folder)
        #expect(!FileManager.default.fileExists(atPath: joined))
    }

    /// More shards than frames: the empty shards' parts join like the others.
    @Test func emptyShardsJoin() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-shard")
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("clip.mkv")
        try PatternClips.write(clip, count: 4)
        let parts = try Self.parts(of: clip, count: 7, in: folder)
        // An empty part has no video stream at all (MP4 leaves an empty track out): count its packets.
        let counts = try parts.map { path in
            let reader = try PacketReader(MediaInput(path))
            var count = 0
            while try reader.next() != nil { count += 1 }
            return count
        }
        #expect(counts.contains(0) && counts.reduce(0, +) == 4, "\(counts)")
        #expect(try Self.concat(parts.shuffled(), source: clip, in: folder).status == 0)
        let joined = try PatternClips.read(MediaInput(folder.appendingPathComponent("joined.mp4").path))
        #expect(joined.shown == [0, 1, 2, 3])
        #expect(joined.pts == (try PatternClips.read(MediaInput(clip.path))).pts)
    }

    /// A span (`--start`, `--duration`) is sharded on the unsharded run's timeline: the joined video has its
    /// frames, pts and audio packets.
    @Test func aSpanIsShardedOnItsOwnTimeline() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-shard")
        defer { try? FileManager.default.removeItem(at: folder) }
        let sample = ShardSource.sampleClip, span = ["--start", "1.5", "--duration", "1.3", "--method", "none", "--quiet"]
        let whole = folder.appendingPathComponent("whole.mp4")
        #expect(try CamvidProcess.run([sample.path, whole.path] + span, in: folder).status == 0)
        let parts = try (0..<3).map { index in
            let part = folder.appendingPathComponent("part-\(index).mp4").path
            let result = try CamvidProcess.run([sample.path, part, "--shard", "\(index)/3"] + span, in: folder)
            #expect(result.status == 0, "\(result.standardError)")
            return part
        }
        #expect(try Self.concat(parts, source: sample, in: folder).status == 0)
        let expected = try PatternClips.read(MediaInput(whole.path))
        let joined = try PatternClips.read(MediaInput(folder.appendingPathComponent("joined.mp4").path))
        // 1.5 s falls between frames: the first is the one at 1.52 s, 0.02 s into the span.
        #expect(joined.pts == expected.pts && expected.pts.count == 32 && expected.pts.first == 20_000)
        #expect(joined.packets.map(\.pts) == expected.packets.map(\.pts) && !expected.packets.isEmpty)
        #expect(joined.packets.map(\.data) == expected.packets.map(\.data))
    }

    /// `--shard auto` reads Slurm's array task (from its minimum) or Kubernetes' completion index.
    @Test func autoReadsTheSchedulersEnvironment() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-shard")
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("clip.mkv")
        try PatternClips.write(clip, count: 6)
        let base = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SLURM_") && $0.key != "JOB_COMPLETION_INDEX" }
        let cases: [([String: String], String?)] = [
            (["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "4"], "2/4"),
            (["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3"], "1/3"),
            (["JOB_COMPLETION_INDEX": "4", "CAMVID_SHARD_COUNT": "5"], "4/5"),
            (["JOB_COMPLETION_INDEX": "4"], nil),
            ([:], nil),
        ]
        for (variables, expected) in cases {
            let part = folder.appendingPathComponent("part.mp4")
            try? FileManager.default.removeItem(at: part)
            let result = try CamvidProcess.run([clip.path, part.path, "--shard", "auto", "--method", "none", "--quiet"],
                                               environment: base.merging(variables) { $1 })
            if let expected {
                #expect(result.status == 0, "\(result.standardError)")
                #expect(try PacketReader(MediaInput(part.path)).metadata["camvid_shard"] == expected)
            } else {
                #expect(result.status == 1 && result.errorLines.count == 1 && result.standardError.contains("--shard auto"), "\(result.standardError)")
            }
        }
    }

    /// A shard that fails (its input is cut short) leaves its part under the temporary name only.
    @Test func aFailedShardIsNotRenamed() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-shard")
        defer { try? FileManager.default.removeItem(at: folder) }
        let cut = folder.appendingPathComponent("cut.mkv")
        try PatternClips.writeCut(cut, count: 200, keeping: 0.5)
        let part = folder.appendingPathComponent("part-1.mp4").path
        let result = try CamvidProcess.run([cut.path, part, "--shard", "1/2", "--method", "none"], in: folder)
        #expect(result.status == 1 && result.standardError.contains("cut short"), "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: part))
        let partial = OutputFiles.temporary(part)
        #expect(partial.hasSuffix("/.part-1.partial.mp4"))
        #expect(FileManager.default.fileExists(atPath: partial))
        let refused = try CamvidProcess.run(["concat", folder.appendingPathComponent("joined.mp4").path, partial, "--audio-from", cut.path], in: folder)
        #expect(refused.status == 1 && refused.standardError.contains("did not complete"), "\(refused.standardError)")
    }

    /// What a shard cannot be is said before any work, in one line: a part that is not MP4, a smoothed
    /// shard, a part on standard output, a shard outside the count.
    @Test func impossibleShardsAreRefused() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-shard")
        defer { try? FileManager.default.removeItem(at: folder) }
        let clip = folder.appendingPathComponent("clip.mkv")
        try PatternClips.write(clip, count: 4)
        let cases: [([String], String)] = [
            ([folder.appendingPathComponent("part.mkv").path, "--shard", "0/2", "--method", "none"], "must be an MP4 file"),
            ([folder.appendingPathComponent("part.mp4").path, "--shard", "0/2", "--smooth", "3"], "--smooth cannot be sharded"),
            (["-", "--format", "nut", "--shard", "0/2", "--method", "none"], "not standard output"),
            ([folder.appendingPathComponent("part.mp4").path, "--shard", "2/2", "--method", "none"], "is not I/N"),
        ]
        for (arguments, message) in cases {
            let result = try CamvidProcess.run([clip.path] + arguments, in: folder)
            #expect(result.status != 0 && result.errorLines.count == 1 && result.standardError.contains(message), "\(result.standardError)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains("part") }.isEmpty)
    }

    /// An archive sharded by file: each input explained by exactly one shard, to an output named
    /// after it; a rerun skips what exists.
    @Test func anArchiveIsShardedByFile() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-shard")
        defer { try? FileManager.default.removeItem(at: folder) }
        let names = ["a", "b", "c"]
        for (i, name) in names.enumerated() { try PatternClips.write(folder.appendingPathComponent("\(name).mkv"), count: 3 + i) }
        let list = folder.appendingPathComponent("list.txt")
        try (names.map { folder.appendingPathComponent("\($0).mkv").path }.joined(separator: "\n") + "\n# done\n")
            .write(to: list, atomically: true, encoding: .utf8)
        let pattern = folder.appendingPathComponent("out/{name}.mkv").path
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("out"), withIntermediateDirectories: true)
        var logs: [String] = []
        for index in 0..<2 {
            let result = try CamvidProcess.run([list.path, pattern, "--archive", "--shard", "\(index)/2", "--method", "none"], in: folder)
            #expect(result.status == 0, "\(result.standardError)")
            logs.append(result.standardError)
        }
        // Shard 0 of 2 takes [0, 1) of three files, shard 1 takes [1, 3).
        #expect(logs[0].contains("a.mkv") && !logs[0].contains("b.mkv") && logs[1].contains("b.mkv") && logs[1].contains("c.mkv"))
        for (i, name) in names.enumerated() {
            #expect(try PatternClips.read(MediaInput(folder.appendingPathComponent("out/\(name).mkv").path)).shown == Array(0..<(3 + i)))
        }
        let rerun = try CamvidProcess.run([list.path, pattern, "--archive", "--method", "none"], in: folder)
        #expect(rerun.status == 0 && rerun.errorLines.count == 3 && rerun.standardError.contains("exists"), "\(rerun.standardError)")
    }
}

/// A few frames of the moving disc, for runs that need a network's explanation.
enum MovingDiscClipWriter {
    static func write(_ url: URL, count: Int) {
        try? MovingDiscClip.write(url, count: count, width: 160, height: 120)
    }
}
