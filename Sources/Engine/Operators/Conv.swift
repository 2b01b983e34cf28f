import Core
import Foundation

/// Spatial attributes shared by convolution and pooling: kernel, strides, dilations, pads, auto_pad, ceil_mode.
struct SpatialWindow: Sendable {
    let kernel: [Int]?
    let strides: [Int]?
    let dilations: [Int]?
    let pads: [Int]?
    let autoPad: String
    let ceilMode: Bool

    init(_ node: Node) throws {
        kernel = try node.ints("kernel_shape")
        strides = try node.ints("strides")
        dilations = try node.ints("dilations")
        pads = try node.ints("pads")
        autoPad = try node.string("auto_pad", "NOTSET")
        ceilMode = try node.int("ceil_mode", 0) != 0
        guard ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"].contains(autoPad) else {
            throw EngineError("\(node.label): unsupported auto_pad '\(autoPad)'")
        }
        for (name, list) in [("strides", strides), ("dilations", dilations), ("kernel_shape", kernel)] {
            if let list, list.contains(where: { $0 < 1 || $0 > 1 << 16 }) {
                throw EngineError("\(node.label): attribute '\(name)' \(list) must hold positive values")
            }
        }
        if let pads, pads.contains(where: { $0 < 0 || $0 > 1 << 16 }) {
            throw EngineError("\(node.label): attribute 'pads' \(pads) must hold non-negative values")
        }
    }

    /// The 2-D kernel a pooling node must state.
    func poolingKernel(_ label: String) throws -> [Int] {
        guard let kernel, kernel.count == 2 else { throw EngineError("\(label): attribute 'kernel_shape' must give 2 spatial sizes") }
        return kernel
    }

    /// The output shape of a 2-D pooling of `x` (`[N, C, H, W]`) with this window and `kernel`.
    func pooledShape(_ x: [Int], kernel: [Int], _ label: String) throws -> [Int] {
        guard x.count == 4 else { throw EngineError("\(label): only 2-D pooling of [N,C,H,W] is supported, got \(x)") }
        return Array(x[0...1]) + (try resolve(input: Array(x[2...]), kernel: kernel, label)).output
    }

    /// Output spatial size and the begin/end pads for input spatial size `input` and kernel `k`.
    func resolve(input: [Int], kernel k: [Int], _ label: String) throws -> (output: [Int], begin: [Int], end: [Int], strides: [Int], dilations: [Int]) {
        let n = input.count
        let s = strides ?? [Int](repeating: 1, count: n)
        let d = dilations ?? [Int](repeating: 1, count: n)
        guard s.count == n, d.count == n, k.count == n else {
            throw EngineError("\(label): window attributes do not match the \(n) spatial dimensions of the input")
        }
        var begin = [Int](repeating: 0, count: n), end = begin, output = begin
        for i in 0..<n {
            let extent = (k[i] - 1) * d[i] + 1
            switch autoPad {
            case "VALID":
                output[i] = (input[i] - extent) / s[i] + 1
            case "SAME_UPPER", "SAME_LOWER":
                output[i] = (input[i] + s[i] - 1) / s[i]
                let total = max(0, (output[i] - 1) * s[i] + extent - input[i])
                begin[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                end[i] = total - begin[i]
            default:
                if let pads {
                    guard pads.count == 2 * n else { throw EngineError("\(label): 'pads' has \(pads.count) values for \(n) spatial dimensions") }
                    begin[i] = pads[i]
                    end[i] = pads[i + n]
                }
                let span = input[i] + begin[i] + end[i] - extent
                guard span >= 0 else { throw EngineError("\(label): the window is larger than the padded input \(input)") }
                output[i] = ceilMode ? (span + s[i] - 1) / s[i] + 1 : span / s[i] + 1
                // PyTorch/ONNX: with ceil_mode the last window must start inside the input or left padding.
                if ceilMode && (output[i] - 1) * s[i] >= input[i] + begin[i] { output[i] -= 1 }
            }
            guard output[i] >= 1 else { throw EngineError("\(label): the window is larger than the input \(input)") }
        }
        return (output, begin, end, s, d)
    }
}

