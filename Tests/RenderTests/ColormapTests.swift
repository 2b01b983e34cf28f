import Core
import Testing
import Render

@Suite struct ColormapTests {
    @Test func tablesEqualWhatTheScriptProduced() throws {
        let fixture = try Fixtures.colormapTables()
        #expect(fixture.count == Colormap.allCases.count)
        for colormap in Colormap.allCases {
            #expect(colormap.table.count == 768)
            #expect(colormap.table == fixture[colormap.rawValue], "\(colormap)")
        }
    }

    @Test func knownEntries() {
        // OpenCV JET: dark blue at 0, dark red at 255, and table values no formula gives.
        #expect(Colormap.jet[0] == (0, 0, 128))
        #expect(Colormap.jet[1] == (0, 0, 132))
        #expect(Colormap.jet[255] == (128, 0, 0))
        #expect(Colormap.viridis[0] == (68, 1, 84))
        #expect(Colormap.viridis[255] == (253, 231, 37))
        #expect(Colormap.inferno[0] == (0, 0, 4))
        #expect(Colormap.inferno[255] == (252, 255, 164))
        #expect(Colormap.turbo[0] == (48, 18, 59))
        #expect(Colormap.turbo[255] == (122, 4, 3))
    }

    @Test func indexTruncatesAndClamps() {
        #expect(Colormap.index(of: 0) == 0)
        #expect(Colormap.index(of: 1) == 255)
        #expect(Colormap.index(of: 0.5) == 127)           // 127.5 truncates
        #expect(Colormap.index(of: 0.999) == 254)         // 254.745 truncates
        #expect(Colormap.index(of: 1.0 / 255) == 1)
        #expect(Colormap.index(of: 0.0039) == 0)          // 0.9945
        #expect(Colormap.index(of: -0.3) == 0)
        #expect(Colormap.index(of: 7) == 255)
        #expect(Colormap.index(of: .nan) == 0)
        #expect(Colormap.index(of: .infinity) == 255)
    }

    @Test func indexEqualsTruncationNearEveryStep() {
        // Just below, at and just above each k/255, and a dense sweep: the same as Int(255 * v).
        var values: [Float] = []
        for k in 0...256 {
            let v = Float(k) / 255
            values += [v.nextDown, v, v.nextUp, v.nextDown.nextDown]
        }
        values += (0...100_000).map { Float($0) / 100_000 }
        let wrong = values.filter { v in
            Colormap.index(of: v) != UInt8(min(max(Int((255 * v).rounded(.towardZero)), 0), 255))
        }
        #expect(wrong.isEmpty, "indices differ from truncation at \(wrong.prefix(5))")
    }

    @Test func colorizeUsesTheTable() throws {
        let image = Colormap.jet.colorize(heatmap([0, 0.5, 1, 0.25, 0.75, 2], 3, 2))
        #expect(image.width == 3 && image.height == 2)
        #expect(image[0, 0] == Colormap.jet[0])
        #expect(image[1, 0] == Colormap.jet[127])
        #expect(image[2, 0] == Colormap.jet[255])
        #expect(image[0, 1] == Colormap.jet[63])
        #expect(image[1, 1] == Colormap.jet[191])
        #expect(image[2, 1] == Colormap.jet[255])
    }

    @Test func namesParseAsCommandLineValues() {
        #expect(Colormap(rawValue: "jet") == .jet)
        #expect(Colormap(rawValue: "inferno") == .inferno)
        #expect(Colormap(rawValue: "hot") == nil)
    }
}
