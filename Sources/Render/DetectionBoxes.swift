import Core

/// A detection drawn on a picture: its box outlined in its class's colour, its label on the box's top edge.
public struct DetectionBox: Sendable, Equatable {
    /// The box in picture pixels.
    public var rect: PixelRect
    /// The text on it (e.g. `person 0.87`).
    public var label: String
    /// The class, which picks the colour.
    public var classIndex: Int

    /// A box with its label and class.
    public init(rect: PixelRect, label: String, classIndex: Int) {
        self.rect = rect
        self.label = label
        self.classIndex = classIndex
    }

    /// Ultralytics' twenty class colours (RGB), so a class looks as it does in ultralytics' own plots.
    public static let palette: [[UInt8]] = [
        0xFF3838, 0xFF9D97, 0xFF701F, 0xFFB21D, 0xCFD231, 0x48F90A, 0x92CC17, 0x3DDB86, 0x1A9334, 0x00D4BB,
        0x2C99A8, 0x00C2FF, 0x344593, 0x6473FF, 0x0018EC, 0x8438FF, 0x520085, 0xCB38FF, 0xFF95C8, 0xFF37C7,
    ].map { [UInt8($0 >> 16), UInt8(($0 >> 8) & 0xFF), UInt8($0 & 0xFF)] }

    /// The colour of class `classIndex`.
    public static func colour(of classIndex: Int) -> [UInt8] {
        palette[((classIndex % palette.count) + palette.count) % palette.count]
    }
}

extension RGBImage {
    /// Outlines `rect` (clipped to the picture) `thickness` pixels wide, inside its edges, in `colour` (RGB).
    public mutating func drawRectangle(_ rect: PixelRect, thickness: Int, colour: [UInt8]) {
        let x0 = max(0, rect.x), y0 = max(0, rect.y)
        let x1 = min(width, rect.x + rect.width), y1 = min(height, rect.y + rect.height)
        guard x0 < x1, y0 < y1, colour.count == 3 else { return }
        let t = max(1, thickness), width = self.width
        pixels.withUnsafeMutableBufferPointer { px in
            func paint(_ xs: Range<Int>, _ ys: Range<Int>) {
                for y in ys { for x in xs { for c in 0..<3 { px[(y * width + x) * 3 + c] = colour[c] } } }
            }
            // Edges that fall outside the picture are not drawn.
            if rect.y >= 0 { paint(x0..<x1, y0..<min(y1, y0 + t)) }
            if rect.y + rect.height <= height { paint(x0..<x1, max(y0, y1 - t)..<y1) }
            if rect.x >= 0 { paint(x0..<min(x1, x0 + t), y0..<y1) }
            if rect.x + rect.width <= width { paint(max(x0, x1 - t)..<x1, y0..<y1) }
        }
    }

    /// Draws each detection's box and label, scaled to the picture's height; the first (the best) is drawn last, on top.
    public mutating func drawDetections(_ boxes: [DetectionBox], font: BitmapFont = .terminusBold16) {
        let scale = LabelStyle.autoScale(forHeight: height)
        for box in boxes.reversed() {
            let colour = DetectionBox.colour(of: box.classIndex)
            drawRectangle(box.rect, thickness: scale, colour: colour)
            let layout = LabelLayout(text: box.label, font: font, scale: scale, x: max(0, box.rect.x), bottom: max(0, box.rect.y))
            drawLabel(box.label, layout: layout, font: font, boxColour: colour)
        }
    }
}
