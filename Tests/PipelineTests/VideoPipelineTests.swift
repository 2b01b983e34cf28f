import Core
import Foundation
import Pipeline
import Render
import Testing

/// A decoded picture of the in-memory source: its number and timing.
struct SyntheticFrame: Sendable {
    var number: Int
    var pts: Int64
}

/// What reached the sink, in order.
enum Written: Sendable, Equatable {
    case frame(index: Int, pts: Int64?, pattern: Int, marker: Int?)
    case packet(Int)
}

/// Records what the sink writes; shared with the test (the sink itself is moved into the pipeline).
final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Written] = []
    private var finishCount = 0

    func append(_ item: Written) { lock.withLock { items.append(item) } }
    func markFinished() { lock.withLock { finishCount += 1 } }
    var written: [Written] { lock.withLock { items } }
    var finished: Int { lock.withLock { finishCount } }
    var frames: [Written] { written.filter { if case .frame = $0 { return true } else { return false } } }
    var frameIndices: [Int] {
        written.compactMap { if case .frame(let index, _, _, _) = $0 { return index } else { return nil } }
    }
}

/// `count` frames with a packet of another stream after every `packetEvery`-th frame.
struct SyntheticSource: PipelineSource {
    var count: Int
    var packetEvery: Int = 3
    var failAtFrame: Int?
    var stopAfterFrame: Int?
    var stop: StopSignal?
    var onEnd: (@Sendable () -> Void)?
    var onFrame: (@Sendable () -> Void)?
    private var frame = 0
    private var packetDue = false
    private var packet = 0

    init(count: Int, packetEvery: Int = 3, failAtFrame: Int? = nil, stopAfterFrame: Int? = nil,
         stop: StopSignal? = nil, onEnd: (@Sendable () -> Void)? = nil, onFrame: (@Sendable () -> Void)? = nil) {
        self.count = count
        self.packetEvery = packetEvery
        self.failAtFrame = failAtFrame
        self.stopAfterFrame = stopAfterFrame
        self.stop = stop
        self.onEnd = onEnd
        self.onFrame = onFrame
    }

    mutating func next() throws -> SourceItem<SyntheticFrame, Int>? {
        if packetDue {
            packetDue = false
            packet += 1
            return .packet(packet - 1)
        }
        guard frame < count else {
            onEnd?()
            return nil
        }
        if frame == failAtFrame { throw TestFailure(description: "input.bin: frame \(frame): corrupt") }
        if frame == stopAfterFrame { stop?.stop() }
        onFrame?()
        defer { frame += 1 }
        packetDue = (frame + 1) % packetEvery == 0
        return .frame(SyntheticFrame(number: frame, pts: Int64(frame) * 512))
    }
}

/// Paints a frame's number into every pixel (a per-frame pattern the sink checks).
struct SyntheticConverter: PipelineFrameConverter {
    mutating func convert(_ frame: SyntheticFrame, index: Int) throws -> VideoFrame {
        let value = UInt8(frame.number % 251)
        return VideoFrame(index: index, pts: frame.pts, duration: 512,
                          image: RGBImage(width: 4, height: 2, fill: (value, value &+ 1, value &+ 2)))
    }
}

struct RecordingSink: PipelineSink {
    let recorder: Recorder
    var failAtFrame: Int?
    var gate: DispatchSemaphore?
    var onFrame: (@Sendable () -> Void)?

    mutating func encode(_ frame: VideoFrame) throws {
        if let gate {
            gate.wait()
            self.gate = nil
        }
        if frame.index == failAtFrame { throw TestFailure(description: "out.bin: cannot write frame \(frame.index)") }
        onFrame?()
        let image = frame.image
        #expect(image.pixels.count == 4 * 2 * 3)
        let pattern = Int(image[1, 1].r)
        let marker = image[0, 0].g == image[1, 1].g ? nil : Int(image[0, 0].g)
        recorder.append(.frame(index: frame.index, pts: frame.pts, pattern: pattern, marker: marker))
    }

    mutating func copy(_ packet: Int) throws {
        recorder.append(.packet(packet))
    }

    mutating func finish() throws {
        recorder.markFinished()
    }
}

