import Annotate
import Core
import Engine
import Explain
import Foundation
import TestSupport
import Testing

/// The committed transformer cases (`scripts/make-transformer-cases`): tiny ViT, DeiT, Swin and
/// MaxViT models, each exported by both PyTorch exporters, with what PyTorch, onnxruntime and
/// pytorch-grad-cam computed on two real pictures.
struct TransformerCases: Decodable {
    struct Model: Decodable {
        struct Export: Decodable {
            struct Target: Decodable { let tensor: String }
            let exporter: String
            let file: String
            let status: String
            let target_tensor: Target?
        }
        struct TargetLayer: Decodable {
            struct Reshape: Decodable {
                let layout: String
                let tokens_dropped: Int?
                let grid: [Int]?
            }
            let activation: String
            let gradient: String
            let reshape: Reshape
        }
        struct Method: Decodable {
            let status: String
            let raw: String?
            let map: String?
            /// The map before its ReLU: for Eigen-CAM the signed projection (an SVD's sign is arbitrary).
            let pre_relu: String?
        }
        struct Guided: Decodable {
            let status: String
            let file: String?
        }
        let input_size: [Int]
        let logits: String
        let classes: [Int]
        let target_layer: TargetLayer
        let exports: [Export]
        let cams: [String: Method]
        let saliency: String
        let guided_backprop: Guided
    }
    let models: [String: Model]

    static let folder = ReferenceData.packageFile("Tests/Fixtures/Transformers")

    static func load() throws -> TransformerCases {
        try JSONDecoder().decode(TransformerCases.self, from: Data(contentsOf: folder.appendingPathComponent("manifest.json")))
    }

    static func tensor(_ file: String) throws -> Tensor {
        try NumPyFile.read(path: folder.appendingPathComponent(file).path)
    }

    /// Every export with its model, by model name then exporter.
    var exports: [(name: String, model: Model, export: Model.Export)] {
        models.keys.sorted().flatMap { name in models[name]!.exports.map { (name, models[name]!, $0) } }
    }

    /// The method of a case's key (`gradcampp` is `gradcam++`, `_` is `-`).
    static func method(_ key: String) -> ExplanationMethod? {
        ExplanationMethod(rawValue: key == "gradcampp" ? "gradcam++" : key.replacingOccurrences(of: "_", with: "-"))
    }
}

@Suite(.serialized) struct TransformerParityTests {
    /// Loads an export at the cases' input size.
    func network(_ model: TransformerCases.Model, _ export: TransformerCases.Model.Export) throws -> Network {
        try Network(contentsOf: TransformerCases.folder.appendingPathComponent(export.file),
                    inputHeight: model.input_size[0], inputWidth: model.input_size[1])
    }

