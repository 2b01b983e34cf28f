import Core

/// A 256-entry lookup table from a heat value to a colour (`--colormap`).
public enum Colormap: String, CaseIterable, Sendable {
    /// OpenCV's COLORMAP_JET table exactly, as pytorch-grad-cam uses it (the default).
    case jet
    /// Google's Turbo, as matplotlib defines it.
    case turbo
    /// matplotlib's perceptually uniform viridis.
    case viridis
    /// matplotlib's perceptually uniform inferno.
    case inferno

    /// The table as 768 bytes: R, G, B of index 0, then index 1, up to 255.
    public var table: [UInt8] {
        switch self {
        case .jet: Colormap.jetTable
        case .turbo: Colormap.turboTable
        case .viridis: Colormap.viridisTable
        case .inferno: Colormap.infernoTable
        }
    }

    /// The colour of table entry `index`.
    public subscript(index: UInt8) -> (r: UInt8, g: UInt8, b: UInt8) {
        let table = self.table
        let i = Int(index) * 3
        return (table[i], table[i + 1], table[i + 2])
    }

    /// The table index of a heat value, as pytorch-grad-cam computes it: `uint8(255 * value)`,
    /// truncated toward zero, clamped to 0...255 (NaN gives 0).
    @inlinable
    public static func index(of value: Float) -> UInt8 {
        let scaled = 255 * value
        // Selects, not Float.minimum or a checked conversion, so loops over this vectorise;
        // `scaled > 0` is false for NaN.
        let low = scaled > 0 ? scaled : 0
        let clamped = low < 255 ? low : 255
        // Adding 2^23 rounds to the nearest integer into the low mantissa bits; one step back
        // when that rounded up gives the floor, which is the truncation for values >= 0.
        let shifted = clamped + 8_388_608
        let nearest = Int32(bitPattern: shifted.bitPattern) &- 0x4B00_0000
        return UInt8(truncatingIfNeeded: nearest &- (shifted - 8_388_608 > clamped ? 1 : 0))
    }

    /// The colour of a heat value (`index(of:)`, then the table).
    public func color(of value: Float) -> (r: UInt8, g: UInt8, b: UInt8) {
        self[Colormap.index(of: value)]
    }

    /// A heat map as a picture of the same size.
    public func colorize(_ map: Heatmap) -> RGBImage {
        let table = self.table
        var pixels = [UInt8](repeating: 0, count: map.values.count * 3)
        for (i, value) in map.values.enumerated() {
            let t = Int(Colormap.index(of: value)) * 3
            pixels[i * 3] = table[t]
            pixels[i * 3 + 1] = table[t + 1]
            pixels[i * 3 + 2] = table[t + 2]
        }
        return RGBImage(width: map.width, height: map.height, pixels: pixels)
    }
}
