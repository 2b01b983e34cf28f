import Core
import Foundation
import TestSupport
import Testing

@Suite struct BilinearResamplingTests {
    /// Every case scripts/gen-colormaps resized with cv2.resize(INTER_LINEAR).
    static let cases = [
        "7x7-224x224", "7x7-321x241", "14x14-224x224", "5x3-17x11",
        "1x1-5x3", "1x4-9x1", "9x6-4x5", "14x14-7x7",
    ]

    @Test(arguments: cases) func matchesOpenCV(_ name: String) throws {
        let folder = ReferenceData.packageFile("Tests/CoreTests/Fixtures")
        let input = try NumPyFile.read(path: folder.appendingPathComponent("resize-\(name)-in.npy").path)
        let expected = try NumPyFile.read(path: folder.appendingPathComponent("resize-\(name)-out.npy").path)
        let plan = BilinearResampling(width: input.shape[1], height: input.shape[0],
                                      toWidth: expected.shape[1], toHeight: expected.shape[0])
        let output = plan.resample(input.storage)
        #expect(output.count == expected.count)
        let worst = zip(output, expected.storage).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-5, "\(name): max |swift - cv2| = \(worst)")
    }

    @Test func handComputedHalfPixelCentres() {
        // 2 -> 4 columns: centres at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
        #expect(BilinearResampling(width: 2, height: 1, toWidth: 4, toHeight: 1).resample([0, 1]) == [0, 0.25, 0.75, 1])
        #expect(BilinearResampling(width: 1, height: 2, toWidth: 1, toHeight: 4).resample([0, 1]) == [0, 0.25, 0.75, 1])
        // 4 -> 2 columns samples between pairs.
        #expect(BilinearResampling(width: 4, height: 1, toWidth: 2, toHeight: 1).resample([0, 2, 4, 6]) == [1, 5])
    }

    @Test func handComputedAlignedCorners() {
        let wide = BilinearResampling(width: 2, height: 1, toWidth: 3, toHeight: 1, convention: .alignCorners)
        #expect(wide.resample([0, 1]) == [0, 0.5, 1])
        let tall = BilinearResampling(width: 1, height: 2, toWidth: 1, toHeight: 4, convention: .alignCorners)
        #expect(tall.resample([0, 3]) == [0, 1, 2, 3])
    }

    @Test func sameSizeIsIdentity() {
        let map: [Float] = [0.1, 0.7, 0.3, 0.9, 0.2, 0.4]
        #expect(BilinearResampling(width: 3, height: 2, toWidth: 3, toHeight: 2).resample(map) == map)
    }

    @Test func heatmapsCheckTheirSize() {
        #expect(Heatmap(width: 7, height: 7, values: [Float](repeating: 0, count: 48)) == nil)
        #expect(Heatmap(width: 0, height: 7, values: []) == nil)
        let map = Heatmap(width: 2, height: 1, values: [0, 1])
        #expect(map?.resampled(BilinearResampling(width: 2, height: 1, toWidth: 4, toHeight: 1)).values == [0, 0.25, 0.75, 1])
    }
}