    /// Logits, the target layer's activation and its gradient, in the layer's own shape.
    @Test func everyExportMatchesPyTorch() throws {
        let cases = try TransformerCases.load()
        let input = try TransformerCases.tensor("input.npy")
        var checked = 0
        for (name, model, export) in cases.exports {
            #expect(export.status == "exported", "\(name) \(export.exporter)")
            let network = try network(model, export)
            let layer = try #require(export.target_tensor).tensor
            let pass = try network.forward(input, retaining: [layer])
            let logits = MapComparison(pass.logits, try TransformerCases.tensor(model.logits))
            #expect(logits.maxAbs <= 1e-3, "\(name) \(export.exporter): logits \(logits.maxAbs)")
            let activation = MapComparison(try #require(pass[layer]), try TransformerCases.tensor(model.target_layer.activation))
            #expect(activation.maxRelative <= 1e-3, "\(name) \(export.exporter): activation \(activation.maxRelative)")
            var seed = Tensor(shape: pass.logits.shape)
            for (row, k) in model.classes.enumerated() { seed.storage[row * pass.logits.shape[1] + k] = 1 }
            let gradient = try #require(try network.backward(pass, seed: seed, to: [layer])[layer])
            let expected = MapComparison(gradient, try TransformerCases.tensor(model.target_layer.gradient))
            #expect(expected.maxRelative <= 1e-3, "\(name) \(export.exporter): gradient \(expected.maxRelative)")
            checked += 1
        }
        #expect(checked == 12)
        print("TransformerParityTests: logits, activations and gradients of \(checked) exports within tolerance of PyTorch")
    }

    /// The target layer's reading is the cases' `reshape_transform`, and the default layer is it.
    @Test func theLayerIsReadAsPytorchGradCAMReadsIt() throws {
        let cases = try TransformerCases.load()
        for (name, model, export) in cases.exports {
            let network = try network(model, export)
            let layer = try #require(export.target_tensor).tensor
            let shape = [2] + (try #require(network.layers.first { $0.name == layer }).shape.dropFirst())
            let reading = GridReading.automatic(shape: shape, inputHeight: model.input_size[0], inputWidth: model.input_size[1])
            let reshape = model.target_layer.reshape
            let expected: GridReading? = switch reshape.layout.lowercased() {
            case "tokens": reshape.grid.map { .tokens(leading: reshape.tokens_dropped ?? 0, height: $0[0], width: $0[1]) }
            case "nhwc": .channelsLast
            default: .channelsFirst
            }
            #expect(reading == expected, "\(name) \(export.exporter) \(layer) \(shape)")
            #expect(EngineNetwork(network).defaultTargetLayer == layer, "\(name) \(export.exporter): default layer")
        }
    }

    /// Every method pytorch-grad-cam ran: the raw map on the grid and the final map, per picture.
    @Test func everyMethodMatchesPytorchGradCAM() throws {
        let cases = try TransformerCases.load()
        let input = try TransformerCases.tensor("input.npy")
        var passed = 0, checked = 0
        for (name, model, export) in cases.exports {
            let network = EngineNetwork(try network(model, export))
            let layer = try #require(export.target_tensor).tensor
            for key in model.cams.keys.sorted() {
                let files = model.cams[key]!
                guard files.status == "ok", let rawFile = files.raw, let mapFile = files.map,
                      let method = TransformerCases.method(key) else { continue }
                let explainer = try Explainer(network: network, method: method, options: ExplainerOptions(layers: [layer]))
                let explanations = try explainer.explain(input)
                let raws = try TransformerCases.tensor(rawFile), maps = try TransformerCases.tensor(mapFile)
                let projections = key.hasPrefix("eigen") ? try files.pre_relu.map(TransformerCases.tensor) : nil
                for (i, explanation) in explanations.enumerated() {
                    #expect(explanation.classIndex == model.classes[i])
                    var expectedRaw = raws.slice(i), mapComparable = true
                    if let projection = projections?.slice(i) {
                        // Eigen-CAM's documented sign rule (PrincipalProjection): the projection's strongest response
                        // positive. The final map is comparable when LAPACK's sign happened to be that one.
                        let (low, high) = (projection.storage.min() ?? 0, projection.storage.max() ?? 0)
                        let sign: Float = abs(low) > abs(high) ? -1 : 1
                        expectedRaw = Tensor(shape: projection.shape, storage: projection.storage.map { max(sign * $0, 0) })
                        mapComparable = sign == 1
                    }
                    let raw = MapComparison(explanation.raw, expectedRaw), map = MapComparison(explanation.map.tensor, maps.slice(i))
                    let ok = raw.maxRelative <= 1e-3 && (!mapComparable || (map.maxAbs <= 2e-2 && map.meanAbs <= 2e-3))
                    #expect(ok, "\(name) \(export.exporter) \(key) image \(i): raw rel \(raw.maxRelative), map max \(map.maxAbs) mean \(map.meanAbs)")
                    checked += 1
                    if ok { passed += 1 }
                }
            }
        }
        #expect(checked > 200)
        print("TransformerParityTests: \(passed)/\(checked) maps within tolerance of pytorch-grad-cam")
    }

    /// Saliency and guided backprop (which, with no `nn.ReLU` on these models' data path, is the plain gradient).
    @Test func inputGradientMapsMatch() throws {
        let cases = try TransformerCases.load()
        let input = try TransformerCases.tensor("input.npy")
        for (name, model, export) in cases.exports {
            let network = EngineNetwork(try network(model, export))
            let saliency = try Explainer(network: network, method: .saliency).explain(input)
            let expected = try TransformerCases.tensor(model.saliency)
            for (i, explanation) in saliency.enumerated() {
                let raw = MapComparison(explanation.raw, expected.slice(i))
                #expect(raw.maxRelative <= 1e-3, "\(name) \(export.exporter) saliency image \(i): \(raw.maxRelative)")
            }
            guard model.guided_backprop.status == "ok", let file = model.guided_backprop.file else { continue }
            let guided = try Explainer(network: network, method: .guidedBackprop).explain(input)
            let hwc = try TransformerCases.tensor(file)
            for (i, explanation) in guided.enumerated() {
                // The reference is HWC; ours is the gradient [3,H,W].
                let image = hwc.slice(i), (height, width) = (image.shape[0], image.shape[1])
                let chw = Tensor(shape: [3, height, width], storage: (0..<(3 * height * width)).map { index in
                    image.storage[(index % (height * width)) * 3 + index / (height * width)]
                })
                let raw = MapComparison(explanation.raw, chw)
                #expect(raw.maxRelative <= 1e-3, "\(name) \(export.exporter) guided backprop image \(i): \(raw.maxRelative)")
            }
        }
    }
}
