import Core
/// 2-D max pooling (pads, strides, dilations, ceil_mode) in the storage order of its input; the gradient goes to each
/// window's first maximum.
struct MaxPool: Operator {
    let label: String
    let window: SpatialWindow
    let kernel: [Int]

    init(_ node: Node) throws {
        try node.checkAttributes(["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"])
        guard try node.int("storage_order", 0) == 0 else { throw EngineError("\(node.label): storage_order 1 is not supported") }
        guard node.outputs.count == 1 else { throw EngineError("\(node.label): the Indices output is not supported") }
        label = node.label
        window = try SpatialWindow(node)
        kernel = try window.poolingKernel(node.label)
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        [try window.pooledShape(try Operand.shape(shapes, 0, label), kernel: kernel, label)]
    }

    func orderSupport(_ shapes: [[Int]?], constants: [Constant?]) -> OrderSupport { .followsInput }

    /// Calls `body(outputIndex, inputIndexOfMax)` for every output element (flat indices in the tensors' storage
    /// order); windows are scanned row by row and the first maximum wins, as PyTorch's argmax.
    private func argmax(_ x: Tensor, _ body: (Int, Int) -> Void) throws {
        // Eight channels side by side at every pixel (blocks, or NHWC) are scanned together, with selects instead of
        // branches (ResNet-18's first pool backward: 13 -> 10 ms).
        if x.order != .channelsFirst && x.shape[1] % 8 == 0 { try argmax(x, lanes: 8, body) } else { try argmax(x, lanes: 1, body) }
    }

