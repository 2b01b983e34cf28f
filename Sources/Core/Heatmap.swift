/// A class activation map: `width * height` values in 0…1, rows top to bottom.
public struct Heatmap: Sendable, Equatable {
    /// Columns.
    public let width: Int
    /// Rows.
    public let height: Int
    /// One value per cell, row by row.
    public var values: [Float]

    /// A map over `values`; nil unless the sizes are positive and the count is `width * height`.
    public init?(width: Int, height: Int, values: [Float]) {
        guard width > 0, height > 0, width.multipliedReportingOverflow(by: height) == (values.count, false) else { return nil }
        self.width = width
        self.height = height
        self.values = values
    }

    /// A `[h, w]` tensor as a map.
    public init(_ plane: Tensor) {
        precondition(plane.rank == 2 && plane.count > 0, "a map needs a non-empty [h, w] tensor, got \(plane.shape)")
        self.init(checked: plane.shape[1], plane.shape[0], plane.storage)
    }

    /// The map as a `[h, w]` tensor.
    public var tensor: Tensor { Tensor(shape: [height, width], storage: values) }

    /// The map resampled to `toWidth` x `toHeight` by `plan`, which must start at this map's size.
    public func resampled(_ plan: BilinearResampling) -> Heatmap {
        precondition(plan.width == width && plan.height == height, "a \(plan.width)x\(plan.height) plan for a \(width)x\(height) map")
        return Heatmap(checked: plan.toWidth, plan.toHeight, plan.resample(values))
    }

    /// A map whose size the caller has just computed.
    init(checked width: Int, _ height: Int, _ values: [Float]) {
        self.width = width
        self.height = height
        self.values = values
    }
}

/// A rectangle of whole pixels.
public struct PixelRect: Sendable, Equatable {
    /// Left column.
    public var x: Int
    /// Top row.
    public var y: Int
    /// Columns.
    public var width: Int
    /// Rows.
    public var height: Int

    /// A rectangle at (`x`, `y`) of `width` x `height`.
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
}