/// Explains frame i with class i; records batch sizes; optionally fails or waits on its first batch.
final class MarkingExplainer: FrameExplainer, @unchecked Sendable {
    private let lock = NSLock()
    private var sizes: [Int] = []
    let failAtFrame: Int?
    let firstBatchGate: (@Sendable (Int) async -> Void)?

    init(failAtFrame: Int? = nil, firstBatchGate: (@Sendable (Int) async -> Void)? = nil) {
        self.failAtFrame = failAtFrame
        self.firstBatchGate = firstBatchGate
    }

    var batchSizes: [Int] { lock.withLock { sizes } }

    func prepare(_ frame: VideoFrame) throws -> ModelInput {
        ModelInput(frameIndex: frame.index, tensor: nil)
    }

    func explain(_ batch: [ModelInput]) async throws -> [FrameExplanation] {
        let isFirst = lock.withLock { () -> Bool in
            sizes.append(batch.count)
            return sizes.count == 1
        }
        if isFirst, let firstBatchGate { await firstBatchGate(batch.count) }
        if let failAtFrame, batch.contains(where: { $0.frameIndex == failAtFrame }) {
            throw TestFailure(description: "model exploded")
        }
        return batch.map { FrameExplanation(classIndex: $0.frameIndex) }
    }
}

/// Writes the explained class into pixel (0, 0)'s green channel.
struct MarkingOverlay: FrameOverlay {
    func draw(_ explanation: FrameExplanation, on image: inout RGBImage) throws {
        guard let classIndex = explanation.classIndex else { return }
        var pixel = image[0, 0]
        pixel.g = UInt8(classIndex % 251)
        image[0, 0] = pixel
    }
}

/// Counts frames the converter finished, and lets a task wait for a count.
final class ConversionCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

struct CountingConverter: PipelineFrameConverter {
    var inner = SyntheticConverter()
    let counter: ConversionCounter
    mutating func convert(_ frame: SyntheticFrame, index: Int) throws -> VideoFrame {
        defer { counter.increment() }
        return try inner.convert(frame, index: index)
    }
}

/// The items a correct run writes for `SyntheticSource(count:packetEvery:)` up to `frames` frames.
func expectedItems(frames: Int, packetEvery: Int = 3, marked: Bool) -> [Written] {
    var items: [Written] = []
    var packet = 0
    for number in 0..<frames {
        items.append(.frame(index: number, pts: Int64(number) * 512, pattern: number % 251,
                            marker: marked ? number % 251 : nil))
        if (number + 1) % packetEvery == 0 {
            items.append(.packet(packet))
            packet += 1
        }
    }
    return items
}

