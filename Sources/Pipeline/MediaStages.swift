import Media
import Core

/// The decode stage reads with Media's decoder: frames and the other streams' packets, in file order.
public struct DecoderSource: PipelineSource, Sendable {
    /// The decoder read from.
    public let decoder: FrameDecoder

    /// A source reading `decoder`.
    public init(_ decoder: FrameDecoder) {
        self.decoder = decoder
    }

    /// The next frame or packet, or nil at the end of the input (or span).
    public func next() throws -> SourceItem<DecodedFrame, StreamPacket>? {
        switch try decoder.next() {
        case .frame(let frame): return .frame(frame)
        case .packet(let packet): return .packet(packet)
        case nil: return nil
        }
    }
}

/// The preprocess stage converts each decoded picture to full-size RGB with swscale.
extension PixelConverter: PipelineFrameConverter {
    /// `frame` as an RGB picture at its own size, keeping its pts and duration.
    public func convert(_ frame: DecodedFrame, index: Int) throws -> VideoFrame {
        let pixels = try rgb(frame)
        return VideoFrame(index: index, pts: frame.pts, duration: frame.duration,
                          image: RGBImage(width: frame.width, height: frame.height, pixels: pixels))
    }
}

/// The encode stage encodes RGB frames and copies the other streams' packets with Media's encoder.
extension FrameEncoder: PipelineSink {
    /// Encodes `frame` at its own pts and duration.
    public func encode(_ frame: VideoFrame) throws {
        let image = frame.image
        try encode(rgb: image.pixels, width: image.width, height: image.height,
                   timing: FrameTiming(index: frame.index, pts: frame.pts, duration: frame.duration))
    }

    /// Copies a packet of an audio or subtitle stream.
    public func copy(_ packet: StreamPacket) throws {
        try write(packet)
    }
}
