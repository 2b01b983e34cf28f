import Core
import Foundation

/// An elementwise operator of one data input: its value and its derivative, side by side.
protocol UnaryOperator: Operator {
    /// `y = f(x)`.
    func value(_ x: Float) -> Float
    /// `dy/dx` at `x` (with `y = f(x)` given for operators that are cheaper from the output).
    func derivative(_ x: Float, _ y: Float) -> Float
}

extension UnaryOperator {
    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        [try Operand.shape(shapes, 0, "\(Self.self)")]
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        [TensorMath.map(try Operand.required(inputs, 0, "\(Self.self)"), buffers: context.buffers, value)]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0], outputs: [0]) }

    func orderSupport(_ shapes: [[Int]?], constants: [Constant?]) -> OrderSupport { .followsInput }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        let (inputs, outputs, gradients) = (a.inputs, a.outputs, a.gradients)
        let x = try Operand.required(inputs, 0, "\(Self.self)")
        let y = try Operand.required(outputs, 0, "\(Self.self)")
        guard let g = gradients[0] else { return [nil] }
        var out = context.buffer(g.count)
        x.storage.withUnsafeBufferPointer { px in
            y.storage.withUnsafeBufferPointer { py in
                g.storage.withUnsafeBufferPointer { pg in
                    out.withUnsafeMutableBufferPointer { po in
                        for i in 0..<po.count { po[i] = pg[i] * derivative(px[i], py[i]) }
                    }
                }
            }
        }
        return [Tensor(shape: g.shape, storage: out, order: x.order)]
    }
}

/// `max(x, 0)`; under guided backprop only positive gradients pass where the input was positive.
struct Relu: UnaryOperator {
    init(_ node: Node) throws { try node.checkAttributes([]) }
    func value(_ x: Float) -> Float { max(x, 0) }
    func derivative(_ x: Float, _ y: Float) -> Float { y > 0 ? 1 : 0 }
    // Backward reads only the output (PyTorch's rule: the gradient passes where the result is positive).
    var backwardNeeds: BackwardNeeds { BackwardNeeds(outputs: [0]) }

    func kernelActivation(_ shapes: [[Int]?], constants: [Constant?]) -> FusedActivation? { .relu }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        let (outputs, gradients) = (a.outputs, a.gradients)
        let y = try Operand.required(outputs, 0, "Relu")
        guard let g = gradients[0] else { return [nil] }
        if context.rules.guidedRelu {
            return [TensorMath.zip(y, g, buffers: context.buffers) { y, g in y > 0 && g > 0 ? g : 0 }]
        }
        return [TensorMath.zip(y, g, buffers: context.buffers) { y, g in y > 0 ? g : 0 }]
    }
}

/// `x` for positive inputs, `alpha * x` otherwise.
struct LeakyRelu: UnaryOperator {
    let alpha: Float
    init(_ node: Node) throws {
        try node.checkAttributes(["alpha"])
        alpha = try node.float("alpha", 0.01)
    }
    func value(_ x: Float) -> Float { x > 0 ? x : alpha * x }
    func derivative(_ x: Float, _ y: Float) -> Float { x > 0 ? 1 : alpha }
}

/// `x` clamped to `[min, max]` (from inputs 1 and 2 since opset 11, attributes before); `guidedClip` gates it like guided ReLU.
struct Clip: Operator {
    let minAttribute: Float
    let maxAttribute: Float

    init(_ node: Node) throws {
        try node.checkAttributes(["min", "max"])
        minAttribute = try node.float("min", -.greatestFiniteMagnitude)
        maxAttribute = try node.float("max", .greatestFiniteMagnitude)
    }

    func bounds(_ lo: Tensor?, _ hi: Tensor?) -> (Float, Float) {
        (lo?.storage.first ?? minAttribute, hi?.storage.first ?? maxAttribute)
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        [try Operand.shape(shapes, 0, "Clip")]
    }

    func orderSupport(_ shapes: [[Int]?], constants: [Constant?]) -> OrderSupport { .followsInput }

