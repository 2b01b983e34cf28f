import Core
/// What an operator's backward pass reads from the forward pass.
struct BackwardNeeds: Sendable {
    /// Indices of inputs whose forward values the vector-Jacobian product reads.
    var inputs: [Int] = []
    /// Indices of outputs whose forward values the vector-Jacobian product reads.
    var outputs: [Int] = []
}

/// The environment an operator runs in: the numeric kernels and, for backward, the gradient rules.
struct OperatorContext {
    let kernels: any KernelBackend
    let rules: GradientRules
}

/// One ONNX operator: its shape function, its forward computation and its vector-Jacobian product.
///
/// Each conforming type keeps the forward and the backward of one operator side by side.
protocol Operator: Sendable {
    /// Output shapes for the given input shapes; `constants` holds the values of inputs known at load time.
    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]]
    /// The outputs for the given inputs (nil for an omitted optional input).
    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor]
    /// Inputs with respect to which the operator can be differentiated.
    var differentiableInputs: Set<Int> { get }
    /// The forward values `backward` reads.
    var backwardNeeds: BackwardNeeds { get }
    /// The gradients of the inputs flagged in `a.wanted`, given the gradients of the outputs.
    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?]
}

/// What a vector-Jacobian product receives.
struct BackwardArguments {
    /// Forward input values (at least those named by `backwardNeeds`).
    var inputs: [Tensor?]
    /// Forward output values (at least those named by `backwardNeeds`).
    var outputs: [Tensor?]
    /// The gradient of each output (nil = zero).
    var gradients: [Tensor?]
    /// Which inputs' gradients are wanted.
    var wanted: [Bool]
    /// The shape of every input.
    var inputShapes: [[Int]?]
}

extension Operator {
    var differentiableInputs: Set<Int> { [0] }
    var backwardNeeds: BackwardNeeds { BackwardNeeds() }
}

/// Shared helpers for reading operands.
enum Operand {
    static func required(_ inputs: [Tensor?], _ index: Int, _ op: String) throws -> Tensor {
        guard index < inputs.count, let value = inputs[index] else {
            throw EngineError("\(op): input \(index) is missing")
        }
        return value
    }

    static func shape(_ shapes: [[Int]?], _ index: Int, _ op: String) throws -> [Int] {
        guard index < shapes.count, let value = shapes[index] else {
            throw EngineError("\(op): input \(index) is missing")
        }
        return value
    }

    /// The value of an input that must be known at load time (a shape, axes, pads...).
    static func constant(_ constants: [Constant?], _ index: Int, _ op: String, what: String) throws -> Constant {
        guard index < constants.count, let value = constants[index] else {
            throw EngineError("\(op): input \(index) (\(what)) must be a constant or computable from the input shape")
        }
        return value
    }

    /// Normalises a possibly negative axis for a tensor of rank `rank`.
    static func axis(_ axis: Int, rank: Int, _ op: String) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < max(rank, 1) else { throw EngineError("\(op): axis \(axis) is out of range for rank \(rank)") }
        return a
    }

    static func integers(_ tensor: Tensor) -> [Int] {
        tensor.storage.map { $0.isFinite ? Int($0) : ($0 > 0 ? Int.max / 2 : Int.min / 2) }
    }
}
