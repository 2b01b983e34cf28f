import Foundation
import Media
import MediaTestSupport
import TestSupport

/// Generated test clips whose frames carry their own index as big black and white blocks.
enum Clips {
    /// FFmpeg's encoder statistics would drown the test output.
    static let quiet: Void = FFmpegLog.setLevel(.error)

    /// Bits of the frame index drawn per frame (4 columns x 2 rows of blocks).
    static let bits = 8

    /// An RGB picture showing `index` as 8 blocks (the shared generator).
    static func pattern(_ index: Int, width: Int, height: Int) -> [UInt8] { PatternClips.pattern(index, width: width, height: height) }

    /// The index an RGB picture shows (the shared reader).
    static func readPattern(_ pixels: [UInt8], width: Int, height: Int) -> Int {
        PatternClips.readPattern(pixels, width: width, height: height)
    }

    /// Writes a clip of `pts.count` pattern frames with the given timestamps.
    static func write(
        _ url: URL, format: String? = nil, width: Int = 64, height: Int = 48, timeBase: Rational = Rational(1, 30),
        pts: [Int64], durations: [Int64]? = nil, frameRate: Rational = Rational(30, 1),
        settings: EncoderSettings = EncoderSettings(), displayMatrix: DisplayMatrix? = nil
    ) throws {
        _ = quiet
        let video = VideoStreamInfo(
            width: width, height: height, timeBase: timeBase, averageFrameRate: frameRate, displayMatrix: displayMatrix
        )
        let encoder = try FrameEncoder(
            output: MediaOutput(url.path, format: format), source: SourceDescription(video: video), settings: settings
        )
        for (i, p) in pts.enumerated() {
            let duration = durations?[i] ?? (i + 1 < pts.count ? pts[i + 1] - p : (i > 0 ? p - pts[i - 1] : 1))
            try encoder.encode(
                rgb: pattern(i, width: width, height: height), width: width, height: height,
                timing: FrameTiming(index: i, pts: p, duration: duration)
            )
        }
        try encoder.finish()
    }

    /// Constant-rate timestamps 0, 1, 2, … in a 1/rate time base.
    static func constantPts(_ count: Int) -> [Int64] { (0..<count).map { Int64($0) } }

    /// One decoded frame: its timing, picture type, format and the index its pattern shows.
    struct Frame {
        var timing: FrameTiming
        var pictureType: Character
        var pixelFormat: PixelFormat
        var width: Int
        var height: Int
        var shownIndex: Int
        var isDamaged: Bool
    }

    /// Everything decoded from an input.
    struct Decoded {
        var info: VideoStreamInfo
        var frames: [Frame]
        var packets: [(stream: Int, pts: Int64?, seconds: Double?, data: [UInt8])]
        var skippedPackets: Int
    }

    /// Decodes a whole input (or span).
    static func decode(_ input: MediaInput, span: TimeSpan = .all) throws -> Decoded {
        _ = quiet
        let decoder = try FrameDecoder(input, span: span)
        let converter = PixelConverter(file: input.location)
        var frames: [Frame] = []
        var packets: [(stream: Int, pts: Int64?, seconds: Double?, data: [UInt8])] = []
        while let item = try decoder.next() {
            switch item {
            case .frame(let frame):
                let rgb = try converter.rgb(frame)
                frames.append(Frame(
                    timing: frame.timing, pictureType: frame.pictureType, pixelFormat: frame.pixelFormat,
                    width: frame.width, height: frame.height,
                    shownIndex: readPattern(rgb, width: frame.width, height: frame.height), isDamaged: frame.isDamaged
                ))
            case .packet(let packet):
                packets.append((packet.streamIndex, packet.pts, packet.pts.map { packet.timeBase.seconds($0) }, packet.data))
            }
        }
        return Decoded(info: decoder.video, frames: frames, packets: packets, skippedPackets: decoder.skippedPacketCount)
    }

    /// Decodes `input`, converts each frame to RGB and encodes it (copying the other streams) to `output`.
    @discardableResult
    static func transcode(
        _ input: MediaInput, to output: MediaOutput, span: TimeSpan = .all,
        settings: EncoderSettings = EncoderSettings(), stopAfter: Int? = nil
    ) throws -> (decoder: FrameDecoder, encoder: FrameEncoder) {
        let decoder = try FrameDecoder(input, span: span)
        let encoder = try FrameEncoder(output: output, source: decoder.source, settings: settings)
        let converter = PixelConverter(file: input.location)
        items: while let item = try decoder.next() {
            switch item {
            case .frame(let frame):
                if let stopAfter, frame.index >= stopAfter { break items }
                try encoder.encode(rgb: try converter.rgb(frame), width: frame.width, height: frame.height, timing: frame.timing)
            case .packet(let packet):
                try encoder.write(packet)
            }
        }
        try encoder.finish()
        return (decoder, encoder)
    }
}
