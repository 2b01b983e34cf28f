import Foundation

/// What a pipeline run did.
public struct PipelineSummary: Sendable, Equatable {
    /// Frames encoded into the output.
    public var framesWritten: Int
    /// Packets of other streams copied into the output.
    public var packetsWritten: Int
    /// Frames discarded to keep up with a live source (`realtime` only).
    public var framesDropped: Int
    /// Whether reading stopped before the end of the input because a `StopSignal` was raised.
    public var stoppedEarly: Bool
    /// Where the last written frame ends (its pts plus duration, in the input's time base).
    public var endTimestamp: Int64?

    /// A summary with the given counts.
    public init(framesWritten: Int, packetsWritten: Int, framesDropped: Int, stoppedEarly: Bool, endTimestamp: Int64? = nil) {
        self.framesWritten = framesWritten
        self.packetsWritten = packetsWritten
        self.framesDropped = framesDropped
        self.stoppedEarly = stoppedEarly
        self.endTimestamp = endTimestamp
    }
}

/// The five stages, decode → preprocess → explain → blend → encode, each a task owning its
/// resource, joined by bounded channels so that memory stays flat for any input length.
///
/// Every stage handles its items in the order it receives them, so frames and copied packets
/// reach the encoder in decode order, whatever the batch size and channel capacity.
/// An error anywhere travels down the channels behind the items already sent: the encoder
/// writes every frame completed before the fault, finalises the container, then `run` throws.
public enum VideoPipeline {
    /// Runs the pipeline until the input ends, `stop` is raised, or a stage fails.
    ///
    /// - Parameters:
    ///   - source: the decoder, used only by the decode stage.
    ///   - converter: the pixel converter, used only by the preprocess stage.
    ///   - explainer: the network and method (`IdentityExplainer` for `--method none`).
    ///   - overlay: draws explanations onto frames in the blend stage.
    ///   - sink: the encoder and muxer, used only by the encode stage; always finalised.
    ///   - configuration: channel capacity, batch size, and whether to drop frames when behind.
    ///   - stop: raised to stop reading early (Ctrl-C); the frames in flight are still written.
    ///   - progress: counts written frames (and draws the progress line).
    /// - Returns: the counts of what was written and dropped.
    /// - Throws: the first failure (decoding, conversion, explanation, blending, encoding),
    ///   after the output has been finalised with every frame completed before it.
    public static func run<Source: PipelineSource, Converter: PipelineFrameConverter, Sink: PipelineSink>(
        source: sending Source,
        converter: sending Converter,
        explainer: any FrameExplainer,
        overlay: any FrameOverlay,
        sink: sending Sink,
        configuration: PipelineConfiguration,
        stop: StopSignal = StopSignal(),
        progress: ProgressReporter? = nil
    ) async throws -> PipelineSummary
    where Converter.Frame == Source.Frame, Sink.Packet == Source.Packet {
        typealias Packet = Source.Packet
        let decoder = ResourceQueue(source, label: "decode")
        let pixelConverter = ResourceQueue(converter, label: "preprocess")
        let encoder = ResourceQueue(sink, label: "encode")
        let network = DedicatedThreadExecutor(name: "camvid.explain")
        defer { network.shutdown() }
        let capacity = configuration.channelCapacity

        // Only the first channel drops: a live source must never wait, and whatever falls
        // behind downstream backs up to here. Packets of other streams are never dropped.
        let decoded = BoundedChannel<Flow<NumberedFrame<Source.Frame>, Packet>>(
            capacity: capacity,
            overflow: configuration.realtime ? .dropOldest(where: { $0.isFrame }) : .suspend)
        let prepared = BoundedChannel<Flow<PreparedFrame, Packet>>(capacity: capacity)
        let explained = BoundedChannel<Flow<ExplainedFrame, Packet>>(capacity: capacity)
        let blended = BoundedChannel<Flow<VideoFrame, Packet>>(capacity: capacity)

        return try await withThrowingTaskGroup(of: Void.self, returning: PipelineSummary.self) { group in
            let stoppedEarly = Flag()
            group.addTask {
                await decodeStage(decoder, into: decoded, stop: stop, stoppedEarly: stoppedEarly)
            }
            group.addTask {
                await relay(from: decoded, to: prepared, batchSize: 1) { items in
                    try await items.asyncMap { item in
                        switch item {
                        case .packet(let packet): return .packet(packet)
                        case .frame(let numbered):
                            let preparedFrame = try await pixelConverter.run { converter in
                                let frame = try converter.convert(numbered.frame, index: numbered.index)
                                let input: ModelInput
                                do {
                                    input = try explainer.prepare(frame)
                                } catch {
                                    throw PipelineError.stageFailed(stage: "preprocess", frame: numbered.index, reason: "\(error)")
                                }
                                return PreparedFrame(frame: frame, input: input)
                            }
                            return .frame(preparedFrame)
                        }
                    }
                }
            }
            group.addTask {
                await withTaskExecutorPreference(network) {
                    await relay(from: prepared, to: explained, batchSize: configuration.batchSize) { items in
                        try await explain(items, with: explainer)
                    }
                }
            }
            group.addTask {
                await relay(from: explained, to: blended, batchSize: 1) { items in
                    try items.map { item in
                        switch item {
                        case .packet(let packet): return .packet(packet)
                        case .frame(let explainedFrame):
                            var frame = explainedFrame.frame
                            do {
                                try overlay.draw(explainedFrame.explanation, on: &frame.image)
                            } catch let error as PipelineError {
                                throw error
                            } catch {
                                throw PipelineError.stageFailed(stage: "blend", frame: frame.index, reason: "\(error)")
                            }
                            return .frame(frame)
                        }
                    }
                }
            }
            let counts = try await encodeStage(encoder, from: blended, progress: progress)
            try await group.waitForAll()
            return PipelineSummary(framesWritten: counts.frames, packetsWritten: counts.packets,
                                   framesDropped: decoded.droppedCount, stoppedEarly: stoppedEarly.isSet,
                                   endTimestamp: counts.end)
        }
    }

