import Core
import Foundation
import Testing
import Engine
import EngineTestSupport

/// Operators of vision transformers: Sqrt, Exp, Not, Mod, ReduceL2, GatherND, ScatterND, Einsum.
@Suite struct TransformerOperatorGradientTests {
    @Test func sqrtAndExp() throws {
        // Sqrt on positive inputs only, away from its infinite slope at 0.
        try checkGradient("Sqrt", [2, 3, 4, 5], range: (0.3, 3)) { $0.addNode("Sqrt", inputs: ["input"], outputs: ["output"]) }
        try checkGradient("Exp", [2, 3, 4, 5]) { $0.addNode("Exp", inputs: ["input"], outputs: ["output"]) }
    }

    /// `Mod(3x, x/4 + c)` with divisors of both signs, so both partials and both roundings of the quotient count.
    @Test(arguments: [0, 1]) func mod(_ fmod: Int) throws {
        try checkGradient("Mod fmod \(fmod)", [2, 3, 3, 4]) { b in
            b.addInitializer("three", Tensor(scalar: 3)); b.addInitializer("quarter", Tensor(scalar: 0.25))
            b.addInitializer("c", Tensor(shape: [3, 1, 1], storage: [2.5, -2.5, 1.5]))
            b.addNode("Mul", inputs: ["input", "three"], outputs: ["a"])
            b.addNode("Mul", inputs: ["input", "quarter"], outputs: ["q"])
            b.addNode("Add", inputs: ["q", "c"], outputs: ["divisor"])
            b.addNode("Mod", inputs: ["a", "divisor"], outputs: ["output"], attributes: ["fmod": .int(fmod)])
        }
    }

    @Test func reduceL2() throws {
        try checkGradient("ReduceL2 axes attribute", [2, 3, 4, 4], opset: 13) { b in
            b.addNode("ReduceL2", inputs: ["input"], outputs: ["output"], attributes: ["axes": .ints([1])])
        }
        try checkGradient("ReduceL2 axes input", [2, 3, 4, 4], opset: 18) { b in
            b.addInitializer("axes", Tensor(shape: [2], storage: [-1, -2]), integer: true)
            b.addNode("ReduceL2", inputs: ["input", "axes"], outputs: ["output"], attributes: ["keepdims": .int(0)])
        }
        try checkGradient("ReduceL2 all axes", [2, 3, 2, 2], opset: 18) { b in
            b.addNode("ReduceL2", inputs: ["input"], outputs: ["output"])
        }
    }

    @Test func gatherND() throws {
        // Repeated tuples (1, -2) and (1, 2): their gradients add up.
        try checkGradient("GatherND batch_dims 0", [1, 3, 4, 5]) { b in
            b.addInitializer("shape", Tensor(shape: [3], storage: [3, 4, 5]), integer: true)
            b.addInitializer("indices", Tensor(shape: [3, 2], storage: [1, -2, 0, 3, 1, 2]), integer: true)
            b.addNode("Reshape", inputs: ["input", "shape"], outputs: ["data"])
            b.addNode("GatherND", inputs: ["data", "indices"], outputs: ["output"])
        }
        try checkGradient("GatherND batch_dims 1", [1, 2, 3, 4]) { b in
            b.addInitializer("shape", Tensor(shape: [3], storage: [2, 3, 4]), integer: true)
            b.addInitializer("indices", Tensor(shape: [2, 3, 2], storage: [0, 1, 2, -1, 0, 1, 1, 0, 1, 0, -2, 3]), integer: true)
            b.addNode("Reshape", inputs: ["input", "shape"], outputs: ["data"])
            b.addNode("GatherND", inputs: ["data", "indices"], outputs: ["output"], attributes: ["batch_dims": .int(1)])
        }
        // Indices computed at run time (zero times the input's mean, plus constants).
        try checkGradient("GatherND runtime indices", [1, 3, 4, 5]) { b in
            Self.runtimeIndices(&b, "indices", Tensor(shape: [2, 3], storage: [0, 2, -1, 0, 0, 0]))
            b.addNode("GatherND", inputs: ["input", "indices"], outputs: ["output"])
        }
    }

