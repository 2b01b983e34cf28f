import Core
/// Matrix products and normalisations.

/// The axes a reduction runs over and the shape it leaves: the `axes` attribute before opset 18, input 1 from 18; every
/// axis when none are given, unless `noop_with_empty_axes`; the reduced axes kept as 1s when `keepdims`.
struct ReductionAxes: Sendable {
    let label: String
    /// Whether the axes are input 1 (opset 18 on) rather than an attribute.
    let fromInput: Bool
    let attribute: [Int]?
    let keepDims: Bool
    let noopWithEmptyAxes: Bool

    init(_ node: Node, opset: Int) throws {
        label = node.label
        fromInput = opset >= 18
        try node.checkAttributes(fromInput ? ["keepdims", "noop_with_empty_axes"] : ["axes", "keepdims", "noop_with_empty_axes"])
        attribute = try node.ints("axes")
        keepDims = try node.int("keepdims", 1) != 0
        noopWithEmptyAxes = try node.int("noop_with_empty_axes", 0) != 0
        if !fromInput, node.inputs.count > 1, !node.inputs[1].isEmpty {
            throw EngineError("\(node.label): axes as an input need opset 18 (the model's is \(opset)); before, they are an attribute")
        }
    }

    /// The reduced axes of an input of shape `x`, from the attribute or the load-time value of input 1.
    func axes(_ x: [Int], _ constants: [Constant?], _ shapes: [[Int]?]) throws -> Set<Int> {
        var list = attribute
        if fromInput, shapes.count > 1, shapes[1] != nil {
            list = Operand.integers(try Operand.constant(constants, 1, label, what: "axes"))
        }
        if list?.isEmpty ?? true { return noopWithEmptyAxes ? [] : Set(0..<x.count) }
        return try Set((list ?? []).map { try Operand.axis($0, rank: x.count, label) })
    }

    /// The axes of the operator's own inputs at run time (input 1 read exactly when the plan knew it).
    func axes(_ x: [Int], inputs: [Tensor?], context: OperatorContext) throws -> Set<Int> {
        try axes(x, context.constants(inputs), inputs.map { $0?.shape })
    }

    /// `x` with the reduced axes set to 1: the shape of the reduction before `keepdims` drops them.
    static func kept(_ x: [Int], _ axes: Set<Int>) -> [Int] {
        x.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
    }

    /// The output shape for an input of shape `x`.
    func output(_ x: [Int], _ axes: Set<Int>) -> [Int] {
        keepDims ? ReductionAxes.kept(x, axes) : x.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
    }
}

/// An operator reducing its input over `ReductionAxes` (ReduceMean, ReduceL2, ReduceMax): made from its node, and its
/// output's shape.
protocol AxisReduction: Operator {
    var reduction: ReductionAxes { get }
    init(label: String, reduction: ReductionAxes)
}

extension AxisReduction {
    init(_ node: Node, opset: Int) throws {
        self.init(label: node.label, reduction: try ReductionAxes(node, opset: opset))
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let x = try Operand.shape(shapes, 0, reduction.label)
        return [reduction.output(x, try reduction.axes(x, constants, shapes))]
    }
}

/// The mean over axes (attribute before opset 18, input after); the gradient is spread evenly. The mean over height and
/// width of a 4-D input (`spatialAxes`) reads any storage order.
struct ReduceMean: AxisReduction {
    let label: String
    let reduction: ReductionAxes

    /// Height and width of an NCHW tensor: the global average pooling of a classifier head.
    static let spatialAxes: Set<Int> = [2, 3]

