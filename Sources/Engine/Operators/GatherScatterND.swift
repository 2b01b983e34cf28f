import Core
/// Operators that read or write slices of a tensor addressed by tuples of indices (the last dimension of an index
/// tensor): GatherND and ScatterND.

/// Index tuples into the leading dimensions of a tensor, turned into the flat offsets of the elements they address.
enum IndexTuples {
    /// The flat offset in a tensor of shape `shape` of every element the tuples of `indices` (shape `[..., k]`) address,
    /// tuple after tuple, each followed by the elements of its slice (`shape[batchDims + k...]`). With `batchDims` b,
    /// the tuples of block `n` of `indices`' first b dimensions address block `n` of `shape`'s first b dimensions.
    ///
    /// Negative indices count from the end; an index outside its dimension (or not a number) throws, naming `label`.
    static func elements(_ indices: Tensor, in shape: [Int], batchDims: Int, label: String) throws -> [Int] {
        let k = indices.shape.last ?? 0
        let tuples = Tensor.elementCount(Array(indices.shape.dropLast()))
        let batches = Tensor.elementCount(Array(shape[..<batchDims]))
        let tuplesPerBatch = tuples / max(batches, 1)
        let batchSize = Tensor.elementCount(Array(shape[batchDims...]))
        let sliceSize = Tensor.elementCount(Array(shape[(batchDims + k)...]))
        let strides = TensorMath.strides(shape)
        var result: [Int] = []
        result.reserveCapacity(tuples * sliceSize)
        for t in 0..<tuples {
            var offset = (t / max(tuplesPerBatch, 1)) * batchSize
            for j in 0..<k {
                let axis = batchDims + j
                offset += try index(indices.storage[t * k + j], size: shape[axis], axis: axis, label: label) * strides[axis]
            }
            for s in 0..<sliceSize { result.append(offset + s) }
        }
        return result
    }

    /// `value` as an index into a dimension of `size`, negative ones counting from the end, checked before it becomes
    /// an `Int` (a huge or non-numeric value from a model file must not trap).
    static func index(_ value: Float, size: Int, axis: Int, label: String) throws -> Int {
        guard value >= -Float(size), value < Float(size) else {
            let shown = value.isFinite && abs(value) < 1e15 ? "\(Int(value))" : "\(value)"
            throw EngineError("\(label): index \(shown) is out of range for dimension \(axis) of size \(size)")
        }
        let i = Int(value)
        return i < 0 ? i + size : i
    }
}

/// Slices of the data picked by index tuples, with `batch_dims` leading dimensions shared by data and indices (since
/// opset 12); the gradient is scattered back (added where tuples repeat).
struct GatherND: Operator {
    let label: String
    let batchDims: Int

    init(_ node: Node, opset: Int) throws {
        try node.checkAttributes(opset >= 12 ? ["batch_dims"] : [])
        label = node.label
        batchDims = try node.int("batch_dims", 0)
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [1]) }
    func copiedInputs(count: Int) -> [Int] { [0] }

    /// The output shape, `indices[..<-1] + data[batch_dims + k...]`, after checking that the index tuples (of length k)
    /// fit the data.
    func outputShape(_ data: [Int], _ indices: [Int]) throws -> [Int] {
        guard let k = indices.last else { throw EngineError("\(label): indices must have at least one dimension") }
        guard batchDims >= 0, batchDims < indices.count, batchDims < data.count else {
            throw EngineError("\(label): batch_dims \(batchDims) for data \(data) and indices \(indices)")
        }
        guard data[..<batchDims] == indices[..<batchDims] else {
            throw EngineError("\(label): the first \(batchDims) dimensions of data \(data) and indices \(indices) differ")
        }
        guard k >= 1, k <= data.count - batchDims else {
            throw EngineError("\(label): index tuples of length \(k) do not fit data \(data) after \(batchDims) batch dimensions")
        }
        return Array(indices.dropLast()) + Array(data[(batchDims + k)...])
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let data = try Operand.shape(shapes, 0, label)
        let shape = try outputShape(data, try Operand.shape(shapes, 1, label))
        // Indices known at load time are checked there.
        if constants.count > 1, let indices = constants[1] {
            _ = try IndexTuples.elements(indices.tensor, in: data, batchDims: batchDims, label: label)
        }
        return [shape]
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let data = try Operand.required(inputs, 0, label), indices = try Operand.required(inputs, 1, label)
        let shape = try outputShape(data.shape, indices.shape)
        let elements = try IndexTuples.elements(indices, in: data.shape, batchDims: batchDims, label: label)
        return [IndexMap.gather(data, elements, shape)]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let data = try Operand.shape(a.inputShapes, 0, label)
        let elements = try IndexTuples.elements(try Operand.required(a.inputs, 1, label), in: data, batchDims: batchDims, label: label)
        return [IndexMap.scatter(g, elements, data)]
    }
}

/// A copy of the data with the slices addressed by index tuples replaced by the updates, or added to or multiplied by
/// them (`reduction`, since opset 16). Where tuples repeat, "none" keeps the last update (ONNX leaves it undefined).
///
/// Gradients: the data's is the output's, zeroed where updates replaced it ("none"), or times the updates ("mul"); the
/// updates' is the output's at their places (times the rest of the product for "mul"; zero for an update overwritten
/// by a later one).
struct ScatterND: Operator {
    enum Reduction: String { case none, add, mul }

