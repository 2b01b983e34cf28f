import Core

/// The projection of feature maps on their first principal component (Eigen-CAM, pytorch-grad-cam's
/// `get_2d_projection`): rows = spatial positions, columns = channels, each column mean-centred.
///
/// The top eigenvector is found without LAPACK and deterministically: the Gram matrix of the smaller
/// side is squared (and rescaled) until it is rank one, its largest column read off, then polished
/// by power iteration, all in Double.
///
/// Sign rule: an SVD vector's sign is arbitrary and pytorch-grad-cam leaves LAPACK's in place, which
/// no simple rule reproduces (checked on the 48 reference maps). Here the projection is negated when
/// `|min| > |max|`, so its strongest response is positive (Seg-Eigen-CAM, Eq. 13; pytorch-grad-cam's
/// `get_2d_projection_with_sign_correction`).
public enum PrincipalProjection {
    /// The signed projection `[h,w]` of `maps` `[C,h,w]` on their first principal component.
    public static func project(_ maps: Tensor) -> Tensor {
        let (positions, shape) = spatialLayout(maps)
        let channels = maps.shape[0]
        // Centre each channel over the positions (NaN counts as 0, as upstream).
        var x = [Double](repeating: 0, count: positions * channels)
        for c in 0..<channels {
            var mean = 0.0
            for p in 0..<positions {
                let value = Double(maps.storage[c * positions + p])
                let clean = value.isNaN ? 0 : value
                x[p * channels + c] = clean
                mean += clean
            }
            mean /= Double(max(positions, 1))
            for p in 0..<positions { x[p * channels + c] -= mean }
        }
        var projection = [Double](repeating: 0, count: positions)
        if channels <= positions {
            // v = top eigenvector of XᵀX (channels × channels); projection = X v.
            let v = topEigenvector(gram(x, rows: positions, columns: channels, transposeFirst: true), size: channels)
            for p in 0..<positions {
                var sum = 0.0
                for c in 0..<channels { sum += x[p * channels + c] * v[c] }
                projection[p] = sum
            }
        } else {
            // u = top eigenvector of XXᵀ (positions × positions); projection = X v = σ u.
            let g = gram(x, rows: positions, columns: channels, transposeFirst: false)
            let u = topEigenvector(g, size: positions)
            let lambda = rayleigh(g, u, size: positions)
            let sigma = lambda > 0 ? lambda.squareRoot() : 0
            for p in 0..<positions { projection[p] = sigma * u[p] }
        }
        let low = projection.min() ?? 0, high = projection.max() ?? 0
        let sign: Double = abs(low) > abs(high) ? -1 : 1
        return Tensor(shape: shape, storage: projection.map { Float(sign * $0) })
    }

    private static func spatialLayout(_ maps: Tensor) -> (Int, [Int]) {
        let shape = Array(maps.shape.dropFirst())
        return (Tensor.elementCount(shape), shape)
    }

    /// XᵀX (`transposeFirst`) or XXᵀ of the row-major `rows × columns` matrix X.
    private static func gram(_ x: [Double], rows: Int, columns: Int, transposeFirst: Bool) -> [Double] {
        if transposeFirst {
            var g = [Double](repeating: 0, count: columns * columns)
            for r in 0..<rows {
                let base = r * columns
                for i in 0..<columns {
                    let xi = x[base + i]
                    if xi == 0 { continue }
                    for j in i..<columns { g[i * columns + j] += xi * x[base + j] }
                }
            }
            symmetrise(&g, size: columns)
            return g
        }
        var g = [Double](repeating: 0, count: rows * rows)
        x.withUnsafeBufferPointer { x in
            for i in 0..<rows {
                for j in i..<rows {
                    var sum = 0.0
                    for c in 0..<columns { sum += x[i * columns + c] * x[j * columns + c] }
                    g[i * rows + j] = sum
                }
            }
        }
        symmetrise(&g, size: rows)
        return g
    }

    private static func symmetrise(_ g: inout [Double], size: Int) {
        for i in 0..<size {
            for j in 0..<i { g[i * size + j] = g[j * size + i] }
        }
    }

    private static func rayleigh(_ g: [Double], _ v: [Double], size: Int) -> Double {
        var result = 0.0
        for i in 0..<size {
            var row = 0.0
            for j in 0..<size { row += g[i * size + j] * v[j] }
            result += v[i] * row
        }
        return result
    }

    /// The unit eigenvector of the largest eigenvalue of the symmetric positive semi-definite `g`.
    static func topEigenvector(_ g: [Double], size: Int) -> [Double] {
        let trace = (0..<size).reduce(0.0) { $0 + g[$1 * size + $1] }
        guard trace > 0 else { return [Double](repeating: 0, count: size) }
        // M = (G / tr G)^(2^k): each squaring squares the eigenvalue ratios, so M tends to v vᵀ.
        var m = g.map { $0 / trace }
        var squared = [Double](repeating: 0, count: size * size)
        for _ in 0..<64 {
            let frobenius = m.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
            // For a trace-one PSD matrix ‖M‖_F ≤ 1, with equality exactly when M has rank one.
            if frobenius > 1 - 1e-13 { break }
            m.withUnsafeBufferPointer { m in
                squared.withUnsafeMutableBufferPointer { squared in
                    for i in 0..<size {
                        for k in 0..<size {
                            let a = m[i * size + k]
                            if a == 0 { continue }
                            for j in 0..<size { squared[i * size + j] += a * m[k * size + j] }
                        }
                    }
                }
            }
            let t = (0..<size).reduce(0.0) { $0 + squared[$1 * size + $1] }
            guard t > 0 else { break }
            for i in m.indices { m[i] = squared[i] / t; squared[i] = 0 }
        }
        // Column j of v vᵀ is v·v_j; the largest diagonal picks the best-conditioned column.
        let best = (0..<size).max { m[$0 * size + $0] < m[$1 * size + $1] } ?? 0
        var v = (0..<size).map { m[$0 * size + best] }
        normalise(&v)
        // Polish with plain power iteration on G.
        for _ in 0..<4 {
            var next = [Double](repeating: 0, count: size)
            for i in 0..<size {
                var sum = 0.0
                for j in 0..<size { sum += g[i * size + j] * v[j] }
                next[i] = sum
            }
            normalise(&next)
            if next.allSatisfy({ $0 == 0 }) { break }
            v = next
        }
        return v
    }

    private static func normalise(_ v: inout [Double]) {
        let norm = v.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
        if norm > 0 { for i in v.indices { v[i] /= norm } }
    }
}
