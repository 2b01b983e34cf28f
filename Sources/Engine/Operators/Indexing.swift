import Core
/// Operators that select or place elements by index: Slice, Pad, Gather, GatherElements, TopK, Expand.

/// Per-axis index maps: output element -> input element (or none), shared by Slice and Pad forward and backward.
enum IndexMap {
    /// For each output element, the flat input index or -1. `source(axis, outIndex)` maps one coordinate.
    static func build(output: [Int], input: [Int], _ source: (Int, Int) -> Int) -> [Int] {
        let inStrides = TensorMath.strides(input)
        var perAxis: [[Int]] = []
        for d in 0..<output.count {
            perAxis.append((0..<output[d]).map { i in
                let s = source(d, i)
                return s < 0 ? -1 : s * inStrides[d]
            })
        }
        var result = [Int](repeating: 0, count: Tensor.elementCount(output))
        if output.isEmpty { return [0] }
        var index = [Int](repeating: 0, count: output.count)
        for o in 0..<result.count {
            var flat = 0
            for d in 0..<output.count {
                let v = perAxis[d][index[d]]
                if v < 0 { flat = -1; break }
                flat += v
            }
            result[o] = flat
            var d = output.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < output[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return result
    }

    static func gather(_ x: Tensor, _ map: [Int], _ shape: [Int], fill: Float = 0) -> Tensor {
        Tensor(shape: shape, storage: map.map { $0 < 0 ? fill : x.storage[$0] })
    }

    static func scatter(_ g: Tensor, _ map: [Int], _ shape: [Int]) -> Tensor {
        var out = [Float](repeating: 0, count: Tensor.elementCount(shape))
        for (o, i) in map.enumerated() where i >= 0 { out[i] += g.storage[o] }
        return Tensor(shape: shape, storage: out)
    }

    /// For each element of an index tensor of shape `shape` (the rank of `data`, no larger along the other axes), the
    /// flat offset in `data` of the element at the same position but, along `axis`, at its index (negative ones count
    /// from the end); an index out of range throws, naming `label`.
    static func alongAxis(_ indices: [Int], _ shape: [Int], in data: [Int], axis: Int, _ label: String) throws -> [Int] {
        var strides = TensorMath.strides(data)
        let (length, step) = (data[axis], strides[axis])
        strides[axis] = 0
        var map = [Int](repeating: 0, count: indices.count)
        var outside: Int?
        TensorMath.forEachOffset(shape, strides, strides) { o, base, _ in
            let i = indices[o], j = i < 0 ? i + length : i
            guard j >= 0 && j < length else { outside = outside ?? i; return }
            map[o] = base + j * step
        }
        if let outside { throw EngineError("\(label): index \(outside) is out of range for axis \(axis) of size \(length)") }
        return map
    }
}

/// An operator whose output elements are elements of input 0, or a fill value: Slice, Pad, Gather, GatherElements.
/// Forward gathers them through a map, backward scatter-adds the gradient back through the same map.
protocol ElementSelection: Operator {
    var label: String { get }
    /// The output shape for input 0 of shape `x`, and for each output element the flat offset of the input element it
    /// is (-1: the fill value).
    func selection(_ x: [Int], _ inputs: [Tensor?], _ context: OperatorContext) throws -> (shape: [Int], map: [Int])
    /// What the output elements outside the input hold (default 0).
    func fill(_ inputs: [Tensor?]) -> Float
}

extension ElementSelection {
    func fill(_ inputs: [Tensor?]) -> Float { 0 }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let (shape, map) = try selection(x.shape, inputs, context)
        return [IndexMap.gather(x, map, shape, fill: fill(inputs))]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let x = try Operand.shape(a.inputShapes, 0, label)
        return [IndexMap.scatter(g, try selection(x, a.inputs, context).map, x)]
    }
}

/// Strided slicing along chosen axes (starts, ends, axes, steps as inputs, or attributes before opset 10).
struct Slice: ElementSelection {
    let label: String
    let attributes: (starts: [Int], ends: [Int], axes: [Int]?)?

    func copiedInputs(count: Int) -> [Int] { [0] }
    init(_ node: Node) throws {
        try node.checkAttributes(["starts", "ends", "axes"])
        label = node.label
        if let starts = try node.ints("starts"), let ends = try node.ints("ends") {
            attributes = (starts, ends, try node.ints("axes"))
        } else {
            attributes = nil
        }
    }

