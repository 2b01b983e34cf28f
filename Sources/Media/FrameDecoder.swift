import CFFmpeg
import Core
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the decoder runs.
public struct DecoderSettings: Sendable, Hashable {
    /// Decoder threads (frame threading); 0 lets FFmpeg choose from the core count.
    public var threads: Int
    /// Whether audio and subtitle packets are delivered for copying (else only frames).
    public var deliversOtherStreams: Bool
    /// Whether video frames are decoded and delivered; without them only the other streams' packets
    /// of the span come out (`camvid concat` copies the source's audio so, decoding nothing).
    public var deliversVideo: Bool

    /// Settings; the defaults use frame threading on all cores and deliver every stream.
    public init(threads: Int = 0, deliversOtherStreams: Bool = true, deliversVideo: Bool = true) {
        self.threads = max(0, threads)
        self.deliversOtherStreams = deliversOtherStreams
        self.deliversVideo = deliversVideo
    }
}

/// Reads an input and decodes its best video stream into frames, handing on the audio and
/// subtitle packets untouched, in input order.
///
/// What camvid does with awkward sources:
/// - **Variable frame rate**: every frame keeps its own pts and duration; nothing is
///   resampled to a constant rate, and the encoder writes the same pts sequence.
/// - **B-frames**: frames come out in display order with `best_effort_timestamp` as pts.
///   A frame without a pts, or with one not after its predecessor's, gets the previous pts
///   plus one frame interval (counted in `repairedTimestampCount`) so timestamps are always
///   strictly increasing, as encoders and muxers require.
/// - **Duration**: the packet's duration, else the gap to the next frame's pts, else one
///   frame interval at the average rate (the last frame), else 1 tick.
/// - **Odd sizes, 10-bit, 4:4:4**: decoded at their own size and format; `PixelConverter`
///   turns any of them into 8-bit RGB (10-bit precision ends there: the output is 8-bit).
/// - **Rotation**: frames are not turned; `VideoStreamInfo.displayMatrix` carries the
///   rotation and the encoder copies it to the output stream.
/// - **Corrupt data**: a packet the decoder rejects is skipped and counted in
///   `skippedPacketCount` (no frame comes out of it, so the frame indices and the output
///   stay exact with what was decoded); frames the decoder repaired by concealment are
///   delivered and counted in `damagedFrameCount`. An input that yields no frame at all, a
///   read error other than end of file, or more than 100 rejected packets in a row is a
///   `MediaError`.
///
/// Span selection (`TimeSpan`) is frame-exact: the decoder seeks to the keyframe at or
/// before `start`, decodes and drops the frames before it, returns from the first frame
/// with pts ≥ start and stops before the first frame with pts ≥ start + duration.
///
/// A shard (`Shard`) of the span is selected the same way, by pts: the span's video ticks
/// `[lower, upper)` (from the span's start, else the video stream's start time; to the span's
/// end, else that start plus the stream's declared duration) are cut as `Shard` says, and the
/// decoder delivers the frames whose pts lie in this shard's part, in display order, so B-frames
/// and variable frame rates are cut exactly as the unsharded run orders them. A shard may hold
/// no frame at all (more shards than frames); timestamps stay on the span's timeline.
///
/// Ownership: one task (actor) owns a decoder and calls `next()`; it is not safe to call
/// from two tasks at once. Frames and packets it returns are independent of it.
public final class FrameDecoder: @unchecked Sendable {
    /// The input being read.
    public let input: MediaInput
    /// The video stream, the streams to copy, and where output time starts.
    public let source: SourceDescription
    /// Frames delivered with concealed damage.
    public private(set) var damagedFrameCount = 0
    /// Packets the decoder rejected (skipped, no frame delivered for them).
    public private(set) var skippedPacketCount = 0
    /// Frames whose pts was missing or out of order and was repaired.
    public private(set) var repairedTimestampCount = 0
    /// Frames delivered so far.
    public private(set) var deliveredFrameCount = 0
    /// Whether the video ended at the span's (or shard's) end, not at the end of the input.
    public private(set) var endedAtSpanEnd = false
    /// The pts of the last frame decoded, delivered or dropped outside the span (for truncation checks).
    public private(set) var lastDecodedPts: Int64?
    /// The input's size in bytes, when FFmpeg knows it (files, HTTP with a length).
    public let inputSize: Int64?
    /// The shard delivered, when one was asked for.
    public let shard: Shard?

