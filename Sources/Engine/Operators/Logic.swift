import Core
/// Boolean operators of masks and shape subgraphs (booleans are stored as 0 and 1; not differentiable).

/// `1` where the input is `0` (false), else `0`.
struct Not: Operator {
    let label: String
    init(_ node: Node) throws {
        try node.checkAttributes([])
        label = node.label
    }
    var differentiableInputs: Set<Int> { [] }
    func producesIntegers(_ integerInputs: [Bool]) -> Bool { true }
    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] { [try Operand.shape(shapes, 0, label)] }
    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        [TensorMath.map(try Operand.required(inputs, 0, label)) { $0 == 0 ? 1 : 0 }]
    }
    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] { [nil] }
}
