import Core
/// Boolean operators of masks and shape subgraphs (booleans are stored as 0 and 1; not differentiable).

/// `1` where the input is `0` (false), else `0`.
struct Not: UnaryOperator {
    init(_ node: Node) throws { try node.checkAttributes([]) }
    var differentiableInputs: Set<Int> { [] }
    func producesIntegers(_ integerInputs: [Bool], output: Int) -> Bool { true }
    func value(_ x: Float) -> Float { x == 0 ? 1 : 0 }
    func derivative(_ x: Float, _ y: Float) -> Float { 0 }
}
