import Engine

/// The steps every CAM method shares after computing its map (pytorch-grad-cam's BaseCAM numerics).
public enum Normalization {
    /// Min-max scaling as pytorch-grad-cam does it: `(x - min) / (max' + 1e-7)` where `max'`
    /// is the maximum after subtracting the minimum.
    public static func minMax(_ values: [Float]) -> [Float] {
        guard let low = values.min() else { return values }
        let shifted = values.map { $0 - low }
        let high = shifted.max() ?? 0
        return shifted.map { $0 / (high + 1e-7) }
    }

    /// `max(x, 0)` on every element.
    public static func relu(_ values: [Float]) -> [Float] {
        values.map { max($0, 0) }
    }

    /// Score-CAM's per-channel scaling: `(x - min) / (max - min + 1e-8)`.
    public static func minMaxScoreCAM(_ values: [Float]) -> [Float] {
        guard let low = values.min(), let high = values.max() else { return values }
        let range = high - low + 1e-8
        return values.map { ($0 - low) / range }
    }

    /// A map at feature resolution `[h,w]` (after the ReLU) to pytorch-grad-cam's per-layer map at
    /// the input size: min-max, then OpenCV bilinear resize to `height` x `width`.
    public static func layerMap(raw: Tensor, height: Int, width: Int) -> Tensor {
        let scaled = minMax(raw.storage)
        let resized = MapResize.bilinear(scaled, height: raw.shape[0], width: raw.shape[1],
                                         toHeight: height, toWidth: width)
        return Tensor(shape: [height, width], storage: resized)
    }

    /// Several per-layer maps `[H,W]` to the final map: `max(·, 0)`, mean over layers, then min-max again
    /// (pytorch-grad-cam does this even for one layer).
    public static func aggregate(_ layerMaps: [Tensor]) -> Tensor {
        guard let first = layerMaps.first else { return Tensor(shape: [0, 0]) }
        var sum = [Float](repeating: 0, count: first.count)
        for map in layerMaps {
            for i in sum.indices { sum[i] += max(map.storage[i], 0) }
        }
        let count = Float(layerMaps.count)
        return Tensor(shape: first.shape, storage: minMax(sum.map { $0 / count }))
    }
}

/// Bilinear resizing of single-channel maps, as the peers do it.
///
/// Explain keeps its own copy (rather than using Render's) so that it depends only on Engine.
public enum MapResize {
    /// OpenCV `INTER_LINEAR` (PyTorch `align_corners=False`): half-pixel centres, edges clamped.
    public static func bilinear(_ values: [Float], height: Int, width: Int, toHeight: Int, toWidth: Int) -> [Float] {
        resize(values, height: height, width: width,
               rows: halfPixelTaps(source: height, destination: toHeight),
               columns: halfPixelTaps(source: width, destination: toWidth))
    }

    /// PyTorch `UpsamplingBilinear2d` (`align_corners=True`): corner pixels map onto corner pixels.
    public static func bilinearAlignCorners(_ values: [Float], height: Int, width: Int, toHeight: Int, toWidth: Int) -> [Float] {
        resize(values, height: height, width: width,
               rows: alignCornerTaps(source: height, destination: toHeight),
               columns: alignCornerTaps(source: width, destination: toWidth))
    }

    /// For each destination index: the lower source index and the weight of the upper one.
    struct Taps {
        var index: [Int]
        var fraction: [Float]
    }

    static func halfPixelTaps(source: Int, destination: Int) -> Taps {
        let scale = Double(source) / Double(destination)
        var taps = Taps(index: [], fraction: [])
        for d in 0..<destination {
            let position = (Double(d) + 0.5) * scale - 0.5
            var lower = Int(position.rounded(.down))
            var fraction = Float(position - Double(lower))
            if lower < 0 { lower = 0; fraction = 0 }
            if lower >= source - 1 { lower = source - 1; fraction = 0 }
            taps.index.append(lower)
            taps.fraction.append(fraction)
        }
        return taps
    }

    static func alignCornerTaps(source: Int, destination: Int) -> Taps {
        let scale = destination > 1 ? Float(source - 1) / Float(destination - 1) : 0
        var taps = Taps(index: [], fraction: [])
        for d in 0..<destination {
            let position = scale * Float(d)
            let lower = min(Int(position), source - 1)
            taps.index.append(lower)
            taps.fraction.append(lower < source - 1 ? position - Float(lower) : 0)
        }
        return taps
    }

    /// Horizontal pass into rows, then vertical blend of two rows, as OpenCV orders it.
    static func resize(_ values: [Float], height: Int, width: Int, rows: Taps, columns: Taps) -> [Float] {
        let outWidth = columns.index.count
        var horizontal = [Float](repeating: 0, count: height * outWidth)
        for y in 0..<height {
            let row = y * width
            for x in 0..<outWidth {
                let sx = columns.index[x], f = columns.fraction[x]
                let right = min(sx + 1, width - 1)
                horizontal[y * outWidth + x] = values[row + sx] * (1 - f) + values[row + right] * f
            }
        }
        var output = [Float](repeating: 0, count: rows.index.count * outWidth)
        for y in 0..<rows.index.count {
            let sy = rows.index[y], f = rows.fraction[y]
            let below = min(sy + 1, height - 1)
            for x in 0..<outWidth {
                output[y * outWidth + x] = horizontal[sy * outWidth + x] * (1 - f) + horizontal[below * outWidth + x] * f
            }
        }
        return output
    }
}
