import Core
/// Resampling of a tensor to a new size (Resize, and the older Upsample): nearest, linear and cubic interpolation, each
/// a weighted sum of at most 1, 2 or 4 input elements along every resized axis (the interpolation is separable).
///
/// Forward applies the per-axis weights axis after axis; the vector-Jacobian product applies their transposes in the
/// reverse order (nearest: a scatter-add of the gradient onto the element each output copied; linear and cubic: each
/// output's gradient spread over its taps by their weights). Coordinates and weights follow onnxruntime's CPU kernel
/// (float32 arithmetic, the same clamping), so that exports of PyTorch's `interpolate` and ultralytics' upsampling run as
/// onnxruntime runs them. One corner follows the ONNX specification instead: onnxruntime 1.32's nearest mode leaves an
/// axis whose extent does not change untouched even under tf_crop_and_resize (ignoring its region of interest and
/// extrapolation there); here that axis is cropped and extrapolated like any other.
struct Resize: Operator {
    enum Mode: String { case nearest, linear, cubic }
    enum Transform: String {
        case halfPixel = "half_pixel", halfPixelSymmetric = "half_pixel_symmetric", pytorchHalfPixel = "pytorch_half_pixel"
        case alignCorners = "align_corners", asymmetric, tfCropAndResize = "tf_crop_and_resize"
    }
    /// How nearest mode rounds a coordinate; `simple` is Resize-10's and Upsample's (truncation, or up when shrinking).
    enum Rounding: String { case roundPreferFloor = "round_prefer_floor", roundPreferCeil = "round_prefer_ceil", floor, ceil, simple }
    enum AspectPolicy: String { case stretch, notLarger = "not_larger", notSmaller = "not_smaller" }

    let label: String
    let mode: Mode
    let transform: Transform
    let rounding: Rounding
    let cubicA: Float
    let excludeOutside: Bool
    let extrapolation: Float
    let antialias: Bool
    let axesAttribute: [Int]?
    let policy: AspectPolicy
    /// Where the inputs are: Resize-11 and later (X, roi, scales, sizes), Resize-10 and Upsample-9 (X, scales), or
    /// Upsample-7's `scales` attribute.
    let roiIndex: Int?
    let scalesIndex: Int?
    let sizesIndex: Int?
    let scalesAttribute: [Float]?

