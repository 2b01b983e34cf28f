import Core
import CDNNL
import Foundation

/// Kernels from oneDNN (CPU engine); primitives are built once per shape and cached.
///
/// oneDNN parallelises each call with OpenMP, so calls are serialised: one at a time per backend.
final class DNNLBackend: KernelBackend, @unchecked Sendable {
    private let engine: dnnl_engine_t
    private let stream: dnnl_stream_t
    private let lock = NSLock()
    private var convolutions: [ConvolutionKey: CompiledPrimitive] = [:]
    private var poolings: [PoolingKey: CompiledPrimitive] = [:]
    /// Softmax primitives by (rows, row length).
    private var softmaxes: [[Int]: CompiledPrimitive] = [:]
    /// Elementwise primitives by function and element count.
    private var elementwise: [ElementwiseKey: CompiledPrimitive] = [:]

    private struct ElementwiseKey: Hashable {
        var function: ElementwiseFunction
        var count: Int
    }

    private struct PoolingKey: Hashable {
        var geometry: WindowGeometry
        var order: StorageOrder
    }
    /// The scratch memory every cached convolution runs with (user scratchpad mode), grown to the largest asked for.
    private let scratchpad = GrowingBuffer()
    /// Winograd's batched products by `[tiles, C, K]`, and its two work buffers.
    private var winogradMatmuls: [[Int]: CompiledPrimitive] = [:]
    private let transformedTiles = GrowingBuffer(), tileProducts = GrowingBuffer()

    private struct ConvolutionKey: Hashable {
        var geometry: WindowGeometry
        var activation: FusedActivation
        /// Whether the destination's prior contents (a residual branch) are added before the activation.
        var accumulates = false
        var backward: Bool
        var hasBias: Bool
        var orders: ConvolutionOrders
    }

    /// The process-wide backend (one oneDNN engine and stream).
    static let shared: Result<DNNLBackend, EngineError> = Result { try DNNLBackend() }.mapError {
        ($0 as? EngineError) ?? EngineError("\($0)")
    }

