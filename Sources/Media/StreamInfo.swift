import CFFmpeg

/// The 3x3 display matrix FFmpeg attaches to a rotated video stream (phone footage).
///
/// Frames are stored unrotated; the matrix tells a player how to turn them. camvid keeps
/// the frames as stored (so the network sees what the file holds) and copies the matrix to
/// the output stream, so the output is shown turned exactly like the input.
public struct DisplayMatrix: Sendable, Hashable {
    /// The nine 16.16/2.30 fixed-point entries, in FFmpeg's row-major order.
    public var entries: [Int32]

    /// A matrix from FFmpeg's nine entries; nil unless there are exactly nine.
    public init?(entries: [Int32]) {
        guard entries.count == 9 else { return nil }
        self.entries = entries
    }

    /// The matrix that turns a picture clockwise by `degrees` for display.
    public init(rotationDegrees degrees: Double) {
        var entries = [Int32](repeating: 0, count: 9)
        entries.withUnsafeMutableBufferPointer { buffer in
            // av_display_rotation_get reads back the negated angle, which `rotationDegrees` negates again.
            av_display_rotation_set(buffer.baseAddress, degrees)
        }
        self.entries = entries
    }

    /// The clockwise rotation, in degrees in [0, 360), a player applies for display (ffmpeg's convention).
    public var rotationDegrees: Double {
        let counterclockwise = entries.withUnsafeBufferPointer { av_display_rotation_get($0.baseAddress) }
        guard counterclockwise.isFinite else { return 0 }
        var degrees = (-counterclockwise).rounded()
        degrees = degrees.truncatingRemainder(dividingBy: 360)
        if degrees < 0 { degrees += 360 }
        return degrees == 360 ? 0 : degrees
    }
}

/// The colour encoding of a YUV stream, kept so RGB conversion and re-encoding use the same matrix.
public struct ColorDescription: Sendable, Hashable {
    /// FFmpeg's `AVColorSpace` value (matrix coefficients); 2 is unspecified.
    public var space: Int32
    /// FFmpeg's `AVColorRange` value: 1 limited (MPEG), 2 full (JPEG), 0 unspecified.
    public var range: Int32
    /// FFmpeg's `AVColorPrimaries` value; 2 is unspecified.
    public var primaries: Int32
    /// FFmpeg's `AVColorTransferCharacteristic` value; 2 is unspecified.
    public var transfer: Int32

    /// A description from FFmpeg's enum values.
    public init(space: Int32 = 2, range: Int32 = 0, primaries: Int32 = 2, transfer: Int32 = 2) {
        self.space = space
        self.range = range
        self.primaries = primaries
        self.transfer = transfer
    }

    /// Nothing specified: BT.601 for standard definition and BT.709 for HD are assumed, limited range.
    public static let unspecified = ColorDescription()

    /// BT.709, limited range: HD video.
    public static let bt709 = ColorDescription(space: 1, range: 1, primaries: 1, transfer: 1)
}

/// The decoded video stream: what the encoder needs to reproduce it, and what a user wants to know.
public struct VideoStreamInfo: Sendable, Hashable {
    /// Width of the stored pictures, in pixels.
    public var width: Int
    /// Height of the stored pictures, in pixels.
    public var height: Int
    /// The unit of every pts and duration of this stream.
    public var timeBase: Rational
    /// The average frame rate (0/1 when unknown).
    public var averageFrameRate: Rational
    /// Length in seconds, when the container says.
    public var duration: Double?
    /// The number of frames, exact when the container counts them, else estimated from duration and rate.
    public var frameCountEstimate: Int?
    /// Whether the input is a capture device (a camera, a virtual `lavfi` source): it has no end to seek to.
    public var isLive: Bool
    /// The decoder's name (`h264`, `hevc`, …).
    public var codecName: String
    /// The decoded pixel format (`yuv420p`, `yuv420p10le`, `yuv444p`, …).
    public var pixelFormat: PixelFormat
    /// The rotation a player applies, when the stream has one.
    public var displayMatrix: DisplayMatrix?
    /// The colour encoding.
    public var color: ColorDescription
    /// The shape of one pixel (0/1 or 1/1 for square pixels).
    public var sampleAspectRatio: Rational

    /// A description; the decoder fills all of it, and tests or generators give just what they need.
    public init(
        width: Int, height: Int, timeBase: Rational, averageFrameRate: Rational = Rational(0, 1),
        duration: Double? = nil, frameCountEstimate: Int? = nil, isLive: Bool = false,
        codecName: String = "rawvideo", pixelFormat: PixelFormat = .rgb24,
        displayMatrix: DisplayMatrix? = nil, color: ColorDescription = .unspecified,
        sampleAspectRatio: Rational = Rational(0, 1)
    ) {
        self.width = width
        self.height = height
        self.timeBase = timeBase
        self.averageFrameRate = averageFrameRate
        self.duration = duration
        self.frameCountEstimate = frameCountEstimate
        self.isLive = isLive
        self.codecName = codecName
        self.pixelFormat = pixelFormat
        self.displayMatrix = displayMatrix
        self.color = color
        self.sampleAspectRatio = sampleAspectRatio
    }

