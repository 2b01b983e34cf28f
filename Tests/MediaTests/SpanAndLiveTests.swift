import Foundation
import Media
import Testing
import TestSupport

@Suite struct SpanAndLiveTests {
    @Test(arguments: [(1.0, 30), (1.01, 31), (0.99, 30), (0.0, 0)])
    func spanStartsAtFirstFrameAtOrAfterStart(start: Double, firstIndex: Int) throws {
        let dir = try ReferenceData.temporaryDirectory("media-span")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.mp4")
        // One keyframe (x264's default GOP is 250 frames): the span must decode from frame 0.
        try Clips.write(input, pts: Clips.constantPts(60))
        let cut = try Clips.decode(MediaInput(input.path), span: TimeSpan(start: start, duration: 0.5))
        let end = Int((Double(start) * 30).rounded(.up)) + 15
        let expected = Array(firstIndex..<end)
        #expect(cut.frames.map(\.shownIndex) == expected)
        #expect(cut.frames.map(\.timing.pts) == expected.map { Rational(1, 30).rescale(Int64($0), to: cut.info.timeBase) })
        #expect(cut.frames.map(\.timing.index) == Array(0..<expected.count))
    }

    /// This MPEG-TS file starts at 2/30 s (the B-frame delay): like ffmpeg, span times count
    /// from the input's own start, and the index-less seek is checked and redone if it overshoots.
    @Test func spanCountsFromTheInputsStartTime() throws {
        let dir = try ReferenceData.temporaryDirectory("media-span-ts")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.ts"), output = dir.appendingPathComponent("out.mkv")
        try Clips.write(input, pts: Clips.constantPts(60))
        let all = try Clips.decode(MediaInput(input.path))
        let firstSeconds = all.info.timeBase.seconds(try #require(all.frames.first).timing.pts)
        #expect(firstSeconds > 0)
        let cut = try Clips.decode(MediaInput(input.path), span: TimeSpan(start: 1.0, duration: 0.5))
        #expect(cut.frames.map(\.shownIndex) == Array(30..<45))
        try Clips.transcode(MediaInput(input.path), to: MediaOutput(output.path), span: TimeSpan(start: 1.0, duration: 0.5))
        let result = try Clips.decode(MediaInput(output.path))
        #expect(result.frames.map(\.shownIndex) == Array(30..<45))
        #expect(result.info.timeBase.seconds(try #require(result.frames.first).timing.pts) < 0.1)
    }

    @Test func spanOutputStartsAtZero() throws {
        let dir = try ReferenceData.temporaryDirectory("media-span-out")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.mkv"), output = dir.appendingPathComponent("out.nut")
        try Clips.write(input, pts: Clips.constantPts(60))
        try Clips.transcode(MediaInput(input.path), to: MediaOutput(output.path), span: TimeSpan(start: 1.0, duration: 1.0))
        let result = try Clips.decode(MediaInput(output.path))
        #expect(result.frames.map(\.shownIndex) == Array(30..<60))
        let first = try #require(result.frames.first).timing.pts
        // NUT's B-frame delay shift is at most a few frames.
        #expect(result.info.timeBase.seconds(first) < 0.2)
    }

    @Test func spanBeyondTheEndIsAnError() throws {
        let dir = try ReferenceData.temporaryDirectory("media-span-end")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.mkv")
        try Clips.write(input, pts: Clips.constantPts(10))
        #expect(throws: MediaError.self) { try Clips.decode(MediaInput(input.path), span: TimeSpan(start: 5)) }
        #expect(throws: MediaError.self) { try FrameDecoder(MediaInput(input.path), span: TimeSpan(start: -1)) }
    }

    @Test func lavfiTestSourceWithADurationLimit() throws {
        let dir = try ReferenceData.temporaryDirectory("media-lavfi")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = MediaInput("testsrc2=size=320x240:rate=30", format: "lavfi")
        let decoder = try FrameDecoder(input, span: TimeSpan(duration: 1))
        #expect(decoder.video.isLive)
        #expect(decoder.video.width == 320 && decoder.video.height == 240)
        #expect(decoder.video.averageFrameRate == Rational(30, 1))
        let output = dir.appendingPathComponent("out.mp4")
        let (source, _) = try Clips.transcode(input, to: MediaOutput(output.path), span: TimeSpan(duration: 1))
        #expect(source.deliveredFrameCount == 30)
        let result = try Clips.decode(MediaInput(output.path))
        #expect(result.frames.count == 30)
        #expect(result.info.width == 320 && result.info.height == 240)
    }

    @Test func scalingForTheNetworkKeepsThePicture() throws {
        let dir = try ReferenceData.temporaryDirectory("media-scale")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.mkv")
        try Clips.write(input, width: 320, height: 240, pts: Clips.constantPts(4))
        let decoder = try FrameDecoder(MediaInput(input.path))
        let converter = PixelConverter()
        while case .frame(let frame)? = try decoder.next() {
            for algorithm in ScalingAlgorithm.allCases {
                let small = try converter.rgb(frame, width: 224, height: 224, algorithm: algorithm)
                #expect(small.count == 224 * 224 * 3)
                #expect(Clips.readPattern(small, width: 224, height: 224) == frame.index)
            }
            let full = try converter.rgb(frame)
            #expect(full.count == 320 * 240 * 3)
            #expect(Clips.readPattern(full, width: 320, height: 240) == frame.index)
        }
    }
}

@Suite struct StopSignalTests {
    @Test func stoppingALiveSourceFromAnotherTaskEndsItNormally() async throws {
        let decoder = try FrameDecoder(MediaInput("testsrc2=size=160x120:rate=30", format: "lavfi"))
        var frames = 0
        while let item = try decoder.next() {
            if case .frame = item { frames += 1 }
            if frames == 10 {
                let signal = decoder.stopSignal
                await Task.detached { signal.stop() }.value
            }
            #expect(frames < 100, "the source did not stop")
            if frames >= 100 { break }
        }
        #expect(frames >= 10 && frames < 100)
        #expect(decoder.stopSignal.isStopped)
    }
}
