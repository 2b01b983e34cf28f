import CFFmpeg

/// How the video is encoded.
public struct EncoderSettings: Sendable, Hashable {
    /// Encoders to try, first available wins: H.264 through libx264, else OpenH264, else MPEG-4 part 2.
    public var codecNames: [String]
    /// libx264's constant rate factor (0 lossless … 51 worst; 23 is x264's default).
    public var crf: Int
    /// libx264's preset. `superfast` by default: camvid's output is an annotated visualisation
    /// whose time goes into the network, and the encoder was the largest CPU cost of a
    /// Grad-CAM run at `veryfast` (40%). On the 720p sample at CRF 23 (the quality, kept),
    /// superfast takes 43% less encoder CPU for SSIM 0.9856 instead of 0.9871 and a 20% larger
    /// file (ultrafast halves the time again but loses visibly: SSIM 0.971, twice the size).
    public var preset: String
    /// The encoder's pixel format; nil chooses (see `FrameEncoder`).
    public var pixelFormat: PixelFormat?
    /// Encoder threads; 0 lets the encoder choose.
    public var threads: Int
    /// Fragmented MP4 (moof per keyframe): nil makes it only when the output cannot seek (a pipe).
    public var fragmentedMP4: Bool?

    /// Settings; the defaults are H.264 at CRF 23, preset superfast.
    public init(
        codecNames: [String] = ["libx264", "libopenh264", "mpeg4"], crf: Int = 23, preset: String = "superfast",
        pixelFormat: PixelFormat? = nil, threads: Int = 0, fragmentedMP4: Bool? = nil
    ) {
        self.codecNames = codecNames
        self.crf = crf
        self.preset = preset
        self.pixelFormat = pixelFormat
        self.threads = max(0, threads)
        self.fragmentedMP4 = fragmentedMP4
    }
}

/// Encodes RGB frames to H.264 and muxes them with the copied audio and subtitle packets.
///
/// Timing: the encoder's time base is the source video stream's, every frame keeps its pts
/// (minus `SourceDescription.timeOrigin`) and its duration becomes the packet duration
/// (libx264 leaves it 0, and the MP4 muxer would then lose the last frame's length);
/// `av_packet_rescale_ts` moves packets to the muxer's time base. The output therefore has
/// exactly the frames given, with the same pts sequence: exact in MP4 (its edit list absorbs
/// the B-frame delay), rounded to the millisecond in Matroska (1 ms time base). NUT,
/// fragmented MP4 and MPEG-TS cannot store the negative decoding times B-frames need, so
/// their muxers shift every stream alike by the encoder's reorder delay (2-3 frames; MPEG-TS
/// adds its own start offset): intervals and audio/video sync are unchanged.
///
/// Pixel format: 4:2:0 (`yuv420p`, what every player decodes) when the width and height are
/// even and the source is not 4:4:4; `yuv444p` for odd sizes (4:2:0 cannot represent them,
/// and we keep the input's resolution rather than crop or pad) and for 4:4:4 sources.
/// Output is 8-bit: frames pass through 8-bit RGB.
///
/// The container, the copied streams and the display matrix are the `Muxer`'s: copied streams
/// keep their codec parameters, metadata and timestamps (rescaled); one the container cannot
/// hold (e.g. SubRip subtitles in MP4) is left out and listed in `droppedStreams`.
///
/// Finishing: `finish()` flushes the encoder and writes the trailer; call it after a failure
/// too, and the file is playable with every frame encoded before the fault. MP4 files are
/// written unfragmented (one index at the end: every player and editor seeks in them), so a
/// hard kill before `finish()` leaves an unplayable MP4; a pipe gets fragmented MP4, and
/// Matroska, NUT and MPEG-TS survive a kill up to the last written packet. Set
/// `EncoderSettings.fragmentedMP4` to make a crash-tolerant MP4 file.
///
/// Ownership: one task (actor) owns an encoder; it is not safe to use from two tasks at once.
public final class FrameEncoder: @unchecked Sendable {
    /// The output being written.
    public var output: MediaOutput { muxer.output }
    /// The encoder in use (`libx264`, …).
    public let codecName: String
    /// The pixel format the video is encoded in.
    public let pixelFormat: PixelFormat
    /// The container format's name.
    public var containerName: String { muxer.containerName }
    /// Input indices of copied streams the container cannot hold (left out).
    public var droppedStreams: [Int] { muxer.droppedStreams }
    /// Frames given to `encode` so far.
    public private(set) var encodedFrameCount = 0
    /// Where the last frame given to `encode` ends: its pts plus its duration, in the source's time base.
    public private(set) var lastFrameEnd: Int64?

    private let source: SourceDescription
    private let muxer: Muxer
    private let codecContext: UnsafeMutablePointer<AVCodecContext>
    private let frame: UnsafeMutablePointer<AVFrame>
    private let packet: UnsafeMutablePointer<AVPacket>
    private let converter: PixelConverter
    private let videoShift: Int64
    private var pending: [Int64: FrameTiming] = [:]
    private var lastPts: Int64?
    private var finished = false
    private var failed = false