    /// Per-axis (start, step, count) after clamping, for an input of shape `x`.
    func ranges(_ x: [Int], _ constants: [Constant?], _ shapes: [[Int]?]) throws -> [(start: Int, step: Int, count: Int)] {
        var starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?
        if let attributes {
            (starts, ends, axes, steps) = (attributes.starts, attributes.ends, attributes.axes, nil)
        } else {
            starts = Operand.integers(try Operand.constant(constants, 1, label, what: "starts"))
            ends = Operand.integers(try Operand.constant(constants, 2, label, what: "ends"))
            axes = shapes.count > 3 && shapes[3] != nil ? Operand.integers(try Operand.constant(constants, 3, label, what: "axes")) : nil
            steps = shapes.count > 4 && shapes[4] != nil ? Operand.integers(try Operand.constant(constants, 4, label, what: "steps")) : nil
        }
        let axisList = axes ?? Array(0..<starts.count)
        guard starts.count == ends.count, axisList.count == starts.count, (steps?.count ?? starts.count) == starts.count else {
            throw EngineError("\(label): starts, ends, axes and steps differ in length")
        }
        var result = x.map { (start: 0, step: 1, count: $0) }
        for (k, axis) in axisList.enumerated() {
            let a = try Operand.axis(axis, rank: x.count, label)
            let n = x[a], step = steps?[k] ?? 1
            guard step != 0 else { throw EngineError("\(label): step 0") }
            var s = starts[k] < 0 ? starts[k] + n : starts[k]
            var e = ends[k] < 0 ? ends[k] + n : ends[k]
            if step > 0 {
                s = min(max(s, 0), n); e = min(max(e, 0), n)
                result[a] = (s, step, max(0, (e - s + step - 1) / step))
            } else {
                s = min(max(s, -1), n - 1); e = min(max(e, -1), n - 1)
                result[a] = (s, step, max(0, (s - e - step - 1) / -step))
            }
        }
        return result
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        [try ranges(try Operand.shape(shapes, 0, label), constants, shapes).map(\.count)]
    }

    func selection(_ x: [Int], _ inputs: [Tensor?], _ context: OperatorContext) throws -> (shape: [Int], map: [Int]) {
        let constants = context.constants(inputs)
        let r = try ranges(x, constants, [x] + inputs.dropFirst().map { $0?.shape })
        let shape = r.map(\.count)
        return (shape, IndexMap.build(output: shape, input: x) { d, i in r[d].start + i * r[d].step })
    }
}

/// Padding (constant, reflect or edge); the gradient gathers back what each input element fed.
struct Pad: ElementSelection {
    let label: String
    let mode: String
    let padsAttribute: [Int]?
    let valueAttribute: Float

    init(_ node: Node) throws {
        try node.checkAttributes(["mode", "pads", "value"])
        label = node.label
        mode = try node.string("mode", "constant")
        guard ["constant", "reflect", "edge"].contains(mode) else { throw EngineError("\(node.label): unsupported mode '\(mode)'") }
        padsAttribute = try node.ints("pads")
        valueAttribute = try node.float("value", 0)
    }

    func pads(_ x: [Int], _ constants: [Constant?], _ shapes: [[Int]?]) throws -> [Int] {
        var pads: [Int]
        if let padsAttribute { pads = padsAttribute } else { pads = Operand.integers(try Operand.constant(constants, 1, label, what: "pads")) }
        if shapes.count > 3, shapes[3] != nil {
            let raw = Operand.integers(try Operand.constant(constants, 3, label, what: "axes"))
            let axes = try raw.map { a in try Operand.axis(a, rank: x.count, label) }
            guard pads.count == 2 * axes.count else { throw EngineError("\(label): pads and axes differ in length") }
            var full = [Int](repeating: 0, count: 2 * x.count)
            for (k, a) in axes.enumerated() { full[a] = pads[k]; full[a + x.count] = pads[k + axes.count] }
            pads = full
        }
        guard pads.count == 2 * x.count else { throw EngineError("\(label): \(pads.count) pads for rank \(x.count)") }
        return pads
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let x = try Operand.shape(shapes, 0, label)
        let p = try pads(x, constants, shapes)
        let out = x.enumerated().map { $0.element + p[$0.offset] + p[$0.offset + x.count] }
        guard out.allSatisfy({ $0 >= 0 }) else { throw EngineError("\(label): pads \(p) empty the input \(x)") }
        return [out]
    }

