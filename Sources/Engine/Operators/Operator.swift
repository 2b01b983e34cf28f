import Core
/// What an operator's backward pass reads from the forward pass.
struct BackwardNeeds: Sendable {
    /// Indices of inputs whose forward values the vector-Jacobian product reads.
    var inputs: [Int] = []
    /// Indices of outputs whose forward values the vector-Jacobian product reads.
    var outputs: [Int] = []
}

/// The environment an operator runs in: the numeric kernels, the buffers to write outputs into, the storage orders its
/// step reads and writes, and, for backward, the gradient rules.
struct OperatorContext {
    let kernels: any KernelBackend
    let rules: GradientRules
    /// Where large outputs take their memory from (none at load time).
    var buffers: BufferPool?
    /// The order of each input as the step reads it (what the inputs are stored in).
    var inputOrders: [StorageOrder] = []
    /// The order the step writes its outputs in (an output gradient arrives in it).
    var outputOrder = StorageOrder.channelsFirst
    /// The step's inputs known at load time, exact (nil where an input is computed at run time).
    var constants: [Constant?] = []
    /// Per input: whether it holds integers (an integer constant, or a run-time tensor an integer operator wrote), which
    /// run-time float32 storage holds exactly below 2^24.
    var integerInputs: [Bool] = []

    /// The order of input `index` (NCHW when the step reads no such input).
    func inputOrder(_ index: Int) -> StorageOrder { index < inputOrders.count ? inputOrders[index] : .channelsFirst }

    /// Whether input `index` holds integers.
    func isInteger(_ index: Int) -> Bool { index < integerInputs.count && integerInputs[index] }

    /// The inputs as the operator's shape function reads them: the load-time values where the plan knew them (exact
    /// integers), else the run-time tensors.
    func constants(_ inputs: [Tensor?]) -> [Constant?] {
        inputs.indices.map { i in (i < constants.count ? constants[i] : nil) ?? inputs[i].map { Constant(tensor: $0) } }
    }

    /// A buffer of `count` elements for an output, holding whatever it held before.
    func buffer(_ count: Int) -> [Float] { TensorMath.buffer(count, from: buffers) }
}

/// The storage orders an operator can run in, for the planner to choose from.
enum OrderSupport: Equatable {
    /// NCHW only: the operator indexes its tensors row-major.
    case channelsFirst
    /// Its first input in any order and its outputs in that order: element by element, or a window over each channel
    /// (max pooling). Other inputs (constants such as Clip's bounds) stay NCHW.
    case followsInput
    /// Element by element over two tensors: when they have one shape, both in one order (any) and the output in it
    /// too; when one is broadcast, NCHW.
    case followsBothInputs
    /// Its first input in any order, its output (`[N, C, 1, 1]`: a mean over height and width) NCHW.
    case readsAnyOrder
    /// A convolution: its input and output orders as the planner sets them; `blocksPay` when oneDNN's kernels run
    /// faster for it on 8-channel blocks than on NHWC (a dense kernel larger than 1x1).
    case convolution(blocksPay: Bool)
}

/// One ONNX operator: its shape function, its forward computation and its vector-Jacobian product, and what the
/// planner may do with it (storage orders, load-time evaluation, fusion).
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

    /// The storage orders it can run in for these input shapes and load-time inputs (default: NCHW only).
    func orderSupport(_ shapes: [[Int]?], constants: [Constant?]) -> OrderSupport
    /// Whether its outputs depend only on its input's shape, so that it runs at load time (Shape).
    var readsOnlyInputShape: Bool { get }
    /// Whether its output `output` holds integers when `integerInputs` say which inputs do (default: when the first
    /// input does), at load time and at run time.
    func producesIntegers(_ integerInputs: [Bool], output: Int) -> Bool
    /// Its outputs in exact integer arithmetic, for load-time inputs some of which are integers, when it computes
    /// integers (Shape, Cast, Range, integer Add or Div...); nil when it does not (see `copiedInputs`).
    func integerOutputs(_ inputs: [Constant?]) throws -> [Constant]?
    /// The inputs whose elements its outputs copy unchanged (Reshape, Gather, Concat, Where...), so that integers pass
    /// through it exactly (default: none).
    func copiedInputs(count: Int) -> [Int]
    /// The activation a convolution kernel can apply in its place, for these input shapes and load-time inputs (nil: none).
    func kernelActivation(_ shapes: [[Int]?], constants: [Constant?]) -> FusedActivation?
    /// This operator also applying `activation` to its output, if it can (a convolution's post-op).
    func absorbing(_ activation: AbsorbedActivation) -> (any Operator)?
    /// This operator also adding a tensor (an extra last input, stored like its output) to its output before its
    /// activation, if it can (a residual join absorbed by a convolution).
    func absorbingResidual() -> (any Operator)?
    /// Whether it is the sum of its two inputs (Add): what a residual join is.
    var isSum: Bool { get }
    /// The name profiles group its steps under.
    var kind: String { get }
    /// The algorithm its kernel runs for these input shapes and storage orders when that is not the library's direct one
    /// (`camvid layers` shows it), else nil.
    func kernelAlgorithm(_ shapes: [[Int]?], inputOrders: [StorageOrder], outputOrder: StorageOrder) -> String?
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
    func orderSupport(_ shapes: [[Int]?], constants: [Constant?]) -> OrderSupport { .channelsFirst }
    var readsOnlyInputShape: Bool { false }
    func producesIntegers(_ integerInputs: [Bool], output: Int) -> Bool { integerInputs.first ?? false }
    func integerOutputs(_ inputs: [Constant?]) throws -> [Constant]? { nil }
    func copiedInputs(count: Int) -> [Int] { [] }
    func kernelActivation(_ shapes: [[Int]?], constants: [Constant?]) -> FusedActivation? { nil }
    func absorbing(_ activation: AbsorbedActivation) -> (any Operator)? { nil }
    func absorbingResidual() -> (any Operator)? { nil }
    var isSum: Bool { false }
    var kind: String { "\(Self.self)" }
    func kernelAlgorithm(_ shapes: [[Int]?], inputOrders: [StorageOrder], outputOrder: StorageOrder) -> String? { nil }
}

