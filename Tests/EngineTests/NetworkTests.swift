import Core
import Foundation
import Testing
import Engine
import EngineTestSupport
import TestSupport

@Suite struct ModelLoadingTests {
    /// A small valid model: Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm.
    static func smallModel() throws -> Data {
        var b = ONNXModelBuilder(opset: 13, inputShape: [nil, 3, 8, 8])
        var rng = SeededGenerator(state: 11)
        b.addInitializer("w", rng.tensor([4, 3, 3, 3], -1, 1))
        b.addInitializer("fc", rng.tensor([5, 4], -1, 1))
        b.addNode("Conv", inputs: ["input", "w"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])])
        b.addNode("Relu", inputs: ["c"], outputs: ["r"])
        b.addNode("GlobalAveragePool", inputs: ["r"], outputs: ["g"])
        b.addNode("Flatten", inputs: ["g"], outputs: ["f"])
        b.addNode("Gemm", inputs: ["f", "fc"], outputs: ["output"], attributes: ["transB": .int(1)])
        b.addOutput("output")
        return try b.serialized()
    }

    @Test func unsupportedOperatorNamesOpAndNode() throws {
        var b = ONNXModelBuilder(inputShape: [nil, 3, 4, 4])
        b.addNode("NonMaxSuppression", inputs: ["input"], outputs: ["output"], name: "nms_7")
        b.addOutput("output")
        let error = #expect(throws: EngineError.self) {
            try Network(model: try b.serialized(), baseDirectory: nil, inputHeight: 4, inputWidth: 4)
        }
        #expect(error?.description.contains("NonMaxSuppression") == true && error?.description.contains("nms_7") == true)
    }

    @Test func unsupportedAttributeNamesIt() throws {
        var b = ONNXModelBuilder(inputShape: [nil, 3, 4, 4])
        b.addNode("Relu", inputs: ["input"], outputs: ["output"], name: "act", attributes: ["flavour": .int(2)])
        b.addOutput("output")
        let error = #expect(throws: EngineError.self) {
            try Network(model: try b.serialized(), baseDirectory: nil, inputHeight: 4, inputWidth: 4)
        }
        #expect(error?.description.contains("flavour") == true && error?.description.contains("act") == true)
    }

    @Test func shapeErrorsAreReportedAtLoad() throws {
        var b = ONNXModelBuilder(inputShape: [nil, 3, 4, 4])
        b.addInitializer("w", Tensor(shape: [2, 5, 3, 3]))
        b.addNode("Conv", inputs: ["input", "w"], outputs: ["output"], name: "conv_bad")
        b.addOutput("output")
        let error = #expect(throws: EngineError.self) {
            try Network(model: try b.serialized(), baseDirectory: nil, inputHeight: 4, inputWidth: 4)
        }
        #expect(error?.description.contains("conv_bad") == true)
    }

    @Test func externalDataLoadsRelativeToTheModel() throws {
        let dir = try ReferenceData.temporaryDirectory("camvid-external")
        defer { try? FileManager.default.removeItem(at: dir) }
        var b = ONNXModelBuilder(inputShape: [nil, 2, 2, 2])
        let weights: [Float] = [1, 2, 3, 4, 5, 6]  // [3, 2, 1, 1]
        b.addExternalInitializer("w", shape: [3, 2, 1, 1], location: "weights.bin", offset: 16)
        b.addNode("Conv", inputs: ["input", "w"], outputs: ["output"])
        b.addOutput("output")
        var side = Data(repeating: 0xAB, count: 16)
        for v in weights { withUnsafeBytes(of: v.bitPattern.littleEndian) { side.append(contentsOf: $0) } }
        try side.write(to: dir.appendingPathComponent("weights.bin"))
        try b.serialized().write(to: dir.appendingPathComponent("model.onnx"))
        let network = try Network(contentsOf: dir.appendingPathComponent("model.onnx"), inputHeight: 2, inputWidth: 2)
        let y = try network.forward(Tensor(shape: [1, 2, 2, 2], storage: [1, 1, 1, 1, 10, 10, 10, 10])).logits
        #expect(y.storage == [21, 21, 21, 21, 43, 43, 43, 43, 65, 65, 65, 65])
        // A missing side file is an error naming the tensor.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("weights.bin"))
        let error = #expect(throws: EngineError.self) {
            try Network(contentsOf: dir.appendingPathComponent("model.onnx"), inputHeight: 2, inputWidth: 2)
        }
        #expect(error?.description.contains("'w'") == true)
    }

    /// Truncations and random byte flips of a small model must load or throw, never crash.
    @Test func malformedModelsThrowOrLoad() throws {
        let model = try Self.smallModel()
        #expect(throws: EngineError.self) { try Network(model: Data(), baseDirectory: nil, inputHeight: 8, inputWidth: 8) }
        #expect(throws: EngineError.self) { try Network(model: Data("not a model".utf8), baseDirectory: nil, inputHeight: 8, inputWidth: 8) }
        var rng = SeededGenerator(state: 99)
        var loaded = 0, rejected = 0
        let input = Tensor(shape: [1, 3, 8, 8], repeating: 0.5)
        func attempt(_ data: Data) {
            do {
                let network = try Network(model: data, baseDirectory: nil, inputHeight: 8, inputWidth: 8)
                _ = try? network.forward(input)
                loaded += 1
            } catch {
                rejected += 1
            }
        }
        for length in stride(from: 0, to: model.count, by: max(1, model.count / 150)) { attempt(model.prefix(length)) }
        for _ in 0..<300 {
            var bytes = [UInt8](model)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            attempt(Data(bytes))
        }
        #expect(rejected > 0)
        print("fuzz: \(loaded) variants loaded, \(rejected) rejected")
    }
}