    /// `name` = the integer tensor `value`, computed at run time from the input (so not folded at load).
    static func runtimeIndices(_ b: inout ONNXModelBuilder, _ name: String, _ value: Tensor) {
        b.addInitializer("\(name)_zero", Tensor(scalar: 0)); b.addInitializer("\(name)_value", value, integer: true)
        b.addNode("ReduceMean", inputs: ["input"], outputs: ["\(name)_mean"], attributes: ["keepdims": .int(0)])
        b.addNode("Mul", inputs: ["\(name)_mean", "\(name)_zero"], outputs: ["\(name)_float"])
        b.addNode("Cast", inputs: ["\(name)_float"], outputs: ["\(name)_integer"], attributes: ["to": .int(7)])
        b.addNode("Add", inputs: ["\(name)_integer", "\(name)_value"], outputs: [name])
    }

    /// ScatterND of `tanh(x)` (reshaped to `[2, 3, 4]`) with updates `sigmoid` of three `[4]` rows of x: both the data's and
    /// the updates' gradients reach the input. Tuple (1, -1) comes twice: with "none" the first of them is overwritten.
    @Test(arguments: ["none", "add", "mul"]) func scatterND(_ reduction: String) throws {
        try checkGradient("ScatterND \(reduction)", [1, 2, 3, 4], opset: 18) { b in
            b.addInitializer("shape", Tensor(shape: [3], storage: [2, 3, 4]), integer: true)
            b.addInitializer("rows", Tensor(shape: [2], storage: [6, 4]), integer: true)
            b.addInitializer("picked", Tensor(shape: [3], storage: [5, 0, 2]), integer: true)
            b.addInitializer("indices", Tensor(shape: [3, 2], storage: [1, -1, 0, 1, 1, 2]), integer: true)
            b.addNode("Tanh", inputs: ["input"], outputs: ["t"])
            b.addNode("Reshape", inputs: ["t", "shape"], outputs: ["data"])
            b.addNode("Reshape", inputs: ["input", "rows"], outputs: ["r"])
            b.addNode("Gather", inputs: ["r", "picked"], outputs: ["g"], attributes: ["axis": .int(0)])
            b.addNode("Sigmoid", inputs: ["g"], outputs: ["updates"])
            b.addNode("ScatterND", inputs: ["data", "indices", "updates"], outputs: ["output"], attributes: ["reduction": .string(reduction)])
        }
    }

    @Test func scatterNDRepeatedTuples() throws {
        for reduction in ["none", "add", "mul"] {
            try checkGradient("ScatterND repeated \(reduction)", [1, 2, 3, 4], opset: 18) { b in
                b.addInitializer("shape", Tensor(shape: [3], storage: [2, 3, 4]), integer: true)
                b.addInitializer("rows", Tensor(shape: [2], storage: [6, 4]), integer: true)
                b.addInitializer("picked", Tensor(shape: [3], storage: [5, 0, 2]), integer: true)
                b.addInitializer("indices", Tensor(shape: [3, 2], storage: [1, -1, 0, 1, 1, 2]), integer: true)
                b.addNode("Reshape", inputs: ["input", "shape"], outputs: ["data"])
                b.addNode("Reshape", inputs: ["input", "rows"], outputs: ["r"])
                b.addNode("Gather", inputs: ["r", "picked"], outputs: ["updates"], attributes: ["axis": .int(0)])
                b.addNode("ScatterND", inputs: ["data", "indices", "updates"], outputs: ["s"], attributes: ["reduction": .string(reduction)])
                b.addNode("Tanh", inputs: ["s"], outputs: ["output"])
            }
        }
    }