    /// Raised from another task, it ends the input, even a blocking live one.
    public let stopSignal: StopSignal

    /// The decoded video stream.
    public var video: VideoStreamInfo { source.video }

    private let formatContext: UnsafeMutablePointer<AVFormatContext>
    private let codecContext: UnsafeMutablePointer<AVCodecContext>
    private let videoIndex: Int32
    private let timeBase: Rational
    private let startPts: Int64?
    private let endPts: Int64?
    private let startSeconds: Double?
    private let endSeconds: Double?
    private let frameInterval: Int64?
    private let packet: UnsafeMutablePointer<AVPacket>
    private var copiedIndices: Set<Int32>

    private var ready: [DecodedItem] = []
    private var readyHead = 0
    private var waitingFrame: DecodedFrame?
    private var waitingPackets: [StreamPacket] = []
    private var previousPts: Int64?
    private var previousDuration: Int64?
    private var state: State = .reading
    private var consecutiveRejections = 0
    private var streamsPastEnd: Set<Int32> = []
    private var reportedEmpty = false
    /// After a seek: the first decoded frame must be a keyframe at or before the start.
    private var checkingSeek = false
    private var seekedToBeginning = false
    /// Packets read before the span's first frame (dropped if the seek has to be redone).
    private var preroll: [StreamPacket] = []
    private let deliversVideo: Bool

    private enum State { case reading, draining, videoEnded, finished }

    private static let devicesRegistered: Bool = {
        avdevice_register_all()
        return true
    }()