    // Fusable when the bounds it is given are known at load time.
    func kernelActivation(_ shapes: [[Int]?], constants: [Constant?]) -> FusedActivation? {
        var given: [Tensor?] = []
        for k in 1...2 {
            let isGiven = k < shapes.count && shapes[k] != nil
            guard !isGiven || (k < constants.count && constants[k] != nil) else { return nil }
            given.append(isGiven ? constants[k]?.tensor : nil)
        }
        let (lo, hi) = bounds(given[0], given[1])
        return .clip(lo, hi)
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, "Clip")
        let (lo, hi) = bounds(inputs.count > 1 ? inputs[1] : nil, inputs.count > 2 ? inputs[2] : nil)
        return [TensorMath.map(x, buffers: context.buffers) { min(max($0, lo), hi) }]
    }

    // The gradient passes where min < y < max, which equals PyTorch's test on the input.
    var backwardNeeds: BackwardNeeds { BackwardNeeds(outputs: [0]) }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        let (inputs, outputs, gradients) = (a.inputs, a.outputs, a.gradients)
        let y = try Operand.required(outputs, 0, "Clip")
        let (lo, hi) = bounds(inputs.count > 1 ? inputs[1] : nil, inputs.count > 2 ? inputs[2] : nil)
        guard let g = gradients[0] else { return [nil] }
        if context.rules.guidedClip {
            return [TensorMath.zip(y, g, buffers: context.buffers) { y, g in y > lo && y < hi && g > 0 ? g : 0 }]
        }
        return [TensorMath.zip(y, g, buffers: context.buffers) { y, g in y > lo && y < hi ? g : 0 }]
    }
}

/// `1 / (1 + e^-x)`.
struct Sigmoid: UnaryOperator {
    init(_ node: Node) throws { try node.checkAttributes([]) }
    /// The backend's vectorised kernel (its value is `value` to float32 rounding), over the whole storage (an elementwise
    /// function reads any storage order alike).
    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, "Sigmoid")
        var out = context.buffer(x.storage.count)
        try x.storage.withUnsafeBufferPointer { px in
            try out.withUnsafeMutableBufferPointer { po in
                guard let input = px.baseAddress, let output = po.baseAddress else { return }
                try context.kernels.elementwise(.logistic, count: px.count, input, into: output)
            }
        }
        return [Tensor(shape: x.shape, storage: out, order: x.order)]
    }
    func value(_ x: Float) -> Float { 1 / (1 + exp(-x)) }
    func derivative(_ x: Float, _ y: Float) -> Float { y * (1 - y) }
}

/// `max(0, min(1, alpha * x + beta))`.
struct HardSigmoid: UnaryOperator {
    let alpha: Float
    let beta: Float
    init(_ node: Node) throws {
        try node.checkAttributes(["alpha", "beta"])
        alpha = try node.float("alpha", 0.2)
        beta = try node.float("beta", 0.5)
    }
    func value(_ x: Float) -> Float { max(0, min(1, alpha * x + beta)) }
    func derivative(_ x: Float, _ y: Float) -> Float {
        let t = alpha * x + beta
        return t > 0 && t < 1 ? alpha : 0
    }
}

/// `x * max(0, min(1, x / 6 + 1/2))`.
struct HardSwish: UnaryOperator {
    init(_ node: Node) throws { try node.checkAttributes([]) }
    func value(_ x: Float) -> Float { x * max(0, min(1, x / 6 + 0.5)) }
    func derivative(_ x: Float, _ y: Float) -> Float {
        // PyTorch's hardswish_backward: 0 below -3, 1 above 3, x/3 + 1/2 between.
        if x < -3 { return 0 }
        if x <= 3 { return x / 3 + 0.5 }
        return 1
    }
}

/// `tanh(x)`.
struct Tanh: UnaryOperator {
    init(_ node: Node) throws { try node.checkAttributes([]) }
    func value(_ x: Float) -> Float { tanh(x) }
    func derivative(_ x: Float, _ y: Float) -> Float { 1 - y * y }
}