@Suite(.serialized) struct NetworkBehaviourTests {
    static func resnet() throws -> (Network, [Tensor])? {
        guard let reference = ReferenceData.referenceOrSkip("NetworkBehaviourTests") else { return nil }
        let network = try Network(contentsOf: reference.appendingPathComponent("models/resnet18.onnx"))
        let inputs = try ["chelsea", "coffee", "bbb_f100"].map {
            try NumPyFile.read(path: reference.appendingPathComponent("inputs/\($0).npy").path)
        }
        return (network, inputs)
    }

    @Test func batchEqualsOneByOne() throws {
        guard let (network, inputs) = try Self.resnet() else { return }
        let target = network.lastSpatialLayer
        let batch = Tensor.concatenate(inputs)
        let pass = try network.forward(batch, retaining: [target])
        var seed = Tensor(shape: pass.logits.shape)
        for i in 0..<inputs.count { seed.storage[i * 1000 + [285, 504, 3][i]] = 1 }
        let gradients = try network.backward(pass, seed: seed, to: [target])
        for (i, x) in inputs.enumerated() {
            let single = try network.forward(x, retaining: [target])
            let g = try network.backward(single, seed: seed.slice(i).reshaped([1, 1000]), to: [target])
            for (a, b) in [(pass.logits.slice(i), single.logits.slice(0)), (pass[target]!.slice(i), single[target]!.slice(0)),
                           (gradients[target]!.slice(i), g[target]!.slice(0))] {
                let scale = max(b.storage.map(abs).max() ?? 0, 1e-6)
                #expect(zip(a.storage, b.storage).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
            }
        }
    }

    @Test func rerunDownstreamWithAnotherBatchSize() throws {
        guard let (network, inputs) = try Self.resnet() else { return }
        let target = "relu_12"
        let pass = try network.forward(inputs[0], retaining: [target])
        let activation = try #require(pass[target])
        // Three copies: unchanged, zeroed channel 0, everything zero.
        var ablated = activation
        let plane = activation.count / activation.shape[1]
        for i in 0..<plane { ablated.storage[i] = 0 }
        let batch = Tensor.concatenate([activation, ablated, Tensor(shape: activation.shape)])
        let out = try network.rerun(pass, replacing: target, with: batch)
        let logits = try #require(out[network.outputName])
        #expect(logits.shape == [3, 1000])
        #expect(zip(logits.slice(0).storage, pass.logits.storage).allSatisfy { abs($0 - $1) < 1e-4 })
        // The ablated copy equals a full forward pass with the same replacement computed separately.
        let second = try network.rerun(pass, replacing: target, with: ablated)[network.outputName]!
        #expect(zip(logits.slice(1).storage, second.storage).allSatisfy { abs($0 - $1) < 1e-4 })
        #expect(logits.slice(1).storage != logits.slice(0).storage)
        #expect(throws: EngineError.self) { try network.rerun(pass, replacing: "no_such_tensor", with: activation) }
    }

