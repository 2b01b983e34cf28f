import Foundation
import Media
import TestSupport

/// For the tests of several modules: generated clips whose frames show their own index as 8 black or white blocks, and the
/// decoding that reads the index back.
public enum PatternClips {
    /// FFmpeg's own messages would drown the test output.
    public static let quiet: Void = FFmpegLog.setLevel(.quiet)

    /// An RGB picture showing `index` as 8 blocks (4 columns, 2 rows): white for a 1 bit.
    public static func pattern(_ index: Int, width: Int, height: Int) -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let row = min(1, y * 2 / height)
            for x in 0..<width {
                let bit = row * 4 + min(3, x * 4 / width)
                let value: UInt8 = (index >> bit) & 1 == 1 ? 255 : 0
                let i = (y * width + x) * 3
                pixels[i] = value
                pixels[i + 1] = value
                pixels[i + 2] = value
            }
        }
        return pixels
    }

    /// The index a picture shows, from the centre of each block.
    public static func readPattern(_ pixels: [UInt8], width: Int, height: Int) -> Int {
        var index = 0
        for bit in 0..<8 {
            let cx = (bit % 4) * width / 4 + width / 8, cy = (bit / 4) * height / 2 + height / 4
            // The mean of a 5x5 patch (clipped to the picture), so that grain cannot flip a bit.
            var sum = 0, count = 0
            for y in max(0, cy - 2)...min(height - 1, cy + 2) {
                for x in max(0, cx - 2)...min(width - 1, cx + 2) {
                    let i = (y * width + x) * 3
                    sum += Int(pixels[i]) + Int(pixels[i + 1]) + Int(pixels[i + 2])
                    count += 3
                }
            }
            if sum / count > 128 { index |= 1 << bit }
        }
        return index
    }

    /// A pattern clip of `count` frames cut short in transfer: the first `fraction` of its bytes at
    /// `cut` (the whole clip is written beside it, as `whole-` and the name).
    public static func writeCut(_ cut: URL, count: Int, keeping fraction: Double) throws {
        let whole = cut.deletingLastPathComponent().appendingPathComponent("whole-" + cut.lastPathComponent)
        try write(whole, count: count)
        try ReferenceData.cutShort(whole, keeping: fraction, to: cut)
    }

    /// Writes `count` pattern frames at 25 fps (pts 0, 1, 2, … in 1/25 s); `noisy` frames carry
    /// grain that changes every frame, so that they compress poorly and the output grows steadily.
    public static func write(_ url: URL, count: Int, format: String? = nil, width: Int = 64, height: Int = 48, noisy: Bool = false) throws {
        _ = quiet
        let video = VideoStreamInfo(width: width, height: height, timeBase: Rational(1, 25), averageFrameRate: Rational(25, 1))
        let encoder = try FrameEncoder(output: MediaOutput(url.path, format: format), source: SourceDescription(video: video))
        var seed: UInt32 = 12345
        let grain: [UInt8] = (0..<65_521).map { _ in
            seed = seed &* 1_664_525 &+ 1_013_904_223
            return UInt8(seed >> 26)  // 0…63
        }
        for index in 0..<count {
            var pixels = pattern(index % 256, width: width, height: height)
            if noisy {
                let offset = index &* 7_919
                for i in pixels.indices {
                    let noise = grain[(i &+ offset) % grain.count]
                    pixels[i] = pixels[i] > 127 ? pixels[i] - noise : pixels[i] + noise
                }
            }
            try encoder.encode(rgb: pixels, width: width, height: height,
                               timing: FrameTiming(index: index, pts: Int64(index), duration: 1))
        }
        try encoder.finish()
    }

    /// What a file holds: each frame's pts (in microseconds, comparable across time bases) and
    /// shown index, and the other streams' packets.
    public struct Contents {
        public var pts: [Int64] = []
        public var shown: [Int] = []
        public var packets: [(stream: Int, pts: Int64?, data: [UInt8])] = []
    }

    /// Decodes a whole file (or span).
    public static func read(_ input: MediaInput, span: TimeSpan = .all) throws -> Contents {
        _ = quiet
        let decoder = try FrameDecoder(input, span: span)
        let converter = PixelConverter(file: input.location)
        var contents = Contents()
        while let item = try decoder.next() {
            switch item {
            case .frame(let frame):
                contents.pts.append(Int64((frame.seconds * 1_000_000).rounded()))
                contents.shown.append(readPattern(try converter.rgb(frame), width: frame.width, height: frame.height))
            case .packet(let packet):
                contents.packets.append((packet.streamIndex, packet.pts, packet.data))
            }
        }
        return contents
    }
}