    /// Each equation with both operands computed from the input (the second through Tanh or a transpose and Tanh).
    @Test func einsum() throws {
        func twoOperands(_ equation: String, _ shape: [Int], second: (inout ONNXModelBuilder) -> Void) throws {
            try checkGradient("Einsum \(equation)", shape) { b in
                b.addNode("Tanh", inputs: ["input"], outputs: ["t"])
                second(&b)
                b.addNode("Einsum", inputs: ["input", "second"], outputs: ["output"], attributes: ["equation": .string(equation)])
            }
        }
        func slice(_ b: inout ONNXModelBuilder, _ from: String, axis: Int, _ range: Range<Int>, _ to: String) {
            b.addInitializer("\(to)_starts", Tensor(shape: [1], storage: [Float(range.lowerBound)]), integer: true)
            b.addInitializer("\(to)_ends", Tensor(shape: [1], storage: [Float(range.upperBound)]), integer: true)
            b.addInitializer("\(to)_axes", Tensor(shape: [1], storage: [Float(axis)]), integer: true)
            b.addNode("Slice", inputs: [from, "\(to)_starts", "\(to)_ends", "\(to)_axes"], outputs: [to])
        }
        // j = 3 of i = 4 rows.
        try twoOperands("bhid,bhjd->bhij", [2, 3, 4, 5]) { slice(&$0, "t", axis: 2, 1..<4, "second") }
        // j = 5 (the input's last axis), d = 4.
        try twoOperands("bhij,bhjd->bhid", [2, 3, 4, 5]) { b in
            b.addNode("Transpose", inputs: ["t"], outputs: ["second"], attributes: ["perm": .ints([0, 1, 3, 2])])
        }
        try twoOperands("ij...,jk...->ik...", [2, 3, 4, 5]) { b in
            b.addNode("Transpose", inputs: ["t"], outputs: ["second"], attributes: ["perm": .ints([1, 0, 2, 3])])
        }
        // A one-sided sum (i in the first operand only) takes the loop.
        try twoOperands("bhij,bhkj->bk", [2, 3, 4, 5]) { slice(&$0, "t", axis: 2, 0..<2, "second") }
        // The batch label b broadcast: 1 in the second operand.
        try twoOperands("bhid,bhjd->bhij", [2, 3, 4, 5]) { slice(&$0, "t", axis: 0, 0..<1, "second") }
        try checkGradient("Einsum BGHID,BGHJD->BGHIJ", [1, 4, 3, 5]) { b in
            b.addInitializer("shape", Tensor(shape: [5], storage: [0, 2, 2, 3, 5]), integer: true)
            b.addNode("Reshape", inputs: ["input", "shape"], outputs: ["q"])
            b.addNode("Tanh", inputs: ["q"], outputs: ["k"])
            b.addNode("Einsum", inputs: ["q", "k"], outputs: ["output"], attributes: ["equation": .string("B G H I D, B G H J D -> B G H I J")])
        }
        try checkGradient("Einsum ij->ji", [1, 1, 3, 4]) { b in
            b.addInitializer("shape", Tensor(shape: [2], storage: [3, 4]), integer: true)
            b.addNode("Reshape", inputs: ["input", "shape"], outputs: ["m"])
            b.addNode("Einsum", inputs: ["m"], outputs: ["output"], attributes: ["equation": .string("ij->ji")])
        }
        try checkGradient("Einsum ii->i", [1, 1, 3, 3]) { b in
            b.addInitializer("shape", Tensor(shape: [2], storage: [3, 3]), integer: true)
            b.addNode("Reshape", inputs: ["input", "shape"], outputs: ["m"])
            b.addNode("Einsum", inputs: ["m"], outputs: ["output"], attributes: ["equation": .string("ii->i")])
        }
        try checkGradient("Einsum ij,jk,k->i", [1, 1, 3, 4]) { b in
            b.addInitializer("shape", Tensor(shape: [2], storage: [3, 4]), integer: true)
            b.addNode("Reshape", inputs: ["input", "shape"], outputs: ["m"])
            b.addNode("Tanh", inputs: ["m"], outputs: ["t"])
            b.addNode("Transpose", inputs: ["t"], outputs: ["tt"])
            b.addNode("ReduceMean", inputs: ["m"], outputs: ["v"], attributes: ["axes": .ints([1]), "keepdims": .int(0)])
            b.addNode("Einsum", inputs: ["m", "tt", "v"], outputs: ["output"], attributes: ["equation": .string("ij,jk,k->i")])
        }
    }
}