    /// Reads until the end of the input or the stop signal; a read error ends the channel with it.
    private static func decodeStage<Source: PipelineSource>(
        _ decoder: ResourceQueue<Source>,
        into output: BoundedChannel<Flow<NumberedFrame<Source.Frame>, Source.Packet>>,
        stop: StopSignal,
        stoppedEarly: Flag
    ) async {
        var index = 0
        do {
            while true {
                if stop.isStopped {
                    stoppedEarly.set()
                    break
                }
                guard let item = try await decoder.run({ try $0.next() }) else {
                    // A source interrupted by the stop signal ends as if the input ended there.
                    if stop.isStopped { stoppedEarly.set() }
                    break
                }
                switch item {
                case .frame(let frame):
                    try await output.send(.frame(NumberedFrame(index: index, frame: frame)))
                    index += 1
                case .packet(let packet):
                    try await output.send(.packet(packet))
                }
            }
            output.finish()
        } catch is ChannelClosedError {
            // A later stage failed and closed the channel: its error is the one reported.
        } catch {
            output.finish(throwing: error)
        }
    }

    /// Explains the frames among `items` as one batch and puts each explanation back in place.
    private static func explain<Packet: Sendable>(
        _ items: [Flow<PreparedFrame, Packet>],
        with explainer: any FrameExplainer
    ) async throws -> [Flow<ExplainedFrame, Packet>] {
        let inputs = items.compactMap { item -> ModelInput? in
            if case .frame(let frame) = item { return frame.input }
            return nil
        }
        let first = inputs.first?.frameIndex
        // Packets read before the batch's first frame are complete whatever the network does.
        let leadingPackets = items.prefix { !$0.isFrame }.compactMap { item -> Flow<ExplainedFrame, Packet>? in
            if case .packet(let packet) = item { return .packet(packet) }
            return nil
        }
        let explanations: [FrameExplanation]
        do {
            // A batch of packets alone has nothing to explain.
            explanations = inputs.isEmpty ? [] : try await explainer.explain(inputs)
        } catch {
            let failure: Error
            if error is PipelineError {
                failure = error
            } else {
                let frames = inputs.count == 1 ? "" : " (batch of \(inputs.count) frames)"
                failure = PipelineError.stageFailed(stage: "explain", frame: first, reason: "\(error)\(frames)")
            }
            throw PartialResult(completed: leadingPackets, failure: failure)
        }
        guard explanations.count == inputs.count else {
            throw PartialResult(completed: leadingPackets, failure: PipelineError.stageFailed(
                stage: "explain", frame: first,
                reason: "the explainer returned \(explanations.count) explanations for \(inputs.count) frames"))
        }
        var next = explanations.makeIterator()
        return items.map { item in
            switch item {
            case .packet(let packet): return .packet(packet)
            case .frame(let frame):
                // Counts were checked above: one explanation per frame, in order.
                let explanation = next.next() ?? FrameExplanation()
                return .frame(ExplainedFrame(frame: frame.frame, explanation: explanation))
            }
        }
    }

