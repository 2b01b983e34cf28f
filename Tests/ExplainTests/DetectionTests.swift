import Core
import Explain
import Foundation
import Testing
import TestSupport

/// Box decoding and non-maximum suppression equal ultralytics' own on the committed detectors' raw outputs
/// (`scripts/make-nms-cases`).
@Suite struct DetectionTests {
    @Test(arguments: ["yolov8n", "yolo11n", "yolov5nu"])
    func suppressionMatchesUltralytics(model: String) throws {
        let folder = ReferenceData.packageFile("Tests/Fixtures/Detectors/\(model)")
        let output = try NumPyFile.read(path: folder.appendingPathComponent("output_ort.npy").path)
        let expected = try NumPyFile.read(path: folder.appendingPathComponent("nms.npy").path)
        let detections = try #require(try NonMaximumSuppression().detections(anchorFreeHead: output).first)
        #expect(detections.count == expected.shape[0], "\(model): \(detections.count) kept, ultralytics \(expected.shape[0])")
        #expect(detections.count > 10 && detections.count < output.shape[2], "\(model): suppression must matter")
        for (i, detection) in detections.prefix(expected.shape[0]).enumerated() {
            let row = Array(expected.storage[(i * 6)..<(i * 6 + 6)])
            let box = [detection.x1, detection.y1, detection.x2, detection.y2]
            #expect(zip(box, row.prefix(4)).allSatisfy { abs($0 - $1) <= 1e-3 }, "\(model) #\(i): \(box) vs \(row)")
            #expect(abs(detection.score - row[4]) <= 1e-6 && detection.classIndex == Int(row[5]), "\(model) #\(i)")
        }
    }

    @Test func aClassifierOutputIsNotADetectorOutput() {
        #expect(throws: ExplainError.self) { try NonMaximumSuppression().detections(anchorFreeHead: Tensor(shape: [1, 1000])) }
    }
}
