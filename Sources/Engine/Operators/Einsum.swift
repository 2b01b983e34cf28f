import Core
/// Einstein summation: a product of operands summed over the labels the output does not keep.

/// One side of an einsum equation: the labels of one operand or of the output, and where `...` stands among them.
struct EinsumTerm: Sendable {
    /// The letters as ASCII codes (upper- and lower-case letters are different labels).
    var letters: [Int]
    /// The number of letters before `...` (nil: the term has none).
    var ellipsis: Int?

    /// Parses one term (spaces already removed), naming `label` in errors.
    init(_ text: Substring, label: String) throws {
        letters = []
        let characters = Array(text.utf8)
        var i = 0
        while i < characters.count {
            let c = characters[i]
            if (c >= 65 && c <= 90) || (c >= 97 && c <= 122) {
                letters.append(Int(c))
                i += 1
            } else if c == 46, ellipsis == nil, characters[i...].starts(with: [46, 46, 46]) {
                ellipsis = letters.count
                i += 3
            } else {
                throw EngineError("\(label): '\(text)' is not a term of letters and at most one '...'")
            }
        }
    }

    /// The labels of the dimensions of a tensor with `broadcastRank` dimensions under `...`: the letters, and in place
    /// of `...` the last `broadcastRank` of the `ellipsisRank` labels the ellipsis stands for across the equation.
    func labels(broadcastRank: Int, ellipsisRank: Int) -> [Int] {
        guard let ellipsis else { return letters }
        let broadcast = (ellipsisRank - broadcastRank)..<ellipsisRank
        return Array(letters[..<ellipsis]) + broadcast.map { EinsumEquation.ellipsisLabel + $0 } + Array(letters[ellipsis...])
    }
}

/// An einsum equation: its operand terms, and its output term unless implicit (no `->`).
struct EinsumEquation: Sendable {
    let inputs: [EinsumTerm]
    let output: EinsumTerm?

    /// Labels from this one on stand for the dimensions under `...`, outermost first (letters are ASCII codes).
    static let ellipsisLabel = 128

    /// Parses `equation`, naming `label` in errors; spaces are ignored.
    init(_ equation: String, label: String) throws {
        let compact = String(equation.filter { $0 != " " })
        let sides = compact.split(separator: "->", omittingEmptySubsequences: false)
        guard sides.count <= 2, !compact.isEmpty else { throw EngineError("\(label): '\(equation)' is not an einsum equation") }
        inputs = try sides[0].split(separator: ",", omittingEmptySubsequences: false).map { try EinsumTerm($0, label: label) }
        output = sides.count == 2 ? try EinsumTerm(sides[1], label: label) : nil
        if let output {
            let known = Set(inputs.flatMap(\.letters))
            for (i, letter) in output.letters.enumerated() {
                guard known.contains(letter) else {
                    throw EngineError("\(label): output label '\(EinsumEquation.name(letter))' is in no operand of '\(equation)'")
                }
                guard !output.letters[..<i].contains(letter) else {
                    throw EngineError("\(label): output label '\(EinsumEquation.name(letter))' is repeated in '\(equation)'")
                }
            }
        }
    }

    /// A label as written: its letter, or `...` for a dimension under the ellipsis.
    static func name(_ label: Int) -> String {
        label < ellipsisLabel ? String(UnicodeScalar(UInt8(label))) : "..."
    }

    /// The labels of each operand of the given shapes and of the output. The implicit output is the ellipsis'
    /// dimensions, then the letters written once, in ASCII order (upper case first, as numpy).
    func labels(_ shapes: [[Int]], label: String) throws -> (operands: [[Int]], output: [Int]) {
        guard shapes.count == inputs.count else {
            throw EngineError("\(label): the equation has \(inputs.count) operands, the node \(shapes.count) inputs")
        }
        var broadcastRanks: [Int] = []
        for (term, shape) in zip(inputs, shapes) {
            let rest = shape.count - term.letters.count
            guard term.ellipsis == nil ? rest == 0 : rest >= 0 else {
                throw EngineError("\(label): an operand of shape \(shape) does not match its term of \(term.letters.count) letters")
            }
            broadcastRanks.append(rest)
        }
        let ellipsisRank = broadcastRanks.max() ?? 0
        let operands = zip(inputs, broadcastRanks).map { $0.labels(broadcastRank: $1, ellipsisRank: ellipsisRank) }
        if let output {
            return (operands, output.labels(broadcastRank: ellipsisRank, ellipsisRank: ellipsisRank))
        }
        var counts: [Int: Int] = [:]
        for letter in inputs.flatMap(\.letters) { counts[letter, default: 0] += 1 }
        let once = counts.filter { $0.value == 1 }.keys.sorted()
        return (operands, (0..<ellipsisRank).map { EinsumEquation.ellipsisLabel + $0 } + once)
    }
}