    @Test func backwardToAnUnknownTensorIsAnError() throws {
        guard let (network, inputs) = try Self.resnet() else { return }
        let pass = try network.forward(inputs[0])
        #expect(throws: EngineError.self) { try network.backward(pass, seed: Tensor(shape: [1, 1000]), to: ["nope"]) }
        #expect(throws: EngineError.self) { try network.backward(pass, seed: Tensor(shape: [1, 10]), to: ["relu_12"]) }
        #expect(throws: EngineError.self) { try network.forward(Tensor(shape: [1, 3, 100, 100])) }
    }

    @Test func defaultModelIsBundledAndClassifiesTheCat() throws {
        let network = try Network(contentsOf: DefaultModel.url)
        #expect(ImageNetClasses.names.count == 1000 && ImageNetClasses.names[285] == "Egyptian cat")
        #expect(network.lastSpatialLayer == "hardtanh_32")
        guard let reference = ReferenceData.referenceOrSkip("defaultModelIsBundledAndClassifiesTheCat") else { return }
        let x = try NumPyFile.read(path: reference.appendingPathComponent("inputs/chelsea.npy").path)
        let logits = try network.forward(x).logits
        #expect(logits.storage.indices.max { logits.storage[$0] < logits.storage[$1] } == 285)
    }
}

/// The planner's fusions (Conv+Relu, Conv+residual Add+Relu) must not change what callers read.
@Suite struct FusionTests {
    /// input -> Conv -> Relu (r1) -> Conv (c2) -> Add(c2, r1) (s) -> Relu -> GlobalAveragePool -> Flatten -> Gemm.
    static func residualModel() throws -> Data {
        var b = ONNXModelBuilder(opset: 13, inputShape: [nil, 3, 12, 12])
        var rng = SeededGenerator(state: 5)
        b.addInitializer("w1", rng.tensor([8, 3, 3, 3], -1, 1))
        b.addInitializer("b1", rng.tensor([8], -1, 1))
        b.addInitializer("w2", rng.tensor([8, 8, 3, 3], -0.3, 0.3))
        b.addInitializer("b2", rng.tensor([8], -1, 1))
        b.addInitializer("fc", rng.tensor([6, 8], -1, 1))
        b.addNode("Conv", inputs: ["input", "w1", "b1"], outputs: ["c1"], attributes: ["pads": .ints([1, 1, 1, 1])])
        b.addNode("Relu", inputs: ["c1"], outputs: ["r1"])
        b.addNode("Conv", inputs: ["r1", "w2", "b2"], outputs: ["c2"], attributes: ["pads": .ints([1, 1, 1, 1])])
        b.addNode("Add", inputs: ["c2", "r1"], outputs: ["s"])
        b.addNode("Relu", inputs: ["s"], outputs: ["r2"])
        b.addNode("GlobalAveragePool", inputs: ["r2"], outputs: ["g"])
        b.addNode("Flatten", inputs: ["g"], outputs: ["f"])
        b.addNode("Gemm", inputs: ["f", "fc"], outputs: ["output"], attributes: ["transB": .int(1)])
        b.addOutput("output")
        return try b.serialized()
    }

    static func close(_ a: Tensor, _ b: Tensor, _ tolerance: Float = 1e-5) -> Bool {
        let scale = max(b.storage.map(abs).max() ?? 0, 1e-6)
        return a.shape == b.shape && zip(a.storage, b.storage).allSatisfy { abs($0 - $1) <= tolerance * scale }
    }

