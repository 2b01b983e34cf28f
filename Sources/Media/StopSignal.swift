import CFFmpeg

/// A flag another task raises to stop a decoder that may be blocked reading a live device or pipe.
///
/// The only part of a `FrameDecoder` that may be used from other tasks: raising it makes
/// the decoder's pending and future reads return, and `next()` then ends the input normally
/// (the frames already decoded are still delivered).
public final class StopSignal: @unchecked Sendable {
    // An atomic int in C memory: FFmpeg's I/O polls it from the reading thread.
    let flag: UnsafeMutableRawPointer

    /// A lowered flag.
    public init() {
        // malloc of one int only fails when out of memory, where nothing else can go on either.
        flag = camvid_stop_flag_create()!
    }

    deinit { camvid_stop_flag_destroy(flag) }

    /// Raises the flag; safe from any task or signal-handling thread.
    public func stop() { camvid_stop_flag_raise(flag) }

    /// Whether the flag was raised.
    public var isStopped: Bool { camvid_stop_flag_is_raised(flag) != 0 }
}
