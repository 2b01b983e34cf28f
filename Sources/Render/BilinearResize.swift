/// Bilinear resampling of a one-channel float map, bit-for-bit the arithmetic of OpenCV's
/// `cv2.resize(map, (toWidth, toHeight), interpolation=cv2.INTER_LINEAR)` on float32:
/// half-pixel centres, edge clamping, a horizontal pass then a vertical pass.
public enum BilinearResize {
    /// `map` (`width * height` values, row-major) resampled to `toWidth x toHeight`.
    ///
    /// Like OpenCV, an exact 2x reduction in both directions averages 2x2 blocks (OpenCV turns
    /// that case into INTER_AREA).
    public static func resize(
        _ map: [Float], width: Int, height: Int, toWidth: Int, toHeight: Int
    ) throws(RenderError) -> [Float] {
        try RenderError.checkMap(count: map.count, width: width, height: height)
        guard toWidth > 0, toHeight > 0 else { throw .emptySize(width: toWidth, height: toHeight) }
        if width == 2 * toWidth && height == 2 * toHeight {
            return halve(map, width: width, toWidth: toWidth, toHeight: toHeight)
        }
        let plan = ResamplingPlan(width: width, height: height, toWidth: toWidth, toHeight: toHeight)
        let rows = plan.horizontalPass(map)
        var out = [Float](repeating: 0, count: toWidth * toHeight)
        out.withUnsafeMutableBufferPointer { out in
            rows.withUnsafeBufferPointer { rows in
                for y in 0..<toHeight {
                    let first = rows.baseAddress! + plan.row0[y] * toWidth
                    let second = rows.baseAddress! + plan.row1[y] * toWidth
                    let w0 = plan.rowWeight0[y], w1 = plan.rowWeight1[y]
                    let line = out.baseAddress! + y * toWidth
                    for x in 0..<toWidth {
                        line[x] = first[x] * w0 + second[x] * w1
                    }
                }
            }
        }
        return out
    }

    /// The mean of each 2x2 block, summed in OpenCV's order (rows pairwise, then together).
    static func halve(_ map: [Float], width: Int, toWidth: Int, toHeight: Int) -> [Float] {
        var out = [Float](repeating: 0, count: toWidth * toHeight)
        for y in 0..<toHeight {
            for x in 0..<toWidth {
                let i = 2 * y * width + 2 * x
                out[y * toWidth + x] = ((map[i] + map[i + 1]) + (map[i + width] + map[i + width + 1])) * 0.25
            }
        }
        return out
    }
}

/// Per-column and per-row source indices and weights of an INTER_LINEAR resize, computed once
/// per size pair so the per-pixel work is two multiply-adds.
struct ResamplingPlan: Sendable {
    /// Destination size.
    let toWidth: Int, toHeight: Int
    /// Source size.
    let width: Int, height: Int
    /// For each destination column: the two source columns and their weights (edge-clamped as
    /// OpenCV does: beyond an edge the weight of the inner neighbour is exactly 0).
    let column0: [Int], column1: [Int], columnWeight0: [Float], columnWeight1: [Float]
    /// For each destination row: the two source rows (clamped) and their unclamped weights,
    /// which is how OpenCV's vertical pass treats the edges.
    let row0: [Int], row1: [Int], rowWeight0: [Float], rowWeight1: [Float]

    init(width: Int, height: Int, toWidth: Int, toHeight: Int) {
        self.width = width
        self.height = height
        self.toWidth = toWidth
        self.toHeight = toHeight
        // OpenCV: scale = 1 / (dst / src) in double, position rounded to float before floor.
        let scaleX = 1.0 / (Double(toWidth) / Double(width))
        var c0 = [Int](), c1 = [Int](), w0 = [Float](), w1 = [Float]()
        c0.reserveCapacity(toWidth); c1.reserveCapacity(toWidth); w0.reserveCapacity(toWidth); w1.reserveCapacity(toWidth)
        for dx in 0..<toWidth {
            var fx = Float((Double(dx) + 0.5) * scaleX - 0.5)
            var sx = Int(fx.rounded(.down))
            fx -= Float(sx)
            if sx < 0 { fx = 0; sx = 0 }
            if sx >= width - 1 { fx = 0; sx = width - 1 }
            c0.append(sx)
            c1.append(min(sx + 1, width - 1))
            w0.append(1 - fx)
            w1.append(fx)
        }
        column0 = c0; column1 = c1; columnWeight0 = w0; columnWeight1 = w1

        let scaleY = 1.0 / (Double(toHeight) / Double(height))
        var r0 = [Int](), r1 = [Int](), v0 = [Float](), v1 = [Float]()
        r0.reserveCapacity(toHeight); r1.reserveCapacity(toHeight); v0.reserveCapacity(toHeight); v1.reserveCapacity(toHeight)
        for dy in 0..<toHeight {
            var fy = Float((Double(dy) + 0.5) * scaleY - 0.5)
            let sy = Int(fy.rounded(.down))
            fy -= Float(sy)
            r0.append(min(max(sy, 0), height - 1))
            r1.append(min(max(sy + 1, 0), height - 1))
            v0.append(1 - fy)
            v1.append(fy)
        }
        row0 = r0; row1 = r1; rowWeight0 = v0; rowWeight1 = v1
    }

    /// Every source row resampled to the destination width: `height * toWidth` values.
    func horizontalPass(_ map: [Float]) -> [Float] {
        var rows = [Float](repeating: 0, count: height * toWidth)
        for y in 0..<height {
            let source = y * width
            let target = y * toWidth
            for x in 0..<toWidth {
                rows[target + x] = map[source + column0[x]] * columnWeight0[x]
                    + map[source + column1[x]] * columnWeight1[x]
            }
        }
        return rows
    }
}