/// The output shape of a convolution node (`output` of its data and weight shapes), once its weights and bias are
/// known to be constants and the bias to hold one value per output channel.
private func convolutionOutputShape(_ shapes: [[Int]?], _ constants: [Constant?], _ label: String,
                                    _ output: ([Int], [Int]) throws -> [Int]) throws -> [Int] {
    guard constants.count > 1, constants[1] != nil, constants.count < 3 || shapes[2] == nil || constants[2] != nil else {
        throw EngineError("\(label): weights and bias must be constants (initializers)")
    }
    let shape = try output(try Operand.shape(shapes, 0, label), try Operand.shape(shapes, 1, label))
    if shapes.count > 2, let b = shapes[2], b != [shape[1]] {
        throw EngineError("\(label): bias shape \(b) does not match \(shape[1]) output channels")
    }
    return shape
}

/// 2-D convolution with groups (depthwise included), dilations, strides, pads and auto_pad; oneDNN kernels.
///
/// The weights must be constant: the gradient is taken with respect to the data input only. The input is read in the
/// order its step reads it, and the addend and output are stored in the order the step writes.
struct Conv: Operator {
    let label: String
    let window: SpatialWindow
    let groups: Int
    /// The activation the planner fused into this convolution (none for a plain ONNX Conv).
    private(set) var activation: AbsorbedActivation?
    /// Whether the planner fused a following residual Add: input 3 is added before the activation.
    private(set) var addsResidual = false
    private let cache = WeightsCache()

    /// The prepared weights, built from the first (constant) weights seen.
    final class WeightsCache: @unchecked Sendable {
        private let lock = NSLock()
        private var weights: ConvolutionWeights?
        func get(_ w: Tensor, _ b: Tensor?) -> ConvolutionWeights {
            lock.lock()
            defer { lock.unlock() }
            if let weights { return weights }
            let made = ConvolutionWeights(weights: w, bias: b)
            weights = made
            return made
        }
    }

