import Core
import Foundation
import Testing
import Engine
import TestSupport

/// The detector and segmenter exports of `Tests/Fixtures/Detectors` (made by `scripts/make-detector-cases`: YOLOv8n,
/// YOLO11n and YOLOv5nu by ultralytics' exporter, YOLO26n with its NMS-free head's postprocess (TopK, GatherElements,
/// integer Div and Mod), LR-ASPP by both PyTorch exporters, random weights) run by the engine:
/// outputs against onnxruntime's and PyTorch's, the tensor feeding the head against PyTorch's activation, and the
/// recorded gradients of one output element (d / d input, d / d that tensor) against PyTorch autograd's.
@Suite struct DetectorParityTests {
    static let folder = ReferenceData.packageFile("Tests/Fixtures/Detectors")
    static let models = ["yolov8n", "yolo11n", "yolov5nu", "lraspp_legacy", "lraspp_dynamo", "yolo26n_e2e"]
    static let layouts: [(String, ActivationLayout)] = [("blocks", .channelBlocks), ("nhwc", .channelsLast), ("nchw", .nchw)]
    /// Outputs within 1e-4 and gradients within 1e-3 of the reference's largest magnitude.
    static let outputTolerance: Float = 1e-4
    static let gradientTolerance: Float = 1e-3

    /// The manifest's entry for `name`.
    static func entry(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent("manifest.json"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let models = try #require(root["models"] as? [String: [String: Any]])
        return try #require(models[name], "\(name) is missing from the manifest: run scripts/make-detector-cases")
    }

    static func array(_ file: String) throws -> Tensor {
        try NumPyFile.read(path: folder.appendingPathComponent(file).path)
    }

    @Test(arguments: models)
    func outputsAndGradientsMatchPyTorch(_ name: String) throws {
        let entry = try Self.entry(name)
        #expect(entry["status"] as? String != "failed", "\(name): \(entry["error"] ?? "")")
        let input = try Self.array(try #require(entry["input"] as? String))
        let ort = try Self.array(try #require(entry["output_ort"] as? String))
        let torch = try Self.array(try #require(entry["output_torch"] as? String))
        let outputName = try #require(entry["output_name"] as? String)
        let head = try #require((entry["head_input"] as? [String: Any])?["tensor"] as? [String: Any])
        let tensorName = try #require(head["name"] as? String)
        let tensorValue = try Self.array(try #require(head["value"] as? String))
        let gradients = try #require(entry["gradients"] as? [[String: Any]])
        #expect(!gradients.isEmpty)
        for (layoutName, layout) in Self.layouts {
            let label = "\(name) \(layoutName)"
            let network = try Network(model: try Data(contentsOf: Self.folder.appendingPathComponent(try #require(entry["model"] as? String))),
                                      baseDirectory: nil, inputHeight: input.shape[2], inputWidth: input.shape[3], layout: layout)
            #expect(network.outputName == outputName)
            let pass = try network.forward(input, retaining: [tensorName])
            let output = try #require(pass[outputName])
            let (ortError, torchError) = (ZooCheck.relativeError(output, ort), ZooCheck.relativeError(output, torch))
            let activation = try #require(pass[tensorName])
            let tensorError = ZooCheck.relativeError(activation, tensorValue)
            print("\(label): output vs onnxruntime \(ortError), vs PyTorch \(torchError); \(tensorName) vs PyTorch \(tensorError)")
            #expect(ortError <= Self.outputTolerance, "\(label): output differs from onnxruntime's by \(ortError) (relative)")
            #expect(torchError <= Self.outputTolerance, "\(label): output differs from PyTorch's by \(torchError) (relative)")
            #expect(tensorError <= Self.outputTolerance, "\(label): \(tensorName) differs from PyTorch's by \(tensorError)")
            for gradient in gradients {
                let element = try #require(gradient["index"] as? [Int])
                var seed = Tensor(shape: output.shape)
                let strides = output.shape.indices.map { output.shape[($0 + 1)...].reduce(1, *) }
                seed.storage[zip(element, strides).map(*).reduce(0, +)] = 1
                let result = try network.backward(pass, seed: seed, at: outputName, to: [network.inputName, tensorName])
                var errors: [String] = []
                for (key, target) in [("input_gradient", network.inputName), ("tensor_gradient", tensorName)] {
                    guard let file = gradient[key] as? String else { continue }
                    let expected = try Self.array(file)
                    let actual = try #require(result[target])
                    let error = ZooCheck.relativeError(actual, expected)
                    errors.append("d/d \(target) \(error)")
                    #expect(error <= Self.gradientTolerance,
                            "\(label) \(gradient["label"] ?? ""): d/d \(target) differs from PyTorch's by \(error) (relative)")
                    #expect(expected.storage.contains { $0 != 0 }, "\(label): PyTorch's \(key) is zero: the check would be empty")
                }
                #expect(!errors.isEmpty)
                print("\(label) \(gradient["label"] ?? "") \(element): \(errors.joined(separator: ", "))")
            }
        }
    }

    /// Every committed detector and segmenter file loads, and the manifest lists exactly the models this suite checks.
    @Test func manifestListsEveryModel() throws {
        let data = try Data(contentsOf: Self.folder.appendingPathComponent("manifest.json"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let models = try #require(root["models"] as? [String: Any])
        #expect(Set(models.keys) == Set(Self.models))
    }
}
