import CFFmpeg

/// An output container being written: its streams, header, interleaved packets and trailer.
///
/// `FrameEncoder` muxes the video it encodes through one; `camvid concat` copies the already
/// encoded packets of a sharded run's parts, and the source's audio, through another.
///
/// Streams: the video stream first (index 0), then the source's copied streams, which keep
/// their codec parameters, metadata and disposition; one the container cannot hold (e.g.
/// SubRip subtitles in MP4) is left out and listed in `droppedStreams`. Timestamps of copied
/// streams are shifted by the source's `timeOrigin` (rounded down in each stream's time base)
/// and rescaled to the muxer's time bases. MP4 is written unfragmented unless the output cannot
/// seek (a pipe) or `fragmentedMP4` says otherwise; `MediaOutput.metadata` becomes the
/// container's tags (in MP4 as `mdta` keys, which FFmpeg reads back).
///
/// Ownership: one task (actor) owns a muxer; it is not safe to use from two tasks at once.
public final class Muxer: @unchecked Sendable {
    /// The output being written.
    public let output: MediaOutput
    /// The container format's name.
    public let containerName: String
    /// Input indices of copied streams the container cannot hold (left out).
    public private(set) var droppedStreams: [Int] = []

    let formatContext: UnsafeMutablePointer<AVFormatContext>
    private let outputFormat: UnsafePointer<AVOutputFormat>
    private var copiedStreams: [Int: (stream: UnsafeMutablePointer<AVStream>, shift: Int64)] = [:]
    private var videoStream: UnsafeMutablePointer<AVStream>?
    private let packet: UnsafeMutablePointer<AVPacket>
    private var ioOpened = false
    private var headerWritten = false
    private var finished = false
    /// The last video dts written, in the video stream's time base (joins keep it increasing).
    private var lastVideoDts: Int64?

    /// Allocates the container for `output` (no file is opened before `writeHeader`).
    init(output: MediaOutput) throws {
        self.output = output
        let name = output.location
        if let formatName = output.format, av_guess_format(formatName, nil, nil) == nil {
            throw MediaError(file: name, reason: "unknown output format '\(formatName)'")
        }
        var context: UnsafeMutablePointer<AVFormatContext>?
        let code = avformat_alloc_output_context2(&context, nil, output.format, output.url)
        guard code >= 0, let context, let outputFormat = context.pointee.oformat else {
            throw MediaError(file: name, reason: output.format == nil
                ? "cannot choose a container from the file name; give the output format (mp4, matroska, nut, …)"
                : "cannot create the output container")
        }
        guard let packet = av_packet_alloc() else {
            avformat_free_context(context)
            throw MediaError(file: name, reason: "cannot allocate a packet")
        }
        self.formatContext = context
        self.outputFormat = outputFormat
        self.packet = packet
        containerName = String(cString: outputFormat.pointee.name)
    }

    /// A muxer writing a copy of `video` (a sharded run's part) and `source`'s copied streams to
    /// `output`, header written.
    public convenience init(output: MediaOutput, copying video: CopiedStream, source: SourceDescription,
                            fragmentedMP4: Bool? = nil) throws {
        try self.init(output: output)
        let stream = try addStream(copying: video)
        stream.pointee.avg_frame_rate = source.video.averageFrameRate.av
        addDisplayMatrix(source.video.displayMatrix, to: stream)
        videoStream = stream
        try addCopiedStreams(source)
        try writeHeader(fragmentedMP4: fragmentedMP4)
    }

    deinit {
        if headerWritten && !finished { try? finish() }
        if ioOpened && !finished { avio_closep(&formatContext.pointee.pb) }
        packet.free()
        avformat_free_context(formatContext)
    }

    /// Whether encoders must put their headers in the stream's extradata (MP4, Matroska).
    var needsGlobalHeader: Bool { outputFormat.pointee.flags & AVFMT_GLOBALHEADER != 0 }

