import Core

/// Where and how big the class label is drawn: light text on a dark translucent box so it
/// reads on any background.
public struct LabelStyle: Sendable, Equatable {
    /// A corner of the frame.
    public enum Corner: String, CaseIterable, Sendable {
        /// Top left (the default).
        case topLeft
        /// Top right.
        case topRight
        /// Bottom left.
        case bottomLeft
        /// Bottom right.
        case bottomRight
    }

    /// The corner the box sits in; a label too long for the frame starts at the left edge and is
    /// clipped on the right.
    public var corner: Corner
    /// Pixel size of one font pixel (1...`maximumScale`); nil picks one from the frame height
    /// (`autoScale`).
    public var scale: Int?
    /// How much the box darkens what is behind it, 0...1.
    public var boxOpacity: Float

    /// A style; by default top left, scaled to the frame, box 65 % black.
    public init(corner: Corner = .topLeft, scale: Int? = nil, boxOpacity: Float = 0.65) {
        self.corner = corner
        self.scale = scale
        self.boxOpacity = boxOpacity
    }

    /// The largest scale drawn (a larger request draws at this one).
    public static let maximumScale = 64

    /// One font pixel per 360 frame rows (2 at 720p, 3 at 1080p), at least 1.
    public static func autoScale(forHeight height: Int) -> Int {
        max(1, height / 360)
    }

    /// The label text for a class and its probability (0...1), e.g. "Egyptian cat 87.3%".
    public static func text(className: String, probability: Float) -> String {
        guard probability.isFinite else { return className }
        return "\(className) \(percent(probability))"
    }

    /// A fraction (0...1) as a percentage to one place, e.g. "87.3%".
    public static func percent(_ fraction: Float) -> String {
        let tenths = Int((Double(min(max(fraction.isFinite ? fraction : 0, 0), 1)) * 1000).rounded())
        return "\(tenths / 10).\(tenths % 10)%"
    }
}

/// Where a label's box and text land on a frame (all in frame pixels, possibly outside it).
public struct LabelLayout: Sendable, Equatable {
    /// The box's top-left corner and size.
    public let boxX: Int, boxY: Int, boxWidth: Int, boxHeight: Int
    /// The first glyph's top-left corner.
    public let textX: Int, textY: Int
    /// Size of one font pixel.
    public let scale: Int

    /// The layout of `text` in `font` on a `width x height` frame.
    public init(text: String, font: BitmapFont, style: LabelStyle, width: Int, height: Int) {
        // Clamped so absurd requests cannot overflow the box arithmetic.
        let scale = min(max(1, style.scale ?? LabelStyle.autoScale(forHeight: height)), LabelStyle.maximumScale)
        let padding = 3 * scale
        let margin = 4 * scale
        boxWidth = font.width(of: text, scale: scale) + 2 * padding
        boxHeight = font.glyphHeight * scale + 2 * padding
        switch style.corner {
        case .topLeft, .bottomLeft: boxX = margin
        case .topRight, .bottomRight: boxX = max(0, width - margin - boxWidth)
        }
        switch style.corner {
        case .topLeft, .topRight: boxY = margin
        case .bottomLeft, .bottomRight: boxY = max(0, height - margin - boxHeight)
        }
        textX = boxX + padding
        textY = boxY + padding
        self.scale = scale
    }

    /// The layout of `text` in `font` at `scale`, its box's bottom-left corner at (`x`, `bottom`) (a detection's label
    /// sits on its box's top edge), moved down inside a `height`-row frame when it would leave its top.
    public init(text: String, font: BitmapFont, scale: Int, x: Int, bottom: Int) {
        let scale = min(max(1, scale), LabelStyle.maximumScale)
        let padding = scale
        boxWidth = font.width(of: text, scale: scale) + 2 * padding
        boxHeight = font.glyphHeight * scale + 2 * padding
        boxX = x
        boxY = max(0, bottom - boxHeight)
        textX = boxX + padding
        textY = boxY + padding
        self.scale = scale
    }
}

extension RGBImage {
    /// Draws `text` (white, in `font`) on a dark translucent box in the style's corner; whatever
    /// falls outside the frame is clipped. Characters the font lacks are drawn as "?".
    public mutating func drawLabel(_ text: String, style: LabelStyle = LabelStyle(), font: BitmapFont = .terminusBold16) {
        guard !text.isEmpty else { return }
        drawLabel(text, layout: LabelLayout(text: text, font: font, style: style, width: width, height: height),
                  font: font, boxOpacity: style.boxOpacity)
    }

    /// Draws `text` (white, in `font`) as `layout` places it, on a box darkening what is behind it by `boxOpacity`, or,
    /// with `boxColour`, on a box of that colour.
    public mutating func drawLabel(_ text: String, layout: LabelLayout, font: BitmapFont = .terminusBold16, boxOpacity: Float = 0.65,
                                   boxColour: [UInt8]? = nil) {
        guard !text.isEmpty else { return }
        // The box keeps (1 - opacity) of what is behind it, rounded, via one table for all channels.
        let keep = 1 - min(max(boxOpacity.isNaN ? 0 : boxOpacity, 0), 1)
        var darken = [UInt8](repeating: 0, count: 256)
        for v in 0..<256 { darken[v] = UInt8((Float(v) * keep).rounded()) }
        let width = self.width
        let x0 = max(0, layout.boxX), x1 = min(width, layout.boxX + layout.boxWidth)
        let y0 = max(0, layout.boxY), y1 = min(height, layout.boxY + layout.boxHeight)
        guard x0 < x1, y0 < y1 else { return }
        pixels.withUnsafeMutableBufferPointer { px in
            for y in y0..<y1 {
                if let boxColour, boxColour.count == 3 {
                    for x in x0..<x1 { for c in 0..<3 { px[(y * width + x) * 3 + c] = boxColour[c] } }
                } else {
                    for i in ((y * width + x0) * 3)..<((y * width + x1) * 3) { px[i] = darken[Int(px[i])] }
                }
            }
            let scale = layout.scale
            for (n, character) in text.enumerated() {
                let cellX = layout.textX + n * font.glyphWidth * scale
                if cellX >= x1 { break }
                let glyph = font.glyph(for: character)
                for gy in 0..<font.glyphHeight {
                    let bits = font.rows[glyph * font.glyphHeight + gy]
                    if bits == 0 { continue }
                    for gx in 0..<font.glyphWidth where bits & (0x80 >> UInt8(gx)) != 0 {
                        // Each font pixel is a scale x scale square, clipped to the box and frame.
                        let top = max(y0, layout.textY + gy * scale), bottom = min(y1, layout.textY + (gy + 1) * scale)
                        let left = max(x0, cellX + gx * scale), right = min(x1, cellX + (gx + 1) * scale)
                        guard top < bottom, left < right else { continue }
                        for py in top..<bottom {
                            for i in ((py * width + left) * 3)..<((py * width + right) * 3) { px[i] = 255 }
                        }
                    }
                }
            }
        }
    }
}