/// An activation operator a convolution absorbed: its kernel applies it, and the operator's own backward differentiates
/// it, so that its gradient rules (guided ones included) live in that operator alone.
struct AbsorbedActivation: Sendable {
    /// What the kernel applies.
    let kernel: FusedActivation
    /// The absorbed operator.
    let op: any Operator
    /// Its load-time inputs after the data input (Clip's bounds).
    let constants: [Tensor?]

    /// The gradient before the activation, from the gradient `g` after it and its output `y`.
    func gradient(_ g: Tensor, output y: Tensor, context: OperatorContext) throws -> Tensor {
        let arguments = BackwardArguments(inputs: [nil] + constants, outputs: [y], gradients: [g],
                                          wanted: [true] + constants.map { _ in false },
                                          inputShapes: [y.shape] + constants.map { $0?.shape })
        guard let gradient = try op.backward(arguments, context: context).first ?? nil else {
            throw EngineError("\(op.kind) gave no gradient for a fused convolution")
        }
        return gradient
    }
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

    /// The number of elements of `shape`, or an error when a dimension is negative or the count passes 2^40 (no
    /// tensor of a model is that large; an overflowing product must not trap).
    static func elementCount(_ shape: [Int], _ op: String) throws -> Int {
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard d >= 0, !overflow, product <= 1 << 40 else { throw EngineError("\(op): shape \(shape) is not a tensor's") }
            count = product
        }
        return count
    }

    /// Normalises a possibly negative axis for a tensor of rank `rank`.
    static func axis(_ axis: Int, rank: Int, _ op: String) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else { throw EngineError("\(op): axis \(axis) is out of range for rank \(rank)") }
        return a
    }

    /// The values of a constant read as extents, indices, bounds or axes: exact below 2^40, saturated beyond (no tensor
    /// reaches 2^40 elements, so no valid model changes, and sums and products of a few such values cannot overflow);
    /// float values are truncated, NaN reads as 0.
    static func integers(_ constant: Constant) -> [Int] {
        constant.integers.map { $0.map { Swift.min(Swift.max($0, -structuralLimit), structuralLimit) } }
            ?? constant.tensor.storage.map(integer)
    }

    /// Where structural integers saturate: 2^40.
    static let structuralLimit = 1 << 40

    /// `value` truncated toward zero, saturated at ±2^40 (NaN reads as 0).
    static func integer(_ value: Float) -> Int {
        let limit = Float(structuralLimit)
        if value.isNaN { return 0 }
        return value >= limit ? structuralLimit : value <= -limit ? -structuralLimit : Int(value)
    }

    /// The integers of input `index`: exact when the plan knew it at load time, else from the run-time tensor.
    static func integers(_ inputs: [Tensor?], _ index: Int, _ context: OperatorContext, _ op: String) throws -> [Int] {
        if index < context.constants.count, let constant = context.constants[index] { return integers(constant) }
        return integers(Constant(tensor: try required(inputs, index, op)))
    }

    /// Float32 holds every integer up to 2^24 exactly, and not all beyond: the bound of integers in float32 storage.
    static let exactFloatIntegers = 1 << 24

    /// A float32 value standing for an integer, truncated toward zero; one beyond 2^24 (or not a number) may not be the
    /// integer it stands for and is refused, naming `op`.
    static func exactInteger(_ value: Float, _ op: String) throws -> Int {
        guard abs(value) <= Float(exactFloatIntegers) else { throw inexact("\(value)", op) }
        return Int(value)
    }

    /// An integer as float32 storage holds it, refused (naming `op`) beyond 2^24, where it may be rounded.
    static func exactFloat(_ value: Int, _ op: String) throws -> Float {
        guard value.magnitude <= UInt(exactFloatIntegers) else { throw inexact("\(value)", op) }
        return Float(value)
    }

    private static func inexact(_ value: String, _ op: String) -> EngineError {
        EngineError("\(op): integer \(value) is beyond 2^24, where float32 storage stops holding integers exactly")
    }
}