    /// Adds the video stream, described by an open encoder.
    func addVideoStream(encoder codec: UnsafeMutablePointer<AVCodecContext>, displayMatrix: DisplayMatrix?) throws -> UnsafeMutablePointer<AVStream> {
        let name = output.location
        guard let stream = avformat_new_stream(formatContext, nil) else {
            throw MediaError(file: name, reason: "cannot add the video stream")
        }
        let code = avcodec_parameters_from_context(stream.pointee.codecpar, codec)
        guard code >= 0 else { throw MediaError(file: name, while: "cannot describe the video stream", code: code) }
        stream.pointee.time_base = codec.pointee.time_base
        stream.pointee.avg_frame_rate = codec.pointee.framerate
        stream.pointee.sample_aspect_ratio = codec.pointee.sample_aspect_ratio
        addDisplayMatrix(displayMatrix, to: stream)
        videoStream = stream
        return stream
    }

    private func addDisplayMatrix(_ matrix: DisplayMatrix?, to stream: UnsafeMutablePointer<AVStream>) {
        guard let matrix, let data = av_malloc(36) else { return }
        matrix.entries.withUnsafeBytes { data.copyMemory(from: $0.baseAddress!, byteCount: 36) }
        if av_stream_add_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, data.assumingMemoryBound(to: UInt8.self), 36) < 0 {
            av_free(data)
        }
    }

    /// Adds a stream with `input`'s codec parameters, metadata and disposition.
    private func addStream(copying input: CopiedStream) throws -> UnsafeMutablePointer<AVStream> {
        let name = output.location
        guard let out = avformat_new_stream(formatContext, nil) else {
            throw MediaError(file: name, reason: "cannot add a stream")
        }
        let code = avcodec_parameters_copy(out.pointee.codecpar, input.parameters)
        guard code >= 0 else { throw MediaError(file: name, while: "cannot copy stream \(input.index)", code: code) }
        out.pointee.codecpar.pointee.codec_tag = 0
        out.pointee.time_base = input.timeBase.av
        av_dict_copy(&out.pointee.metadata, input.metadata, 0)
        out.pointee.disposition = input.disposition
        return out
    }

    /// The ticks of `tb` that `source.timeOrigin` seconds make, rounded down (0 without a span).
    func shift(_ tb: Rational, origin: Double) -> Int64 {
        let roundDown = AVRounding(rawValue: AV_ROUND_DOWN.rawValue | AV_ROUND_PASS_MINMAX.rawValue)
        return origin == 0 ? 0 : av_rescale_q_rnd(Int64((origin * 1_000_000).rounded()), camvid_time_base_q(), tb.av, roundDown)
    }

    /// Adds the source's audio and subtitle streams that the container can hold.
    func addCopiedStreams(_ source: SourceDescription) throws {
        for input in source.copiedStreams {
            if avformat_query_codec(outputFormat, input.parameters.pointee.codec_id, FF_COMPLIANCE_NORMAL) == 0 {
                droppedStreams.append(input.index)
                continue
            }
            copiedStreams[input.index] = (try addStream(copying: input), shift(input.timeBase, origin: source.timeOrigin))
        }
    }

    /// Opens the file and writes the header (with `output.metadata` as the container's tags).
    func writeHeader(fragmentedMP4: Bool?) throws {
        let name = output.location
        if outputFormat.pointee.flags & AVFMT_NOFILE == 0 {
            let code = avio_open(&formatContext.pointee.pb, output.url, AVIO_FLAG_WRITE)
            guard code >= 0 else { throw MediaError(file: name, while: "cannot open for writing", code: code) }
            ioOpened = true
        }
        var muxerOptions: OpaquePointer?
        defer { av_dict_free(&muxerOptions) }
        let isMP4Family = ["mp4", "mov", "ipod", "ismv", "3gp", "3g2", "psp", "f4v"].contains(containerName)
        let seekable = formatContext.pointee.pb.map { $0.pointee.seekable != 0 } ?? true
        var movflags: [String] = []
        if isMP4Family, fragmentedMP4 ?? !seekable { movflags.append("frag_keyframe+empty_moov+default_base_moof") }
        if isMP4Family, !output.metadata.isEmpty { movflags.append("use_metadata_tags") }
        if !movflags.isEmpty { av_dict_set(&muxerOptions, "movflags", movflags.joined(separator: "+"), 0) }
        for (key, value) in output.metadata { av_dict_set(&formatContext.pointee.metadata, key, value, 0) }
        let code = avformat_write_header(formatContext, &muxerOptions)
        guard code >= 0 else { throw MediaError(file: name, while: "cannot write the header", code: code) }
        headerWritten = true
    }

    /// Writes a packet of a copied stream (shifted by the span's origin, rescaled to the output stream's time base).
    public func write(_ input: StreamPacket) throws {
        guard !finished else { throw MediaError(file: output.location, reason: "the output is already finished") }
        guard let (stream, shift) = copiedStreams[input.streamIndex] else { return }
        let code = av_packet_ref(packet, input.packet)
        guard code >= 0 else { throw MediaError(file: output.location, while: "cannot copy a packet", code: code) }
        let nopts = camvid_nopts_value()
        if packet.pointee.pts != nopts { packet.pointee.pts -= shift }
        if packet.pointee.dts != nopts { packet.pointee.dts -= shift }
        av_packet_rescale_ts(packet, input.timeBase.av, stream.pointee.time_base)
        packet.pointee.stream_index = stream.pointee.index
        packet.pointee.pos = -1
        try writePacket(frame: nil, action: "cannot write a packet of stream \(input.streamIndex)")
    }

    /// Writes an encoded video packet as it is (a part's, already on the output's timeline), its dts
    /// raised where needed to stay increasing: two parts' encoders each start with their own
    /// B-frame delay, and a join must not step back in decoding time (pts are kept exactly).
    public func writeVideo(_ input: StreamPacket, frame: Int? = nil) throws {
        let code = av_packet_ref(packet, input.packet)
        guard code >= 0 else { throw MediaError(file: output.location, while: "cannot copy a packet", code: code) }
        try writeVideoPacket(from: input.timeBase, frame: frame)
    }

    /// Writes an encoder's packet (in `timeBase`) on the video stream, taking its reference.
    func writeEncoded(_ encoded: UnsafeMutablePointer<AVPacket>, from timeBase: Rational, frame: Int?) throws {
        av_packet_move_ref(packet, encoded)
        try writeVideoPacket(from: timeBase, frame: frame)
    }

    /// Writes the packet prepared in `packet` (in `timeBase`) on the video stream.
    private func writeVideoPacket(from timeBase: Rational, frame: Int?) throws {
        guard let videoStream else { throw MediaError(file: output.location, reason: "the output has no video stream") }
        av_packet_rescale_ts(packet, timeBase.av, videoStream.pointee.time_base)
        let nopts = camvid_nopts_value()
        if packet.pointee.dts != nopts {
            if let lastVideoDts, packet.pointee.dts <= lastVideoDts {
                packet.pointee.dts = lastVideoDts + 1
                if packet.pointee.pts != nopts, packet.pointee.pts < packet.pointee.dts {
                    throw MediaError(file: output.location, frame: frame, reason: "a packet's decoding time cannot precede its presentation")
                }
            }
            lastVideoDts = packet.pointee.dts
        }
        packet.pointee.stream_index = videoStream.pointee.index
        packet.pointee.pos = -1
        try writePacket(frame: frame, action: "cannot write a video packet")
    }

    /// Hands the prepared packet to the muxer (which takes its reference).
    private func writePacket(frame: Int?, action: String) throws {
        guard !finished else { throw MediaError(file: output.location, frame: frame, reason: "the output is already finished") }
        let code = av_interleaved_write_frame(formatContext, packet)
        av_packet_unref(packet)
        if code < 0 { throw MediaError(file: output.location, frame: frame, while: action, code: code) }
    }

    /// Writes the trailer and closes the output; call it once, also after a failure. Later calls do nothing.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        var firstError: Error?
        if headerWritten {
            let code = av_write_trailer(formatContext)
            if code < 0 { firstError = MediaError(file: output.location, while: "cannot write the trailer", code: code) }
        }
        if ioOpened {
            let closed = avio_closep(&formatContext.pointee.pb)
            if closed < 0, firstError == nil {
                firstError = MediaError(file: output.location, while: "cannot close the output", code: closed)
            }
        }
        if let firstError { throw firstError }
    }
}
