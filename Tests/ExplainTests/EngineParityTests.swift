import Annotate
import Core
import Foundation
import Testing
import Engine
import Explain
import TestSupport

/// The network-driven methods through the real engine (`EngineNetwork`), against pytorch-grad-cam.
@Suite(.serialized) struct EngineParityTests {
    struct Fixture {
        let directory: URL
        let cases: [ReferenceCase]
        var networks: [String: EngineNetwork] = [:]

        init?(_ test: String) throws {
            guard let directory = ReferenceData.referenceOrSkip("EngineParityTests.\(test)") else { return nil }
            self.directory = directory
            cases = try ReferenceCase.load(directory)
        }

        mutating func network(_ model: String) throws -> EngineNetwork {
            if let network = networks[model] { return network }
            let network = EngineNetwork(try Network(contentsOf: directory.appendingPathComponent("models/\(model).onnx")))
            networks[model] = network
            return network
        }

        func load(_ path: String) throws -> Tensor {
            try NumPyFile.read(path: directory.appendingPathComponent(path).path)
        }

        /// The case's last (head) layer: the one with Score-CAM and Ablation-CAM maps.
        func headLayer(_ reference: ReferenceCase) throws -> ReferenceCase.Layer {
            try #require(reference.layers.first { $0.cams["scorecam"] != nil })
        }
    }

    func within(_ actual: Explanation, raw expectedRaw: Tensor, map expectedMap: Tensor, rawTolerance: Float = 1e-3) -> (Bool, String) {
        let raw = MapComparison(actual.raw, expectedRaw)
        let map = MapComparison(actual.map.tensor, expectedMap)
        let ok = actual.raw.shape == expectedRaw.shape && actual.map.tensor.shape == expectedMap.shape
            && raw.maxRelative <= rawTolerance && map.maxAbs <= 2e-2 && map.meanAbs <= 2e-3
        return (ok, "raw rel \(raw.maxRelative), map max \(map.maxAbs) mean \(map.meanAbs)")
    }

    @Test func camFindsTheHeadAndMatchesGradCAM() throws {
        guard var fixture = try Fixture("camFindsTheHeadAndMatchesGradCAM") else { return }
        var passed = 0, checked = 0
        for reference in fixture.cases {
            let network = try fixture.network(reference.model)
            let layer = try fixture.headLayer(reference)
            let head = try network.linearHead()
            #expect(head.featureLayer == layer.tensor, "\(reference.model): head input \(head.featureLayer)")
            let input = try fixture.load(reference.input)
            let explanation = try #require(try Explainer(network: network, method: .cam).explain(input).first)
            #expect(explanation.classIndex == reference.classIndex)
            // CAM's weights are W[k]; Grad-CAM's are W[k]/(hw): the same map, raw scaled by hw.
            let files = try #require(layer.cams["gradcam"])
            var scaled = explanation
            let positions = Float(explanation.raw.count)
            scaled.raws = [Tensor(shape: explanation.raw.shape, storage: explanation.raw.storage.map { $0 / positions })]
            let (ok, detail) = within(scaled, raw: try fixture.load(files.raw), map: try fixture.load(files.map))
            #expect(ok, "\(reference.title) cam vs gradcam: \(detail)")
            checked += 1
            if ok { passed += 1 }
        }
        print("EngineParityTests.cam: \(passed)/\(checked) within tolerance of the Grad-CAM reference")
    }

    /// Explains the input of each chosen case at its head layer with `method` and compares with the reference's raw and
    /// map; prints how many were within tolerance.
    func headLayerParity(_ fixture: inout Fixture, _ method: ExplanationMethod, reference key: String, batchSize: Int? = nil,
                         cases include: (ReferenceCase) -> Bool = { _ in true }) throws {
        var passed = 0, checked = 0
        for reference in fixture.cases where include(reference) {
            let network = try fixture.network(reference.model)
            let layer = try fixture.headLayer(reference)
            let files = try #require(layer.cams[key])
            let explainer = try Explainer(network: network, method: method,
                                          options: ExplainerOptions(layers: [layer.tensor], batchSize: batchSize))
            let explanation = try #require(try explainer.explain(try fixture.load(reference.input)).first)
            let (ok, detail) = within(explanation, raw: try fixture.load(files.raw), map: try fixture.load(files.map))
            #expect(ok, "\(reference.title) \(key): \(detail)")
            checked += 1
            if ok { passed += 1 }
        }
        #expect(checked > 0, "no reference case for \(key)")
        print("EngineParityTests.\(key): \(passed)/\(checked) within tolerance")
    }

