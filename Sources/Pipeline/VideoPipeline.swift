import Core

/// What a pipeline run did.
public struct PipelineSummary: Sendable, Equatable {
    /// Frames encoded into the output.
    public var framesWritten: Int
    /// Packets of other streams copied into the output.
    public var packetsWritten: Int
    /// Frames discarded to keep up with a live source (`realtime` only).
    public var framesDropped: Int
    /// Whether reading stopped before the end of the input because the stop signal was raised.
    public var stoppedEarly: Bool
}

/// The five stages, decode → convert → explain → blend → encode, each an actor owning its
/// resource on a thread of its own, joined by bounded channels so that memory stays flat for
/// any input length.
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
    ///   - converter: turns decoded pictures into frames, used only by the convert stage.
    ///   - explainer: the network and method, used only by the explain stage; finished at the end.
    ///   - overlay: draws explanations onto frames in the blend stage.
    ///   - sink: the encoder and muxer, used only by the encode stage; always finalised.
    ///   - configuration: channel capacity, batch size, and whether to drop frames when behind.
    ///   - stop: raised to stop reading early (Ctrl-C); the frames in flight are still written.
    ///   - progress: counts written frames (and draws the progress line).
    /// - Returns: the counts of what was written and dropped.
    /// - Throws: the first failure (decoding, conversion, explanation, blending, encoding,
    ///   finishing the explainer's records), after the output has been finalised with every
    ///   frame completed before it.
    public static func run<Source: PipelineSource, Converter: PipelineConverter, Explainer: PipelineExplainer,
                           Overlay: PipelineOverlay, Sink: PipelineSink>(
        source: sending Source,
        converter: sending Converter,
        explainer: sending Explainer,
        overlay: sending Overlay,
        sink: sending Sink,
        configuration: PipelineConfiguration,
        stop: StopSignal = StopSignal(),
        progress: ProgressReporter? = nil
    ) async throws -> PipelineSummary
    where Converter.Decoded == Source.Decoded, Explainer.Frame == Converter.Frame, Overlay.Frame == Converter.Frame,
          Sink.Frame == Converter.Frame, Sink.Packet == Source.Packet {
        typealias Frame = Converter.Frame
        typealias Packet = Source.Packet
        let decoder = Stage(source, name: "decode")
        let pixels = Stage(converter, name: "convert")
        let network = Stage(explainer, name: "explain")
        let painter = Stage(overlay, name: "blend")
        let encoder = Stage(sink, name: "encode")
        let capacity = configuration.channelCapacity
        let isFrame: @Sendable (MediaItem<Frame, Packet>) -> Bool = { $0.isFrame }

        // Only the first channel drops: a live source must never wait, and whatever falls
        // behind downstream backs up to here. Packets of other streams are never dropped.
        let decoded = BoundedChannel<MediaItem<NumberedFrame<Source.Decoded>, Packet>>(
            capacity: capacity,
            overflow: configuration.realtime ? .dropOldest(where: { $0.isFrame }) : .suspend)
        let converted = BoundedChannel<MediaItem<Frame, Packet>>(capacity: capacity)
        let explained = BoundedChannel<MediaItem<Frame, Packet>>(capacity: capacity)
        let blended = BoundedChannel<MediaItem<Frame, Packet>>(capacity: capacity)

        return try await withThrowingTaskGroup(of: Void.self, returning: PipelineSummary.self) { group in
            group.addTask { await decoder.read(into: decoded, stop: stop) }
            group.addTask {
                await pixels.relay(from: decoded, to: converted, batchSize: 1, counting: { $0.isFrame }) { converter, items in
                    try items.map { item in
                        switch item {
                        case .packet(let packet): return .packet(packet)
                        case .frame(let numbered):
                            do {
                                return .frame(try converter.convert(numbered.frame, index: numbered.index))
                            } catch let error as PipelineError {
                                throw error
                            } catch {
                                throw Self.failure(error, stage: "convert", frame: numbered.index)
                            }
                        }
                    }
                }
            }
            group.addTask {
                // Finishing the explainer completes its records: a failure there fails the run, after the video is finalised.
                await network.relay(from: converted, to: explained, batchSize: configuration.batchSize, counting: isFrame,
                                    ending: { explainer in
                                        do { try explainer.finish() } catch { throw Self.failure(error, stage: "explain", frame: nil) }
                                    }) { explainer, items in
                    try Self.explain(items, with: &explainer)
                }
            }
            group.addTask {
                await painter.relay(from: explained, to: blended, batchSize: 1, counting: isFrame) { overlay, items in
                    try items.map { item in
                        guard case .frame(var frame) = item else { return item }
                        do {
                            try overlay.draw(&frame)
                        } catch {
                            throw Self.failure(error, stage: "blend", frame: frame.index)
                        }
                        return .frame(frame)
                    }
                }
            }
            let counts = try await encoder.write(from: blended, progress: progress)
            try await group.waitForAll()
            return PipelineSummary(framesWritten: counts.frames, packetsWritten: counts.packets,
                                   framesDropped: decoded.droppedCount, stoppedEarly: stop.isStopped)
        }
    }

    /// Explains the frames among `items` as one batch and puts each back in place.
    private static func explain<Explainer: PipelineExplainer, Packet: Sendable>(
        _ items: [MediaItem<Explainer.Frame, Packet>], with explainer: inout Explainer
    ) throws -> [MediaItem<Explainer.Frame, Packet>] {
        var frames = items.compactMap { item -> Explainer.Frame? in
            if case .frame(let frame) = item { return frame }
            return nil
        }
        // A batch of packets alone has nothing to explain.
        guard let first = frames.first?.index else { return items }
        let count = frames.count
        do {
            try explainer.explain(&frames)
            guard frames.count == count else {
                throw PipelineError.stageFailed(stage: "explain", frame: first,
                                                reason: "the explainer returned \(frames.count) frames for \(count)")
            }
        } catch {
            // Packets read before the batch's first frame are complete whatever the network does.
            let leading = Array(items.prefix { !$0.isFrame })
            let batch = count == 1 ? "" : " (batch of \(count) frames)"
            let failure = error is PipelineError ? error : PipelineError.stageFailed(stage: "explain", frame: first, reason: "\(error)\(batch)")
            throw PartialResult(completed: leading, failure: failure)
        }
        var explained = frames.makeIterator()
        return items.map { item in
            guard item.isFrame, let frame = explained.next() else { return item }
            return .frame(frame)
        }
    }

    /// `error` as a stage's failure naming the frame, unless it already names its file.
    private static func failure(_ error: Error, stage: String, frame: Int?) -> Error {
        error is PipelineError ? error : PipelineError.stageFailed(stage: stage, frame: frame, reason: "\(error)")
    }
}

