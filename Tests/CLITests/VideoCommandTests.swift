import CamvidCLI
import Foundation
import Media
import TestSupport
import Testing
import MediaTestSupport

struct TestFailure: Error, CustomStringConvertible {
    var description: String
}

@Suite(.serialized) struct VideoCommandTests {
    @Test func helpShowsTheExamples() {
        let help = Camvid.helpMessage()
        #expect(help.contains("camvid in.mp4 out.mp4 --method gradcam"))
        #expect(help.contains("ffmpeg -f v4l2 -i /dev/video0 -f nut - | camvid - - --format nut | ffplay -"))
    }

    @Test func pipeInPipeOutKeepsEveryFrame() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("in.nut")
        let output = folder.appendingPathComponent("out.nut")
        try PatternClips.write(input, count: 30)

        let result = try CamvidProcess.run(["-", "-", "--format", "nut", "--batch-size", "3", "--channel-capacity", "2", "--method", "none"],
                                           in: folder, input: input, output: output)
        #expect(result.status == 0, "\(result.standardError)")
        let source = try PatternClips.read(MediaInput(input.path))
        let written = try PatternClips.read(MediaInput(output.path))
        #expect(written.shown == Array(0..<30))
        #expect(written.pts == source.pts)
    }

    @Test func startAndDurationSelectASpan() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("in.mkv")
        let output = folder.appendingPathComponent("out.mkv")
        try PatternClips.write(input, count: 100)

        let result = try CamvidProcess.run([input.path, output.path, "--start", "1", "--duration", "0:01.22", "--method", "none"], in: folder)
        #expect(result.status == 0, "\(result.standardError)")
        #expect(try PatternClips.read(MediaInput(output.path)).shown == Array(25..<56))
    }

    @Test func lavfiSourceForADuration() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        let exact = folder.appendingPathComponent("exact.mkv")
        let live = folder.appendingPathComponent("live.mkv")
        let source = "testsrc2=size=128x96:rate=25"

        let paced = try CamvidProcess.run([source, exact.path, "--input-format", "lavfi", "--duration", "1", "--no-realtime", "--method", "none"], in: folder)
        #expect(paced.status == 0, "\(paced.standardError)")
        let frames = try PatternClips.read(MediaInput(exact.path))
        #expect(frames.pts == (0..<25).map { Int64($0) * 40_000 })

        // A live source may drop frames to keep up; every frame is then written or counted as dropped.
        let realtime = try CamvidProcess.run([source, live.path, "--input-format", "lavfi", "--duration", "1", "--method", "none"], in: folder)
        #expect(realtime.status == 0, "\(realtime.standardError)")
        let kept = try PatternClips.read(MediaInput(live.path)).pts.count
        let dropped = realtime.errorLines.compactMap { line -> Int? in
            guard let range = line.range(of: "dropped ") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }.first ?? 0
        #expect(kept > 0)
        #expect(kept + dropped == 25)
    }

    @Test func truncatedInputKeepsTheFramesBeforeTheCut() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        let cut = folder.appendingPathComponent("cut.mkv"), output = folder.appendingPathComponent("out.mp4")
        try PatternClips.writeCut(cut, count: 200, keeping: 0.5)

        let result = try CamvidProcess.run([cut.path, output.path, "--method", "none"], in: folder)
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1)
        #expect(result.standardError.contains(cut.path))
        let written = try PatternClips.read(MediaInput(output.path))
        #expect(!written.shown.isEmpty)
        #expect(written.shown == Array(0..<written.shown.count))
    }

    @Test func garbageInputIsOneLineNamingTheFile() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        let garbage = folder.appendingPathComponent("garbage.mp4")
        var generator = SystemRandomNumberGenerator()
        try Data((0..<20_000).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: garbage)

        let result = try CamvidProcess.run([garbage.path, folder.appendingPathComponent("out.mp4").path], in: folder)
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1)
        #expect(result.errorLines.first?.hasPrefix("camvid: \(garbage.path)") == true)
    }

    @Test func badArgumentsAreRefused() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        let unknownMethod = try CamvidProcess.run(["in.mp4", "out.mp4", "--method", "no-such-method"], in: folder)
        #expect(unknownMethod.status != 0)
        #expect(unknownMethod.standardError.contains("no-such-method"))
        let pipeWithoutFormat = try CamvidProcess.run(["in.mp4", "-"], in: folder)
        #expect(pipeWithoutFormat.status != 0)
        #expect(pipeWithoutFormat.standardError.contains("--format"))
    }

    @Test func interruptLeavesAPlayablePrefix() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("long.mkv")
        let output = folder.appendingPathComponent("out.mp4")
        let total = 1500
        try PatternClips.write(input, count: total, width: 96, height: 64, noisy: true)

        let errors = folder.appendingPathComponent("stderr.txt")
        let process = try CamvidProcess.start([input.path, output.path, "--quiet", "--method", "none"], errors: errors)
        // Once media data reaches the output the signal handlers are installed and frames are flowing.
        while process.isRunning, ((try? FileManager.default.attributesOfItem(atPath: output.path)[.size] as? Int) ?? 0) < 65_536 {
            usleep(2_000)
        }
        process.interrupt()
        process.waitUntilExit()
        let standardError = try String(contentsOf: errors, encoding: .utf8)
        #expect(process.terminationStatus == 130, "\(standardError)")
        #expect(standardError.contains("interrupted by SIGINT"))

        let written = try PatternClips.read(MediaInput(output.path))
        #expect(written.shown.count > 0)
        #expect(written.shown.count < total)
        #expect(written.shown == (0..<written.shown.count).map { $0 % 256 })
    }
}

/// `--network-threads`: validated, and any count gives a video.
@Suite(.serialized) struct NetworkThreadsOptionTests {
    @Test func negativeCountIsRejected() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CamvidProcess.run(["in.mp4", "out.mp4", "--network-threads=-1"], in: folder)
        #expect(result.status != 0)
        #expect(result.standardError.contains("--network-threads must be 0 or more"), "\(result.standardError)")
    }

    @Test(arguments: ["0", "2"]) func anyCountWritesEveryFrame(threads: String) throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-cli")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("in.mkv")
        let output = folder.appendingPathComponent("out.mkv")
        try PatternClips.write(input, count: 6)
        let result = try CamvidProcess.run([input.path, output.path, "--network-threads", threads], in: folder)
        #expect(result.status == 0, "\(result.standardError)")
        #expect(try PatternClips.read(MediaInput(output.path)).pts == PatternClips.read(MediaInput(input.path)).pts)
    }
}
