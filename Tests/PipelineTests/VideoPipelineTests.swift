import Core
import Foundation
import Pipeline
import Synchronization
import Testing

/// A decoded picture of the in-memory source: its number and timing.
struct SyntheticFrame: Sendable {
    var number: Int
    var pts: Int64
}

/// The frame the later stages see: a small picture painted with its number, and the class the
/// explainer marks it with.
struct TestFrame: PipelineFrame {
    var index: Int
    var pts: Int64
    var image: RGBImage
    var classIndex: Int?
}

/// What reached the sink, in order.
enum Written: Sendable, Equatable {
    case frame(index: Int, pts: Int64?, pattern: Int, marker: Int?)
    case packet(Int)
}

/// Records what the sink writes; shared with the test (the sink itself is moved into the pipeline).
final class Recorder: Sendable {
    private let state = Mutex<(items: [Written], finished: Int)>(([], 0))

    func append(_ item: Written) { state.withLock { $0.items.append(item) } }
    func markFinished() { state.withLock { $0.finished += 1 } }
    var written: [Written] { state.withLock { $0.items } }
    var finished: Int { state.withLock { $0.finished } }
    var frameIndices: [Int] {
        written.compactMap { if case .frame(let index, _, _, _) = $0 { return index } else { return nil } }
    }
}