    /// Opens `input`, finds its video stream and, for a span with a start, seeks to it; raising
    /// `stop` later ends the input there, even during a blocking read.
    ///
    /// Throws a `MediaError` naming the input for a missing file, an unknown input format,
    /// an input without a decodable video stream, or an invalid span.
    ///
    /// With `shard`, only that shard of the span is delivered; the input's length must then be known.
    public init(_ input: MediaInput, span: TimeSpan = .all, shard: Shard? = nil, settings: DecoderSettings = DecoderSettings(),
                stop stopSignal: StopSignal = StopSignal()) throws {
        self.input = input
        let name = input.location
        if let start = span.start, !(start.isFinite && start >= 0) {
            throw MediaError(file: name, reason: "span start \(start) is not a time ≥ 0 seconds")
        }
        if let duration = span.duration, !(duration.isFinite && duration > 0) {
            throw MediaError(file: name, reason: "span duration \(duration) is not a time > 0 seconds")
        }
        let context = try Self.openContainer(input, stop: stopSignal)
        var contextToClose: UnsafeMutablePointer<AVFormatContext>? = context
        var codecToFree: UnsafeMutablePointer<AVCodecContext>?
        var succeeded = false
        defer {
            if !succeeded {
                avcodec_free_context(&codecToFree)
                avformat_close_input(&contextToClose)
            }
        }

        var decoder: UnsafePointer<AVCodec>?
        let index = av_find_best_stream(context, AVMEDIA_TYPE_VIDEO, -1, -1, &decoder, 0)
        guard index >= 0, let decoder, let stream = context.pointee.streams[Int(index)] else {
            let found = (0..<Int(context.pointee.nb_streams)).contains {
                context.pointee.streams[$0]?.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO
            }
            throw MediaError(file: name, reason: found ? "no decoder for its video stream" : "no video stream (not a video?)")
        }
        guard let codec = avcodec_alloc_context3(decoder) else {
            throw MediaError(file: name, reason: "cannot allocate a decoder")
        }
        codecToFree = codec
        var code = avcodec_parameters_to_context(codec, stream.pointee.codecpar)
        guard code >= 0 else { throw MediaError(file: name, while: "cannot configure the decoder", code: code) }
        codec.pointee.pkt_timebase = stream.pointee.time_base
        codec.pointee.thread_type = FF_THREAD_FRAME
        codec.pointee.thread_count = Int32(settings.threads)
        code = avcodec_open2(codec, decoder, nil)
        guard code >= 0 else { throw MediaError(file: name, while: "cannot open the video decoder", code: code) }

        var copied: [CopiedStream] = []
        for i in 0..<Int(context.pointee.nb_streams) where i != Int(index) {
            guard let other = context.pointee.streams[i] else { continue }
            let type = other.pointee.codecpar.pointee.codec_type
            if settings.deliversOtherStreams, type == AVMEDIA_TYPE_AUDIO || type == AVMEDIA_TYPE_SUBTITLE,
               let stream = CopiedStream(stream: other) {
                copied.append(stream)
            } else {
                // Data, attachments and further video streams are not read at all.
                other.pointee.discard = AVDISCARD_ALL
            }
        }

        let tb = Rational(stream.pointee.time_base)
        var rate = Rational(stream.pointee.avg_frame_rate)
        if !rate.isValid { rate = Rational(stream.pointee.r_frame_rate) }
        if !rate.isValid { rate = Rational(0, 1) }
        let nopts = camvid_nopts_value()
        var duration: Double?
        if stream.pointee.duration != nopts, stream.pointee.duration > 0 {
            duration = tb.seconds(stream.pointee.duration)
        } else if context.pointee.duration != nopts, context.pointee.duration > 0 {
            duration = Double(context.pointee.duration) / Double(AV_TIME_BASE)
        }
        var frameCount: Int?
        if stream.pointee.nb_frames > 0 {
            frameCount = Int(stream.pointee.nb_frames)
        } else if let duration, rate.isValid {
            frameCount = Int((duration * rate.doubleValue).rounded())
        }
        var displayMatrix: DisplayMatrix?
        var sideDataSize: Int = 0
        if let data = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &sideDataSize), sideDataSize >= 36 {
            let entries = UnsafeRawPointer(data).withMemoryRebound(to: Int32.self, capacity: 9) {
                Array(UnsafeBufferPointer(start: $0, count: 9))
            }
            displayMatrix = DisplayMatrix(entries: entries)
        }
        let parameters = stream.pointee.codecpar.pointee
        let pixelFormat = codec.pointee.pix_fmt != AV_PIX_FMT_NONE
            ? PixelFormat(rawValue: codec.pointee.pix_fmt.rawValue) : PixelFormat(rawValue: parameters.format)
        let info = VideoStreamInfo(
            width: Int(parameters.width), height: Int(parameters.height), timeBase: tb,
            averageFrameRate: rate, duration: duration, frameCountEstimate: frameCount,
            isLive: camvid_is_input_device(context.pointee.iformat) != 0,
            codecName: String(cString: decoder.pointee.name), pixelFormat: pixelFormat,
            displayMatrix: displayMatrix,
            color: ColorDescription(
                space: Int32(parameters.color_space.rawValue), range: Int32(parameters.color_range.rawValue),
                primaries: Int32(parameters.color_primaries.rawValue), transfer: Int32(parameters.color_trc.rawValue)
            ),
            sampleAspectRatio: Rational(av_guess_sample_aspect_ratio(context, stream, nil))
        )

