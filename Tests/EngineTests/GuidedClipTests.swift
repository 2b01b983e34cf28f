import Core
import Foundation
import Testing
import Engine
import EngineTestSupport
import TestSupport

/// `GradientRules.guidedClip`: Clip (ReLU6) keeps its plain gradient by default (pytorch-grad-cam guides only
/// `nn.ReLU`); with the rule it passes only positive gradients, and only where its input lay strictly inside the bounds.
@Suite struct GuidedClipTests {
    /// `g` where `lo < x < hi` (and `g > 0` when guided), else 0: the rule written out on the Clip's input.
    static func expected(_ x: [Float], _ g: [Float], lo: Float = 0, hi: Float = 6, guided: Bool) -> [Float] {
        zip(x, g).map { x, g in x > lo && x < hi && (!guided || g > 0) ? g : 0 }
    }

    static func close(_ a: Tensor, _ b: Tensor, _ tolerance: Float = 1e-5) -> Bool {
        let scale = max(b.storage.map(abs).max() ?? 0, 1e-6)
        return a.shape == b.shape && zip(a.storage, b.storage).allSatisfy { abs($0 - $1) <= tolerance * scale }
    }

    @Test func standaloneClipIsGuidedOnlyWithTheRule() throws {
        let shape = [1, 2, 3, 4]
        let network = try builtNetwork(shape) { b in
            b.addInitializer("lo", Tensor(scalar: 0))
            b.addInitializer("hi", Tensor(scalar: 6))
            b.addNode("Clip", inputs: ["input", "lo", "hi"], outputs: ["output"])
        }
        var rng = SeededGenerator(state: 3)
        let x = rng.tensor(shape, -3, 9), seed = rng.tensor(shape, -1, 1)
        // The case must hold inputs on both sides of both bounds and gradients of both signs inside them.
        let inside = x.storage.indices.filter { x.storage[$0] > 0 && x.storage[$0] < 6 }
        try #require(x.storage.contains { $0 < 0 } && x.storage.contains { $0 > 6 })
        try #require(inside.contains { seed.storage[$0] < 0 } && inside.contains { seed.storage[$0] > 0 })

        let pass = try network.forward(x)
        let standard = try #require(try network.backward(pass, seed: seed, to: ["input"])["input"])
        let reluOnly = try #require(try network.backward(pass, seed: seed, to: ["input"], rules: .guidedBackprop)["input"])
        let guided = try #require(try network.backward(pass, seed: seed, to: ["input"], rules: .guidedBackpropIncludingClip)["input"])
        #expect(standard.storage == Self.expected(x.storage, seed.storage, guided: false))
        #expect(reluOnly.storage == standard.storage, "guided backprop without guidedClip keeps Clip's plain gradient")
        #expect(guided.storage == Self.expected(x.storage, seed.storage, guided: true))
        #expect(guided.storage != standard.storage)
        // The rule alone (without guided ReLU) guides Clip the same way.
        let clipOnly = try #require(try network.backward(pass, seed: seed, to: ["input"], rules: GradientRules(guidedClip: true))["input"])
        #expect(clipOnly.storage == guided.storage)
    }

