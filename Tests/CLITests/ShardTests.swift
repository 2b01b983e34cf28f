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