/// Einstein summation over one or more operands (`equation`, with `...` for broadcast dimensions). A label may have
/// size 1 in one operand and n in another, which broadcasts it (as PyTorch allows). The gradient of each operand is
/// the einsum of the output's gradient with the other operands, giving that operand's labels.
///
/// Two operands forming a batched matrix product after transposes (batch labels in both operands and the output,
/// contracted labels in both operands only, the others in one operand and the output) run on the MatMul kernels;
/// other equations run as one loop over every label.
struct Einsum: Operator {
    let label: String
    let equation: EinsumEquation

    init(_ node: Node) throws {
        try node.checkAttributes(["equation"])
        label = node.label
        equation = try EinsumEquation(try node.string("equation", ""), label: node.label)
        guard equation.inputs.count == node.inputs.count else {
            throw EngineError("\(node.label): the equation has \(equation.inputs.count) operands, the node \(node.inputs.count) inputs")
        }
    }

    var differentiableInputs: Set<Int> { Set(equation.inputs.indices) }
    // Each operand's gradient reads the other operands.
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: equation.inputs.count > 1 ? Array(equation.inputs.indices) : []) }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let shapes = try equation.inputs.indices.map { try Operand.shape(shapes, $0, label) }
        let (operands, output) = try equation.labels(shapes, label: label)
        let sizes = try Contraction.sizes(Array(zip(shapes, operands)), label: label)
        return [output.map { sizes[$0] ?? 1 }]
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let tensors = try equation.inputs.indices.map { try Operand.required(inputs, $0, label) }
        let (operands, output) = try equation.labels(tensors.map(\.shape), label: label)
        let sizes = try Contraction.sizes(Array(zip(tensors.map(\.shape), operands)), label: label)
        return [try Contraction(operands: Array(zip(tensors, operands)), output: output, shape: output.map { sizes[$0] ?? 1 }, label: label)
                    .evaluate(context.kernels)]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return equation.inputs.map { _ in nil } }
        let shapes = try equation.inputs.indices.map { try Operand.shape(a.inputShapes, $0, label) }
        let (operands, output) = try equation.labels(shapes, label: label)
        return try equation.inputs.indices.map { i in
            guard i < a.wanted.count, a.wanted[i] else { return nil }
            var factors = [(g, output)]
            for j in equation.inputs.indices where j != i { factors.append((try Operand.required(a.inputs, j, label), operands[j])) }
            return try Contraction(operands: factors, output: operands[i], shape: shapes[i], label: label).evaluate(context.kernels)
        }
    }
}

/// `out[output labels] = sum, over the labels out does not have, of the product of the operands`: an einsum whose
/// labels are resolved. A dimension of size 1 where its label is larger broadcasts (in an operand) or is summed into (in
/// the output); a label repeated in an operand reads its diagonal, repeated in the output writes it.
struct Contraction {
    let operands: [(tensor: Tensor, labels: [Int])]
    let output: [Int]
    let shape: [Int]
    let label: String
    /// The size of every label.
    let sizes: [Int: Int]

    init(operands: [(Tensor, [Int])], output: [Int], shape: [Int], label: String) throws {
        self.operands = operands.map { (tensor: $0.0.reordered(to: .channelsFirst), labels: $0.1) }
        (self.output, self.shape, self.label) = (output, shape, label)
        sizes = try Contraction.sizes(operands.map { ($0.0.shape, $0.1) } + [(shape, output)], label: label)
    }

    /// The size of each label over tensors of these shapes and labels: equal wherever it is not 1.
    static func sizes(_ tensors: [([Int], [Int])], label: String) throws -> [Int: Int] {
        var sizes: [Int: Int] = [:]
        for (shape, labels) in tensors {
            for (size, l) in zip(shape, labels) {
                guard let known = sizes[l], known != size else { sizes[l] = size; continue }
                if size == 1 { continue }
                guard known == 1 else {
                    throw EngineError("\(label): label '\(EinsumEquation.name(l))' has sizes \(known) and \(size)")
                }
                sizes[l] = size
            }
        }
        return sizes
    }

    func evaluate(_ kernels: any KernelBackend) throws -> Tensor {
        if operands.count == 2, let product = try matrixProduct(kernels) { return product }
        return summedProducts()
    }

    /// The stride of each of `labels` in a tensor of `shape` labelled `tensorLabels`: summed over repeated labels, 0 where
    /// the tensor does not have the label or has it as a broadcast 1.
    private func strides(_ labels: [Int], shape: [Int], tensorLabels: [Int]) -> [Int] {
        let own = TensorMath.strides(shape)
        return labels.map { l in
            tensorLabels.indices.reduce(0) { sum, d in
                tensorLabels[d] == l && shape[d] == sizes[l] ? sum + own[d] : sum
            }
        }
    }

