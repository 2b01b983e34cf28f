import Core
/// Operators of shape subgraphs, evaluated at load time (not differentiable).

/// The shape of the input as a 1-D integer tensor (`start`/`end` since opset 15).
struct Shape: Operator {
    let label: String
    let start: Int
    let end: Int?
    init(_ node: Node) throws {
        try node.checkAttributes(["start", "end"])
        label = node.label
        start = try node.int("start", 0)
        end = node.attributes["end"] == nil ? nil : try node.int("end", 0)
    }
    var differentiableInputs: Set<Int> { [] }
    var readsOnlyInputShape: Bool { true }
    func producesIntegers(_ integerInputs: [Bool], output: Int) -> Bool { true }
    func dims(_ x: [Int]) -> [Int] {
        let r = x.count
        let s = min(max(start < 0 ? start + r : start, 0), r)
        let e = min(max(end.map { $0 < 0 ? $0 + r : $0 } ?? r, 0), r)
        return s < e ? Array(x[s..<e]) : []
    }
    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        [[dims(try Operand.shape(shapes, 0, label)).count]]
    }
    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let d = dims(try Operand.required(inputs, 0, label).shape)
        return [Tensor(shape: [d.count], storage: d.map(Float.init))]
    }
    func integerOutputs(_ inputs: [Constant?]) throws -> [Constant]? {
        let d = dims(try Operand.constant(inputs, 0, label, what: "input").shape)
        return [Constant(shape: [d.count], integers: d)]
    }
    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] { [nil] }
}

/// Conversion between element types: at run time values stay float32 and integer targets truncate; at load time
/// integers are exact.
struct Cast: Operator {
    let label: String
    let toInteger: Bool
    let toBool: Bool
    init(_ node: Node) throws {
        try node.checkAttributes(["to", "saturate", "round_mode"])
        label = node.label
        let to = try node.int("to", 1)
        guard [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13].contains(to) else { throw EngineError("\(node.label): unsupported target type \(to)") }
        toInteger = ![1, 10, 11].contains(to)
        toBool = to == 9
    }
    var differentiableInputs: Set<Int> { toInteger ? [] : [0] }
    func producesIntegers(_ integerInputs: [Bool], output: Int) -> Bool { toInteger }
    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] { [try Operand.shape(shapes, 0, label)] }
    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        if toBool { return [TensorMath.map(x) { $0 != 0 ? 1 : 0 }] }
        return [toInteger ? TensorMath.map(x) { $0.rounded(.towardZero) } : x]
    }
    func integerOutputs(_ inputs: [Constant?]) throws -> [Constant]? {
        let x = try Operand.constant(inputs, 0, label, what: "input")
        guard toInteger else { return [Constant(tensor: x.tensor)] }
        let values = Operand.integers(x)
        return [Constant(shape: x.shape, integers: toBool ? values.map { $0 != 0 ? 1 : 0 } : values)]
    }
    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] { [toInteger ? nil : a.gradients[0]] }
}

/// A tensor of the given (constant) shape filled with one value.
struct ConstantOfShape: Operator {
    let label: String
    let value: Float
    /// The exact value when it has an integer type.
    let integerValue: Int?
    init(_ node: Node) throws {
        try node.checkAttributes(["value"])
        label = node.label
        if case .tensor(let t)? = node.attributes["value"] {
            (value, integerValue) = (t.tensor.storage.first ?? 0, t.integers.map { $0.first ?? 0 })
        } else {
            (value, integerValue) = (0, nil)
        }
    }
    var differentiableInputs: Set<Int> { [] }
    func producesIntegers(_ integerInputs: [Bool], output: Int) -> Bool { integerValue != nil }
    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        [try Self.shape(Operand.integers(try Operand.constant(constants, 0, label, what: "shape")), label)]
    }
    /// `shape` if it is one a tensor can have (non-negative, below 2^28 elements).
    static func shape(_ shape: [Int], _ label: String) throws -> [Int] {
        guard (try? Operand.elementCount(shape, label)).map({ $0 < 1 << 28 }) == true else {
            throw EngineError("\(label): invalid shape \(shape)")
        }
        return shape
    }
    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        [Tensor(shape: try Self.shape(try Operand.integers(inputs, 0, context, label), label), repeating: value)]
    }
    func integerOutputs(_ inputs: [Constant?]) throws -> [Constant]? {
        guard let integerValue else { return nil }
        let shape = try outputShapes(inputs.map { $0?.shape }, constants: inputs)[0]
        return [Constant(shape: shape, integers: [Int](repeating: integerValue, count: Tensor.elementCount(shape)))]
    }
    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] { [nil] }
}