    let label: String
    let reduction: Reduction

    init(_ node: Node, opset: Int) throws {
        try node.checkAttributes(opset >= 16 ? ["reduction"] : [])
        label = node.label
        let name = try node.string("reduction", "none")
        guard let reduction = Reduction(rawValue: name) else {
            throw EngineError("\(node.label): reduction '\(name)' is not supported (none, add, mul)")
        }
        self.reduction = reduction
    }

    /// Without a reduction, the output's elements are the data's and the updates' (with one, integers are computed in
    /// float32, checked exact).
    func copiedInputs(count: Int) -> [Int] { reduction == .none ? [0, 2] : [] }

    var differentiableInputs: Set<Int> { [0, 2] }
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: reduction == .mul ? [0, 1, 2] : [1]) }

    /// Checks that the updates have the shape `indices[..<-1] + data[k...]` for index tuples of length k.
    func checkShapes(_ data: [Int], _ indices: [Int], _ updates: [Int]) throws {
        guard let k = indices.last else { throw EngineError("\(label): indices must have at least one dimension") }
        guard k <= data.count else { throw EngineError("\(label): index tuples of length \(k) for data \(data)") }
        let expected = Array(indices.dropLast()) + Array(data[k...])
        guard updates == expected else {
            throw EngineError("\(label): updates \(updates) should have shape \(expected) for data \(data) and indices \(indices)")
        }
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let data = try Operand.shape(shapes, 0, label)
        try checkShapes(data, try Operand.shape(shapes, 1, label), try Operand.shape(shapes, 2, label))
        // Indices known at load time are checked there.
        if constants.count > 1, let indices = constants[1] {
            _ = try IndexTuples.elements(indices.tensor, in: data, batchDims: 0, label: label)
        }
        return [data]
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let data = try Operand.required(inputs, 0, label), indices = try Operand.required(inputs, 1, label)
        let updates = try Operand.required(inputs, 2, label)
        try checkShapes(data.shape, indices.shape, updates.shape)
        let places = try IndexTuples.elements(indices, in: data.shape, batchDims: 0, label: label)
        var out = data.storage
        switch reduction {
        case .none: for (u, p) in places.enumerated() { out[p] = updates.storage[u] }
        case .add: for (u, p) in places.enumerated() { out[p] += updates.storage[u] }
        case .mul: for (u, p) in places.enumerated() { out[p] *= updates.storage[u] }
        }
        return [Tensor(shape: data.shape, storage: out)]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil, nil, nil] }
        let dataShape = try Operand.shape(a.inputShapes, 0, label), updatesShape = try Operand.shape(a.inputShapes, 2, label)
        let places = try IndexTuples.elements(try Operand.required(a.inputs, 1, label), in: dataShape, batchDims: 0, label: label)
        var dataGradient: Tensor?, updatesGradient: Tensor?
        switch reduction {
        case .none:
            if a.wanted[0] {
                var out = g.storage
                for p in places { out[p] = 0 }
                dataGradient = Tensor(shape: dataShape, storage: out)
            }
            if a.wanted[2] {
                // Only the last update written to a place reaches the output.
                var last = [Int](repeating: -1, count: g.count)
                for (u, p) in places.enumerated() { last[p] = u }
                updatesGradient = Tensor(shape: updatesShape, storage: places.enumerated().map { u, p in last[p] == u ? g.storage[p] : 0 })
            }
        case .add:
            dataGradient = a.wanted[0] ? g : nil
            updatesGradient = a.wanted[2] ? IndexMap.gather(g, places, updatesShape) : nil
        case .mul:
            let data = try Operand.required(a.inputs, 0, label), updates = try Operand.required(a.inputs, 2, label)
            (dataGradient, updatesGradient) = productGradients(g, data, updates, places)
        }
        return [a.wanted[0] ? dataGradient : nil, nil, a.wanted[2] ? updatesGradient : nil]
    }

    /// The gradients of `out[p] = data[p] * (product of the updates at p)`: each factor's is the output gradient times
    /// the other factors (products before and after it, so that a zero factor needs no division).
    private func productGradients(_ g: Tensor, _ data: Tensor, _ updates: Tensor, _ places: [Int]) -> (Tensor, Tensor) {
        // The updates at each place, chained in order: first[p], then next[u].
        var first = [Int](repeating: -1, count: data.count), next = [Int](repeating: -1, count: places.count)
        for (u, p) in places.enumerated().reversed() { (next[u], first[p]) = (first[p], u) }
        var dataGradient = g.storage, updatesGradient = [Float](repeating: 0, count: updates.count)
        var chain: [Int] = [], before: [Float] = []
        for p in first.indices where first[p] >= 0 {
            chain.removeAll(keepingCapacity: true)
            before.removeAll(keepingCapacity: true)
            var u = first[p], product = data.storage[p]
            while u >= 0 { chain.append(u); before.append(product); product *= updates.storage[u]; u = next[u] }
            var after: Float = 1
            for i in chain.indices.reversed() {
                updatesGradient[chain[i]] = g.storage[p] * before[i] * after
                after *= updates.storage[chain[i]]
            }
            dataGradient[p] = g.storage[p] * after
        }
        return (Tensor(shape: data.shape, storage: dataGradient), Tensor(shape: updates.shape, storage: updatesGradient))
    }
}
