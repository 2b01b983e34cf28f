import Core

/// Draws an explanation onto a frame in one call: the heat map upsampled (OpenCV INTER_LINEAR),
/// coloured and alpha-blended, then the class label. Either layer can be left out.
///
/// Its resampling plans are made once per size, so the owner of one overlay (the blend stage)
/// pays for them once per run.
public struct Overlay: Sendable {
    /// The heat map's colours.
    public let colormap: Colormap
    /// Weight of the heat colour: `out = round((1 - alpha) * frame + alpha * heat)`.
    public let alpha: Float
    /// Where and how the label is drawn.
    public var labelStyle: LabelStyle
    /// The label font.
    public var font: BitmapFont
    /// How one channel is blended: exact integer arithmetic when some `(frame * (2^s - b) +
    /// heat * b + 2^(s-1)) >> s` equals the Float formula for all 65,536 pairs (alpha 0.5 and
    /// other dyadic alphas), else a 64 KiB table `[heat << 8 | frame]`.
    private let kernel: BlendKernel
    /// The colormap as one `R | G << 8 | B << 16` word per index: one load per pixel.
    private let packedColors: [UInt32]
    /// Upsampling plans from map sizes to frame sizes, and area plans from frames to grid tiles.
    private var upsampling = PlanCache<BilinearResampling>(), shrinking = PlanCache<AreaResampling>()

    /// An overlay; throws when `alpha` is outside 0...1.
    public init(
        colormap: Colormap = .jet, alpha: Float = 0.5,
        labelStyle: LabelStyle = LabelStyle(), font: BitmapFont = .terminusBold16
    ) throws(RenderError) {
        guard alpha >= 0, alpha <= 1 else { throw .invalidAlpha(alpha) }
        self.colormap = colormap
        self.alpha = alpha
        self.labelStyle = labelStyle
        self.font = font
        kernel = BlendKernel(alpha: alpha)
        let table = colormap.table
        packedColors = (0..<256).map { (i: Int) -> UInt32 in
            let r = UInt32(table[3 * i]), g = UInt32(table[3 * i + 1]), b = UInt32(table[3 * i + 2])
            return r | g << 8 | b << 16
        }
    }

    /// One channel of the blend: `(1 - alpha) * frame + alpha * heat`, in Float, rounded half
    /// away from zero.
    public static func blend(frame: UInt8, heat: UInt8, alpha: Float) -> UInt8 {
        UInt8(((1 - alpha) * Float(frame) + alpha * Float(heat)).rounded())
    }

    /// Blends `map` (nil for no heat layer) over the whole image, then draws the detections' boxes, then `label`
    /// (nil for none). Nothing for `nil, nil` and no boxes.
    public mutating func apply(_ map: Heatmap?, label: String?, boxes: [DetectionBox] = [], to image: inout RGBImage) {
        if let map { blendHeat(map, into: &image) }
        if !boxes.isEmpty { image.drawDetections(boxes, font: font) }
        if let label {
            image.drawLabel(label, style: labelStyle, font: font)
        }
    }

    /// Columns and rows for `count` tiles: as square as possible, filled row by row.
    public static func gridLayout(_ count: Int) -> (columns: Int, rows: Int) {
        var columns = 1
        while columns * columns < count { columns += 1 }
        return (columns, (count + columns - 1) / columns)
    }

    /// Replaces `image` by a grid of `tiles` (`gridLayout`, black where none falls), each the
    /// picture area-resampled to the tile's size with that tile's map, boxes (in picture pixels,
    /// scaled with it) and label drawn on it; the grid keeps the picture's size.
    public mutating func applyGrid(_ tiles: [(map: Heatmap?, label: String?, boxes: [DetectionBox])], to image: inout RGBImage) {
        let (columns, rows) = Self.gridLayout(tiles.count)
        let width = max(1, image.width / columns), height = max(1, image.height / rows)
        let small = image.width == width && image.height == height ? image
            : shrinking.plan(width: image.width, height: image.height, toWidth: width, toHeight: height).resample(image)
        var canvas = RGBImage(width: image.width, height: image.height)
        for (t, tile) in tiles.enumerated() {
            var picture = small
            let (sx, sy) = (Double(width) / Double(image.width), Double(height) / Double(image.height))
            let boxes = tile.boxes.map { box in
                var scaled = box
                let x0 = Int((Double(box.rect.x) * sx).rounded(.down)), y0 = Int((Double(box.rect.y) * sy).rounded(.down))
                let x1 = Int((Double(box.rect.x + box.rect.width) * sx).rounded(.up)), y1 = Int((Double(box.rect.y + box.rect.height) * sy).rounded(.up))
                scaled.rect = PixelRect(x: x0, y: y0, width: max(1, x1 - x0), height: max(1, y1 - y0))
                return scaled
            }
            apply(tile.map, label: tile.label, boxes: boxes, to: &picture)
            let left = (t % columns) * width, top = (t / columns) * height
            for y in 0..<min(height, image.height - top) {
                let from = y * width * 3, to = ((top + y) * image.width + left) * 3
                let count = min(width, image.width - left) * 3
                canvas.pixels.replaceSubrange(to..<(to + count), with: picture.pixels[from..<(from + count)])
            }
        }
        image = canvas
    }

