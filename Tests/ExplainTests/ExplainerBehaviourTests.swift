import Core
import Testing
import Engine
import Explain

/// Batching, multi-layer aggregation and the smoothing options, on `AnalyticNetwork`.
@Suite struct ExplainerBehaviourTests {
    @Test(arguments: ExplanationMethod.allCases)
    func batchedEqualsOneByOne(method: ExplanationMethod) throws {
        let network = AnalyticNetwork()
        let images = AnalyticNetwork.images(3, seed: 5)
        let explainer = try Explainer(network: network, method: method)
        let batched = try explainer.explain(images)
        #expect(batched.count == 3)
        for i in 0..<3 {
            let single = try #require(try explainer.explain(Tensor.stack([images.slice(i)])).first)
            #expect(batched[i].classIndex == single.classIndex)
            let logits = try network.forward(Tensor.stack([images.slice(i)]), retaining: []).logits.storage
            #expect(single.classIndex == logits.firstIndex(of: logits.max()!), "top1 per image")
            #expect(batched[i].raws.map(\.shape) == single.raws.map(\.shape))
            for (a, b) in zip(batched[i].raws, single.raws) {
                #expect(zip(a.storage, b.storage).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
            }
            #expect(zip(batched[i].map.values, single.map.values).allSatisfy { abs($0 - $1) <= 1e-5 })
        }
        #expect(Set(batched.map(\.classIndex)).count > 1, "the test images must pick different classes")
    }

    @Test func perImageTargets() throws {
        let explainer = try Explainer(network: AnalyticNetwork(), method: .gradcam,
                                      labels: ClassLabels(names: ["a", "b", "c", "d", "e"]))
        let images = AnalyticNetwork.images(2)
        let result = try explainer.explain(images, targets: [.index(3), .label("B")])
        #expect(result.map(\.classIndex) == [3, 1])
        #expect(throws: ExplainError.self) { _ = try explainer.explain(images, targets: [.top1, .top1, .top1]) }
        #expect(throws: ExplainError.self) { _ = try explainer.explain(Tensor(shape: [3, 8, 8])) }
    }

    @Test func severalLayersAverageTheirNormalisedMaps() throws {
        let network = AnalyticNetwork()
        let image = AnalyticNetwork.images(1, seed: 2)
        let both = try #require(try Explainer(network: network, method: .layercam,
                                              options: ExplainerOptions(layers: ["features", "input"])).explain(image).first)
        let features = try #require(try Explainer(network: network, method: .layercam,
                                                  options: ExplainerOptions(layers: ["features"])).explain(image).first)
        let input = try #require(try Explainer(network: network, method: .layercam,
                                               options: ExplainerOptions(layers: ["input"])).explain(image).first)
        #expect(both.layers == ["features", "input"])
        #expect(both.raws == [features.raw, input.raw])
        let expected = CAMSteps.finalMap(raws: [features.raw, input.raw], height: 8, width: 8)
        #expect(both.map == expected)
        #expect(both.map != features.map)
    }

    @Test func eigenSmoothProjectsTheWeightedActivations() throws {
        let network = AnalyticNetwork()
        let image = AnalyticNetwork.images(1, seed: 3)
        let k = 4
        let smooth = try #require(try Explainer(network: network, method: .gradcam, options: ExplainerOptions(eigenSmooth: true))
            .explain(image, target: .index(k)).first)
        let a = try network.forward(image, retaining: []).features.slice(0)
        let weights = (0..<4).map { network.w[k * 4 + $0] / 16 }
        let weighted = Tensor(shape: a.shape, storage: a.storage.indices.map { a.storage[$0] * weights[$0 / 16] })
        let expected = PrincipalProjection.project(weighted).storage.map { max($0, 0) }
        #expect(zip(smooth.raw.storage, expected).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(throws: ExplainError.self) {
            _ = try Explainer(network: network, method: .saliency, options: ExplainerOptions(eigenSmooth: true))
        }
    }

    @Test func augSmoothAveragesTheSixDeaugmentedMaps() throws {
        let network = AnalyticNetwork()
        let images = AnalyticNetwork.images(2, seed: 4)
        let plainExplainer = try Explainer(network: network, method: .gradcamPlusPlus)
        let plain = try plainExplainer.explain(images)
        let smoothExplainer = try Explainer(network: network, method: .gradcamPlusPlus, options: ExplainerOptions(augSmooth: true))
        for target in [ClassTarget.top1, .index(2)] {
            let smooth = try smoothExplainer.explain(images, target: target)
            for i in 0..<2 {
                let expected = try AugSmoothReference.map(Tensor.stack([images.slice(i)]), target: target, explainer: plainExplainer)
                #expect(smooth[i].classIndex == (target == .top1 ? plain[i].classIndex : 2))
                #expect(zip(smooth[i].map.values, expected.storage).allSatisfy { abs($0 - $1) < 1e-6 })
                #expect(smooth[i].map != plain[i].map)
            }
        }
    }
}

/// pytorch-grad-cam 1.5.7's `BaseCAM.forward_augmentation_smoothing`, restated on plain explanations:
/// for each ttach transform of `Compose([HorizontalFlip(), Multiply([0.9, 1, 1.1])])`, in ttach's order
/// (flip in [False, True] outer, factor inner), run the plain `forward` on the augmented input with the
/// caller's targets (targets=None, our `top1`, re-picks the argmax of that copy's own logits), undo the
/// flip on the final map (the factor has no mask inverse), then `np.mean(np.float32(cams), axis=0)`.
enum AugSmoothReference {
    static func map<N: ExplainableNetwork>(_ image: Tensor, target: ClassTarget, explainer: Explainer<N>) throws -> Tensor {
        var cams: [Tensor] = []
        for flip in [false, true] {
            for factor: Float in [0.9, 1, 1.1] {
                var augmented = flip ? CAMSteps.flippedHorizontally(image) : image
                augmented.storage = augmented.storage.map { $0 * factor }
                let cam = try #require(try explainer.explain(augmented, target: target).first).map.tensor
                cams.append(flip ? CAMSteps.flippedHorizontally(cam) : cam)
            }
        }
        var sum = [Float](repeating: 0, count: cams[0].count)
        for cam in cams {
            for p in sum.indices { sum[p] += cam.storage[p] }
        }
        return Tensor(shape: cams[0].shape, storage: sum.map { $0 / Float(cams.count) })
    }
}
