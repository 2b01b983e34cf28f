import Core
/// Operators that only rearrange elements: the gradient is rearranged back.

/// A new shape for the same elements (Reshape, Flatten, Squeeze, Unsqueeze); the gradient is reshaped back.
struct Reshape: Operator {
    enum Kind { case reshape(allowZero: Bool), flatten(axis: Int), squeeze([Int]?), unsqueeze([Int]?) }
    let label: String
    let kind: Kind

    func copiedInputs(count: Int) -> [Int] { [0] }
    init(_ node: Node) throws {
        label = node.label
        switch node.opType {
        case "Reshape":
            try node.checkAttributes(["allowzero"])
            kind = .reshape(allowZero: try node.int("allowzero", 0) != 0)
        case "Flatten":
            try node.checkAttributes(["axis"])
            kind = .flatten(axis: try node.int("axis", 1))
        case "Squeeze":
            try node.checkAttributes(["axes"])
            kind = .squeeze(try node.ints("axes"))
        default:
            try node.checkAttributes(["axes"])
            kind = .unsqueeze(try node.ints("axes"))
        }
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let x = try Operand.shape(shapes, 0, label)
        let count = Tensor.elementCount(x)
        func axesInput() throws -> [Int]? {
            guard shapes.count > 1, shapes[1] != nil else { return nil }
            return Operand.integers(try Operand.constant(constants, 1, label, what: "axes"))
        }
        switch kind {
        case .reshape(let allowZero):
            var target = Operand.integers(try Operand.constant(constants, 1, label, what: "shape"))
            for i in target.indices where target[i] == 0 && !allowZero {
                guard i < x.count else { throw EngineError("\(label): shape \(target) copies a dimension \(x) lacks") }
                target[i] = x[i]
            }
            let known = try Operand.elementCount(target.filter { $0 != -1 }, label)
            if let free = target.firstIndex(of: -1) {
                guard target.filter({ $0 == -1 }).count == 1, known > 0, count % known == 0 else {
                    throw EngineError("\(label): cannot reshape \(x) to \(target)")
                }
                target[free] = count / known
            }
            guard try Operand.elementCount(target, label) == count else {
                throw EngineError("\(label): cannot reshape \(x) to \(target)")
            }
            return [target]
        case .flatten(let axis):
            let a = axis < 0 ? axis + x.count : axis
            guard a >= 0 && a <= x.count else { throw EngineError("\(label): axis \(axis) out of range for \(x)") }
            return [[Tensor.elementCount(Array(x[..<a])), Tensor.elementCount(Array(x[a...]))]]
        case .squeeze(let attribute):
            guard let axes = try attribute ?? axesInput() else { return [x.filter { $0 != 1 }] }
            let normalised = try Set(axes.map { try Operand.axis($0, rank: x.count, label) })
            for a in normalised where x[a] != 1 { throw EngineError("\(label): cannot squeeze dimension \(a) of \(x)") }
            return [x.enumerated().filter { !normalised.contains($0.offset) }.map(\.element)]
        case .unsqueeze(let attribute):
            guard let axes = try attribute ?? axesInput() else { throw EngineError("\(label): no axes given") }
            let rank = x.count + axes.count
            let normalised = try Set(axes.map { try Operand.axis($0, rank: rank, label) })
            var result: [Int] = []
            var source = x.makeIterator()
            for i in 0..<rank { result.append(normalised.contains(i) ? 1 : (source.next() ?? 1)) }
            return [result]
        }
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let constants = context.constants(inputs)
        return [x.reshaped(try outputShapes(inputs.map { $0?.shape }, constants: constants)[0])]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let x = try Operand.shape(a.inputShapes, 0, label)
        // The whole input shape: the first dimension need not be the batch (ConvNeXt's head flattens [N, C, 1, 1] to [N*C]).
        guard g.count == Tensor.elementCount(x) else { throw EngineError("\(label): gradient \(g.shape) does not fit input \(x)") }
        return [g.reshaped(x)]
    }
}

/// Permutation of dimensions; the gradient is permuted back.
struct Transpose: Operator {
    let label: String
    let perm: [Int]?

    func copiedInputs(count: Int) -> [Int] { [0] }
    init(_ node: Node) throws {
        try node.checkAttributes(["perm"])
        label = node.label
        perm = try node.ints("perm")
    }

    func permutation(_ rank: Int) throws -> [Int] {
        let p = perm ?? Array((0..<rank).reversed())
        guard p.count == rank, Set(p) == Set(0..<rank) else { throw EngineError("\(label): perm \(p) is not a permutation of rank \(rank)") }
        return p
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let x = try Operand.shape(shapes, 0, label)
        return [try permutation(x.count).map { x[$0] }]
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        return [TensorMath.transpose(x, try permutation(x.rank))]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let p = try permutation(g.rank)
        var inverse = p
        for (i, d) in p.enumerated() { inverse[d] = i }
        return [TensorMath.transpose(g, inverse)]
    }
}

/// Joins inputs along an axis; each input's gradient is its slice of the output gradient.
struct Concat: Operator {
    let label: String
    let axis: Int

    func copiedInputs(count: Int) -> [Int] { Array(0..<count) }
    init(_ node: Node) throws {
        try node.checkAttributes(["axis"])
        label = node.label
        guard node.attributes["axis"] != nil else { throw EngineError("\(node.label): attribute 'axis' is required") }
        axis = try node.int("axis", 0)
    }