    init(_ node: Node) throws {
        try node.checkAttributes(["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])
        label = node.label
        window = try SpatialWindow(node)
        groups = try node.int("group", 1)
        guard groups >= 1 else { throw EngineError("\(node.label): group must be positive") }
    }

    func geometry(_ x: [Int], _ w: [Int]) throws -> WindowGeometry {
        guard x.count == 4, w.count == 4 else {
            throw EngineError("\(label): only 2-D convolutions are supported (input \(x), weights \(w))")
        }
        guard x[1] == w[1] * groups, w[0] % groups == 0 else {
            throw EngineError("\(label): input channels \(x[1]) do not match weights \(w) with group \(groups)")
        }
        if let k = window.kernel, k != Array(w[2...]) {
            throw EngineError("\(label): kernel_shape \(k) does not match weights \(w)")
        }
        let r = try window.resolve(input: Array(x[2...]), kernel: Array(w[2...]), label)
        return WindowGeometry(input: x, output: [x[0], w[0]] + r.output, kernel: Array(w[2...]), strides: r.strides,
                                   dilations: r.dilations, padsBegin: r.begin, padsEnd: r.end, groups: groups)
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        [try convolutionOutputShape(shapes, constants, label) { try geometry($0, $1).output }]
    }

    /// The input and output orders of the step running it.
    private func orders(_ context: OperatorContext) -> ConvolutionOrders {
        ConvolutionOrders(input: context.inputOrder(0), output: context.outputOrder)
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label), w = try Operand.required(inputs, 1, label)
        let g = try geometry(x.shape, w.shape)
        var destination = context.buffer(Tensor.elementCount(g.output))
        if addsResidual {
            // The kernel adds what its destination holds: the residual branch, copied (the branch stays as it is).
            let addend = try Operand.required(inputs, 3, label)
            destination.withUnsafeMutableBufferPointer { d in addend.storage.withUnsafeBufferPointer { d.baseAddress!.update(from: $0.baseAddress!, count: $0.count) } }
        }
        return [try context.kernels.convolution(x, cache.get(w, inputs.count > 2 ? inputs[2] : nil), g, activation: activation?.kernel ?? .none,
                                                  accumulating: addsResidual, into: consume destination, orders: orders(context))]
    }

    var differentiableInputs: Set<Int> { addsResidual ? [0, 3] : [0] }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [1], outputs: activation == nil ? [] : [0]) }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        let (inputs, outputs, gradients) = (a.inputs, a.outputs, a.gradients)
        guard var g = gradients[0] else { return [nil] }
        let w = try Operand.required(inputs, 1, label)
        if let activation {
            g = try activation.gradient(g, output: try Operand.required(outputs, 0, label), context: context)
        }
        let x = try Operand.shape(a.inputShapes, 0, label)
        let geometry = try geometry([g.shape[0]] + x.dropFirst(), w.shape)
        let dx = a.wanted[0] ? try context.kernels.convolutionBackwardData(g, cache.get(w, inputs.count > 2 ? inputs[2] : nil), geometry,
                                                                           orders: orders(context), into: context.buffer(Tensor.elementCount(geometry.input))) : nil
        // The residual branch was added as is: its gradient is the (activation-masked) output gradient.
        return addsResidual ? [dx, nil, nil, a.wanted.count > 3 && a.wanted[3] ? g : nil] : [dx]
    }

    func orderSupport(_ shapes: [[Int]?], constants: [Constant?]) -> OrderSupport {
        let kernelSize = (shapes.count > 1 ? shapes[1] : nil)?.dropFirst(2).reduce(1, *) ?? 1
        return .convolution(blocksPay: groups == 1 && kernelSize > 1)
    }

    func absorbing(_ activation: AbsorbedActivation) -> (any Operator)? {
        guard self.activation == nil else { return nil }
        var fused = self
        fused.activation = activation
        return fused
    }

    // The kernel adds the residual before the activation: a convolution with an activation already cannot.
    func absorbingResidual() -> (any Operator)? {
        guard activation == nil, !addsResidual else { return nil }
        var fused = self
        fused.addsResidual = true
        return fused
    }

    var kind: String { groups > 1 ? "Conv depthwise/grouped" : "Conv" }

    func kernelAlgorithm(_ shapes: [[Int]?], inputOrders: [StorageOrder], outputOrder: StorageOrder) -> String? {
        guard shapes.count > 1, let x = shapes[0], let w = shapes[1], let g = try? geometry(x, w), let input = inputOrders.first,
              Winograd.applies(g, orders: ConvolutionOrders(input: input, output: outputOrder)) else { return nil }
        return "Winograd F(4x4,3x3)"
    }
}

/// 2-D transposed convolution (ultralytics' -seg mask prototypes upsample with one): the data gradient of the
/// convolution whose weights it holds, so it runs on the same two kernels with their roles swapped. Weights `[C, O/group,
/// KH, KW]` are a convolution's `[O', C'/group, ...]` read from the other side; output padding adds rows and columns
/// no window reaches (bias only).
struct ConvTranspose: Operator {
    let label: String
    let window: SpatialWindow
    let groups: Int
    let outputPadding: [Int]?
    private let unbiased = Conv.WeightsCache()

    init(_ node: Node) throws {
        try node.checkAttributes(["auto_pad", "dilations", "group", "kernel_shape", "output_padding", "pads", "strides"])
        label = node.label
        window = try SpatialWindow(node)
        groups = try node.int("group", 1)
        outputPadding = try node.ints("output_padding")
        guard groups >= 1 else { throw EngineError("\(node.label): group must be positive") }
        if let outputPadding, outputPadding.contains(where: { $0 < 0 || $0 > 1 << 16 }) {
            throw EngineError("\(node.label): attribute 'output_padding' \(outputPadding) must hold non-negative values")
        }
    }

