import CFFmpeg

/// How much FFmpeg's own library logging (to standard error) shows.
///
/// FFmpeg keeps one log level per process, so only the program (the CLI), never a
/// library object, should set it.
public enum FFmpegLog {
    /// A log level, from silent to everything.
    public enum Level: Int32, Sendable, CaseIterable {
        /// Nothing.
        case quiet = -8
        /// Errors the library cannot recover from.
        case fatal = 8
        /// Errors.
        case error = 16
        /// Warnings and errors (FFmpeg's default is `info`).
        case warning = 24
        /// Informational messages.
        case info = 32
        /// Debugging detail.
        case debug = 48
    }

    /// Sets FFmpeg's process-wide log level.
    public static func setLevel(_ level: Level) {
        av_log_set_level(level.rawValue)
    }
}