    /// input -> Conv (c) -> Clip(0, 6) (y) -> GlobalAveragePool -> Flatten -> Gemm: the planner fuses Conv+Clip.
    static func convClipNetwork(_ layout: ActivationLayout) throws -> Network {
        var b = ONNXModelBuilder(opset: 13, inputShape: [nil, 3, 8, 8])
        var rng = SeededGenerator(state: 21)
        b.addInitializer("w", rng.tensor([8, 3, 3, 3], -1, 1))
        b.addInitializer("bias", rng.tensor([8], -1, 1))
        b.addInitializer("lo", Tensor(scalar: 0))
        b.addInitializer("hi", Tensor(scalar: 6))
        b.addInitializer("fc", rng.tensor([6, 8], -1, 1))
        b.addNode("Conv", inputs: ["input", "w", "bias"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])])
        b.addNode("Clip", inputs: ["c", "lo", "hi"], outputs: ["y"])
        b.addNode("GlobalAveragePool", inputs: ["y"], outputs: ["g"])
        b.addNode("Flatten", inputs: ["g"], outputs: ["f"])
        b.addNode("Gemm", inputs: ["f", "fc"], outputs: ["output"], attributes: ["transB": .int(1)])
        b.addOutput("output")
        return try Network(model: try b.serialized(), baseDirectory: nil, inputHeight: 8, inputWidth: 8, layout: layout)
    }

    @Test(arguments: [ActivationLayout.channelsLast, .nchw])
    func fusedConvClipFollowsTheSameRule(layout: ActivationLayout) throws {
        let network = try Self.convClipNetwork(layout)
        var rng = SeededGenerator(state: 34)
        let x = rng.tensor([2, 3, 8, 8], -2, 2)
        var seed = Tensor(shape: [2, 6])
        seed.storage[1] = 1
        seed.storage[6 + 4] = 1
        // Nothing retained: the Conv absorbs the Clip. Retaining the Conv output keeps them apart.
        let fused = try network.forward(x)
        let unfused = try network.forward(x, retaining: ["c", "y"])
        let c = try #require(unfused["c"])
        try #require(c.storage.contains { $0 < 0 } && c.storage.contains { $0 > 6 } && c.storage.contains { $0 > 0 && $0 < 6 })

        for rules in [GradientRules.standard, .guidedBackprop, .guidedBackpropIncludingClip] {
            let guided = rules.guidedClip
            // The rule on the Clip's input, from the gradient arriving at its output.
            let g = try network.backward(unfused, seed: seed, to: ["c", "y"], rules: rules)
            let gy = try #require(g["y"]), gc = try #require(g["c"])
            if rules == .standard {
                let active = c.storage.indices.filter { c.storage[$0] > 0 && c.storage[$0] < 6 }
                try #require(active.contains { gy.storage[$0] < 0 } && active.contains { gy.storage[$0] > 0 },
                             "the case needs gradients of both signs at active units")
            }
            #expect(gc.storage == Self.expected(c.storage, gy.storage, guided: guided), "\(rules)")
            // The input gradient after a fused forward equals the one after an unfused forward.
            let fromFused = try #require(try network.backward(fused, seed: seed, to: ["input"], rules: rules)["input"])
            let fromUnfused = try #require(try network.backward(unfused, seed: seed, to: ["input"], rules: rules)["input"])
            #expect(Self.close(fromFused, fromUnfused), "\(rules)")
            #expect(fromFused.storage.contains { $0 != 0 })
        }
        let plain = try #require(try network.backward(fused, seed: seed, to: ["input"])["input"])
        let guided = try #require(try network.backward(fused, seed: seed, to: ["input"], rules: .guidedBackpropIncludingClip)["input"])
        #expect(!Self.close(guided, plain, 1e-3), "guiding Clip must change the input gradient")
    }

    /// EfficientNet-Lite0's activations are all ReLU6 (Clip): guided backprop as pytorch-grad-cam does it is the
    /// plain gradient; with `guidedClip` every Clip passes only positive gradients of active units.
    @Test func efficientNetGuidedClipGatesEveryReLU6() throws {
        guard let reference = ReferenceData.referenceOrSkip("efficientNetGuidedClipGatesEveryReLU6") else { return }
        let network = try Network(contentsOf: DefaultModel.url)
        let x = try NumPyFile.read(path: reference.appendingPathComponent("inputs/chelsea.npy").path)
        let layers = network.layers
        #expect(!layers.contains { $0.opType == "Relu" } && layers.filter { $0.opType == "Clip" }.count == 33)
        // Clips reading the convolution just before them (all of them in this model): the stem, a middle one, the last.
        let pairs = zip(layers, layers.dropFirst()).filter { $0.opType == "Conv" && $1.opType == "Clip" && $0.shape == $1.shape }
        #expect(pairs.count == 33)
        let chosen = try ["hardtanh", "hardtanh_9", "hardtanh_32"].map { name in
            try #require(pairs.first { $0.1.name == name }, "\(name) follows its convolution")
        }
        let pass = try network.forward(x, retaining: Set(chosen.flatMap { [$0.0.name, $0.1.name] }))
        var seed = Tensor(shape: [1, 1000])
        seed.storage[285] = 1
        let targets = Set(chosen.flatMap { [$0.0.name, $0.1.name] } + [network.inputName])
        let standard = try network.backward(pass, seed: seed, to: targets)
        let reluOnly = try network.backward(pass, seed: seed, to: targets, rules: .guidedBackprop)
        let guided = try network.backward(pass, seed: seed, to: targets, rules: .guidedBackpropIncludingClip)
        let plainInput = try #require(standard[network.inputName]), reluOnlyInput = try #require(reluOnly[network.inputName])
        let guidedInput = try #require(guided[network.inputName])
        #expect(reluOnlyInput.storage == plainInput.storage, "without Relu nodes, pytorch-grad-cam's guided backprop is the plain gradient")
        #expect(!Self.close(guidedInput, plainInput, 1e-2), "guiding the ReLU6s must change the input gradient")
        for (conv, clip) in chosen {
            let c = try #require(pass[conv.name])
            let plainAtClip = try #require(standard[clip.name]), plainAtConv = try #require(standard[conv.name])
            let guidedAtClip = try #require(guided[clip.name]), guidedAtConv = try #require(guided[conv.name])
            #expect(plainAtConv.storage == Self.expected(c.storage, plainAtClip.storage, guided: false), "\(clip.name) plain")
            #expect(guidedAtConv.storage == Self.expected(c.storage, guidedAtClip.storage, guided: true), "\(clip.name) guided")
            #expect(guidedAtConv.storage.allSatisfy { $0 >= 0 } && guidedAtConv.storage.contains { $0 > 0 }, "\(clip.name)")
            #expect(plainAtConv.storage.contains { $0 < 0 }, "\(clip.name): the plain gradient has negative values to remove")
        }
    }
}