    func orderSupport(_ shapes: [[Int]?], constants: [Constant?]) -> OrderSupport {
        guard let x = shapes.first ?? nil, x.count == 4, (try? reduction.axes(x, constants, shapes)) == ReduceMean.spatialAxes else {
            return .channelsFirst
        }
        return .readsAnyOrder
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let a = try reduction.axes(x.shape, inputs: inputs, context: context)
        if x.rank == 4 && a == ReduceMean.spatialAxes {
            return [Tensor(shape: reduction.output(x.shape, a), storage: TensorMath.spatialMeans(x))]
        }
        let sum = TensorMath.reduce(x, to: ReductionAxes.kept(x.shape, a))
        let n = Float(x.count / max(sum.count, 1))
        return [TensorMath.map(sum) { $0 / n }.reshaped(reduction.output(x.shape, a))]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let x = try Operand.shape(a.inputShapes, 0, label)
        let ax = try reduction.axes(x, context.constants(a.inputs), a.inputShapes)
        if x.count == 4 && ax == ReduceMean.spatialAxes {
            return [TensorMath.spatialMeansBackward(g.storage, shape: [g.shape[0]] + x.dropFirst(), order: context.inputOrder(0),
                                                    buffers: context.buffers)]
        }
        let kept = ReductionAxes.kept(x, ax)
        let n = Float(Tensor.elementCount(x) / max(Tensor.elementCount(kept), 1))
        return [try TensorMath.broadcast(g.reshaped(kept), Tensor(shape: x), label) { g, _ in g / n }]
    }
}

/// The Euclidean norm over axes, `sqrt(sum(x^2))` (attribute before opset 18, input after); the gradient is `x / y`,
/// 0 where the norm is 0 (PyTorch's subgradient).
struct ReduceL2: AxisReduction {
    let label: String
    let reduction: ReductionAxes

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0], outputs: [0]) }
    // ONNX keeps an integer input's type: the norm is truncated, as a C++ cast would.
    var truncatesIntegers: Bool { true }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let a = try reduction.axes(x.shape, inputs: inputs, context: context)
        let squares = TensorMath.reduce(TensorMath.map(x) { $0 * $0 }, to: ReductionAxes.kept(x.shape, a))
        return [TensorMath.map(squares) { $0.squareRoot() }.reshaped(reduction.output(x.shape, a))]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let x = try Operand.required(a.inputs, 0, label), y = try Operand.required(a.outputs, 0, label)
        let kept = ReductionAxes.kept(x.shape, try reduction.axes(x.shape, inputs: a.inputs, context: context))
        // g / y per norm, then times x over each reduced group.
        let scale = TensorMath.zip(g.reshaped(kept), y.reshaped(kept)) { g, y in y == 0 ? 0 : g / y }
        return [try TensorMath.broadcast(x, scale, label, *)]
    }
}

/// The largest element over axes (attribute before opset 18, input after; NaN wins, as in PyTorch, where onnxruntime
/// 1.32 passes over it). The gradient goes to the maxima, shared evenly where several elements tie, as PyTorch's `amax`
/// and `max()` share it (its `max(dim)` gives it all to the one index it returns; ties are rare but in saturated values).
struct ReduceMax: AxisReduction {
    let label: String
    let reduction: ReductionAxes

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0], outputs: [0]) }

    /// Visits every element of `x` with the flat index of its reduction (in the kept shape).
    private func forEachElement(_ x: [Int], kept: [Int], _ body: (_ element: Int, _ reduced: Int) -> Void) {
        let strides = TensorMath.broadcastStrides(kept, to: x)
        TensorMath.forEachOffset(x, strides, strides) { element, reduced, _ in body(element, reduced) }
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let axes = try reduction.axes(x.shape, inputs: inputs, context: context)
        let kept = ReductionAxes.kept(x.shape, axes)
        var maxima = [Float](repeating: -.infinity, count: Tensor.elementCount(kept))
        forEachElement(x.shape, kept: kept) { e, r in
            if x.storage[e] > maxima[r] || x.storage[e].isNaN { maxima[r] = x.storage[e] }
        }
        return [Tensor(shape: reduction.output(x.shape, axes), storage: maxima)]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let x = try Operand.required(a.inputs, 0, label), y = try Operand.required(a.outputs, 0, label)
        let kept = ReductionAxes.kept(x.shape, try reduction.axes(x.shape, inputs: a.inputs, context: context))
        var ties = [Float](repeating: 0, count: y.count)
        forEachElement(x.shape, kept: kept) { e, r in if x.storage[e] == y.storage[r] { ties[r] += 1 } }
        var gradient = [Float](repeating: 0, count: x.count)
        forEachElement(x.shape, kept: kept) { e, r in if x.storage[e] == y.storage[r] { gradient[e] = g.storage[r] / ties[r] } }
        return [Tensor(shape: x.shape, storage: gradient)]
    }
}