    func selection(_ x: [Int], _ inputs: [Tensor?], _ context: OperatorContext) throws -> (shape: [Int], map: [Int]) {
        let constants = context.constants(inputs)
        let shapes = [x] + inputs.dropFirst().map { $0?.shape }
        let p = try pads(x, constants, shapes)
        let shape = try outputShapes(shapes, constants: constants)[0]
        let rank = x.count
        return (shape, IndexMap.build(output: shape, input: x) { d, i in
            var s = i - p[d]
            let n = x[d]
            if s >= 0 && s < n { return s }
            switch mode {
            case "edge": return min(max(s, 0), n - 1)
            case "reflect":
                guard n > 1 else { return 0 }
                let period = 2 * (n - 1)
                s = ((s % period) + period) % period
                return s < n ? s : period - s
            default: _ = rank; return -1
            }
        })
    }

    /// The constant mode's value: input 2 (opset 11 on) or the attribute.
    func fill(_ inputs: [Tensor?]) -> Float { inputs.count > 2 ? inputs[2]?.storage.first ?? valueAttribute : valueAttribute }
}

/// Elements picked along an axis by indices; the gradient is scattered back.
struct Gather: ElementSelection {
    let label: String
    let axis: Int

    // Indices computed at run time are read again by the backward pass.
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [1]) }
    func copiedInputs(count: Int) -> [Int] { [0] }
    init(_ node: Node) throws {
        try node.checkAttributes(["axis"])
        label = node.label
        axis = try node.int("axis", 0)
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let x = try Operand.shape(shapes, 0, label), i = try Operand.shape(shapes, 1, label)
        let a = try Operand.axis(axis, rank: x.count, label)
        return [Array(x[..<a]) + i + Array(x[(a + 1)...])]
    }

    func selection(_ x: [Int], _ inputs: [Tensor?], _ context: OperatorContext) throws -> (shape: [Int], map: [Int]) {
        let a = try Operand.axis(axis, rank: x.count, label)
        let (outer, n, inner) = TensorMath.split(x, at: a)
        let indexShape = try Operand.required(inputs, 1, label).shape
        let idx = try Operand.integers(inputs, 1, context, label).map { i -> Int in
            let j = i < 0 ? i + n : i
            guard j >= 0 && j < n else { throw EngineError("\(label): index \(i) out of range \(n)") }
            return j
        }
        var m: [Int] = []
        m.reserveCapacity(outer * idx.count * inner)
        for o in 0..<outer { for j in idx { for k in 0..<inner { m.append((o * n + j) * inner + k) } } }
        return (Array(x[..<a]) + indexShape + Array(x[(a + 1)...]), m)
    }
}

/// Elements picked one by one along an axis (`out[i][j] = data[indices[i][j]][j]` for axis 0), the output having the
/// indices' shape; the gradient is scatter-added back (repeated indices add up).
struct GatherElements: ElementSelection {
    let label: String
    let axis: Int

    init(_ node: Node) throws {
        try node.checkAttributes(["axis"])
        label = node.label
        axis = try node.int("axis", 0)
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [1]) }
    func copiedInputs(count: Int) -> [Int] { [0] }

    /// The axis, after checking that indices of shape `indices` fit data of shape `data`: one rank, and along every
    /// other axis no longer than the data (as onnxruntime and PyTorch's `gather` require).
    func checkedAxis(_ data: [Int], _ indices: [Int]) throws -> Int {
        guard data.count == indices.count, !data.isEmpty else {
            throw EngineError("\(label): indices \(indices) and data \(data) must have one rank, at least 1")
        }
        let a = try Operand.axis(axis, rank: data.count, label)
        for d in data.indices where d != a && indices[d] > data[d] {
            throw EngineError("\(label): indices \(indices) are longer than data \(data) along axis \(d)")
        }
        return a
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let data = try Operand.shape(shapes, 0, label), indices = try Operand.shape(shapes, 1, label)
        let a = try checkedAxis(data, indices)
        // Indices known at load time are checked there.
        if constants.count > 1, let known = constants[1] {
            _ = try IndexMap.alongAxis(Operand.integers(known), indices, in: data, axis: a, label)
        }
        return [indices]
    }

    func selection(_ data: [Int], _ inputs: [Tensor?], _ context: OperatorContext) throws -> (shape: [Int], map: [Int]) {
        let shape = try Operand.required(inputs, 1, label).shape
        let a = try checkedAxis(data, shape)
        return (shape, try IndexMap.alongAxis(try Operand.integers(inputs, 1, context, label), shape, in: data, axis: a, label))
    }
}

/// The k largest (or smallest, `largest` 0) elements along an axis and their indices, k from input 1 (opset 10 on) or
/// the attribute (before), known at load time. Sorted, ties the lower index first (onnxruntime's order; NaN ranks above
/// every number, as in PyTorch); `sorted` 0 leaves the order to the runtime, and this one sorts. The indices are
/// integers, exact in float32 storage since an axis longer than 2^24 is refused. The values' gradient goes back to the
/// elements they are.
struct TopK: Operator {
    let label: String
    let axis: Int
    let largest: Bool
    /// k before opset 10.
    let kAttribute: Int?