    /// The general case: one pass over every combination of labels, the output's outermost.
    private func summedProducts() -> Tensor {
        var loopLabels: [Int] = []
        for l in output + operands.flatMap(\.labels) where !loopLabels.contains(l) { loopLabels.append(l) }
        let extents = loopLabels.map { sizes[$0] ?? 1 }
        let total = Tensor.elementCount(extents)
        var result = [Float](repeating: 0, count: Tensor.elementCount(shape))
        guard total > 0 else { return Tensor(shape: shape, storage: result) }
        // Every operand in one buffer, each at its base offset, so that one loop reads any number of them.
        var values: [Float] = [], bases: [Int] = []
        for operand in operands { bases.append(values.count); values += operand.tensor.storage }
        let operandStrides = operands.map { strides(loopLabels, shape: $0.tensor.shape, tensorLabels: $0.labels) }
        let outputStrides = strides(loopLabels, shape: shape, tensorLabels: output)
        let rank = loopLabels.count, count = operands.count
        var index = [Int](repeating: 0, count: rank)
        var offsets = bases, outputOffset = 0
        values.withUnsafeBufferPointer { pv in
            result.withUnsafeMutableBufferPointer { pr in
                for _ in 0..<total {
                    var product: Float = 1
                    for t in 0..<count { product *= pv[offsets[t]] }
                    pr[outputOffset] += product
                    var d = rank - 1
                    while d >= 0 {
                        index[d] += 1
                        for t in 0..<count { offsets[t] += operandStrides[t][d] }
                        outputOffset += outputStrides[d]
                        if index[d] < extents[d] { break }
                        for t in 0..<count { offsets[t] -= operandStrides[t][d] * extents[d] }
                        outputOffset -= outputStrides[d] * extents[d]
                        index[d] = 0
                        d -= 1
                    }
                }
            }
        }
        return Tensor(shape: shape, storage: result)
    }

    /// Two operands as a batched matrix product `[batch, M, K] x [batch, K, N]` on the MatMul kernels, when the labels
    /// sort so (nil otherwise): batch labels are in both operands and the output (broadcast allowed), M's in the first
    /// and the output, N's in the second and the output, K's in both operands only.
    private func matrixProduct(_ kernels: any KernelBackend) throws -> Tensor? {
        let (a, b) = (operands[0], operands[1])
        let (inA, inB, inOutput) = (Set(a.labels), Set(b.labels), Set(output))
        guard inA.count == a.labels.count, inB.count == b.labels.count, inOutput.count == output.count,
              inOutput.isSubset(of: inA.union(inB)), a.tensor.count > 0, b.tensor.count > 0, shape.allSatisfy({ $0 > 0 }) else {
            return nil
        }
        let batch = output.filter { inA.contains($0) && inB.contains($0) }
        let rows = output.filter { inA.contains($0) && !inB.contains($0) }
        let columns = output.filter { inB.contains($0) && !inA.contains($0) }
        let contracted = a.labels.filter { inB.contains($0) && !inOutput.contains($0) }
        // A label summed within one operand alone is not a matrix product.
        guard a.labels.count == batch.count + rows.count + contracted.count,
              b.labels.count == batch.count + columns.count + contracted.count else { return nil }
        func size(_ operand: (tensor: Tensor, labels: [Int]), _ l: Int) -> Int { operand.tensor.shape[operand.labels.firstIndex(of: l)!] }
        guard rows.allSatisfy({ size(a, $0) == sizes[$0] }), columns.allSatisfy({ size(b, $0) == sizes[$0] }),
              contracted.allSatisfy({ size(a, $0) == sizes[$0] && size(b, $0) == sizes[$0] }) else { return nil }

        /// The operand as `[batch..., first, second]` matrices, or `[batch..., second, first]` marked transposed when
        /// it is stored so: a transpose only when neither.
        func matrices(_ operand: (tensor: Tensor, labels: [Int]), _ first: [Int], _ second: [Int]) -> (Tensor, [Int], Bool) {
            let batchSizes = batch.map { size(operand, $0) }
            let firstSize = Tensor.elementCount(first.map { sizes[$0]! }), secondSize = Tensor.elementCount(second.map { sizes[$0]! })
            let straight = batch + first + second
            if operand.labels == straight { return (operand.tensor, batchSizes + [firstSize, secondSize], false) }
            if operand.labels == batch + second + first { return (operand.tensor, batchSizes + [secondSize, firstSize], true) }
            let permuted = TensorMath.transpose(operand.tensor, straight.map { operand.labels.firstIndex(of: $0)! })
            return (permuted, batchSizes + [firstSize, secondSize], false)
        }
        let (x, xs, tx) = matrices(a, rows, contracted)
        let (y, ys, ty) = matrices(b, contracted, columns)
        let batchSizes = batch.map { sizes[$0]! }
        let resultLabels = batch + rows + columns
        var result = try MatMul.batched(x, xs, tx: tx, y, ys, ty: ty, batch: batchSizes, kernels)
            .reshaped(resultLabels.map { sizes[$0]! })
        if resultLabels != output { result = TensorMath.transpose(result, output.map { resultLabels.firstIndex(of: $0)! }) }
        return TensorMath.reduce(result, to: shape)
    }
}
