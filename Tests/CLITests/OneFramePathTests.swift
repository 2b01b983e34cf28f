import Core
import Foundation
import Media
import MediaTestSupport
import TestSupport
import Testing

/// `camvid image` is a one-frame video: the same picture explained as a picture and as a
/// one-frame video gives the same map, bit for bit, and the same record.
@Suite(.serialized) struct OneFramePathTests {
    @Test(arguments: [["--method", "gradcam"], ["--method", "layercam", "--fit", "crop"]])
    func aPictureAndItsOneFrameVideoGiveTheSameMap(options: [String]) throws {
        _ = PatternClips.quiet
        let folder = try ReferenceData.temporaryDirectory("camvid-one-frame")
        defer { try? FileManager.default.removeItem(at: folder) }
        // A real picture: frame 100 of the sample clip.
        let decoder = try FrameDecoder(MediaInput(ReferenceData.packageFile("Samples/bigbuckbunny.mp4").path), span: TimeSpan(start: 4))
        var first: DecodedFrame?
        while first == nil, let item = try decoder.next() { if case .frame(let frame) = item { first = frame } }
        let decoded = try #require(first, "the sample has a frame at 4 s")
        let picture = RGBImage(width: decoded.width, height: decoded.height, pixels: try PixelConverter().rgb(decoded))
        let png = folder.appendingPathComponent("picture.png"), video = folder.appendingPathComponent("picture.mkv")
        try PictureFile.write(picture, to: png.path)
        // The same picture as a one-frame lossless video (FFV1, planar RGB).
        let stream = VideoStreamInfo(width: picture.width, height: picture.height, timeBase: Rational(1, 25), averageFrameRate: Rational(25, 1))
        let encoder = try FrameEncoder(output: MediaOutput(video.path), source: SourceDescription(video: stream),
                                       settings: EncoderSettings(codecNames: ["ffv1"], pixelFormat: PixelFormat(name: "gbrp")))
        try encoder.encode(rgb: picture.pixels, width: picture.width, height: picture.height,
                           timing: FrameTiming(index: 0, pts: 0, duration: 1))
        try encoder.finish()
        #expect(try PictureFile.read(video.path) == picture, "the video holds the picture exactly")

        func explain(_ arguments: [String], _ name: String) throws -> (maps: Data, line: String) {
            let cams = folder.appendingPathComponent("\(name).npy"), json = folder.appendingPathComponent("\(name).jsonl")
            let result = try CamvidProcess.run(arguments + ["--cams", cams.path, "--json", json.path] + options)
            #expect(result.status == 0, "\(arguments): \(result.standardError)")
            return (try Data(contentsOf: cams), try String(contentsOf: json, encoding: .utf8))
        }
        let asPicture = try explain(["image", png.path, folder.appendingPathComponent("out.png").path], "image")
        let asVideo = try explain([video.path, folder.appendingPathComponent("out.mkv").path], "video")
        #expect(asPicture.maps.count == 128 + 224 * 224 * 4 || options.contains("crop"))
        #expect(asPicture.maps == asVideo.maps, "the .npy files differ")
        #expect(asPicture.line == asVideo.line)
        #expect(try NumPyFile.read(path: folder.appendingPathComponent("image.npy").path).shape.first == 1)
    }
}