    /// Moves items from `input` to `output` through `transform`, in order, `batchSize` frames
    /// at most at a time (taking only what is already waiting beyond the first item).
    private static func relay<Frame: Sendable, Out: Sendable, Packet: Sendable>(
        from input: BoundedChannel<Flow<Frame, Packet>>,
        to output: BoundedChannel<Out>,
        batchSize: Int,
        transform: @Sendable ([Flow<Frame, Packet>]) async throws -> [Out]
    ) async {
        while true {
            let items: [Flow<Frame, Packet>]
            do {
                items = try await input.next(upTo: batchSize, counting: { $0.isFrame })
            } catch {
                // An upstream failure: pass it on behind everything already sent.
                output.finish(throwing: error)
                return
            }
            if items.isEmpty {
                output.finish()
                return
            }
            do {
                let results: [Out]
                do {
                    results = try await transform(items)
                } catch let partial as PartialResult<Out> {
                    for result in partial.completed { try await output.send(result) }
                    throw partial.failure
                }
                for result in results {
                    try await output.send(result)
                }
            } catch is ChannelClosedError {
                input.close()
                return
            } catch {
                // This stage failed: stop the stages before it, report after the stages after it.
                input.close()
                output.finish(throwing: error)
                return
            }
        }
    }

    /// Writes every item in order, then finalises the output whatever ended the stream.
    private static func encodeStage<Sink: PipelineSink>(
        _ encoder: ResourceQueue<Sink>,
        from input: BoundedChannel<Flow<VideoFrame, Sink.Packet>>,
        progress: ProgressReporter?
    ) async throws -> (frames: Int, packets: Int, end: Int64?) {
        var end: Int64?
        var frames = 0
        var packets = 0
        var failure: Error?
        do {
            while let item = try await input.next() {
                switch item {
                case .frame(let frame):
                    try await encoder.run { try $0.encode(frame) }
                    frames += 1
                    end = frame.pts + frame.duration
                    progress?.frameWritten()
                case .packet(let packet):
                    try await encoder.run { try $0.copy(packet) }
                    packets += 1
                }
            }
        } catch {
            failure = error
            input.close()
        }
        do {
            try await encoder.run { try $0.finish() }
        } catch {
            if failure == nil { failure = error }
        }
        progress?.finish()
        if let failure { throw failure }
        return (frames, packets, end)
    }
}

/// A frame or a packet of another stream, as it moves between two stages.
enum Flow<Frame: Sendable, Packet: Sendable>: Sendable {
    case frame(Frame)
    case packet(Packet)

    var isFrame: Bool {
        if case .frame = self { return true }
        return false
    }
}

/// A stage's failure on a batch, with the results of the items before the fault.
struct PartialResult<Out: Sendable>: Error {
    let completed: [Out]
    let failure: Error
}

/// A decoded frame numbered in decode order by the decode stage.
struct NumberedFrame<Frame: Sendable>: Sendable {
    let index: Int
    let frame: Frame
}

/// A frame with its network input, from the preprocess stage.
struct PreparedFrame: Sendable {
    let frame: VideoFrame
    let input: ModelInput
}

/// A frame with its explanation, from the explain stage.
struct ExplainedFrame: Sendable {
    let frame: VideoFrame
    let explanation: FrameExplanation
}

/// A flag set once from one task and read from another.
final class Flag: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var value = false

    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

extension Array where Element: Sendable {
    /// `map` with an asynchronous transform, in order, one element at a time.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        results.reserveCapacity(count)
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
