import Core
import Testing
import Render

@Suite struct LabelTests {
    let font = BitmapFont.terminusBold16

    @Test func fontCoversPrintableASCIIAndLatin1() {
        #expect(font.glyphWidth == 8 && font.glyphHeight == 16)
        for scalar in (0x20...0x7E).compactMap(Unicode.Scalar.init) {
            #expect(font.covers(Character(scalar)))
        }
        #expect(font.covers("é") && font.covers("ü") && font.covers("°"))
        #expect(!font.covers("猫") && !font.covers("\u{1F408}"))
        // Ink where Terminus has it: "A" has a crossbar, a space has none, "|" a stem.
        #expect((0..<8).filter { font.isInk("A", x: $0, y: 7) }.count >= 6)
        #expect(!(0..<16).contains { y in (0..<8).contains { font.isInk(" ", x: $0, y: y) } })
        #expect((2..<12).allSatisfy { font.isInk("|", x: 3, y: $0) || font.isInk("|", x: 4, y: $0) })
        #expect(!font.isInk("A", x: 8, y: 7) && !font.isInk("A", x: -1, y: 7))
    }

    /// Rows of a few glyphs as they are in Uni2-TerminusBold16.psf (console-setup-linux 1.221).
    @Test(arguments: [
        ("A", [0x00, 0x00, 0x7C, 0xC6, 0xC6, 0xC6, 0xC6, 0xFE, 0xC6, 0xC6, 0xC6, 0xC6, 0x00, 0x00, 0x00, 0x00]),
        ("g", [0x00, 0x00, 0x00, 0x00, 0x00, 0x7E, 0xC6, 0xC6, 0xC6, 0xC6, 0xC6, 0x7E, 0x06, 0x06, 0x7C, 0x00]),
    ] as [(Character, [UInt8])])
    func glyphsAreTerminusBold(_ character: Character, _ rows: [UInt8]) {
        for (y, bits) in rows.enumerated() {
            for x in 0..<8 {
                #expect(font.isInk(character, x: x, y: y) == (bits & (0x80 >> UInt8(x)) != 0), "\(character) row \(y)")
            }
        }
    }

    @Test func glyphBitmapShowsUpInsideTheBox() {
        var image = RGBImage(width: 100, height: 40, fill: (200, 200, 200))
        let style = LabelStyle(scale: 1)
        image.drawLabel("Ag", style: style)
        let layout = LabelLayout(text: "Ag", font: font, style: style, width: 100, height: 40)
        #expect(layout.boxX == 4 && layout.boxY == 4 && layout.textX == 7 && layout.textY == 7)
        #expect(layout.boxWidth == 16 + 6 && layout.boxHeight == 16 + 6)
        let box: (r: UInt8, g: UInt8, b: UInt8) = (70, 70, 70)      // 200 * 0.35
        for (n, character) in ["A", "g"].enumerated() {
            for gy in 0..<16 {
                for gx in 0..<8 {
                    let pixel = image[layout.textX + n * 8 + gx, layout.textY + gy]
                    #expect(pixel == (font.isInk(Character(character), x: gx, y: gy) ? (255, 255, 255) : box))
                }
            }
        }
        #expect(image[layout.boxX, layout.boxY] == box)                                      // padding
        #expect(image[layout.boxX + layout.boxWidth - 1, layout.boxY + layout.boxHeight - 1] == box)
        #expect(image[layout.boxX + layout.boxWidth, layout.boxY] == (200, 200, 200))          // outside
        #expect(image[layout.boxX, layout.boxY + layout.boxHeight] == (200, 200, 200))
        #expect(image[0, 0] == (200, 200, 200))
    }

