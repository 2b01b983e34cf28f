import Engine
import Foundation

/// The reference preprocessing of a picture for an ImageNet classifier: squash-resize with
/// OpenCV's `INTER_AREA` to the model's size, scale to [0, 1], normalise per channel.
public enum ImagePreprocessing {
    /// ImageNet's channel means (R, G, B).
    public static let imageNetMean: [Float] = [0.485, 0.456, 0.406]
    /// ImageNet's channel standard deviations (R, G, B).
    public static let imageNetStd: [Float] = [0.229, 0.224, 0.225]

    /// Resizes packed RGB24 `pixels` to `toWidth` x `toHeight` as OpenCV's `cv2.resize(..., INTER_AREA)`
    /// does for `uint8` pictures: when shrinking on both axes, each output pixel is the area-weighted
    /// mean of the source pixels its cell covers (float weights, rounded half to even); otherwise
    /// OpenCV's two-tap area interpolation. The shrinking case reproduces the reference inputs.
    public static func areaResize(_ pixels: [UInt8], width: Int, height: Int, toWidth: Int, toHeight: Int) -> [UInt8] {
        guard width > 0, height > 0, toWidth > 0, toHeight > 0, pixels.count == width * height * 3 else { return [] }
        if width == toWidth && height == toHeight { return pixels }
        let scaleX = Double(width) / Double(toWidth), scaleY = Double(height) / Double(toHeight)
        let shrinking = scaleX >= 1 && scaleY >= 1
        let columns = shrinking ? areaTable(source: width, target: toWidth, scale: scaleX) : twoTapTable(source: width, target: toWidth, scale: scaleX)
        let rows = shrinking ? areaTable(source: height, target: toHeight, scale: scaleY) : twoTapTable(source: height, target: toHeight, scale: scaleY)
        // Integer scales take OpenCV's fast path: the plain mean of each block.
        let fast = shrinking && scaleX == scaleX.rounded() && scaleY == scaleY.rounded()
        var out = [UInt8](repeating: 0, count: toWidth * toHeight * 3)
        var horizontal = [Float](repeating: 0, count: toWidth * 3)
        var sum = [Float](repeating: 0, count: toWidth * 3)
        for dy in 0..<toHeight {
            for i in sum.indices { sum[i] = 0 }
            for (sy, beta) in rows[dy] {
                let row = sy * width * 3
                for dx in 0..<toWidth {
                    var r: Float = 0, g: Float = 0, b: Float = 0
                    for (sx, alpha) in columns[dx] {
                        let i = row + sx * 3
                        if fast {
                            r += Float(pixels[i]); g += Float(pixels[i + 1]); b += Float(pixels[i + 2])
                        } else {
                            r += alpha * Float(pixels[i]); g += alpha * Float(pixels[i + 1]); b += alpha * Float(pixels[i + 2])
                        }
                    }
                    horizontal[dx * 3] = r; horizontal[dx * 3 + 1] = g; horizontal[dx * 3 + 2] = b
                }
                for i in sum.indices { sum[i] += fast ? horizontal[i] : beta * horizontal[i] }
            }
            let inverseArea = fast ? 1 / Float(scaleX * scaleY) : 1
            for i in sum.indices {
                let value = (sum[i] * inverseArea).rounded(.toNearestOrEven)
                out[dy * toWidth * 3 + i] = UInt8(min(max(value, 0), 255))
            }
        }
        return out
    }

    /// OpenCV's `computeResizeAreaTab`: per output index, the source indices and their weights.
    private static func areaTable(source: Int, target: Int, scale: Double) -> [[(Int, Float)]] {
        (0..<target).map { d in
            let fsx1 = Double(d) * scale, fsx2 = fsx1 + scale
            let cellWidth = min(scale, Double(source) - fsx1)
            var sx1 = Int(fsx1.rounded(.up)), sx2 = Int(fsx2.rounded(.down))
            sx2 = min(sx2, source - 1)
            sx1 = min(sx1, sx2)
            var taps: [(Int, Float)] = []
            if Double(sx1) - fsx1 > 1e-3 { taps.append((sx1 - 1, Float((Double(sx1) - fsx1) / cellWidth))) }
            for sx in sx1..<max(sx1, sx2) { taps.append((sx, Float(1 / cellWidth))) }
            if fsx2 - Double(sx2) > 1e-3 { taps.append((sx2, Float(min(min(fsx2 - Double(sx2), 1), cellWidth) / cellWidth))) }
            return taps
        }
    }

    /// OpenCV's `INTER_AREA` coefficients when enlarging: two taps at `floor(d * scale)`.
    private static func twoTapTable(source: Int, target: Int, scale: Double) -> [[(Int, Float)]] {
        (0..<target).map { d in
            let sx = Int((Double(d) * scale).rounded(.down))
            var fx = Double(d + 1) - Double(sx + 1) / scale
            fx = fx <= 0 ? 0 : fx - fx.rounded(.down)
            let first = min(max(sx, 0), source - 1), second = min(max(sx + 1, 0), source - 1)
            return [(first, Float(1 - fx)), (second, Float(fx))]
        }
    }

    /// The network input `[1,3,H,W]` of a picture already at the model's size: `(pixel / 255 - mean) / std`.
    public static func tensor(_ pixels: [UInt8], width: Int, height: Int,
                              mean: [Float] = imageNetMean, std: [Float] = imageNetStd) -> Tensor {
        let plane = width * height
        var storage = [Float](repeating: 0, count: 3 * plane)
        for c in 0..<3 {
            let m = mean[c], s = std[c]
            for p in 0..<plane { storage[c * plane + p] = (Float(pixels[p * 3 + c]) / 255 - m) / s }
        }
        return Tensor(shape: [1, 3, height, width], storage: storage)
    }
}
