import CFFmpeg

/// An error from reading or writing media: names the file and, when known, the frame.
public struct MediaError: Error, CustomStringConvertible, Sendable {
    /// The file, URL or device the error concerns (`-` for a pipe).
    public let file: String
    /// The index of the frame the error concerns, when known.
    public let frame: Int?
    /// What went wrong.
    public let reason: String

    /// An error about `file` (and `frame`, when known).
    public init(file: String, frame: Int? = nil, reason: String) {
        self.file = file
        self.frame = frame
        self.reason = reason
    }

    /// An error wrapping an FFmpeg return code, with FFmpeg's own message.
    public init(file: String, frame: Int? = nil, while action: String, code: Int32) {
        self.init(file: file, frame: frame, reason: "\(action): \(FFmpegErrorText.message(for: code))")
    }

    /// One line: `FILE: frame N: REASON`.
    public var description: String {
        if let frame { return "\(file): frame \(frame): \(reason)" }
        return "\(file): \(reason)"
    }
}

/// FFmpeg's text for its error codes (`av_err2str`, which Swift cannot call as a macro).
public enum FFmpegErrorText {
    /// The message FFmpeg gives for `code` (a negative AVERROR).
    public static func message(for code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        return buffer.withUnsafeMutableBufferPointer { pointer in
            String(cString: camvid_err2str(code, pointer.baseAddress, pointer.count))
        }
    }

    /// `AVERROR_EOF`.
    public static var endOfFile: Int32 { camvid_averror_eof() }
    /// `AVERROR(EAGAIN)`.
    public static var tryAgain: Int32 { camvid_averror_eagain() }
}