    init(_ node: Node, opset: Int) throws {
        label = node.label
        if node.opType == "Upsample" {
            try node.checkAttributes(["mode", "scales", "height_scale", "width_scale"])
            guard node.attributes["height_scale"] == nil, node.attributes["width_scale"] == nil else {
                throw EngineError("\(node.label): the height_scale and width_scale attributes (Upsample-1) are not supported")
            }
            let name = try node.string("mode", "nearest")
            // Upsample-7 says "bilinear" where Resize says "linear".
            guard let mode = Mode(rawValue: name == "bilinear" ? "linear" : name), mode != .cubic else {
                throw EngineError("\(node.label): mode '\(name)' is not supported (nearest, linear)")
            }
            self.mode = mode
            (transform, rounding, cubicA, excludeOutside, extrapolation, antialias) = (.asymmetric, .simple, -0.75, false, 0, false)
            (axesAttribute, policy, roiIndex, sizesIndex) = (nil, .stretch, nil, nil)
            if case .floats(let values)? = node.attributes["scales"] {
                (scalesIndex, scalesAttribute) = (nil, values)
            } else {
                guard node.attributes["scales"] == nil else { throw EngineError("\(node.label): attribute 'scales' must be floats") }
                (scalesIndex, scalesAttribute) = (1, nil)
            }
            return
        }
        var known: Set<String> = ["mode"]
        if opset >= 11 { known.formUnion(["coordinate_transformation_mode", "cubic_coeff_a", "exclude_outside", "extrapolation_value", "nearest_mode"]) }
        if opset >= 18 { known.formUnion(["antialias", "axes", "keep_aspect_ratio_policy"]) }
        try node.checkAttributes(known)
        let modeName = try node.string("mode", "nearest")
        guard let mode = Mode(rawValue: modeName), opset >= 11 || mode != .cubic else {
            throw EngineError("\(node.label): mode '\(modeName)' is not supported (nearest, linear, cubic)")
        }
        self.mode = mode
        let transformName = try node.string("coordinate_transformation_mode", opset >= 11 ? "half_pixel" : "asymmetric")
        guard let transform = Transform(rawValue: transformName), opset >= 19 || transform != .halfPixelSymmetric else {
            throw EngineError("\(node.label): coordinate_transformation_mode '\(transformName)' is not supported")
        }
        self.transform = transform
        let roundingName = try node.string("nearest_mode", opset >= 11 ? "round_prefer_floor" : "simple")
        guard let rounding = Rounding(rawValue: roundingName), opset < 11 || rounding != .simple else {
            throw EngineError("\(node.label): nearest_mode '\(roundingName)' is not supported")
        }
        self.rounding = rounding
        cubicA = try node.float("cubic_coeff_a", -0.75)
        excludeOutside = try node.int("exclude_outside", 0) != 0
        extrapolation = try node.float("extrapolation_value", 0)
        antialias = try node.int("antialias", 0) != 0
        axesAttribute = try node.ints("axes")
        let policyName = try node.string("keep_aspect_ratio_policy", "stretch")
        guard let policy = AspectPolicy(rawValue: policyName) else {
            throw EngineError("\(node.label): keep_aspect_ratio_policy '\(policyName)' is not supported")
        }
        self.policy = policy
        (roiIndex, scalesIndex, sizesIndex) = opset >= 11 ? (1, 2, 3) : (nil, 1, nil)
        scalesAttribute = nil
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds() }

    // MARK: Geometry

    /// What the resampling does along every axis: output sizes, the scales the coordinates use, the region of interest.
    struct Geometry {
        var input: [Int]
        var output: [Int]
        var scales: [Float]
        var roiStart: [Float]
        var roiEnd: [Float]
    }

    /// The load-time input at `index` (nil where the node omits it, or gives an empty tensor for it).
    private func given(_ index: Int?, _ shapes: [[Int]?], _ constants: [Constant?], what: String) throws -> Constant? {
        guard let index, index < shapes.count, let shape = shapes[index] else { return nil }
        if shape.contains(0) { return nil }
        return try Operand.constant(constants, index, label, what: what)
    }

