import Annotate
import Core
import Engine
import Explain
import Foundation
import Media
import Pipeline
import Render
import Synchronization
import TestSupport
import Testing
import MediaTestSupport

/// Keeps every explained frame in memory, in the order written; shared with the test.
final class CollectingRecord: ExplanationRecord, Sendable {
    private let state = Mutex<(frames: [Frame], finishes: Int)>(([], 0))

    func record(_ frame: Frame) throws { state.withLock { $0.frames.append(frame) } }
    func finish() throws { state.withLock { $0.finishes += 1 } }
    var frames: [Frame] { state.withLock { $0.frames } }
    var finishes: Int { state.withLock { $0.finishes } }
}

/// The decoded RGB frames of a file (or span), converted as the pipeline converts them, and
/// prepared for a network by `preprocessor` when given.
func decodedFrames(_ input: MediaInput, span: TimeSpan = .all, preprocessor: FramePreprocessor? = nil) throws -> [Frame] {
    _ = PatternClips.quiet
    let decoder = try FrameDecoder(input, span: span)
    var converter = FrameConverter(file: input.location, preprocessor: preprocessor)
    var frames: [Frame] = []
    while let item = try decoder.next() {
        if case .frame(let frame) = item { frames.append(try converter.convert(frame, index: frames.count)) }
    }
    return frames
}

/// The explain stage on real media: the bundled network and the sample clip.
@Suite(.serialized) struct NetworkExplainerTests {
    static let sample = MediaInput(ReferenceData.packageFile("Samples/bigbuckbunny.mp4").path)

    /// Output frame i's map is exactly Explain's map for decoded input frame i alone, whatever the
    /// batching and channel sizes; frame count, pts and audio are those of the input.
    @Test(arguments: [(1, 1), (3, 2), (4, 8)])
    func mapOfFrameIIsTheSingleFrameExplanation(batchSize: Int, capacity: Int) async throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-explain")
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("out.mp4")
        let span = TimeSpan(duration: 0.4)
        let network = try Network(contentsOf: DefaultModel.url)
        let labels = ClassLabels(names: ImageNetClasses.names)
        let explainer = try NetworkExplainer(network: network, method: .gradcam, labels: labels)
        let record = CollectingRecord()
        let preprocessor = FramePreprocessor(inputWidth: 224, inputHeight: 224)

        let job = try VideoJob(input: Self.sample, span: span, output: MediaOutput(output.path))
        let summary = try await job.run(
            preprocessor: preprocessor, explainer: VideoExplainer(.network(explainer), records: [record]),
            overlay: ExplanationOverlay(try Overlay()),
            configuration: PipelineConfiguration(channelCapacity: capacity, batchSize: batchSize))

        let frames = try decodedFrames(Self.sample, span: span, preprocessor: preprocessor)
        let records = record.frames
        #expect(frames.count == 10)
        #expect(summary.framesWritten == frames.count)
        #expect(record.finishes == 1)
        #expect(records.map(\.index) == Array(0..<frames.count))
        let reference = try Explainer(network: EngineNetwork(network), method: .gradcam, labels: labels)
        for (frame, record) in zip(frames, records) {
            let alone = try reference.explain(try #require(frame.input).tensor)[0]
            let explanation = try #require(record.explanation)
            let heatmap = try #require(explanation.heatmap)
            #expect(heatmap.width == 224 && heatmap.height == 224)
            #expect(heatmap.values == alone.map.values, "frame \(frame.index)")
            #expect(explanation.classIndex == alone.classIndex)
            // The batch's own logits: a batch sums in another order than one frame alone.
            let probabilities = try #require(explanation.probabilities)
            #expect(zip(probabilities, softmax(alone.logits)).allSatisfy { abs($0 - $1) <= 1e-5 })
            let label = try #require(explanation.label)
            #expect(label.hasPrefix(labels.name(of: alone.classIndex) + " ") && label.hasSuffix("%"))
            #expect(record.seconds == frame.seconds && record.input == nil)
        }

        let source = try PatternClips.read(Self.sample, span: span)
        let result = try PatternClips.read(MediaInput(output.path))
        #expect(result.pts == source.pts)
        #expect(!source.packets.isEmpty)
        #expect(result.packets.count == source.packets.count)
        for (written, read) in zip(result.packets, source.packets) {
            #expect(written.pts == read.pts && written.data == read.data)
        }
    }