    /// Opens the output, the video encoder and the muxer, and writes the header.
    ///
    /// Throws a `MediaError` naming the output when the container cannot be chosen or does
    /// not exist, no encoder is available, or the file cannot be created.
    public init(output: MediaOutput, source: SourceDescription, settings: EncoderSettings = EncoderSettings()) throws {
        self.source = source
        let name = output.location
        let video = source.video
        guard video.width > 0, video.height > 0 else {
            throw MediaError(file: name, reason: "cannot encode a \(video.width)x\(video.height) video")
        }
        var timeBase = video.timeBase
        if !timeBase.isValid { timeBase = video.averageFrameRate.isValid ? video.averageFrameRate.inverse : Rational(1, 1000) }

        let muxer = try Muxer(output: output)
        var codecToFree: UnsafeMutablePointer<AVCodecContext>?
        var frameToFree: UnsafeMutablePointer<AVFrame>?
        var packetToFree: UnsafeMutablePointer<AVPacket>?
        var succeeded = false
        defer {
            if !succeeded {
                av_frame_free(&frameToFree)
                av_packet_free(&packetToFree)
                avcodec_free_context(&codecToFree)
            }
        }

        // The first encoder this FFmpeg build has.
        guard let (encoder, encoderName) = settings.codecNames.lazy
            .compactMap({ codecName in avcodec_find_encoder_by_name(codecName).map { ($0, codecName) } }).first
        else {
            throw MediaError(file: name, reason: "none of the encoders \(settings.codecNames.joined(separator: ", ")) is available")
        }
        codecName = encoderName
        guard let codec = avcodec_alloc_context3(encoder) else {
            throw MediaError(file: name, reason: "cannot allocate the \(encoderName) encoder")
        }
        codecToFree = codec

        let odd = video.width % 2 == 1 || video.height % 2 == 1
        var wanted = settings.pixelFormat
            ?? (odd || video.pixelFormat.hasFullResolutionChroma && video.pixelFormat != .rgb24 ? .yuv444p : .yuv420p)
        if let supported = encoder.pointee.pix_fmts {
            var list: [AVPixelFormat] = []
            var cursor = supported
            while cursor.pointee != AV_PIX_FMT_NONE {
                list.append(cursor.pointee)
                cursor += 1
            }
            if !list.contains(wanted.av) {
                list.append(AV_PIX_FMT_NONE)
                let best = avcodec_find_best_pix_fmt_of_list(list, wanted.av, 0, nil)
                guard best != AV_PIX_FMT_NONE else {
                    throw MediaError(file: name, reason: "\(encoderName) cannot encode \(wanted)")
                }
                wanted = PixelFormat(rawValue: best.rawValue)
            }
        }
        pixelFormat = wanted

        let color = Self.outputColor(video)
        codec.pointee.width = Int32(video.width)
        codec.pointee.height = Int32(video.height)
        codec.pointee.pix_fmt = wanted.av
        codec.pointee.time_base = timeBase.av
        if video.averageFrameRate.isValid { codec.pointee.framerate = video.averageFrameRate.av }
        if video.sampleAspectRatio.isValid { codec.pointee.sample_aspect_ratio = video.sampleAspectRatio.av }
        codec.pointee.colorspace = AVColorSpace(rawValue: UInt32(bitPattern: color.space))
        codec.pointee.color_range = AVColorRange(rawValue: UInt32(bitPattern: color.range))
        codec.pointee.color_primaries = AVColorPrimaries(rawValue: UInt32(bitPattern: color.primaries))
        codec.pointee.color_trc = AVColorTransferCharacteristic(rawValue: UInt32(bitPattern: color.transfer))
        codec.pointee.thread_count = Int32(settings.threads)
        if muxer.needsGlobalHeader {
            codec.pointee.flags |= Int32(AV_CODEC_FLAG_GLOBAL_HEADER)
        }
        var codecOptions: OpaquePointer?
        defer { av_dict_free(&codecOptions) }
        if encoderName == "libx264" {
            av_dict_set(&codecOptions, "preset", settings.preset, 0)
            av_dict_set(&codecOptions, "crf", String(settings.crf), 0)
        } else {
            // Other encoders: a fixed quantiser of about the same visual quality.
            codec.pointee.flags |= Int32(AV_CODEC_FLAG_QSCALE)
            codec.pointee.global_quality = 3 * FF_QP2LAMBDA
            codec.pointee.gop_size = 50
        }
        var code = avcodec_open2(codec, encoder, &codecOptions)
        guard code >= 0 else { throw MediaError(file: name, while: "cannot open the \(encoderName) encoder", code: code) }

        _ = try muxer.addVideoStream(encoder: codec, displayMatrix: source.video.displayMatrix)
        try muxer.addCopiedStreams(source)
        videoShift = muxer.shift(timeBase, origin: source.timeOrigin)
        try muxer.writeHeader(fragmentedMP4: settings.fragmentedMP4)

        guard let frame = av_frame_alloc(), let packet = av_packet_alloc() else {
            throw MediaError(file: name, reason: "cannot allocate a frame")
        }
        frameToFree = frame
        packetToFree = packet
        frame.pointee.width = Int32(video.width)
        frame.pointee.height = Int32(video.height)
        frame.pointee.format = wanted.rawValue
        frame.pointee.colorspace = codec.pointee.colorspace
        frame.pointee.color_range = codec.pointee.color_range
        code = av_frame_get_buffer(frame, 0)
        guard code >= 0 else { throw MediaError(file: name, while: "cannot allocate a frame", code: code) }

        self.muxer = muxer
        self.codecContext = codec
        self.frame = frame
        self.packet = packet
        self.converter = PixelConverter(file: name)
        succeeded = true
    }