    @Test func ablationCAMMatchesReference() throws {
        guard var fixture = try Fixture("ablationCAMMatchesReference") else { return }
        try headLayerParity(&fixture, .ablationcam, reference: "ablationcam")
    }

    @Test
    func scoreCAMMatchesReference() throws {
        guard var fixture = try Fixture("scoreCAMMatchesReference") else { return }
        // Score-CAM runs one forward pass per channel (up to 1280): by default one case (MobileNetV2,
        // the cheapest per pass); CAMVID_FULL_SCORECAM=1 checks one picture of every model.
        let full = ProcessInfo.processInfo.environment["CAMVID_FULL_SCORECAM"] == "1"
        if !full { print("EngineParityTests.scorecam: MobileNetV2 only; set CAMVID_FULL_SCORECAM=1 for all models") }
        try headLayerParity(&fixture, .scorecam, reference: "scorecam", batchSize: 32) {
            $0.input.hasSuffix("chelsea.npy") && (full || $0.model == "mobilenet_v2")
        }
    }

    @Test func saliencyAndGuidedBackpropMatchReference() throws {
        guard var fixture = try Fixture("saliencyAndGuidedBackpropMatchReference") else { return }
        var worstSaliency: Float = 0, worstGuided: Float = 0, worstSaliencyMean: Float = 0, worstGuidedMean: Float = 0
        for reference in fixture.cases {
            let network = try fixture.network(reference.model)
            let input = try fixture.load(reference.input)
            let saliency = try #require(try Explainer(network: network, method: .saliency).explain(input).first)
            let expectedSaliency = try fixture.load(reference.saliency)
            let s = MapComparison(saliency.raw, expectedSaliency.reshaped([224, 224]))
            // As in EngineTests: the input gradient crosses every ReLU/Clip/MaxPool tie, where float
            // reordering flips single pixels; the bulk must agree tightly, the worst pixel loosely.
            #expect(saliency.raw.shape == [224, 224] && s.maxRelative < 5e-2 && s.meanRelative < 1e-4,
                    "\(reference.title) saliency: max rel \(s.maxRelative) mean rel \(s.meanRelative)")
            worstSaliency = max(worstSaliency, s.maxRelative)
            worstSaliencyMean = max(worstSaliencyMean, s.meanRelative)

            let guided = try #require(try Explainer(network: network, method: .guidedBackprop).explain(input).first)
            let hwc = try fixture.load(reference.guidedBackprop)
            var chw = [Float](repeating: 0, count: hwc.count)
            for p in 0..<(224 * 224) {
                for c in 0..<3 { chw[c * 224 * 224 + p] = hwc.storage[p * 3 + c] }
            }
            let g = MapComparison(guided.raw, Tensor(shape: [3, 224, 224], storage: chw))
            #expect(guided.raw.shape == [3, 224, 224] && g.maxRelative < 5e-2 && g.meanRelative < 1e-4,
                    "\(reference.title) guided backprop: max rel \(g.maxRelative) mean rel \(g.meanRelative)")
            worstGuided = max(worstGuided, g.maxRelative)
            worstGuidedMean = max(worstGuidedMean, g.meanRelative)
        }
        print("EngineParityTests: over 9 cases, saliency worst rel max \(worstSaliency) mean \(worstSaliencyMean); guided backprop worst rel max \(worstGuided) mean \(worstGuidedMean)")
    }

    @Test func gradCAMEndToEndOnEveryLayer() throws {
        guard var fixture = try Fixture("gradCAMEndToEndOnEveryLayer") else { return }
        var passed = 0, checked = 0
        for reference in fixture.cases {
            let network = try fixture.network(reference.model)
            let input = try fixture.load(reference.input)
            let layers = reference.layers
            // One forward + backward for all layers: explain with several layers, compare each raw.
            let explainer = try Explainer(network: network, method: .gradcam, options: ExplainerOptions(layers: layers.map(\.tensor)))
            let explanation = try #require(try explainer.explain(input).first)
            for (index, layer) in layers.enumerated() {
                let files = try #require(layer.cams["gradcam"])
                var single = explanation
                single.raws = [explanation.raws[index]]
                single.map = CAMSteps.finalMap(raws: single.raws, height: 224, width: 224)
                let (ok, detail) = within(single, raw: try fixture.load(files.raw), map: try fixture.load(files.map))
                #expect(ok, "\(reference.title) \(layer.name) gradcam: \(detail)")
                checked += 1
                if ok { passed += 1 }
            }
        }
        print("EngineParityTests.gradcam end to end: \(passed)/\(checked) within tolerance")
    }

    @Test
    func batchedEqualsOneByOneOnTheEngine() throws {
        guard var fixture = try Fixture("batchedEqualsOneByOneOnTheEngine") else { return }
        let reference = try #require(fixture.cases.first { $0.model == "resnet18" })
        let network = try fixture.network(reference.model)
        let inputs = try ["inputs/chelsea.npy", "inputs/coffee.npy"].map { try fixture.load($0).slice(0) }
        for method in [ExplanationMethod.gradcam, .ablationcam, .guidedGradcam] {
            let explainer = try Explainer(network: network, method: method)
            let batched = try explainer.explain(Tensor.stack(inputs))
            for i in 0..<2 {
                let single = try #require(try explainer.explain(Tensor.stack([inputs[i]])).first)
                #expect(batched[i].classIndex == single.classIndex)
                let raw = MapComparison(batched[i].raw, single.raw), map = MapComparison(batched[i].map.tensor, single.map.tensor)
                #expect(raw.maxRelative <= 1e-4 && map.maxAbs <= 1e-3, "\(method.rawValue) image \(i): raw \(raw.maxRelative) map \(map.maxAbs)")
            }
        }
    }

    /// pytorch-grad-cam's aug_smooth without targets explains each augmented copy's own top-1 class:
    /// on this frame the six copies disagree on their top-1, so the target rule decides the map.
    @Test func augSmoothExplainsEachCopysOwnTopClass() throws {
        guard var fixture = try Fixture("augSmoothExplainsEachCopysOwnTopClass") else { return }
        let reference = try #require(fixture.cases.first { $0.model == "efficientnet_lite0" && $0.input.hasSuffix("bbb_f100.npy") })
        let network = try fixture.network(reference.model)
        let input = try fixture.load(reference.input)
        let layers = [try fixture.headLayer(reference).tensor]
        var tops: Set<Int> = []
        for flip in [false, true] {
            for factor: Float in [0.9, 1, 1.1] {
                var augmented = flip ? CAMSteps.flippedHorizontally(input) : input
                augmented.storage = augmented.storage.map { $0 * factor }
                let logits = network.logits(of: try network.forward(augmented, retaining: []))
                tops.insert(logits.storage.indices.max { logits.storage[$0] < logits.storage[$1] } ?? -1)
            }
        }
        try #require(tops.count > 1, "the fixture no longer has augmented copies with other top-1 classes")
        for method in [ExplanationMethod.gradcam, .layercam] {
            let plain = try Explainer(network: network, method: method, options: ExplainerOptions(layers: layers))
            let smooth = try Explainer(network: network, method: method, options: ExplainerOptions(layers: layers, augSmooth: true))
            let top1 = try #require(try smooth.explain(input, target: .top1).first)
            let fixed = try #require(try smooth.explain(input, target: .index(reference.classIndex)).first)
            #expect(top1.classIndex == reference.classIndex && fixed.classIndex == reference.classIndex)
            let expectedTop1 = try AugSmoothReference.map(input, target: .top1, explainer: plain)
            let expectedFixed = try AugSmoothReference.map(input, target: .index(reference.classIndex), explainer: plain)
            // Ours runs the five augmented copies as one batch: float reordering only.
            let a = MapComparison(top1.map.tensor, expectedTop1), b = MapComparison(fixed.map.tensor, expectedFixed)
            #expect(a.maxAbs <= 1e-4 && b.maxAbs <= 1e-4, "\(method.rawValue): top1 \(a.maxAbs), fixed \(b.maxAbs)")
            #expect(MapComparison(top1.map.tensor, fixed.map.tensor).maxAbs > 1e-2, "\(method.rawValue): the target rule changed nothing")
        }
    }
}
