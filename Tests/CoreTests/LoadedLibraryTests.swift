import Core
import Foundation
import Testing

@Suite struct LoadedLibraryTests {
    /// `/proc` files report size 0; they are read to the end, not one page.
    @Test func readsProcFilesToTheEnd() throws {
        let maps = try #require(ProcFile.text("/proc/self/maps"))
        #expect(maps.utf8.count > 4096)
        #expect(maps.hasSuffix("\n"))
    }

    @Test func namesTheLibraryHoldingAFunction() throws {
        let function: @convention(c) (Double) -> Double = cos
        let file = try #require(LoadedLibrary.file(holding: unsafeBitCast(function, to: UnsafeRawPointer.self)))
        #expect(file.contains("libm"), "\(file)")
        #expect(LoadedLibrary.file(ofLoaded: "libcamvid-nothing.so", defining: "nothing") == nil)
    }
}
