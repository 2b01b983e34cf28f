import Foundation
import Media
import Testing
import TestSupport

/// Throughput numbers for the report; runs only with CAMVID_MEDIA_BENCH=1 and asserts no times.
@Suite struct ThroughputTests {
    static var enabled: Bool { ProcessInfo.processInfo.environment["CAMVID_MEDIA_BENCH"] == "1" }

    /// CPU seconds of the whole process (all threads) spent in `body`: on a shared machine
    /// this, not the wall clock, gives frames per core-second.
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        func now() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        }
        let start = now()
        try body()
        return now() - start
    }

    @Test func sampleClipDecodeConvertEncode() throws {
        guard Self.enabled else {
            print("SKIPPED sampleClipDecodeConvertEncode: set CAMVID_MEDIA_BENCH=1 to measure")
            return
        }
        FFmpegLog.setLevel(.error)
        let sample = ReferenceData.packageFile("Samples/bigbuckbunny.mp4").path
        let dir = try ReferenceData.temporaryDirectory("media-bench")
        defer { try? FileManager.default.removeItem(at: dir) }
        var frames = 0, size = ""
        let decodeOnly = try Self.seconds {
            let decoder = try FrameDecoder(MediaInput(sample))
            size = "\(decoder.video.width)x\(decoder.video.height)"
            while let item = try decoder.next() { if case .frame = item { frames += 1 } }
        }
        let decodeRGB = try Self.seconds {
            let decoder = try FrameDecoder(MediaInput(sample))
            let converter = PixelConverter()
            while let item = try decoder.next() { if case .frame(let f) = item { _ = try converter.rgb(f) } }
        }
        let full = try Self.seconds {
            try Clips.transcode(MediaInput(sample), to: MediaOutput(dir.appendingPathComponent("out.mp4").path))
        }
        #expect(frames == 132)
        print("BENCH (frames per CPU-second) sample \(size), \(frames) frames: decode \(Int(Double(frames) / decodeOnly)) fps, decode+RGB \(Int(Double(frames) / decodeRGB)) fps, decode+RGB+encode (libx264 veryfast crf 23, audio copy) \(Int(Double(frames) / full)) fps")
    }

    @Test func rgbConversionAt720p() throws {
        guard Self.enabled else {
            print("SKIPPED rgbConversionAt720p: set CAMVID_MEDIA_BENCH=1 to measure")
            return
        }
        FFmpegLog.setLevel(.error)
        let dir = try ReferenceData.temporaryDirectory("media-bench720")
        defer { try? FileManager.default.removeItem(at: dir) }
        let clip = dir.appendingPathComponent("720p.mkv")
        let input = MediaInput("testsrc2=size=1280x720:rate=30", format: "lavfi")
        try Clips.transcode(input, to: MediaOutput(clip.path), span: TimeSpan(duration: 4), settings: EncoderSettings(threads: 1))
        let decoder = try FrameDecoder(MediaInput(clip.path), settings: DecoderSettings(threads: 1))
        var frames: [DecodedFrame] = []
        while let item = try decoder.next() { if case .frame(let f) = item { frames.append(f) } }
        let converter = PixelConverter()
        _ = try converter.rgb(frames[0])
        _ = try converter.rgb(frames[0], width: 224, height: 224)
        let toRGB = try Self.seconds { for f in frames { _ = try converter.rgb(f) } }
        let toNetwork = try Self.seconds { for f in frames { _ = try converter.rgb(f, width: 224, height: 224) } }
        let rgb = try frames.map { try converter.rgb($0) }
        let encodeOnly = try Self.seconds {
            let encoder = try FrameEncoder(output: MediaOutput(dir.appendingPathComponent("enc.mkv").path), source: decoder.source, settings: EncoderSettings(threads: 1))
            for (f, pixels) in zip(frames, rgb) { try encoder.encode(rgb: pixels, width: 1280, height: 720, timing: f.timing) }
            try encoder.finish()
        }
        let convertOnly = try Self.seconds {
            // The rawvideo "encoder" only copies: this times the RGB to yuv420p conversion.
            let encoder = try FrameEncoder(
                output: MediaOutput(dir.appendingPathComponent("raw.nut").path), source: decoder.source,
                settings: EncoderSettings(codecNames: ["rawvideo"], pixelFormat: .yuv420p)
            )
            for (f, pixels) in zip(frames, rgb) { try encoder.encode(rgb: pixels, width: 1280, height: 720, timing: f.timing) }
            try encoder.finish()
        }
        let n = Double(frames.count)
        print("BENCH (frames per CPU-second) 720p yuv420p, \(frames.count) frames, one thread: to RGB24 \(Int(n / toRGB)) fps, to 224x224 RGB (area) \(Int(n / toNetwork)) fps, RGB→yuv420p (+ rawvideo write) \(Int(n / convertOnly)) fps, RGB→yuv420p+libx264 veryfast \(Int(n / encodeOnly)) fps")
    }
}
