import Core
import Testing
import Engine
import Explain

/// Methods that need the network, on `AnalyticNetwork`, against weights derived by hand.
@Suite struct AnalyticMethodTests {
    let image = AnalyticNetwork.images(1)

    func close(_ a: [Float], _ b: [Float], _ tolerance: Float = 1e-5) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    /// `relu(sum_c w_c A_c)` of image 0's features.
    func weightedRaw(_ network: AnalyticNetwork, _ weights: [Float]) throws -> [Float] {
        let a = try network.activation("features", in: network.forward(image, retaining: [])).slice(0)
        let plane = a.count / weights.count
        return (0..<plane).map { p in max((0..<weights.count).reduce(Float(0)) { $0 + weights[$1] * a.storage[$1 * plane + p] }, 0) }
    }

    func channelMeans(_ network: AnalyticNetwork) throws -> [Float] {
        let a = try network.activation("features", in: network.forward(image, retaining: [])).slice(0)
        let plane = a.count / AnalyticNetwork.channels
        return (0..<AnalyticNetwork.channels).map { c in (0..<plane).reduce(Float(0)) { $0 + a.storage[c * plane + $1] } / Float(plane) }
    }

    @Test func camUsesTheClassifierWeightsAndEqualsGradCAM() throws {
        let network = AnalyticNetwork()
        let k = 2
        let cam = try #require(try Explainer(network: network, method: .cam).explain(image, target: .index(k)).first)
        let weights = Array(network.w[(k * 4)..<(k * 4 + 4)])
        #expect(close(cam.raw.storage, try weightedRaw(network, weights)))
        #expect(cam.layers == ["features"])
        // For a GAP + linear head, Grad-CAM's weights are W[k]/(hw): the same map.
        let grad = try #require(try Explainer(network: network, method: .gradcam).explain(image, target: .index(k)).first)
        #expect(close(cam.map.values, grad.map.values, 1e-4))
        #expect(cam.map.tensor.shape == [8, 8])
    }

