import Core
import Explain
import Foundation
import Testing

/// The analytic network, remembering the gradient seeds the explainer sends it.
private final class SeedRecordingNetwork: ExplainableNetwork, @unchecked Sendable {
    let base = AnalyticNetwork()
    private(set) var seeds: [Tensor] = []

    var inputName: String { base.inputName }
    var defaultTargetLayer: String { base.defaultTargetLayer }
    func forward(_ input: Tensor, retaining names: Set<String>) throws -> AnalyticNetwork.Pass { try base.forward(input, retaining: names) }
    func logits(of pass: AnalyticNetwork.Pass) -> Tensor { base.logits(of: pass) }
    func activation(_ name: String, in pass: AnalyticNetwork.Pass) throws -> Tensor { try base.activation(name, in: pass) }
    func gradients(of pass: AnalyticNetwork.Pass, seed: Tensor, withRespectTo names: Set<String>, rules: GradientRules) throws -> [String: Tensor] {
        seeds.append(seed)
        return try base.gradients(of: pass, seed: seed, withRespectTo: names, rules: rules)
    }
    func logits(of pass: AnalyticNetwork.Pass, image: Int, replacing name: String, with value: Tensor) throws -> Tensor {
        try base.logits(of: pass, image: image, replacing: name, with: value)
    }
    func linearHead() throws -> LinearHead { try base.linearHead() }
}

/// A target resolving to a fixed list of scores, as a detector's does.
private struct FixedScores: ExplanationTarget {
    let targets: [OutputTarget]
    func resolve(_ output: Tensor, labels: ClassLabels) throws -> [OutputTarget] { targets }
}

@Suite struct OutputTargetTests {
    private func images(_ count: Int) -> Tensor {
        let size = AnalyticNetwork.size
        var x = Tensor(shape: [count, 3, size, size])
        for i in x.storage.indices { x.storage[i] = Float((i * 37) % 23) / 11 - 1 }
        return x
    }

    @Test func aWeightedSumIsSeededWithItsWeights() throws {
        let network = SeedRecordingNetwork()
        let target = OutputTarget(elements: [1, 3], weights: [2, -0.5], classIndex: 1)
        let explanation = try #require(try Explainer(network: network, method: .gradcam).explanations(of: images(1), for: [target]).first?.first)
        #expect(network.seeds.count == 1)
        #expect(network.seeds[0].storage == [0, 2, 0, -0.5, 0])
        let logits = explanation.logits
        #expect(abs(explanation.score - (2 * logits[1] - 0.5 * logits[3])) < 1e-6)
        #expect(explanation.classIndex == 1 && explanation.target == target)
    }

    @Test func aProductIsSeededWithTheOtherFactors() throws {
        let network = SeedRecordingNetwork()
        let target = OutputTarget(elements: [0, 2], weights: [1, 1], combination: .product, classIndex: 2)
        let explanation = try #require(try Explainer(network: network, method: .gradcam).explanations(of: images(1), for: [target]).first?.first)
        let logits = explanation.logits
        #expect(network.seeds[0].storage == [logits[2], 0, logits[0], 0, 0], "d(x0·x2) = x2 dx0 + x0 dx2")
        #expect(explanation.score == logits[0] * logits[2])
    }

    @Test func severalScoresPerImageAreOneForwardAndOneBackwardEach() throws {
        let network = SeedRecordingNetwork()
        let explainer = try Explainer(network: network, method: .gradcam)
        let input = images(2)
        // Image 0 has three scores, image 1 one: three backward passes, the last seeding image 0 alone.
        let perImage: [any ExplanationTarget] = [
            FixedScores(targets: [1, 4, 0].map { OutputTarget(element: $0, classIndex: $0) }),
            FixedScores(targets: [OutputTarget(element: 2, classIndex: 2)]),
        ]
        let explained = try explainer.explanations(of: input, for: perImage)
        #expect(explained.map(\.count) == [3, 1])
        #expect(network.seeds.count == 3)
        #expect(network.seeds[2].storage == [1, 0, 0, 0, 0] + [0, 0, 0, 0, 0])
        // Each equals the explanation of that class alone.
        let single = try Explainer(network: AnalyticNetwork(), method: .gradcam)
        for (i, classes) in [[1, 4, 0], [2]].enumerated() {
            for (r, k) in classes.enumerated() {
                let alone = try single.explain(input.slice(i).reshaped([1, 3, AnalyticNetwork.size, AnalyticNetwork.size]), target: .index(k))[0]
                #expect(explained[i][r].raws == alone.raws && explained[i][r].classIndex == k)
            }
        }
        // No score at all: no explanation, no backward pass.
        let none = try explainer.explanations(of: input, for: [FixedScores(targets: [])])
        #expect(none.map(\.count) == [0, 0] && network.seeds.count == 3)
    }

    @Test func perturbationMethodsScoreProbesByTheTarget() throws {
        // Score-CAM of the weighted sum of two classes with weights (1, 0) is Score-CAM of the first.
        let explainer = try Explainer(network: AnalyticNetwork(), method: .scorecam)
        let input = images(1)
        let weighted = try explainer.explanations(of: input, for: [OutputTarget(elements: [3, 1], weights: [1, 0], classIndex: 3)])[0][0]
        let plain = try explainer.explain(input, target: .index(3))[0]
        #expect(weighted.raws == plain.raws)
        let other = try explainer.explain(input, target: .index(1))[0]
        #expect(weighted.raws != other.raws)
    }

