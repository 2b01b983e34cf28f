import Foundation
import Media
import Testing
import TestSupport

@Suite struct FrameAccuracyTests {
    @Test func reencodedClipKeepsEveryFrameAndPts() throws {
        let dir = try ReferenceData.temporaryDirectory("media-accuracy")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.mp4"), output = dir.appendingPathComponent("out.mp4")
        try Clips.write(input, pts: Clips.constantPts(40))

        let source = try Clips.decode(MediaInput(input.path))
        #expect(source.frames.count == 40)
        #expect(source.frames.map(\.shownIndex) == Array(0..<40))
        #expect(source.frames.map(\.timing.index) == Array(0..<40))

        try Clips.transcode(MediaInput(input.path), to: MediaOutput(output.path))
        let result = try Clips.decode(MediaInput(output.path))
        #expect(result.frames.count == 40)
        #expect(result.frames.map(\.timing.pts) == source.frames.map(\.timing.pts))
        #expect(result.frames.map(\.timing.duration) == source.frames.map(\.timing.duration))
        #expect(result.frames.map(\.shownIndex) == Array(0..<40))
        #expect(result.info.width == 64 && result.info.height == 48)
    }

    @Test func fragmentedMP4KeepsFramesAndPts() throws {
        let dir = try ReferenceData.temporaryDirectory("media-fragmented")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.mkv"), output = dir.appendingPathComponent("out.mp4")
        try Clips.write(input, pts: Clips.constantPts(30))
        try Clips.transcode(MediaInput(input.path), to: MediaOutput(output.path), settings: EncoderSettings(fragmentedMP4: true))
        let source = try Clips.decode(MediaInput(input.path))
        let result = try Clips.decode(MediaInput(output.path))
        #expect(result.frames.map(\.shownIndex) == Array(0..<30))
        // Without an edit list, fragmented MP4 shifts every stream by the B-frame delay, keeping every interval.
        let expected = source.frames.map { source.info.timeBase.rescale($0.timing.pts, to: result.info.timeBase) }
        let shift = try #require(result.frames.first).timing.pts
        #expect(result.frames.map { $0.timing.pts - shift } == expected)
        #expect(result.info.timeBase.seconds(shift) < 0.2)
    }
}
