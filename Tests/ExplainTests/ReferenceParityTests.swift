import Core
import Foundation
import Testing
import Engine
import Explain
import TestSupport

/// Every gradient-based method and Eigen-CAM / Eigen-Grad-CAM on every reference case, from the
/// recorded PyTorch activations and gradients (no engine needed).
@Suite struct ReferenceParityTests {
    static let methods: [(manifest: String, method: ExplanationMethod)] = [
        ("gradcam", .gradcam), ("gradcampp", .gradcamPlusPlus), ("xgradcam", .xgradcam), ("hirescam", .hirescam),
        ("gradcam_elementwise", .gradcamElementwise), ("layercam", .layercam),
        ("eigencam", .eigencam), ("eigengradcam", .eigengradcam),
    ]

    @Test func gradientAndEigenMethodsMatchPytorchGradCam() throws {
        guard let directory = ReferenceData.referenceOrSkip("ReferenceParityTests.gradientAndEigenMethodsMatchPytorchGradCam") else { return }
        let cases = try ReferenceCase.load(directory)
        var checked = 0, passed = 0, signRuleAgreed = 0, eigenChecked = 0
        var worstRaw: Float = 0, worstMap: Float = 0, worstMean: Float = 0
        for reference in cases {
            let network = try RecordedNetwork(reference, directory: directory)
            let input = Tensor(shape: [1, 3, 224, 224])
            for layer in reference.layers {
                for (manifestName, method) in Self.methods {
                    guard let files = layer.cams[manifestName] else { continue }
                    let expectedRaw = try NumPyFile.read(path: directory.appendingPathComponent(files.raw).path)
                    let expectedMap = try NumPyFile.read(path: directory.appendingPathComponent(files.map).path)
                    let explainer = try Explainer(network: network, method: method,
                                                  options: ExplainerOptions(layers: [layer.tensor]))
                    var explanation = try #require(try explainer.explain(input).first)
                    #expect(explanation.classIndex == reference.classIndex)
                    if method == .eigencam || method == .eigengradcam {
                        // The SVD sign is arbitrary upstream: compare up to sign, count our rule's agreement.
                        eigenChecked += 1
                        if MapComparison(explanation.raw, expectedRaw).maxRelative <= 1e-3 {
                            signRuleAgreed += 1
                        } else {
                            explanation = try flipped(explanation, method: method, network: network, layer: layer.tensor)
                        }
                    }
                    let raw = MapComparison(explanation.raw, expectedRaw)
                    let map = MapComparison(explanation.map.tensor, expectedMap)
                    let ok = explanation.raw.shape == expectedRaw.shape && explanation.map.tensor.shape == [224, 224]
                        && raw.maxRelative <= 1e-3 && map.maxAbs <= 2e-2 && map.meanAbs <= 2e-3
                    #expect(ok, "\(reference.title) \(layer.name) \(manifestName): raw rel \(raw.maxRelative), map max \(map.maxAbs) mean \(map.meanAbs)")
                    checked += 1
                    if ok { passed += 1 }
                    worstRaw = max(worstRaw, raw.maxRelative)
                    worstMap = max(worstMap, map.maxAbs)
                    worstMean = max(worstMean, map.meanAbs)
                }
            }
        }
        print("ReferenceParityTests: \(passed)/\(checked) maps within tolerance; worst raw rel \(worstRaw), worst map max \(worstMap), worst map mean \(worstMean); Eigen sign rule agreed with LAPACK on \(signRuleAgreed)/\(eigenChecked)")
        #expect(checked == 192, "24 (case, layer) pairs × 8 methods")
    }

    /// The same explanation with the principal projection's sign reversed.
    private func flipped(_ explanation: Explanation, method: ExplanationMethod, network: RecordedNetwork, layer: String) throws -> Explanation {
        let a = try network.activation(layer, in: .init()).slice(0)
        let g = try #require(network.recordedGradients[layer]).slice(0)
        let maps = method == .eigencam ? a : Tensor(shape: a.shape, storage: zip(a.storage, g.storage).map { $0 * $1 })
        let negated = PrincipalProjection.project(maps).storage.map { max(-$0, 0) }
        let raw = Tensor(shape: explanation.raw.shape, storage: negated)
        var result = explanation
        result.raws = [raw]
        result.map = CAMSteps.finalMap(raws: [raw], height: 224, width: 224)
        return result
    }
}