/// `alpha * op(A) op(B) + beta * C`; gradients for A and B (C's is the reduced output gradient).
struct Gemm: Operator {
    let label: String
    let alpha: Float
    let beta: Float
    let transA: Bool
    let transB: Bool

    init(_ node: Node) throws {
        try node.checkAttributes(["alpha", "beta", "transA", "transB"])
        label = node.label
        alpha = try node.float("alpha", 1)
        beta = try node.float("beta", 1)
        transA = try node.int("transA", 0) != 0
        transB = try node.int("transB", 0) != 0
    }

    var differentiableInputs: Set<Int> { [0, 1, 2] }
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0, 1]) }

    func dims(_ a: [Int], _ b: [Int]) throws -> (m: Int, k: Int, n: Int) {
        guard a.count == 2, b.count == 2 else { throw EngineError("\(label): operands \(a) and \(b) must be matrices") }
        let (m, k) = transA ? (a[1], a[0]) : (a[0], a[1])
        let (k2, n) = transB ? (b[1], b[0]) : (b[0], b[1])
        guard k == k2 else { throw EngineError("\(label): operands \(a) and \(b) do not multiply") }
        return (m, k, n)
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let d = try dims(try Operand.shape(shapes, 0, label), try Operand.shape(shapes, 1, label))
        if shapes.count > 2, let c = shapes[2] { _ = try TensorMath.broadcastShape([d.m, d.n], c, label) }
        return [[d.m, d.n]]
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let a = try Operand.required(inputs, 0, label), b = try Operand.required(inputs, 1, label)
        let d = try dims(a.shape, b.shape)
        var out: Tensor
        if inputs.count > 2, let c = inputs[2], beta != 0 {
            out = try TensorMath.broadcast(Tensor(shape: [d.m, d.n]), c, label) { _, c in c }
        } else {
            out = Tensor(shape: [d.m, d.n])
        }
        let betaUsed: Float = inputs.count > 2 && inputs[2] != nil ? beta : 0
        try a.storage.withUnsafeBufferPointer { pa in
            try b.storage.withUnsafeBufferPointer { pb in
                try out.storage.withUnsafeMutableBufferPointer { po in
                    try context.kernels.gemm(transposeA: transA, transposeB: transB, m: d.m, n: d.n, k: d.k, alpha: alpha,
                                             a: pa.baseAddress!, lda: a.shape[1], b: pb.baseAddress!, ldb: b.shape[1],
                                             beta: betaUsed, c: po.baseAddress!, ldc: d.n)
                }
            }
        }
        return [out]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil, nil, nil] }
        let A = try Operand.required(a.inputs, 0, label), B = try Operand.required(a.inputs, 1, label)
        let d = try dims(A.shape, B.shape)
        var gA: Tensor?, gB: Tensor?, gC: Tensor?
        if a.wanted[0] {
            // dA = alpha * g op(B)^T, stored transposed when A was.
            var out = Tensor(shape: A.shape)
            try g.storage.withUnsafeBufferPointer { pg in
                try B.storage.withUnsafeBufferPointer { pb in
                    try out.storage.withUnsafeMutableBufferPointer { po in
                        if transA {
                            try context.kernels.gemm(transposeA: !transB, transposeB: false, m: d.k, n: d.m, k: d.n, alpha: alpha,
                                                     a: pb.baseAddress!, lda: B.shape[1], b: pg.baseAddress!, ldb: d.n,
                                                     beta: 0, c: po.baseAddress!, ldc: d.m)
                        } else {
                            try context.kernels.gemm(transposeA: false, transposeB: !transB, m: d.m, n: d.k, k: d.n, alpha: alpha,
                                                     a: pg.baseAddress!, lda: d.n, b: pb.baseAddress!, ldb: B.shape[1],
                                                     beta: 0, c: po.baseAddress!, ldc: d.k)
                        }
                    }
                }
            }
            gA = out
        }
        if a.wanted.count > 1 && a.wanted[1] {
            var out = Tensor(shape: B.shape)
            try g.storage.withUnsafeBufferPointer { pg in
                try A.storage.withUnsafeBufferPointer { pa in
                    try out.storage.withUnsafeMutableBufferPointer { po in
                        if transB {
                            try context.kernels.gemm(transposeA: true, transposeB: transA, m: d.n, n: d.k, k: d.m, alpha: alpha,
                                                     a: pg.baseAddress!, lda: d.n, b: pa.baseAddress!, ldb: A.shape[1],
                                                     beta: 0, c: po.baseAddress!, ldc: d.k)
                        } else {
                            try context.kernels.gemm(transposeA: !transA, transposeB: false, m: d.k, n: d.n, k: d.m, alpha: alpha,
                                                     a: pa.baseAddress!, lda: A.shape[1], b: pg.baseAddress!, ldb: d.n,
                                                     beta: 0, c: po.baseAddress!, ldc: d.n)
                        }
                    }
                }
            }
            gB = out
        }
        if a.wanted.count > 2 && a.wanted[2], let c = a.inputShapes[2] {
            gC = TensorMath.map(TensorMath.reduce(g, to: [Int](repeating: 1, count: 2 - c.count) + c)) { $0 * beta }.reshaped(c)
        }
        return [gA, gB, gC]
    }
}