    var differentiableInputs: Set<Int> { Set(0..<1024) }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let parts = shapes.compactMap { $0 }
        guard let first = parts.first else { throw EngineError("\(label): no inputs") }
        let a = try Operand.axis(axis, rank: first.count, label)
        var out = first
        out[a] = 0
        for p in parts {
            guard p.count == first.count, (0..<p.count).allSatisfy({ $0 == a || p[$0] == first[$0] }) else {
                throw EngineError("\(label): shapes \(parts) do not concatenate along axis \(axis)")
            }
            out[a] += p[a]
        }
        return [out]
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let parts = inputs.compactMap { $0 }
        let shape = try outputShapes(parts.map(\.shape), constants: [])[0]
        let a = try Operand.axis(axis, rank: shape.count, label)
        let outer = Tensor.elementCount(Array(shape[..<a]))
        var out: [Float] = []
        out.reserveCapacity(Tensor.elementCount(shape))
        for o in 0..<outer {
            for p in parts {
                let block = p.count / max(outer, 1)
                out.append(contentsOf: p.storage[(o * block)..<((o + 1) * block)])
            }
        }
        return [Tensor(shape: shape, storage: out)]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return a.wanted.map { _ in nil } }
        let ax = try Operand.axis(axis, rank: g.rank, label)
        let outer = Tensor.elementCount(Array(g.shape[..<ax]))
        let inner = g.count / max(outer, 1)
        var offset = 0
        var result: [Tensor?] = []
        // Input shapes as planned (same batch as the gradient): the concatenation axis may be the first.
        for (i, s) in a.inputShapes.enumerated() {
            guard let shape = s else { result.append(nil); continue }
            let block = Tensor.elementCount(shape) / max(outer, 1)
            guard offset + block <= inner else { throw EngineError("\(label): gradient \(g.shape) does not fit the inputs") }
            if a.wanted[i] {
                var part: [Float] = []
                part.reserveCapacity(block * outer)
                for o in 0..<outer { part.append(contentsOf: g.storage[(o * inner + offset)..<(o * inner + offset + block)]) }
                result.append(Tensor(shape: shape, storage: part))
            } else {
                result.append(nil)
            }
            offset += block
        }
        return result
    }
}

/// Cuts the input into parts along an axis; the gradient concatenates the parts' gradients (zeros where absent).
struct Split: Operator {
    let label: String
    let axis: Int
    let splitAttribute: [Int]?
    let outputCount: Int

    func copiedInputs(count: Int) -> [Int] { [0] }
    init(_ node: Node) throws {
        try node.checkAttributes(["axis", "split", "num_outputs"])
        label = node.label
        axis = try node.int("axis", 0)
        splitAttribute = try node.ints("split")
        outputCount = node.outputs.count
    }

    func sizes(_ x: [Int], _ constants: [Constant?], _ shapes: [[Int]?]) throws -> [Int] {
        let a = try Operand.axis(axis, rank: x.count, label)
        var sizes = splitAttribute
        if sizes == nil, shapes.count > 1, shapes[1] != nil {
            sizes = Operand.integers(try Operand.constant(constants, 1, label, what: "split"))
        }
        if let sizes {
            guard sizes.count == outputCount, sizes.reduce(0, +) == x[a], sizes.allSatisfy({ $0 >= 0 }) else {
                throw EngineError("\(label): split \(sizes) does not divide \(x) along axis \(axis)")
            }
            return sizes
        }
        let chunk = (x[a] + outputCount - 1) / max(outputCount, 1)
        return (0..<outputCount).map { max(0, min(chunk, x[a] - $0 * chunk)) }
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let x = try Operand.shape(shapes, 0, label)
        let a = try Operand.axis(axis, rank: x.count, label)
        return try sizes(x, constants, shapes).map { var s = x; s[a] = $0; return s }
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let shapes = try outputShapes(inputs.map { $0?.shape }, constants: context.constants(inputs))
        let a = try Operand.axis(axis, rank: x.rank, label)
        let outer = Tensor.elementCount(Array(x.shape[..<a])), inner = x.count / max(outer, 1)
        var offset = 0
        return shapes.map { shape in
            let block = Tensor.elementCount(shape) / max(outer, 1)
            var part: [Float] = []
            part.reserveCapacity(block * outer)
            for o in 0..<outer { part.append(contentsOf: x.storage[(o * inner + offset)..<(o * inner + offset + block)]) }
            offset += block
            return Tensor(shape: shape, storage: part)
        }
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard a.gradients.contains(where: { $0 != nil }) else { return [nil] }
        // The planned input shape (same batch as the gradients): the split axis may be the first.
        let x = try Operand.shape(a.inputShapes, 0, label)
        let constants = context.constants(a.inputs)
        let shapes = try outputShapes([x] + a.inputShapes.dropFirst(), constants: constants)
        let parts = shapes.enumerated().map { i, s in a.gradients.count > i ? (a.gradients[i] ?? Tensor(shape: s)) : Tensor(shape: s) }
        return [try Concat(axis: axis, label: label).forward(parts, context: context)[0]]
    }
}

extension Concat {
    init(axis: Int, label: String) {
        self.axis = axis
        self.label = label
    }
}
