import Core
import CDNNL
import Foundation

/// Winograd's F(4x4, 3x3) for 3x3 stride-1 convolutions on channel blocks: each 6x6 input tile and 3x3 filter are
/// transformed so that a 4x4 output tile costs 36 multiplies per channel pair instead of 144.
///
/// oneDNN 2.6 has Winograd kernels for AVX-512 only; on AVX2 its direct kernels did ResNet's 3x3 layers 1.7-2.5x slower
/// than transforms here plus 36 batched oneDNN matrix products. The values equal a direct convolution to ~1e-5
/// relative (rounding differs, as in any Winograd kernel); the backward stays the direct one.
///
/// Layouts: input and output `nChw8c`; transformed input `V[36][tiles][C]`, filters `U[36][C][K]`, products
/// `M[36][tiles][K]`, with tiles numbered image by image, row by row.
enum Winograd {
    /// Whether `CAMVID_ENGINE_WINOGRAD=off` turned these kernels off (to compare with oneDNN's direct ones).
    static let disabled = ProcessInfo.processInfo.environment["CAMVID_ENGINE_WINOGRAD"] == "off"

    /// Whether a forward convolution of geometry `g` stored in `orders` runs here: 3x3, stride 1, dilation 1, pads 1,
    /// one group, whole channel blocks, and an output of at least 14x14 (smaller ones waste too much of their 4x4 tiles
    /// and the products get too thin to beat oneDNN's direct kernel: 7x7 measured slower).
    static func applies(_ g: WindowGeometry, orders: ConvolutionOrders) -> Bool {
        !disabled && orders.input == .channelBlocks8 && orders.output == .channelBlocks8 && g.groups == 1
            && g.kernel == [3, 3] && g.strides == [1, 1] && g.dilations == [1, 1] && g.padsBegin == [1, 1] && g.padsEnd == [1, 1]
            && g.input[1] % 8 == 0 && g.output[1] % 8 == 0 && g.output[2] >= 14 && g.output[3] >= 14
    }

    /// Tiles per image along height and width.
    static func tiles(_ g: WindowGeometry) -> (rows: Int, columns: Int) { ((g.output[2] + 3) / 4, (g.output[3] + 3) / 4) }

    /// `U = G g Gᵀ` for every filter pair, from ONNX weights `[K, C, 3, 3]`, written into `u` as `[36][C][K]`.
    static func filters(_ w: Tensor, into u: UnsafeMutablePointer<Float>) {
        let (k, c) = (w.shape[0], w.shape[1])
        // G (6x3) by columns: lane a of column t is G[a][t].
        let (g0, g1, g2) = (SIMD8<Double>(1.0 / 4, -1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 24, 0, 0, 0),
                            SIMD8<Double>(0, -1.0 / 6, 1.0 / 6, 1.0 / 12, -1.0 / 12, 0, 0, 0),
                            SIMD8<Double>(0, -1.0 / 6, -1.0 / 6, 1.0 / 6, 1.0 / 6, 1, 0, 0))
        /// Lane a: G[a][0] x0 + G[a][1] x1 + G[a][2] x2, in double precision, summed from zero in that order.
        func combined(_ x0: Double, _ x1: Double, _ x2: Double) -> SIMD8<Double> { SIMD8<Double>.zero + g0 * x0 + g1 * x1 + g2 * x2 }
        w.storage.withUnsafeBufferPointer { weights in
            // Input channels shared over the team; output filters innermost, so that each of the 36 rows of `u` is
            // written in order.
            OpenMPTeam.forEach(c) { i in
                for o in 0..<k {
                    let g = weights.baseAddress! + (o * c + i) * 9
                    // Column j of G g.
                    let (gg0, gg1, gg2) = (combined(Double(g[0]), Double(g[3]), Double(g[6])),
                                           combined(Double(g[1]), Double(g[4]), Double(g[7])),
                                           combined(Double(g[2]), Double(g[5]), Double(g[8])))
                    for a in 0..<6 {
                        // Row a of (G g) Gᵀ.
                        let row = combined(gg0[a], gg1[a], gg2[a])
                        for b in 0..<6 { u[((a * 6 + b) * c + i) * k + o] = Float(row[b]) }
                    }
                }
            }
        }
    }

    /// `Bᵀ d` along one axis of six vectors (stride `ps` in, `qs` out).
    @inline(__always)
    private static func inputAxis(_ p: UnsafePointer<SIMD8<Float>>, _ ps: Int, _ q: UnsafeMutablePointer<SIMD8<Float>>, _ qs: Int) {
        let (d0, d1, d2, d3, d4, d5) = (p[0], p[ps], p[2 * ps], p[3 * ps], p[4 * ps], p[5 * ps])
        q[0] = 4 * d0 - 5 * d2 + d4
        q[qs] = d3 + d4 - 4 * (d1 + d2)
        q[2 * qs] = d4 - d3 + 4 * (d1 - d2)
        q[3 * qs] = d4 - d2 + 2 * (d3 - d1)
        q[4 * qs] = d4 - d2 - 2 * (d3 - d1)
        q[5 * qs] = 4 * d1 - 5 * d3 + d5
    }

    /// `Aᵀ m` along one axis of six vectors (stride `ps` in, `qs` out; four results).
    @inline(__always)
    private static func outputAxis(_ p: UnsafePointer<SIMD8<Float>>, _ ps: Int, _ q: UnsafeMutablePointer<SIMD8<Float>>, _ qs: Int) {
        let (m0, m1, m2, m3, m4, m5) = (p[0], p[ps], p[2 * ps], p[3 * ps], p[4 * ps], p[5 * ps])
        let (sum12, difference12, sum34, difference34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4)
        q[0] = m0 + sum12 + sum34
        q[qs] = difference12 + 2 * difference34
        q[2 * qs] = sum12 + 4 * sum34
        q[3 * qs] = difference12 + 8 * difference34 + m5
    }