/// `√x` (the scale `1 / √d` of attention, usually folded at load time).
struct Sqrt: UnaryOperator {
    init(_ node: Node) throws { try node.checkAttributes([]) }
    func value(_ x: Float) -> Float { x.squareRoot() }
    // Infinite at 0, as PyTorch's.
    func derivative(_ x: Float, _ y: Float) -> Float { 0.5 / y }
}

/// `e^x`.
struct Exp: UnaryOperator {
    init(_ node: Node) throws { try node.checkAttributes([]) }
    func value(_ x: Float) -> Float { Foundation.exp(x) }
    func derivative(_ x: Float, _ y: Float) -> Float { y }
}

/// The Gauss error function.
struct Erf: UnaryOperator {
    init(_ node: Node) throws { try node.checkAttributes([]) }
    func value(_ x: Float) -> Float { erf(x) }
    func derivative(_ x: Float, _ y: Float) -> Float { 2 / Float.pi.squareRoot() * exp(-x * x) }
}

/// Gaussian error linear unit, exact (`erf`) or `tanh` approximation.
struct Gelu: UnaryOperator {
    let tanhApproximation: Bool
    init(_ node: Node) throws {
        try node.checkAttributes(["approximate"])
        let mode = try node.string("approximate", "none")
        guard mode == "none" || mode == "tanh" else { throw EngineError("\(node.label): unsupported approximate '\(mode)'") }
        tanhApproximation = mode == "tanh"
    }
    /// The GELU the planner puts in place of one spelled out in elementary operators.
    init(tanhApproximation: Bool) {
        self.tanhApproximation = tanhApproximation
    }
    private static let k: Float = (2 / Float.pi).squareRoot()

    /// The backend's vectorised kernel (its value is the formula below to float32 rounding).
    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, "Gelu")
        var out = context.buffer(x.count)
        try x.storage.withUnsafeBufferPointer { px in
            try out.withUnsafeMutableBufferPointer { po in
                guard let input = px.baseAddress, let output = po.baseAddress else { return }
                try context.kernels.elementwise(tanhApproximation ? .geluTanh : .geluErf, count: x.count, input, into: output)
            }
        }
        return [Tensor(shape: x.shape, storage: out, order: x.order)]
    }
    func value(_ x: Float) -> Float {
        if tanhApproximation { return 0.5 * x * (1 + tanh(Gelu.k * (x + 0.044715 * x * x * x))) }
        return 0.5 * x * (1 + erf(x / Float(2).squareRoot()))
    }
    func derivative(_ x: Float, _ y: Float) -> Float {
        if tanhApproximation {
            let inner = Gelu.k * (x + 0.044715 * x * x * x)
            let t = tanh(inner)
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * Gelu.k * (1 + 3 * 0.044715 * x * x)
        }
        let cdf = 0.5 * (1 + erf(x / Float(2).squareRoot()))
        let pdf = Foundation.exp(-0.5 * x * x) / (2 * Float.pi).squareRoot()
        return cdf + x * pdf
    }
}

/// The input unchanged (Identity; Dropout at inference).
struct Identity: Operator {
    init(_ node: Node) throws {
        try node.checkAttributes(node.opType == "Dropout" ? ["seed"] : [])
        if node.opType == "Dropout", node.inputs.count > 2, !node.inputs[2].isEmpty {
            // training_mode as an input: only the inference behaviour is implemented.
        }
    }
    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let shape = try Operand.shape(shapes, 0, "Identity")
        return [shape, shape]
    }
    func orderSupport(_ shapes: [[Int]?], constants: [Constant?]) -> OrderSupport { .followsInput }
    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, "Identity")
        return [x, Tensor(shape: x.shape, repeating: 1)]
    }
    func integerOutputs(_ inputs: [Constant?]) throws -> [Constant]? {
        let x = try Operand.constant(inputs, 0, "Identity", what: "input")
        guard x.isInteger else { return nil }
        return [x, Constant(shape: x.shape, integers: [Int](repeating: 1, count: x.tensor.count))]
    }
    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        [a.gradients[0]]
    }
}
