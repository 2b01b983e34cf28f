import CFFmpeg
import Core
import Foundation

/// Reads and writes single pictures (PNG, JPEG, BMP, TIFF, … as this FFmpeg build knows them).
///
/// Reading decodes the first video frame of any input FFmpeg opens (the image2 demuxer for
/// picture files). Writing picks the codec from the file extension as FFmpeg's image2 muxer
/// does (`.png` → PNG, `.jpg` → MJPEG, `.bmp` → BMP, …), encodes one frame and writes the
/// encoder's output as the file: for these codecs one packet is a whole picture file.
public enum PictureFile {
    /// The first frame of `path` as RGB24. Throws a `MediaError` naming the file.
    public static func read(_ path: String) throws -> RGBImage {
        let decoder = try FrameDecoder(MediaInput(path), settings: DecoderSettings(threads: 1, deliversOtherStreams: false))
        while let item = try decoder.next() {
            if case let .frame(frame) = item {
                let pixels = try PixelConverter(file: path).rgb(frame)
                return RGBImage(width: frame.width, height: frame.height, pixels: pixels)
            }
        }
        throw MediaError(file: path, reason: "holds no picture")
    }

    /// Encodes `picture` into `path`, the format chosen by its extension. Throws a `MediaError` naming the file.
    ///
    /// JPEG is written at quantiser 2 (ffmpeg's `-q:v 2`), full-range BT.601 as JFIF readers expect.
    public static func write(_ picture: RGBImage, to path: String) throws {
        let bytes = try encode(picture, file: path)
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        } catch {
            throw MediaError(file: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }

    /// The bytes of the picture file `write` would write for a name ending in `.fileExtension` (`png`, `jpg`, …),
    /// e.g. to embed a picture in a page. Throws a `MediaError` naming the format.
    public static func encode(_ picture: RGBImage, fileExtension: String) throws -> [UInt8] {
        try encode(picture, file: "picture.\(fileExtension)")
    }

    /// The encoded picture, the codec chosen by the extension of `path` (named in errors).
    private static func encode(_ picture: RGBImage, file path: String) throws -> [UInt8] {
        guard picture.width > 0, picture.height > 0, picture.pixels.count == picture.width * picture.height * 3 else {
            throw MediaError(file: path, reason: "RGB picture of \(picture.pixels.count) bytes is not \(picture.width)x\(picture.height)x3")
        }
        // image2 falls back to MJPEG for an extension it does not list: check the list first.
        let image2 = av_guess_format("image2", path, nil)
        guard let image2, let extensions = image2.pointee.extensions, av_match_ext(path, extensions) != 0 else {
            throw MediaError(file: path, reason: "no picture encoder for this file extension (use .png, .jpg, .bmp, .tiff, …)")
        }
        let codecID = av_guess_codec(image2, nil, path, nil, AVMEDIA_TYPE_VIDEO)
        guard codecID != AV_CODEC_ID_NONE, let encoder = avcodec_find_encoder(codecID) else {
            throw MediaError(file: path, reason: "no picture encoder for this file extension (use .png, .jpg, .bmp, .tiff, …)")
        }
        let format = try pixelFormat(for: encoder, file: path)
        var codec = avcodec_alloc_context3(encoder)
        var frame = av_frame_alloc()
        var packet = av_packet_alloc()
        defer {
            avcodec_free_context(&codec)
            av_frame_free(&frame)
            av_packet_free(&packet)
        }
        guard let codec, let frame, let packet else { throw MediaError(file: path, reason: "cannot allocate an encoder") }
        let jpegRange = [AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUVJ444P].contains(format)
        let color = ColorDescription(space: Int32(AVCOL_SPC_BT470BG.rawValue),
                                     range: Int32((jpegRange ? AVCOL_RANGE_JPEG : AVCOL_RANGE_UNSPECIFIED).rawValue))
        codec.pointee.width = Int32(picture.width)
        codec.pointee.height = Int32(picture.height)
        codec.pointee.pix_fmt = format
        codec.pointee.time_base = AVRational(num: 1, den: 25)
        codec.pointee.color_range = AVColorRange(rawValue: UInt32(bitPattern: color.range))
        codec.pointee.colorspace = AVCOL_SPC_BT470BG
        codec.pointee.flags |= Int32(AV_CODEC_FLAG_QSCALE)
        codec.pointee.global_quality = 2 * FF_QP2LAMBDA
        let name = String(cString: encoder.pointee.name)
        var code = avcodec_open2(codec, encoder, nil)
        guard code >= 0 else { throw MediaError(file: path, while: "cannot open the \(name) encoder", code: code) }

        frame.pointee.width = codec.pointee.width
        frame.pointee.height = codec.pointee.height
        frame.pointee.format = format.rawValue
        frame.pointee.color_range = codec.pointee.color_range
        frame.pointee.colorspace = codec.pointee.colorspace
        frame.pointee.quality = codec.pointee.global_quality
        code = av_frame_get_buffer(frame, 0)
        guard code >= 0 else { throw MediaError(file: path, while: "cannot allocate a frame", code: code) }
        try PixelConverter(file: path).convert(rgb: picture.pixels, width: picture.width, height: picture.height,
                                               into: frame, color: color, frameIndex: nil)

        var bytes: [UInt8] = []
        code = avcodec_send_frame(codec, frame)
        guard code >= 0 else { throw MediaError(file: path, while: "cannot encode with \(name)", code: code) }
        code = avcodec_send_frame(codec, nil)
        guard code >= 0 else { throw MediaError(file: path, while: "cannot encode with \(name)", code: code) }
        while true {
            code = avcodec_receive_packet(codec, packet)
            if code == FFmpegErrorText.endOfFile { break }
            guard code >= 0 else { throw MediaError(file: path, while: "cannot encode with \(name)", code: code) }
            if let data = packet.pointee.data {
                bytes.append(contentsOf: UnsafeBufferPointer(start: data, count: Int(packet.pointee.size)))
            }
            av_packet_unref(packet)
        }
        guard !bytes.isEmpty else { throw MediaError(file: path, reason: "the \(name) encoder produced nothing") }
        return bytes
    }

    /// RGB24 when the encoder takes it, else the format that loses least from RGB24.
    private static func pixelFormat(for encoder: UnsafePointer<AVCodec>, file: String) throws -> AVPixelFormat {
        guard let supported = encoder.pointee.pix_fmts else { return AV_PIX_FMT_RGB24 }
        var list: [AVPixelFormat] = []
        var cursor = supported
        while cursor.pointee != AV_PIX_FMT_NONE {
            list.append(cursor.pointee)
            cursor += 1
        }
        if list.contains(AV_PIX_FMT_RGB24) { return AV_PIX_FMT_RGB24 }
        list.append(AV_PIX_FMT_NONE)
        let best = avcodec_find_best_pix_fmt_of_list(list, AV_PIX_FMT_RGB24, 0, nil)
        guard best != AV_PIX_FMT_NONE else {
            throw MediaError(file: file, reason: "\(String(cString: encoder.pointee.name)) cannot encode RGB pictures")
        }
        return best
    }
}
