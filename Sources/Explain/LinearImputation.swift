import Core
import Foundation

/// ROAD's noisy linear imputation (Rong et al. 2022; pytorch-grad-cam's `NoisyLinearImputer`): every removed pixel
/// becomes the weighted mean of its 8 neighbours inside the picture (1/6 for the four sides, 1/12 for the four
/// diagonals, each row's weights those of its neighbours in the picture), kept neighbours at their values, removed
/// ones at their own imputed values: one sparse linear system for all removed pixels and every channel, solved
/// exactly (`NeighbourMeanSystem`), then Gaussian noise of standard deviation `noise` on each imputed value.
public enum NoisyLinearImputation {
    /// The 8 neighbours as (row offset, column offset, weight), in pytorch-grad-cam's order.
    static let neighbours: [(dy: Int, dx: Int, weight: Double)] = [
        (1, 1, 1.0 / 12), (0, 1, 1.0 / 6), (-1, 1, 1.0 / 12), (1, -1, 1.0 / 12),
        (0, -1, 1.0 / 6), (-1, -1, 1.0 / 12), (1, 0, 1.0 / 6), (-1, 0, 1.0 / 6),
    ]

    /// `image` `[C,H,W]` with every pixel where `removed` (`H·W`, row by row) is true imputed. With every pixel
    /// removed there is nothing to interpolate from and the values are 0 (what pytorch-grad-cam's solver returns
    /// for that singular system), plus the noise. `generator` draws the noise (unused when `noise` is 0).
    public static func impute(_ image: Tensor, removed: [Bool], noise: Float, generator: inout GaussianNoise) -> Tensor {
        precondition(image.rank == 3 && removed.count == image.shape[1] * image.shape[2], "imputation of \(image.shape) by \(removed.count) flags")
        let (channels, height, width) = (image.shape[0], image.shape[1], image.shape[2])
        let plane = height * width
        let system = NeighbourMeanSystem(width: width, height: height, unknown: removed)
        guard system.unknownCount > 0 else { return image }
        var result = image.storage
        if system.unknownCount < plane {
            var rhs = system.rightHandSide(image.storage, channels: channels)
            system.solve(&rhs, channels: channels)
            for pixel in 0..<plane {
                let position = Int(system.position[pixel])
                guard position >= 0 else { continue }
                for c in 0..<channels { result[c * plane + pixel] = Float(rhs[position * channels + c]) }
            }
        } else {
            for i in result.indices { result[i] = 0 }
        }
        if noise != 0 {
            // pytorch-grad-cam draws one value per channel and imputed pixel, channel by channel, pixels in order.
            for c in 0..<channels {
                for pixel in 0..<plane where removed[pixel] {
                    result[c * plane + pixel] += noise * generator.next()
                }
            }
        }
        return Tensor(shape: image.shape, storage: result)
    }
}

/// Standard normal values from a seed: SplitMix64 and the Box-Muller transform, the same sequence on every platform.
public struct GaussianNoise: Sendable {
    private var state: UInt64
    private var spare: Float?

    /// A generator started from `seed`; each `stream` of one seed draws its own sequence.
    public init(seed: UInt64, stream: UInt64 = 0) {
        state = seed ^ (stream &* 0xD1B5_4A32_D192_ED03)
    }

    private mutating func nextWord() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The next standard normal value.
    public mutating func next() -> Float {
        if let spare {
            self.spare = nil
            return spare
        }
        // 53 random bits in (0, 1]: the logarithm stays finite.
        let u1 = (Double(nextWord() >> 11) + 1) / 9_007_199_254_740_992
        let u2 = Double(nextWord() >> 11) / 9_007_199_254_740_992
        let radius = (-2 * log(u1)).squareRoot(), angle = 2 * Double.pi * u2
        spare = Float(radius * sin(angle))
        return Float(radius * cos(angle))
    }
}