    init(_ node: Node, opset: Int) throws {
        try node.checkAttributes(opset < 10 ? ["axis", "k"] : opset < 11 ? ["axis"] : ["axis", "largest", "sorted"])
        label = node.label
        axis = try node.int("axis", -1)
        let largest = try node.int("largest", 1), sorted = try node.int("sorted", 1)
        guard largest == 0 || largest == 1, sorted == 0 || sorted == 1 else {
            throw EngineError("\(node.label): largest and sorted must be 0 or 1, not \(largest) and \(sorted)")
        }
        self.largest = largest == 1
        if opset < 10 {
            guard node.attributes["k"] != nil else { throw EngineError("\(node.label): attribute 'k' is missing (opset \(opset))") }
            kAttribute = try node.int("k", 0)
        } else {
            kAttribute = nil
        }
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(outputs: [1]) }
    func producesIntegers(_ integerInputs: [Bool], output: Int) -> Bool { output == 1 || (integerInputs.first ?? false) }

    /// The axis and k for an input of shape `x`, checked.
    private func selection(_ x: [Int], _ k: [Int]) throws -> (axis: Int, k: Int) {
        let a = try Operand.axis(axis, rank: x.count, label)
        guard k.count == 1, let k = k.first else { throw EngineError("\(label): K must hold one value, not \(k.count)") }
        guard k >= 0, k <= x[a] else { throw EngineError("\(label): k \(k) is outside 0...\(x[a]), the length of axis \(a)") }
        guard x[a] <= Operand.exactFloatIntegers else {
            throw EngineError("\(label): axis \(a) of length \(x[a]) is longer than 2^24, the indices float32 storage holds exactly")
        }
        return (a, k)
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let x = try Operand.shape(shapes, 0, label)
        let (a, k) = try selection(x, try kAttribute.map { [$0] } ?? Operand.integers(try Operand.constant(constants, 1, label, what: "K")))
        var shape = x
        shape[a] = k
        return [shape, shape]
    }

    /// Whether `a` at index `i` ranks before `b` at index `j`.
    private func ranksBefore(_ a: Float, _ i: Int, _ b: Float, _ j: Int) -> Bool {
        if a.isNaN != b.isNaN { return a.isNaN == largest }
        if a != b && !a.isNaN { return largest ? a > b : a < b }
        return i < j
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let (a, k) = try selection(x.shape, try kAttribute.map { [$0] } ?? Operand.integers(inputs, 1, context, label))
        let (outer, n, inner) = TensorMath.split(x.shape, at: a)
        var values = [Float](repeating: 0, count: outer * k * inner), indices = values
        var order = [Int](repeating: 0, count: n)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * n * inner + i
                for j in 0..<n { order[j] = j }
                order.sort { ranksBefore(x.storage[base + $0 * inner], $0, x.storage[base + $1 * inner], $1) }
                for j in 0..<k {
                    values[(o * k + j) * inner + i] = x.storage[base + order[j] * inner]
                    indices[(o * k + j) * inner + i] = Float(order[j])
                }
            }
        }
        var shape = x.shape
        shape[a] = k
        return [Tensor(shape: shape, storage: values), Tensor(shape: shape, storage: indices)]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil, nil] }
        let x = try Operand.shape(a.inputShapes, 0, label), indices = try Operand.required(a.outputs, 1, label)
        let axis = try Operand.axis(axis, rank: x.count, label)
        let m = try IndexMap.alongAxis(Operand.integers(Constant(tensor: indices)), indices.shape, in: x, axis: axis, label)
        return [IndexMap.scatter(g, m, x), nil]
    }
}

/// Broadcast of the input to a (constant) shape; the gradient is summed back.
struct Expand: Operator {
    let label: String
    func copiedInputs(count: Int) -> [Int] { [0] }
    init(_ node: Node) throws {
        try node.checkAttributes([])
        label = node.label
    }
    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let target = Operand.integers(try Operand.constant(constants, 1, label, what: "shape"))
        return [try TensorMath.broadcastShape(try Operand.shape(shapes, 0, label), target, label)]
    }
    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let target = try Operand.integers(inputs, 1, context, label)
        return [try TensorMath.broadcast(x, Tensor(shape: target.map { max($0, 1) }, repeating: 0), label) { a, _ in a }]
    }
    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        return [TensorMath.reduce(g, to: try Operand.shape(a.inputShapes, 0, label))]
    }
}