/// Batched matrix product with numpy broadcasting of the batch dimensions.
struct MatMul: Operator {
    let label: String
    init(_ node: Node) throws {
        try node.checkAttributes([])
        label = node.label
    }
    var differentiableInputs: Set<Int> { [0, 1] }
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0, 1]) }

    /// Shapes promoted to rank >= 2 and the broadcast batch shape.
    func plan(_ a: [Int], _ b: [Int]) throws -> (a: [Int], b: [Int], batch: [Int], out: [Int]) {
        guard !a.isEmpty, !b.isEmpty else { throw EngineError("\(label): scalar operands") }
        let pa = a.count == 1 ? [1] + a : a
        let pb = b.count == 1 ? b + [1] : b
        guard pa[pa.count - 1] == pb[pb.count - 2] else { throw EngineError("\(label): \(a) and \(b) do not multiply") }
        let batch = try TensorMath.broadcastShape(Array(pa.dropLast(2)), Array(pb.dropLast(2)), label)
        var out = batch
        if a.count > 1 { out.append(pa[pa.count - 2]) }
        if b.count > 1 { out.append(pb[pb.count - 1]) }
        return (pa, pb, batch, out)
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        [try plan(try Operand.shape(shapes, 0, label), try Operand.shape(shapes, 1, label)).out]
    }

    /// `C[i] = op(A[i]) op(B[i])` over a broadcast batch, with optional transposes.
    static func batched(_ x: Tensor, _ xs: [Int], tx: Bool, _ y: Tensor, _ ys: [Int], ty: Bool, batch: [Int],
                        _ kernels: any KernelBackend) throws -> Tensor {
        let (xr, xc) = (xs[xs.count - 2], xs[xs.count - 1]), (yr, yc) = (ys[ys.count - 2], ys[ys.count - 1])
        let m = tx ? xc : xr, k = tx ? xr : xc, n = ty ? yr : yc
        let xb = Array(xs.dropLast(2)), yb = Array(ys.dropLast(2))
        let sx = TensorMath.broadcastStrides(xb, to: batch), sy = TensorMath.broadcastStrides(yb, to: batch)
        var out = Tensor(shape: batch + [m, n])
        if !tx, xb == batch, !batch.isEmpty, sy.allSatisfy({ $0 == 0 }) {
            // One matrix for the whole batch (a linear layer over tokens): the batch's rows stacked into one product.
            let rows = Tensor.elementCount(batch) * m
            try x.storage.withUnsafeBufferPointer { px in
                try y.storage.withUnsafeBufferPointer { py in
                    try out.storage.withUnsafeMutableBufferPointer { po in
                        try kernels.gemm(transposeA: false, transposeB: ty, m: rows, n: n, k: k, alpha: 1, a: px.baseAddress!, lda: xc,
                                         b: py.baseAddress!, ldb: yc, beta: 0, c: po.baseAddress!, ldc: n)
                    }
                }
            }
            return out
        }
        var offsets: [(Int, Int)] = []
        TensorMath.forEachOffset(batch, sx, sy) { _, i, j in offsets.append((i, j)) }
        if batch.isEmpty { offsets = [(0, 0)] }
        try x.storage.withUnsafeBufferPointer { px in
            try y.storage.withUnsafeBufferPointer { py in
                try out.storage.withUnsafeMutableBufferPointer { po in
                    for (o, (i, j)) in offsets.enumerated() {
                        try kernels.gemm(transposeA: tx, transposeB: ty, m: m, n: n, k: k, alpha: 1,
                                         a: px.baseAddress! + i * xr * xc, lda: xc, b: py.baseAddress! + j * yr * yc, ldb: yc,
                                         beta: 0, c: po.baseAddress! + o * m * n, ldc: n)
                    }
                }
            }
        }
        return out
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let a = try Operand.required(inputs, 0, label), b = try Operand.required(inputs, 1, label)
        let p = try plan(a.shape, b.shape)
        return [try MatMul.batched(a, p.a, tx: false, b, p.b, ty: false, batch: p.batch, context.kernels).reshaped(p.out)]
    }

    func backward(_ args: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = args.gradients[0] else { return [nil, nil] }
        let a = try Operand.required(args.inputs, 0, label), b = try Operand.required(args.inputs, 1, label)
        let p = try plan(a.shape, b.shape)
        let gs = p.batch + [p.a[p.a.count - 2], p.b[p.b.count - 1]]
        let g2 = g.reshaped(gs)
        var ga: Tensor?, gb: Tensor?
        if args.wanted[0] {
            // dA = g B^T, summed over broadcast batch dimensions.
            let full = try MatMul.batched(g2, gs, tx: false, b, p.b, ty: true, batch: p.batch, context.kernels)
            ga = TensorMath.reduce(full, to: p.a).reshaped(a.shape)
        }
        if args.wanted[1] {
            let full = try MatMul.batched(a, p.a, tx: true, g2, gs, ty: false, batch: p.batch, context.kernels)
            gb = TensorMath.reduce(full, to: p.b).reshaped(b.shape)
        }
        return [ga, gb]
    }
}

