/// OpenCV's `cv2.resize(picture, (w, h), interpolation=cv2.INTER_AREA)` of 8-bit RGB, the way
/// pytorch-grad-cam's examples fit a picture to a network, planned once per pair of sizes.
///
/// Shrinking on both axes, each output pixel is the area-weighted mean of the source pixels its
/// cell covers (OpenCV's `computeResizeAreaTab` weights; integer scales take OpenCV's fast path,
/// the plain mean of each block); otherwise OpenCV's two-tap area interpolation. Sums are float32
/// and each result is rounded half to even into 0…255, as OpenCV's `saturate_cast` does.
public struct AreaResampling: ResamplingPlan {
    /// The source size (of the region read) and the destination size.
    public let sizes: ResamplingSizes
    private let columns: Taps, rows: Taps
    /// Integer scales both ways: OpenCV sums whole blocks and divides once.
    private let wholeBlocks: Bool
    private let inverseArea: Float

    /// The plan between `sizes`.
    public init(_ sizes: ResamplingSizes) {
        self.sizes = sizes
        let (width, height, toWidth, toHeight) = (sizes.width, sizes.height, sizes.toWidth, sizes.toHeight)
        let scaleX = Double(width) / Double(toWidth), scaleY = Double(height) / Double(toHeight)
        let shrinking = scaleX >= 1 && scaleY >= 1
        columns = shrinking ? Taps(area: width, to: toWidth, scale: scaleX) : Taps(twoTap: width, to: toWidth, scale: scaleX)
        rows = shrinking ? Taps(area: height, to: toHeight, scale: scaleY) : Taps(twoTap: height, to: toHeight, scale: scaleY)
        wholeBlocks = shrinking && scaleX == scaleX.rounded() && scaleY == scaleY.rounded()
        inverseArea = wholeBlocks ? 1 / Float(scaleX * scaleY) : 1
    }

    /// `region` of `image` (all of it by default; its size must be the plan's source size)
    /// resampled to the destination size.
    public func resample(_ image: RGBImage, region: PixelRect? = nil) -> RGBImage {
        let region = region ?? PixelRect(x: 0, y: 0, width: image.width, height: image.height)
        precondition(region.width == width && region.height == height && region.x >= 0 && region.y >= 0
                     && region.x + region.width <= image.width && region.y + region.height <= image.height,
                     "region \(region) of a \(image.width)x\(image.height) image for a \(width)x\(height) plan")
        let rowLength = toWidth * 3
        let pixels = [UInt8](unsafeUninitializedCapacity: toHeight * rowLength) { out, count in
            var horizontal = [Float](repeating: 0, count: rowLength)
            var sum = [Float](repeating: 0, count: rowLength)
            image.pixels.withUnsafeBufferPointer { source in
                horizontal.withUnsafeMutableBufferPointer { horizontal in
                    sum.withUnsafeMutableBufferPointer { sum in
                        let h = horizontal.baseAddress!, s = sum.baseAddress!
                        for dy in 0..<toHeight {
                            s.update(repeating: 0, count: rowLength)
                            for t in rows.offsets[dy]..<rows.offsets[dy + 1] {
                                let row = source.baseAddress! + ((region.y + rows.sources[t]) * image.width + region.x) * 3
                                horizontalPass(row, into: h)
                                if wholeBlocks {
                                    for i in 0..<rowLength { s[i] += h[i] }
                                } else {
                                    let beta = rows.weights[t]
                                    for i in 0..<rowLength { s[i] += beta * h[i] }
                                }
                            }
                            let line = out.baseAddress! + dy * rowLength
                            for i in 0..<rowLength {
                                line[i] = UInt8(min(max((s[i] * inverseArea).rounded(.toNearestOrEven), 0), 255))
                            }
                        }
                    }
                }
            }
            count = toHeight * rowLength
        }
        return RGBImage(width: toWidth, height: toHeight, pixels: pixels)
    }

    /// One source row's pixels combined by the column taps: `toWidth` RGB sums.
    private func horizontalPass(_ row: UnsafePointer<UInt8>, into out: UnsafeMutablePointer<Float>) {
        columns.offsets.withUnsafeBufferPointer { offsets in
            columns.sources.withUnsafeBufferPointer { sources in
                columns.weights.withUnsafeBufferPointer { weights in
                    for dx in 0..<toWidth {
                        var r: Float = 0, g: Float = 0, b: Float = 0
                        for t in offsets[dx]..<offsets[dx + 1] {
                            let p = row + sources[t] &* 3
                            if wholeBlocks {
                                r += Float(p[0]); g += Float(p[1]); b += Float(p[2])
                            } else {
                                let w = weights[t]
                                r += w * Float(p[0]); g += w * Float(p[1]); b += w * Float(p[2])
                            }
                        }
                        out[dx &* 3] = r
                        out[dx &* 3 &+ 1] = g
                        out[dx &* 3 &+ 2] = b
                    }
                }
            }
        }
    }

    /// Per destination index along one axis, its source indices and weights, flat:
    /// taps `offsets[d]..<offsets[d + 1]`.
    private struct Taps: Sendable {
        var offsets: [Int] = [0], sources: [Int] = [], weights: [Float] = []

        /// OpenCV's `computeResizeAreaTab`: the source cells a destination cell covers, by area.
        init(area source: Int, to destination: Int, scale: Double) {
            for d in 0..<destination {
                let from = Double(d) * scale, to = from + scale
                let cellWidth = min(scale, Double(source) - from)
                var first = Int(from.rounded(.up)), last = Int(to.rounded(.down))
                last = min(last, source - 1)
                first = min(first, last)
                if Double(first) - from > 1e-3 { append(first - 1, Float((Double(first) - from) / cellWidth)) }
                for s in first..<max(first, last) { append(s, Float(1 / cellWidth)) }
                if to - Double(last) > 1e-3 { append(last, Float(min(min(to - Double(last), 1), cellWidth) / cellWidth)) }
                offsets.append(sources.count)
            }
        }

        /// OpenCV's INTER_AREA coefficients when enlarging: two taps at `floor(d · scale)`.
        init(twoTap source: Int, to destination: Int, scale: Double) {
            for d in 0..<destination {
                let s = Int((Double(d) * scale).rounded(.down))
                var fraction = Double(d + 1) - Double(s + 1) / scale
                fraction = fraction <= 0 ? 0 : fraction - fraction.rounded(.down)
                append(min(max(s, 0), source - 1), Float(1 - fraction))
                append(min(max(s + 1, 0), source - 1), Float(fraction))
                offsets.append(sources.count)
            }
        }

        private mutating func append(_ source: Int, _ weight: Float) {
            sources.append(source)
            weights.append(weight)
        }
    }
}
