import Engine
import Foundation
import Render

/// The per-channel normalisation of a network input: `(value / 255 - mean) / std`.
public struct InputNormalization: Sendable, Equatable {
    /// Mean of R, G, B in 0…1.
    public var mean: [Float]
    /// Standard deviation of R, G, B.
    public var std: [Float]

    /// A normalisation; nil unless both have three entries and every std is positive.
    public init?(mean: [Float], std: [Float]) {
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 > 0 }) else { return nil }
        self.mean = mean
        self.std = std
    }

    /// ImageNet's: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
    public static let imageNet = InputNormalization(unchecked: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    private init(unchecked mean: [Float], std: [Float]) {
        self.mean = mean
        self.std = std
    }
}

/// Turns an RGB frame into a network input `[1,3,h,w]`: the fitted region area-resampled
/// (OpenCV `INTER_AREA` weights, rounded to whole 8-bit values as OpenCV's uint8 resize does),
/// then normalised. The padding of `pad` is 0 (the mean colour).
public struct FramePreprocessor: Sendable {
    /// The network input's width and height.
    public let inputWidth: Int, inputHeight: Int
    /// How a frame is fitted.
    public let fit: FrameFit
    /// The normalisation.
    public let normalization: InputNormalization

    /// A preprocessor for a `inputWidth` x `inputHeight` network input.
    public init(inputWidth: Int, inputHeight: Int, fit: FrameFit = .squash, normalization: InputNormalization = .imageNet) {
        self.inputWidth = inputWidth
        self.inputHeight = inputHeight
        self.fit = fit
        self.normalization = normalization
    }

    /// Where a frame of this size goes in the input.
    public func geometry(frameWidth: Int, frameHeight: Int) -> ModelInputGeometry {
        ModelInputGeometry(frameWidth: frameWidth, frameHeight: frameHeight,
                           inputWidth: inputWidth, inputHeight: inputHeight, fit: fit)
    }

    /// The network input `[1,3,inputHeight,inputWidth]` for `image`.
    public func tensor(for image: RGBImage) -> Tensor {
        let geometry = geometry(frameWidth: image.width, frameHeight: image.height)
        let destination = geometry.destination
        let resampled = AreaResampling.resample(image, region: geometry.source, toWidth: destination.width, toHeight: destination.height)
        let plane = inputWidth * inputHeight
        var output = [Float](repeating: 0, count: 3 * plane)
        let scale = (0..<3).map { 1 / (255 * normalization.std[$0]) }
        let offset = (0..<3).map { normalization.mean[$0] / normalization.std[$0] }
        resampled.withUnsafeBufferPointer { resampled in
            output.withUnsafeMutableBufferPointer { output in
                for c in 0..<3 {
                    let s = scale[c], o = offset[c]
                    for y in 0..<destination.height {
                        let from = resampled.baseAddress! + y * destination.width * 3 + c
                        let to = output.baseAddress! + c * plane + (destination.y + y) * inputWidth + destination.x
                        for x in 0..<destination.width {
                            // OpenCV's uint8 resize rounds (and saturates) each value.
                            let value = min(max(from[x &* 3].rounded(), 0), 255)
                            to[x] = value * s - o
                        }
                    }
                }
            }
        }
        return Tensor(shape: [1, 3, inputHeight, inputWidth], storage: output)
    }
}

/// Area resampling of packed RGB (OpenCV `INTER_AREA` weights), separable: rows, then columns.
enum AreaResampling {
    /// The `region` of `image` resampled to `toWidth` x `toHeight`, interleaved RGB floats (not rounded).
    static func resample(_ image: RGBImage, region: PixelRect, toWidth: Int, toHeight: Int) -> [Float] {
        let columns = AreaTaps(source: region.width, destination: toWidth)
        let rows = AreaTaps(source: region.height, destination: toHeight)
        let width3 = toWidth * 3
        var horizontal = [Float](repeating: 0, count: region.height * width3)
        var output = [Float](repeating: 0, count: toHeight * width3)
        image.pixels.withUnsafeBufferPointer { pixels in
            horizontal.withUnsafeMutableBufferPointer { horizontal in
                columns.withPointers { start, count, weights in
                    for y in 0..<region.height {
                        let row = pixels.baseAddress! + ((region.y + y) * image.width + region.x) * 3
                        let out = horizontal.baseAddress! + y * width3
                        for x in 0..<toWidth {
                            var r: Float = 0, g: Float = 0, b: Float = 0
                            let first = start[x], taps = count[x], base = x &* columns.maxTaps
                            for t in 0..<taps {
                                let p = row + (first &+ t) &* 3, w = weights[base &+ t]
                                r += Float(p[0]) * w
                                g += Float(p[1]) * w
                                b += Float(p[2]) * w
                            }
                            out[x &* 3] = r
                            out[x &* 3 &+ 1] = g
                            out[x &* 3 &+ 2] = b
                        }
                    }
                }
            }
            horizontal.withUnsafeBufferPointer { horizontal in
                output.withUnsafeMutableBufferPointer { output in
                    rows.withPointers { start, count, weights in
                        for y in 0..<toHeight {
                            let sum = output.baseAddress! + y * width3
                            let first = start[y], taps = count[y], base = y &* rows.maxTaps
                            for t in 0..<taps {
                                let from = horizontal.baseAddress! + (first &+ t) &* width3, w = weights[base &+ t]
                                for i in 0..<width3 { sum[i] += from[i] * w }
                            }
                        }
                    }
                }
            }
        }
        return output
    }
}

/// For each destination index, the source indices it covers and their area weights (summing to 1):
/// destination cell `d` spans `[d·s, (d+1)·s)` in source units, `s = source / destination`.
struct AreaTaps {
    /// First source index per destination index.
    let start: [Int]
    /// Number of taps per destination index.
    let count: [Int]
    /// `maxTaps` weights per destination index (the unused ones 0).
    let weights: [Float]
    /// The stride of `weights`.
    let maxTaps: Int

    init(source: Int, destination: Int) {
        let scale = Double(source) / Double(destination)
        var starts: [Int] = [], counts: [Int] = [], lists: [[Float]] = []
        for d in 0..<destination {
            let from = Double(d) * scale, to = min(Double(d + 1) * scale, Double(source))
            var first = Int(from.rounded(.down))
            var list: [Float] = []
            var s = first
            while Double(s) < to - 1e-9, s < source {
                let overlap = min(Double(s + 1), to) - max(Double(s), from)
                if overlap > 1e-9 {
                    if list.isEmpty { first = s }
                    list.append(Float(overlap / (to - from)))
                }
                s += 1
            }
            if list.isEmpty { list = [1]; first = min(first, source - 1) }
            starts.append(first)
            counts.append(list.count)
            lists.append(list)
        }
        let widest = lists.map(\.count).max() ?? 1
        var flat = [Float](repeating: 0, count: destination * widest)
        for (d, list) in lists.enumerated() {
            for (t, w) in list.enumerated() { flat[d * widest + t] = w }
        }
        start = starts
        count = counts
        weights = flat
        maxTaps = widest
    }

    func withPointers<R>(_ body: (UnsafePointer<Int>, UnsafePointer<Int>, UnsafePointer<Float>) -> R) -> R {
        start.withUnsafeBufferPointer { start in
            count.withUnsafeBufferPointer { count in
                weights.withUnsafeBufferPointer { weights in
                    body(start.baseAddress!, count.baseAddress!, weights.baseAddress!)
                }
            }
        }
    }
}