    /// PyTorch's legacy GELU spelled out (`x / √2 -> Erf -> + 1 -> x * . -> * 0.5`) on tokens: fused into one step
    /// unless a piece is read, and the same values and gradients either way.
    @Test func spelledOutGeluKeepsItsValues() throws {
        let build: (inout ONNXModelBuilder) -> Void = { b in
            b.addInitializer("root2", Tensor(scalar: Float(2).squareRoot()))
            b.addInitializer("one", Tensor(scalar: 1))
            b.addInitializer("half", Tensor(scalar: 0.5))
            b.addInitializer("tokens", Tensor(shape: [3], storage: [0, 6, -1]), integer: true)
            b.addNode("Reshape", inputs: ["input", "tokens"], outputs: ["x"])
            b.addNode("Div", inputs: ["x", "root2"], outputs: ["d"])
            b.addNode("Erf", inputs: ["d"], outputs: ["e"])
            b.addNode("Add", inputs: ["e", "one"], outputs: ["a"])
            b.addNode("Mul", inputs: ["x", "a"], outputs: ["m"])
            b.addNode("Mul", inputs: ["m", "half"], outputs: ["output"])
        }
        let network = try builtNetwork([2, 3, 4, 4], build)
        var rng = SeededGenerator(state: 12)
        let x = rng.tensor([2, 3, 4, 4], -3, 3)
        let fused = try network.forward(x).logits
        let pieces = try network.forward(x, retaining: ["e", "m"])
        let gelu = x.storage.map { 0.5 * $0 * (1 + erf($0 / Float(2).squareRoot())) }
        #expect(fused.shape == [2, 6, 8])
        #expect(zip(fused.storage, gelu).allSatisfy { abs($0 - $1) <= 1e-6 })
        #expect(Self.close(pieces.logits, fused))
        let e = try #require(pieces["e"])
        #expect(zip(e.storage, x.storage).allSatisfy { abs($0 - erf($1 / Float(2).squareRoot())) <= 1e-6 })
        try checkGradient("spelled-out GELU", [2, 3, 4, 4], build)
    }

    @Test(arguments: [ActivationLayout.channelBlocks, .channelsLast])
    func fusedResidualMatchesThePlainPlan(layout: ActivationLayout) throws {
        let data = try Self.residualModel()
        let fast = try Network(model: data, baseDirectory: nil, inputHeight: 12, inputWidth: 12, layout: layout)
        let plain = try Network(model: data, baseDirectory: nil, inputHeight: 12, inputWidth: 12, layout: .nchw)
        var rng = SeededGenerator(state: 8)
        let x = rng.tensor([5, 3, 12, 12], -2, 2)
        // Nothing retained: everything fuses; the logits agree with the plain NCHW run.
        let fused = try fast.forward(x)
        let reference = try plain.forward(x, retaining: ["r1", "s"])
        #expect(Self.close(fused.logits, reference.logits))
        // A retained sum is the exact elementwise sum of its branches, as the ONNX Add defines it.
        let read = try fast.forward(x, retaining: ["c2", "r1", "s"])
        let c2 = try #require(read["c2"]), r1 = try #require(read["r1"]), s = try #require(read["s"])
        #expect(s.storage == zip(c2.storage, r1.storage).map { $0 + $1 })
        // The gradient to the residual branch after a fused forward equals the plain one.
        var seed = Tensor(shape: [5, 6])
        for i in 0..<5 { seed.storage[i * 6 + i % 6] = 1 }
        let g = try fast.backward(fused, seed: seed, to: ["r1"])["r1"]!
        let gPlain = try plain.backward(reference, seed: seed, to: ["r1"])["r1"]!
        #expect(Self.close(g, gPlain))
        #expect(g.storage.contains { $0 != 0 })
        // Each row of the batch equals the image run alone.
        for i in 0..<5 {
            let alone = try fast.forward(x.slice(i).reshaped([1, 3, 12, 12])).logits
            #expect(Self.close(fused.logits.slice(i).reshaped([1, 6]), alone))
        }
    }

