import Core
import Foundation
import Testing
import Engine
import EngineTestSupport

/// A deterministic generator so that every run checks the same points.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state
    }
    /// Uniform in [lo, hi), avoiding the kinks of piecewise operators (0, ±1, ±2.5, ±3, 6).
    mutating func value(_ lo: Float, _ hi: Float) -> Float {
        while true {
            let v = Float.random(in: lo..<hi, using: &self)
            if [0, 1, -1, 2.5, -2.5, 3, -3, 6].allSatisfy({ abs(v - $0) > 0.03 }) { return v }
        }
    }
    mutating func tensor(_ shape: [Int], _ lo: Float = -2, _ hi: Float = 2) -> Tensor {
        Tensor(shape: shape, storage: (0..<Tensor.elementCount(shape)).map { _ in value(lo, hi) })
    }
}

/// A network built from one small graph: `input` [shape] -> ... -> `output`.
func builtNetwork(_ shape: [Int], opset: Int = 17, _ build: (inout ONNXModelBuilder) -> Void) throws -> Network {
    var builder = ONNXModelBuilder(opset: opset, inputShape: [nil] + shape.dropFirst().map { Optional($0) })
    build(&builder)
    builder.addOutput("output")
    return try Network(model: try builder.serialized(), baseDirectory: nil, inputHeight: shape[2], inputWidth: shape[3])
}

/// Compares backward's input gradient with central finite differences of `sum(seed * output)`.
func checkGradient(_ label: String, _ shape: [Int], opset: Int = 17, range: (Float, Float) = (-2, 2),
                   tolerance: Float = 1e-2, _ build: (inout ONNXModelBuilder) -> Void) throws {
    let network = try builtNetwork(shape, opset: opset, build)
    var rng = SeededGenerator(state: UInt64(label.utf8.reduce(7) { $0 &* 31 &+ Int($1) }.magnitude))
    let x = rng.tensor(shape, range.0, range.1)
    let pass = try network.forward(x)
    let y = pass.logits
    let seed = rng.tensor(y.shape, -1, 1)
    let analytic = try #require(try network.backward(pass, seed: seed, to: [network.inputName])[network.inputName])
    #expect(analytic.shape == x.shape, "\(label): gradient shape \(analytic.shape)")
    func objective(_ x: Tensor) throws -> Double {
        let y = try network.forward(x).logits
        return zip(y.storage, seed.storage).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }
    let epsilon: Float = 1e-3
    var worst: Float = 0, scale: Float = 1e-3
    for i in 0..<x.count {
        var plus = x, minus = x
        plus.storage[i] += epsilon
        minus.storage[i] -= epsilon
        let numeric = Float((try objective(plus) - objective(minus)) / Double(2 * epsilon))
        worst = max(worst, abs(numeric - analytic.storage[i]))
        scale = max(scale, abs(numeric))
    }
    #expect(worst <= tolerance * max(scale, 1), "\(label): backward differs from finite differences by \(worst) (scale \(scale))")
}

@Suite struct OperatorGradientTests {
    typealias B = ONNXModelBuilder

    static func unary(_ op: String, _ attributes: [String: ONNXAttribute] = [:]) -> (inout B) -> Void {
        { $0.addNode(op, inputs: ["input"], outputs: ["output"], attributes: attributes) }
    }