        // Span limits on the input's timeline (relative to the container's start time, like ffmpeg).
        let containerStart = context.pointee.start_time != nopts
            ? Double(context.pointee.start_time) / Double(AV_TIME_BASE) : 0
        let origin = containerStart + (span.start ?? 0)
        var seeked = false
        let roundUp = AVRounding(rawValue: AV_ROUND_UP.rawValue | AV_ROUND_PASS_MINMAX.rawValue)
        func ceilTicks(_ seconds: Double) -> Int64 {
            av_rescale_q_rnd(Int64((seconds * 1_000_000).rounded()), camvid_time_base_q(), tb.av, roundUp)
        }
        // The container start in ticks (rounded to nearest: it came from a tick of some stream).
        let containerStartTicks = context.pointee.start_time != nopts
            ? av_rescale_q(context.pointee.start_time, camvid_time_base_q(), tb.av) : 0
        var selectedStart = span.start.map { containerStartTicks + ceilTicks($0) }
        var selectedEnd = span.duration.map { containerStartTicks + ceilTicks((span.start ?? 0) + $0) }
        var selectedStartSeconds = span.start.map { _ in origin }
        var selectedEndSeconds = span.duration.map { origin + $0 }
        if let shard {
            // The shard's part of the span's video ticks: every shard computes the same cuts from the same file.
            let streamStart = stream.pointee.start_time != nopts ? stream.pointee.start_time : containerStartTicks
            let lower = selectedStart ?? streamStart
            var streamEnd: Int64?
            if stream.pointee.duration != nopts, stream.pointee.duration > 0 {
                streamEnd = streamStart + stream.pointee.duration
            } else if context.pointee.duration != nopts, context.pointee.duration > 0 {
                streamEnd = containerStartTicks + av_rescale_q(context.pointee.duration, camvid_time_base_q(), tb.av)
            }
            guard let upper = selectedEnd ?? streamEnd else {
                throw MediaError(file: name, reason: "cannot be sharded: its length is unknown (a pipe or a live source?)")
            }
            let (shardStart, shardEnd) = shard.bounds(lower: lower, upper: upper)
            func seconds(_ ticks: Int64) -> Double { tb.seconds(ticks - containerStartTicks) + containerStart }
            if let shardStart { (selectedStart, selectedStartSeconds) = (shardStart, seconds(shardStart)) }
            if let shardEnd { (selectedEnd, selectedEndSeconds) = (shardEnd, seconds(shardEnd)) }
        }
        startPts = selectedStart
        endPts = selectedEnd
        startSeconds = selectedStartSeconds
        endSeconds = selectedEndSeconds
        if let startPts {
            // Seeking may fail (pipes, devices): the frames before the start are then decoded and dropped.
            seeked = avformat_seek_file(context, index, Int64.min, startPts, startPts, 0) >= 0
        }
        // Without video, its packets need not even be read (MP4's demuxer then skips their bytes).
        if !settings.deliversVideo { stream.pointee.discard = AVDISCARD_ALL }
        frameInterval = rate.isValid ? max(1, rate.inverse.rescale(1, to: tb)) : nil

