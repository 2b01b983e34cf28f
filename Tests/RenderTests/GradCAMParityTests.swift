import Foundation
import Testing
import Render
import TestSupport

/// The resize on real data: every reference CAM's final map is pytorch-grad-cam's
/// `minMax(relu(resize(minMax(raw), 224x224)))` (scale_cam_image per layer, then again after
/// aggregating the layers), so `BilinearResize` must reproduce it from the raw map.
@Suite struct GradCAMParityTests {
    /// pytorch-grad-cam's `img - min(img)`, then `/ (1e-7 + max)`, in float32.
    static func minMax(_ values: [Float]) -> [Float] {
        let low = values.min() ?? 0
        let shifted = values.map { $0 - low }
        let high = (shifted.max() ?? 0) + 1e-7
        return shifted.map { $0 / high }
    }

    @Test func referenceMapsAreTheResizedRawMaps() throws {
        guard let reference = ReferenceData.referenceOrSkip("GradCAMParityTests.referenceMapsAreTheResizedRawMaps") else { return }
        let cases = reference.appendingPathComponent("cases")
        let raws = try FileManager.default.contentsOfDirectory(atPath: cases.path)
            .filter { $0.hasSuffix("__raw.npy") }.sorted()
        #expect(!raws.isEmpty)
        var worst: Float = 0
        for name in raws {
            let raw = try Fixtures.floatArray(at: cases.appendingPathComponent(name))
            let expected = try Fixtures.floatArray(at: cases.appendingPathComponent(name.replacingOccurrences(of: "__raw.npy", with: ".npy")))
            let resized = try BilinearResize.resize(
                Self.minMax(raw.values), width: raw.columns, height: raw.rows,
                toWidth: expected.columns, toHeight: expected.rows)
            let map = Self.minMax(resized.map { max($0, 0) })
            let difference = zip(map, expected.values).map { abs($0 - $1) }.max() ?? .infinity
            worst = max(worst, difference)
            #expect(difference <= 1e-5, "\(name): max |swift - pytorch-grad-cam| = \(difference)")
        }
        print("GradCAMParityTests: \(raws.count) reference maps, max |swift - pytorch-grad-cam| = \(worst)")
    }
}