    func geometry(_ x: [Int], _ shapes: [[Int]?], _ constants: [Constant?]) throws -> Geometry {
        let rank = x.count
        guard rank >= 1 else { throw EngineError("\(label): a scalar cannot be resized") }
        let axes = try (axesAttribute ?? Array(0..<rank)).map { try Operand.axis($0, rank: rank, label) }
        guard Set(axes).count == axes.count else { throw EngineError("\(label): axes \(axesAttribute ?? []) repeat an axis") }
        var scales = [Float](repeating: 1, count: rank)
        var output = x
        var roiStart = [Float](repeating: 0, count: rank), roiEnd = [Float](repeating: 1, count: rank)
        if transform == .tfCropAndResize, let roi = try given(roiIndex, shapes, constants, what: "roi") {
            let values = roi.tensor.storage
            guard values.count == 2 * axes.count else {
                throw EngineError("\(label): roi has \(values.count) values for \(axes.count) axes")
            }
            for (k, a) in axes.enumerated() { (roiStart[a], roiEnd[a]) = (values[k], values[k + axes.count]) }
        }
        let sizes = try given(sizesIndex, shapes, constants, what: "sizes")
        let scaleValues = try scalesAttribute ?? given(scalesIndex, shapes, constants, what: "scales")?.tensor.storage
        if let sizes {
            guard scaleValues == nil else { throw EngineError("\(label): both scales and sizes are given") }
            let values = Operand.integers(sizes)
            guard values.count == axes.count, values.allSatisfy({ $0 >= 0 }) else {
                throw EngineError("\(label): sizes \(values) do not fit \(axes.count) axes of \(x)")
            }
            switch policy {
            case .stretch:
                for (k, a) in axes.enumerated() {
                    output[a] = values[k]
                    scales[a] = Float(values[k]) / Float(x[a])
                }
            case .notLarger, .notSmaller:
                let ratios = axes.enumerated().map { k, a in Float(values[k]) / Float(x[a]) }
                let scale = (policy == .notLarger ? ratios.min() : ratios.max()) ?? 1
                for a in axes {
                    scales[a] = scale
                    output[a] = try size(scale * Float(x[a]), rounded: true)
                }
            }
        } else if let scaleValues {
            guard scaleValues.count == axes.count else {
                throw EngineError("\(label): \(scaleValues.count) scales for \(axes.count) axes of \(x)")
            }
            for (k, a) in axes.enumerated() {
                guard scaleValues[k].isFinite, scaleValues[k] > 0 else { throw EngineError("\(label): scale \(scaleValues[k]) is not positive") }
                scales[a] = scaleValues[k]
                output[a] = try size(scaleValues[k] * Float(x[a]), rounded: false)
            }
        } else {
            throw EngineError("\(label): neither scales nor sizes is given")
        }
        guard zip(x, output).allSatisfy({ $0 > 0 || $1 == 0 }) else {
            throw EngineError("\(label): an empty axis of \(x) cannot be resized to \(output)")
        }
        guard try Operand.elementCount(output, label) < 1 << 28 else {
            throw EngineError("\(label): output \(output) is too large")
        }
        if antialias && mode != .nearest && zip(output, x).contains(where: { $0 < $1 }) {
            throw EngineError("\(label): antialiased downsampling is not supported")
        }
        return Geometry(input: x, output: output, scales: scales, roiStart: roiStart, roiEnd: roiEnd)
    }

    /// An output extent from `value` (truncated, as onnxruntime does, or rounded for a kept aspect ratio), checked.
    private func size(_ value: Float, rounded: Bool) throws -> Int {
        let v = rounded ? value.rounded(.toNearestOrAwayFromZero) : value.rounded(.towardZero)
        guard v.isFinite, v >= 0, v < Float(1 << 28) else { throw EngineError("\(label): output extent \(value) is out of range") }
        return Int(v)
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        [try geometry(try Operand.shape(shapes, 0, label), shapes, constants).output]
    }

    // MARK: Taps

    /// The input elements (index and weight) each output index of one axis reads: `width` of them per output; an
    /// output index outside the region of interest (tf_crop_and_resize) reads none and takes the extrapolation value.
    struct Taps {
        var width: Int
        var indices: [Int]
        var weights: [Float]
        var outside: [Bool]
        /// Whether every output index copies the input element of the same index (nothing to do along this axis).
        var isIdentity: Bool
    }

    /// The input coordinate of output index `j` along an axis of `n` inputs and `m` outputs.
    func coordinate(_ j: Int, n: Int, m: Int, scale: Float, roiStart: Float, roiEnd: Float) -> Float {
        let x = Float(j)
        switch transform {
        case .halfPixel: return (x + 0.5) / scale - 0.5
        case .halfPixelSymmetric:
            let adjustment = Float(m) / (scale * Float(n))
            let offset = Float(n) / 2 * (1 - adjustment)
            return offset + (x + 0.5) / scale - 0.5
        case .pytorchHalfPixel: return m > 1 ? (x + 0.5) / scale - 0.5 : 0
        case .alignCorners: return m == 1 ? 0 : x * Float(n - 1) / Float(m - 1)
        case .asymmetric: return x / scale
        case .tfCropAndResize:
            if m > 1 { return roiStart * Float(n - 1) + x * (roiEnd - roiStart) * Float(n - 1) / Float(m - 1) }
            return 0.5 * (roiStart + roiEnd) * Float(n - 1)
        }
    }

