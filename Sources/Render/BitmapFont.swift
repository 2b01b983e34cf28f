/// A fixed-width bitmap font of glyphs at most 8 pixels wide, one byte per row
/// (most significant bit leftmost), covering a few ranges of Unicode scalars.
public struct BitmapFont: Sendable {
    /// Width of every glyph in pixels (1...8).
    public let glyphWidth: Int
    /// Height of every glyph in pixels.
    public let glyphHeight: Int
    /// The scalars covered, in the order their glyphs are stored.
    let ranges: [ClosedRange<UInt32>]
    /// `glyphHeight` bytes per glyph, glyphs in range order.
    let rows: [UInt8]
    /// Glyph index of "?", drawn for characters the font lacks.
    let replacementGlyph: Int

    init(glyphWidth: Int, glyphHeight: Int, ranges: [ClosedRange<UInt32>], rows: [UInt8]) {
        self.glyphWidth = glyphWidth
        self.glyphHeight = glyphHeight
        self.ranges = ranges
        self.rows = rows
        var base = 0, question = 0
        for range in ranges {
            if range.contains(0x3F) { question = base + Int(0x3F - range.lowerBound) }
            base += range.count
        }
        replacementGlyph = question
    }

    /// The stored glyph for a character: its own when the font has it (a single scalar in a
    /// covered range), otherwise "?".
    func glyph(for character: Character) -> Int {
        guard character.unicodeScalars.count == 1, let scalar = character.unicodeScalars.first else {
            return replacementGlyph
        }
        var base = 0
        for range in ranges {
            if range.contains(scalar.value) { return base + Int(scalar.value - range.lowerBound) }
            base += range.count
        }
        return replacementGlyph
    }

    /// Whether the font has its own glyph for `character` (others are drawn as "?").
    public func covers(_ character: Character) -> Bool {
        character == "?" || glyph(for: character) != replacementGlyph
    }

    /// Whether pixel (`x`, `y`) of the glyph drawn for `character` is ink; false outside the cell.
    public func isInk(_ character: Character, x: Int, y: Int) -> Bool {
        guard x >= 0, x < glyphWidth, y >= 0, y < glyphHeight else { return false }
        return rows[glyph(for: character) * glyphHeight + y] & (0x80 >> UInt8(x)) != 0
    }

    /// Width in pixels of `text` drawn at `scale` (characters are fixed width).
    public func width(of text: String, scale: Int = 1) -> Int {
        text.count * glyphWidth * scale
    }
}