    @Test func scaleMakesEachFontPixelASquare() {
        var image = RGBImage(width: 120, height: 60, fill: (0, 0, 90))
        let style = LabelStyle(scale: 2)
        image.drawLabel("|", style: style)
        let layout = LabelLayout(text: "|", font: font, style: style, width: 120, height: 60)
        #expect(layout.scale == 2 && layout.boxHeight == 32 + 12)
        for gy in 0..<16 {
            for gx in 0..<8 {
                let ink = font.isInk("|", x: gx, y: gy)
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let pixel = image[layout.textX + 2 * gx + dx, layout.textY + 2 * gy + dy]
                    #expect(pixel == (ink ? (255, 255, 255) : (0, 0, 32)))       // 90 * 0.35 = 31.5 -> 32
                }
            }
        }
    }

    @Test func missingCharactersDrawAsQuestionMarks() {
        var unknown = RGBImage(width: 80, height: 30, fill: (120, 30, 200))
        var question = unknown
        unknown.drawLabel("猫 x", style: LabelStyle(scale: 1))
        question.drawLabel("? x", style: LabelStyle(scale: 1))
        #expect(unknown == question)
    }

    @Test func longLabelsClipAtTheRightEdge() {
        let width = 60, height = 40
        var image = RGBImage(width: width, height: height, fill: (250, 250, 250))
        let text = "American Staffordshire terrier 99.9%"
        image.drawLabel(text, style: LabelStyle(scale: 1))
        let layout = LabelLayout(text: text, font: font, style: LabelStyle(scale: 1), width: width, height: height)
        #expect(layout.boxX + layout.boxWidth > width)
        // The box runs to the last column; rows below it are untouched.
        #expect(image[width - 1, layout.boxY] == (88, 88, 88))                 // 250 * 0.35 = 87.5 -> 88
        #expect(image[width - 1, layout.boxY + layout.boxHeight] == (250, 250, 250))
        // Clipped glyphs still draw up to the edge: the visible text cells match the glyphs.
        let lastCell = (width - 1 - layout.textX) / 8
        let character = Array(text)[lastCell]
        for gy in 0..<16 {
            for x in (layout.textX + lastCell * 8)..<width {
                let ink = font.isInk(character, x: x - layout.textX - lastCell * 8, y: gy)
                #expect(image[x, layout.textY + gy] == (ink ? (255, 255, 255) : (88, 88, 88)))
            }
        }
    }

    @Test(arguments: LabelStyle.Corner.allCases) func cornersPlaceTheBox(_ corner: LabelStyle.Corner) {
        var image = RGBImage(width: 200, height: 100, fill: (100, 100, 100))
        let style = LabelStyle(corner: corner, scale: 1)
        image.drawLabel("cat", style: style)
        let layout = LabelLayout(text: "cat", font: font, style: style, width: 200, height: 100)
        let right = corner == .topRight || corner == .bottomRight
        let bottom = corner == .bottomLeft || corner == .bottomRight
        #expect(layout.boxX == (right ? 200 - 4 - layout.boxWidth : 4))
        #expect(layout.boxY == (bottom ? 100 - 4 - layout.boxHeight : 4))
        #expect(image[layout.boxX, layout.boxY] == (35, 35, 35))
        #expect(image[right ? 199 - 4 : 4, bottom ? 99 - 4 : 4] == (35, 35, 35))
        #expect(image[right ? 4 : 199 - 4, bottom ? 4 : 99 - 4] == (100, 100, 100))
    }

    @Test func tinyImagesAndEmptyLabels() {
        for (width, height) in [(1, 1), (3, 2), (8, 8), (2, 40), (40, 2)] {
            var image = RGBImage(width: width, height: height, fill: (9, 9, 9))
            image.drawLabel("Egyptian cat 87.3%", style: LabelStyle(corner: .bottomRight))
            image.drawLabel("x", style: LabelStyle(corner: .topLeft, scale: 5))
            #expect(image.width == width && image.height == height)
        }
        var huge = RGBImage(width: 30, height: 20, fill: (9, 9, 9))
        huge.drawLabel("x", style: LabelStyle(scale: Int.max))
        huge.drawLabel("y", style: LabelStyle(scale: Int.min))
        #expect(LabelLayout(text: "x", font: font, style: LabelStyle(scale: Int.max), width: 30, height: 20).scale == LabelStyle.maximumScale)
        var image = RGBImage(width: 50, height: 50, fill: (9, 9, 9))
        image.drawLabel("")
        #expect(image == RGBImage(width: 50, height: 50, fill: (9, 9, 9)))
    }

    @Test func scaleFollowsTheFrameHeight() {
        #expect(LabelStyle.autoScale(forHeight: 224) == 1)
        #expect(LabelStyle.autoScale(forHeight: 480) == 1)
        #expect(LabelStyle.autoScale(forHeight: 720) == 2)
        #expect(LabelStyle.autoScale(forHeight: 1080) == 3)
        let layout = LabelLayout(text: "a", font: font, style: LabelStyle(), width: 1280, height: 720)
        #expect(layout.scale == 2 && layout.boxHeight == 44)
    }

    @Test func labelText() {
        #expect(LabelStyle.text(className: "Egyptian cat", probability: 0.8734) == "Egyptian cat 87.3%")
        #expect(LabelStyle.text(className: "tabby", probability: 1) == "tabby 100.0%")
        #expect(LabelStyle.text(className: "tabby", probability: 0.0004) == "tabby 0.0%")
        #expect(LabelStyle.text(className: "tabby", probability: 0.05) == "tabby 5.0%")
        #expect(LabelStyle.text(className: "tabby", probability: .nan) == "tabby")
    }
}
