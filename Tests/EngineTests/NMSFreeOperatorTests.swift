import Core
import Foundation
import Testing
import Engine
import EngineTestSupport

/// The operators of ultralytics' NMS-free (end-to-end) heads: ReduceMax, TopK, GatherElements, and integer Div and Mod on
/// tensors computed at run time. Expected values are what onnxruntime 1.32 computes for the same one-node graphs on the
/// same inputs (pasted in: `scripts/print-nms-free-operator-cases`, the methods venv).
@Suite struct NMSFreeOperatorTests {
    typealias B = ONNXModelBuilder

    /// `(i * i) % 5 - 2`, [1, 2, 3, 4]: ties along every axis.
    static let x = Tensor(shape: [1, 2, 3, 4], storage: (0..<24).map { Float(($0 * $0) % 5 - 2) })

    /// The worst difference between `actual` and `expected`, or infinity when their shapes differ.
    static func difference(_ actual: Tensor?, _ shape: [Int], _ expected: [Float]) -> Float {
        guard let actual, actual.shape == shape, actual.count == expected.count else { return .infinity }
        return zip(actual.storage, expected).map { abs($0 - $1) }.max() ?? 0
    }

    /// The description of the error loading (or, with `run`, running) a graph built by `build`.
    static func failure(_ shape: [Int] = [1, 2, 3, 4], opset: Int = 17, run input: Tensor? = nil,
                        _ build: (inout B) -> Void) -> String {
        do {
            let network = try builtNetwork(shape, opset: opset, build)
            if let input { _ = try network.forward(input) }
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    // MARK: ReduceMax

    typealias ReduceMaxCase = (label: String, opset: Int, attributes: [String: ONNXAttribute], axesInput: [Int64]?, shape: [Int],
                               expected: [Float])

    static let reduceMaxCases: [ReduceMaxCase] = [
        ("axes -1 keepdims 0", 17, ["axes": .ints([-1]), "keepdims": .int(0)], nil, [1, 2, 3], [2, 2, 2, 2, 2, 2]),
        ("axes 1 3", 17, ["axes": .ints([1, 3])], nil, [1, 1, 3, 1], [2, 2, 2]),
        ("all axes keepdims 0", 17, ["keepdims": .int(0)], nil, [], [2]),
        ("axes input 2 opset 18", 18, [:], [2], [1, 2, 1, 4], [2, -1, 2, 2, 2, 2, 2, 2]),
        ("noop with empty axes opset 18", 18, ["noop_with_empty_axes": .int(1)], nil, [1, 2, 3, 4], x.storage),
        ("axes 0 2 opset 13", 13, ["axes": .ints([0, 2])], nil, [1, 2, 1, 4], [2, -1, 2, 2, 2, 2, 2, 2]),
    ]

    static func reduceMax(_ b: inout B, _ c: ReduceMaxCase, input: String = "input") {
        if let axes = c.axesInput { b.addInitializer("axes", shape: [axes.count], int64: axes) }
        b.addNode("ReduceMax", inputs: [input] + (c.axesInput == nil ? [] : ["axes"]), outputs: ["output"], name: "max",
                  attributes: c.attributes)
    }

    @Test func reduceMaxMatchesOnnxruntime() throws {
        for c in Self.reduceMaxCases {
            let network = try builtNetwork([1, 2, 3, 4], opset: c.opset) { Self.reduceMax(&$0, c) }
            let worst = Self.difference(try network.forward(Self.x).logits, c.shape, c.expected)
            #expect(worst == 0, "ReduceMax \(c.label): differs by \(worst)")
        }
    }

    /// Central finite differences (no ties in the random inputs), the reduction fed by a Sigmoid so that its input is
    /// computed at run time.
    @Test func reduceMaxGradient() throws {
        for c in Self.reduceMaxCases {
            try checkGradient("ReduceMax \(c.label)", [1, 2, 3, 4], opset: c.opset) { b in
                b.addNode("Sigmoid", inputs: ["input"], outputs: ["s"])
                Self.reduceMax(&b, c, input: "s")
            }
        }
    }

    /// Where maxima tie, the gradient is shared evenly among them, as PyTorch's `amax` shares it
    /// (`x.amax(dim=(1, 3), keepdim=True).sum().backward()` on `x`).
    @Test func reduceMaxSharesTheGradientAmongTies() throws {
        let network = try builtNetwork([1, 2, 3, 4]) { b in
            b.addNode("ReduceMax", inputs: ["input"], outputs: ["output"], attributes: ["axes": .ints([1, 3])])
        }
        let pass = try network.forward(Self.x)
        let g = try #require(try network.backward(pass, seed: Tensor(shape: [1, 1, 3, 1], repeating: 1), to: [network.inputName])[network.inputName])
        let third: Float = 0.3333333432674408
        let amax: [Float] = [0, 0, 0.25, 0.25, 0, 0, 0, third, third, 0, 0, 0, 0.25, 0.25, 0, 0, 0, third, third, 0, 0, 0, third, third]
        #expect(Self.difference(g, [1, 2, 3, 4], amax) <= 1e-7, "\(g.storage)")
    }

    /// A NaN wins, as in PyTorch (onnxruntime 1.32 passes over it): a broken score shows instead of hiding.
    @Test func reduceMaxPropagatesNaN() throws {
        let network = try builtNetwork([1, 2, 3, 4]) { b in
            b.addNode("ReduceMax", inputs: ["input"], outputs: ["output"], attributes: ["axes": .ints([-1]), "keepdims": .int(0)])
        }
        var x = Self.x
        x.storage[6] = .nan
        let y = try network.forward(x).logits
        #expect(y.storage[1].isNaN && y.storage.enumerated().allSatisfy { $0.offset == 1 || $0.element == 2 }, "\(y.storage)")
    }

    @Test func malformedReduceMaxIsAnErrorNamingTheNode() {
        let outOfRange = Self.failure { $0.addNode("ReduceMax", inputs: ["input"], outputs: ["output"], name: "max", attributes: ["axes": .ints([4])]) }
        #expect(outOfRange.contains("'max'") && outOfRange.contains("axis 4 is out of range"), "\(outOfRange)")
        let axesInputTooEarly = Self.failure(opset: 13) { b in
            b.addInitializer("axes", shape: [1], int64: [1])
            b.addNode("ReduceMax", inputs: ["input", "axes"], outputs: ["output"], name: "max")
        }
        #expect(axesInputTooEarly.contains("'max'") && axesInputTooEarly.contains("opset 18"), "\(axesInputTooEarly)")
        let axesAttributeTooLate = Self.failure(opset: 18) { b in
            b.addNode("ReduceMax", inputs: ["input"], outputs: ["output"], name: "max", attributes: ["axes": .ints([1])])
        }
        #expect(axesAttributeTooLate.contains("'max'") && axesAttributeTooLate.contains("'axes'"), "\(axesAttributeTooLate)")
    }

    // MARK: TopK

    typealias TopKCase = (label: String, opset: Int, attributes: [String: ONNXAttribute], k: Int64?, shape: [Int], values: [Float],
                          indices: [Float])

    static let topKCases: [TopKCase] = [
        ("k 3 last axis", 17, [:], 3, [1, 2, 3, 3],
         [2, 2, -1, 2, -1, -1, 2, -1, -1, 2, 2, -1, 2, 2, -1, 2, 2, -1],
         [2, 3, 1, 3, 0, 2, 0, 1, 3, 0, 1, 2, 1, 2, 0, 2, 3, 1]),
        ("k 2 axis 1 smallest", 17, ["axis": .int(1), "largest": .int(0)], 2, [1, 2, 3, 4],
         [-2, -1, -1, -2, -1, -2, -1, -1, -2, -1, -2, -1, 2, 2, 2, 2, -1, 2, 2, 2, 2, -1, 2, 2],
         [0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1]),
        ("k 3 axis 2 ties", 17, ["axis": .int(2)], 3, [1, 2, 3, 4],
         [2, -1, 2, 2, -1, -1, -1, 2, -2, -2, -2, -1, 2, 2, 2, 2, -1, 2, 2, -1, -2, -1, -1, -2],
         [2, 0, 0, 0, 1, 2, 1, 1, 0, 1, 2, 2, 0, 0, 1, 2, 1, 1, 2, 1, 2, 2, 0, 0]),
        ("k 2 axis -2 smallest opset 11", 11, ["axis": .int(-2), "largest": .int(0), "sorted": .int(1)], 2, [1, 2, 2, 4],
         [-2, -2, -2, -1, -1, -1, -1, 2, -2, -1, -1, -2, -1, 2, 2, -1],
         [0, 1, 2, 2, 1, 0, 1, 0, 2, 2, 0, 0, 1, 0, 1, 1]),
        ("k 2 opset 10", 10, [:], 2, [1, 2, 3, 2], [2, 2, 2, -1, 2, -1, 2, 2, 2, 2, 2, 2], [2, 3, 3, 0, 0, 1, 0, 1, 1, 2, 2, 3]),
        ("k attribute opset 9", 9, ["axis": .int(3), "k": .int(2)], nil, [1, 2, 3, 2],
         [2, 2, 2, -1, 2, -1, 2, 2, 2, 2, 2, 2], [2, 3, 3, 0, 0, 1, 0, 1, 1, 2, 2, 3]),
    ]

    static func topK(_ b: inout B, _ c: TopKCase, input: String = "input") {
        if let k = c.k { b.addInitializer("k", shape: [1], int64: [k]) }
        b.addNode("TopK", inputs: [input] + (c.k == nil ? [] : ["k"]), outputs: ["output", "indices"], name: "top", attributes: c.attributes)
    }

    /// Values and indices; ties keep the lower index first.
    @Test func topKMatchesOnnxruntime() throws {
        for c in Self.topKCases {
            let network = try builtNetwork([1, 2, 3, 4], opset: c.opset) { Self.topK(&$0, c) }
            let pass = try network.forward(Self.x, retaining: ["indices"])
            let (values, indices) = (Self.difference(pass.logits, c.shape, c.values), Self.difference(pass["indices"], c.shape, c.indices))
            #expect(values == 0 && indices == 0, "TopK \(c.label): values differ by \(values), indices by \(indices)")
        }
    }

    /// NaN ranks above every number, as onnxruntime and PyTorch rank it.
    @Test func topKRanksNaNFirst() throws {
        let network = try builtNetwork([1, 2, 3, 4]) { b in
            b.addInitializer("k", shape: [1], int64: [4])
            b.addNode("TopK", inputs: ["input", "k"], outputs: ["output", "indices"])
        }
        var x = Self.x
        x.storage[6] = .nan
        let pass = try network.forward(x, retaining: ["indices"])
        #expect(pass.logits.storage[4].isNaN && Array(pass.logits.storage[5..<8]) == [2, -1, -2])
        #expect(pass["indices"].map { Array($0.storage[4..<8]) } == [2, 3, 0, 1])
    }

    /// The values' gradient goes to the elements they are (finite differences; the indices output is not differentiable).
    @Test func topKGradient() throws {
        for c in Self.topKCases {
            try checkGradient("TopK \(c.label)", [1, 2, 3, 4], opset: c.opset) { b in
                b.addNode("Tanh", inputs: ["input"], outputs: ["t"])
                Self.topK(&b, c, input: "t")
            }
        }
    }

    @Test func malformedTopKIsAnErrorNamingTheNode() {
        func topK(_ k: [Int64], opset: Int = 17, _ attributes: [String: ONNXAttribute] = [:]) -> String {
            Self.failure(opset: opset) { b in
                b.addInitializer("k", shape: [k.count], int64: k)
                b.addNode("TopK", inputs: opset < 10 ? ["input"] : ["input", "k"], outputs: ["output", "indices"], name: "top",
                          attributes: attributes)
            }
        }
        let cases: [(String, String)] = [
            (topK([5]), "k 5 is outside 0...4"), (topK([-1]), "k -1 is outside"), (topK([2, 2]), "K must hold one value"),
            (topK([2], ["largest": .int(2)]), "largest and sorted must be 0 or 1"), (topK([2], ["axis": .int(4)]), "axis 4 is out of range"),
            (topK([2], opset: 9), "attribute 'k' is missing"), (topK([2], opset: 10, ["largest": .int(1)]), "unsupported attribute 'largest'"),
            (topK([Int64.max]), "is outside 0...4"),
        ]
        for (message, expected) in cases {
            #expect(message.contains("'top'") && message.contains(expected), "\(message)")
        }
        let runtimeK = Self.failure { b in
            b.addNode("ReduceMax", inputs: ["input"], outputs: ["m"], attributes: ["keepdims": .int(0)])
            b.addNode("Cast", inputs: ["m"], outputs: ["k"], attributes: ["to": .int(7)])
            b.addNode("Reshape", inputs: ["k", "one"], outputs: ["k1"])
            b.addInitializer("one", shape: [1], int64: [1])
            b.addNode("TopK", inputs: ["input", "k1"], outputs: ["output", "indices"], name: "top")
        }
        #expect(runtimeK.contains("'top'") && runtimeK.contains("must be a constant"), "\(runtimeK)")
    }

    // MARK: GatherElements

    typealias GatherElementsCase = (label: String, axis: Int, indicesShape: [Int], indices: [Int64], expected: [Float])

    static let gatherElementsCases: [GatherElementsCase] = [
        ("axis 1 negative, smaller", 1, [1, 2, 2, 3], [1, -1, 0, -2, 1, 1, 0, 0, -1, 1, 0, -2],
         [2, 2, 2, -1, 2, 2, -2, -1, -1, -1, -2, -1]),
        ("axis -1 repeated", -1, [1, 2, 3, 3], [3, 3, 0, -1, 2, 1, 3, 3, 0, -1, 2, 1, 3, 3, 0, -1, 2, 1],
         [2, 2, -2, 2, -1, -2, -1, -1, 2, -2, -1, 2, -1, -1, -1, 2, 2, -1]),
    ]

    static func gatherElements(_ b: inout B, _ c: GatherElementsCase, input: String = "input") {
        b.addInitializer("indices", shape: c.indicesShape, int64: c.indices)
        b.addNode("GatherElements", inputs: [input, "indices"], outputs: ["output"], name: "gather", attributes: ["axis": .int(c.axis)])
    }

    /// Negative indices count from the end; the indices may be shorter than the data along the other axes.
    @Test func gatherElementsMatchesOnnxruntime() throws {
        for c in Self.gatherElementsCases {
            let network = try builtNetwork([1, 2, 3, 4]) { Self.gatherElements(&$0, c) }
            let worst = Self.difference(try network.forward(Self.x).logits, c.indicesShape, c.expected)
            #expect(worst == 0, "GatherElements \(c.label): differs by \(worst)")
        }
    }

    /// Repeated indices add their gradients up (finite differences).
    @Test func gatherElementsGradient() throws {
        for c in Self.gatherElementsCases {
            try checkGradient("GatherElements \(c.label)", [1, 2, 3, 4]) { b in
                b.addNode("Sigmoid", inputs: ["input"], outputs: ["s"])
                Self.gatherElements(&b, c, input: "s")
            }
        }
    }

    @Test func malformedGatherElementsIsAnErrorNamingTheNode() throws {
        func gather(_ shape: [Int], _ indices: [Int64], axis: Int = 1) -> String {
            Self.failure { b in
                b.addInitializer("indices", shape: shape, int64: indices)
                b.addNode("GatherElements", inputs: ["input", "indices"], outputs: ["output"], name: "gather", attributes: ["axis": .int(axis)])
            }
        }
        let cases: [(String, String)] = [
            (gather([1, 1, 1, 1], [2]), "index 2 is out of range for axis 1 of size 2"),
            (gather([1, 1, 1, 1], [-3]), "index -3 is out of range"),
            (gather([1, 1, 1, 1], [Int64.min]), "is out of range"),
            (gather([1, 2, 3], [0, 0, 0, 0, 0, 0]), "must have one rank"),
            (gather([1, 2, 4, 4], [Int64](repeating: 0, count: 32)), "longer than data"),
            (gather([1, 1, 1, 1], [0], axis: -5), "axis -5 is out of range"),
        ]
        for (message, expected) in cases {
            #expect(message.contains("'gather'") && message.contains(expected), "\(message)")
        }
        // Indices computed at run time are checked when the step runs.
        let runtime = Self.failure(run: Tensor(shape: [1, 2, 3, 4], repeating: 9)) { b in
            b.addNode("Cast", inputs: ["input"], outputs: ["indices"], attributes: ["to": .int(7)])
            b.addNode("GatherElements", inputs: ["input", "indices"], outputs: ["output"], name: "gather", attributes: ["axis": .int(3)])
        }
        #expect(runtime.contains("'gather'") && runtime.contains("index 9 is out of range for axis 3 of size 4"), "\(runtime)")
    }

    // MARK: Run-time integers

    /// Ultralytics' end-to-end postprocess on scores `[1, 6 anchors, 4 classes]`: the best class per anchor (ReduceMax),
    /// the top anchors (TopK), their scores (GatherElements), the top scores among those (TopK on the flattened
    /// scores), then each one's row `index / 4` and class `index % 4` on the run-time int64 indices, and its anchor.
    static func postprocess(_ b: inout B) {
        b.addInitializer("shape", shape: [3], int64: [1, 6, 4])
        b.addInitializer("k", shape: [1], int64: [3])
        b.addInitializer("two", shape: [1], int64: [2])
        b.addInitializer("expanded", shape: [3], int64: [1, 3, 4])
        b.addInitializer("nc", shape: [], int64: [4])
        b.addNode("Reshape", inputs: ["input", "shape"], outputs: ["scores"])
        b.addNode("ReduceMax", inputs: ["scores"], outputs: ["best"], attributes: ["axes": .ints([-1]), "keepdims": .int(0)])
        b.addNode("TopK", inputs: ["best", "k"], outputs: ["top", "anchor"], attributes: ["axis": .int(1)])
        b.addNode("Unsqueeze", inputs: ["anchor", "two"], outputs: ["anchor3"])
        b.addNode("Expand", inputs: ["anchor3", "expanded"], outputs: ["spread"])
        b.addNode("GatherElements", inputs: ["scores", "spread"], outputs: ["picked"], attributes: ["axis": .int(1)])
        b.addNode("Flatten", inputs: ["picked"], outputs: ["flat"], attributes: ["axis": .int(1)])
        b.addNode("TopK", inputs: ["flat", "k"], outputs: ["score", "index"], attributes: ["axis": .int(1)])
        b.addNode("Div", inputs: ["index", "nc"], outputs: ["row"])
        b.addNode("Mod", inputs: ["index", "nc"], outputs: ["class"], attributes: ["fmod": .int(0)])
        b.addNode("GatherElements", inputs: ["anchor", "row"], outputs: ["which"], attributes: ["axis": .int(1)])
        b.addNode("Cast", inputs: ["class"], outputs: ["classFloat"], attributes: ["to": .int(1)])
        b.addNode("Cast", inputs: ["which"], outputs: ["whichFloat"], attributes: ["to": .int(1)])
        b.addNode("Concat", inputs: ["score", "classFloat", "whichFloat"], outputs: ["output"], attributes: ["axis": .int(1)])
    }

    /// Scores, classes and anchors as onnxruntime gives them (float division would give rows 2.75, 2.5, 0.5, and anchors
    /// from non-integer indices); the scores' gradient reaches the input through the gathers (finite differences).
    @Test func ultralyticsPostprocessMatchesOnnxruntime() throws {
        let network = try builtNetwork([1, 2, 3, 4], Self.postprocess)
        let x = Tensor(shape: [1, 2, 3, 4], storage: (0..<24).map { Float(($0 * 7) % 11) * 0.25 - 1 })
        let worst = Self.difference(try network.forward(x).logits, [1, 9], [1.5, 1.5, 1.25, 3, 2, 2, 0, 3, 1])
        #expect(worst == 0, "the postprocess differs by \(worst)")
        try checkGradient("ultralytics postprocess", [1, 2, 3, 4], Self.postprocess)
    }

    /// Div truncates toward zero and Mod takes the divisor's sign (`fmod` 0) or the dividend's (`fmod` 1) on int64
    /// tensors computed at run time (a Cast of the input), as onnxruntime computes them.
    @Test func integerDivAndModAtRunTime() throws {
        let x = Tensor(shape: [1, 1, 3, 4], storage: [-7.5, -7, -6.2, -1, 0, 1, 5.9, 7, 8, -8, 2, -2])
        let cases: [(String, String, Int, [String: ONNXAttribute], [Float])] = [
            ("Div 3", "Div", 3, [:], [-2, -2, -2, 0, 0, 0, 1, 2, 2, -2, 0, 0]),
            ("Div -3", "Div", -3, [:], [2, 2, 2, 0, 0, 0, -1, -2, -2, 2, 0, 0]),
            ("Mod 3", "Mod", 3, ["fmod": .int(0)], [2, 2, 0, 2, 0, 1, 2, 1, 2, 1, 2, 1]),
            ("Mod -3", "Mod", -3, ["fmod": .int(0)], [-1, -1, 0, -1, 0, -2, -1, -2, -1, -2, -1, -2]),
            ("Mod 3 fmod 1", "Mod", 3, ["fmod": .int(1)], [-1, -1, 0, -1, 0, 1, 2, 1, 2, -2, 2, -2]),
        ]
        for (label, op, divisor, attributes, expected) in cases {
            let network = try builtNetwork([1, 1, 3, 4]) { b in
                b.addInitializer("d", shape: [1], int64: [Int64(divisor)])
                b.addNode("Cast", inputs: ["input"], outputs: ["i"], attributes: ["to": .int(7)])
                b.addNode(op, inputs: ["i", "d"], outputs: ["q"], attributes: attributes)
                b.addNode("Cast", inputs: ["q"], outputs: ["output"], attributes: ["to": .int(1)])
            }
            let worst = Self.difference(try network.forward(x).logits, [1, 1, 3, 4], expected)
            #expect(worst == 0, "\(label): differs by \(worst)")
        }
    }

    /// Float32 storage holds integers exactly up to 2^24: an integer operator at run time refuses operands and results
    /// beyond, and a division by zero, naming its node.
    @Test func runTimeIntegersBeyondFloat32AreErrorsNamingTheNode() {
        func run(_ op: String, _ value: Float, divisor: Int64) -> String {
            Self.failure([1, 1, 1, 1], run: Tensor(shape: [1, 1, 1, 1], storage: [value])) { b in
                b.addInitializer("d", shape: [1], int64: [divisor])
                b.addNode("Cast", inputs: ["input"], outputs: ["i"], attributes: ["to": .int(7)])
                b.addNode(op, inputs: ["i", "d"], outputs: ["q"], name: "integer")
                b.addNode("Cast", inputs: ["q"], outputs: ["output"], attributes: ["to": .int(1)])
            }
        }
        let cases: [(String, String)] = [
            (run("Div", 3e7, divisor: 2), "integer 3e+07 is beyond 2^24"),
            (run("Mul", 5000, divisor: 5000), "integer 25000000 is beyond 2^24"),
            (run("Div", 7, divisor: 0), "integer division by zero"),
            (run("Mod", 7, divisor: 0), "integer remainder of a division by zero"),
            (run("Div", .nan, divisor: 2), "integer nan is beyond 2^24"),
        ]
        for (message, expected) in cases {
            #expect(message.contains("'integer'") && message.contains(expected), "\(message)")
        }
        #expect(run("Div", 16_777_215, divisor: 2) == "no error")
    }
}
