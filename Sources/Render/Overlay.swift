/// Draws an explanation onto a frame in one call: the heat map upsampled (OpenCV INTER_LINEAR),
/// coloured and alpha-blended, then the class label. Either layer can be left out.
public struct Overlay: Sendable {
    /// The heat map's colours.
    public let colormap: Colormap
    /// Weight of the heat colour: `out = round((1 - alpha) * frame + alpha * heat)`.
    public let alpha: Float
    /// Where and how the label is drawn.
    public var labelStyle: LabelStyle
    /// The label font.
    public var font: BitmapFont
    /// `blend[frame << 8 | heat]` for this alpha, so the per-pixel work is a table lookup.
    private let blend: [UInt8]

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
        var blend = [UInt8](repeating: 0, count: 256 * 256)
        for frame in 0..<256 {
            for heat in 0..<256 {
                blend[frame << 8 | heat] = Overlay.blend(frame: UInt8(frame), heat: UInt8(heat), alpha: alpha)
            }
        }
        self.blend = blend
    }

    /// One channel of the blend: `(1 - alpha) * frame + alpha * heat`, in Float, rounded half
    /// away from zero.
    public static func blend(frame: UInt8, heat: UInt8, alpha: Float) -> UInt8 {
        UInt8(((1 - alpha) * Float(frame) + alpha * Float(heat)).rounded())
    }

    /// Blends `map` (`mapWidth * mapHeight` values in 0...1, row-major, nil for no heat layer)
    /// over the whole image, then draws `label` (nil for none). Nothing for `nil, nil`.
    public func apply(map: [Float]?, mapWidth: Int, mapHeight: Int, label: String?, to image: inout RGBImage) throws(RenderError) {
        if let map {
            try RenderError.checkMap(count: map.count, width: mapWidth, height: mapHeight)
            blendHeat(map, width: mapWidth, height: mapHeight, into: &image)
        }
        if let label {
            image.drawLabel(label, style: labelStyle, font: font)
        }
    }

    /// Upsample, colourise and blend in one pass over the frame: each output pixel is two
    /// multiply-adds on precomputed rows, one colormap lookup and three blend lookups.
    private func blendHeat(_ map: [Float], width: Int, height: Int, into image: inout RGBImage) {
        let outWidth = image.width, outHeight = image.height
        var source = map, sourceWidth = width, sourceHeight = height
        if width == 2 * outWidth && height == 2 * outHeight {
            // OpenCV's 2x-reduction special case; the plan below is then the identity.
            source = (try? BilinearResize.resize(map, width: width, height: height, toWidth: outWidth, toHeight: outHeight)) ?? map
            sourceWidth = outWidth
            sourceHeight = outHeight
        }
        let plan = ResamplingPlan(width: sourceWidth, height: sourceHeight, toWidth: outWidth, toHeight: outHeight)
        let rows = plan.horizontalPass(source)
        let table = colormap.table
        image.pixels.withUnsafeMutableBufferPointer { pixels in
            rows.withUnsafeBufferPointer { rows in
                table.withUnsafeBufferPointer { table in
                    blend.withUnsafeBufferPointer { blend in
                        guard let out = pixels.baseAddress, let rows = rows.baseAddress,
                              let table = table.baseAddress, let blend = blend.baseAddress else { return }
                        for y in 0..<outHeight {
                            let first = rows + plan.row0[y] * outWidth
                            let second = rows + plan.row1[y] * outWidth
                            let w0 = plan.rowWeight0[y], w1 = plan.rowWeight1[y]
                            var p = out + y * outWidth * 3
                            for x in 0..<outWidth {
                                let colour = table + Int(Colormap.index(of: first[x] * w0 + second[x] * w1)) &* 3
                                p[0] = blend[Int(p[0]) &<< 8 | Int(colour[0])]
                                p[1] = blend[Int(p[1]) &<< 8 | Int(colour[1])]
                                p[2] = blend[Int(p[2]) &<< 8 | Int(colour[2])]
                                p += 3
                            }
                        }
                    }
                }
            }
        }
    }
}
