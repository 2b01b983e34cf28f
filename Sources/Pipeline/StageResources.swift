import Core

/// What every stage knows of a frame: its place in decode order (for errors naming it).
public protocol PipelineFrame: Sendable {
    /// The frame's position in decode order, counted from 0 (gaps mark frames dropped live).
    var index: Int { get }
}

/// The decode stage's resource: reads the input in order, one item at a time.
///
/// Called only on the decode stage's own thread, so it may block (files, pipes, devices).
public protocol PipelineSource: SendableMetatype {
    /// A decoded picture in the decoder's representation.
    associatedtype Decoded: Sendable
    /// A packet of another stream copied through.
    associatedtype Packet: Sendable
    /// The next item, or `nil` at the end of the input (or once the run's stop signal is raised).
    mutating func next() throws -> MediaItem<Decoded, Packet>?
}

/// The convert stage's resource: turns a decoded picture into the frame the later stages work
/// on (e.g. RGB at full size, and the network's input).
public protocol PipelineConverter: SendableMetatype {
    /// A decoded picture in the decoder's representation.
    associatedtype Decoded: Sendable
    /// The frame the later stages work on.
    associatedtype Frame: PipelineFrame
    /// The picture at `index` (decode order) as a frame.
    mutating func convert(_ decoded: Decoded, index: Int) throws -> Frame
}

/// The explain stage's resource: a network and a method, explaining frames in batches.
public protocol PipelineExplainer: SendableMetatype {
    /// The frame explained.
    associatedtype Frame: PipelineFrame
    /// Explains `frames` (1…batchSize of them, in decode order) in place.
    mutating func explain(_ frames: inout [Frame]) throws
    /// Completes whatever the explainer writes beside the video; called once when the stage
    /// ends, also after a failure, so that what was written is usable.
    mutating func finish() throws
}

/// The blend stage's resource: draws each frame's explanation onto its picture.
public protocol PipelineOverlay: SendableMetatype {
    /// The frame drawn on.
    associatedtype Frame: PipelineFrame
    /// Draws onto `frame` in place.
    mutating func draw(_ frame: inout Frame) throws
}

/// The encode stage's resource: writes frames and copied packets, then finalises the output.
///
/// Called only on the encode stage's own thread, so it may block.
public protocol PipelineSink: SendableMetatype {
    /// The frame written.
    associatedtype Frame: PipelineFrame
    /// A packet of another stream copied through.
    associatedtype Packet: Sendable
    /// Encodes one frame (frames arrive in decode order).
    mutating func encode(_ frame: Frame) throws
    /// Copies one packet of another stream (in its order relative to the frames).
    mutating func copy(_ packet: Packet) throws
    /// Flushes the encoder and writes the container's trailer, so the output plays.
    mutating func finish() throws
}
