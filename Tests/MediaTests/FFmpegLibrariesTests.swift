import Media
import Testing

@Suite struct FFmpegLibrariesTests {
    @Test func namesEachLibraryItsVersionAndFile() {
        let ffmpeg = FFmpegLibraries.loaded()
        #expect(!ffmpeg.release.isEmpty)
        #expect(ffmpeg.libraries.map(\.name) == ["libavformat", "libavcodec", "libavdevice", "libswscale", "libavutil"])
        for library in ffmpeg.libraries {
            #expect(library.version.split(separator: ".").count == 3, "\(library)")
            #expect(library.file?.contains(library.name) == true, "\(library)")
        }
        #expect(ffmpeg.videoEncoder != nil)
    }
}