    /// The clockwise display rotation in degrees (0 without a display matrix).
    public var rotationDegrees: Double { displayMatrix?.rotationDegrees ?? 0 }
}

/// A pixel format by FFmpeg's `AVPixelFormat` value.
public struct PixelFormat: Sendable, Hashable, CustomStringConvertible {
    /// FFmpeg's `AVPixelFormat` value.
    public let rawValue: Int32

    /// A format by FFmpeg's value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// A format by FFmpeg's name (`yuv420p`, `yuv444p`, `yuv420p10le`); nil for an unknown name.
    public init?(name: String) {
        let value = av_get_pix_fmt(name)
        guard value != AV_PIX_FMT_NONE else { return nil }
        self.rawValue = value.rawValue
    }

    var av: AVPixelFormat { AVPixelFormat(rawValue: rawValue) }

    /// FFmpeg's name for the format.
    public var name: String { av_get_pix_fmt_name(av).map { String(cString: $0) } ?? "none" }

    /// The name.
    public var description: String { name }

    /// Bits per colour component (8 for `yuv420p`, 10 for `yuv420p10le`).
    public var bitDepth: Int {
        guard let descriptor = av_pix_fmt_desc_get(av) else { return 0 }
        return Int(descriptor.pointee.comp.0.depth)
    }

    /// Whether chroma is stored at full resolution (4:4:4, or RGB).
    public var hasFullResolutionChroma: Bool {
        guard let descriptor = av_pix_fmt_desc_get(av) else { return false }
        return descriptor.pointee.log2_chroma_w == 0 && descriptor.pointee.log2_chroma_h == 0
    }

    /// Packed 8-bit RGB, the format the network and the renderer use.
    public static let rgb24 = PixelFormat(rawValue: AV_PIX_FMT_RGB24.rawValue)
    /// 8-bit 4:2:0 YUV, the most widely playable H.264 format (needs even width and height).
    public static let yuv420p = PixelFormat(rawValue: AV_PIX_FMT_YUV420P.rawValue)
    /// 8-bit 4:4:4 YUV: any width and height, full colour resolution.
    public static let yuv444p = PixelFormat(rawValue: AV_PIX_FMT_YUV444P.rawValue)
}

/// A non-video stream (audio, subtitles) that the encoder copies packet for packet.
///
/// Holds its own copy of FFmpeg's codec parameters and never changes after creation, so it
/// can be shared freely between tasks.
public final class CopiedStream: @unchecked Sendable {
    /// The stream's index in the input.
    public let index: Int
    /// `audio`, `subtitle`, … (FFmpeg's media type name).
    public let mediaType: String
    /// The codec's name (`aac`, `opus`, `subrip`, …).
    public let codecName: String
    /// The unit of the stream's packet timestamps.
    public let timeBase: Rational
    let parameters: UnsafeMutablePointer<AVCodecParameters>
    let metadata: OpaquePointer?
    let disposition: Int32

    init?(stream: UnsafeMutablePointer<AVStream>) {
        guard let copy = avcodec_parameters_alloc() else { return nil }
        guard avcodec_parameters_copy(copy, stream.pointee.codecpar) >= 0 else {
            var pointer: UnsafeMutablePointer<AVCodecParameters>? = copy
            avcodec_parameters_free(&pointer)
            return nil
        }
        parameters = copy
        index = Int(stream.pointee.index)
        mediaType = av_get_media_type_string(copy.pointee.codec_type).map { String(cString: $0) } ?? "unknown"
        codecName = String(cString: avcodec_get_name(copy.pointee.codec_id))
        timeBase = Rational(stream.pointee.time_base)
        var metadata: OpaquePointer?
        av_dict_copy(&metadata, stream.pointee.metadata, 0)
        self.metadata = metadata
        disposition = stream.pointee.disposition
    }

    deinit {
        var metadata = metadata
        av_dict_free(&metadata)
        var pointer: UnsafeMutablePointer<AVCodecParameters>? = parameters
        avcodec_parameters_free(&pointer)
    }

    /// The codec's out-of-band configuration (H.264's SPS and PPS in MP4): streams join without
    /// re-encoding only when theirs are equal.
    public var configuration: [UInt8] {
        guard let data = parameters.pointee.extradata, parameters.pointee.extradata_size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: Int(parameters.pointee.extradata_size)))
    }

    /// Width and height in pixels (0 for streams without pictures).
    public var size: (width: Int, height: Int) { (Int(parameters.pointee.width), Int(parameters.pointee.height)) }
}

/// Everything the encoder needs to know about the source: the video stream, the streams to
/// copy, and where output time starts.
public struct SourceDescription: Sendable {
    /// The decoded video stream.
    public var video: VideoStreamInfo
    /// The audio and subtitle streams to copy, in input order.
    public var copiedStreams: [CopiedStream]
    /// Seconds on the input's timeline subtracted from every output timestamp: where the span
    /// starts when one was given (so a cut starts at 0 like `ffmpeg -ss`), else 0 (timestamps
    /// are kept exactly).
    public var timeOrigin: Double

    /// A description of a source.
    public init(video: VideoStreamInfo, copiedStreams: [CopiedStream] = [], timeOrigin: Double = 0) {
        self.video = video
        self.copiedStreams = copiedStreams
        self.timeOrigin = timeOrigin
    }
}
