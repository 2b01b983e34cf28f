/// Bilinear resampling of a one-channel float map, planned once per pair of sizes so that each
/// use costs two multiply-adds per value.
///
/// Two conventions, both bit-for-bit their peers' arithmetic on float32:
/// - `halfPixel`: OpenCV's `cv2.resize(map, (w, h), interpolation=cv2.INTER_LINEAR)` (PyTorch's
///   `align_corners=False`): half-pixel centres, edges clamped, a horizontal pass then a
///   vertical one; an exact 2x reduction both ways averages 2x2 blocks, as OpenCV turns that
///   case into INTER_AREA. pytorch-grad-cam resizes its maps so.
/// - `alignCorners`: PyTorch's `UpsamplingBilinear2d` (`align_corners=True`): corner values map
///   onto corner values. Score-CAM upsamples its masks so.
public struct BilinearResampling: ResamplingPlan {
    /// Which pixel centres the source and destination share.
    public enum Convention: Sendable {
        /// OpenCV INTER_LINEAR, PyTorch `align_corners=False`.
        case halfPixel
        /// PyTorch `align_corners=True`.
        case alignCorners
    }

    /// The source size and the destination size.
    public let sizes: ResamplingSizes
    /// For each destination column: the two source columns and their weights.
    let column0: [Int], column1: [Int], columnWeight0: [Float], columnWeight1: [Float]
    /// For each destination row: the two source rows and their weights.
    public let row0: [Int], row1: [Int], rowWeight0: [Float], rowWeight1: [Float]
    /// OpenCV's 2x reduction: the mean of each 2x2 block instead of the taps.
    let halves: Bool

    /// The half-pixel plan between `sizes` (OpenCV INTER_LINEAR).
    public init(_ sizes: ResamplingSizes) {
        self.init(sizes, convention: .halfPixel)
    }

    /// The plan from `width` x `height` to `toWidth` x `toHeight` by `convention`.
    public init(width: Int, height: Int, toWidth: Int, toHeight: Int, convention: Convention) {
        self.init(ResamplingSizes(width: width, height: height, toWidth: toWidth, toHeight: toHeight), convention: convention)
    }

    /// The plan between `sizes` by `convention`.
    public init(_ sizes: ResamplingSizes, convention: Convention) {
        self.sizes = sizes
        let (width, height, toWidth, toHeight) = (sizes.width, sizes.height, sizes.toWidth, sizes.toHeight)
        let columns: Taps, rows: Taps
        switch convention {
        case .halfPixel:
            halves = width == 2 * toWidth && height == 2 * toHeight
            columns = Taps(halfPixel: width, to: toWidth, clampWeights: true)
            // OpenCV's vertical pass clamps the rows but keeps their unclamped weights.
            rows = Taps(halfPixel: height, to: toHeight, clampWeights: false)
        case .alignCorners:
            halves = false
            columns = Taps(alignCorners: width, to: toWidth)
            rows = Taps(alignCorners: height, to: toHeight)
        }
        (column0, column1, columnWeight0, columnWeight1) = (columns.first, columns.second, columns.weight0, columns.weight1)
        (row0, row1, rowWeight0, rowWeight1) = (rows.first, rows.second, rows.weight0, rows.weight1)
    }

    /// `values` (`width * height`, row-major) resampled to `toWidth * toHeight` values.
    public func resample(_ values: [Float]) -> [Float] {
        precondition(values.count == width * height, "a \(width)x\(height) map has \(width * height) values, got \(values.count)")
        if width == toWidth && height == toHeight { return values }
        if halves { return halved(values) }
        let rows = horizontalPass(values)
        return [Float](unsafeUninitializedCapacity: toWidth * toHeight) { out, count in
            rows.withUnsafeBufferPointer { rows in
                for y in 0..<toHeight {
                    let first = rows.baseAddress! + row0[y] * toWidth, second = rows.baseAddress! + row1[y] * toWidth
                    let w0 = rowWeight0[y], w1 = rowWeight1[y]
                    let line = out.baseAddress! + y * toWidth
                    for x in 0..<toWidth { line[x] = first[x] * w0 + second[x] * w1 }
                }
            }
            count = toWidth * toHeight
        }
    }

    /// Every source row resampled to the destination width: `height * toWidth` values, for a
    /// caller that blends the rows itself (`row0`, `row1`, `rowWeight0`, `rowWeight1`).
    ///
    /// An exact 2x reduction (`resample` averages blocks) is the caller's to handle.
    public func horizontalPass(_ values: [Float]) -> [Float] {
        [Float](unsafeUninitializedCapacity: height * toWidth) { rows, count in
            values.withUnsafeBufferPointer { values in
                for y in 0..<height { resampleRow(y, of: values.baseAddress!, into: rows.baseAddress! + y * toWidth) }
            }
            count = height * toWidth
        }
    }

    /// Source row `y` of `values` (`width * height`) resampled to the destination width, into `row`.
    public func resampleRow(_ y: Int, of values: UnsafePointer<Float>, into row: UnsafeMutablePointer<Float>) {
        let source = values + y * width
        for x in 0..<toWidth {
            row[x] = source[column0[x]] * columnWeight0[x] + source[column1[x]] * columnWeight1[x]
        }
    }

    /// Whether `resample` averages 2x2 blocks (OpenCV's exact 2x reduction) instead of using the taps.
    public var averagesBlocks: Bool { halves }

    /// The mean of each 2x2 block, summed in OpenCV's order (rows pairwise, then together).
    public func halved(_ values: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: toWidth * toHeight)
        for y in 0..<toHeight {
            for x in 0..<toWidth {
                let i = 2 * y * width + 2 * x
                out[y * toWidth + x] = ((values[i] + values[i + 1]) + (values[i + width] + values[i + width + 1])) * 0.25
            }
        }
        return out
    }

    /// For each destination index along one axis: two source indices and their weights.
    private struct Taps {
        var first: [Int] = [], second: [Int] = [], weight0: [Float] = [], weight1: [Float] = []

        /// OpenCV: scale = 1 / (dst / src) in double, the position rounded to float before the floor.
        /// With `clampWeights`, beyond an edge the inner neighbour's weight is exactly 0 (OpenCV's
        /// horizontal pass); without, only the indices are clamped (its vertical pass).
        init(halfPixel source: Int, to destination: Int, clampWeights: Bool) {
            let scale = 1.0 / (Double(destination) / Double(source))
            for d in 0..<destination {
                var f = Float((Double(d) + 0.5) * scale - 0.5)
                var s = Int(f.rounded(.down))
                f -= Float(s)
                if clampWeights {
                    if s < 0 { f = 0; s = 0 }
                    if s >= source - 1 { f = 0; s = source - 1 }
                    append(s, min(s + 1, source - 1), f)
                } else {
                    append(min(max(s, 0), source - 1), min(max(s + 1, 0), source - 1), f)
                }
            }
        }

        /// PyTorch: position `d · (src - 1) / (dst - 1)` in float, the upper neighbour's weight its fraction.
        init(alignCorners source: Int, to destination: Int) {
            let scale = destination > 1 ? Float(source - 1) / Float(destination - 1) : 0
            for d in 0..<destination {
                let position = scale * Float(d)
                let lower = min(Int(position), source - 1)
                append(lower, min(lower + 1, source - 1), lower < source - 1 ? position - Float(lower) : 0)
            }
        }

        private mutating func append(_ lower: Int, _ upper: Int, _ fraction: Float) {
            first.append(lower)
            second.append(upper)
            weight0.append(1 - fraction)
            weight1.append(fraction)
        }
    }
}
