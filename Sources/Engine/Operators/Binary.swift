import Core
import Foundation

/// An elementwise operator of two broadcast inputs: its value and both partial derivatives, side by side, and its value
/// on integers, which it computes on integer inputs at load time (exact 64-bit) and at run time (float32 storage,
/// exact below 2^24: beyond, an error names the node).
protocol BinaryOperator: Operator {
    /// The node it runs, for errors.
    var label: String { get }
    func value(_ a: Float, _ b: Float) -> Float
    /// `(d/da, d/db)` at `(a, b)`.
    func partials(_ a: Float, _ b: Float) -> (Float, Float)
    /// The value on exact integers (wrapping as int64 does), or nil when the operator has no integer form here.
    func integerValue(_ a: Int, _ b: Int) throws -> Int?
}

extension BinaryOperator {
    var differentiableInputs: Set<Int> { [0, 1] }
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0, 1]) }

    func orderSupport(_ shapes: [[Int]?], constants: [Constant?]) -> OrderSupport { .followsBothInputs }

    func integerValue(_ a: Int, _ b: Int) throws -> Int? { nil }

    /// Whether it has an integer form (0 and 1 are operands every integer operator accepts).
    var computesIntegers: Bool { ((try? integerValue(0, 1)) ?? nil) != nil }

    func integerOutputs(_ inputs: [Constant?]) throws -> [Constant]? {
        guard computesIntegers, inputs.count == 2, let a = inputs[0], let b = inputs[1], let ia = a.integers, let ib = b.integers else {
            return nil
        }
        let (shape, values) = try TensorMath.broadcast(ia, a.shape, ib, b.shape, label) { try integerValue($0, $1) ?? 0 }
        return [Constant(shape: shape, integers: values)]
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        [try TensorMath.broadcastShape(try Operand.shape(shapes, 0, label), try Operand.shape(shapes, 1, label), label)]
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let a = try Operand.required(inputs, 0, label), b = try Operand.required(inputs, 1, label)
        if computesIntegers && context.isInteger(0) && context.isInteger(1) { return [try integerForward(a, b)] }
        return [try TensorMath.broadcast(a, b, label, value)]
    }

    /// `integerValue` on run-time integer tensors: their float32 elements read as integers and the results written back,
    /// each checked to be below 2^24 (where float32 stops holding integers exactly). Elementwise in `a`'s storage order
    /// when the shapes agree, as the float path.
    private func integerForward(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let (a, b) = a.shape == b.shape ? (a, b.reordered(to: a.order)) : (a.reordered(to: .channelsFirst), b.reordered(to: .channelsFirst))
        let ia = try a.storage.map { try Operand.exactInteger($0, label) }, ib = try b.storage.map { try Operand.exactInteger($0, label) }
        let (shape, values) = try TensorMath.broadcast(ia, a.shape, ib, b.shape, label) { try integerValue($0, $1) ?? 0 }
        return Tensor(shape: shape, storage: try values.map { try Operand.exactFloat($0, label) }, order: a.shape == b.shape ? a.order : .channelsFirst)
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        let (inputs, gradients, wanted) = (a.inputs, a.gradients, a.wanted)
        let a = try Operand.required(inputs, 0, label), b = try Operand.required(inputs, 1, label)
        guard let g = gradients[0] else { return [nil, nil] }
        let ga = wanted[0] ? TensorMath.reduce(try TensorMath.broadcast(try TensorMath.broadcast(a, b, "", { a, b in partials(a, b).0 }), g, "", *), to: a.shape) : nil
        let gb = wanted.count > 1 && wanted[1] ? TensorMath.reduce(try TensorMath.broadcast(try TensorMath.broadcast(a, b, "", { a, b in partials(a, b).1 }), g, "", *), to: b.shape) : nil
        return [ga, gb]
    }
}

/// `a + b`.
struct Add: BinaryOperator {
    let label: String
    init(_ node: Node) throws {
        try node.checkAttributes([])
        label = node.label
    }
    var isSum: Bool { true }
    func value(_ a: Float, _ b: Float) -> Float { a + b }
    func integerValue(_ a: Int, _ b: Int) -> Int? { a &+ b }
    func partials(_ a: Float, _ b: Float) -> (Float, Float) { (1, 1) }
    // The gradient is the output gradient itself, reduced over broadcast dimensions; no values needed.
    var backwardNeeds: BackwardNeeds { BackwardNeeds() }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        let (gradients, wanted) = (a.gradients, a.wanted)
        guard let g = gradients[0] else { return [nil, nil] }
        return [wanted[0] ? TensorMath.reduce(g, to: try Operand.shape(a.inputShapes, 0, label)) : nil,
                wanted[1] ? TensorMath.reduce(g, to: try Operand.shape(a.inputShapes, 1, label)) : nil]
    }
}

