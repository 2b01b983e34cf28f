import CFFmpeg
import Core

/// The FFmpeg libraries this process runs on: the release, each library's version and file, and the video encoder
/// camvid's output would use (for `camvid doctor` and bug reports).
public struct FFmpegLibraries: Sendable {
    /// One of FFmpeg's libraries as loaded.
    public struct Library: Sendable, Equatable {
        /// Its name, e.g. `libavformat`.
        public let name: String
        /// The version the loaded library reports, `major.minor.micro`.
        public let version: String
        /// The file it was loaded from, when the loader can say.
        public let file: String?
    }

    /// The FFmpeg release the libraries come from (`av_version_info()`, e.g. `5.1.6-0+deb12u1`).
    public let release: String
    /// libavformat, libavcodec, libavdevice, libswscale and libavutil, in that order.
    public let libraries: [Library]
    /// The first encoder of `EncoderSettings`' list that this FFmpeg has (`libx264`, …), nil when it has none.
    public let videoEncoder: String?

    /// What this process has loaded.
    public static func loaded() -> FFmpegLibraries {
        typealias VersionFunction = @convention(c) () -> UInt32
        let functions: [(String, VersionFunction)] = [
            ("libavformat", avformat_version), ("libavcodec", avcodec_version), ("libavdevice", avdevice_version),
            ("libswscale", swscale_version), ("libavutil", avutil_version),
        ]
        let libraries = functions.map { name, function in
            // AV_VERSION_INT: major << 16 | minor << 8 | micro.
            let packed = function()
            return Library(name: name, version: "\(packed >> 16).\(packed >> 8 & 0xFF).\(packed & 0xFF)",
                           file: LoadedLibrary.file(holding: unsafeBitCast(function, to: UnsafeRawPointer.self)))
        }
        let encoder = EncoderSettings().codecNames.first { avcodec_find_encoder_by_name($0) != nil }
        return FFmpegLibraries(release: String(cString: av_version_info()), libraries: libraries, videoEncoder: encoder)
    }
}