/// Softmax along an axis (opset < 13: over the flattened trailing dimensions).
struct Softmax: Operator {
    let label: String
    let axis: Int
    let legacy: Bool
    init(_ node: Node, opset: Int) throws {
        try node.checkAttributes(["axis"])
        label = node.label
        legacy = opset < 13
        axis = try node.int("axis", legacy ? 1 : -1)
    }
    var backwardNeeds: BackwardNeeds { BackwardNeeds(outputs: [0]) }
    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] { [try Operand.shape(shapes, 0, label)] }

    func blocks(_ shape: [Int]) throws -> (outer: Int, length: Int, inner: Int) {
        let a = try Operand.axis(axis, rank: shape.count, label)
        if legacy { return (Tensor.elementCount(Array(shape[..<a])), Tensor.elementCount(Array(shape[a...])), 1) }
        return TensorMath.split(shape, at: a)
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let (outer, length, inner) = try blocks(x.shape)
        if inner == 1 {
            // Contiguous rows (the last axis, as attention's): the backend's vectorised kernel.
            var out = context.buffer(x.count)
            try x.storage.withUnsafeBufferPointer { px in
                try out.withUnsafeMutableBufferPointer { po in
                    guard let input = px.baseAddress, let output = po.baseAddress else { return }
                    try context.kernels.softmax(rows: outer, length: length, input, into: output)
                }
            }
            return [Tensor(shape: x.shape, storage: out)]
        }
        var out = x.storage
        out.withUnsafeMutableBufferPointer { out in
            for o in 0..<outer {
                for i in 0..<inner {
                    let row = out.baseAddress! + o * length * inner + i
                    var m = -Float.infinity
                    for k in 0..<length { m = max(m, row[k * inner]) }
                    var s: Float = 0
                    for k in 0..<length { let e = Foundation.exp(row[k * inner] - m); row[k * inner] = e; s += e }
                    let scale = 1 / s
                    for k in 0..<length { row[k * inner] *= scale }
                }
            }
        }
        return [Tensor(shape: x.shape, storage: out)]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let y = try Operand.required(a.outputs, 0, label)
        let (outer, length, inner) = try blocks(y.shape)
        var out = [Float](repeating: 0, count: y.count)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * length * inner + i
                var dot: Float = 0
                for k in 0..<length { dot += g.storage[base + k * inner] * y.storage[base + k * inner] }
                for k in 0..<length { out[base + k * inner] = y.storage[base + k * inner] * (g.storage[base + k * inner] - dot) }
            }
        }
        return [Tensor(shape: y.shape, storage: out)]
    }
}