    /// `V = Bᵀ d B` for every 6x6 tile (zero outside the image: the pads) of `x` (`nChw8c`, geometry `g`).
    static func transformInput(_ x: UnsafePointer<Float>, _ g: WindowGeometry, into v: UnsafeMutablePointer<Float>) {
        let (n, c, h, w) = (g.input[0], g.input[1], g.input[2], g.input[3])
        let (rows, columns) = tiles(g)
        let tileCount = n * rows * columns, blocks = c / 8
        OpenMPTeam.forEach(n * blocks * rows) { job in
            let (image, block, row) = (job / (blocks * rows), job / rows % blocks, job % rows)
            withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: 72) { scratch in
                let d = scratch.baseAddress!, t = d + 36
                let plane = UnsafeRawPointer(x + (image * blocks + block) * h * w * 8)
                for column in 0..<columns {
                    for i in 0..<6 {
                        let y = 4 * row - 1 + i
                        for j in 0..<6 {
                            let xx = 4 * column - 1 + j
                            d[i * 6 + j] = y >= 0 && y < h && xx >= 0 && xx < w
                                ? plane.loadUnaligned(fromByteOffset: (y * w + xx) * 32, as: SIMD8<Float>.self) : .zero
                        }
                    }
                    for j in 0..<6 { inputAxis(d + j, 6, t + j, 6) }
                    for i in 0..<6 { inputAxis(t + i * 6, 1, d + i * 6, 1) }
                    let tile = (image * rows + row) * columns + column
                    let out = UnsafeMutableRawPointer(v + tile * c + block * 8)
                    for e in 0..<36 { out.storeBytes(of: d[e], toByteOffset: e * tileCount * c * 4, as: SIMD8<Float>.self) }
                }
            }
        }
    }

    /// `y = activation(Aᵀ M A + bias + addend)` into `y` (`nChw8c`, geometry `g`); `addend` in the same layout.
    static func transformOutput(_ m: UnsafePointer<Float>, _ g: WindowGeometry, bias: UnsafePointer<Float>?,
                                addend: UnsafePointer<Float>?, activation: FusedActivation, into y: UnsafeMutablePointer<Float>) {
        let (n, k, h, w) = (g.output[0], g.output[1], g.output[2], g.output[3])
        let (rows, columns) = tiles(g)
        let tileCount = n * rows * columns, blocks = k / 8
        let (lo, hi): (Float, Float) = {
            switch activation {
            case .none: return (-.infinity, .infinity)
            case .relu: return (0, .infinity)
            case .clip(let lo, let hi): return (lo, hi)
            }
        }()
        OpenMPTeam.forEach(n * blocks * rows) { job in
            let (image, block, row) = (job / (blocks * rows), job / rows % blocks, job % rows)
            let b = bias.map { UnsafeRawPointer($0).loadUnaligned(fromByteOffset: block * 32, as: SIMD8<Float>.self) } ?? .zero
            let (low, high) = (SIMD8<Float>(repeating: lo), SIMD8<Float>(repeating: hi))
            withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: 36 + 24 + 16) { scratch in
                let s = scratch.baseAddress!, t = s + 36, o = t + 24
                let planeOffset = (image * blocks + block) * h * w * 8
                for column in 0..<columns {
                    let tile = (image * rows + row) * columns + column
                    let source = UnsafeRawPointer(m + tile * k + block * 8)
                    for e in 0..<36 { s[e] = source.loadUnaligned(fromByteOffset: e * tileCount * k * 4, as: SIMD8<Float>.self) }
                    for j in 0..<6 { outputAxis(s + j, 6, t + j, 6) }
                    for i in 0..<4 { outputAxis(t + i * 6, 1, o + i * 4, 1) }
                    for i in 0..<min(4, h - 4 * row) {
                        for j in 0..<min(4, w - 4 * column) {
                            let offset = planeOffset + ((4 * row + i) * w + 4 * column + j) * 8
                            var value = o[i * 4 + j] + b
                            if let addend { value += UnsafeRawPointer(addend + offset).loadUnaligned(as: SIMD8<Float>.self) }
                            // oneDNN's order: bias, then the sum post-op, then the activation (clip: max, then min).
                            value.replace(with: low, where: value .< low)
                            value.replace(with: high, where: value .> high)
                            UnsafeMutableRawPointer(y + offset).storeBytes(of: value, as: SIMD8<Float>.self)
                        }
                    }
                }
            }
        }
    }
}

/// The OpenMP thread team oneDNN runs on, for our own loops: the same threads, so none competes with another pool.
enum OpenMPTeam {
    /// Runs `body(job)` for every job in `0..<count`, the jobs split in contiguous shares over the team.
    ///
    /// `body` runs concurrently on several threads: it must only write what its own jobs own.
    static func forEach(_ count: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var loop = Loop(count: count, body: body)
            withUnsafeMutablePointer(to: &loop) { pointer in
                GOMP_parallel({ raw in
                    let loop = raw!.assumingMemoryBound(to: Loop.self).pointee
                    let (part, parts) = (Int(omp_get_thread_num()), Int(omp_get_num_threads()))
                    for job in (loop.count * part / parts)..<(loop.count * (part + 1) / parts) { loop.body(job) }
                }, pointer, 0, 0)
            }
        }
    }

    private struct Loop {
        let count: Int
        let body: (Int) -> Void
    }
}