    @Test(arguments: [
        ("Relu", [:]), ("LeakyRelu", ["alpha": .float(0.1)]), ("Sigmoid", [:]), ("HardSigmoid", [:]),
        ("HardSwish", [:]), ("Tanh", [:]), ("Erf", [:]), ("Gelu", [:]), ("Gelu", ["approximate": .string("tanh")]),
        ("Identity", [:]), ("Dropout", [:]), ("GlobalAveragePool", [:]), ("GlobalMaxPool", [:]),
        ("Flatten", ["axis": .int(1)]), ("Transpose", ["perm": .ints([0, 2, 3, 1])]), ("Softmax", ["axis": .int(1)]),
        ("Softmax", ["axis": .int(-1)]),
        ("MaxPool", ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "ceil_mode": .int(1)]),
        ("MaxPool", ["kernel_shape": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]), "dilations": .ints([2, 2])]),
        ("AveragePool", ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]),
        ("AveragePool", ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]),
                         "count_include_pad": .int(1), "ceil_mode": .int(1)]),
    ] as [(String, [String: ONNXAttribute])])
    func unaryOperator(_ op: String, _ attributes: [String: ONNXAttribute]) throws {
        try checkGradient("\(op) \(attributes.keys.sorted())", [2, 3, 5, 6], Self.unary(op, attributes))
    }

    @Test func clipWithInputBoundsAndLegacyAttributes() throws {
        try checkGradient("Clip", [1, 2, 4, 4]) { b in
            b.addInitializer("lo", Tensor(scalar: -1)); b.addInitializer("hi", Tensor(scalar: 1))
            b.addNode("Clip", inputs: ["input", "lo", "hi"], outputs: ["output"])
        }
        try checkGradient("Clip opset 6", [1, 2, 4, 4], opset: 9) { b in
            b.addNode("Clip", inputs: ["input"], outputs: ["output"], attributes: ["min": .float(0), "max": .float(1)])
        }
    }

    @Test(arguments: ["Add", "Sub", "Mul", "Div"])
    func binaryOperatorsBroadcastBothOperands(_ op: String) throws {
        // Second operand: a per-channel tensor computed from the input, so both partials and the reduction are checked.
        try checkGradient(op, [2, 3, 4, 5]) { b in
            b.addNode("GlobalAveragePool", inputs: ["input"], outputs: ["m"])
            b.addNode("Sigmoid", inputs: ["m"], outputs: ["s"])
            b.addNode(op, inputs: ["input", "s"], outputs: ["output"])
        }
        try checkGradient("\(op) constant", [1, 3, 2, 2]) { b in
            b.addInitializer("c", Tensor(shape: [3, 1, 1], storage: [0.5, 2, -1.5]))
            b.addNode(op, inputs: ["c", "input"], outputs: ["output"])
        }
    }

    @Test func convolutionVariants() throws {
        var rng = SeededGenerator(state: 3)
        let cases: [(String, [Int], [Int], [String: ONNXAttribute])] = [
            ("plain", [2, 3, 6, 7], [4, 3, 3, 3], ["pads": .ints([1, 1, 1, 1])]),
            ("strided asymmetric pads", [1, 3, 7, 7], [2, 3, 3, 3], ["strides": .ints([2, 2]), "pads": .ints([0, 0, 1, 1])]),
            ("depthwise", [1, 4, 6, 6], [4, 1, 3, 3], ["group": .int(4), "pads": .ints([1, 1, 1, 1])]),
            ("grouped dilated", [1, 4, 7, 7], [6, 2, 3, 3], ["group": .int(2), "dilations": .ints([2, 2])]),
            ("same upper", [1, 2, 5, 6], [3, 2, 2, 3], ["auto_pad": .string("SAME_UPPER"), "strides": .ints([2, 2])]),
            ("same lower", [1, 2, 5, 6], [3, 2, 2, 2], ["auto_pad": .string("SAME_LOWER")]),
            ("valid", [1, 2, 5, 6], [3, 2, 2, 2], ["auto_pad": .string("VALID")]),
        ]
        for (label, x, w, attributes) in cases {
            let weights = rng.tensor(w, -1, 1), bias = rng.tensor([w[0]], -1, 1)
            try checkGradient("Conv \(label)", x) { b in
                b.addInitializer("w", weights); b.addInitializer("b", bias)
                b.addNode("Conv", inputs: ["input", "w", "b"], outputs: ["output"], attributes: attributes)
            }
        }
    }

    /// After a convolution the planner keeps tensors channels-last: pooling and elementwise ops then run on NHWC storage.
    @Test func channelsLastChain() throws {
        var rng = SeededGenerator(state: 17)
        let weights = rng.tensor([5, 3, 1, 1], -1, 1), weights2 = rng.tensor([4, 5, 3, 3], -1, 1)
        try checkGradient("Conv-MaxPool-Relu-Conv-Add", [2, 3, 7, 7]) { b in
            b.addInitializer("w", weights); b.addInitializer("w2", weights2)
            b.addNode("Conv", inputs: ["input", "w"], outputs: ["c"])
            b.addNode("MaxPool", inputs: ["c"], outputs: ["p"], attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]),
                                                                               "pads": .ints([1, 1, 1, 1]), "ceil_mode": .int(1)])
            b.addNode("Relu", inputs: ["p"], outputs: ["r"])
            b.addNode("Conv", inputs: ["r", "w2"], outputs: ["c2"], attributes: ["pads": .ints([1, 1, 1, 1])])
            b.addNode("Tanh", inputs: ["c2"], outputs: ["t"])
            b.addNode("Add", inputs: ["c2", "t"], outputs: ["output"])
        }
    }

    @Test func normalisationAndActivationsWithParameters() throws {
        try checkGradient("BatchNormalization", [2, 3, 3, 3]) { b in
            b.addInitializer("s", Tensor(shape: [3], storage: [1, 2, -0.5])); b.addInitializer("b", Tensor(shape: [3], storage: [0.1, 0, 1]))
            b.addInitializer("m", Tensor(shape: [3], storage: [0.2, -1, 0])); b.addInitializer("v", Tensor(shape: [3], storage: [1, 0.5, 2]))
            b.addNode("BatchNormalization", inputs: ["input", "s", "b", "m", "v"], outputs: ["output"], attributes: ["epsilon": .float(1e-3)])
        }
        try checkGradient("PRelu", [1, 3, 3, 3]) { b in
            b.addInitializer("slope", Tensor(shape: [3, 1, 1], storage: [0.1, 0.2, 0.3]))
            b.addNode("PRelu", inputs: ["input", "slope"], outputs: ["output"])
        }
        try checkGradient("LayerNormalization", [2, 3, 2, 4]) { b in
            b.addInitializer("g", Tensor(shape: [2, 4], storage: (0..<8).map { 0.5 + Float($0) * 0.1 }))
            b.addInitializer("b", Tensor(shape: [2, 4], storage: (0..<8).map { Float($0) * 0.05 }))
            b.addNode("LayerNormalization", inputs: ["input", "g", "b"], outputs: ["output"], attributes: ["axis": .int(2)])
        }
    }

    @Test func shapeAndIndexOperators() throws {
        try checkGradient("Reshape+Gemm", [2, 2, 3, 3]) { b in
            var rng = SeededGenerator(state: 5)
            b.addInitializer("shape", Tensor(shape: [2], storage: [0, -1]), integer: true)
            b.addInitializer("w", rng.tensor([4, 18], -1, 1)); b.addInitializer("c", rng.tensor([4], -1, 1))
            b.addNode("Reshape", inputs: ["input", "shape"], outputs: ["flat"])
            b.addNode("Gemm", inputs: ["flat", "w", "c"], outputs: ["output"], attributes: ["transB": .int(1), "alpha": .float(0.5)])
        }
        try checkGradient("MatMul", [1, 2, 3, 4]) { b in
            b.addNode("Transpose", inputs: ["input"], outputs: ["t"], attributes: ["perm": .ints([0, 1, 3, 2])])
            b.addNode("MatMul", inputs: ["input", "t"], outputs: ["output"])
        }
        try checkGradient("ReduceMean axes input", [2, 3, 4, 4], opset: 18) { b in
            b.addInitializer("axes", Tensor(shape: [2], storage: [-1, -2]), integer: true)
            b.addNode("ReduceMean", inputs: ["input", "axes"], outputs: ["output"], attributes: ["keepdims": .int(0)])
        }
        try checkGradient("ReduceMean axes attribute", [2, 3, 4, 4], opset: 13) { b in
            b.addNode("ReduceMean", inputs: ["input"], outputs: ["output"], attributes: ["axes": .ints([1])])
        }
        try checkGradient("Split+Concat", [1, 4, 3, 3]) { b in
            b.addInitializer("split", Tensor(shape: [2], storage: [1, 3]), integer: true)
            b.addNode("Split", inputs: ["input", "split"], outputs: ["a", "b"], attributes: ["axis": .int(1)])
            b.addNode("Sigmoid", inputs: ["a"], outputs: ["sa"])
            b.addNode("Concat", inputs: ["b", "sa", "a"], outputs: ["output"], attributes: ["axis": .int(1)])
        }
        // A first dimension that is not the batch (the dynamo-exported ConvNeXt head flattens [N, C, 1, 1] to [N*C]).
        try checkGradient("Reshape+Split+Concat along axis 0", [1, 3, 2, 2]) { b in
            b.addInitializer("flat", Tensor(shape: [1], storage: [-1]), integer: true)
            b.addInitializer("split", Tensor(shape: [2], storage: [5, 7]), integer: true)
            b.addNode("Reshape", inputs: ["input", "flat"], outputs: ["f"])
            b.addNode("Split", inputs: ["f", "split"], outputs: ["a", "b"], attributes: ["axis": .int(0)])
            b.addNode("Tanh", inputs: ["a"], outputs: ["ta"])
            b.addNode("Concat", inputs: ["b", "ta", "a"], outputs: ["output"], attributes: ["axis": .int(0)])
        }
        try checkGradient("Slice", [1, 3, 5, 6]) { b in
            b.addInitializer("starts", Tensor(shape: [2], storage: [1, -1]), integer: true)
            b.addInitializer("ends", Tensor(shape: [2], storage: [5, -7]), integer: true)
            b.addInitializer("axes", Tensor(shape: [2], storage: [2, 3]), integer: true)
            b.addInitializer("steps", Tensor(shape: [2], storage: [2, -2]), integer: true)
            b.addNode("Slice", inputs: ["input", "starts", "ends", "axes", "steps"], outputs: ["output"])
        }
        try checkGradient("Squeeze+Unsqueeze", [1, 1, 3, 4]) { b in
            b.addInitializer("axes", Tensor(shape: [1], storage: [1]), integer: true)
            b.addNode("Squeeze", inputs: ["input", "axes"], outputs: ["s"])
            b.addNode("Tanh", inputs: ["s"], outputs: ["t"])
            b.addNode("Unsqueeze", inputs: ["t", "axes"], outputs: ["output"])
        }
        for mode in ["constant", "reflect", "edge"] {
            try checkGradient("Pad \(mode)", [1, 2, 4, 4]) { b in
                b.addInitializer("pads", Tensor(shape: [8], storage: [0, 0, 1, 2, 0, 0, 2, 1]), integer: true)
                b.addNode("Pad", inputs: ["input", "pads"], outputs: ["output"], attributes: ["mode": .string(mode)])
            }
        }
    }
}