/// Inference batch normalisation `scale * (x - mean) / sqrt(var + eps) + bias` per channel.
struct BatchNormalization: Operator {
    let label: String
    let epsilon: Float
    init(_ node: Node) throws {
        try node.checkAttributes(["epsilon", "momentum", "training_mode", "spatial"])
        label = node.label
        epsilon = try node.float("epsilon", 1e-5)
        guard try node.int("training_mode", 0) == 0 else { throw EngineError("\(node.label): training_mode 1 is not supported") }
        guard try node.int("spatial", 1) == 1 else { throw EngineError("\(node.label): spatial 0 is not supported") }
        guard node.outputs.count == 1 else { throw EngineError("\(node.label): running-statistics outputs are not supported") }
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let x = try Operand.shape(shapes, 0, label)
        guard x.count >= 2 else { throw EngineError("\(label): input \(x) has no channel dimension") }
        for i in 1...4 where try Operand.shape(shapes, i, label) != [x[1]] {
            throw EngineError("\(label): parameter \(i) does not have \(x[1]) channels")
        }
        return [x]
    }

    /// Per-channel `(multiplier, offset)`.
    func affine(_ inputs: [Tensor?]) throws -> ([Float], [Float]) {
        let scale = try Operand.required(inputs, 1, label).storage, bias = try Operand.required(inputs, 2, label).storage
        let mean = try Operand.required(inputs, 3, label).storage, variance = try Operand.required(inputs, 4, label).storage
        let m = (0..<scale.count).map { scale[$0] / (variance[$0] + epsilon).squareRoot() }
        return (m, (0..<scale.count).map { bias[$0] - mean[$0] * m[$0] })
    }

    static func perChannel(_ x: Tensor, _ m: [Float], _ b: [Float]?) -> Tensor {
        let channels = x.shape[1], n = x.shape[0], inner = x.count / max(n * channels, 1)
        var out = x.storage
        for i in 0..<n {
            for c in 0..<channels {
                let base = (i * channels + c) * inner, mc = m[c], bc = b?[c] ?? 0
                for k in 0..<inner { out[base + k] = out[base + k] * mc + bc }
            }
        }
        return Tensor(shape: x.shape, storage: out)
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let (m, b) = try affine(inputs)
        return [BatchNormalization.perChannel(try Operand.required(inputs, 0, label), m, b)]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let (m, _) = try affine(a.inputs)
        return [BatchNormalization.perChannel(g, m, nil)]
    }
}