    /// input -> Conv(3->16) (c1) -> Relu (r1) -> Conv 3x3 (c2) -> Add(c2, r1) (s) -> Relu (r2) -> Conv 3x3 (c3) -> Relu (r3)
    /// -> Conv 1x1 (c4) -> MaxPool (m) -> GlobalAveragePool -> Flatten, concatenated with ReduceMean(r3) over H and W
    /// -> Gemm: blocks from c1 to m (the means read them as they are), converted at the edges.
    static func blockedChainModel(size: Int = 10) throws -> Data {
        var b = ONNXModelBuilder(opset: 13, inputShape: [nil, 3, size, size])
        var rng = SeededGenerator(state: 11)
        b.addInitializer("w1", rng.tensor([16, 3, 3, 3], -1, 1))
        b.addInitializer("w2", rng.tensor([16, 16, 3, 3], -0.3, 0.3))
        b.addInitializer("b2", rng.tensor([16], -1, 1))
        b.addInitializer("w3", rng.tensor([16, 16, 3, 3], -0.3, 0.3))
        b.addInitializer("w4", rng.tensor([24, 16, 1, 1], -0.5, 0.5))
        b.addInitializer("fc", rng.tensor([5, 40], -1, 1))
        let pad: [String: ONNXAttribute] = ["pads": .ints([1, 1, 1, 1])]
        b.addNode("Conv", inputs: ["input", "w1"], outputs: ["c1"], attributes: pad)
        b.addNode("Relu", inputs: ["c1"], outputs: ["r1"])
        b.addNode("Conv", inputs: ["r1", "w2", "b2"], outputs: ["c2"], attributes: pad)
        b.addNode("Add", inputs: ["c2", "r1"], outputs: ["s"])
        b.addNode("Relu", inputs: ["s"], outputs: ["r2"])
        b.addNode("Conv", inputs: ["r2", "w3"], outputs: ["c3"], attributes: pad)
        b.addNode("Relu", inputs: ["c3"], outputs: ["r3"])
        b.addNode("Conv", inputs: ["r3", "w4"], outputs: ["c4"])
        b.addNode("MaxPool", inputs: ["c4"], outputs: ["m"], attributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])
        b.addNode("GlobalAveragePool", inputs: ["m"], outputs: ["g"])
        b.addNode("Flatten", inputs: ["g"], outputs: ["f"])
        b.addNode("ReduceMean", inputs: ["r3"], outputs: ["means"], attributes: ["axes": .ints([2, 3]), "keepdims": .int(0)])
        b.addNode("Concat", inputs: ["f", "means"], outputs: ["features"], attributes: ["axis": .int(1)])
        b.addNode("Gemm", inputs: ["features", "fc"], outputs: ["output"], attributes: ["transB": .int(1)])
        b.addOutput("output")
        return try b.serialized()
    }

    @Test func channelBlocksGiveThePlainValues() throws {
        let data = try Self.blockedChainModel()
        let blocked = try Network(model: data, baseDirectory: nil, inputHeight: 10, inputWidth: 10, layout: .channelBlocks)
        let plain = try Network(model: data, baseDirectory: nil, inputHeight: 10, inputWidth: 10, layout: .nchw)
        // Blocks start at the stem (it reads the 3-channel input as it is) and reach the max pooling.
        let storage = Dictionary(uniqueKeysWithValues: blocked.layers.map { ($0.name, $0.storage) })
        #expect(["c1", "r1", "c2", "s", "r2", "c3", "r3", "c4", "m"].allSatisfy { storage[$0] == "nChw8c" }, "\(storage)")
        #expect(plain.layers.allSatisfy { $0.storage == "NCHW" })
        var rng = SeededGenerator(state: 12)
        let x = rng.tensor([3, 3, 10, 10], -2, 2)
        let names: Set<String> = ["r1", "s", "r2", "c3", "r3", "m", "means"]
        let fast = try blocked.forward(x, retaining: names), reference = try plain.forward(x, retaining: names)
        #expect(Self.close(fast.logits, reference.logits))
        for name in names { #expect(Self.close(try #require(fast[name]), try #require(reference[name])), "\(name)") }
        // Gradients to blocked and plain tensors, and a rerun from a blocked tensor, agree with the NCHW plan.
        var seed = Tensor(shape: [3, 5])
        for i in 0..<3 { seed.storage[i * 5 + i] = 1 }
        let targets: Set<String> = ["r1", "s", "r3", "c4", blocked.inputName]
        let g = try blocked.backward(fast, seed: seed, to: targets), gPlain = try plain.backward(reference, seed: seed, to: targets)
        for t in targets { #expect(Self.close(g[t]!, gPlain[t]!, 1e-4) && g[t]!.storage.contains { $0 != 0 }, "\(t)") }
        let r2 = try #require(reference["r2"])
        let halved = Tensor(shape: r2.shape, storage: r2.storage.map { $0 * 0.5 })
        let rerun = try blocked.rerun(fast, replacing: "r2", with: halved)[blocked.outputName]!
        let rerunPlain = try plain.rerun(reference, replacing: "r2", with: halved)[plain.outputName]!
        #expect(Self.close(rerun, rerunPlain) && !Self.close(rerun, fast.logits))
    }

    /// At 14x14 and more, the 3x3 convolutions on blocks run Winograd's F(4x4,3x3) (15: the last tiles hang over the
    /// edge); their values, with bias, fused residual and ReLU, match the plain plan's direct kernels to rounding.
    @Test(arguments: [15, 16])
    func winogradConvolutionsGiveThePlainValues(size: Int) throws {
        let data = try Self.blockedChainModel(size: size)
        let blocked = try Network(model: data, baseDirectory: nil, inputHeight: size, inputWidth: size, layout: .channelBlocks)
        let plain = try Network(model: data, baseDirectory: nil, inputHeight: size, inputWidth: size, layout: .nchw)
        let algorithms = Dictionary(uniqueKeysWithValues: blocked.layers.map { ($0.name, $0.algorithm) })
        #expect(algorithms["c2"] == "Winograd F(4x4,3x3)" && algorithms["c3"] == "Winograd F(4x4,3x3)", "\(algorithms)")
        #expect(algorithms["c1"] == .some(nil) && plain.layers.allSatisfy { $0.algorithm == nil })
        var rng = SeededGenerator(state: 14)
        let x = rng.tensor([3, 3, size, size], -2, 2)
        let names: Set<String> = ["r1", "r2", "r3"]
        let fast = try blocked.forward(x, retaining: names), reference = try plain.forward(x, retaining: names)
        #expect(Self.close(fast.logits, reference.logits, 1e-4))
        for name in names { #expect(Self.close(try #require(fast[name]), try #require(reference[name]), 1e-4), "\(name)") }
        // The backward through them is the direct one: gradients agree too.
        var seed = Tensor(shape: [3, 5])
        for i in 0..<3 { seed.storage[i * 5 + i] = 1 }
        let g = try blocked.backward(fast, seed: seed, to: ["r1"]), gPlain = try plain.backward(reference, seed: seed, to: ["r1"])
        #expect(Self.close(g["r1"]!, gPlain["r1"]!, 1e-4) && g["r1"]!.storage.contains { $0 != 0 })
    }

    /// input -> Conv 3x3 (3->8) (c1) -> Clip (r1) -> depthwise Conv 3x3 (d) -> Conv 1x1 (p) -> GlobalAveragePool -> Flatten
    /// -> Gemm: a MobileNet-like start, with no dense kernel reading the stem.
    @Test func aStemFeedingDepthwiseKernelsStaysChannelsLast() throws {
        var b = ONNXModelBuilder(opset: 13, inputShape: [nil, 3, 8, 8])
        var rng = SeededGenerator(state: 13)
        b.addInitializer("w1", rng.tensor([8, 3, 3, 3], -1, 1))
        b.addInitializer("wd", rng.tensor([8, 1, 3, 3], -1, 1))
        b.addInitializer("wp", rng.tensor([16, 8, 1, 1], -1, 1))
        b.addInitializer("lo", Tensor(scalar: 0))
        b.addInitializer("hi", Tensor(scalar: 6))
        b.addInitializer("fc", rng.tensor([4, 16], -1, 1))
        let pad: [String: ONNXAttribute] = ["pads": .ints([1, 1, 1, 1])]
        b.addNode("Conv", inputs: ["input", "w1"], outputs: ["c1"], attributes: pad)
        b.addNode("Clip", inputs: ["c1", "lo", "hi"], outputs: ["r1"])
        b.addNode("Conv", inputs: ["r1", "wd"], outputs: ["d"], attributes: pad.merging(["group": .int(8)]) { a, _ in a })
        b.addNode("Conv", inputs: ["d", "wp"], outputs: ["p"])
        b.addNode("GlobalAveragePool", inputs: ["p"], outputs: ["g"])
        b.addNode("Flatten", inputs: ["g"], outputs: ["f"])
        b.addNode("Gemm", inputs: ["f", "fc"], outputs: ["output"], attributes: ["transB": .int(1)])
        b.addOutput("output")
        let data = try b.serialized()
        let network = try Network(model: data, baseDirectory: nil, inputHeight: 8, inputWidth: 8, layout: .channelBlocks)
        #expect(network.layers.filter { $0.opType == "Conv" || $0.opType == "Clip" }.allSatisfy { $0.storage == "NHWC" }, "\(network.layers)")
        let plain = try Network(model: data, baseDirectory: nil, inputHeight: 8, inputWidth: 8, layout: .nchw)
        let x = rng.tensor([2, 3, 8, 8], -2, 2)
        #expect(Self.close(try network.forward(x).logits, try plain.forward(x).logits))
    }
}

/// Calls reuse the network's large activation buffers: a later call must neither see what an earlier one left in them
/// nor change what an earlier pass retained.
@Suite struct BufferReuseTests {
    /// A copy of `tensor` sharing no memory with it.
    static func snapshot(_ tensor: Tensor) -> Tensor {
        Tensor(shape: tensor.shape, storage: tensor.storage.map { $0 }, order: tensor.order)
    }

    /// At 512x512 the gradients and recomputed activations of a batch of 2 reach the pool's 32 MB; at 16x16 nothing
    /// does, and the same bookkeeping runs on the allocator's buffers.
    @Test(arguments: [(ActivationLayout.channelBlocks, 512), (.channelBlocks, 16), (.channelsLast, 16), (.nchw, 16)])
    func repeatedCallsGiveTheFirstCallsValues(layout: ActivationLayout, size: Int) throws {
        let network = try Network(model: try FusionTests.blockedChainModel(size: size), baseDirectory: nil, inputHeight: size,
                                  inputWidth: size, layout: layout)
        var rng = SeededGenerator(state: 21)
        let x = rng.tensor([2, 3, size, size], -2, 2), other = rng.tensor([3, 3, size, size], -2, 2)
        let names: Set<String> = ["r1", "s", "m"], targets: Set<String> = ["r1", "c4", network.inputName]
        var seed = Tensor(shape: [2, 5])
        for i in 0..<2 { seed.storage[i * 5 + i + 1] = 1 }
        func run(_ input: Tensor) throws -> (ForwardPass, [String: Tensor]) {
            let pass = try network.forward(input, retaining: names)
            return (pass, try network.backward(pass, seed: seed, to: targets, rules: .guidedBackprop))
        }
        let (first, firstGradients) = try run(x)
        let retained = try names.map { try Self.snapshot(#require(first[$0])) }
        let logits = Self.snapshot(first.logits)
        for _ in 0..<2 {
            // Other inputs and batch sizes in between, forward alone and with gradients, fill the buffers with other values.
            _ = try network.forward(other)
            _ = try network.backward(try network.forward(other.slice(1).reshaped([1, 3, size, size]), retaining: ["s"]),
                                     seed: Tensor(shape: [1, 5], repeating: 1), to: ["s", network.inputName])
            let (again, gradients) = try run(x)
            #expect(again.logits == logits)
            for (name, value) in zip(names, retained) { #expect(try #require(again[name]) == value, "\(name)") }
            for t in targets { #expect(gradients[t] == firstGradients[t], "\(t)") }
        }
        // The first pass still holds what it retained, and a backward from it still gives its gradients.
        #expect(first.logits == logits)
        for (name, value) in zip(names, retained) { #expect(try #require(first[name]) == value, "\(name)") }
        let later = try network.backward(first, seed: seed, to: targets, rules: .guidedBackprop)
        for t in targets { #expect(later[t] == firstGradients[t], "\(t)") }
    }
}

/// A batch whose activations exceed the cache budget runs in chunks, each reusing the buffers of the one before.
@Suite struct ChunkedBatchTests {
    @Test func chunksGiveEachImageItsOwnValues() throws {
        // 16 channels of 320x320 floats per image: 6.5 MB, so the batch runs one image at a time.
        let size = 320
        let network = try Network(model: try FusionTests.blockedChainModel(size: size), baseDirectory: nil, inputHeight: size,
                                  inputWidth: size)
        var rng = SeededGenerator(state: 31)
        let x = rng.tensor([3, 3, size, size], -2, 2)
        let names: Set<String> = ["r1", "m"]
        var seed = Tensor(shape: [3, 5])
        for i in 0..<3 { seed.storage[i * 5 + i] = 1 }
        let pass = try network.forward(x, retaining: names)
        let gradients = try network.backward(pass, seed: seed, to: ["r1"])
        for i in 0..<3 {
            let image = x.slice(i).reshaped([1, 3, size, size])
            let alone = try network.forward(image, retaining: names)
            #expect(pass.logits.slice(i) == alone.logits.slice(0), "image \(i)")
            for name in names { #expect(try #require(pass[name]).slice(i) == (try #require(alone[name])).slice(0), "image \(i) \(name)") }
            let g = try network.backward(alone, seed: seed.slice(i).reshaped([1, 5]), to: ["r1"])
            #expect(try #require(gradients["r1"]).slice(i) == (try #require(g["r1"])).slice(0), "image \(i)")
        }
    }
}