        guard let packet = av_packet_alloc() else { throw MediaError(file: name, reason: "cannot allocate a packet") }
        self.packet = packet
        self.stopSignal = stopSignal
        self.formatContext = context
        self.codecContext = codec
        self.videoIndex = index
        self.timeBase = tb
        self.copiedIndices = Set(copied.map { Int32($0.index) })
        self.source = SourceDescription(video: info, copiedStreams: copied, timeOrigin: span.start == nil ? 0 : origin)
        self.checkingSeek = seeked
        self.shard = shard
        self.deliversVideo = settings.deliversVideo
        let size = context.pointee.pb.map { avio_size($0) } ?? -1
        self.inputSize = size > 0 ? size : nil
        succeeded = true
    }

    /// Opens `input` and reads its stream information; `stop` interrupts a blocking read.
    ///
    /// Throws a `MediaError` naming the input for a missing file or an unknown format.
    static func openContainer(_ input: MediaInput, stop stopSignal: StopSignal) throws -> UnsafeMutablePointer<AVFormatContext> {
        _ = Self.devicesRegistered
        let name = input.location
        var format: UnsafePointer<AVInputFormat>?
        if let formatName = input.format {
            format = av_find_input_format(formatName)
            guard format != nil else {
                throw MediaError(file: name, reason: "unknown input format '\(formatName)'")
            }
        }
        var options: OpaquePointer?
        for (key, value) in input.options { av_dict_set(&options, key, value, 0) }
        defer { av_dict_free(&options) }

        var context: UnsafeMutablePointer<AVFormatContext>? = avformat_alloc_context()
        guard let allocated = context else { throw MediaError(file: name, reason: "cannot allocate a demuxer") }
        // FFmpeg polls this during blocking reads; the owner keeps the signal alive as long as the context.
        allocated.pointee.interrupt_callback.callback = { opaque in
            guard let opaque else { return 0 }
            return Unmanaged<StopSignal>.fromOpaque(opaque).takeUnretainedValue().isStopped ? 1 : 0
        }
        allocated.pointee.interrupt_callback.opaque = Unmanaged.passUnretained(stopSignal).toOpaque()
        // avformat_open_input frees the context itself when it fails.
        var code = avformat_open_input(&context, input.url, format, &options)
        guard code >= 0, let context else { throw MediaError(file: name, while: "cannot open input", code: code) }
        code = avformat_find_stream_info(context, nil)
        guard code >= 0 else {
            var contextToClose: UnsafeMutablePointer<AVFormatContext>? = context
            avformat_close_input(&contextToClose)
            throw MediaError(file: name, while: "cannot read stream information", code: code)
        }
        return context
    }

    deinit {
        packet.free()
        codecContext.free()
        var context: UnsafeMutablePointer<AVFormatContext>? = formatContext
        avformat_close_input(&context)
    }

    /// The next frame or packet in input order, or nil at the end of the input (or span).
    ///
    /// Throws a `MediaError` naming the input and the frame index on a read error, a
    /// broken input, or an input that yielded no frame.
    public func next() throws -> DecodedItem? {
        while true {
            if readyHead < ready.count {
                let item = ready[readyHead]
                readyHead += 1
                if readyHead == ready.count {
                    ready.removeAll(keepingCapacity: true)
                    readyHead = 0
                }
                return item
            }
            if state == .finished {
                // A shard may rightly hold no frame, as long as the input decodes at all.
                let mayBeEmpty = !deliversVideo || (shard != nil && lastDecodedPts != nil)
                if deliveredFrameCount == 0 && !reportedEmpty && !mayBeEmpty {
                    reportedEmpty = true
                    let detail = skippedPacketCount > 0 ? " (\(skippedPacketCount) packets rejected as corrupt)" : ""
                    let span = startPts != nil || endPts != nil ? " in the requested span" : ""
                    throw MediaError(file: input.location, reason: "no video frame could be decoded\(span)\(detail)")
                }
                return nil
            }
            try step()
        }
    }

    /// Reads and decodes until something is ready or the input ends.
    private func step() throws {
        switch state {
        case .finished:
            return
        case .draining:
            try receiveFrames()
            if state == .draining { finishVideo() }
        case .videoEnded:
            try readPastVideoEnd()
        case .reading:
            // Without video or other streams there is nothing to read.
            if !deliversVideo && copiedIndices.isEmpty {
                state = .finished
                return
            }
            try receiveFrames()
            guard state == .reading, readyHead >= ready.count else { return }
            let code = stopSignal.isStopped ? camvid_averror_exit() : av_read_frame(formatContext, packet)
            if code == FFmpegErrorText.endOfFile || (code == camvid_averror_exit() && stopSignal.isStopped) {
                try checkReadError()
                avcodec_send_packet(codecContext, nil)
                state = .draining
                return
            }
            if code == FFmpegErrorText.tryAgain {
                // A non-blocking device with nothing yet: wait a little instead of spinning.
                usleep(2_000)
                return
            }
            if code == camvid_averror_invaliddata() {
                try reject(code, while: "reading a packet")
                return
            }
            guard code >= 0 else {
                throw MediaError(file: input.location, frame: deliveredFrameCount, while: "cannot read the input", code: code)
            }
            defer { av_packet_unref(packet) }
            if packet.pointee.stream_index == videoIndex {
                guard deliversVideo else { return }
                let sent = avcodec_send_packet(codecContext, packet)
                if sent < 0 && sent != FFmpegErrorText.tryAgain {
                    try reject(sent, while: "decoding a packet")
                } else {
                    consecutiveRejections = 0
                }
            } else if copiedIndices.contains(packet.pointee.stream_index) {
                try takeOtherPacket(afterVideoEnd: false)
                // Without video, the span ends when every copied stream has passed it.
                if !deliversVideo, streamsPastEnd.isSuperset(of: copiedIndices) { state = .finished }
            }
        }
    }

    /// Counts a rejected packet; too many in a row means the input is not decodable.
    private func reject(_ code: Int32, while action: String) throws {
        skippedPacketCount += 1
        consecutiveRejections += 1
        if consecutiveRejections > 100 {
            throw MediaError(file: input.location, frame: deliveredFrameCount, while: "\(action) (100 corrupt packets in a row)", code: code)
        }
    }

    /// A demuxer that stopped because of an I/O error, not the end, left the file cut short.
    private func checkReadError() throws {
        guard !stopSignal.isStopped else { return }
        if let pb = formatContext.pointee.pb, pb.pointee.error < 0, pb.pointee.error != FFmpegErrorText.endOfFile {
            throw MediaError(file: input.location, frame: deliveredFrameCount, while: "cannot read the input", code: pb.pointee.error)
        }
    }

    /// Pulls every frame the decoder has ready.
    private func receiveFrames() throws {
        while state == .reading || state == .draining {
            guard let frame = av_frame_alloc() else {
                throw MediaError(file: input.location, frame: deliveredFrameCount, reason: "cannot allocate a frame")
            }
            let code = avcodec_receive_frame(codecContext, frame)
            if code < 0 {
                frame.free()
                if code == FFmpegErrorText.tryAgain { return }
                if code == FFmpegErrorText.endOfFile || (code == camvid_averror_exit() && stopSignal.isStopped) {
                    finishVideo()
                    return
                }
                try reject(code, while: "decoding a frame")
                continue
            }
            accept(frame)
        }
    }

    /// Gives a decoded picture its pts, applies the span, and queues it.
    private func accept(_ frame: UnsafeMutablePointer<AVFrame>) {
        let nopts = camvid_nopts_value()
        let step = previousDuration ?? frameInterval ?? 1
        var pts = frame.pointee.best_effort_timestamp
        if pts == nopts { pts = frame.pointee.pts }
        if pts == nopts || (previousPts.map { pts <= $0 } ?? false) {
            pts = previousPts.map { $0 + step } ?? (pts == nopts ? 0 : pts)
            repairedTimestampCount += 1
        }
        lastDecodedPts = pts
        if checkingSeek {
            checkingSeek = false
            // Demuxers without an index (MPEG-TS, …) may land after the start or off a keyframe:
            // decode from the beginning instead, so the span stays frame-exact.
            if let startPts, pts > startPts || frame.pointee.key_frame == 0, !seekedToBeginning {
                frame.free()
                restartFromBeginning()
                return
            }
        }
        if let startPts, pts < startPts {
            frame.free()
            return
        }
        previousPts = pts
        if let endPts, pts >= endPts {
            resolveWaiting(nextPts: pts)
            frame.free()
            endedAtSpanEnd = true
            state = .videoEnded
            streamsPastEnd = []
            if copiedIndices.isEmpty { state = .finished }
            return
        }
        resolveWaiting(nextPts: pts)
        if frame.pointee.decode_error_flags != 0 || (frame.pointee.flags & AV_FRAME_FLAG_CORRUPT) != 0 {
            damagedFrameCount += 1
        }
        if !preroll.isEmpty {
            ready.append(contentsOf: preroll.map { .packet($0) })
            preroll = []
        }
        let duration = frame.pointee.pkt_duration
        let decoded = DecodedFrame(
            frame: frame, timing: FrameTiming(index: deliveredFrameCount, pts: pts, duration: max(duration, 1)),
            timeBase: timeBase
        )
        deliveredFrameCount += 1
        if duration > 0 {
            previousDuration = duration
            ready.append(.frame(decoded))
        } else {
            waitingFrame = decoded
        }
    }

    /// Seeks to the start of the input and decodes from there (once), dropping what was read.
    private func restartFromBeginning() {
        seekedToBeginning = true
        preroll = []
        previousPts = nil
        previousDuration = nil
        avcodec_flush_buffers(codecContext)
        let start = formatContext.pointee.start_time != camvid_nopts_value() ? formatContext.pointee.start_time : 0
        if avformat_seek_file(formatContext, -1, Int64.min, start, start, 0) < 0 {
            av_seek_frame(formatContext, -1, 0, AVSEEK_FLAG_BYTE)
        }
    }

    /// Gives the frame waiting for its duration the gap to `nextPts` (or a frame interval) and releases it.
    private func resolveWaiting(nextPts: Int64?) {
        guard let waiting = waitingFrame else { return }
        let duration = nextPts.map { $0 - waiting.timing.pts } ?? previousDuration ?? frameInterval ?? 1
        waiting.timing.duration = max(1, duration)
        previousDuration = waiting.timing.duration
        ready.append(.frame(waiting))
        ready.append(contentsOf: waitingPackets.map { .packet($0) })
        waitingFrame = nil
        waitingPackets = []
    }

    /// The decoder is empty: release the last frame and end (or fail if nothing came out).
    private func finishVideo() {
        resolveWaiting(nextPts: nil)
        state = .finished
    }

    /// Wraps the current packet of a copied stream, if it lies inside the span.
    private func takeOtherPacket(afterVideoEnd: Bool) throws {
        let stream = packet.pointee.stream_index
        guard let avStream = formatContext.pointee.streams[Int(stream)] else { return }
        let tb = Rational(avStream.pointee.time_base)
        let pts = packet.pointee.pts != camvid_nopts_value() ? packet.pointee.pts : packet.pointee.dts
        if pts != camvid_nopts_value() {
            let seconds = tb.seconds(pts)
            if let startSeconds, seconds < startSeconds - 1e-9 { return }
            if let endSeconds, seconds >= endSeconds - 1e-9 {
                streamsPastEnd.insert(stream)
                return
            }
        } else if afterVideoEnd {
            return
        }
        guard let copy = av_packet_alloc() else {
            throw MediaError(file: input.location, frame: deliveredFrameCount, reason: "cannot allocate a packet")
        }
        av_packet_move_ref(copy, packet)
        let item = StreamPacket(packet: copy, streamIndex: Int(stream), timeBase: tb)
        if startPts != nil && deliveredFrameCount == 0 && deliversVideo {
            preroll.append(item)
        } else if waitingFrame != nil {
            waitingPackets.append(item)
        } else {
            ready.append(.packet(item))
        }
    }

    /// After the span's last frame: keeps copying the other streams' packets up to the span end.
    private func readPastVideoEnd() throws {
        if streamsPastEnd.isSuperset(of: copiedIndices) {
            state = .finished
            return
        }
        let code = av_read_frame(formatContext, packet)
        guard code >= 0 else {
            // The end of the input, or damage after the span: the span itself is complete.
            state = .finished
            return
        }
        defer { av_packet_unref(packet) }
        if copiedIndices.contains(packet.pointee.stream_index) {
            try takeOtherPacket(afterVideoEnd: true)
        }
    }
}