    /// The geometry of the convolution this one transposes: its input is this node's output, its output this input.
    func geometry(_ x: [Int], _ w: [Int]) throws -> WindowGeometry {
        guard x.count == 4, w.count == 4 else {
            throw EngineError("\(label): only 2-D transposed convolutions are supported (input \(x), weights \(w))")
        }
        guard x[1] == w[0], w[0] % groups == 0 else {
            throw EngineError("\(label): input channels \(x[1]) do not match weights \(w) with group \(groups)")
        }
        let kernel = Array(w[2...])
        if let k = window.kernel, k != kernel { throw EngineError("\(label): kernel_shape \(k) does not match weights \(w)") }
        let strides = window.strides ?? [1, 1], dilations = window.dilations ?? [1, 1], extra = outputPadding ?? [0, 0]
        guard strides.count == 2, dilations.count == 2, extra.count == 2 else {
            throw EngineError("\(label): window attributes do not match the 2 spatial dimensions of the input")
        }
        var begin = [0, 0], end = [0, 0], output = [0, 0]
        for i in 0..<2 {
            guard extra[i] < max(strides[i], dilations[i]) else {
                throw EngineError("\(label): output_padding \(extra) must be smaller than the stride or dilation")
            }
            let extent = (kernel[i] - 1) * dilations[i] + 1
            let full = strides[i] * (x[2 + i] - 1) + extra[i] + extent
            switch window.autoPad {
            case "SAME_UPPER", "SAME_LOWER":
                output[i] = x[2 + i] * strides[i]
                let total = max(0, full - output[i])
                // ONNX: SAME_UPPER puts the extra padding at the beginning for a transposed convolution.
                begin[i] = window.autoPad == "SAME_UPPER" ? total - total / 2 : total / 2
                end[i] = total - begin[i]
            default:
                if window.autoPad == "NOTSET", let pads = window.pads {
                    guard pads.count == 4 else { throw EngineError("\(label): 'pads' has \(pads.count) values for 2 spatial dimensions") }
                    (begin[i], end[i]) = (pads[i], pads[i + 2])
                }
                output[i] = full - begin[i] - end[i]
            }
            guard output[i] >= 1 else { throw EngineError("\(label): the padding leaves no output for input \(x)") }
        }
        return WindowGeometry(input: [x[0], w[1] * groups] + output, output: x, kernel: kernel, strides: strides,
                              dilations: dilations, padsBegin: begin, padsEnd: end, groups: groups)
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        // The transposed convolution's output is the input of the convolution it transposes.
        [try convolutionOutputShape(shapes, constants, label) { try geometry($0, $1).input }]
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label), w = try Operand.required(inputs, 1, label)
        let g = try geometry(x.shape, w.shape)
        var y = try context.kernels.convolutionBackwardData(x, unbiased.get(w, nil), g, orders: ConvolutionOrders(.channelsFirst),
                                                            into: context.buffer(Tensor.elementCount(g.input)))
        if inputs.count > 2, let bias = inputs[2] {
            let (channels, plane) = (g.input[1], g.input[2] * g.input[3])
            y.storage.withUnsafeMutableBufferPointer { out in
                for n in 0..<g.input[0] {
                    for c in 0..<channels {
                        let b = bias.storage[c], base = (n * channels + c) * plane
                        for p in 0..<plane { out[base + p] += b }
                    }
                }
            }
        }
        return [y]
    }

    var differentiableInputs: Set<Int> { [0] }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [1], outputs: []) }

    /// The input's gradient is the transposed convolution's own convolution of the output gradient.
    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let gradient = a.gradients[0], a.wanted[0] else { return [nil] }
        let w = try Operand.required(a.inputs, 1, label)
        let x = try Operand.shape(a.inputShapes, 0, label)
        let g = try geometry([gradient.shape[0]] + x.dropFirst(), w.shape)
        return [try context.kernels.convolution(gradient.reordered(to: .channelsFirst), unbiased.get(w, nil), g, activation: .none,
                                                accumulating: false, into: context.buffer(Tensor.elementCount(g.output)),
                                                orders: ConvolutionOrders(.channelsFirst))]
    }

    var kind: String { "ConvTranspose" }
}
