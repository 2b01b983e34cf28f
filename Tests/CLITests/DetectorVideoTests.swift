import Annotate
import Core
import Engine
import Explain
import Foundation
import EngineTestSupport
import Media
import TestSupport
import Testing

/// Detectors and segmenters on the command line: each frame of a video run (batched, on a detector exported for a
/// fixed batch of one) carries exactly what the library gives for that decoded frame alone.
@Suite(.serialized) struct DetectorVideoTests {
    static let sample = ReferenceData.packageFile("Samples/bigbuckbunny.mp4")
    static let fixtures = ReferenceData.packageFile("Tests/Fixtures/Detectors")

    /// The first `count` frames of the sample as the video run decodes them, prepared by `preprocessor`.
    static func frames(_ count: Int, _ preprocessor: FramePreprocessor) throws -> [ModelInput] {
        var preprocessor = preprocessor
        let decoder = try FrameDecoder(MediaInput(sample.path))
        let converter = PixelConverter()
        var inputs: [ModelInput] = []
        while inputs.count < count, let item = try decoder.next() {
            guard case .frame(let frame) = item else { continue }
            inputs.append(preprocessor.input(for: RGBImage(width: frame.width, height: frame.height, pixels: try converter.rgb(frame))))
        }
        return inputs
    }

    static func run(_ model: String, _ extra: [String], in folder: URL) throws -> (lines: [[String: Any]], cams: Tensor) {
        let out = folder.appendingPathComponent("out.mp4"), json = folder.appendingPathComponent("frames.jsonl")
        let cams = folder.appendingPathComponent("cams.npy")
        let result = try CamvidProcess.run([sample.path, out.path, "--model", fixtures.appendingPathComponent(model).path,
                                            "--duration", "0.2", "--json", json.path, "--cams", cams.path] + extra)
        #expect(result.status == 0, "\(result.standardError)")
        let lines = try String(contentsOf: json, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        return (lines, try NumPyFile.read(path: cams.path))
    }

    @Test func eachFramesDetectionsAndMapAreTheLibrarysForThatFrame() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-detector-video")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (lines, cams) = try Self.run("yolov8n/model.onnx", ["--batch-size", "4", "--max-detections", "3"], in: folder)
        #expect(lines.count == 5 && cams.shape.first == 5)

        let network = try Network(contentsOf: Self.fixtures.appendingPathComponent("yolov8n/model.onnx"))
        #expect(!network.runsBatch(4), "the fixture is exported for a batch of one, as ultralytics exports by default")
        let explainer = try Explainer(network: EngineNetwork(network), method: .gradcam)
        let target = DetectionTarget(head: .anchorFree, classes: 10, limit: 3)
        let inputs = try Self.frames(5, FramePreprocessor(inputWidth: 128, inputHeight: 128, fit: .letterbox, normalization: .unscaled))
        var boxes = 0
        for (i, input) in inputs.enumerated() {
            let explanations = try explainer.explanations(of: input.tensor, for: [target])[0]
            let recorded = try #require(lines[i]["detections"] as? [[String: Any]], "frame \(i) has no detections key")
            #expect(recorded.count == explanations.count && explanations.count == 3, "frame \(i)")
            for (explanation, entry) in zip(explanations, recorded) {
                let detection = try #require(explanation.detection)
                let (x1, y1) = input.geometry.framePoint(x: Double(detection.x1), y: Double(detection.y1))
                let (x2, y2) = input.geometry.framePoint(x: Double(detection.x2), y: Double(detection.y2))
                let box = try #require(entry["box"] as? [String: Double])
                let expected = [max(x1, 0), max(y1, 0), min(x2, 1280), min(y2, 720)]
                let written = [box["x1"] ?? -1, box["y1"] ?? -1, box["x2"] ?? -1, box["y2"] ?? -1]
                #expect(zip(expected, written).allSatisfy { abs($0 - $1) < 1e-6 }, "frame \(i): \(written) vs \(expected)")
                #expect(entry["anchor"] as? Int == detection.anchor)
                #expect(abs((entry["score"] as? Double ?? 0) - Double(detection.score)) < 1e-6)
                #expect((entry["class"] as? [String: Any])?["index"] as? Int == detection.classIndex)
                boxes += 1
            }
            let combined = Heatmap.renormalisedInBoxes(explanations.map { ($0.map, $0.detection!) }, width: 128, height: 128)
            let map = try #require(input.geometry.frameMap(combined))
            let written = cams.slice(i)
            #expect(written.shape == [map.height, map.width])
            let worst = zip(written.storage, map.values).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 1e-5, "frame \(i): the video's map differs from the library's by \(worst)")
        }
        #expect(boxes == 15)
        // The letterbox: a 16:9 frame in a square input keeps its aspect, so the map drawn is 128 x 72.
        #expect(cams.shape == [5, 72, 128])
    }

    /// An NMS-free export (YOLO26n's end-to-end head, output `[1, K, 6]`, its postprocess run by the engine):
    /// `camvid layers` recognises it, and each frame's detections are its output's rows in order, those scoring above
    /// `--confidence`, up to `--max-detections`, each explained.
    @Test func anNMSFreeDetectorsDetectionsAreItsOutputRows() throws {
        let model = Self.fixtures.appendingPathComponent("yolo26n_e2e/model.onnx")
        let layers = try CamvidProcess.run(["layers", "--model", model.path])
        #expect(layers.standardOutput.contains("the model is a YOLO detector (nms-free head, classes not named)"), "\(layers.standardOutput)")
        let folder = try ReferenceData.temporaryDirectory("camvid-nms-free-video")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (lines, cams) = try Self.run("yolo26n_e2e/model.onnx", ["--max-detections", "3", "--confidence", "0.5"], in: folder)
        #expect(lines.count == 5 && cams.shape == [5, 36, 64])
        let network = try Network(contentsOf: model)
        var boxes = 0
        for (i, input) in try Self.frames(5, FramePreprocessor(inputWidth: 64, inputHeight: 64, fit: .letterbox, normalization: .unscaled)).enumerated() {
            let rows = try network.forward(input.tensor).logits
            let expected = Array((0..<rows.shape[1]).filter { rows.storage[$0 * 6 + 4] > 0.5 }.prefix(3))
            let recorded = try #require(lines[i]["detections"] as? [[String: Any]], "frame \(i) has no detections key")
            #expect(recorded.map { $0["anchor"] as? Int } == expected.map { $0 }, "frame \(i)")
            for (entry, row) in zip(recorded, expected) {
                #expect(abs((entry["score"] as? Double ?? 0) - Double(rows.storage[row * 6 + 4])) < 1e-6)
                #expect((entry["class"] as? [String: Any])?["index"] as? Int == Int(rows.storage[row * 6 + 5]))
                #expect(entry["peak"] is [String: Double], "frame \(i) row \(row) is not explained")
                boxes += 1
            }
        }
        #expect(boxes > 0)
    }

    @Test func aSegmentersFrameExplainsItsLargestClassRegion() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-segmenter-video")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (lines, cams) = try Self.run("lraspp_legacy/model.onnx", ["--batch-size", "2"], in: folder)
        #expect(lines.count == 5 && cams.shape == [5, 64, 96])
        let network = try Network(contentsOf: Self.fixtures.appendingPathComponent("lraspp_legacy/model.onnx"))
        let explainer = try Explainer(network: EngineNetwork(network), method: .gradcam)
        let inputs = try Self.frames(5, FramePreprocessor(inputWidth: 96, inputHeight: 64))
        for (i, input) in inputs.enumerated() {
            let explanation = try #require(try explainer.explanations(of: input.tensor, for: [SemanticSegmentationTarget(category: .top1)])[0].first)
            #expect((lines[i]["class"] as? [String: Any])?["index"] as? Int == explanation.classIndex)
            #expect(lines[i]["detections"] == nil)
            let worst = zip(cams.slice(i).storage, explanation.map.values).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 1e-5, "frame \(i): \(worst)")
            #expect(!explanation.target.elements.isEmpty)
        }
    }

    /// A detector of 80 classes without names in its metadata is labelled with COCO's (in the records and on the boxes).
    @Test func anEightyClassDetectorWithoutNamesGetsCOCOs() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-coco-names")
        defer { try? FileManager.default.removeItem(at: folder) }
        // An anchor-free head [1, 4 + 80, 84] over a 64 x 64 input: one strided convolution per level (8, 16, 32),
        // flattened and joined along the anchors, then a sigmoid.
        var builder = ONNXModelBuilder(opset: 17, inputShape: [1, 3, 64, 64])
        var levels: [String] = []
        for stride in [8, 16, 32] {
            let count = 84 * 3 * stride * stride
            builder.addInitializer("w\(stride)", Tensor(shape: [84, 3, stride, stride], storage: (0..<count).map { Float(($0 * 37) % 23) / 230 - 0.05 }))
            builder.addNode("Conv", inputs: ["input", "w\(stride)"], outputs: ["c\(stride)"], attributes: ["strides": .ints([stride, stride])])
            builder.addInitializer("shape\(stride)", shape: [3], int64: [1, 84, -1])
            builder.addNode("Reshape", inputs: ["c\(stride)", "shape\(stride)"], outputs: ["r\(stride)"])
            levels.append("r\(stride)")
        }
        builder.addNode("Concat", inputs: levels, outputs: ["joined"], attributes: ["axis": .int(2)])
        builder.addNode("Sigmoid", inputs: ["joined"], outputs: ["output0"])
        builder.addOutput("output0")
        let model = folder.appendingPathComponent("coco.onnx"), json = folder.appendingPathComponent("picture.jsonl")
        try builder.serialized().write(to: model)
        let layers = try CamvidProcess.run(["layers", "--model", model.path])
        #expect(layers.standardOutput.contains("the model is a YOLO detector (anchor-free head, 80 classes)"), "\(layers.standardOutput)")
        let result = try CamvidProcess.run(["image", ReferenceData.packageFile("Tests/Fixtures/Transformers/chelsea.png").path,
                                            folder.appendingPathComponent("out.png").path, "--model", model.path,
                                            "--confidence", "0", "--max-detections", "80", "--json", json.path])
        #expect(result.status == 0, "\(result.standardError)")
        let line = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        let detections = try #require(line["detections"] as? [[String: Any]])
        #expect(!detections.isEmpty)
        for detection in detections {
            let entry = try #require(detection["class"] as? [String: Any])
            let index = try #require(entry["index"] as? Int)
            #expect(entry["name"] as? String == ClassLabels.coco80.names[index])
        }
        #expect(ClassLabels.coco80.names.count == 80 && ClassLabels.coco80.names[0] == "person" && ClassLabels.coco80.names[79] == "toothbrush")
    }

    /// `--metrics` on a segmenter scores its map by its target (the class's scores over its region), the perturbed
    /// inputs run one at a time on a graph whose constant resize keeps one row: pytorch-grad-cam's drop, by hand.
    @Test func aSegmentersMetricsScoreItsTarget() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-segmenter-metrics")
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("out.mp4"), json = folder.appendingPathComponent("frames.jsonl")
        let model = Self.fixtures.appendingPathComponent("lraspp_dynamo/model.onnx")
        let result = try CamvidProcess.run([Self.sample.path, out.path, "--model", model.path, "--duration", "0.08",
                                            "--batch-size", "2", "--metrics", "drop", "--json", json.path])
        #expect(result.status == 0, "\(result.standardError)")
        let lines = try String(contentsOf: json, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        let network = try Network(contentsOf: model)
        #expect(!network.runsBatch(2), "the fixture's constant resize keeps one row")
        let explainer = try Explainer(network: EngineNetwork(network), method: .gradcam)
        let inputs = try Self.frames(lines.count, FramePreprocessor(inputWidth: 96, inputHeight: 64))
        #expect(lines.count == 2)
        for (i, input) in inputs.enumerated() {
            let explanation = try #require(try explainer.explanations(of: input.tensor, for: [SemanticSegmentationTarget(category: .top1)])[0].first)
            let before = explanation.score
            var scaled = input.tensor
            let plane = 96 * 64
            for p in scaled.storage.indices { scaled.storage[p] *= explanation.map.values[p % plane] }
            let after = try explanation.target.scores(ofRows: network.forward(scaled).logits)[0]
            let written = try #require((lines[i]["metrics"] as? [String: Double])?["drop"], "frame \(i): \(lines[i])")
            let expected = Double(max(before - after, 0))
            #expect(abs(written - expected) <= 1e-4 * max(1, abs(expected)), "frame \(i): drop \(written), by hand \(expected)")
        }
    }
}
