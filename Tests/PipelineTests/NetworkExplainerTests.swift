import Core
import Engine
import Explain
import Foundation
import Media
import Pipeline
import Render
import TestSupport
import Testing
import MediaTestSupport

/// Keeps every explained frame in memory, in the order written.
final class CollectingSink: ExplanationSink, @unchecked Sendable {
    private let lock = NSLock()
    private var items: [ExplainedFrameRecord] = []
    private var finishes = 0

    func record(_ frame: ExplainedFrameRecord) throws { lock.withLock { items.append(frame) } }
    func finish() throws { lock.withLock { finishes += 1 } }
    var records: [ExplainedFrameRecord] { lock.withLock { items } }
}

/// The decoded RGB frames of a file (or span), converted as the pipeline converts them.
func decodedFrames(_ input: MediaInput, span: TimeSpan = .all) throws -> [VideoFrame] {
    _ = PatternClips.quiet
    let decoder = try FrameDecoder(input, span: span)
    let converter = PixelConverter(file: input.location)
    var frames: [VideoFrame] = []
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
        let sink = CollectingSink()

        let job = try VideoJob(input: Self.sample, span: span, output: MediaOutput(output.path))
        let summary = try await job.run(
            explainer: RecordingExplainer(explainer, sinks: [sink], timeBase: job.decoder.video.timeBase),
            overlay: HeatmapOverlay(try Overlay()),
            configuration: PipelineConfiguration(channelCapacity: capacity, batchSize: batchSize))

        let frames = try decodedFrames(Self.sample, span: span)
        let records = sink.records
        #expect(frames.count == 10)
        #expect(summary.framesWritten == frames.count)
        #expect(records.map(\.frameIndex) == Array(0..<frames.count))
        let reference = try Explainer(network: EngineNetwork(network), method: .gradcam, labels: labels)
        let preprocessor = FramePreprocessor(inputWidth: 224, inputHeight: 224)
        for (frame, record) in zip(frames, records) {
            let alone = try reference.explain(preprocessor.tensor(for: frame.image))[0]
            let heatmap = try #require(record.explanation.heatmap)
            #expect(heatmap.width == 224 && heatmap.height == 224)
            #expect(heatmap.values == alone.map.storage, "frame \(frame.index)")
            #expect(record.explanation.classIndex == alone.classIndex)
            let label = try #require(record.explanation.label)
            #expect(label.hasPrefix(labels.name(of: alone.classIndex) + " ") && label.hasSuffix("%"))
            #expect(record.seconds == job.decoder.video.timeBase.seconds(frame.pts))
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
    @Test func cropAndPadPlaceTheMapOnTheFrame() async throws {
        let network = try Network(contentsOf: DefaultModel.url)
        let labels = ClassLabels(names: ImageNetClasses.names)
        // A real frame squeezed to 2:1 (448x224 → 320x160) with distinct side bands.
        let frame = try #require(decodedFrames(Self.sample, span: TimeSpan(start: 2, duration: 0.04)).first)
        var image = GridOverlay.areaResized(frame.image, width: 320, height: 160)
        for y in 0..<160 {
            for x in 0..<320 where x < 80 || x >= 240 { image[x, y] = (255, 0, 255) }
        }
        let video = VideoFrame(index: 0, pts: 0, duration: 1, image: image)
        let mean: [Float] = InputNormalization.imageNet.mean, std: [Float] = InputNormalization.imageNet.std
        let magentaRed: Float = (1 - mean[0]) / std[0], magentaGreen: Float = (0 - mean[1]) / std[1]

        let pad = try NetworkExplainer(network: network, method: .gradcam, labels: labels, fit: .pad)
        let padded = try #require(pad.prepare(video).tensor)
        // Content 224x112 at rows 56..<168; rows above and below are the mean colour (0).
        #expect(padded.storage[0..<(56 * 224)].allSatisfy { $0 == 0 })
        #expect(padded.storage[(168 * 224)..<(224 * 224)].allSatisfy { $0 == 0 })
        let inside: Float = padded.storage[60 * 224 + 2]
        #expect(abs(inside - magentaRed) < 1e-5, "the magenta band is inside")
        let padMap = try #require(try await pad.explain([ModelInput(frameIndex: 0, tensor: padded)]).first?.heatmap)
        let padAlone = try Explainer(network: EngineNetwork(network), method: .gradcam, labels: labels).explain(padded)[0].map
        #expect(padMap.width == 224 && padMap.height == 112)
        #expect(padMap.values == Array(padAlone.storage[(56 * 224)..<(168 * 224)]))

        let crop = try NetworkExplainer(network: network, method: .gradcam, labels: labels, fit: .crop)
        let cropped = try #require(try crop.prepare(video).tensor)
        // The centre 160x160 holds no magenta: the network never sees the bands.
        let green = Array(cropped.storage[(224 * 224)..<(2 * 224 * 224)])
        let red = Array(cropped.storage[0..<(224 * 224)])
        let anyMagenta = (0..<(224 * 224)).contains { (i: Int) -> Bool in
            abs(red[i] - magentaRed) < 1e-5 && abs(green[i] - magentaGreen) < 1e-5
        }
        #expect(!anyMagenta)
        let cropMap = try #require(try await crop.explain([ModelInput(frameIndex: 0, tensor: cropped)]).first?.heatmap)
        let cropAlone = try Explainer(network: EngineNetwork(network), method: .gradcam, labels: labels).explain(cropped)[0].map
        // 320x160 at 224/160 = 1.4 cells per pixel: 448x224, the centre from column 112.
        #expect(cropMap.width == 448 && cropMap.height == 224)
        for y in 0..<224 {
            let row = Array(cropMap.values[(y * 448)..<((y + 1) * 448)])
            #expect(row[0..<112].allSatisfy { $0 == 0 } && row[336..<448].allSatisfy { $0 == 0 })
            #expect(Array(row[112..<336]) == Array(cropAlone.storage[(y * 224)..<((y + 1) * 224)]))
        }
    }

    /// A picture already at the input size is only scaled and normalised: the reference's own
    /// resized pictures give its input tensors.
    @Test func normalisationGivesTheReferenceInputs() throws {
        guard let reference = ReferenceData.referenceOrSkip("NetworkExplainerTests.normalisationGivesTheReferenceInputs") else { return }
        for name in ["chelsea", "coffee"] {
            let picture = try PictureFile.read(reference.appendingPathComponent("inputs/\(name).png").path)
            let tensor = FramePreprocessor(inputWidth: 224, inputHeight: 224).tensor(for: picture)
            let expected = try NumPyFile.read(path: reference.appendingPathComponent("inputs/\(name).npy").path)
            let worst = zip(tensor.storage, expected.storage).map { abs($0 - $1) }.max() ?? 1
            #expect(tensor.shape == expected.shape && worst <= 1e-5, "\(name): tensor max diff \(worst)")
        }
    }
}

/// The pipeline's network thread count (`--network-threads`): set per calling thread, same maps.
@Suite(.serialized) struct NetworkThreadsTests {
    @Test func limitAppliesToTheCallingThreadOnly() throws {
        NetworkThreads.limitCallingThread(to: 1)
        #expect(NetworkThreads.callingThreadLimit == 1)
        let elsewhere = Thread.detachNewThreadAndWait { NetworkThreads.callingThreadLimit }
        #expect(elsewhere != 1 || ProcessInfo.processInfo.activeProcessorCount == 1)
        NetworkThreads.limitCallingThread(to: 2)
        #expect(NetworkThreads.callingThreadLimit == 2)
        NetworkThreads.limitCallingThread(to: 0)
        #expect(NetworkThreads.callingThreadLimit == 1, "counts below 1 are raised to 1")
    }

    @Test func oneThreadGivesTheSameMapsAsTwo() async throws {
        let network = try Network(contentsOf: DefaultModel.url)
        let labels = ClassLabels(names: ImageNetClasses.names)
        let frames = Array(try decodedFrames(NetworkExplainerTests.sample, span: TimeSpan(duration: 0.12)).prefix(2))
        #expect(frames.count == 2)
        var maps: [[FrameExplanation]] = []
        for threads in [2, 1] {
            let explainer = try NetworkExplainer(network: network, method: .gradcam, labels: labels, threads: threads)
            #expect(explainer.threads == threads)
            maps.append(try await explainer.explain(frames.map { try explainer.prepare($0) }))
        }
        for (two, one) in zip(maps[0], maps[1]) {
            #expect(two.classIndex == one.classIndex)
            let a = try #require(two.heatmap), b = try #require(one.heatmap)
            #expect(zip(a.values, b.values).allSatisfy { abs($0 - $1) <= 1e-4 })
        }
    }
}

extension Thread {
    /// Runs `body` on a new thread and waits for its result.
    static func detachNewThreadAndWait<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T? {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        Thread.detachNewThread {
            box.value = body()
            done.signal()
        }
        done.wait()
        return box.value
    }
}

/// A value handed from one thread to another, ordered by a semaphore.
final class ResultBox<T: Sendable>: @unchecked Sendable {
    var value: T?
}
