import Foundation
import Media
import Testing
import TestSupport

/// The package's sample clip: 132 frames at 25 fps with AAC audio.
@Suite struct SampleClipTests {
    static let sample = ReferenceData.packageFile("Samples/bigbuckbunny.mp4").path

    /// A checksum of a packet's bytes (FNV-1a).
    static func checksum(_ bytes: [UInt8]) -> UInt64 {
        bytes.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }

    @Test func streamInfo() throws {
        let decoder = try FrameDecoder(MediaInput(Self.sample))
        let video = decoder.video
        #expect(video.frameCountEstimate == 132)
        #expect(video.averageFrameRate.doubleValue == 25)
        #expect(!video.isLive)
        #expect(video.codecName == "h264")
        #expect(decoder.source.copiedStreams.map(\.mediaType) == ["audio"])
        #expect(decoder.source.copiedStreams.map(\.codecName) == ["aac"])
        let duration = try #require(video.duration)
        #expect(abs(duration - 132.0 / 25) < 0.05)
    }

    @Test(arguments: ["mp4", "mkv", "nut"])
    func reencodingKeepsFramesPtsAndAudioPackets(container: String) throws {
        let dir = try ReferenceData.temporaryDirectory("media-sample")
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("out.\(container)")
        let source = try Clips.decode(MediaInput(Self.sample))
        #expect(source.frames.count == 132)

        // The default preset (with B-frames) for MP4; the fastest for the others, to keep the suite quick.
        let settings = container == "mp4" ? EncoderSettings() : EncoderSettings(preset: "ultrafast")
        try Clips.transcode(MediaInput(Self.sample), to: MediaOutput(output.path), settings: settings)
        let result = try Clips.decode(MediaInput(output.path))
        #expect(result.frames.count == 132)
        #expect(result.info.width == source.info.width && result.info.height == source.info.height)
        let expected = source.frames.map { source.info.timeBase.rescale($0.timing.pts, to: result.info.timeBase) }
        if container == "nut" {
            // NUT shifts every stream by the B-frame delay (it cannot store negative times).
            let shift = result.frames[0].timing.pts - expected[0]
            #expect(result.frames.map { $0.timing.pts - shift } == expected)
        } else {
            #expect(result.frames.map(\.timing.pts) == expected)
        }
        #expect(result.packets.count == source.packets.count)
        #expect(result.packets.map { Self.checksum($0.data) } == source.packets.map { Self.checksum($0.data) })
    }

    @Test func spanIsFrameExactWithAudioInside() throws {
        let span = TimeSpan(start: 2.0, duration: 1.0)
        let all = try Clips.decode(MediaInput(Self.sample))
        let cut = try Clips.decode(MediaInput(Self.sample), span: span)
        let tb = all.info.timeBase
        let inside = all.frames.filter { tb.seconds($0.timing.pts) >= 2.0 && tb.seconds($0.timing.pts) < 3.0 }
        #expect(cut.frames.count == 25)
        #expect(cut.frames.map(\.timing.pts) == inside.map(\.timing.pts))
        #expect(cut.frames.map(\.timing.index) == Array(0..<25))
        let audioSeconds = cut.packets.compactMap(\.seconds)
        #expect(!audioSeconds.isEmpty)
        #expect(audioSeconds.allSatisfy { $0 >= 2.0 - 0.03 && $0 < 3.0 })
    }

    @Test func stoppingMidwayGivesAPlayableFileWithThoseFrames() throws {
        let dir = try ReferenceData.temporaryDirectory("media-stop")
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("out.mp4")
        try Clips.transcode(MediaInput(Self.sample), to: MediaOutput(output.path), settings: EncoderSettings(preset: "ultrafast"), stopAfter: 30)
        let result = try Clips.decode(MediaInput(output.path))
        #expect(result.frames.count == 30)
        #expect(result.frames.map(\.timing.index) == Array(0..<30))
    }

    @Test func corruptPacketsAreSkippedAndOutputMatchesWhatWasDecoded() throws {
        let dir = try ReferenceData.temporaryDirectory("media-corrupt")
        defer { try? FileManager.default.removeItem(at: dir) }
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.sample)))
        // Scribble over the media data in the middle (the index at the end stays intact).
        for i in stride(from: bytes.count / 3, to: bytes.count / 3 + 40_000, by: 7) { bytes[i] = UInt8(truncatingIfNeeded: i * 31) }
        let damaged = dir.appendingPathComponent("damaged.mp4"), output = dir.appendingPathComponent("out.mkv")
        try Data(bytes).write(to: damaged)

        let (decoder, encoder) = try Clips.transcode(
            MediaInput(damaged.path), to: MediaOutput(output.path), settings: EncoderSettings(preset: "ultrafast")
        )
        #expect(decoder.deliveredFrameCount > 0 && decoder.deliveredFrameCount <= 132)
        #expect(decoder.damagedFrameCount + decoder.skippedPacketCount > 0)
        #expect(encoder.encodedFrameCount == decoder.deliveredFrameCount)
        let result = try Clips.decode(MediaInput(output.path))
        #expect(result.frames.count == decoder.deliveredFrameCount)
    }
}