/// `a - b`.
struct Sub: BinaryOperator {
    let label: String
    init(_ node: Node) throws {
        try node.checkAttributes([])
        label = node.label
    }
    func value(_ a: Float, _ b: Float) -> Float { a - b }
    func integerValue(_ a: Int, _ b: Int) -> Int? { a &- b }
    func partials(_ a: Float, _ b: Float) -> (Float, Float) { (1, -1) }
}

/// `a * b`.
struct Mul: BinaryOperator {
    let label: String
    init(_ node: Node) throws {
        try node.checkAttributes([])
        label = node.label
    }
    func value(_ a: Float, _ b: Float) -> Float { a * b }
    func integerValue(_ a: Int, _ b: Int) -> Int? { a &* b }
    func partials(_ a: Float, _ b: Float) -> (Float, Float) { (b, a) }
}

/// `a / b` (truncated toward zero on integers).
struct Div: BinaryOperator {
    let label: String
    init(_ node: Node) throws {
        try node.checkAttributes([])
        label = node.label
    }
    func value(_ a: Float, _ b: Float) -> Float { a / b }
    func integerValue(_ a: Int, _ b: Int) throws -> Int? {
        guard b != 0 else { throw EngineError("\(label): integer division by zero") }
        return a.dividedReportingOverflow(by: b).partialValue
    }
    func partials(_ a: Float, _ b: Float) -> (Float, Float) { (1 / b, -a / (b * b)) }
}

/// `a ^ b`.
struct Pow: BinaryOperator {
    let label: String
    init(_ node: Node) throws {
        try node.checkAttributes([])
        label = node.label
    }
    func value(_ a: Float, _ b: Float) -> Float { Foundation.pow(a, b) }
    func partials(_ a: Float, _ b: Float) -> (Float, Float) {
        (b * Foundation.pow(a, b - 1), a > 0 ? Foundation.pow(a, b) * Foundation.log(a) : 0)
    }
}

/// `1` where `a == b`, else `0` (shape arithmetic only; not differentiable).
struct Equal: BinaryOperator {
    let label: String
    init(_ node: Node) throws {
        try node.checkAttributes([])
        label = node.label
    }
    var differentiableInputs: Set<Int> { [] }
    func producesIntegers(_ integerInputs: [Bool], output: Int) -> Bool { true }
    func value(_ a: Float, _ b: Float) -> Float { a == b ? 1 : 0 }
    func integerValue(_ a: Int, _ b: Int) -> Int? { a == b ? 1 : 0 }
    func partials(_ a: Float, _ b: Float) -> (Float, Float) { (0, 0) }
}

/// The remainder of `a / b`: with the sign of the divisor, as Python's `%` (`fmod` 0, ONNX's default, meant for
/// integers), or with the sign of the dividend, as C's `fmod` (`fmod` 1).
struct Mod: BinaryOperator {
    let label: String
    /// Whether the remainder takes the dividend's sign (C `fmod`) rather than the divisor's.
    let signOfDividend: Bool

    init(_ node: Node) throws {
        try node.checkAttributes(["fmod"])
        label = node.label
        let fmod = try node.int("fmod", 0)
        guard fmod == 0 || fmod == 1 else { throw EngineError("\(node.label): fmod must be 0 or 1, not \(fmod)") }
        signOfDividend = fmod == 1
    }

    func value(_ a: Float, _ b: Float) -> Float {
        // C's remainder is exact; the floored one adds the divisor when the signs differ (as Python does).
        let r = Foundation.fmod(a, b)
        if signOfDividend || r == 0 || (r < 0) == (b < 0) { return r }
        return r + b
    }

    func integerValue(_ a: Int, _ b: Int) throws -> Int? {
        guard b != 0 else { throw EngineError("\(label): integer remainder of a division by zero") }
        let r = a.remainderReportingOverflow(dividingBy: b).partialValue
        return signOfDividend || r == 0 || (r < 0) == (b < 0) ? r : r + b
    }

    /// `a - b * q` with `q` the quotient rounded down (`fmod` 0) or toward zero (`fmod` 1), constant between jumps.
    func partials(_ a: Float, _ b: Float) -> (Float, Float) {
        let q = a / b
        return (1, -(signOfDividend ? q.rounded(.towardZero) : q.rounded(.down)))
    }
}
