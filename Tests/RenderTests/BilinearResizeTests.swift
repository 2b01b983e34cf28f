import Testing
import Render

@Suite struct BilinearResizeTests {
    /// Every case scripts/gen-colormaps resized with cv2.resize(INTER_LINEAR).
    static let cases = [
        "7x7-224x224", "7x7-321x241", "14x14-224x224", "5x3-17x11",
        "1x1-5x3", "1x4-9x1", "9x6-4x5", "14x14-7x7",
    ]

    @Test(arguments: cases) func matchesOpenCV(_ name: String) throws {
        let input = try Fixtures.floatArray("resize-\(name)-in.npy")
        let expected = try Fixtures.floatArray("resize-\(name)-out.npy")
        let output = try BilinearResize.resize(
            input.values, width: input.columns, height: input.rows,
            toWidth: expected.columns, toHeight: expected.rows)
        #expect(output.count == expected.values.count)
        let worst = zip(output, expected.values).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-5, "\(name): max |swift - cv2| = \(worst)")
    }

    @Test func handComputedHalfPixelCentres() throws {
        // 2 -> 4 columns: centres at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
        let out = try BilinearResize.resize([0, 1], width: 2, height: 1, toWidth: 4, toHeight: 1)
        #expect(out == [0, 0.25, 0.75, 1])
        let column = try BilinearResize.resize([0, 1], width: 1, height: 2, toWidth: 1, toHeight: 4)
        #expect(column == [0, 0.25, 0.75, 1])
    }

    @Test func sameSizeIsIdentity() throws {
        let map: [Float] = [0.1, 0.7, 0.3, 0.9, 0.2, 0.4]
        #expect(try BilinearResize.resize(map, width: 3, height: 2, toWidth: 3, toHeight: 2) == map)
    }

    @Test func rejectsBadSizes() {
        #expect(throws: RenderError.mapSizeMismatch(width: 7, height: 7, count: 48)) {
            try BilinearResize.resize([Float](repeating: 0, count: 48), width: 7, height: 7, toWidth: 224, toHeight: 224)
        }
        #expect(throws: RenderError.emptySize(width: 224, height: 0)) {
            try BilinearResize.resize([0], width: 1, height: 1, toWidth: 224, toHeight: 0)
        }
    }
}
