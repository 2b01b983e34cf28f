/// One item of a video file in file order: a video frame, or a packet of another stream (audio,
/// subtitles) that is copied to the output as it is.
///
/// The decoder delivers them, and every stage of the pipeline passes them on in this order.
public enum MediaItem<Frame, Packet> {
    /// A picture of the video stream, in the representation of the stage that holds it.
    case frame(Frame)
    /// A packet of another stream, passed through in order.
    case packet(Packet)

    /// Whether this is a frame (not a packet).
    public var isFrame: Bool {
        if case .frame = self { return true }
        return false
    }
}

extension MediaItem: Sendable where Frame: Sendable, Packet: Sendable {}
