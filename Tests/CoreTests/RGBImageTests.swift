import Testing
import Core

@Suite struct RGBImageTests {
    @Test func fillsAndAddressesPixels() {
        var image = RGBImage(width: 3, height: 2, fill: (10, 20, 30))
        image[2, 1] = (1, 2, 3)
        #expect(image[0, 0] == (10, 20, 30))
        #expect(image[2, 1] == (1, 2, 3))
        #expect(image.pixels[(1 * 3 + 2) * 3] == 1)
    }
}
