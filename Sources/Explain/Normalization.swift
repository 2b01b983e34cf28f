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
}
