import CFFmpeg
import Core

/// Reads the video packets of a file as they are stored, without decoding, with the container's
/// tags: `camvid concat` reads the parts of a sharded run with it.
///
/// Ownership: one task owns a reader; packets it returns are independent of it.
public final class PacketReader: @unchecked Sendable {
    /// The file being read.
    public let input: MediaInput
    /// The container's tags.
    public let metadata: [String: String]
    /// The video stream, described for a copy (codec parameters, time base, configuration); nil
    /// in a file without one (MP4 leaves out a track without samples: a part with no frame).
    public let video: CopiedStream?

    private let formatContext: UnsafeMutablePointer<AVFormatContext>
    /// The demuxer's interrupt callback reads it: it lives as long as the reader.
    private let stopSignal = StopSignal()
    private let videoIndex: Int32
    private let packet: UnsafeMutablePointer<AVPacket>
    private var packetsRead = 0

    /// Opens `input` and finds its video stream; throws a `MediaError` naming it when it cannot
    /// be read (a part cut short: an MP4 without its index).
    public init(_ input: MediaInput) throws {
        self.input = input
        let context = try FrameDecoder.openContainer(input, stop: stopSignal)
        var contextToClose: UnsafeMutablePointer<AVFormatContext>? = context
        let index = av_find_best_stream(context, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        let video = index >= 0 ? context.pointee.streams[Int(index)].flatMap { CopiedStream(stream: $0) } : nil
        guard let packet = av_packet_alloc(), index < 0 || video != nil else {
            avformat_close_input(&contextToClose)
            throw MediaError(file: input.location, reason: "cannot read its video stream")
        }
        for i in 0..<Int(context.pointee.nb_streams) where i != Int(index) {
            context.pointee.streams[i]?.pointee.discard = AVDISCARD_ALL
        }
        var tags: [String: String] = [:]
        var entry: UnsafeMutablePointer<AVDictionaryEntry>?
        while let next = av_dict_get(context.pointee.metadata, "", entry, AV_DICT_IGNORE_SUFFIX) {
            tags[String(cString: next.pointee.key)] = String(cString: next.pointee.value)
            entry = next
        }
        self.metadata = tags
        self.video = video
        self.formatContext = context
        self.videoIndex = index
        self.packet = packet
    }

    deinit {
        packet.free()
        var context: UnsafeMutablePointer<AVFormatContext>? = formatContext
        avformat_close_input(&context)
    }

    /// The next video packet in file (decoding) order, or nil at the end of the file.
    ///
    /// Throws a `MediaError` naming the file on a read error other than its end.
    public func next() throws -> StreamPacket? {
        guard let video else { return nil }
        while true {
            let code = av_read_frame(formatContext, packet)
            if code == FFmpegErrorText.endOfFile { return nil }
            guard code >= 0 else {
                throw MediaError(file: input.location, frame: packetsRead, while: "cannot read a packet", code: code)
            }
            guard packet.pointee.stream_index == videoIndex else {
                av_packet_unref(packet)
                continue
            }
            guard let copy = av_packet_alloc() else {
                av_packet_unref(packet)
                throw MediaError(file: input.location, frame: packetsRead, reason: "cannot allocate a packet")
            }
            av_packet_move_ref(copy, packet)
            packetsRead += 1
            return StreamPacket(packet: copy, streamIndex: Int(videoIndex), timeBase: video.timeBase)
        }
    }
}