/// The linear system of `NoisyLinearImputation` for one set of unknown pixels, factored once by sparse Cholesky.
///
/// Row `p` of the (negated) system: `s_p x_p - Σ w_q x_q = Σ w_q v_q`, `s_p` the sum of the weights of p's
/// neighbours inside the picture, the left sum over unknown neighbours, the right one over known neighbours' values.
/// The matrix is symmetric, and positive definite whenever one pixel is known: every connected group of unknown
/// pixels then touches a known one. It is factored by nested dissection on the pixel grid: a box is split by its
/// middle row or column (one pixel wide, which separates 8-neighbours), each half recursively, and the separator
/// eliminated last; each step is a dense partial Cholesky of a frontal matrix (the multifrontal method). For a
/// 224x224 picture that is about 1e8 multiply-adds where a band solver needs 2e9.
struct NeighbourMeanSystem {
    let width: Int
    let height: Int
    /// Per pixel, its place in the elimination order, or -1 for a known pixel.
    private(set) var position: [Int32]
    /// The number of unknown pixels.
    private(set) var unknownCount = 0
    /// Per unknown position, its pixel.
    private var pixelAt: [Int32] = []
    /// The fronts, children before parents.
    private var fronts: [Front] = []

    /// One node of the dissection: the unknowns it eliminates (positions `start ..< start + count`) and the later
    /// ones they couple to.
    private struct Front {
        var start: Int
        var count: Int
        var children: Int
        /// Later positions coupled to this front's unknowns, ascending.
        var update: [Int32]
        /// The factor's columns for this front's unknowns: `(count + update.count) x count`, column-major.
        var factor: [Double] = []
    }

    /// Below this many pixels a box is eliminated as one dense front.
    private static let leafArea = 32

    /// Orders and factors the system whose unknowns are the pixels where `unknown` (row by row) is true.
    /// With no known pixel the system is singular and is not factored (`solve` is then not to be called).
    init(width: Int, height: Int, unknown: [Bool]) {
        self.width = width
        self.height = height
        position = [Int32](repeating: -1, count: width * height)
        // Unknown counts over boxes in O(1): a summed-area table.
        var sums = [Int32](repeating: 0, count: (width + 1) * (height + 1))
        for y in 0..<height {
            var row: Int32 = 0
            for x in 0..<width {
                if unknown[y * width + x] { row += 1 }
                sums[(y + 1) * (width + 1) + x + 1] = sums[y * (width + 1) + x + 1] + row
            }
        }
        let total = Int(sums[(width + 1) * (height + 1) - 1])
        unknownCount = total
        guard total > 0, total < width * height else { return }
        pixelAt.reserveCapacity(total)
        dissect(y0: 0, y1: height, x0: 0, x1: width, unknown: unknown, sums: sums)
        symbolic()
        factor()
    }

    private func count(_ sums: [Int32], _ y0: Int, _ y1: Int, _ x0: Int, _ x1: Int) -> Int {
        let w = width + 1
        return Int(sums[y1 * w + x1] - sums[y0 * w + x1] - sums[y1 * w + x0] + sums[y0 * w + x0])
    }

    /// Numbers the unknowns of the box `[y0, y1) x [x0, x1)` children first and appends its fronts; returns
    /// whether it made one (a box without unknowns makes none).
    @discardableResult
    private mutating func dissect(y0: Int, y1: Int, x0: Int, x1: Int, unknown: [Bool], sums: [Int32]) -> Bool {
        guard y1 > y0, x1 > x0, count(sums, y0, y1, x0, x1) > 0 else { return false }
        var children = 0
        var cells: [(Int, Int)] = []
        if (y1 - y0) * (x1 - x0) <= Self.leafArea {
            for y in y0..<y1 { for x in x0..<x1 { cells.append((y, x)) } }
        } else if y1 - y0 >= x1 - x0 {
            let middle = (y0 + y1) / 2
            if dissect(y0: y0, y1: middle, x0: x0, x1: x1, unknown: unknown, sums: sums) { children += 1 }
            if dissect(y0: middle + 1, y1: y1, x0: x0, x1: x1, unknown: unknown, sums: sums) { children += 1 }
            for x in x0..<x1 { cells.append((middle, x)) }
        } else {
            let middle = (x0 + x1) / 2
            if dissect(y0: y0, y1: y1, x0: x0, x1: middle, unknown: unknown, sums: sums) { children += 1 }
            if dissect(y0: y0, y1: y1, x0: middle + 1, x1: x1, unknown: unknown, sums: sums) { children += 1 }
            for y in y0..<y1 { cells.append((y, middle)) }
        }
        let start = pixelAt.count
        for (y, x) in cells where unknown[y * width + x] {
            position[y * width + x] = Int32(pixelAt.count)
            pixelAt.append(Int32(y * width + x))
        }
        fronts.append(Front(start: start, count: pixelAt.count - start, children: children, update: []))
        return true
    }

