/// What to read: a file, a URL FFmpeg understands, `-` (standard input) or a device.
///
/// Like ffmpeg's `-f FORMAT -i LOCATION`: `format` picks the demuxer or capture device
/// (`v4l2` for `/dev/video0`, `lavfi` for `testsrc2=size=640x480:rate=30`, `nut` for a
/// pipe); without it FFmpeg probes the content.
public struct MediaInput: Sendable, Hashable {
    /// The path, URL, device or filter graph as the user gave it (`-` for standard input).
    public var location: String
    /// The input format name (`ffmpeg -f`), or nil to probe.
    public var format: String?
    /// Demuxer or device options (`video_size`, `framerate`, `input_format`, …).
    public var options: [String: String]

    /// An input at `location`, optionally with a format name and options.
    public init(_ location: String, format: String? = nil, options: [String: String] = [:]) {
        self.location = location
        self.format = format
        self.options = options
    }

    /// The URL handed to FFmpeg: `-` becomes `pipe:0`.
    public var url: String { location == "-" ? "pipe:0" : location }
}

/// Where to write: a file, a URL FFmpeg understands, or `-` (standard output).
public struct MediaOutput: Sendable, Hashable {
    /// The path or URL as the user gave it (`-` for standard output).
    public var location: String
    /// The container format name (`mp4`, `matroska`, `nut`, `mpegts`), or nil to choose from the file name.
    public var format: String?
    /// Tags written into the container (a sharded run's part says which part it is in them).
    public var metadata: [String: String]

    /// An output at `location`, optionally with an explicit container format and tags.
    public init(_ location: String, format: String? = nil, metadata: [String: String] = [:]) {
        self.location = location
        self.format = format
        self.metadata = metadata
    }

    /// The URL handed to FFmpeg: `-` becomes `pipe:1`.
    public var url: String { location == "-" ? "pipe:1" : location }
}

/// Which part of the input to decode, like ffmpeg's `-ss START -t DURATION` before `-i`.
public struct TimeSpan: Sendable, Hashable {
    /// Seconds from the beginning of the input (its container start time); nil for the beginning.
    public var start: Double?
    /// Seconds to decode from `start`; nil for all.
    public var duration: Double?

    /// A span; nil parts mean "from the beginning" and "to the end".
    public init(start: Double? = nil, duration: Double? = nil) {
        self.start = start
        self.duration = duration
    }

    /// The whole input.
    public static let all = TimeSpan()
}
