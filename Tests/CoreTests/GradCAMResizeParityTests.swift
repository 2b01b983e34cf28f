import Core
import Foundation
import TestSupport
import Testing

/// The resize on real data: every reference CAM's final map is pytorch-grad-cam's
/// `minMax(relu(resize(minMax(raw), 224x224)))` (scale_cam_image per layer, then again after
/// aggregating the layers), so `BilinearResampling` must reproduce it from the raw map.
@Suite struct GradCAMResizeParityTests {
    /// pytorch-grad-cam's `img - min(img)`, then `/ (1e-7 + max)`, in float32.
    static func minMax(_ values: [Float]) -> [Float] {
        let low = values.min() ?? 0
        let shifted = values.map { $0 - low }
        let high = (shifted.max() ?? 0) + 1e-7
        return shifted.map { $0 / high }
    }

    @Test func referenceMapsAreTheResizedRawMaps() throws {
        guard let reference = ReferenceData.referenceOrSkip("GradCAMResizeParityTests.referenceMapsAreTheResizedRawMaps") else { return }
        let cases = reference.appendingPathComponent("cases")
        let raws = try FileManager.default.contentsOfDirectory(atPath: cases.path)
            .filter { $0.hasSuffix("__raw.npy") }.sorted()
        #expect(!raws.isEmpty)
        var worst: Float = 0
        for name in raws {
            let raw = try NumPyFile.read(path: cases.appendingPathComponent(name).path)
            let expected = try NumPyFile.read(path: cases.appendingPathComponent(name.replacingOccurrences(of: "__raw.npy", with: ".npy")).path)
            let plan = BilinearResampling(width: raw.shape[1], height: raw.shape[0], toWidth: expected.shape[1], toHeight: expected.shape[0])
            let map = Self.minMax(plan.resample(Self.minMax(raw.storage)).map { max($0, 0) })
            let difference = zip(map, expected.storage).map { abs($0 - $1) }.max() ?? .infinity
            worst = max(worst, difference)
            #expect(difference <= 1e-5, "\(name): max |swift - pytorch-grad-cam| = \(difference)")
        }
        print("GradCAMResizeParityTests: \(raws.count) reference maps, max |swift - pytorch-grad-cam| = \(worst)")
    }
}
