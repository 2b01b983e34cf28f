import Core
/// Operators that select or place elements by index: Slice, Pad, Gather, Expand.

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
}

/// Strided slicing along chosen axes (starts, ends, axes, steps as inputs, or attributes before opset 10).
struct Slice: Operator {
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

    private func map(_ x: [Int], _ inputs: [Tensor?], _ context: OperatorContext) throws -> ([Int], [Int]) {
        let constants = context.constants(inputs)
        let r = try ranges(x, constants, [x] + inputs.dropFirst().map { $0?.shape })
        let shape = r.map(\.count)
        return (shape, IndexMap.build(output: shape, input: x) { d, i in r[d].start + i * r[d].step })
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let (shape, m) = try map(x.shape, inputs, context)
        return [IndexMap.gather(x, m, shape)]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let x = try Operand.shape(a.inputShapes, 0, label)
        let (_, m) = try map(x, [nil] + a.inputs.dropFirst(), context)
        return [IndexMap.scatter(g, m, x)]
    }
}

/// Padding (constant, reflect or edge); the gradient gathers back what each input element fed.
struct Pad: Operator {
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

    private func map(_ x: [Int], _ inputs: [Tensor?], _ context: OperatorContext) throws -> ([Int], [Int]) {
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

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let value = inputs.count > 2 ? inputs[2]?.storage.first ?? valueAttribute : valueAttribute
        let (shape, m) = try map(x.shape, inputs, context)
        return [IndexMap.gather(x, m, shape, fill: value)]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let x = try Operand.shape(a.inputShapes, 0, label)
        let (_, m) = try map(x, [nil] + a.inputs.dropFirst(), context)
        return [IndexMap.scatter(g, m, x)]
    }
}

/// Elements picked along an axis by (constant) indices; the gradient is scattered back.
struct Gather: Operator {
    let label: String
    let axis: Int

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

    private func map(_ x: [Int], _ inputs: [Tensor?], _ context: OperatorContext) throws -> ([Int], [Int]) {
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

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let (shape, m) = try map(x.shape, inputs, context)
        return [IndexMap.gather(x, m, shape)]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let x = try Operand.shape(a.inputShapes, 0, label)
        let (_, m) = try map(x, a.inputs, context)
        return [IndexMap.scatter(g, m, x)]
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