/// A count shared between a stage and the test.
final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
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

    mutating func next() throws -> MediaItem<SyntheticFrame, Int>? {
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
struct SyntheticConverter: PipelineConverter {
    var counter: Counter?

    mutating func convert(_ frame: SyntheticFrame, index: Int) throws -> TestFrame {
        defer { counter?.increment() }
        let value = UInt8(frame.number % 251)
        return TestFrame(index: index, pts: frame.pts, image: RGBImage(width: 4, height: 2, fill: (value, value &+ 1, value &+ 2)))
    }
}

struct RecordingSink: PipelineSink {
    let recorder: Recorder
    var failAtFrame: Int?
    var gate: DispatchSemaphore?
    var onFrame: (@Sendable () -> Void)?

    mutating func encode(_ frame: TestFrame) throws {
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

/// The batch sizes an explainer saw, shared with the test.
final class BatchLog: Sendable {
    private let sizes = Mutex<[Int]>([])
    func append(_ size: Int) -> Bool { sizes.withLock { $0.append(size); return $0.count == 1 } }
    var batchSizes: [Int] { sizes.withLock { $0 } }
}

/// Explains frame i with class i; logs batch sizes; optionally fails, or holds its first batch
/// until `firstBatchGate` (given the batch's size) returns.
struct MarkingExplainer: PipelineExplainer {
    var log = BatchLog()
    var failAtFrame: Int?
    var firstBatchGate: (@Sendable (Int) -> Void)?
    var finished: Counter?
    var failsToFinish = false

    mutating func explain(_ frames: inout [TestFrame]) throws {
        if log.append(frames.count), let firstBatchGate { firstBatchGate(frames.count) }
        if let failAtFrame, frames.contains(where: { $0.index == failAtFrame }) {
            throw TestFailure(description: "model exploded")
        }
        for i in frames.indices { frames[i].classIndex = frames[i].index }
    }

    func finish() throws {
        finished?.increment()
        if failsToFinish { throw TestFailure(description: "records.npy: disk full") }
    }
}

/// Writes the explained class into pixel (0, 0)'s green channel.
struct MarkingOverlay: PipelineOverlay {
    func draw(_ frame: inout TestFrame) throws {
        guard let classIndex = frame.classIndex else { return }
        var pixel = frame.image[0, 0]
        pixel.g = UInt8(classIndex % 251)
        frame.image[0, 0] = pixel
    }
}

/// Passes frames through unexplained (the pipeline for `--method none`).
struct UnchangedExplainer: PipelineExplainer {
    func explain(_ frames: inout [TestFrame]) throws {}
    func finish() throws {}
}

/// The description of the error `body` throws, nil when it throws none.
func failureDescription(_ body: () async throws -> Void) async -> String? {
    do {
        try await body()
        return nil
    } catch {
        return "\(error)"
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
        let explainer = MarkingExplainer(), finished = Counter()
        let summary = try await VideoPipeline.run(
            source: SyntheticSource(count: 60), converter: SyntheticConverter(),
            explainer: MarkingExplainer(log: explainer.log, finished: finished), overlay: MarkingOverlay(),
            sink: RecordingSink(recorder: recorder),
            configuration: PipelineConfiguration(channelCapacity: capacity, batchSize: batchSize))
        #expect(recorder.written == expectedItems(frames: 60, marked: true))
        #expect(summary.framesWritten == 60 && summary.packetsWritten == 20 && summary.framesDropped == 0 && !summary.stoppedEarly)
        #expect(recorder.finished == 1)
        #expect(finished.value == 1, "the explainer is finished once")
        #expect(explainer.log.batchSizes.allSatisfy { $0 >= 1 && $0 <= batchSize })
        #expect(explainer.log.batchSizes.reduce(0, +) == 60)
    }

    @Test(arguments: [(1, 1), (2, 4), (8, 3)])
    func framesInFlightStayBounded(capacity: Int, batchSize: Int) async throws {
        // Read minus written, sampled at every write: what the stages and channels hold.
        let read = Counter(), written = Counter(), peak = Counter()
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

    @Test func unexplainedFramesPassUnchanged() async throws {
        let recorder = Recorder()
        let summary = try await VideoPipeline.run(
            source: SyntheticSource(count: 25), converter: SyntheticConverter(),
            explainer: UnchangedExplainer(), overlay: MarkingOverlay(), sink: RecordingSink(recorder: recorder),
            configuration: PipelineConfiguration(channelCapacity: 2, batchSize: 4))
        #expect(recorder.written == expectedItems(frames: 25, marked: false))
        #expect(summary.framesWritten == 25)
    }

    @Test func batchesFramesAlreadyWaiting() async throws {
        // The first batch (of k frames) is held until the next four frames have been converted
        // and queued, which the conversion of the fifth proves: the second batch must take four.
        let counter = Counter()
        let explainer = MarkingExplainer(firstBatchGate: { firstCount in
            while counter.value < firstCount + 5 { usleep(1000) }
        })
        let recorder = Recorder()
        _ = try await VideoPipeline.run(
            source: SyntheticSource(count: 30, packetEvery: 1000), converter: SyntheticConverter(counter: counter),
            explainer: explainer, overlay: MarkingOverlay(), sink: RecordingSink(recorder: recorder),
            configuration: PipelineConfiguration(channelCapacity: 8, batchSize: 4))
        #expect(explainer.log.batchSizes.dropFirst().first == 4)
        #expect(recorder.written == expectedItems(frames: 30, packetEvery: 1000, marked: true))
    }

    @Test func sourceFailureFinalisesWithEveryEarlierFrame() async throws {
        let recorder = Recorder(), finished = Counter()
        await #expect(throws: TestFailure(description: "input.bin: frame 17: corrupt")) {
            _ = try await VideoPipeline.run(
                source: SyntheticSource(count: 40, failAtFrame: 17), converter: SyntheticConverter(),
                explainer: MarkingExplainer(finished: finished), overlay: MarkingOverlay(), sink: RecordingSink(recorder: recorder),
                configuration: PipelineConfiguration(channelCapacity: 3, batchSize: 2))
        }
        #expect(recorder.written == expectedItems(frames: 17, marked: true))
        #expect(recorder.finished == 1)
        #expect(finished.value == 1, "the explainer's records are completed after a failure too")
    }

    @Test func explainerThatCannotFinishFailsTheRunAfterEveryFrame() async throws {
        let recorder = Recorder()
        let failure = await failureDescription {
            _ = try await VideoPipeline.run(
                source: SyntheticSource(count: 12), converter: SyntheticConverter(),
                explainer: MarkingExplainer(failsToFinish: true), overlay: MarkingOverlay(), sink: RecordingSink(recorder: recorder),
                configuration: PipelineConfiguration(channelCapacity: 2, batchSize: 3))
        }
        #expect(failure == "explain: records.npy: disk full")
        #expect(recorder.written == expectedItems(frames: 12, marked: true))
        #expect(recorder.finished == 1)
    }

    @Test func explainerFailureNamesTheFrameAndKeepsEarlierBatches() async throws {
        let recorder = Recorder()
        let failure = await failureDescription {
            _ = try await VideoPipeline.run(
                source: SyntheticSource(count: 40), converter: SyntheticConverter(),
                explainer: MarkingExplainer(failAtFrame: 9), overlay: MarkingOverlay(),
                sink: RecordingSink(recorder: recorder),
                configuration: PipelineConfiguration(channelCapacity: 2, batchSize: 1))
        }
        #expect(failure == "explain: frame 9: model exploded")
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

    /// Every stage runs on a thread of its own, none on Swift's cooperative pool.
    @Test func stagesRunOnTheirOwnThreads() async throws {
        let names = Mutex<Set<String>>([])
        struct NamingSource: PipelineSource {
            var inner = SyntheticSource(count: 5)
            let names: @Sendable (String) -> Void
            mutating func next() throws -> MediaItem<SyntheticFrame, Int>? {
                names((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
                return try inner.next()
            }
        }
        _ = try await VideoPipeline.run(
            source: NamingSource { name in names.withLock { _ = $0.insert(name) } }, converter: SyntheticConverter(),
            explainer: MarkingExplainer(), overlay: MarkingOverlay(), sink: RecordingSink(recorder: Recorder()),
            configuration: PipelineConfiguration())
        #expect(names.withLock { $0 } == ["camvid.decode"])
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
        let summary = reporter.summary(output: "out.mp4", what: "gradcam at head")
        #expect(summary.hasPrefix("wrote 10 frames to out.mp4 in ") && summary.hasSuffix(" fps): gradcam at head"), "\(summary)")
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

final class TextSink: Sendable {
    private let items = Mutex<[String]>([])
    func append(_ text: String) { items.withLock { $0.append(text) } }
    var texts: [String] { items.withLock { $0 } }
}