    /// Each front's update positions: its children's and its own unknowns' later neighbours, less its own unknowns.
    private mutating func symbolic() {
        var stack: [[Int32]] = []
        for f in fronts.indices {
            let start = fronts[f].start, end = start + fronts[f].count
            var later: [Int32] = []
            for p in start..<end {
                let pixel = Int(pixelAt[p]), y = pixel / width, x = pixel % width
                for n in NoisyLinearImputation.neighbours {
                    let ny = y + n.dy, nx = x + n.dx
                    guard ny >= 0, ny < height, nx >= 0, nx < width else { continue }
                    let q = position[ny * width + nx]
                    if q >= end { later.append(q) }
                }
            }
            for _ in 0..<fronts[f].children { later += stack.removeLast().filter { $0 >= end } }
            later.sort()
            var unique: [Int32] = []
            unique.reserveCapacity(later.count)
            for q in later where unique.last != q { unique.append(q) }
            fronts[f].update = unique
            stack.append(unique)
        }
    }

    /// The diagonal of row `pixel`: the weights of its neighbours inside the picture.
    private func diagonal(_ pixel: Int) -> Double {
        let y = pixel / width, x = pixel % width
        var sum = 0.0
        for n in NoisyLinearImputation.neighbours {
            let ny = y + n.dy, nx = x + n.dx
            if ny >= 0, ny < height, nx >= 0, nx < width { sum += n.weight }
        }
        return sum
    }

    /// The multifrontal factorisation: per front, assemble the matrix's own entries and the children's update
    /// matrices, eliminate the front's unknowns, pass the Schur complement up.
    private mutating func factor() {
        var local = [Int32](repeating: -1, count: unknownCount)
        var updates: [(indices: [Int32], values: [Double])] = []
        var frontal: [Double] = []
        for f in fronts.indices {
            let own = fronts[f].count, start = fronts[f].start, update = fronts[f].update
            let size = own + update.count
            frontal.removeAll(keepingCapacity: true)
            frontal.append(contentsOf: repeatElement(0, count: size * size))
            for j in 0..<own { local[start + j] = Int32(j) }
            for (i, q) in update.enumerated() { local[Int(q)] = Int32(own + i) }
            frontal.withUnsafeMutableBufferPointer { front in
                // The matrix's own entries of this front's columns, lower triangle.
                for j in 0..<own {
                    let pixel = Int(pixelAt[start + j]), y = pixel / width, x = pixel % width
                    front[j * size + j] += diagonal(pixel)
                    for n in NoisyLinearImputation.neighbours {
                        let ny = y + n.dy, nx = x + n.dx
                        guard ny >= 0, ny < height, nx >= 0, nx < width else { continue }
                        let q = Int(position[ny * width + nx])
                        if q > start + j { front[j * size + Int(local[q])] -= n.weight }
                    }
                }
                // The children's Schur complements, added in (indices ascending keep the lower triangle lower).
                for _ in 0..<fronts[f].children {
                    let child = updates.removeLast()
                    let m = child.indices.count
                    child.values.withUnsafeBufferPointer { values in
                        for b in 0..<m {
                            let column = Int(local[Int(child.indices[b])]) * size
                            for a in b..<m { front[column + Int(local[Int(child.indices[a])])] += values[b * m + a] }
                        }
                    }
                }
                if let base = front.baseAddress { Self.eliminate(base, size: size, count: own) }
            }
            // The factor's columns are the front's first `own` columns (their upper part unused), contiguous.
            fronts[f].factor = Array(frontal[0..<(own * size)])
            let m = update.count
            var schur = [Double](repeating: 0, count: m * m)
            schur.withUnsafeMutableBufferPointer { target in
                frontal.withUnsafeBufferPointer { source in
                    for b in 0..<m {
                        let from = source.baseAddress! + (own + b) * size + own, to = target.baseAddress! + b * m
                        to.update(from: from, count: m)
                    }
                }
            }
            updates.append((update, schur))
        }
    }