/// `x` for positive inputs, `slope * x` otherwise (slope broadcast, constant).
struct PRelu: Operator {
    let label: String
    init(_ node: Node) throws {
        try node.checkAttributes([])
        label = node.label
    }
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0, 1]) }
    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        [try TensorMath.broadcastShape(try Operand.shape(shapes, 0, label), try Operand.shape(shapes, 1, label), label)]
    }
    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        [try TensorMath.broadcast(try Operand.required(inputs, 0, label), try Operand.required(inputs, 1, label), label) { x, s in x > 0 ? x : s * x }]
    }
    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let d = try TensorMath.broadcast(try Operand.required(a.inputs, 0, label), try Operand.required(a.inputs, 1, label), label) { x, s in x > 0 ? 1 : s }
        return [TensorMath.zip(d, g, *)]
    }
}

/// Normalisation over the trailing dimensions from `axis`, with scale and bias.
struct LayerNormalization: Operator {
    let label: String
    let axis: Int
    let epsilon: Float
    init(_ node: Node) throws {
        try node.checkAttributes(["axis", "epsilon", "stash_type"])
        label = node.label
        axis = try node.int("axis", -1)
        epsilon = try node.float("epsilon", 1e-5)
        guard node.outputs.count == 1 else { throw EngineError("\(node.label): Mean and InvStdDev outputs are not supported") }
    }
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0, 1]) }
    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] { [try Operand.shape(shapes, 0, label)] }

    private func rows(_ x: Tensor) throws -> (Int, Int) {
        let a = try Operand.axis(axis, rank: x.rank, label)
        let inner = Tensor.elementCount(Array(x.shape[a...]))
        return (x.count / max(inner, 1), inner)
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let scale = try Operand.required(inputs, 1, label)
        let bias = inputs.count > 2 ? inputs[2] : nil
        let (count, n) = try rows(x)
        let s = try TensorMath.broadcast(Tensor(shape: [n]), scale.reshaped([scale.count]), label) { _, v in v }.storage
        let b = try bias.map { try TensorMath.broadcast(Tensor(shape: [n]), $0.reshaped([$0.count]), label) { _, v in v }.storage }
        var out = x.storage
        let shift = b ?? [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { out in
            s.withUnsafeBufferPointer { s in
                shift.withUnsafeBufferPointer { shift in
                    for r in 0..<count {
                        let row = out.baseAddress! + r * n
                        var mean: Float = 0
                        for k in 0..<n { mean += row[k] }
                        mean /= Float(n)
                        var variance: Float = 0
                        for k in 0..<n { let d = row[k] - mean; variance += d * d }
                        let inv = 1 / (variance / Float(n) + epsilon).squareRoot()
                        for k in 0..<n { row[k] = (row[k] - mean) * inv * s[k] + shift[k] }
                    }
                }
            }
        }
        return [Tensor(shape: x.shape, storage: out)]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let x = try Operand.required(a.inputs, 0, label), scale = try Operand.required(a.inputs, 1, label)
        let (count, n) = try rows(x)
        let s = try TensorMath.broadcast(Tensor(shape: [n]), scale.reshaped([scale.count]), label) { _, v in v }.storage
        var out = [Float](repeating: 0, count: x.count)
        for r in 0..<count {
            let base = r * n
            var mean: Float = 0
            for k in 0..<n { mean += x.storage[base + k] }
            mean /= Float(n)
            var variance: Float = 0
            for k in 0..<n { let d = x.storage[base + k] - mean; variance += d * d }
            let inv = 1 / (variance / Float(n) + epsilon).squareRoot()
            // dx = inv * (gh - mean(gh) - xhat * mean(gh * xhat)), gh = g * scale.
            var meanG: Float = 0, meanGX: Float = 0
            for k in 0..<n {
                let gh = g.storage[base + k] * s[k], xh = (x.storage[base + k] - mean) * inv
                meanG += gh; meanGX += gh * xh
            }
            meanG /= Float(n); meanGX /= Float(n)
            for k in 0..<n {
                let gh = g.storage[base + k] * s[k], xh = (x.storage[base + k] - mean) * inv
                out[base + k] = inv * (gh - meanG - xh * meanGX)
            }
        }
        return [Tensor(shape: x.shape, storage: out)]
    }
}

import Foundation