    @Test func segmentationTargetIsTheClassScoresOverItsPixels() throws {
        // [3 classes, 2 x 3]: class 2 wins four pixels, class 0 two (one a tie with class 1: the first wins).
        let output = Tensor(shape: [3, 2, 3], storage: [
            5, 1, 0, 0, 0, 2,
            1, 1, 0, 0, 0, 1,
            0, 0, 3, 4, 1, 7,
        ])
        let labels = ClassLabels(names: ["background", "cat", "dog"])
        let top = try SemanticSegmentationTarget(category: .top1).resolve(output, labels: labels)
        #expect(top == [OutputTarget(elements: [14, 15, 16, 17], weights: [1, 1, 1, 1], classIndex: 2)])
        #expect(top[0].score(in: output.storage[...]) == 15)
        let background = try SemanticSegmentationTarget(category: .label("back")).resolve(output, labels: labels)
        #expect(background[0].elements == [0, 1])
        let cat = try SemanticSegmentationTarget(category: .index(1)).resolve(output, labels: labels)
        #expect(cat[0].elements.isEmpty && cat[0].score(in: output.storage[...]) == 0)
        #expect(throws: ExplainError.self) { try SemanticSegmentationTarget(category: .index(3)).resolve(output, labels: labels) }
        #expect(throws: ExplainError.self) { try SemanticSegmentationTarget(category: .top1).resolve(Tensor(shape: [5]), labels: labels) }
    }

    @Test func elementTargetsNameOneElementByItsIndices() throws {
        let output = Tensor(shape: [6, 10])
        #expect(try ElementTarget(indices: [5, 7], classIndex: 1).resolve(output, labels: ClassLabels(names: []))
            == [OutputTarget(element: 57, classIndex: 1)])
        #expect(throws: ExplainError.self) { try ElementTarget(indices: [6, 0]).resolve(output, labels: ClassLabels(names: [])) }
        #expect(throws: ExplainError.self) { try ElementTarget(indices: [1]).resolve(output, labels: ClassLabels(names: [])) }
        #expect(throws: ExplainError.self) { try ClassTarget.top1.resolve(output, labels: ClassLabels(names: [])) }
    }

    @Test func detectorHeadsAreRecognisedFromTheirShape() {
        // 128 x 128: 16² + 8² + 4² = 336 anchor points.
        #expect(DetectorHead.recognise([14, 336], inputHeight: 128, inputWidth: 128) == .anchorFree)
        #expect(DetectorHead.recognise([84, 8400], inputHeight: 640, inputWidth: 640, classes: 80) == .anchorFree)
        #expect(DetectorHead.recognise([116, 8400], inputHeight: 640, inputWidth: 640, classes: 80) == .anchorFree, "a -seg model's box part")
        #expect(DetectorHead.recognise([25200, 85], inputHeight: 640, inputWidth: 640) == .anchorBased)
        #expect(DetectorHead.recognise([300, 6], inputHeight: 640, inputWidth: 640) == .nmsFree)
        #expect(DetectorHead.recognise([14, 335], inputHeight: 128, inputWidth: 128) == nil)
        #expect(DetectorHead.recognise([1000], inputHeight: 224, inputWidth: 224) == nil)
        #expect(DetectorHead.anchorFree.classCount([116, 8400], named: 80) == 80)
        #expect(DetectorHead.anchorFree.classCount([14, 336], named: nil) == 10)
    }

    @Test func theOriginalYOLOv5HeadScoresObjectnessTimesClass() throws {
        // Two anchors of [cx, cy, w, h, objectness, p0, p1]: the first passes (0.9 · 0.5), the second's objectness does not.
        let output = Tensor(shape: [2, 7], storage: [10, 10, 4, 4, 0.9, 0.2, 0.5, 30, 30, 4, 4, 0.2, 0.9, 0.9])
        let detections = NonMaximumSuppression().detections(output, head: .anchorBased, classes: 2)
        #expect(detections == [Detection(x1: 8, y1: 8, x2: 12, y2: 12, score: 0.45, classIndex: 1, anchor: 0)])
        let target = DetectorHead.anchorBased.target(of: detections[0], output: output.shape)
        #expect(target.elements == [4, 6] && target.combination == .product)
        #expect(abs(target.score(in: output.storage[...]) - 0.45) < 1e-7)
    }

    @Test func anNMSFreeHeadIsOnlyThresholded() {
        let output = Tensor(shape: [3, 6], storage: [1, 2, 3, 4, 0.9, 7, 1, 2, 3, 4, 0.85, 7, 0, 0, 1, 1, 0.1, 2])
        let detections = NonMaximumSuppression().detections(output, head: .nmsFree, classes: 10)
        #expect(detections.map(\.anchor) == [0, 1] && detections.map(\.classIndex) == [7, 7])
        #expect(DetectorHead.nmsFree.target(of: detections[1], output: output.shape).elements == [10])
    }
}
