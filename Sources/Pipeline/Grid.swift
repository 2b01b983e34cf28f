import Core
import Explain
import Render

/// `--grid`: the same frame explained several ways (methods, classes), one tile each.
///
/// Each frame is prepared once; every tile's explainer then runs the same batch.
public struct GridExplainer: FrameExplainer {
    /// One explainer per tile, in reading order (left to right, top to bottom).
    public let tiles: [NetworkExplainer]

    /// A grid of `tiles`; nil when there are none or they fit frames differently.
    public init?(tiles: [NetworkExplainer]) {
        guard let first = tiles.first,
              tiles.allSatisfy({ $0.preprocessor.fit == first.preprocessor.fit
                  && $0.preprocessor.normalization == first.preprocessor.normalization }) else { return nil }
        self.tiles = tiles
    }

    /// The frame prepared once, its placement noted for every tile.
    public func prepare(_ frame: VideoFrame) throws -> ModelInput {
        let first = tiles[0]
        let geometry = first.preprocessor.geometry(frameWidth: frame.image.width, frameHeight: frame.image.height)
        for tile in tiles { tile.remember(geometry, for: frame.index) }
        return ModelInput(frameIndex: frame.index, tensor: first.preprocessor.tensor(for: frame.image))
    }

    /// Per frame: the first tile's explanation, carrying every tile's (labelled with its method).
    public func explain(_ batch: [ModelInput]) async throws -> [FrameExplanation] {
        let perTile = try tiles.map { tile in
            try tile.explainNow(batch).map { explanation -> FrameExplanation in
                var labelled = explanation
                labelled.label = explanation.label.map { "\(tile.method.rawValue): \($0)" }
                return labelled
            }
        }
        return batch.indices.map { i in
            var combined = perTile[0][i]
            combined.tiles = perTile.map { $0[i] }
            return combined
        }
    }
}

/// Draws a grid explanation: the frame scaled down into each tile (area resampling), each tile's
/// map and label on it; the output keeps the input's size. Frames without tiles are drawn whole.
public struct GridOverlay: FrameOverlay {
    /// Colormap, opacity, label style and font of every tile.
    public let overlay: Overlay

    /// A grid overlay drawing with `overlay`.
    public init(_ overlay: Overlay) {
        self.overlay = overlay
    }

    /// Columns and rows for `count` tiles: as square as possible, filled row by row.
    public static func layout(_ count: Int) -> (columns: Int, rows: Int) {
        var columns = 1
        while columns * columns < count { columns += 1 }
        return (columns, (count + columns - 1) / columns)
    }

    /// Replaces `image` by the tiles (black where none falls).
    public func draw(_ explanation: FrameExplanation, on image: inout RGBImage) throws {
        let tiles = explanation.tiles
        guard !tiles.isEmpty else {
            try HeatmapOverlay(overlay).draw(explanation, on: &image)
            return
        }
        let (columns, rows) = Self.layout(tiles.count)
        let width = max(1, image.width / columns), height = max(1, image.height / rows)
        let small = Self.areaResized(image, width: width, height: height)
        var canvas = RGBImage(width: image.width, height: image.height)
        for (t, tile) in tiles.enumerated() {
            var picture = small
            try HeatmapOverlay(overlay).draw(tile, on: &picture)
            let left = (t % columns) * width, top = (t / columns) * height
            for y in 0..<min(height, image.height - top) {
                let from = y * width * 3, to = ((top + y) * image.width + left) * 3
                let count = min(width, image.width - left) * 3
                canvas.pixels.replaceSubrange(to..<(to + count), with: picture.pixels[from..<(from + count)])
            }
        }
        image = canvas
    }

    /// `image` area-resampled to `width` x `height` (each output pixel the mean of the source area it covers).
    public static func areaResized(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        if image.width == width && image.height == height { return image }
        return AreaResampling(width: image.width, height: image.height, toWidth: width, toHeight: height).resample(image)
    }
}