    deinit {
        if !finished { try? finish() }
        frame.free()
        packet.free()
        codecContext.free()
    }

    /// The colour tags written: the source's, else what `PixelConverter` assumed for it.
    private static func outputColor(_ video: VideoStreamInfo) -> ColorDescription {
        var color = video.color
        let hd = video.width >= 1280 || video.height > 576
        let unspecified = Int32(AVCOL_SPC_UNSPECIFIED.rawValue)
        if color.space == unspecified || color.space == Int32(AVCOL_SPC_RGB.rawValue) {
            color.space = Int32((hd ? AVCOL_SPC_BT709 : AVCOL_SPC_SMPTE170M).rawValue)
        }
        if color.range == Int32(AVCOL_RANGE_UNSPECIFIED.rawValue) { color.range = Int32(AVCOL_RANGE_MPEG.rawValue) }
        return color
    }

    /// Encodes one packed RGB24 picture (`width * height * 3` bytes) at `timing`.
    ///
    /// A picture of another size than the video is scaled to it. `timing.pts` must increase
    /// from frame to frame; its duration becomes the packet's.
    public func encode(rgb pixels: [UInt8], width: Int, height: Int, timing: FrameTiming) throws {
        guard !finished else { throw MediaError(file: output.location, frame: timing.index, reason: "the output is already finished") }
        if let lastPts, timing.pts <= lastPts {
            throw MediaError(file: output.location, frame: timing.index, reason: "pts \(timing.pts) is not after the previous frame's \(lastPts)")
        }
        var code = av_frame_make_writable(frame)
        guard code >= 0 else { throw MediaError(file: output.location, frame: timing.index, while: "cannot prepare a frame", code: code) }
        try converter.convert(
            rgb: pixels, width: width, height: height, into: frame, color: Self.outputColor(source.video),
            frameIndex: timing.index
        )
        let pts = timing.pts - videoShift
        frame.pointee.pts = pts
        frame.pointee.pict_type = AV_PICTURE_TYPE_NONE
        pending[pts] = timing
        lastPts = timing.pts
        code = avcodec_send_frame(codecContext, frame)
        guard code >= 0 else {
            failed = true
            throw MediaError(file: output.location, frame: timing.index, while: "cannot encode", code: code)
        }
        encodedFrameCount += 1
        lastFrameEnd = timing.pts + timing.duration
        try drainEncoder()
    }

    /// Writes a packet of a copied stream (rescaled to the output stream's time base).
    public func write(_ input: StreamPacket) throws {
        try muxer.write(input)
    }

    /// Flushes the encoder, writes the trailer and closes the output; call it once, also after a failure.
    ///
    /// The output then holds every frame encoded so far. Later calls do nothing.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        var firstError: Error?
        if !failed {
            let code = avcodec_send_frame(codecContext, nil)
            if code >= 0 {
                do { try drainEncoder() } catch { firstError = error }
            } else {
                firstError = MediaError(file: output.location, while: "cannot flush the encoder", code: code)
            }
        }
        do { try muxer.finish() } catch { firstError = firstError ?? error }
        if let firstError { throw firstError }
    }

    /// Writes every packet the encoder has ready, with its frame's duration.
    private func drainEncoder() throws {
        while true {
            let code = avcodec_receive_packet(codecContext, packet)
            if code == FFmpegErrorText.tryAgain || code == FFmpegErrorText.endOfFile { return }
            guard code >= 0 else {
                failed = true
                throw MediaError(file: output.location, frame: encodedFrameCount - 1, while: "cannot encode", code: code)
            }
            let timing = pending.removeValue(forKey: packet.pointee.pts)
            if packet.pointee.duration <= 0, let timing { packet.pointee.duration = timing.duration }
            do {
                try muxer.writeEncoded(packet, from: Rational(codecContext.pointee.time_base), frame: timing?.index)
            } catch {
                failed = true
                throw error
            }
        }
    }
}