@Suite struct OperatorValueTests {
    func run(_ shape: [Int], _ x: [Float], opset: Int = 17, _ build: (inout ONNXModelBuilder) -> Void) throws -> Tensor {
        try builtNetwork(shape, opset: opset, build).forward(Tensor(shape: shape, storage: x)).logits
    }

    @Test func convolutionByHand() throws {
        let y = try run([1, 1, 3, 3], (1...9).map(Float.init)) { b in
            b.addInitializer("w", Tensor(shape: [1, 1, 2, 2], repeating: 1)); b.addInitializer("b", Tensor(shape: [1], storage: [1]))
            b.addNode("Conv", inputs: ["input", "w", "b"], outputs: ["output"])
        }
        #expect(y == Tensor(shape: [1, 1, 2, 2], storage: [13, 17, 25, 29]))
    }

    @Test func poolingCeilModeAndPadding() throws {
        let x = (0..<16).map(Float.init)
        let ceil = try run([1, 1, 4, 4], x) { b in
            b.addNode("MaxPool", inputs: ["input"], outputs: ["output"], attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "ceil_mode": .int(1)])
        }
        #expect(ceil == Tensor(shape: [1, 1, 2, 2], storage: [10, 11, 14, 15]))
        let floor = try run([1, 1, 4, 4], x) { b in
            b.addNode("MaxPool", inputs: ["input"], outputs: ["output"], attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2])])
        }
        #expect(floor == Tensor(shape: [1, 1, 1, 1], storage: [10]))
        let average = try run([1, 1, 2, 2], [1, 2, 3, 4]) { b in
            b.addNode("AveragePool", inputs: ["input"], outputs: ["output"],
                      attributes: ["kernel_shape": .ints([2, 2]), "pads": .ints([1, 1, 0, 0]), "count_include_pad": .int(1)])
        }
        #expect(average == Tensor(shape: [1, 1, 2, 2], storage: [0.25, 0.75, 1, 2.5]))
    }

    @Test func activationsByHand() throws {
        let x: [Float] = [-4, -1, 0.5, 7]
        let clip = try run([1, 1, 2, 2], x) { b in
            b.addInitializer("lo", Tensor(scalar: 0)); b.addInitializer("hi", Tensor(scalar: 6))
            b.addNode("Clip", inputs: ["input", "lo", "hi"], outputs: ["output"])
        }
        #expect(clip.storage == [0, 0, 0.5, 6])
        let swish = try run([1, 1, 2, 2], x) { b in b.addNode("HardSwish", inputs: ["input"], outputs: ["output"]) }
        #expect(zip(swish.storage, [0, -1 * (2.0 / 6), 0.5 * (3.5 / 6), 7] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 })
        let softmax = try run([1, 1, 2, 2], [0, 0, log(3), 0]) { b in
            b.addNode("Softmax", inputs: ["input"], outputs: ["output"], attributes: ["axis": .int(3)])
        }
        #expect(zip(softmax.storage, [0.5, 0.5, 0.75, 0.25]).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test func gemmByHand() throws {
        let y = try run([1, 1, 1, 2], [1, 2]) { b in
            b.addInitializer("shape", Tensor(shape: [2], storage: [1, 2]), integer: true)
            b.addInitializer("w", Tensor(shape: [3, 2], storage: [1, 0, 0, 1, 1, 1]))
            b.addInitializer("c", Tensor(shape: [3], storage: [10, 20, 30]))
            b.addNode("Reshape", inputs: ["input", "shape"], outputs: ["r"])
            b.addNode("Gemm", inputs: ["r", "w", "c"], outputs: ["output"], attributes: ["transB": .int(1)])
        }
        #expect(y == Tensor(shape: [1, 3], storage: [11, 22, 33]))
    }

    /// The legacy exporter's `Shape -> Gather -> Unsqueeze -> Concat -> Reshape` flatten, with the batch left free.
    @Test func shapeSubgraphsFoldForEveryBatchSize() throws {
        let network = try builtNetwork([1, 2, 3, 3], opset: 11) { b in
            b.addNode("Shape", inputs: ["input"], outputs: ["shape"])
            b.addNode("Constant", inputs: [], outputs: ["zero"], attributes: ["value": .integerTensor(Tensor(scalar: 0))])
            b.addNode("Gather", inputs: ["shape", "zero"], outputs: ["n"], attributes: ["axis": .int(0)])
            b.addNode("Unsqueeze", inputs: ["n"], outputs: ["n1"], attributes: ["axes": .ints([0])])
            b.addNode("Constant", inputs: [], outputs: ["rest"], attributes: ["value": .integerTensor(Tensor(shape: [1], storage: [-1]))])
            b.addNode("Concat", inputs: ["n1", "rest"], outputs: ["target"], attributes: ["axis": .int(0)])
            b.addNode("Reshape", inputs: ["input", "target"], outputs: ["output"])
        }
        #expect(network.layers.map(\.opType) == ["Reshape"])
        for n in [1, 3] {
            let x = Tensor(shape: [n, 2, 3, 3], storage: (0..<(n * 18)).map(Float.init))
            let y = try network.forward(x).logits
            #expect(y.shape == [n, 18] && y.storage == x.storage)
        }
    }

    @Test func guidedBackpropGatesReluByGradientSign() throws {
        let network = try builtNetwork([1, 1, 1, 4]) { b in
            b.addInitializer("w", Tensor(shape: [1, 1, 1, 1], storage: [1]))
            b.addNode("Conv", inputs: ["input", "w"], outputs: ["c"])
            b.addNode("Relu", inputs: ["c"], outputs: ["output"])
        }
        let pass = try network.forward(Tensor(shape: [1, 1, 1, 4], storage: [-1, 2, 3, 4]))
        let seed = Tensor(shape: [1, 1, 1, 4], storage: [5, 5, -5, 5])
        let standard = try network.backward(pass, seed: seed, to: ["input"])["input"]
        let guided = try network.backward(pass, seed: seed, to: ["input"], rules: .guidedBackprop)["input"]
        #expect(standard?.storage == [0, 5, -5, 5])
        #expect(guided?.storage == [0, 5, 0, 5])
    }
}
