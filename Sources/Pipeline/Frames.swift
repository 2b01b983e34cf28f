import Core

/// A decoded picture in RGB with the identity it keeps from decoder to encoder.
public struct VideoFrame: Sendable {
    /// The frame's position in decode order, counted from 0 (gaps mark frames dropped live).
    public var index: Int
    /// Presentation timestamp in the input stream's time base (strictly increasing).
    public var pts: Int64
    /// Duration in the input stream's time base (0 when unknown).
    public var duration: Int64
    /// The picture.
    public var image: RGBImage

    /// A frame at `index` with its timing and picture.
    public init(index: Int, pts: Int64, duration: Int64, image: RGBImage) {
        self.index = index
        self.pts = pts
        self.duration = duration
        self.image = image
    }
}

/// What the decode stage reads, in file order: a picture of the video stream, or a packet of
/// another stream (audio, subtitles) that is copied to the output as it is.
public enum SourceItem<Frame: Sendable, Packet: Sendable>: Sendable {
    /// A decoded picture, in the decoder's own representation.
    case frame(Frame)
    /// A packet of another stream, passed through in order.
    case packet(Packet)
}

/// The decode stage's resource: reads the input in order, one item at a time.
///
/// Called only from the decode stage's own thread, so it may block (files, pipes, devices).
public protocol PipelineSource: SendableMetatype {
    /// A decoded picture in the decoder's representation.
    associatedtype Frame: Sendable
    /// A packet of another stream copied through.
    associatedtype Packet: Sendable
    /// The next item, or `nil` at the end of the input.
    mutating func next() throws -> SourceItem<Frame, Packet>?
}

/// The preprocess stage's resource: turns a decoded picture into RGB (e.g. a swscale context).
public protocol PipelineFrameConverter: SendableMetatype {
    /// A decoded picture in the decoder's representation.
    associatedtype Frame: Sendable
    /// The picture at `index` (decode order) as an RGB frame carrying its timing.
    mutating func convert(_ frame: Frame, index: Int) throws -> VideoFrame
}

/// The encode stage's resource: writes frames and copied packets, then finalises the container.
///
/// Called only from the encode stage's own thread, so it may block.
public protocol PipelineSink: SendableMetatype {
    /// A packet of another stream copied through.
    associatedtype Packet: Sendable
    /// Encodes one frame (frames arrive in decode order).
    mutating func encode(_ frame: VideoFrame) throws
    /// Copies one packet of another stream (in its order relative to the frames).
    mutating func copy(_ packet: Packet) throws
    /// Flushes the encoder and writes the container's trailer, so the output plays.
    mutating func finish() throws
}
