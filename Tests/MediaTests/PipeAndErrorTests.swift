import Foundation
import Media
import Testing
import TestSupport

/// Collects an error thrown on another thread.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?
    var error: Error? { lock.withLock { stored } }
    func set(_ error: Error) { lock.withLock { stored = error } }
}

@Suite struct PipeTests {
    @Test func dashMeansStandardInputAndOutput() {
        #expect(MediaInput("-").url == "pipe:0")
        #expect(MediaOutput("-", format: "nut").url == "pipe:1")
        #expect(MediaInput("in.mp4").url == "in.mp4")
    }

    /// Encodes a clip into a pipe on another thread while this one decodes from the other end.
    @Test(arguments: ["nut", "matroska", "mpegts", "mp4"])
    func encodeIntoAndDecodeFromAPipe(format: String) throws {
        let dir = try ReferenceData.temporaryDirectory("media-pipe")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.mkv")
        try Clips.write(input, pts: Clips.constantPts(20))

        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        let failure = ErrorBox()
        let done = DispatchSemaphore(value: 0)
        Thread {
            do {
                try Clips.transcode(MediaInput(input.path), to: MediaOutput("pipe:\(writeEnd)", format: format))
            } catch {
                failure.set(error)
            }
            close(writeEnd)
            done.signal()
        }.start()
        let result = try Clips.decode(MediaInput("pipe:\(readEnd)", format: format))
        done.wait()
        close(readEnd)
        #expect(failure.error == nil)
        #expect(result.frames.map(\.shownIndex) == Array(0..<20))
    }
}

@Suite struct BadInputTests {
    static func expectError(naming file: String, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("no error for \(file)")
        } catch let error as MediaError {
            #expect(error.file == file)
            #expect(error.description.hasPrefix(file))
        } catch {
            Issue.record("not a MediaError: \(error)")
        }
    }

    @Test func missingFile() {
        let path = "/nonexistent-dir/missing.mp4"
        Self.expectError(naming: path) { _ = try FrameDecoder(MediaInput(path)) }
    }

    @Test func garbageBytesAndTextAreNotVideos() throws {
        let dir = try ReferenceData.temporaryDirectory("media-garbage")
        defer { try? FileManager.default.removeItem(at: dir) }
        var generator = SystemRandomNumberGenerator()
        let garbage = dir.appendingPathComponent("garbage.mp4")
        try Data((0..<65_536).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: garbage)
        Self.expectError(naming: garbage.path) { _ = try Clips.decode(MediaInput(garbage.path)) }
        let text = dir.appendingPathComponent("notes.mkv")
        try Data(String(repeating: "not a video at all\n", count: 500).utf8).write(to: text)
        Self.expectError(naming: text.path) { _ = try Clips.decode(MediaInput(text.path)) }
    }

    @Test func truncatedSample() throws {
        let dir = try ReferenceData.temporaryDirectory("media-truncated")
        defer { try? FileManager.default.removeItem(at: dir) }
        let truncated = dir.appendingPathComponent("half.mp4")
        try ReferenceData.cutShort(ReferenceData.packageFile("Samples/bigbuckbunny.mp4"), keeping: 0.5, to: truncated)
        Self.expectError(naming: truncated.path) { _ = try Clips.decode(MediaInput(truncated.path)) }
    }

    @Test func unknownInputFormat() {
        Self.expectError(naming: "/dev/video0") { _ = try FrameDecoder(MediaInput("/dev/video0", format: "no-such-format")) }
        do {
            _ = try FrameDecoder(MediaInput("x", format: "no-such-format"))
        } catch let error as MediaError {
            #expect(error.reason.contains("unknown input format 'no-such-format'"))
        } catch {
            Issue.record("not a MediaError: \(error)")
        }
    }

    @Test func unwritableOrUnnamedOutput() throws {
        let video = VideoStreamInfo(width: 64, height: 48, timeBase: Rational(1, 30))
        for output in [
            MediaOutput("/nonexistent-dir/out.mp4"), MediaOutput("out.unknown-extension"),
            MediaOutput("-"), MediaOutput("out.mp4", format: "no-such-format"),
        ] {
            Self.expectError(naming: output.location) {
                _ = try FrameEncoder(output: output, source: SourceDescription(video: video))
            }
        }
    }

    @Test func frameOfTheWrongSizeOrOrderIsRejected() throws {
        let dir = try ReferenceData.temporaryDirectory("media-bad-frame")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("out.mkv").path
        let encoder = try FrameEncoder(
            output: MediaOutput(path), source: SourceDescription(video: VideoStreamInfo(width: 64, height: 48, timeBase: Rational(1, 30)))
        )
        try encoder.encode(rgb: Clips.pattern(0, width: 64, height: 48), width: 64, height: 48, timing: FrameTiming(index: 0, pts: 0, duration: 1))
        Self.expectError(naming: path) {
            try encoder.encode(rgb: [1, 2, 3], width: 64, height: 48, timing: FrameTiming(index: 1, pts: 1, duration: 1))
        }
        Self.expectError(naming: path) {
            try encoder.encode(rgb: Clips.pattern(1, width: 64, height: 48), width: 64, height: 48, timing: FrameTiming(index: 1, pts: 0, duration: 1))
        }
        try encoder.finish()
        #expect(try Clips.decode(MediaInput(path)).frames.count == 1)
    }
}

@Suite struct TruncatedStreamTests {
    /// A stream format cut mid-way (a pipe that died, a capture cut short): the complete
    /// frames before the cut come out, in order, and nothing crashes.
    @Test(arguments: ["mkv", "nut", "ts"])
    func cutStreamDeliversTheFramesBeforeTheCut(container: String) throws {
        let dir = try ReferenceData.temporaryDirectory("media-cut")
        defer { try? FileManager.default.removeItem(at: dir) }
        let whole = dir.appendingPathComponent("whole.\(container)"), cut = dir.appendingPathComponent("cut.\(container)")
        try Clips.write(whole, width: 160, height: 120, pts: Clips.constantPts(60))
        try ReferenceData.cutShort(whole, keeping: 2.0 / 3, to: cut)
        let result = try Clips.decode(MediaInput(cut.path))
        #expect(result.frames.count > 0 && result.frames.count < 60)
        // Well before the cut every frame is intact; near it, a frame whose packet or reference
        // was lost is left out or concealed by the decoder (FFmpeg does not always flag those).
        #expect(result.frames.prefix(30).map(\.shownIndex) == Array(0..<30))
        let pts = result.frames.map(\.timing.pts)
        #expect(zip(pts, pts.dropFirst()).allSatisfy { $0 < $1 })
    }
}
