import Core
import Render
import Testing

@Suite struct DetectionBoxTests {
    /// A box is outlined in its class's colour, inside its edges, clipped to the picture; its label sits on its top edge
    /// (inside the picture when the box touches the top) on a box of the same colour; the inside is untouched.
    @Test func boxesAreOutlinedInTheirClassColourWithTheirLabel() {
        var image = RGBImage(width: 64, height: 48, pixels: [UInt8](repeating: 40, count: 64 * 48 * 3))
        let colour = DetectionBox.colour(of: 2)
        image.drawDetections([DetectionBox(rect: PixelRect(x: 10, y: 30, width: 20, height: 10), label: "a 0.50", classIndex: 2)])
        func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(image.pixels[((y * 64 + x) * 3)..<((y * 64 + x) * 3 + 3)]) }
        #expect(pixel(10, 35) == colour && pixel(29, 35) == colour && pixel(20, 39) == colour, "the edges")
        #expect(pixel(20, 35) == [40, 40, 40], "the inside")
        #expect(pixel(31, 35) == [40, 40, 40], "outside")
        // The label's box ends on the box's top edge and starts at its left: its background is the class colour.
        #expect(pixel(10, 29) == colour && pixel(9, 29) == [40, 40, 40])
        let labelRows = (0..<30).filter { y in (10..<60).contains { x in pixel(x, y) == [255, 255, 255] } }
        #expect(!labelRows.isEmpty && labelRows.allSatisfy { $0 < 30 }, "white text above the box")
        // Clipped: a box past the picture's right and bottom edges draws only the edges inside.
        image.drawDetections([DetectionBox(rect: PixelRect(x: 50, y: 40, width: 30, height: 30), label: "", classIndex: 0)])
        #expect(pixel(50, 45) == DetectionBox.colour(of: 0) && pixel(63, 45) != DetectionBox.colour(of: 0))
        #expect(DetectionBox.colour(of: 20) == DetectionBox.colour(of: 0) && DetectionBox.colour(of: -1) == DetectionBox.colour(of: 19))
    }
}