/// `start, start + delta, ...` below `limit`.
struct Range: Operator {
    let label: String
    init(_ node: Node) throws {
        try node.checkAttributes([])
        label = node.label
    }
    var differentiableInputs: Set<Int> { [] }
    /// The number of elements, `ceil((limit - start) / delta)` or 0, checked.
    func count(_ span: Double, _ delta: Double) throws -> Int {
        guard delta != 0 else { throw EngineError("\(label): delta 0") }
        let n = (span / delta).rounded(.up)
        if n <= 0 { return 0 }
        guard n < Double(1 << 24) else { throw EngineError("\(label): \(n) elements is too many") }
        return Int(n)
    }
    func values(_ inputs: [Tensor?]) throws -> [Float] {
        let s = try Operand.required(inputs, 0, label).storage.first ?? 0
        let l = try Operand.required(inputs, 1, label).storage.first ?? 0
        let d = try Operand.required(inputs, 2, label).storage.first ?? 1
        return (0..<(try count(Double(l) - Double(s), Double(d)))).map { s + Float($0) * d }
    }
    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let c = try (0..<3).map { try Operand.constant(constants, $0, label, what: "range bound") }
        return [[try integerOutputs(c)?[0].shape.first ?? values(c.map(\.tensor)).count]]
    }
    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let v = try values(inputs)
        return [Tensor(shape: [v.count], storage: v)]
    }
    func integerOutputs(_ inputs: [Constant?]) throws -> [Constant]? {
        let bounds = try (0..<3).map { try Operand.constant(inputs, $0, label, what: "range bound").integers?.first }
        guard let s = bounds[0], let l = bounds[1], let d = bounds[2] else { return nil }
        let n = try count(Double(l) - Double(s), Double(d))
        return [Constant(shape: [n], integers: (0..<n).map { s &+ $0 &* d })]
    }
    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] { [nil, nil, nil] }
}

/// `condition ? a : b` with broadcasting; the gradient flows to the chosen side.
struct Where: Operator {
    let label: String
    init(_ node: Node) throws {
        try node.checkAttributes([])
        label = node.label
    }
    var differentiableInputs: Set<Int> { [1, 2] }
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0]) }
    func producesIntegers(_ integerInputs: [Bool], output: Int) -> Bool { integerInputs.count > 1 && integerInputs[1] }
    func copiedInputs(count: Int) -> [Int] { [1, 2] }
    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let ab = try TensorMath.broadcastShape(try Operand.shape(shapes, 1, label), try Operand.shape(shapes, 2, label), label)
        return [try TensorMath.broadcastShape(try Operand.shape(shapes, 0, label), ab, label)]
    }
    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let c = try Operand.required(inputs, 0, label), a = try Operand.required(inputs, 1, label), b = try Operand.required(inputs, 2, label)
        let shape = try outputShapes(inputs.map { $0?.shape }, constants: [])[0]
        let ca = try TensorMath.broadcast(c, Tensor(shape: shape), label) { c, _ in c }
        let aa = try TensorMath.broadcast(a, Tensor(shape: shape), label) { a, _ in a }
        let bb = try TensorMath.broadcast(b, Tensor(shape: shape), label) { b, _ in b }
        return [Tensor(shape: shape, storage: (0..<ca.count).map { ca.storage[$0] != 0 ? aa.storage[$0] : bb.storage[$0] })]
    }
    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil, nil, nil] }
        let c = try TensorMath.broadcast(try Operand.required(a.inputs, 0, label), g, label) { c, _ in c }
        let ga = TensorMath.zip(c, g) { $0 != 0 ? $1 : 0 }, gb = TensorMath.zip(c, g) { $0 != 0 ? 0 : $1 }
        return [nil,
                a.wanted[1] ? TensorMath.reduce(ga, to: try Operand.shape(a.inputShapes, 1, label)) : nil,
                a.wanted[2] ? TensorMath.reduce(gb, to: try Operand.shape(a.inputShapes, 2, label)) : nil]
    }
}
