import Core

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
        let plan = BilinearResampling(width: raw.shape[1], height: raw.shape[0], toWidth: width, toHeight: height)
        return Tensor(shape: [height, width], storage: plan.resample(minMax(raw.storage)))
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