    private init() throws {
        var engine: dnnl_engine_t?
        try DNNLBackend.check(dnnl_engine_create(&engine, dnnl_cpu, 0), "creating the oneDNN CPU engine")
        guard let engine else { throw EngineError("oneDNN returned no engine") }
        var stream: dnnl_stream_t?
        try DNNLBackend.check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue), "creating a oneDNN stream")
        guard let stream else { throw EngineError("oneDNN returned no stream") }
        self.engine = engine
        self.stream = stream
    }


    /// Runs `body` with `pointer` viewed in layout `wanted`: reordered into a scratch buffer when `user` differs.
    private func withLayout(_ pointer: UnsafeMutableRawPointer?, user: dnnl_memory_desc_t, wanted: dnnl_memory_desc_t,
                            copyIn: Bool, copyOut: Bool, _ body: (UnsafeMutableRawPointer?) throws -> Void) throws {
        var u = user, w = wanted
        if dnnl_memory_desc_equal(&u, &w) != 0 { return try body(pointer) }
        var scratch = [Float](repeating: 0, count: dnnl_memory_desc_get_size(&w) / 4)
        try scratch.withUnsafeMutableBytes { buffer in
            if copyIn { try reorder(&u, pointer, &w, buffer.baseAddress) }
            try body(buffer.baseAddress)
            if copyOut { try reorder(&w, buffer.baseAddress, &u, pointer) }
        }
    }

    deinit {
        dnnl_stream_destroy(stream)
        dnnl_engine_destroy(engine)
    }

    static func check(_ status: dnnl_status_t, _ what: String) throws {
        guard status == dnnl_success else { throw EngineError("oneDNN failed \(what) (status \(status.rawValue))") }
    }

    static func memoryDescriptor(_ dims: [Int], _ tag: dnnl_format_tag_t) throws -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims.map { dnnl_dim_t($0) }
        try check(dnnl_memory_desc_init_by_tag(&md, Int32(d.count), d, dnnl_f32, tag), "describing a \(dims) tensor")
        return md
    }

    /// A primitive with its memory descriptors, built for one geometry (weights unused by pooling).
    private final class CompiledPrimitive {
        var descriptor: dnnl_primitive_desc_t?
        var primitive: dnnl_primitive_t?
        /// A backward primitive descriptor keeps a pointer to its forward hint: the hint lives as long as it.
        var forwardHint: dnnl_primitive_desc_t?
        var weightsDescriptor = dnnl_memory_desc_t()
        /// The key of the weights reordered for this primitive in `ConvolutionWeights.prepared`.
        var weightsKey = ""
        /// The primitive's source (or diff-source) and destination (or diff-destination) layouts.
        var sourceDescriptor = dnnl_memory_desc_t()
        var destinationDescriptor = dnnl_memory_desc_t()
        /// The caller's plain (NCHW or NHWC) source and destination layouts, and the bias layout: built once, used per call.
        var userSource = dnnl_memory_desc_t()
        var userDestination = dnnl_memory_desc_t()
        var biasDescriptor = dnnl_memory_desc_t()
        /// The scratch memory the primitive needs per call (zero bytes when none).
        var scratchpadDescriptor = dnnl_memory_desc_t()

        deinit {
            if let primitive { dnnl_primitive_destroy(primitive) }
            if let descriptor { dnnl_primitive_desc_destroy(descriptor) }
            if let forwardHint { dnnl_primitive_desc_destroy(forwardHint) }
        }
    }

    /// Memory reused from call to call, 64-byte aligned, replaced by a larger one when a call needs more.
    private final class GrowingBuffer {
        private var buffer: PreparedBuffer?
        private var bytes = 0
        func pointer(bytes needed: Int) -> UnsafeMutableRawPointer {
            if needed > bytes || buffer == nil { (buffer, bytes) = (PreparedBuffer(bytes: needed), needed) }
            return buffer!.pointer
        }
    }

    /// A weights buffer in a primitive's preferred layout, aligned to a cache line as oneDNN's own buffers are.
    private final class PreparedBuffer {
        let pointer: UnsafeMutableRawPointer
        init(bytes: Int) { pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64) }
        deinit { pointer.deallocate() }
    }

    private func weightsDims(_ g: WindowGeometry) -> ([Int], dnnl_format_tag_t) {
        let o = g.output[1], c = g.input[1]
        if g.groups == 1 { return ([o, c, g.kernel[0], g.kernel[1]], dnnl_oihw) }
        return ([g.groups, o / g.groups, c / g.groups, g.kernel[0], g.kernel[1]], dnnl_goihw)
    }

    /// oneDNN's tag for a storage order.
    static func tag(_ order: StorageOrder) -> dnnl_format_tag_t {
        switch order {
        case .channelsFirst: return dnnl_nchw
        case .channelsLast: return dnnl_nhwc
        case .channelBlocks8: return dnnl_nChw8c
        }
    }

    private func convolutionDescriptor(_ g: WindowGeometry, backward: Bool, forwardKind: dnnl_prop_kind_t,
                                       hasBias: Bool, orders: ConvolutionOrders) throws -> dnnl_convolution_desc_t {
        var src = try DNNLBackend.memoryDescriptor(g.input, DNNLBackend.tag(orders.input))
        var dst = try DNNLBackend.memoryDescriptor(g.output, DNNLBackend.tag(orders.output))
        let (wd, _) = weightsDims(g)
        var weights = try DNNLBackend.memoryDescriptor(wd, dnnl_format_tag_any)
        var bias = try DNNLBackend.memoryDescriptor([g.output[1]], dnnl_x)
        let strides = g.strides.map { dnnl_dim_t($0) }
        let dilations = g.dilations.map { dnnl_dim_t($0 - 1) }
        let padL = g.padsBegin.map { dnnl_dim_t($0) }
        let padR = g.padsEnd.map { dnnl_dim_t($0) }
        var desc = dnnl_convolution_desc_t()
        if backward {
            try DNNLBackend.check(dnnl_dilated_convolution_backward_data_desc_init(
                &desc, dnnl_convolution_direct, &src, &weights, &dst, strides, dilations, padL, padR),
                "describing a backward-data convolution \(g)")
        } else {
            let status = hasBias
                ? dnnl_dilated_convolution_forward_desc_init(&desc, forwardKind, dnnl_convolution_direct, &src, &weights, &bias, &dst,
                                                             strides, dilations, padL, padR)
                : dnnl_dilated_convolution_forward_desc_init(&desc, forwardKind, dnnl_convolution_direct, &src, &weights, nil, &dst,
                                                             strides, dilations, padL, padR)
            try DNNLBackend.check(status, "describing a convolution \(g)")
        }
        return desc
    }

    private func compiled(_ key: ConvolutionKey) throws -> CompiledPrimitive {
        if let cached = convolutions[key] { return cached }
        let result = CompiledPrimitive()
        try withUserScratchpad { attr in try build(result, key, attr) }
        convolutions[key] = result
        return result
    }

    /// Primitive attributes asking for a user scratchpad, for `body`.
    ///
    /// Cached primitives run on whichever thread calls; oneDNN's library scratchpad (this build has no
    /// DNNL_ENABLE_CONCURRENT_EXEC) is a thread-local buffer sized on the creating thread, so another thread would
    /// overrun its own smaller one. With a user scratchpad each call passes memory of the size the primitive asked.
    private func withUserScratchpad(_ body: (dnnl_primitive_attr_t?) throws -> Void) throws {
        var attr: dnnl_primitive_attr_t?
        try DNNLBackend.check(dnnl_primitive_attr_create(&attr), "creating primitive attributes")
        defer { dnnl_primitive_attr_destroy(attr) }
        try DNNLBackend.check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "asking for a user scratchpad")
        try body(attr)
    }

    /// Builds convolution `key` into `result` with attributes `attr` (post-ops are added here).
    private func build(_ result: CompiledPrimitive, _ key: ConvolutionKey, _ attr: dnnl_primitive_attr_t?) throws {
        let g = key.geometry
        if key.accumulates || key.activation != .none {
            var ops: dnnl_post_ops_t?
            try DNNLBackend.check(dnnl_post_ops_create(&ops), "creating post-ops")
            defer { dnnl_post_ops_destroy(ops) }
            if key.accumulates { try DNNLBackend.check(dnnl_post_ops_append_sum(ops, 1), "adding a sum post-op") }
            switch key.activation {
            case .relu: try DNNLBackend.check(dnnl_post_ops_append_eltwise(ops, 1, dnnl_eltwise_relu, 0, 0), "adding a ReLU post-op")
            case .clip(let lo, let hi):
                try DNNLBackend.check(dnnl_post_ops_append_eltwise(ops, 1, dnnl_eltwise_clip_v2, lo, hi), "adding a clip post-op")
            case .none: break
            }
            try DNNLBackend.check(dnnl_primitive_attr_set_post_ops(attr, ops), "setting post-ops")
        }
        if key.backward {
            // oneDNN 2.6 has only its reference kernel for a backward from blocks to a plain image (~200x slower):
            // such a backward runs channels-last, with its operands reordered.
            let orders = key.orders.input == key.orders.output ? key.orders : ConvolutionOrders(.channelsLast)
            var forwardDesc = try convolutionDescriptor(g, backward: false, forwardKind: dnnl_forward_training, hasBias: false,
                                                        orders: orders)
            try DNNLBackend.check(dnnl_primitive_desc_create(&result.forwardHint, &forwardDesc, nil, engine, nil),
                                  "building a convolution \(g)")
            var desc = try convolutionDescriptor(g, backward: true, forwardKind: dnnl_forward_training, hasBias: false,
                                                 orders: orders)
            try DNNLBackend.check(dnnl_primitive_desc_create(&result.descriptor, &desc, attr, engine, result.forwardHint),
                                  "building a backward-data convolution \(g)")
        } else {
            var desc = try convolutionDescriptor(g, backward: false, forwardKind: dnnl_forward_inference, hasBias: key.hasBias,
                                                 orders: key.orders)
            try DNNLBackend.check(dnnl_primitive_desc_create(&result.descriptor, &desc, attr, engine, nil),
                                  "building a convolution \(g)")
        }
        guard let md = dnnl_primitive_desc_query_md(result.descriptor, dnnl_query_weights_md, 0) else {
            throw EngineError("oneDNN gave no weights layout for convolution \(g)")
        }
        result.weightsDescriptor = md.pointee
        result.userSource = try DNNLBackend.memoryDescriptor(g.input, DNNLBackend.tag(key.orders.input))
        result.userDestination = try DNNLBackend.memoryDescriptor(g.output, DNNLBackend.tag(key.orders.output))
        result.biasDescriptor = try DNNLBackend.memoryDescriptor([g.output[1]], dnnl_x)
        // Built once here: the key is looked up on every call. The node's weights are fixed, so the layout alone decides
        // their reordered form: primitives for other batch sizes, or the backward, share it when they want that layout.
        result.weightsKey = "dnnl.\(DNNLBackend.describe(md.pointee))"
        let (srcQuery, dstQuery) = key.backward ? (dnnl_query_diff_src_md, dnnl_query_diff_dst_md) : (dnnl_query_src_md, dnnl_query_dst_md)
        guard let src = dnnl_primitive_desc_query_md(result.descriptor, srcQuery, 0),
              let dst = dnnl_primitive_desc_query_md(result.descriptor, dstQuery, 0) else {
            throw EngineError("oneDNN gave no data layouts for convolution \(g)")
        }
        result.sourceDescriptor = src.pointee
        result.destinationDescriptor = dst.pointee
        if let scratch = dnnl_primitive_desc_query_md(result.descriptor, dnnl_query_scratchpad_md, 0) {
            result.scratchpadDescriptor = scratch.pointee
        }
        try DNNLBackend.check(dnnl_primitive_create(&result.primitive, result.descriptor), "creating a convolution primitive")
    }

    /// The weights reordered into the layout `compiled` wants, made once per node and layout.
    private func preparedWeights(_ weights: ConvolutionWeights, _ compiled: CompiledPrimitive, _ g: WindowGeometry) throws -> PreparedBuffer {
        return try weights.prepared(compiled.weightsKey) {
            let (dims, tag) = weightsDims(g)
            var user = try DNNLBackend.memoryDescriptor(dims, tag)
            var wanted = compiled.weightsDescriptor
            let out = PreparedBuffer(bytes: dnnl_memory_desc_get_size(&wanted))
            try weights.weights.storage.withUnsafeBytes { src in
                if dnnl_memory_desc_equal(&user, &wanted) != 0 {
                    out.pointer.copyMemory(from: src.baseAddress!, byteCount: src.count)
                } else {
                    // oneDNN only reads the source: the cast avoids copying the array.
                    try reorder(&user, UnsafeMutableRawPointer(mutating: src.baseAddress), &wanted, out.pointer)
                }
            }
            return out
        }
    }

    private func reorder(_ from: inout dnnl_memory_desc_t, _ src: UnsafeMutableRawPointer?,
                         _ to: inout dnnl_memory_desc_t, _ dst: UnsafeMutableRawPointer?) throws {
        var pd: dnnl_primitive_desc_t?
        try DNNLBackend.check(dnnl_reorder_primitive_desc_create(&pd, &from, engine, &to, engine, nil), "building a reorder")
        defer { dnnl_primitive_desc_destroy(pd) }
        var primitive: dnnl_primitive_t?
        try DNNLBackend.check(dnnl_primitive_create(&primitive, pd), "creating a reorder")
        defer { dnnl_primitive_destroy(primitive) }
        var a: dnnl_memory_t?, b: dnnl_memory_t?
        try DNNLBackend.check(dnnl_memory_create(&a, &from, engine, src), "wrapping reorder source")
        defer { dnnl_memory_destroy(a) }
        try DNNLBackend.check(dnnl_memory_create(&b, &to, engine, dst), "wrapping reorder destination")
        defer { dnnl_memory_destroy(b) }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: a), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: b)]
        try DNNLBackend.check(dnnl_primitive_execute(primitive, stream, Int32(args.count), &args), "reordering")
        try DNNLBackend.check(dnnl_stream_wait(stream), "waiting for a reorder")
    }

    /// Scratch memory of at least `descriptor`'s size, shared by all convolutions (calls are serialised by `lock`).
    private func scratchpad(for descriptor: dnnl_memory_desc_t) -> UnsafeMutableRawPointer? {
        var md = descriptor
        let bytes = dnnl_memory_desc_get_size(&md)
        return bytes == 0 ? nil : scratchpad.pointer(bytes: bytes)
    }

    /// Runs the compiled primitive `conv` with the given (argument, descriptor, pointer) triples and its scratchpad.
    private func execute(_ conv: CompiledPrimitive, _ arguments: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer?)]) throws {
        var arguments = arguments
        if let scratch = scratchpad(for: conv.scratchpadDescriptor) {
            arguments.append((DNNL_ARG_SCRATCHPAD, conv.scratchpadDescriptor, scratch))
        }
        try execute(conv.primitive, arguments)
    }

    /// Runs `primitive` with the given (argument, descriptor, pointer) triples.
    private func execute(_ primitive: dnnl_primitive_t?, _ arguments: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer?)]) throws {
        var memories: [dnnl_memory_t?] = []
        defer { for m in memories { dnnl_memory_destroy(m) } }
        var args: [dnnl_exec_arg_t] = []
        for (arg, descriptor, pointer) in arguments {
            var md = descriptor
            var memory: dnnl_memory_t?
            try DNNLBackend.check(dnnl_memory_create(&memory, &md, engine, pointer), "wrapping an operand")
            memories.append(memory)
            args.append(dnnl_exec_arg_t(arg: arg, memory: memory))
        }
        try DNNLBackend.check(dnnl_primitive_execute(primitive, stream, Int32(args.count), &args), "executing a primitive")
        try DNNLBackend.check(dnnl_stream_wait(stream), "waiting for a primitive")
    }

    func convolution(_ x: Tensor, _ weights: ConvolutionWeights, _ g: WindowGeometry, activation: FusedActivation,
                     accumulating: Bool, into destination: consuming [Float], orders: ConvolutionOrders) throws -> Tensor {
        lock.lock()
        defer { lock.unlock() }
        if Winograd.applies(g, orders: orders) {
            return try winogradConvolution(x, weights, g, activation: activation, accumulating: accumulating, into: consume destination)
        }
        let key = ConvolutionKey(geometry: g, activation: activation, accumulates: accumulating, backward: false,
                                 hasBias: weights.bias != nil, orders: orders)
        let conv = try compiled(key)
        let prepared = try preparedWeights(weights, conv, g)
        // The sum post-op adds what the destination holds.
        var output = consume destination
        let (src, dst, biasMD) = (conv.userSource, conv.userDestination, conv.biasDescriptor)
        let bias = weights.bias?.storage ?? []
        // oneDNN only reads sources; the casts to mutable pointers avoid copying the arrays.
        try x.storage.withUnsafeBufferPointer { pi in
            try output.withUnsafeMutableBytes { po in
                try bias.withUnsafeBufferPointer { pb in
                    try withLayout(UnsafeMutableRawPointer(mutating: pi.baseAddress), user: src, wanted: conv.sourceDescriptor,
                                   copyIn: true, copyOut: false) { source in
                        try withLayout(po.baseAddress, user: dst, wanted: conv.destinationDescriptor, copyIn: accumulating,
                                       copyOut: true) { destination in
                            var arguments = [(DNNL_ARG_SRC, conv.sourceDescriptor, source),
                                             (DNNL_ARG_WEIGHTS, conv.weightsDescriptor, prepared.pointer),
                                             (DNNL_ARG_DST, conv.destinationDescriptor, destination)]
                            if weights.bias != nil {
                                arguments.append((DNNL_ARG_BIAS, biasMD, UnsafeMutableRawPointer(mutating: pb.baseAddress)))
                            }
                            try execute(conv, arguments)
                        }
                    }
                }
            }
        }
        return Tensor(shape: g.output, storage: output, order: orders.output)
    }

    /// A convolution `Winograd.applies` to: transforms on the OpenMP team, and oneDNN's batched matrix products between.
    private func winogradConvolution(_ x: Tensor, _ weights: ConvolutionWeights, _ g: WindowGeometry,
                                     activation: FusedActivation, accumulating: Bool, into destination: consuming [Float]) throws -> Tensor {
        let (rows, columns) = Winograd.tiles(g)
        let (tiles, c, k) = (g.input[0] * rows * columns, g.input[1], g.output[1])
        let products = try winogradProducts(tiles: tiles, channels: c, filters: k)
        let filters = weights.prepared("winograd.F4x4") { () -> PreparedBuffer in
            let buffer = PreparedBuffer(bytes: 36 * c * k * MemoryLayout<Float>.size)
            Winograd.filters(weights.weights, into: buffer.pointer.assumingMemoryBound(to: Float.self))
            return buffer
        }
        let transformed = transformedTiles.pointer(bytes: 36 * tiles * c * 4).assumingMemoryBound(to: Float.self)
        let multiplied = tileProducts.pointer(bytes: 36 * tiles * k * 4).assumingMemoryBound(to: Float.self)
        // The addend is read and the output written element by element in one pass, in the same memory.
        var output = consume destination
        let bias = weights.bias?.storage ?? []
        x.storage.withUnsafeBufferPointer { Winograd.transformInput($0.baseAddress!, g, into: transformed) }
        try execute(products, [(DNNL_ARG_SRC, products.sourceDescriptor, UnsafeMutableRawPointer(transformed)),
                               (DNNL_ARG_WEIGHTS, products.weightsDescriptor, filters.pointer),
                               (DNNL_ARG_DST, products.destinationDescriptor, UnsafeMutableRawPointer(multiplied))])
        output.withUnsafeMutableBufferPointer { po in
            bias.withUnsafeBufferPointer { pb in
                let y = po.baseAddress!
                Winograd.transformOutput(multiplied, g, bias: weights.bias == nil ? nil : pb.baseAddress,
                                         addend: accumulating ? UnsafePointer(y) : nil, activation: activation, into: y)
            }
        }
        return Tensor(shape: g.output, storage: output, order: .channelBlocks8)
    }

    /// `M[36][tiles][K] = V[36][tiles][C] · U[36][C][K]`, built once per size.
    private func winogradProducts(tiles: Int, channels c: Int, filters k: Int) throws -> CompiledPrimitive {
        let key = [tiles, c, k]
        if let cached = winogradMatmuls[key] { return cached }
        let result = CompiledPrimitive()
        result.sourceDescriptor = try DNNLBackend.memoryDescriptor([36, tiles, c], dnnl_abc)
        result.weightsDescriptor = try DNNLBackend.memoryDescriptor([36, c, k], dnnl_abc)
        result.destinationDescriptor = try DNNLBackend.memoryDescriptor([36, tiles, k], dnnl_abc)
        var desc = dnnl_matmul_desc_t()
        try DNNLBackend.check(dnnl_matmul_desc_init(&desc, &result.sourceDescriptor, &result.weightsDescriptor, nil,
                                                    &result.destinationDescriptor), "describing Winograd's products \(key)")
        try withUserScratchpad { attr in
            try DNNLBackend.check(dnnl_primitive_desc_create(&result.descriptor, &desc, attr, engine, nil),
                                  "building Winograd's products \(key)")
        }
        if let scratch = dnnl_primitive_desc_query_md(result.descriptor, dnnl_query_scratchpad_md, 0) {
            result.scratchpadDescriptor = scratch.pointee
        }
        try DNNLBackend.check(dnnl_primitive_create(&result.primitive, result.descriptor), "creating Winograd's products")
        winogradMatmuls[key] = result
        return result
    }

    func convolutionBackwardData(_ gradient: Tensor, _ weights: ConvolutionWeights, _ g: WindowGeometry,
                                 orders: ConvolutionOrders, into destination: consuming [Float]) throws -> Tensor {
        lock.lock()
        defer { lock.unlock() }
        let key = ConvolutionKey(geometry: g, activation: .none, backward: true, hasBias: false, orders: orders)
        let conv = try compiled(key)
        let prepared = try preparedWeights(weights, conv, g)
        var diffSrc = consume destination
        let (src, dst) = (conv.userSource, conv.userDestination)
        try gradient.storage.withUnsafeBufferPointer { pd in
            try diffSrc.withUnsafeMutableBytes { ps in
                try withLayout(UnsafeMutableRawPointer(mutating: pd.baseAddress), user: dst, wanted: conv.destinationDescriptor,
                               copyIn: true, copyOut: false) { diffDst in
                    try withLayout(ps.baseAddress, user: src, wanted: conv.sourceDescriptor, copyIn: false, copyOut: true) { diffSrc in
                        try execute(conv, [(DNNL_ARG_DIFF_DST, conv.destinationDescriptor, diffDst),
                                           (DNNL_ARG_WEIGHTS, conv.weightsDescriptor, prepared.pointer),
                                           (DNNL_ARG_DIFF_SRC, conv.sourceDescriptor, diffSrc)])
                    }
                }
            }
        }
        return Tensor(shape: g.input, storage: diffSrc, order: orders.input)
    }

    /// The name of the kernel a primitive descriptor stands for, such as `jit:avx2`.
    static func implementation(_ descriptor: dnnl_primitive_desc_t?) -> String {
        var name: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(descriptor, dnnl_query_impl_info_str, 0, &name) == dnnl_success, let name else { return "" }
        return String(cString: name)
    }

    /// A fingerprint of a memory layout, to key prepared weights: size, format and the blocking (sizes, indices, strides).
    static func describe(_ md: dnnl_memory_desc_t) -> String {
        var copy = md
        let b = md.format_desc.blocking
        let blocks = [b.inner_blks.0, b.inner_blks.1, b.inner_blks.2, b.inner_idxs.0, b.inner_idxs.1, b.inner_idxs.2]
        let strides = [b.strides.0, b.strides.1, b.strides.2, b.strides.3, b.strides.4, b.strides.5]
        return "\(dnnl_memory_desc_get_size(&copy)).\(md.ndims).\(md.format_kind.rawValue).\(b.inner_nblks).\(blocks).\(strides)"
    }

    func maxPooling(_ x: Tensor, _ g: WindowGeometry, order: StorageOrder, into destination: consuming [Float]) throws -> Tensor {
        lock.lock()
        defer { lock.unlock() }
        var output = consume destination
        try x.storage.withUnsafeBufferPointer { pi in
            try output.withUnsafeMutableBytes { po in
                let run = { (pool: CompiledPrimitive) in
                    try self.execute(pool, [(DNNL_ARG_SRC, pool.sourceDescriptor, UnsafeMutableRawPointer(mutating: pi.baseAddress)),
                                            (DNNL_ARG_DST, pool.destinationDescriptor, po.baseAddress)])
                }
                try run(try compiledPooling(g, order: order, trying: run))
            }
        }
        return Tensor(shape: g.output, storage: output, order: order)
    }

    /// The max pooling primitive for `g`, built on first use: of the implementations oneDNN offers, the fastest over
    /// three runs of `run` (all give the same maxima). On AVX2, oneDNN ranks its AVX2 kernel first, yet on 8-channel
    /// blocks its SSE4.1 kernel ran twice as fast (ResNet-18's 112x112x64, 0.22 vs 0.43 ms).
    private func compiledPooling(_ g: WindowGeometry, order: StorageOrder,
                                 trying run: (CompiledPrimitive) throws -> Void) throws -> CompiledPrimitive {
        let key = PoolingKey(geometry: g, order: order)
        if let cached = poolings[key] { return cached }
        let tag = DNNLBackend.tag(order)
        var src = try DNNLBackend.memoryDescriptor(g.input, tag)
        var dst = try DNNLBackend.memoryDescriptor(g.output, tag)
        // oneDNN wants the end padding that makes its floor formula give our (possibly ceil_mode) output size;
        // max pooling ignores padded positions, so the extra padding changes no value.
        var padsEnd = g.padsEnd
        for i in 0..<2 {
            let extent = (g.kernel[i] - 1) * g.dilations[i] + 1
            padsEnd[i] = max(padsEnd[i], (g.output[i + 2] - 1) * g.strides[i] + extent - g.input[i + 2] - g.padsBegin[i])
        }
        var desc = dnnl_pooling_v2_desc_t()
        try DNNLBackend.check(dnnl_pooling_v2_forward_desc_init(
            &desc, dnnl_forward_inference, dnnl_pooling_max, &src, &dst, g.strides.map { dnnl_dim_t($0) },
            g.kernel.map { dnnl_dim_t($0) }, g.dilations.map { dnnl_dim_t($0 - 1) }, g.padsBegin.map { dnnl_dim_t($0) },
            padsEnd.map { dnnl_dim_t($0) }), "describing a max pooling \(g)")
        var iterator: dnnl_primitive_desc_iterator_t?
        try withUserScratchpad { attr in
            try DNNLBackend.check(dnnl_primitive_desc_iterator_create(&iterator, &desc, attr, engine, nil), "building a max pooling \(g)")
        }
        defer { dnnl_primitive_desc_iterator_destroy(iterator) }
        var best: (primitive: CompiledPrimitive, nanoseconds: UInt64)?
        repeat {
            let candidate = CompiledPrimitive()
            candidate.descriptor = dnnl_primitive_desc_iterator_fetch(iterator)
            // The reference kernel is a fallback, ~200x slower: timing it would only delay the first frame.
            if best != nil && DNNLBackend.implementation(candidate.descriptor).hasPrefix("ref") { continue }
            candidate.sourceDescriptor = src
            candidate.destinationDescriptor = dst
            if let scratch = dnnl_primitive_desc_query_md(candidate.descriptor, dnnl_query_scratchpad_md, 0) {
                candidate.scratchpadDescriptor = scratch.pointee
            }
            try DNNLBackend.check(dnnl_primitive_create(&candidate.primitive, candidate.descriptor), "creating a pooling primitive")
            var fastest = UInt64.max
            for _ in 0..<3 {
                let start = DispatchTime.now().uptimeNanoseconds
                try run(candidate)
                fastest = min(fastest, DispatchTime.now().uptimeNanoseconds - start)
            }
            if best.map({ fastest < $0.nanoseconds }) ?? true { best = (candidate, fastest) }
        } while dnnl_primitive_desc_iterator_next(iterator) == dnnl_success
        guard let chosen = best?.primitive else { throw EngineError("oneDNN offered no max pooling for \(g)") }
        poolings[key] = chosen
        return chosen
    }

    func softmax(rows: Int, length: Int, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) throws {
        if rows == 0 || length == 0 { return }
        lock.lock()
        defer { lock.unlock() }
        let key = [rows, length]
        let primitive = try softmaxes[key] ?? compiledInPlaceShape(key, "a softmax \(key)") { desc, data in
            var softmax = dnnl_softmax_desc_t()
            try DNNLBackend.check(dnnl_softmax_forward_desc_init(&softmax, dnnl_forward_inference, &data, 1), "describing a softmax \(key)")
            return try desc(&softmax)
        }
        if softmaxes[key] == nil { softmaxes[key] = primitive }
        try execute(primitive, [(DNNL_ARG_SRC, primitive.sourceDescriptor, UnsafeMutableRawPointer(mutating: x)),
                                (DNNL_ARG_DST, primitive.destinationDescriptor, UnsafeMutableRawPointer(y))])
    }

    func elementwise(_ function: ElementwiseFunction, count: Int, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) throws {
        if count == 0 { return }
        lock.lock()
        defer { lock.unlock() }
        let key = ElementwiseKey(function: function, count: count)
        let algorithm = switch function {
        case .geluErf: dnnl_eltwise_gelu_erf
        case .geluTanh: dnnl_eltwise_gelu_tanh
        case .logistic: dnnl_eltwise_logistic
        }
        let primitive = try elementwise[key] ?? compiledInPlaceShape([count], "an elementwise \(function)") { desc, data in
            var eltwise = dnnl_eltwise_desc_t()
            try DNNLBackend.check(dnnl_eltwise_forward_desc_init(&eltwise, dnnl_forward_inference, algorithm, &data, 0, 0),
                                  "describing an elementwise \(function)")
            return try desc(&eltwise)
        }
        if elementwise[key] == nil { elementwise[key] = primitive }
        try execute(primitive, [(DNNL_ARG_SRC, primitive.sourceDescriptor, UnsafeMutableRawPointer(mutating: x)),
                                (DNNL_ARG_DST, primitive.destinationDescriptor, UnsafeMutableRawPointer(y))])
    }

    /// A primitive whose source and destination are one plain tensor of `dims`: `describe` fills an operation
    /// descriptor for that memory and turns it into a primitive descriptor through the closure it is given.
    private func compiledInPlaceShape(_ dims: [Int], _ what: String,
                                      _ describe: ((UnsafeRawPointer) throws -> dnnl_primitive_desc_t?, inout dnnl_memory_desc_t) throws -> dnnl_primitive_desc_t?)
        throws -> CompiledPrimitive {
        let primitive = CompiledPrimitive()
        var data = try DNNLBackend.memoryDescriptor(dims, dims.count == 1 ? dnnl_a : dnnl_ab)
        primitive.descriptor = try describe({ desc in
            var result: dnnl_primitive_desc_t?
            try withUserScratchpad { attr in
                try DNNLBackend.check(dnnl_primitive_desc_create(&result, desc, attr, engine, nil), "building \(what)")
            }
            return result
        }, &data)
        try DNNLBackend.check(dnnl_primitive_create(&primitive.primitive, primitive.descriptor), "creating \(what)")
        (primitive.sourceDescriptor, primitive.destinationDescriptor) = (data, data)
        if let scratch = dnnl_primitive_desc_query_md(primitive.descriptor, dnnl_query_scratchpad_md, 0) {
            primitive.scratchpadDescriptor = scratch.pointee
        }
        return primitive
    }

    func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
              beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) throws {
        if m == 0 || n == 0 { return }
        try DNNLBackend.check(dnnl_sgemm(transposeA ? 84 : 78, transposeB ? 84 : 78, dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k),
                                         alpha, a, dnnl_dim_t(lda), b, dnnl_dim_t(ldb), beta, c, dnnl_dim_t(ldc)),
                              "multiplying matrices \(m)x\(k) by \(k)x\(n)")
    }
}
