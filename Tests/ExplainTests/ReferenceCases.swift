import Core
import Foundation
import Engine
import Explain

/// One (model, input) entry of ../shared/reference/manifest.json.
struct ReferenceCase {
    struct Layer {
        let name: String
        let tensor: String
        let activation: String
        let gradient: String
        /// Method name (manifest spelling) → (raw path, map path).
        let cams: [String: (raw: String, map: String)]
    }

    let model: String
    let input: String
    let classIndex: Int
    let logits: String
    let layers: [Layer]
    let saliency: String
    let guidedBackprop: String

    var title: String { "\(model)/\((input as NSString).lastPathComponent)" }

    static func load(_ directory: URL) throws -> [ReferenceCase] {
        let data = try Data(contentsOf: directory.appendingPathComponent("manifest.json"))
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let cases = root["cases"] as? [[String: Any]] else { throw ManifestError() }
        return try cases.map { entry in
            guard let model = entry["model"] as? String, let input = entry["input"] as? String,
                  let classIndex = entry["class"] as? Int, let logits = entry["logits"] as? String,
                  let layers = entry["layers"] as? [String: [String: Any]],
                  let saliency = entry["saliency"] as? String, let guided = entry["guided_backprop"] as? String
            else { throw ManifestError() }
            let parsed = try layers.keys.sorted().map { name -> Layer in
                guard let layer = layers[name], let tensor = layer["tensor"] as? String,
                      let activation = layer["activation"] as? String, let gradient = layer["gradient"] as? String,
                      let cams = layer["cams"] as? [String: [String: String]] else { throw ManifestError() }
                var table: [String: (raw: String, map: String)] = [:]
                for (method, files) in cams {
                    guard let raw = files["raw"], let map = files["map"] else { throw ManifestError() }
                    table[method] = (raw, map)
                }
                return Layer(name: name, tensor: tensor, activation: activation, gradient: gradient, cams: table)
            }
            return ReferenceCase(model: model, input: input, classIndex: classIndex, logits: logits, layers: parsed,
                                 saliency: saliency, guidedBackprop: guided)
        }
    }

    struct ManifestError: Error {}
}

/// A network that replays the reference activations, gradients and logits of one case, so the
/// whole `Explainer` path runs on PyTorch's numbers without the engine.
struct RecordedNetwork: ExplainableNetwork {
    struct Pass {}
    enum Failure: Error { case notRecorded(String) }

    let logitValues: Tensor
    let classIndex: Int
    let activations: [String: Tensor]
    let recordedGradients: [String: Tensor]
    let inputShape: [Int]

    init(_ reference: ReferenceCase, directory: URL) throws {
        func load(_ path: String) throws -> Tensor {
            try NumPyFile.read(path: directory.appendingPathComponent(path).path)
        }
        logitValues = try load(reference.logits)
        classIndex = reference.classIndex
        var activations: [String: Tensor] = [:], gradients: [String: Tensor] = [:]
        for layer in reference.layers {
            activations[layer.tensor] = try load(layer.activation)
            gradients[layer.tensor] = try load(layer.gradient)
        }
        self.activations = activations
        recordedGradients = gradients
        inputShape = [1, 3, 224, 224]
    }

    var inputName: String { "input" }
    var defaultTargetLayer: String { activations.keys.sorted()[0] }

    func forward(_ input: Tensor, retaining names: Set<String>) throws -> Pass {
        guard input.shape == inputShape else { throw Failure.notRecorded("input \(input.shape)") }
        return Pass()
    }

    func logits(of pass: Pass) -> Tensor { logitValues }

    func activation(_ name: String, in pass: Pass) throws -> Tensor {
        guard let value = activations[name] else { throw Failure.notRecorded(name) }
        return value
    }

    func gradients(of pass: Pass, seed: Tensor, withRespectTo names: Set<String>, rules: GradientRules) throws -> [String: Tensor] {
        // Only d logit[class] was recorded: the seed must be that one-hot row.
        var expected = Tensor(shape: logitValues.shape)
        expected.storage[classIndex] = 1
        guard seed == expected, rules == .standard else { throw Failure.notRecorded("seed or rule") }
        return try Dictionary(uniqueKeysWithValues: names.map { name in
            guard let g = recordedGradients[name] else { throw Failure.notRecorded(name) }
            return (name, g)
        })
    }

    func logits(of pass: Pass, image: Int, replacing name: String, with value: Tensor) throws -> Tensor {
        throw Failure.notRecorded("re-run")
    }

    func linearHead() throws -> LinearHead {
        throw ExplainError.noLinearHead("a recording has no graph")
    }
}

/// How far one map is from its reference.
struct MapComparison {
    let maxAbs: Float
    let meanAbs: Float
    let maxRelative: Float
    let meanRelative: Float

    init(_ actual: Tensor, _ expected: Tensor) {
        var worst: Float = 0, total: Double = 0
        for i in expected.storage.indices {
            let difference = abs(actual.storage[i] - expected.storage[i])
            worst = max(worst, difference)
            total += Double(difference)
        }
        maxAbs = worst
        meanAbs = Float(total / Double(max(expected.count, 1)))
        let scale = expected.storage.map(abs).max() ?? 0
        maxRelative = scale > 0 ? worst / scale : worst
        meanRelative = scale > 0 ? meanAbs / scale : meanAbs
    }
}