    /// Partial Cholesky of the column-major `size x size` lower triangle `front`: its first `count` columns become
    /// the factor's, the trailing block their Schur complement. Blocked by four columns, so that nearly all the
    /// work is rank-4 updates (`subtractRank4`), which load each value once for several multiply-adds.
    private static func eliminate(_ front: UnsafeMutablePointer<Double>, size: Int, count: Int) {
        var block = 0
        while block < count {
            let width = min(4, count - block)
            for j in block..<(block + width) {
                let column = front + j * size
                // The block's earlier columns, then the pivot.
                for p in block..<j {
                    let source = front + p * size, scale = source[j]
                    if scale != 0 { for i in j..<size { column[i] -= scale * source[i] } }
                }
                let pivot = column[j].squareRoot()
                column[j] = pivot
                let inverse = 1 / pivot
                for i in (j + 1)..<size { column[i] *= inverse }
            }
            let later = block + width
            if width == 4 {
                subtractRank4(front, size: size, sources: block, from: later)
            } else {
                for k in later..<size {
                    let target = front + k * size
                    for p in block..<later {
                        let source = front + p * size, scale = source[k]
                        if scale != 0 { for i in k..<size { target[i] -= scale * source[i] } }
                    }
                }
            }
            block = later
        }
    }

    /// `F[i,k] -= Σ_p F[i,p] F[k,p]` over the four columns p from `sources`, for every column k from `from` and row
    /// i from k: two target columns at a time, so each source value loaded serves eight multiply-adds.
    private static func subtractRank4(_ front: UnsafeMutablePointer<Double>, size: Int, sources: Int, from: Int) {
        let a0 = front + sources * size, a1 = a0 + size, a2 = a1 + size, a3 = a2 + size
        var k = from
        while k < size {
            let t0 = front + k * size
            let s00 = a0[k], s10 = a1[k], s20 = a2[k], s30 = a3[k]
            guard k + 1 < size else {
                t0[k] -= s00 * a0[k] + s10 * a1[k] + s20 * a2[k] + s30 * a3[k]
                break
            }
            let t1 = t0 + size
            let s01 = a0[k + 1], s11 = a1[k + 1], s21 = a2[k + 1], s31 = a3[k + 1]
            t0[k] -= s00 * a0[k] + s10 * a1[k] + s20 * a2[k] + s30 * a3[k]
            if s00 != 0 || s10 != 0 || s20 != 0 || s30 != 0 || s01 != 0 || s11 != 0 || s21 != 0 || s31 != 0 {
                for i in (k + 1)..<size {
                    let x0 = a0[i], x1 = a1[i], x2 = a2[i], x3 = a3[i]
                    t0[i] -= s00 * x0 + s10 * x1 + s20 * x2 + s30 * x3
                    t1[i] -= s01 * x0 + s11 * x1 + s21 * x2 + s31 * x3
                }
            }
            k += 2
        }
    }