/// A decoded picture numbered in decode order by the decode stage.
struct NumberedFrame<Frame: Sendable>: Sendable {
    let index: Int
    let frame: Frame
}

extension Stage where Resource: PipelineSource {
    /// Reads until the end of the input or the stop signal; a read error ends the channel with it.
    func read(into output: BoundedChannel<MediaItem<NumberedFrame<Resource.Decoded>, Resource.Packet>>, stop: StopSignal) async {
        var index = 0
        do {
            while !stop.isStopped, let item = try use({ try $0.next() }) {
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
}

extension Stage where Resource: PipelineSink {
    /// Writes every item in order, then finalises the output whatever ended the stream.
    func write(from input: BoundedChannel<MediaItem<Resource.Frame, Resource.Packet>>,
               progress: ProgressReporter?) async throws -> (frames: Int, packets: Int) {
        var frames = 0, packets = 0
        var failure: Error?
        do {
            while let item = try await input.next() {
                switch item {
                case .frame(let frame):
                    try use { try $0.encode(frame) }
                    frames += 1
                    progress?.frameWritten()
                case .packet(let packet):
                    try use { try $0.copy(packet) }
                    packets += 1
                }
            }
        } catch {
            failure = error
            input.close()
        }
        do {
            try use { try $0.finish() }
        } catch {
            if failure == nil { failure = error }
        }
        progress?.finish()
        if let failure { throw failure }
        return (frames, packets)
    }
}
