import CFFmpeg
import Core

/// One decoded video frame: its timing, its size and format, and FFmpeg's picture.
///
/// Ownership: a frame belongs to one task at a time (the decoder hands it on through a
/// channel and never touches it again); it is not safe to use from two tasks at once.
public final class DecodedFrame: @unchecked Sendable {
    /// Index, pts and duration (in the stream time base).
    public internal(set) var timing: FrameTiming
    /// The stream time base of `timing`.
    public let timeBase: Rational
    /// FFmpeg's picture; freed with the frame.
    let frame: UnsafeMutablePointer<AVFrame>

    init(frame: UnsafeMutablePointer<AVFrame>, timing: FrameTiming, timeBase: Rational) {
        self.frame = frame
        self.timing = timing
        self.timeBase = timeBase
    }

    deinit { frame.free() }

    /// 0-based position among the frames the decoder returned.
    public var index: Int { timing.index }
    /// Presentation time in the stream time base.
    public var pts: Int64 { timing.pts }
    /// Display duration in the stream time base.
    public var duration: Int64 { timing.duration }
    /// Presentation time in seconds.
    public var seconds: Double { timeBase.seconds(timing.pts) }
    /// Width in pixels.
    public var width: Int { Int(frame.pointee.width) }
    /// Height in pixels.
    public var height: Int { Int(frame.pointee.height) }
    /// The decoded pixel format.
    public var pixelFormat: PixelFormat { PixelFormat(rawValue: frame.pointee.format) }
    /// The picture type: `I`, `P`, `B` (or `?`).
    public var pictureType: Character {
        Character(Unicode.Scalar(UInt8(bitPattern: av_get_picture_type_char(frame.pointee.pict_type))))
    }
    /// Whether the decoder reported damage it concealed (a corrupt packet in this or a reference
    /// frame); FFmpeg does not flag every concealed frame, so false is no guarantee.
    public var isDamaged: Bool {
        frame.pointee.decode_error_flags != 0 || (frame.pointee.flags & AV_FRAME_FLAG_CORRUPT) != 0
    }
    /// The frame's colour encoding.
    public var color: ColorDescription {
        ColorDescription(
            space: Int32(frame.pointee.colorspace.rawValue), range: Int32(frame.pointee.color_range.rawValue),
            primaries: Int32(frame.pointee.color_primaries.rawValue), transfer: Int32(frame.pointee.color_trc.rawValue)
        )
    }
}

/// One packet of a non-video stream (audio, subtitles), as read from the input, for copying.
///
/// Ownership: one task at a time, like `DecodedFrame`.
public final class StreamPacket: @unchecked Sendable {
    /// The input stream the packet belongs to (`CopiedStream.index`).
    public let streamIndex: Int
    /// The unit of `pts`, `dts` and `duration`.
    public let timeBase: Rational
    let packet: UnsafeMutablePointer<AVPacket>

    init(packet: UnsafeMutablePointer<AVPacket>, streamIndex: Int, timeBase: Rational) {
        self.packet = packet
        self.streamIndex = streamIndex
        self.timeBase = timeBase
    }

    deinit { packet.free() }

    /// Presentation time in `timeBase`, when known.
    public var pts: Int64? { packet.pointee.pts == camvid_nopts_value() ? nil : packet.pointee.pts }
    /// Decoding time in `timeBase`, when known.
    public var dts: Int64? { packet.pointee.dts == camvid_nopts_value() ? nil : packet.pointee.dts }
    /// Duration in `timeBase` (0 when unknown).
    public var duration: Int64 { packet.pointee.duration }
    /// Whether the packet starts a picture that decodes on its own (an IDR picture in H.264).
    public var isKeyframe: Bool { packet.pointee.flags & AV_PKT_FLAG_KEY != 0 }
    /// A copy of the packet's payload.
    public var data: [UInt8] {
        guard let bytes = packet.pointee.data, packet.pointee.size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: bytes, count: Int(packet.pointee.size)))
    }
}

/// What the decoder delivers, in input order: video frames and the other streams' packets.
public typealias DecodedItem = MediaItem<DecodedFrame, StreamPacket>