@Suite struct TransformerOperatorValueTests {
    func run(_ shape: [Int], _ x: [Float], opset: Int = 17, _ build: (inout ONNXModelBuilder) -> Void) throws -> Tensor {
        try builtNetwork(shape, opset: opset, build).forward(Tensor(shape: shape, storage: x)).logits
    }

    /// `(i * multiplier) % modulus - offset` for the i-th element: small integers, reproduced in numpy for the expected values.
    static func pattern(_ shape: [Int], _ multiplier: Int, _ modulus: Int, _ offset: Int) -> Tensor {
        Tensor(shape: shape, storage: (0..<Tensor.elementCount(shape)).map { Float(($0 * multiplier) % modulus - offset) })
    }

    static func close(_ y: Tensor, _ shape: [Int], _ expected: [Float], tolerance: Float = 1e-5) -> Bool {
        y.shape == shape && y.storage.count == expected.count
            && zip(y.storage, expected).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    /// The `[2, 3, 4]` tensor 0..<24 (the input `[1, 2, 3, 4]` reshaped), as a node named `data`.
    static func arangeData(_ b: inout ONNXModelBuilder) {
        b.addInitializer("data_shape", Tensor(shape: [3], storage: [2, 3, 4]), integer: true)
        b.addNode("Reshape", inputs: ["input", "data_shape"], outputs: ["data"])
    }

    static let arange = (0..<24).map(Float.init)

    @Test func sqrtExpAndNot() throws {
        let sqrt = try run([1, 1, 1, 4], [0.25, 1, 4, 9]) { $0.addNode("Sqrt", inputs: ["input"], outputs: ["output"]) }
        #expect(sqrt.storage == [0.5, 1, 2, 3])
        let exp = try run([1, 1, 1, 3], [0, 1, -2]) { $0.addNode("Exp", inputs: ["input"], outputs: ["output"]) }
        #expect(Self.close(exp, [1, 1, 1, 3], [1, 2.7182817, 0.13533528]))
        let not = try run([1, 1, 1, 4], [1, 2, 3, 4]) { b in
            b.addInitializer("c", Tensor(shape: [4], storage: [1, 0, 3, 0]))
            b.addNode("Equal", inputs: ["input", "c"], outputs: ["e"])
            b.addNode("Not", inputs: ["e"], outputs: ["output"])
        }
        #expect(not.storage == [0, 1, 0, 1])
    }

    /// Expected values: onnxruntime for integers (both fmod) and for floats with fmod 1, numpy.mod for floats with fmod 0
    /// (which onnxruntime refuses).
    @Test func modSignsOfBothSettings() throws {
        let a: [Float] = [-7, -3, 3, 7, 5, -5]
        func mod(_ x: [Float], _ fmod: Int) throws -> [Float] {
            try run([1, 1, 1, 6], x) { b in
                b.addInitializer("b", Tensor(shape: [6], storage: [3, 3, -3, -3, -2, 2]))
                b.addNode("Mod", inputs: ["input", "b"], outputs: ["output"], attributes: ["fmod": .int(fmod)])
            }.storage
        }
        #expect(try mod(a, 0) == [2, 0, 0, -2, -1, 1])
        #expect(try mod(a, 1) == [-1, 0, 0, 1, 1, -1])
        let halves = a.map { $0 + 0.5 }
        #expect(try mod(halves, 0) == [2.5, 0.5, -2.5, -1.5, -0.5, 1.5])
        #expect(try mod(halves, 1) == [-0.5, -2.5, 0.5, 1.5, 1.5, -0.5])
        // int64 constants folded at load time.
        let folded = try run([1, 1, 1, 2], [0, 0]) { b in
            b.addInitializer("p", Tensor(shape: [2], storage: [-7, 7]), integer: true)
            b.addInitializer("q", Tensor(shape: [2], storage: [3, -3]), integer: true)
            b.addNode("Mod", inputs: ["p", "q"], outputs: ["m"])
            b.addNode("Cast", inputs: ["m"], outputs: ["f"], attributes: ["to": .int(1)])
            b.addNode("Add", inputs: ["input", "f"], outputs: ["output"])
        }
        #expect(folded.storage == [2, -2])
        #expect(throws: EngineError.self) {
            try builtNetwork([1, 1, 1, 2]) { b in
                b.addNode("Mod", inputs: ["input", "input"], outputs: ["output"], attributes: ["fmod": .int(2)])
            }
        }
    }