@Suite struct VideoPipelineTests {
    @Test(arguments: [(1, 1), (1, 4), (3, 1), (4, 2), (8, 16)])
    func writesEveryItemInDecodeOrder(batchSize: Int, capacity: Int) async throws {
        let recorder = Recorder()
        let explainer = MarkingExplainer()
        let summary = try await VideoPipeline.run(
            source: SyntheticSource(count: 60), converter: SyntheticConverter(),
            explainer: explainer, overlay: MarkingOverlay(), sink: RecordingSink(recorder: recorder),
            configuration: PipelineConfiguration(channelCapacity: capacity, batchSize: batchSize))
        #expect(recorder.written == expectedItems(frames: 60, marked: true))
        #expect(summary == PipelineSummary(framesWritten: 60, packetsWritten: 20, framesDropped: 0,
                                          stoppedEarly: false, endTimestamp: 60 * 512))
        #expect(recorder.finished == 1)
        #expect(explainer.batchSizes.allSatisfy { $0 >= 1 && $0 <= batchSize })
        #expect(explainer.batchSizes.reduce(0, +) == 60)
    }

    @Test(arguments: [(1, 1), (2, 4), (8, 3)])
    func framesInFlightStayBounded(capacity: Int, batchSize: Int) async throws {
        // Read minus written, sampled at every write: what the stages and channels hold.
        let read = ConversionCounter(), written = ConversionCounter(), peak = ConversionCounter()
        let recorder = Recorder()
        let summary = try await VideoPipeline.run(
            source: SyntheticSource(count: 3000, packetEvery: 1_000_000, onFrame: { read.increment() }),
            converter: SyntheticConverter(), explainer: MarkingExplainer(), overlay: MarkingOverlay(),
            sink: RecordingSink(recorder: recorder, onFrame: {
                written.increment()
                let inFlight = read.value - written.value
                while peak.value < inFlight { peak.increment() }
            }),
            configuration: PipelineConfiguration(channelCapacity: capacity, batchSize: batchSize))
        #expect(summary.framesWritten == 3000)
        // Four channels, one item in each of four stages plus a batch in the explain stage, and
        // one frame the decoder has read but not yet handed on.
        #expect(peak.value <= 4 * capacity + 4 + batchSize + 1)
    }

    @Test func identityExplainerLeavesFramesUnchanged() async throws {
        let recorder = Recorder()
        let summary = try await VideoPipeline.run(
            source: SyntheticSource(count: 25), converter: SyntheticConverter(),
            explainer: IdentityExplainer(), overlay: HeatmapOverlay(try Overlay()), sink: RecordingSink(recorder: recorder),
            configuration: PipelineConfiguration(channelCapacity: 2, batchSize: 4))
        #expect(recorder.written == expectedItems(frames: 25, marked: false))
        #expect(summary.framesWritten == 25)
    }

    @Test func batchesFramesAlreadyWaiting() async throws {
        // The first batch (of k frames) is held until the next four frames have been converted
        // and queued, which the conversion of the fifth proves: the second batch must take four.
        let counter = ConversionCounter()
        let explainer = MarkingExplainer(firstBatchGate: { firstCount in
            while counter.value < firstCount + 5 { try? await Task.sleep(for: .milliseconds(1)) }
        })
        let recorder = Recorder()
        _ = try await VideoPipeline.run(
            source: SyntheticSource(count: 30, packetEvery: 1000), converter: CountingConverter(counter: counter),
            explainer: explainer, overlay: MarkingOverlay(), sink: RecordingSink(recorder: recorder),
            configuration: PipelineConfiguration(channelCapacity: 8, batchSize: 4))
        #expect(explainer.batchSizes.dropFirst().first == 4)
        #expect(recorder.written == expectedItems(frames: 30, packetEvery: 1000, marked: true))
    }

    @Test func sourceFailureFinalisesWithEveryEarlierFrame() async throws {
        let recorder = Recorder()
        await #expect(throws: TestFailure(description: "input.bin: frame 17: corrupt")) {
            _ = try await VideoPipeline.run(
                source: SyntheticSource(count: 40, failAtFrame: 17), converter: SyntheticConverter(),
                explainer: MarkingExplainer(), overlay: MarkingOverlay(), sink: RecordingSink(recorder: recorder),
                configuration: PipelineConfiguration(channelCapacity: 3, batchSize: 2))
        }
        #expect(recorder.written == expectedItems(frames: 17, marked: true))
        #expect(recorder.finished == 1)
    }

    @Test func explainerFailureNamesTheFrameAndKeepsEarlierBatches() async throws {
        let recorder = Recorder()
        do {
            _ = try await VideoPipeline.run(
                source: SyntheticSource(count: 40), converter: SyntheticConverter(),
                explainer: MarkingExplainer(failAtFrame: 9), overlay: MarkingOverlay(),
                sink: RecordingSink(recorder: recorder),
                configuration: PipelineConfiguration(channelCapacity: 2, batchSize: 1))
            Issue.record("the explainer's failure was not reported")
        } catch {
            #expect("\(error)" == "explain: frame 9: model exploded")
        }
        #expect(recorder.written == expectedItems(frames: 9, marked: true))
        #expect(recorder.finished == 1)
    }

    @Test func sinkFailureStopsEveryStage() async throws {
        let recorder = Recorder()
        await #expect(throws: TestFailure(description: "out.bin: cannot write frame 5")) {
            _ = try await VideoPipeline.run(
                source: SyntheticSource(count: 10_000), converter: SyntheticConverter(),
                explainer: MarkingExplainer(), overlay: MarkingOverlay(),
                sink: RecordingSink(recorder: recorder, failAtFrame: 5),
                configuration: PipelineConfiguration(channelCapacity: 2, batchSize: 2))
        }
        #expect(recorder.frameIndices == Array(0..<5))
        #expect(recorder.finished == 1)
    }

    @Test func stopSignalDrainsFramesInFlight() async throws {
        let recorder = Recorder()
        let stop = StopSignal()
        let summary = try await VideoPipeline.run(
            source: SyntheticSource(count: 10_000, stopAfterFrame: 10, stop: stop), converter: SyntheticConverter(),
            explainer: MarkingExplainer(), overlay: MarkingOverlay(), sink: RecordingSink(recorder: recorder),
            configuration: PipelineConfiguration(channelCapacity: 4, batchSize: 3), stop: stop)
        #expect(summary.stoppedEarly)
        #expect(recorder.written == expectedItems(frames: 11, marked: true))
        #expect(recorder.finished == 1)
    }

    @Test func realtimeDropsOldFramesButNoPackets() async throws {
        // The sink waits until the source has read everything, so the first channel must drop.
        let gate = DispatchSemaphore(value: 0)
        let recorder = Recorder()
        let summary = try await VideoPipeline.run(
            source: SyntheticSource(count: 200, packetEvery: 100, onEnd: { gate.signal() }),
            converter: SyntheticConverter(), explainer: MarkingExplainer(), overlay: MarkingOverlay(),
            sink: RecordingSink(recorder: recorder, gate: gate),
            configuration: PipelineConfiguration(channelCapacity: 4, batchSize: 2, realtime: true))
        let indices = recorder.frameIndices
        #expect(summary.framesDropped > 0)
        #expect(summary.framesWritten + summary.framesDropped == 200)
        #expect(indices.count == summary.framesWritten)
        #expect(indices == indices.sorted())
        #expect(Set(indices).count == indices.count)
        #expect(indices.last == 199)
        #expect(recorder.written.filter { $0 == .packet(0) || $0 == .packet(1) }.count == 2)
        for case .frame(let index, _, let pattern, let marker) in recorder.written {
            let expected = index % 251
            #expect(pattern == expected)
            #expect(marker == expected)
        }
    }

    @Test func stopSignalRunsItsHandlersOnce() {
        let calls = ConversionCounter()
        let stop = StopSignal()
        stop.onStop { calls.increment() }
        #expect(calls.value == 0)
        stop.stop()
        stop.stop()
        #expect(calls.value == 1)
        stop.onStop { calls.increment() }
        #expect(calls.value == 2)
        #expect(stop.isStopped)
    }

    @Test func progressLineShowsRateAndTimeLeft() {
        #expect(ProgressReporter.line(frames: 120, elapsed: 5, expectedFrames: 1440)
                == "frame 120/1440  24.0 fps  elapsed 0:05  ETA 0:55")
        #expect(ProgressReporter.line(frames: 30, elapsed: 2, expectedFrames: nil)
                == "frame 30  15.0 fps  elapsed 0:02")
    }

    @Test func progressReporterIsSilentWhenDisabled() {
        let lines = Recorder()
        let reporter = ProgressReporter(expectedFrames: 10, enabled: false) { _ in lines.append(.packet(0)) }
        for _ in 0..<10 { reporter.frameWritten() }
        reporter.finish()
        #expect(reporter.framesWritten == 10)
        #expect(lines.written.isEmpty)
    }

    @Test func progressReporterRedrawsInPlace() {
        let lines = TextSink()
        let reporter = ProgressReporter(expectedFrames: nil, enabled: true, interval: .seconds(3600)) { lines.append($0) }
        for _ in 0..<10 { reporter.frameWritten() }
        reporter.finish()
        // One line on the first frame (then throttled), one final line ending with a newline.
        #expect(lines.texts.count == 2)
        #expect(lines.texts.allSatisfy { $0.hasPrefix("\rframe ") })
        #expect(lines.texts.last?.hasSuffix("\n") == true)
        #expect(lines.texts.last?.hasPrefix("\rframe 10 ") == true)
    }
}

final class TextSink: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ text: String) { lock.withLock { items.append(text) } }
    var texts: [String] { lock.withLock { items } }
}