    @Test func camWithoutLinearHeadSuggestsGradCAM() {
        var network = AnalyticNetwork()
        network.hasHead = false
        #expect {
            _ = try Explainer(network: network, method: .cam)
        } throws: { error in
            String(describing: error).contains("gradcam")
        }
        #expect(throws: ExplainError.self) {
            _ = try Explainer(network: AnalyticNetwork(), method: .cam, options: ExplainerOptions(layers: ["input"]))
        }
    }

    @Test func ablationWeightsAreTheRelativeDrop() throws {
        // ReLU features contain zeros, so min(A) == 0 and ablation sets the channel to 0:
        // y - y_c = W[k,c] mean(A_c).
        let network = AnalyticNetwork()
        let k = 0
        let y = try network.forward(image, retaining: []).logits.storage[k]
        let means = try channelMeans(network)
        #expect(try network.forward(image, retaining: []).features.storage.min() == 0)
        let expected = (0..<4).map { network.w[k * 4 + $0] * means[$0] / y }
        let result = try #require(try Explainer(network: network, method: .ablationcam, options: ExplainerOptions(batchSize: 3))
            .explain(image, target: .index(k)).first)
        #expect(close(result.raw.storage, try weightedRaw(network, expected), 1e-4))
    }

    @Test func ablationBelowNegativeMinimum() throws {
        // Without the ReLU, min(A) < 0: the channel becomes min(A) - 1e7 and
        // y - y_c = W[k,c] (mean(A_c) - min(A) + 1e7).
        var network = AnalyticNetwork()
        network.activation = .identity
        let k = 3
        let pass = try network.forward(image, retaining: [])
        let y = pass.logits.storage[k]
        let low = try #require(pass.features.storage.min())
        #expect(low < 0)
        let means = try channelMeans(network)
        let expected = (0..<4).map { Double(network.w[k * 4 + $0]) * (Double(means[$0]) - Double(low - 1e7)) / Double(y) }
        let result = try #require(try Explainer(network: network, method: .ablationcam).explain(image, target: .index(k)).first)
        // 1e7-sized logits keep float32's ~1 absolute error: compare the normalised maps.
        let expectedRaw = try weightedRaw(network, expected.map { Float($0) })
        let scale = expectedRaw.max() ?? 1
        #expect(zip(result.raw.storage, expectedRaw).allSatisfy { abs($0 - $1) <= 1e-3 * scale })
    }

    @Test func scoreCAMWeightsAreTheSoftmaxOfMaskedScores() throws {
        let network = AnalyticNetwork()
        let k = 1
        let a = try network.forward(image, retaining: []).features.slice(0)
        var scores: [Float] = []
        for c in 0..<4 {
            let channel = Array(a.storage[(c * 16)..<((c + 1) * 16)])
            let up = BilinearResampling(width: 4, height: 4, toWidth: 8, toHeight: 8, convention: .alignCorners).resample(channel)
            let low = up.min()!, high = up.max()!
            let mask = up.map { ($0 - low) / (high - low + 1e-8) }
            let masked = Tensor(shape: [1, 3, 8, 8], storage: image.storage.indices.map { image.storage[$0] * mask[$0 % 64] })
            scores.append(try network.forward(masked, retaining: []).logits.storage[k])
        }
        let top = scores.max()!
        let exps = scores.map { Float(exp(Double($0 - top))) }
        let expected = exps.map { $0 / exps.reduce(0, +) }
        for batchSize in [1, 3, 16] {
            let result = try #require(try Explainer(network: network, method: .scorecam, options: ExplainerOptions(batchSize: batchSize))
                .explain(image, target: .index(k)).first)
            #expect(close(result.raw.storage, try weightedRaw(network, expected), 1e-5))
        }
    }

    @Test func networkInputGradientMatchesFiniteDifferences() throws {
        let network = AnalyticNetwork()
        let k = 4
        let g = try inputGradient(network, of: image, classIndex: k)
        for index in stride(from: 0, to: image.count, by: 13) {
            var plus = image, minus = image
            plus.storage[index] += 1e-2; minus.storage[index] -= 1e-2
            let numeric = (try network.forward(plus, retaining: []).logits.storage[k] - network.forward(minus, retaining: []).logits.storage[k]) / 2e-2
            #expect(abs(numeric - g.storage[index]) < 2e-3, "input gradient \(index)")
        }
    }

    @Test func saliencyIsTheMaxAbsoluteInputGradient() throws {
        let network = AnalyticNetwork()
        let k = 4
        let g = try inputGradient(network, of: image, classIndex: k)
        let expected = (0..<64).map { p in (0..<3).map { abs(g.storage[$0 * 64 + p]) }.max()! }
        let result = try #require(try Explainer(network: network, method: .saliency).explain(image, target: .index(k)).first)
        #expect(result.raw.shape == [8, 8])
        #expect(result.raw.storage == expected)
        #expect(close(result.map.values, Normalization.minMax(expected)))
    }

    @Test func guidedBackpropGuidesReLUAndOptionallyClip() throws {
        let k = 1
        var seed = Tensor(shape: [1, 5]); seed.storage[k] = 1
        // ReLU network: the guided rule.
        let relu = AnalyticNetwork()
        let reluPass = try relu.forward(image, retaining: [])
        let guided = try #require(try relu.gradients(of: reluPass, seed: seed, withRespectTo: ["input"], rules: .guidedBackprop)["input"])
        let plain = try #require(try relu.gradients(of: reluPass, seed: seed, withRespectTo: ["input"], rules: .standard)["input"])
        #expect(guided != plain, "class 1 has negative weights, so guiding must change the gradient")
        let result = try #require(try Explainer(network: relu, method: .guidedBackprop).explain(image, target: .index(k)).first)
        #expect(result.raw.shape == [3, 8, 8])
        #expect(result.raw.storage == guided.slice(0).storage)
        // Clip (ReLU6) network: plain gradient by default, guided with the option.
        var clip = AnalyticNetwork()
        clip.activation = .clip6
        let clipPass = try clip.forward(image, retaining: [])
        let clipPlain = try #require(try clip.gradients(of: clipPass, seed: seed, withRespectTo: ["input"], rules: .standard)["input"])
        let clipGuided = try #require(try clip.gradients(of: clipPass, seed: seed, withRespectTo: ["input"], rules: .guidedBackpropIncludingClip)["input"])
        let byDefault = try #require(try Explainer(network: clip, method: .guidedBackprop).explain(image, target: .index(k)).first)
        let extended = try #require(try Explainer(network: clip, method: .guidedBackprop, options: ExplainerOptions(guidesClip: true))
            .explain(image, target: .index(k)).first)
        #expect(byDefault.raw.storage == clipPlain.slice(0).storage)
        #expect(extended.raw.storage == clipGuided.slice(0).storage)
        #expect(clipPlain != clipGuided)
    }

    @Test func guidedGradCAMMultipliesGuidedBackpropByGradCAM() throws {
        let network = AnalyticNetwork()
        let k = 2
        let gb = try #require(try Explainer(network: network, method: .guidedBackprop).explain(image, target: .index(k)).first)
        let cam = try #require(try Explainer(network: network, method: .gradcam).explain(image, target: .index(k)).first)
        let result = try #require(try Explainer(network: network, method: .guidedGradcam).explain(image, target: .index(k)).first)
        let expected = gb.raw.storage.indices.map { gb.raw.storage[$0] * cam.map.values[$0 % 64] }
        #expect(result.raw.shape == [3, 8, 8])
        #expect(close(result.raw.storage, expected))
        #expect(result.map.tensor.shape == [8, 8])
    }

    @Test func classModelVisualisationFollowsTheClosedForm() throws {
        // Without the ReLU the logit is linear in the input, dS/dI = G constant, and
        // I_t = (1 - (1 - 2λη)^t) G / (2λ).
        var network = AnalyticNetwork()
        network.activation = .identity
        let k = 0
        var seed = Tensor(shape: [1, 5]); seed.storage[k] = 1
        let g = try #require(try network.gradients(of: network.forward(image, retaining: []), seed: seed,
                                                    withRespectTo: ["input"], rules: .standard)["input"])
        let visualisation = ClassModelVisualization(steps: 40, learningRate: 0.5, l2: 0.1)
        let result = try visualisation.optimise(network, classIndex: k, height: 8, width: 8)
        #expect(result.shape == [3, 8, 8])
        let factor = Float((1 - pow(1 - 2 * 0.1 * 0.5, 40.0)) / (2 * 0.1))
        #expect(close(result.storage, g.storage.map { $0 * factor }, 1e-4))
        #expect(throws: ExplainError.self) { _ = try visualisation.optimise(network, classIndex: 9, height: 8, width: 8) }
    }
}

import Foundation

/// `d logit[classIndex] / d input` of the analytic network on `image`.
func inputGradient(_ network: AnalyticNetwork, of image: Tensor, classIndex: Int) throws -> Tensor {
    let pass = try network.forward(image, retaining: [])
    var seed = Tensor(shape: [1, 5])
    seed.storage[classIndex] = 1
    return try #require(try network.gradients(of: pass, seed: seed, withRespectTo: ["input"], rules: .standard)["input"])
}
