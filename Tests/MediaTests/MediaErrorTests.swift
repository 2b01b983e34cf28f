import Testing
import Media

@Suite struct MediaErrorTests {
    @Test func namesFileAndFrame() {
        let error = MediaError(file: "in.mp4", frame: 12, reason: "corrupt packet")
        #expect(error.description == "in.mp4: frame 12: corrupt packet")
    }

    @Test func usesFFmpegMessages() {
        #expect(FFmpegErrorText.message(for: FFmpegErrorText.endOfFile) == "End of file")
    }
}