    /// Upsample, colourise and blend in one pass over the frame, row by row: each source row
    /// resampled to the frame's width once (two kept at a time), then per pixel two multiply-adds,
    /// one colormap lookup and the blend of three bytes.
    private mutating func blendHeat(_ map: Heatmap, into image: inout RGBImage) {
        let outWidth = image.width, outHeight = image.height
        var plan = upsampling.plan(width: map.width, height: map.height, toWidth: outWidth, toHeight: outHeight)
        var source = map.values
        if plan.averagesBlocks {
            // OpenCV's 2x-reduction special case; the plan below is then the identity.
            source = plan.halved(source)
            plan = upsampling.plan(width: outWidth, height: outHeight, toWidth: outWidth, toHeight: outHeight)
        }
        // Two resampled source rows (their indices in `held`), colormap indices and heat colours.
        var rows = [Float](repeating: 0, count: 2 * outWidth)
        var held = (-1, -1)
        var indices = [UInt8](repeating: 0, count: outWidth)
        var heat = [UInt8](repeating: 0, count: outWidth * 3)
        image.pixels.withUnsafeMutableBufferPointer { pixels in
            source.withUnsafeBufferPointer { source in
                rows.withUnsafeMutableBufferPointer { rows in
                    packedColors.withUnsafeBufferPointer { colors in
                        indices.withUnsafeMutableBufferPointer { indices in
                            heat.withUnsafeMutableBufferPointer { heat in
                                guard let out = pixels.baseAddress, let source = source.baseAddress, let rows = rows.baseAddress,
                                      let colors = colors.baseAddress, let index = indices.baseAddress, let heat = heat.baseAddress
                                else { return }
                                /// The resampled row `r`, made in the slot the other needed row `keep` does not hold.
                                func row(_ r: Int, keeping keep: Int) -> UnsafeMutablePointer<Float> {
                                    if held.0 == r { return rows }
                                    if held.1 == r { return rows + outWidth }
                                    let slot = held.0 == keep ? 1 : 0
                                    plan.resampleRow(r, of: source, into: rows + slot * outWidth)
                                    if slot == 0 { held.0 = r } else { held.1 = r }
                                    return rows + slot * outWidth
                                }
                                for y in 0..<outHeight {
                                    let r0 = plan.row0[y], r1 = plan.row1[y]
                                    let first = row(r0, keeping: r1), second = row(r1, keeping: r0)
                                    let w0 = plan.rowWeight0[y], w1 = plan.rowWeight1[y]
                                    for x in 0..<outWidth {
                                        index[x] = Colormap.index(of: first[x] * w0 + second[x] * w1)
                                    }
                                    var h = heat
                                    for x in 0..<outWidth {
                                        let color = colors[Int(index[x])]
                                        h[0] = UInt8(truncatingIfNeeded: color)
                                        h[1] = UInt8(truncatingIfNeeded: color &>> 8)
                                        h[2] = UInt8(truncatingIfNeeded: color &>> 16)
                                        h += 3
                                    }
                                    kernel.blend(heat, into: out + y * outWidth * 3, count: outWidth * 3)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One channel's blend of frame and heat bytes for a fixed alpha.
private enum BlendKernel: Sendable {
    /// `(frame * frameWeight + heat * heatWeight + 2^(shift-1)) >> shift`, verified exact.
    case fixedPoint(frameWeight: UInt16, heatWeight: UInt16, shift: UInt16)
    /// `table[heat << 8 | frame]`.
    case table([UInt8])

    /// The exact integer form when one exists for this alpha, else the table.
    init(alpha: Float) {
        for shift in UInt16(1)...8 {
            let one = UInt16(1) << shift
            let heatWeight = UInt16((alpha * Float(one)).rounded())
            let candidate = BlendKernel.fixedPoint(frameWeight: one - heatWeight, heatWeight: heatWeight, shift: shift)
            if candidate.matchesFloat(alpha: alpha) {
                self = candidate
                return
            }
        }
        var table = [UInt8](repeating: 0, count: 256 * 256)
        for heat in 0..<256 {
            for frame in 0..<256 {
                table[heat << 8 | frame] = Overlay.blend(frame: UInt8(frame), heat: UInt8(heat), alpha: alpha)
            }
        }
        self = .table(table)
    }

    /// Whether this kernel gives `Overlay.blend` for every frame and heat byte.
    private func matchesFloat(alpha: Float) -> Bool {
        var frames = [UInt8](repeating: 0, count: 256), heat = [UInt8](repeating: 0, count: 256)
        for f in 0..<256 { frames[f] = UInt8(f) }
        for h in 0..<256 {
            var out = frames
            heat.withUnsafeMutableBufferPointer { $0.update(repeating: UInt8(h)) }
            heat.withUnsafeBufferPointer { heat in
                out.withUnsafeMutableBufferPointer { blend(heat.baseAddress!, into: $0.baseAddress!, count: 256) }
            }
            for f in 0..<256 where out[f] != Overlay.blend(frame: UInt8(f), heat: UInt8(h), alpha: alpha) { return false }
        }
        return true
    }

    /// Blends `count` heat bytes into the frame bytes at `frame`, in place.
    func blend(_ heat: UnsafePointer<UInt8>, into frame: UnsafeMutablePointer<UInt8>, count: Int) {
        switch self {
        case let .fixedPoint(frameWeight, heatWeight, shift):
            let half = UInt16(1) &<< (shift &- 1)
            for i in 0..<count {
                let mixed = UInt16(frame[i]) &* frameWeight &+ UInt16(heat[i]) &* heatWeight &+ half
                frame[i] = UInt8(truncatingIfNeeded: mixed &>> shift)
            }
        case let .table(table):
            table.withUnsafeBufferPointer { table in
                guard let table = table.baseAddress else { return }
                for i in 0..<count { frame[i] = table[Int(heat[i]) &<< 8 | Int(frame[i])] }
            }
        }
    }
}