    /// The right-hand side for `image` `[C,H,W]` (row-major storage): per unknown position, per channel, the
    /// weighted sum of its known neighbours' values.
    func rightHandSide(_ image: [Float], channels: Int) -> [Double] {
        let plane = width * height
        var rhs = [Double](repeating: 0, count: unknownCount * channels)
        for p in 0..<unknownCount {
            let pixel = Int(pixelAt[p]), y = pixel / width, x = pixel % width
            for n in NoisyLinearImputation.neighbours {
                let ny = y + n.dy, nx = x + n.dx
                guard ny >= 0, ny < height, nx >= 0, nx < width, position[ny * width + nx] < 0 else { continue }
                for c in 0..<channels { rhs[p * channels + c] += n.weight * Double(image[c * plane + ny * width + nx]) }
            }
        }
        return rhs
    }

    /// Solves in place for `channels` right-hand sides stored per position (`rhs[position * channels + c]`).
    /// Each front gathers its rows into a dense scratch vector per channel, works on contiguous columns, and scatters
    /// the rows back.
    func solve(_ rhs: inout [Double], channels: Int) {
        let largest = fronts.map { $0.count + $0.update.count }.max() ?? 0
        var scratch = [Double](repeating: 0, count: largest * channels)
        rhs.withUnsafeMutableBufferPointer { b in
            scratch.withUnsafeMutableBufferPointer { y in
                // Forward: L y = b, fronts in elimination order.
                for front in fronts {
                    let own = front.count, size = own + front.update.count
                    Self.gather(front, from: b, into: y, channels: channels, stride: size)
                    front.factor.withUnsafeBufferPointer { l in
                        for c in 0..<channels {
                            let v = y.baseAddress! + c * size
                            for j in 0..<own {
                                let column = l.baseAddress! + j * size
                                let value = v[j] / column[j]
                                v[j] = value
                                if value != 0 { for i in (j + 1)..<size { v[i] -= column[i] * value } }
                            }
                        }
                    }
                    Self.scatter(front, from: y, into: b, channels: channels, stride: size, ownOnly: false)
                }
                // Backward: Lᵀ x = y, fronts in reverse; the update rows already hold their solution.
                for front in fronts.reversed() {
                    let own = front.count, size = own + front.update.count
                    Self.gather(front, from: b, into: y, channels: channels, stride: size)
                    front.factor.withUnsafeBufferPointer { l in
                        for c in 0..<channels {
                            let v = y.baseAddress! + c * size
                            for j in stride(from: own - 1, through: 0, by: -1) {
                                let column = l.baseAddress! + j * size
                                var sum = v[j]
                                for i in (j + 1)..<size { sum -= column[i] * v[i] }
                                v[j] = sum / column[j]
                            }
                        }
                    }
                    Self.scatter(front, from: y, into: b, channels: channels, stride: size, ownOnly: true)
                }
            }
        }
    }

    /// Copies a front's rows (its own positions, then its update positions) from `b` into `y`, channel `c` at
    /// `y[c * stride ...]`.
    private static func gather(_ front: Front, from b: UnsafeMutableBufferPointer<Double>, into y: UnsafeMutableBufferPointer<Double>,
                               channels: Int, stride: Int) {
        for j in 0..<front.count {
            for c in 0..<channels { y[c * stride + j] = b[(front.start + j) * channels + c] }
        }
        for (u, q) in zip(front.count..., front.update) {
            for c in 0..<channels { y[c * stride + u] = b[Int(q) * channels + c] }
        }
    }

    /// Copies a front's rows back from `y` into `b` (only its own with `ownOnly`).
    private static func scatter(_ front: Front, from y: UnsafeMutableBufferPointer<Double>, into b: UnsafeMutableBufferPointer<Double>,
                                channels: Int, stride: Int, ownOnly: Bool) {
        for j in 0..<front.count {
            for c in 0..<channels { b[(front.start + j) * channels + c] = y[c * stride + j] }
        }
        guard !ownOnly else { return }
        for (u, q) in zip(front.count..., front.update) {
            for c in 0..<channels { b[Int(q) * channels + c] = y[c * stride + u] }
        }
    }
}
