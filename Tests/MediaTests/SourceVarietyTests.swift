import Foundation
import Media
import Testing
import TestSupport

/// Awkward sources: variable frame rate with B-frames, odd sizes, 10-bit, 4:4:4, rotation.
@Suite struct SourceVarietyTests {
    /// Irregular frame durations in a 1/1000 time base (a phone's variable frame rate).
    static let vfrPts: [Int64] = {
        let durations: [Int64] = [33, 50, 17, 40, 33, 66, 20, 33]
        var pts: [Int64] = [0]
        for i in 1..<48 { pts.append(pts[i - 1] + durations[i % durations.count]) }
        return pts
    }()

    @Test(arguments: ["mp4", "mkv", "nut"])
    func variableFrameRateWithBFramesSurvivesRoundTrip(container: String) throws {
        let dir = try ReferenceData.temporaryDirectory("media-vfr")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.mkv"), output = dir.appendingPathComponent("out.\(container)")
        let pts = Self.vfrPts
        try Clips.write(input, timeBase: Rational(1, 1000), pts: pts, frameRate: Rational(0, 1))

        let source = try Clips.decode(MediaInput(input.path))
        #expect(source.frames.map(\.timing.pts) == pts)
        #expect(source.frames.contains { $0.pictureType == "B" })
        #expect(source.frames.dropLast().map(\.timing.duration) == zip(pts.dropFirst(), pts).map { $0 - $1 })
        #expect(source.frames.map(\.shownIndex) == Array(0..<pts.count))

        try Clips.transcode(MediaInput(input.path), to: MediaOutput(output.path))
        let result = try Clips.decode(MediaInput(output.path))
        #expect(result.frames.count == pts.count)
        let expected = pts.map { Rational(1, 1000).rescale($0, to: result.info.timeBase) }
        if container == "nut" {
            // NUT cannot store the negative decoding times B-frames need: the muxer shifts all
            // streams by the encoder's reorder delay, leaving every interval as it was.
            let shift = try #require(result.frames.first).timing.pts
            #expect(result.frames.map { $0.timing.pts - shift } == expected)
        } else {
            #expect(result.frames.map(\.timing.pts) == expected)
        }
        #expect(result.frames.map(\.shownIndex) == Array(0..<pts.count))
    }

    @Test func oddSizeIsEncodedAtItsOwnSizeIn444() throws {
        let dir = try ReferenceData.temporaryDirectory("media-odd")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.mp4"), output = dir.appendingPathComponent("out.mp4")
        try Clips.write(input, width: 321, height: 241, pts: Clips.constantPts(12))

        let source = try Clips.decode(MediaInput(input.path))
        #expect(source.info.width == 321 && source.info.height == 241)
        #expect(source.frames.allSatisfy { $0.width == 321 && $0.height == 241 && $0.pixelFormat == .yuv444p })

        let (_, encoder) = try Clips.transcode(MediaInput(input.path), to: MediaOutput(output.path))
        #expect(encoder.pixelFormat == .yuv444p)
        let result = try Clips.decode(MediaInput(output.path))
        #expect(result.frames.count == 12)
        #expect(result.frames.allSatisfy { $0.width == 321 && $0.height == 241 })
        #expect(result.frames.map(\.shownIndex) == Array(0..<12))
    }

    @Test func tenBitSourceIsDecodedAndReencodedIn8Bit() throws {
        let dir = try ReferenceData.temporaryDirectory("media-10bit")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.mkv"), output = dir.appendingPathComponent("out.mp4")
        let tenBit = try #require(PixelFormat(name: "yuv420p10le"))
        try Clips.write(input, pts: Clips.constantPts(12), settings: EncoderSettings(pixelFormat: tenBit))

        let source = try Clips.decode(MediaInput(input.path))
        #expect(source.info.pixelFormat == tenBit)
        #expect(source.frames.allSatisfy { $0.pixelFormat == tenBit && $0.pixelFormat.bitDepth == 10 })
        #expect(source.frames.map(\.shownIndex) == Array(0..<12))

        let (_, encoder) = try Clips.transcode(MediaInput(input.path), to: MediaOutput(output.path))
        #expect(encoder.pixelFormat == .yuv420p)
        let result = try Clips.decode(MediaInput(output.path))
        #expect(result.frames.map(\.shownIndex) == Array(0..<12))
        #expect(result.frames.map(\.timing.pts) == source.frames.map { source.info.timeBase.rescale($0.timing.pts, to: result.info.timeBase) })
    }

    @Test func fullChromaSourceStaysFullChroma() throws {
        let dir = try ReferenceData.temporaryDirectory("media-444")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.nut"), output = dir.appendingPathComponent("out.mkv")
        try Clips.write(input, pts: Clips.constantPts(12), settings: EncoderSettings(pixelFormat: .yuv444p))

        let source = try Clips.decode(MediaInput(input.path))
        #expect(source.info.pixelFormat == .yuv444p && source.info.pixelFormat.hasFullResolutionChroma)
        let (_, encoder) = try Clips.transcode(MediaInput(input.path), to: MediaOutput(output.path))
        #expect(encoder.pixelFormat == .yuv444p)
        let result = try Clips.decode(MediaInput(output.path))
        #expect(result.frames.map(\.shownIndex) == Array(0..<12))
        #expect(result.frames.allSatisfy { $0.pixelFormat == .yuv444p })
    }

    @Test(arguments: [90.0, 180.0, 270.0])
    func rotationIsExposedAndKept(degrees: Double) throws {
        let dir = try ReferenceData.temporaryDirectory("media-rotation")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.mp4"), output = dir.appendingPathComponent("out.mp4")
        try Clips.write(input, pts: Clips.constantPts(6), displayMatrix: DisplayMatrix(rotationDegrees: degrees))

        let decoder = try FrameDecoder(MediaInput(input.path))
        #expect(decoder.video.rotationDegrees == degrees)
        // Frames stay as stored: 64 wide, 48 high.
        #expect(decoder.video.width == 64 && decoder.video.height == 48)

        try Clips.transcode(MediaInput(input.path), to: MediaOutput(output.path))
        #expect(try FrameDecoder(MediaInput(output.path)).video.rotationDegrees == degrees)
    }

    @Test func otherEncoderWhenTheFirstIsMissing() throws {
        let dir = try ReferenceData.temporaryDirectory("media-fallback")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.mkv"), output = dir.appendingPathComponent("out.mkv")
        try Clips.write(input, pts: Clips.constantPts(10))
        let (_, encoder) = try Clips.transcode(
            MediaInput(input.path), to: MediaOutput(output.path), settings: EncoderSettings(codecNames: ["no-such-encoder", "mpeg4"])
        )
        #expect(encoder.codecName == "mpeg4")
        let result = try Clips.decode(MediaInput(output.path))
        #expect(result.info.codecName == "mpeg4")
        #expect(result.frames.map(\.shownIndex) == Array(0..<10))
    }
}