    /// The nearest input index to coordinate `x` (before clamping).
    func nearest(_ x: Float, shrinking: Bool) -> Float {
        switch rounding {
        case .roundPreferFloor: return x == x.rounded(.down) + 0.5 ? x.rounded(.down) : x.rounded(.toNearestOrAwayFromZero)
        case .roundPreferCeil: return x.rounded(.toNearestOrAwayFromZero)
        case .floor: return x.rounded(.down)
        case .ceil: return x.rounded(.up)
        case .simple: return shrinking ? x.rounded(.up) : x.rounded(.towardZero)
        }
    }

    /// The cubic convolution weights of the four taps around a coordinate whose fractional part is `s`.
    func cubicWeights(_ s: Float) -> [Float] {
        let a = cubicA
        let (s1, t, t1) = (s + 1, 1 - s, 2 - s)
        return [((a * s1 - 5 * a) * s1 + 8 * a) * s1 - 4 * a,
                ((a + 2) * s - (a + 3)) * s * s + 1,
                ((a + 2) * t - (a + 3)) * t * t + 1,
                ((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a]
    }

    func taps(_ g: Geometry, axis: Int) -> Taps {
        let (n, m) = (g.input[axis], g.output[axis])
        let width = mode == .nearest ? 1 : mode == .linear ? 2 : 4
        var taps = Taps(width: width, indices: [Int](repeating: 0, count: m * width), weights: [Float](repeating: 0, count: m * width),
                        outside: [Bool](repeating: false, count: m), isIdentity: n == m)
        let clamp = { (i: Int) in Swift.min(Swift.max(i, 0), n - 1) }
        for j in 0..<m {
            var x = coordinate(j, n: n, m: m, scale: g.scales[axis], roiStart: g.roiStart[axis], roiEnd: g.roiEnd[axis])
            if transform == .tfCropAndResize && (x < 0 || x > Float(n - 1)) {
                taps.outside[j] = true
                taps.isIdentity = false
                continue
            }
            let base = j * width
            switch mode {
            case .nearest:
                // Beyond ±2^40 the index is clamped anyway (and NaN reads as 0).
                let i = Operand.integer(nearest(x, shrinking: g.scales[axis] < 1))
                (taps.indices[base], taps.weights[base]) = (clamp(i), 1)
            case .linear:
                x = Swift.min(Swift.max(x, 0), Float(n - 1))
                let i = Swift.min(Operand.integer(x), n - 1)
                let w = x - Float(i)
                (taps.indices[base], taps.weights[base]) = (i, 1 - w)
                (taps.indices[base + 1], taps.weights[base + 1]) = (Swift.min(i + 1, n - 1), w)
            case .cubic:
                let floor = x.rounded(.down)
                let i = Operand.integer(floor)
                var weights = cubicWeights(x - floor)
                if excludeOutside {
                    for k in 0..<4 where i - 1 + k < 0 || i - 1 + k >= n { weights[k] = 0 }
                    let sum = weights.reduce(0, +)
                    if sum != 0 { weights = weights.map { $0 / sum } }
                }
                for k in 0..<4 { (taps.indices[base + k], taps.weights[base + k]) = (clamp(i - 1 + k), weights[k]) }
            }
            if taps.isIdentity {
                var own: Float = 0, other: Float = 0
                for k in 0..<width { if taps.indices[base + k] == j { own += taps.weights[base + k] } else { other += abs(taps.weights[base + k]) } }
                if own != 1 || other != 0 { taps.isIdentity = false }
            }
        }
        return taps
    }

    /// Every axis's taps, and the axes that change anything, in increasing order.
    private func plan(_ g: Geometry) -> (taps: [Taps], active: [Int]) {
        let taps = g.input.indices.map { self.taps(g, axis: $0) }
        return (taps, g.input.indices.filter { !taps[$0].isIdentity })
    }

    // MARK: Forward and backward

    /// Resamples `x` (row-major, of shape `shape`) along `axis` by `taps`: `[outer, n, inner]` -> `[outer, m, inner]`.
    static func resample(_ x: [Float], _ shape: [Int], axis: Int, _ taps: Taps) -> [Float] {
        apply(taps, to: x, shape, axis: axis, transposed: false)
    }

    /// The transpose of `resample`: `g` of shape `[outer, m, inner]` spread back onto `[outer, n, inner]`.
    static func scatter(_ g: [Float], _ inputShape: [Int], axis: Int, _ taps: Taps) -> [Float] {
        apply(taps, to: g, inputShape, axis: axis, transposed: true)
    }

    /// Output row `j` of `[outer, m, inner]` is the `taps`-weighted sum of input rows of `[outer, n, inner]` (`shape`
    /// is the latter); `transposed`, each row of `values` (the output side) is added back onto its input rows.
    private static func apply(_ taps: Taps, to values: [Float], _ shape: [Int], axis: Int, transposed: Bool) -> [Float] {
        let (outer, n, inner) = TensorMath.split(shape, at: axis)
        let m = taps.outside.count, width = taps.width
        var out = [Float](repeating: 0, count: outer * (transposed ? n : m) * inner)
        values.withUnsafeBufferPointer { pv in
            out.withUnsafeMutableBufferPointer { po in
                for o in 0..<outer {
                    for j in 0..<m where !taps.outside[j] {
                        let row = (o * m + j) * inner
                        for t in 0..<width {
                            let w = taps.weights[j * width + t]
                            if w == 0 { continue }
                            let tap = (o * n + taps.indices[j * width + t]) * inner
                            let (src, dst) = transposed ? (row, tap) : (tap, row)
                            for k in 0..<inner { po[dst + k] += w * pv[src + k] }
                        }
                    }
                }
            }
        }
        return out
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label).reordered(to: .channelsFirst)
        let g = try geometry(x.shape, inputs.map { $0?.shape }, context.constants(inputs))
        let (taps, active) = plan(g)
        var shape = x.shape, values = x.storage
        for axis in active {
            values = Self.resample(values, shape, axis: axis, taps[axis])
            shape[axis] = g.output[axis]
        }
        if transform == .tfCropAndResize, taps.contains(where: { $0.outside.contains(true) }) {
            fillOutside(&values, shape, taps)
        }
        return [Tensor(shape: shape, storage: values)]
    }

    /// Writes the extrapolation value where any axis's output index lies outside the region of interest.
    private func fillOutside(_ values: inout [Float], _ shape: [Int], _ taps: [Taps]) {
        let strides = TensorMath.strides(shape)
        for o in values.indices {
            for d in shape.indices where taps[d].outside[(o / strides[d]) % shape[d]] {
                values[o] = extrapolation
                break
            }
        }
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let gradient = a.gradients[0] else { return [nil] }
        let g0 = gradient.reordered(to: .channelsFirst)
        let x = try Operand.shape(a.inputShapes, 0, label)
        let geometry = try self.geometry(x, [x] + a.inputShapes.dropFirst(), context.constants(a.inputs))
        guard geometry.output == g0.shape else {
            throw EngineError("\(label): gradient \(g0.shape) does not fit output \(geometry.output)")
        }
        let (taps, active) = plan(geometry)
        var shape = geometry.output, values = g0.storage
        for axis in active.reversed() {
            shape[axis] = x[axis]
            values = Self.scatter(values, shape, axis: axis, taps[axis])
        }
        return [Tensor(shape: x, storage: values)] + a.inputShapes.dropFirst().map { _ in nil }
    }
}
