import Core
/// Index arithmetic shared by the operators: broadcasting, reductions, transposes.
enum TensorMath {
    static func strides(_ shape: [Int]) -> [Int] {
        var result = [Int](repeating: 1, count: shape.count)
        var step = 1
        for i in Swift.stride(from: shape.count - 1, through: 0, by: -1) {
            result[i] = step
            step *= shape[i]
        }
        return result
    }

    /// The numpy-style broadcast of two shapes, or an error naming the operator.
    static func broadcastShape(_ a: [Int], _ b: [Int], _ op: String) throws -> [Int] {
        let rank = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: rank - a.count) + a
        let pb = [Int](repeating: 1, count: rank - b.count) + b
        return try (0..<rank).map { i in
            if pa[i] == pb[i] { return pa[i] }
            if pa[i] == 1 { return pb[i] }
            if pb[i] == 1 { return pa[i] }
            throw EngineError("\(op): shapes \(a) and \(b) do not broadcast")
        }
    }

    /// Strides of `shape` seen from an output of shape `out` (0 along broadcast dimensions).
    static func broadcastStrides(_ shape: [Int], to out: [Int]) -> [Int] {
        let padded = [Int](repeating: 1, count: out.count - shape.count) + shape
        let s = strides(padded)
        return (0..<out.count).map { padded[$0] == 1 && out[$0] != 1 ? 0 : s[$0] }
    }

    /// Visits every element of `out`, giving the flat offsets into operands with the given strides.
    @inline(__always)
    static func forEachOffset(_ out: [Int], _ sa: [Int], _ sb: [Int], _ body: (Int, Int, Int) -> Void) {
        let rank = out.count
        let total = Tensor.elementCount(out)
        if total == 0 { return }
        if rank == 0 { body(0, 0, 0); return }
        let inner = out[rank - 1]
        let ia = sa[rank - 1], ib = sb[rank - 1]
        var index = [Int](repeating: 0, count: rank)
        var oa = 0, ob = 0, o = 0
        while o < total {
            for k in 0..<inner { body(o + k, oa + k * ia, ob + k * ib) }
            o += inner
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                oa += sa[d]; ob += sb[d]
                if index[d] < out[d] { break }
                oa -= sa[d] * out[d]; ob -= sb[d] * out[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    /// Elementwise `f(a, b)` with numpy broadcasting.
    @inline(__always)
    static func broadcast(_ a: Tensor, _ b: Tensor, _ op: String, _ f: (Float, Float) -> Float) throws -> Tensor {
        if a.shape == b.shape { return zip(a, b, f) }
        let (a, b) = (a.reordered(to: .channelsFirst), b.reordered(to: .channelsFirst))
        let shape = try broadcastShape(a.shape, b.shape, op)
        // One operand repeated along the other's leading dimensions (a scalar, a bias over tokens or channels last):
        // a plain loop over blocks, which the compiler vectorises.
        if shape == a.shape, let block = repeatedBlock(b.shape, in: shape) {
            return blockwise(a, b, block: block) { x, y in f(x, y) }
        }
        if shape == b.shape, let block = repeatedBlock(a.shape, in: shape) {
            return blockwise(b, a, block: block) { y, x in f(x, y) }
        }
        let sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
        var out = [Float](repeating: 0, count: Tensor.elementCount(shape))
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { po in
                    forEachOffset(shape, sa, sb) { o, ia, ib in po[o] = f(pa[ia], pb[ib]) }
                }
            }
        }
        return Tensor(shape: shape, storage: out)
    }

    /// Elementwise `f(a, b)` over exact integers (row-major, of shapes `sa` and `sb`) with numpy broadcasting.
    static func broadcast(_ a: [Int], _ sa: [Int], _ b: [Int], _ sb: [Int], _ op: String,
                          _ f: (Int, Int) throws -> Int) throws -> (shape: [Int], values: [Int]) {
        let shape = try broadcastShape(sa, sb, op)
        var out = [Int](repeating: 0, count: Tensor.elementCount(shape))
        var failure: (any Error)?
        forEachOffset(shape, broadcastStrides(sa, to: shape), broadcastStrides(sb, to: shape)) { o, ia, ib in
            guard failure == nil else { return }
            do { out[o] = try f(a[ia], b[ib]) } catch { failure = error }
        }
        if let failure { throw failure }
        return (shape, out)
    }

    /// The element count of `small` when it equals the trailing dimensions of `shape` up to leading ones (so that
    /// broadcasting repeats it whole), else nil.
    static func repeatedBlock(_ small: [Int], in shape: [Int]) -> Int? {
        let trimmed = small.drop { $0 == 1 }
        guard trimmed.count <= shape.count, Array(shape.suffix(trimmed.count)) == Array(trimmed) else { return nil }
        return Tensor.elementCount(Array(trimmed))
    }

    /// `f(x[i], y[i % block])` for a `y` of `block` elements repeated along `x`.
    @inline(__always)
    static func blockwise(_ x: Tensor, _ y: Tensor, block: Int, _ f: (Float, Float) -> Float) -> Tensor {
        var out = [Float](repeating: 0, count: x.count)
        x.storage.withUnsafeBufferPointer { px in
            y.storage.withUnsafeBufferPointer { py in
                out.withUnsafeMutableBufferPointer { po in
                    var start = 0
                    while start < px.count {
                        for j in 0..<block { po[start + j] = f(px[start + j], py[j]) }
                        start += block
                    }
                }
            }
        }
        return Tensor(shape: x.shape, storage: out)
    }

    /// Sums `gradient` (shaped like a broadcast result) down to `shape`, the undoing of broadcasting.
    static func reduce(_ gradient: Tensor, to shape: [Int]) -> Tensor {
        if gradient.shape == shape { return gradient }
        let gradient = gradient.reordered(to: .channelsFirst)
        let out = gradient.shape
        let so = broadcastStrides(shape, to: out)
        var result = [Float](repeating: 0, count: Tensor.elementCount(shape))
        gradient.storage.withUnsafeBufferPointer { pg in
            result.withUnsafeMutableBufferPointer { pr in
                forEachOffset(out, so, so) { o, r, _ in pr[r] += pg[o] }
            }
        }
        return Tensor(shape: shape, storage: result)
    }

    /// A buffer of `count` elements from `buffers`, or a new one.
    static func buffer(_ count: Int, from buffers: BufferPool?) -> [Float] {
        buffers?.take(count) ?? [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    /// Elementwise map of one tensor (in its storage order), into a buffer from `buffers` when given.
    @inline(__always)
    static func map(_ x: Tensor, buffers: BufferPool? = nil, _ f: (Float) -> Float) -> Tensor {
        var out = buffer(x.count, from: buffers)
        x.storage.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                for i in 0..<px.count { po[i] = f(px[i]) }
            }
        }
        return Tensor(shape: x.shape, storage: out, order: x.order)
    }

    /// Elementwise combination of two tensors of one shape, in the storage order of `x`, into a buffer from `buffers`
    /// when given.
    @inline(__always)
    static func zip(_ x: Tensor, _ y: Tensor, buffers: BufferPool? = nil, _ f: (Float, Float) -> Float) -> Tensor {
        let y = y.reordered(to: x.order)
        var out = buffer(x.count, from: buffers)
        x.storage.withUnsafeBufferPointer { px in
            y.storage.withUnsafeBufferPointer { py in
                out.withUnsafeMutableBufferPointer { po in
                    for i in 0..<px.count { po[i] = f(px[i], py[i]) }
                }
            }
        }
        return Tensor(shape: x.shape, storage: out, order: x.order)
    }

    /// Permutes dimensions: output dimension i is input dimension perm[i].
    static func transpose(_ x: Tensor, _ perm: [Int]) -> Tensor {
        let x = x.reordered(to: .channelsFirst)
        let shape = perm.map { x.shape[$0] }
        let inStrides = strides(x.shape)
        let permuted = perm.map { inStrides[$0] }
        var out = [Float](repeating: 0, count: x.count)
        x.storage.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                forEachOffset(shape, permuted, permuted) { o, i, _ in po[o] = px[i] }
            }
        }
        return Tensor(shape: shape, storage: out)
    }

    /// `[N, C, inner]` view sizes around `axis`: product before, the axis, product after.
    static func split(_ shape: [Int], at axis: Int) -> (outer: Int, length: Int, inner: Int) {
        (Tensor.elementCount(Array(shape[..<axis])), shape[axis], Tensor.elementCount(Array(shape[(axis + 1)...])))
    }

    /// Rows `range` of the first dimension (in the storage order of `x`: an image is contiguous in every order), into a
    /// buffer from `buffers` when given.
    static func rows(_ x: Tensor, _ range: Swift.Range<Int>, buffers: BufferPool? = nil) -> Tensor {
        let size = x.count / max(x.shape[0], 1)
        var out = buffer(range.count * size, from: buffers)
        x.storage.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: px.baseAddress! + range.lowerBound * size, count: range.count * size) }
        }
        return Tensor(shape: [range.count] + x.shape.dropFirst(), storage: out, order: x.order)
    }

    /// Repeats a batch-1 tensor `count` times along the first dimension (in its storage order).
    static func tile(_ x: Tensor, batch count: Int) -> Tensor {
        if x.shape.first == count { return x }
        var storage: [Float] = []
        storage.reserveCapacity(x.count * count)
        for _ in 0..<count { storage.append(contentsOf: x.storage) }
        return Tensor(shape: [count] + x.shape.dropFirst(), storage: storage, order: x.order)
    }

    /// The mean of each channel's H x W plane of a 4-D tensor in any storage order: `[N * C]` values, image-major.
    ///
    /// Each plane is summed in pixel order whatever the storage, so every order gives the same bits.
    static func spatialMeans(_ x: Tensor) -> [Float] {
        let (n, c, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        var sums = [Float](repeating: 0, count: n * c)
        x.storage.withUnsafeBufferPointer { px in
            sums.withUnsafeMutableBufferPointer { ps in
                for b in 0..<n {
                    let image = b * c * hw, out = b * c
                    switch x.order {
                    case .channelsFirst:
                        for ch in 0..<c { var s: Float = 0; for p in 0..<hw { s += px[image + ch * hw + p] }; ps[out + ch] = s }
                    case .channelsLast:
                        for p in 0..<hw { for ch in 0..<c { ps[out + ch] += px[image + p * c + ch] } }
                    case .channelBlocks8:
                        for block in 0..<(c / 8) {
                            let base = image + block * 8 * hw
                            for p in 0..<hw { for lane in 0..<8 { ps[out + block * 8 + lane] += px[base + p * 8 + lane] } }
                        }
                    }
                }
                for i in 0..<ps.count { ps[i] /= Float(hw) }
            }
        }
        return sums
    }

    /// The gradient of `spatialMeans`: each plane of `shape` filled with its mean's gradient / (H * W), stored in `order`,
    /// into a buffer from `buffers` when given.
    static func spatialMeansBackward(_ gradient: [Float], shape: [Int], order: StorageOrder, buffers: BufferPool? = nil) -> Tensor {
        let (n, c, hw) = (shape[0], shape[1], shape[2] * shape[3])
        let scaled = gradient.map { $0 / Float(hw) }
        var out = buffer(n * c * hw, from: buffers)
        out.withUnsafeMutableBufferPointer { po in
            for b in 0..<n {
                let image = b * c * hw, g = b * c
                switch order {
                case .channelsFirst:
                    for ch in 0..<c { for p in 0..<hw { po[image + ch * hw + p] = scaled[g + ch] } }
                case .channelsLast:
                    for p in 0..<hw { for ch in 0..<c { po[image + p * c + ch] = scaled[g + ch] } }
                case .channelBlocks8:
                    for block in 0..<(c / 8) {
                        let base = image + block * 8 * hw
                        for p in 0..<hw { for lane in 0..<8 { po[base + p * 8 + lane] = scaled[g + block * 8 + lane] } }
                    }
                }
            }
        }
        return Tensor(shape: shape, storage: out, order: order)
    }
}