    /// `argmax` over groups of `lanes` channels lying side by side at every pixel (one channel when `lanes` is 1).
    @inline(__always)
    private func argmax(_ x: Tensor, lanes: Int, _ body: (Int, Int) -> Void) throws {
        let r = try window.resolve(input: Array(x.shape[2...]), kernel: kernel, label)
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]), (oh, ow) = (r.output[0], r.output[1])
        let (kh, kw, sh, sw) = (kernel[0], kernel[1], r.strides[0], r.strides[1])
        let (dh, dw, top, left) = (r.dilations[0], r.dilations[1], r.begin[0], r.begin[1])
        let order = x.order
        withUnsafeTemporaryAllocation(of: Float.self, capacity: lanes) { best in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: lanes) { bestIndex in
                x.storage.withUnsafeBufferPointer { px in
                    for b in 0..<n {
                        for group in 0..<(c / lanes) {
                            // In every order, a channel's pixels lie at a fixed stride from its first one.
                            let first = group * lanes
                            let base = b * c * h * w + order.offset(channel: first, pixel: 0, channels: c, pixels: h * w)
                            let step = order.offset(channel: first, pixel: 1, channels: c, pixels: h * w) - base + b * c * h * w
                            let outBase = b * c * oh * ow + order.offset(channel: first, pixel: 0, channels: c, pixels: oh * ow)
                            let outStep = order.offset(channel: first, pixel: 1, channels: c, pixels: oh * ow) - outBase + b * c * oh * ow
                            for i in 0..<oh {
                                for j in 0..<ow {
                                    for lane in 0..<lanes { (best[lane], bestIndex[lane]) = (-.infinity, -1) }
                                    for ki in 0..<kh {
                                        let y = i * sh - top + ki * dh
                                        if y < 0 || y >= h { continue }
                                        for kj in 0..<kw {
                                            let xx = j * sw - left + kj * dw
                                            if xx < 0 || xx >= w { continue }
                                            let index = base + (y * w + xx) * step
                                            for lane in 0..<lanes {
                                                let v = px[index + lane]
                                                let take = v > best[lane] || v != v || bestIndex[lane] < 0
                                                best[lane] = take ? v : best[lane]
                                                bestIndex[lane] = take ? index + lane : bestIndex[lane]
                                            }
                                        }
                                    }
                                    let out = outBase + (i * ow + j) * outStep
                                    for lane in 0..<lanes { body(out + lane, bestIndex[lane]) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let r = try window.resolve(input: Array(x.shape[2...]), kernel: kernel, label)
        let geometry = WindowGeometry(input: x.shape, output: Array(x.shape[0...1]) + r.output, kernel: kernel, strides: r.strides,
                                      dilations: r.dilations, padsBegin: r.begin, padsEnd: r.end, groups: 1)
        return [try context.kernels.maxPooling(x, geometry, order: x.order, into: context.buffer(Tensor.elementCount(geometry.output)))]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0]) }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        let x = try Operand.required(a.inputs, 0, label)
        guard let g = a.gradients[0] else { return [nil] }
        var out = context.buffer(x.count)
        try g.storage.withUnsafeBufferPointer { pg in
            try out.withUnsafeMutableBufferPointer { po in
                po.update(repeating: 0)
                try argmax(x) { o, i in if i >= 0 { po[i] += pg[o] } }
            }
        }
        return [Tensor(shape: x.shape, storage: out, order: x.order)]
    }
}

/// 2-D average pooling (count_include_pad, ceil_mode); the gradient spreads evenly over each window.
struct AveragePool: Operator {
    let label: String
    let window: SpatialWindow
    let kernel: [Int]
    let countIncludePad: Bool

    init(_ node: Node) throws {
        try node.checkAttributes(["auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"])
        label = node.label
        window = try SpatialWindow(node)
        countIncludePad = try node.int("count_include_pad", 0) != 0
        kernel = try window.poolingKernel(node.label)
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        [try window.pooledShape(try Operand.shape(shapes, 0, label), kernel: kernel, label)]
    }

    /// Calls `body(outputIndex, inputIndex, weight)` for every (output, input) pair of every window.
    private func windows(_ shape: [Int], _ body: (Int, Int, Float) -> Void) throws {
        let r = try window.resolve(input: Array(shape[2...]), kernel: kernel, label)
        let (h, w) = (shape[2], shape[3]), (oh, ow) = (r.output[0], r.output[1])
        var o = 0
        for plane in 0..<(shape[0] * shape[1]) {
            let base = plane * h * w
            for i in 0..<oh {
                for j in 0..<ow {
                    var members: [Int] = []
                    var padded = 0
                    for ki in 0..<kernel[0] {
                        let y = i * r.strides[0] - r.begin[0] + ki * r.dilations[0]
                        for kj in 0..<kernel[1] {
                            let xx = j * r.strides[1] - r.begin[1] + kj * r.dilations[1]
                            // Positions past the explicit padding (ceil_mode overhang) never count.
                            if y >= h + r.end[0] || xx >= w + r.end[1] { continue }
                            if y < 0 || y >= h || xx < 0 || xx >= w { padded += 1; continue }
                            members.append(base + y * w + xx)
                        }
                    }
                    let count = countIncludePad ? members.count + padded : members.count
                    let weight: Float = count > 0 ? 1 / Float(count) : 0
                    for m in members { body(o, m, weight) }
                    o += 1
                }
            }
        }
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        let shape = try outputShapes([x.shape], constants: [])[0]
        var out = [Float](repeating: 0, count: Tensor.elementCount(shape))
        try x.storage.withUnsafeBufferPointer { px in
            try windows(x.shape) { o, i, w in out[o] += px[i] * w }
        }
        return [Tensor(shape: shape, storage: out)]
    }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        let shape = try Operand.shape(a.inputShapes, 0, label)
        guard let g = a.gradients[0] else { return [nil] }
        var out = [Float](repeating: 0, count: Tensor.elementCount(shape))
        try g.storage.withUnsafeBufferPointer { pg in
            try windows([g.shape[0]] + shape.dropFirst()) { o, i, w in out[i] += pg[o] * w }
        }
        return [Tensor(shape: [g.shape[0]] + shape.dropFirst(), storage: out)]
    }
}

/// The mean (GlobalAveragePool, of a 4-D input in any storage order) or maximum (GlobalMaxPool) of each channel's
/// spatial plane.
struct GlobalPool: Operator {
    let label: String
    let isMax: Bool

    init(_ node: Node) throws {
        try node.checkAttributes([])
        label = node.label
        isMax = node.opType == "GlobalMaxPool"
    }

    func outputShapes(_ shapes: [[Int]?], constants: [Constant?]) throws -> [[Int]] {
        let x = try Operand.shape(shapes, 0, label)
        guard x.count >= 3 else { throw EngineError("\(label): input \(x) has no spatial dimensions") }
        return [Array(x[0...1]) + [Int](repeating: 1, count: x.count - 2)]
    }

    func orderSupport(_ shapes: [[Int]?], constants: [Constant?]) -> OrderSupport {
        !isMax && shapes.first??.count == 4 ? .readsAnyOrder : .channelsFirst
    }

    func forward(_ inputs: [Tensor?], context: OperatorContext) throws -> [Tensor] {
        let x = try Operand.required(inputs, 0, label)
        if !isMax && x.rank == 4 {
            return [Tensor(shape: try outputShapes([x.shape], constants: [])[0], storage: TensorMath.spatialMeans(x))]
        }
        let planes = x.shape[0] * x.shape[1], size = x.count / max(planes, 1)
        var out = [Float](repeating: 0, count: planes)
        x.storage.withUnsafeBufferPointer { px in
            for p in 0..<planes {
                if isMax {
                    var m = -Float.infinity
                    for i in 0..<size { m = max(m, px[p * size + i]) }
                    out[p] = m
                } else {
                    var s: Float = 0
                    for i in 0..<size { s += px[p * size + i] }
                    out[p] = s / Float(size)
                }
            }
        }
        return [Tensor(shape: try outputShapes([x.shape], constants: [])[0], storage: out)]
    }

    var backwardNeeds: BackwardNeeds { isMax ? BackwardNeeds(inputs: [0], outputs: [0]) : BackwardNeeds() }

    func backward(_ a: BackwardArguments, context: OperatorContext) throws -> [Tensor?] {
        guard let g = a.gradients[0] else { return [nil] }
        let shape = try Operand.shape(a.inputShapes, 0, label)
        if !isMax && shape.count == 4 {
            return [TensorMath.spatialMeansBackward(g.storage, shape: [g.shape[0]] + shape.dropFirst(), order: context.inputOrder(0),
                                                    buffers: context.buffers)]
        }
        let planes = shape[0] * shape[1], size = Tensor.elementCount(shape) / max(planes, 1)
        var out = [Float](repeating: 0, count: Tensor.elementCount(shape))
        if isMax {
            let x = try Operand.required(a.inputs, 0, label), y = try Operand.required(a.outputs, 0, label)
            for p in 0..<planes {
                // The first maximum takes the gradient, as the argmax of MaxPool does.
                if let i = (0..<size).first(where: { x.storage[p * size + $0] == y.storage[p] }) { out[p * size + i] = g.storage[p] }
            }
        } else {
            for p in 0..<planes {
                let v = g.storage[p] / Float(size)
                for i in 0..<size { out[p * size + i] = v }
            }
        }
        return [Tensor(shape: shape, storage: out)]
    }
}