    @Test func reduceL2ByHandAndItsGradientAtZero() throws {
        // numpy: sqrt(sum(x^2, axis=1)) of [[-5, 2], [-2, 5]], [[1, -3], [4, 0]].
        let x = Self.pattern([1, 2, 2, 2], 7, 11, 5)
        let y = try run([1, 2, 2, 2], x.storage, opset: 13) { b in
            b.addNode("ReduceL2", inputs: ["input"], outputs: ["output"], attributes: ["axes": .ints([1])])
        }
        #expect(Self.close(y, [1, 1, 2, 2], [5.0990195, 3.6055512, 4.472136, 5]))
        let network = try builtNetwork([1, 1, 2, 2], opset: 18) { b in
            b.addInitializer("axes", Tensor(shape: [1], storage: [3]), integer: true)
            b.addNode("ReduceL2", inputs: ["input", "axes"], outputs: ["output"], attributes: ["keepdims": .int(0)])
        }
        let pass = try network.forward(Tensor(shape: [1, 1, 2, 2], storage: [0, 0, 3, 4]))
        #expect(pass.logits == Tensor(shape: [1, 1, 2], storage: [0, 5]))
        let gradient = try network.backward(pass, seed: Tensor(shape: [1, 1, 2], storage: [1, 1]), to: [network.inputName])[network.inputName]
        #expect(gradient?.storage == [0, 0, 0.6, 0.8])
        #expect(throws: EngineError.self) {
            try builtNetwork([1, 1, 2, 2], opset: 13) { b in
                b.addInitializer("axes", Tensor(shape: [1], storage: [3]), integer: true)
                b.addNode("ReduceL2", inputs: ["input", "axes"], outputs: ["output"])
            }
        }
    }

    /// Expected values from onnxruntime (opset 13) on data 0..<24 shaped `[2, 3, 4]`.
    @Test func gatherNDAgainstOnnxruntime() throws {
        let rows = try run([1, 2, 3, 4], Self.arange) { b in
            Self.arangeData(&b)
            b.addInitializer("indices", Tensor(shape: [3, 2], storage: [1, -1, 0, 0, -2, 1]), integer: true)
            b.addNode("GatherND", inputs: ["data", "indices"], outputs: ["output"])
        }
        #expect(rows == Tensor(shape: [3, 4], storage: [20, 21, 22, 23, 0, 1, 2, 3, 4, 5, 6, 7]))
        let batched = try run([1, 2, 3, 4], Self.arange) { b in
            Self.arangeData(&b)
            b.addInitializer("indices", Tensor(shape: [2, 2, 1], storage: [-1, 0, 2, 2]), integer: true)
            b.addNode("GatherND", inputs: ["data", "indices"], outputs: ["output"], attributes: ["batch_dims": .int(1)])
        }
        #expect(batched == Tensor(shape: [2, 2, 4], storage: [8, 9, 10, 11, 0, 1, 2, 3, 20, 21, 22, 23, 20, 21, 22, 23]))
        let elements = try run([1, 2, 3, 4], Self.arange) { b in
            Self.arangeData(&b)
            TransformerOperatorGradientTests.runtimeIndices(&b, "indices", Tensor(shape: [2, 3], storage: [1, 2, -1, 0, -3, 0]))
            b.addNode("GatherND", inputs: ["data", "indices"], outputs: ["output"])
        }
        #expect(elements == Tensor(shape: [2], storage: [23, 0]))
    }

    /// Expected values from onnxruntime (opset 16) on data 0..<24 shaped `[2, 3, 4]`.
    @Test func scatterNDAgainstOnnxruntime() throws {
        func scatter(_ reduction: String, indices: Tensor, updates: Tensor) throws -> Tensor {
            try run([1, 2, 3, 4], Self.arange, opset: 16) { b in
                Self.arangeData(&b)
                b.addInitializer("indices", indices, integer: true)
                b.addInitializer("updates", updates)
                b.addNode("ScatterND", inputs: ["data", "indices", "updates"], outputs: ["output"], attributes: ["reduction": .string(reduction)])
            }
        }
        let indices = Tensor(shape: [2, 2], storage: [1, -1, 0, 0])
        let updates = Tensor(shape: [2, 4], storage: [100, 101, 102, 103, 200, 201, 202, 203])
        let middle = (4..<20).map(Float.init)
        #expect(try scatter("none", indices: indices, updates: updates).storage == [200, 201, 202, 203] + middle + [100, 101, 102, 103])
        #expect(try scatter("add", indices: indices, updates: updates).storage == [200, 202, 204, 206] + middle + [120, 122, 124, 126])
        #expect(try scatter("mul", indices: indices, updates: updates).storage == [0, 201, 404, 609] + middle + [2000, 2121, 2244, 2369])
        let slab = try scatter("none", indices: Tensor(shape: [1, 1], storage: [-1]),
                               updates: Tensor(shape: [1, 3, 4], storage: (0..<12).map { -Float($0) }))
        #expect(slab.storage == (0..<12).map(Float.init) + (0..<12).map { -Float($0) })
    }

    /// An index outside its dimension, known at load time or computed at run time (even one too large for an `Int`),
    /// is an error naming the node, not a crash.
    @Test func outOfRangeIndicesAreErrorsNamingTheNode() throws {
        let gatherAtLoad = #expect(throws: EngineError.self) {
            try builtNetwork([1, 2, 3, 4]) { b in
                Self.arangeData(&b)
                b.addInitializer("indices", Tensor(shape: [1, 2], storage: [2, 0]), integer: true)
                b.addNode("GatherND", inputs: ["data", "indices"], outputs: ["output"], name: "pick")
            }
        }
        #expect(gatherAtLoad?.description == "GatherND node 'pick': index 2 is out of range for dimension 0 of size 2")
        let scatterAtLoad = #expect(throws: EngineError.self) {
            try builtNetwork([1, 2, 3, 4]) { b in
                Self.arangeData(&b)
                b.addInitializer("indices", Tensor(shape: [1, 2], storage: [0, -4]), integer: true)
                b.addInitializer("updates", Tensor(shape: [1, 4], repeating: 1))
                b.addNode("ScatterND", inputs: ["data", "indices", "updates"], outputs: ["output"], name: "place")
            }
        }
        #expect(scatterAtLoad?.description == "ScatterND node 'place': index -4 is out of range for dimension 1 of size 3")

        // Indices from the input itself: in range for the zeros run at load, out of range for the values given later
        // (one too large for an Int, one not a number).
        let table = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
        let gather = try builtNetwork([1, 1, 1, 2]) { b in
            b.addInitializer("table", table)
            b.addInitializer("pair", Tensor(shape: [2], storage: [1, 2]), integer: true)
            b.addNode("Cast", inputs: ["input"], outputs: ["i"], attributes: ["to": .int(7)])
            b.addNode("Reshape", inputs: ["i", "pair"], outputs: ["indices"])
            b.addNode("GatherND", inputs: ["table", "indices"], outputs: ["output"], name: "lookup")
        }
        #expect(try gather.forward(Tensor(shape: [1, 1, 1, 2], storage: [1, -1])).logits.storage == [6])
        for bad: [Float] in [[2, 0], [0, -4], [1e30, 0], [.nan, 0]] {
            let error = #expect(throws: EngineError.self, "\(bad)") { try gather.forward(Tensor(shape: [1, 1, 1, 2], storage: bad)) }
            #expect(error?.description.hasPrefix("GatherND node 'lookup': index") == true && error?.description.contains("out of range") == true,
                    "\(bad): \(String(describing: error))")
        }
        let scatter = try builtNetwork([1, 1, 1, 2]) { b in
            b.addInitializer("table", table)
            b.addInitializer("pair", Tensor(shape: [2], storage: [1, 2]), integer: true)
            b.addInitializer("updates", Tensor(shape: [1], storage: [9]))
            b.addNode("Cast", inputs: ["input"], outputs: ["i"], attributes: ["to": .int(7)])
            b.addNode("Reshape", inputs: ["i", "pair"], outputs: ["indices"])
            b.addNode("ScatterND", inputs: ["table", "indices", "updates"], outputs: ["output"], name: "write")
        }
        #expect(try scatter.forward(Tensor(shape: [1, 1, 1, 2], storage: [-1, 0])).logits.storage == [1, 2, 3, 9, 5, 6])
        let error = #expect(throws: EngineError.self) { try scatter.forward(Tensor(shape: [1, 1, 1, 2], storage: [0, 3])) }
        #expect(error?.description == "ScatterND node 'write': index 3 is out of range for dimension 1 of size 3")
    }

    /// Expected values from numpy.einsum; the first operand is the input (`pattern(shape, 7, 11, 5)`), the others
    /// constants (`pattern(shape, 5, 9, 4)`).
    @Test(arguments: [
        ("bhid,bhjd->bhij", [1, 3, 4, 5], [[1, 3, 3, 5]], [1, 3, 4, 3],
         [36, -29, -22, 2, -25, 2, -21, -10, 37, -11, 38, 6, -17, 7, 40, -17, 5, 36, 38, 3, -23, 38, 1, -27, -2, 12, -19, 10, 4,
          -11, -11, -15, 8, -21, -23, 38]),
        ("bhij,bhjd->bhid", [1, 2, 3, 4], [[1, 2, 4, 2]], [1, 2, 3, 2], [13, 13, -3, 7, 14, -21, 11, -13, -8, 4, -5, -1]),
        ("ij->ji", [3, 4], [], [4, 3], [-5, 1, -4, 2, -3, 3, -2, 4, -1, 5, 0, -5]),
        // Implicit output: the letters written once in ASCII order, upper case first.
        ("jB", [3, 4], [], [4, 3], [-5, 1, -4, 2, -3, 3, -2, 4, -1, 5, 0, -5]),
        ("ij,jk", [3, 4], [[4, 2]], [3, 2], [13, 13, -3, 7, 14, -21]),
        ("...ij,...jk->...ik", [1, 2, 3, 4], [[4, 2]], [1, 2, 3, 2], [13, 13, -3, 7, 14, -21, -13, 17, 4, -11, -1, -6]),
        ("...ij,jk", [1, 2, 3, 4], [[4, 2]], [1, 2, 3, 2], [13, 13, -3, 7, 14, -21, -13, 17, 4, -11, -1, -6]),
        // b broadcast: 1 in the second operand.
        ("bij,bjk->bik", [2, 3, 4], [[1, 4, 2]], [2, 3, 2], [13, 13, -3, 7, 14, -21, -13, 17, 4, -11, -1, -6]),
        ("ii->i", [3, 3], [], [3], [-5, 1, -4]),
        ("bij,bjk->bk", [2, 3, 4], [[2, 4, 2]], [2, 2], [24, -1, -2, -10]),
    ] as [(String, [Int], [[Int]], [Int], [Float])])
    func einsumAgainstNumpy(_ equation: String, _ shape: [Int], _ others: [[Int]], _ outputShape: [Int], _ expected: [Float]) throws {
        let input = Self.pattern([1, 1, 1, Tensor.elementCount(shape)], 7, 11, 5)
        let y = try run(input.shape, input.storage) { b in
            b.addInitializer("shape", Tensor(shape: [shape.count], storage: shape.map(Float.init)), integer: true)
            b.addNode("Reshape", inputs: ["input", "shape"], outputs: ["x"])
            for (k, other) in others.enumerated() { b.addInitializer("c\(k)", Self.pattern(other, 5, 9, 4)) }
            b.addNode("Einsum", inputs: ["x"] + others.indices.map { "c\($0)" }, outputs: ["output"], attributes: ["equation": .string(equation)])
        }
        #expect(y == Tensor(shape: outputShape, storage: expected), "\(equation): \(y.shape) \(y.storage)")
    }

    @Test func einsumOfUpperCaseLabelsWithSpacesAndOfThreeOperands() throws {
        let input = Self.pattern([1, 2, 6, 4], 7, 11, 5)
        let attention = try run(input.shape, input.storage) { b in
            b.addInitializer("shape", Tensor(shape: [5], storage: [1, 2, 2, 3, 4]), integer: true)
            b.addInitializer("k", Self.pattern([1, 2, 2, 2, 4], 5, 9, 4))
            b.addNode("Reshape", inputs: ["input", "shape"], outputs: ["q"])
            b.addNode("Einsum", inputs: ["q", "k"], outputs: ["output"], attributes: ["equation": .string("B G H I D, B G H J D -> B G H I J")])
        }
        #expect(attention == Tensor(shape: [1, 2, 2, 3, 2], storage: [38, 38, -19, -15, 12, -2, 10, 22, -4, -10, -7, -9, -15, 5, 35, 5,
                                                                      -14, -17, -17, -12, -12, 20, -7, -25]))
        let small = Self.pattern([1, 1, 3, 4], 7, 11, 5)
        let chain = try run(small.shape, small.storage) { b in
            b.addInitializer("shape", Tensor(shape: [2], storage: [3, 4]), integer: true)
            b.addInitializer("m", Self.pattern([4, 2], 5, 9, 4)); b.addInitializer("v", Tensor(shape: [2], storage: [1, -2]))
            b.addNode("Reshape", inputs: ["input", "shape"], outputs: ["x"])
            b.addNode("Einsum", inputs: ["x", "m", "v"], outputs: ["output"], attributes: ["equation": .string("ij,jk,k->i")])
        }
        #expect(chain == Tensor(shape: [3], storage: [-13, -17, 56]))
    }

    @Test func einsumRejectsMalformedEquations() throws {
        for (equation, inputs) in [("ij,jk->ik", 1), ("ij->k", 1), ("i2->i", 1), ("ijk->ij", 1), ("ij->ii", 1), ("i....->i", 1)] {
            #expect(throws: EngineError.self, "\(equation)") {
                try builtNetwork([1, 1, 3, 4]) { b in
                    b.addInitializer("shape", Tensor(shape: [2], storage: [3, 4]), integer: true)
                    b.addNode("Reshape", inputs: ["input", "shape"], outputs: ["x"])
                    b.addNode("Einsum", inputs: Array(repeating: "x", count: inputs), outputs: ["output"], attributes: ["equation": .string(equation)])
                }
            }
        }
        // Sizes that do not broadcast.
        #expect(throws: EngineError.self) {
            try builtNetwork([1, 1, 3, 4]) { b in
                b.addNode("Einsum", inputs: ["input", "input"], outputs: ["output"], attributes: ["equation": .string("abij,abjk->abik")])
            }
        }
    }
}
