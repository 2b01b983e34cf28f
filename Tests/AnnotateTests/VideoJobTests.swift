import Annotate
import Core
import Foundation
import Media
import Pipeline
import Render
import TestSupport
import Testing
import MediaTestSupport

/// The pipeline on real media: Media's decoder and encoder at both ends.
@Suite struct VideoJobTests {
    @Test(arguments: [(1, 1), (4, 2), (3, 16)])
    func identityKeepsEveryFrameInPlace(batchSize: Int, capacity: Int) async throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-pipeline")
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("pattern.mkv")
        let output = folder.appendingPathComponent("out.mp4")
        try PatternClips.write(input, count: 40)

        let job = try VideoJob(input: MediaInput(input.path), output: MediaOutput(output.path))
        let summary = try await job.run(
            preprocessor: nil, explainer: VideoExplainer(.none), overlay: ExplanationOverlay(try Overlay()),
            configuration: PipelineConfiguration(channelCapacity: capacity, batchSize: batchSize))
        #expect(summary.framesWritten == 40)
        #expect(summary.framesDropped == 0)

        let source = try PatternClips.read(MediaInput(input.path))
        let result = try PatternClips.read(MediaInput(output.path))
        #expect(result.shown == Array(0..<40), "output frame i shows input frame i")
        #expect(result.pts == source.pts)
    }

    @Test func sampleClipKeepsTimingAndAudio() async throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-pipeline")
        defer { try? FileManager.default.removeItem(at: folder) }
        let sample = MediaInput(ReferenceData.packageFile("Samples/bigbuckbunny.mp4").path)
        let output = folder.appendingPathComponent("out.mp4")
        let span = TimeSpan(duration: 1)

        let job = try VideoJob(input: sample, span: span, output: MediaOutput(output.path))
        #expect(job.expectedFrameCount == 25)
        let summary = try await job.run(
            preprocessor: nil, explainer: VideoExplainer(.none), overlay: ExplanationOverlay(try Overlay()),
            configuration: PipelineConfiguration(channelCapacity: 4, batchSize: 4))

        let source = try PatternClips.read(sample, span: span)
        let result = try PatternClips.read(MediaInput(output.path))
        #expect(summary.framesWritten == source.pts.count)
        #expect(result.pts == source.pts)
        #expect(summary.packetsWritten == source.packets.count)
        #expect(result.packets.count == source.packets.count)
        #expect(!result.packets.isEmpty)
        for (written, read) in zip(result.packets, source.packets) {
            #expect(written.pts == read.pts)
            #expect(written.data == read.data)
        }
    }

    @Test func truncatedMatroskaIsReportedAfterWritingWhatPrecedesTheCut() async throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-pipeline")
        defer { try? FileManager.default.removeItem(at: folder) }
        let cut = folder.appendingPathComponent("cut.mkv"), output = folder.appendingPathComponent("out.mkv")
        try PatternClips.writeCut(cut, count: 200, keeping: 0.4)

        let job = try VideoJob(input: MediaInput(cut.path), output: MediaOutput(output.path))
        do {
            _ = try await job.run(preprocessor: nil, explainer: VideoExplainer(.none), overlay: ExplanationOverlay(try Overlay()),
                                  configuration: PipelineConfiguration())
            Issue.record("a cut file was read without error")
        } catch let error as MediaError {
            #expect(error.file == cut.path)
            #expect(error.reason.contains("cut short"))
        }
        let result = try PatternClips.read(MediaInput(output.path))
        #expect(!result.shown.isEmpty)
        #expect(result.shown == Array(0..<result.shown.count))
    }
}