    /// `pad` feeds the whole frame letterboxed and returns the map without the padding; `crop`
    /// feeds the centre and returns the map placed on it, 0 over the unseen sides.
    @Test func cropAndPadPlaceTheMapOnTheFrame() throws {
        let network = try Network(contentsOf: DefaultModel.url)
        let labels = ClassLabels(names: ImageNetClasses.names)
        // A real frame squeezed to 2:1 (448x224 → 320x160) with distinct side bands.
        var frame = try #require(decodedFrames(Self.sample, span: TimeSpan(start: 2, duration: 0.04)).first)
        var image = AreaResampling(width: frame.image.width, height: frame.image.height, toWidth: 320, toHeight: 160).resample(frame.image)
        for y in 0..<160 {
            for x in 0..<320 where x < 80 || x >= 240 { image[x, y] = (255, 0, 255) }
        }
        frame.image = image
        let mean: [Float] = InputNormalization.imageNet.mean, std: [Float] = InputNormalization.imageNet.std
        let magentaRed: Float = (1 - mean[0]) / std[0], magentaGreen: Float = (0 - mean[1]) / std[1]
        let explainer = try NetworkExplainer(network: network, method: .gradcam, labels: labels)
        let reference = try Explainer(network: EngineNetwork(network), method: .gradcam, labels: labels)

        var pad = FramePreprocessor(inputWidth: 224, inputHeight: 224, fit: .pad)
        var padFrames = [frame]
        padFrames[0].input = pad.input(for: image)
        let padded = try #require(padFrames[0].input).tensor
        // Content 224x112 at rows 56..<168; rows above and below are the mean colour (0).
        #expect(padded.storage[0..<(56 * 224)].allSatisfy { $0 == 0 })
        #expect(padded.storage[(168 * 224)..<(224 * 224)].allSatisfy { $0 == 0 })
        let inside: Float = padded.storage[60 * 224 + 2]
        #expect(abs(inside - magentaRed) < 1e-5, "the magenta band is inside")
        try explainer.explain(&padFrames)
        let padMap = try #require(padFrames[0].explanation?.heatmap)
        let padAlone = try reference.explain(padded)[0].map
        #expect(padMap.width == 224 && padMap.height == 112)
        #expect(padMap.values == Array(padAlone.values[(56 * 224)..<(168 * 224)]))

        var crop = FramePreprocessor(inputWidth: 224, inputHeight: 224, fit: .crop)
        var cropFrames = [frame]
        cropFrames[0].input = crop.input(for: image)
        let cropped = try #require(cropFrames[0].input).tensor
        // The centre 160x160 holds no magenta: the network never sees the bands.
        let green = Array(cropped.storage[(224 * 224)..<(2 * 224 * 224)])
        let red = Array(cropped.storage[0..<(224 * 224)])
        let anyMagenta = (0..<(224 * 224)).contains { (i: Int) -> Bool in
            abs(red[i] - magentaRed) < 1e-5 && abs(green[i] - magentaGreen) < 1e-5
        }
        #expect(!anyMagenta)
        try explainer.explain(&cropFrames)
        let cropMap = try #require(cropFrames[0].explanation?.heatmap)
        let cropAlone = try reference.explain(cropped)[0].map
        // 320x160 at 224/160 = 1.4 cells per pixel: 448x224, the centre from column 112.
        #expect(cropMap.width == 448 && cropMap.height == 224)
        for y in 0..<224 {
            let row = Array(cropMap.values[(y * 448)..<((y + 1) * 448)])
            #expect(row[0..<112].allSatisfy { $0 == 0 } && row[336..<448].allSatisfy { $0 == 0 })
            #expect(Array(row[112..<336]) == Array(cropAlone.values[(y * 224)..<((y + 1) * 224)]))
        }
    }

    /// A picture already at the input size is only scaled and normalised: the reference's own
    /// resized pictures give its input tensors.
    @Test func normalisationGivesTheReferenceInputs() throws {
        guard let reference = ReferenceData.referenceOrSkip("NetworkExplainerTests.normalisationGivesTheReferenceInputs") else { return }
        for name in ["chelsea", "coffee"] {
            let picture = try PictureFile.read(reference.appendingPathComponent("inputs/\(name).png").path)
            var preprocessor = FramePreprocessor(inputWidth: 224, inputHeight: 224)
            let tensor = preprocessor.input(for: picture).tensor
            let expected = try NumPyFile.read(path: reference.appendingPathComponent("inputs/\(name).npy").path)
            let worst = zip(tensor.storage, expected.storage).map { abs($0 - $1) }.max() ?? 1
            #expect(tensor.shape == expected.shape && worst <= 1e-5, "\(name): tensor max diff \(worst)")
        }
    }
}

/// `--network-threads`: one thread gives the maps two do.
@Suite(.serialized) struct NetworkThreadCountTests {
    @Test func oneThreadGivesTheSameMapsAsTwo() throws {
        let network = try Network(contentsOf: DefaultModel.url)
        let labels = ClassLabels(names: ImageNetClasses.names)
        let frames = Array(try decodedFrames(NetworkExplainerTests.sample, span: TimeSpan(duration: 0.12),
                                             preprocessor: FramePreprocessor(inputWidth: 224, inputHeight: 224)).prefix(2))
        #expect(frames.count == 2)
        var maps: [[Frame]] = []
        for threads in [2, 1] {
            let explainer = try NetworkExplainer(network: network, method: .gradcam, labels: labels, threads: threads)
            #expect(explainer.threads == threads)
            var explained = frames
            try explainer.explain(&explained)
            maps.append(explained)
        }
        for (two, one) in zip(maps[0], maps[1]) {
            #expect(two.explanation?.classIndex == one.explanation?.classIndex)
            let a = try #require(two.explanation?.heatmap), b = try #require(one.explanation?.heatmap)
            #expect(zip(a.values, b.values).allSatisfy { abs($0 - $1) <= 1e-4 })
        }
    }
}
