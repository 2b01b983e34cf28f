import Annotate
import Core
import Engine
import Explain
import Foundation
import TestSupport
import Testing

/// Every CAM method on the committed detector and segmenter graphs (`scripts/make-detector-cases`) against
/// pytorch-grad-cam on the same PyTorch models: YOLO at the head's finest and coarsest inputs (P3 and P5) with an
/// element target (a class score at one anchor), LR-ASPP at its backbone's output with `SemanticSegmentationTarget`.
@Suite struct DetectorMethodParityTests {
    static let folder = ReferenceData.packageFile("Tests/Fixtures/Detectors")

    struct Manifest: Decodable {
        struct Model: Decodable {
            struct Methods: Decodable {
                struct Target: Decodable {
                    let kind: String
                    let index: [Int]?
                    let `class`: Int
                }
                struct Layer: Decodable {
                    struct Method: Decodable {
                        let status: String
                        let raw: String?
                        let map: String?
                        let pre_relu: String?
                    }
                    let tensor: String?
                    let cams: [String: Method]
                }
                let target: Target
                let layers: [String: Layer]
            }
            let model: String
            let input: String
            let output_shape: [Int]
            let methods: Methods?
        }
        let models: [String: Model]
    }

    static func tensor(_ file: String) throws -> Tensor {
        try NumPyFile.read(path: folder.appendingPathComponent(file).path)
    }

    @Test(arguments: ["yolov8n", "yolo11n", "yolov5nu", "lraspp_legacy", "lraspp_dynamo"])
    func everyMethodMatchesPytorchGradCAM(_ name: String) throws {
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: Self.folder.appendingPathComponent("manifest.json")))
        let model = try #require(manifest.models[name])
        let methods = try #require(model.methods, "\(name): no method maps; run scripts/make-detector-cases")
        let network = EngineNetwork(try Network(contentsOf: Self.folder.appendingPathComponent(model.model)))
        let input = try Self.tensor(model.input)
        let target: any ExplanationTarget
        switch methods.target.kind {
        case "element":
            let index = try #require(methods.target.index)
            target = OutputTarget(element: index[0] * model.output_shape[2] + index[1], classIndex: methods.target.class)
        default:
            target = SemanticSegmentationTarget(category: .index(methods.target.class))
        }
        var checked = 0, positive = 0
        for (key, layer) in methods.layers.sorted(by: { $0.key < $1.key }) {
            let tensor = try #require(layer.tensor, "\(name) \(key): the layer was not found in the ONNX graph")
            for (methodName, files) in layer.cams.sorted(by: { $0.key < $1.key }) {
                #expect(files.status == "ok", "\(name) \(key) \(methodName): pytorch-grad-cam failed")
                guard let rawFile = files.raw, let mapFile = files.map,
                      let method = TransformerCases.method(methodName) else { continue }
                let explainer = try Explainer(network: network, method: method, options: ExplainerOptions(layers: [tensor]))
                let explanation = try #require(try explainer.explanations(of: input, for: [target]).first?.first)
                #expect(explanation.classIndex == methods.target.class)
                var expectedRaw = try Self.tensor(rawFile).reshaped(explanation.raw.shape)
                var mapComparable = true
                if let projection = try files.pre_relu.map(Self.tensor) {
                    // The documented sign rule of PrincipalProjection: the strongest response positive.
                    let (low, high) = (projection.storage.min() ?? 0, projection.storage.max() ?? 0)
                    let sign: Float = abs(low) > abs(high) ? -1 : 1
                    expectedRaw = Tensor(shape: explanation.raw.shape, storage: projection.storage.map { max(sign * $0, 0) })
                    mapComparable = sign == 1
                }
                let expectedMap = try Self.tensor(mapFile).reshaped(explanation.map.tensor.shape)
                let raw = MapComparison(explanation.raw, expectedRaw), map = MapComparison(explanation.map.tensor, expectedMap)
                // The final maps are stored as float16 (2.5e-4 of rounding); the tolerances are the transformer cases'.
                #expect(raw.maxRelative <= 1e-3 && (!mapComparable || (map.maxAbs <= 2e-2 && map.meanAbs <= 2e-3)),
                        "\(name) \(key) \(methodName): raw rel \(raw.maxRelative), map max \(map.maxAbs) mean \(map.meanAbs)")
                checked += 1
                if expectedRaw.storage.contains(where: { $0 > 0 }) { positive += 1 }
            }
        }
        #expect(checked == 10 * methods.layers.count, "\(name): \(checked) maps compared")
        #expect(positive >= checked - 1, "\(name): only \(positive) of \(checked) reference maps are not all zero")
    }
}
