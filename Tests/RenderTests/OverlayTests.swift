import Core
import Render
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A reproducible pseudo-random generator, so the tests see the same "frames" every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func randomImage(width: Int, height: Int, seed: UInt64) -> RGBImage {
    var rng = SplitMix64(state: seed)
    return RGBImage(width: width, height: height, pixels: (0..<(width * height * 3)).map { _ in UInt8.random(in: 0...255, using: &rng) })
}

/// CPU seconds this thread has used.
func threadCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

func randomMap(width: Int, height: Int, seed: UInt64) -> Heatmap {
    var rng = SplitMix64(state: seed)
    return heatmap((0..<(width * height)).map { _ in Float.random(in: 0...1, using: &rng) }, width, height)
}

/// A map of known size (the tests' own values always fit).
func heatmap(_ values: [Float], _ width: Int, _ height: Int) -> Heatmap {
    Heatmap(width: width, height: height, values: values)!
}

/// Draws with a fresh overlay (the tests' one-shot use).
func apply(_ overlay: Overlay, _ map: Heatmap?, label: String?, to image: inout RGBImage) {
    var overlay = overlay
    overlay.apply(map, label: label, to: &image)
}

/// `map` resized to `width` x `height` by OpenCV's INTER_LINEAR.
func resized(_ map: Heatmap, _ width: Int, _ height: Int) -> Heatmap {
    map.resampled(BilinearResampling(width: map.width, height: map.height, toWidth: width, toHeight: height))
}

@Suite struct OverlayTests {
    @Test func blendArithmeticOnATinyImage() throws {
        var image = RGBImage(width: 2, height: 1, pixels: [10, 20, 30, 200, 101, 0])
        // A 1x1 map of 1 is JET[255] = (128, 0, 0) everywhere.
        apply(try Overlay(alpha: 0.5), heatmap([1], 1, 1), label: nil, to: &image)
        // 0.5*10 + 0.5*128 = 69; 0.5*20 = 10; 0.5*30 = 15; 0.5*200 + 64 = 164; 50.5 rounds up to 51.
        #expect(image.pixels == [69, 10, 15, 164, 51, 0])
    }

    @Test func blendRoundsHalfAwayFromZero() {
        #expect(Overlay.blend(frame: 10, heat: 255, alpha: 0.5) == 133)   // 132.5
        #expect(Overlay.blend(frame: 0, heat: 1, alpha: 0.5) == 1)        // 0.5
        #expect(Overlay.blend(frame: 100, heat: 200, alpha: 0.25) == 125)
        #expect(Overlay.blend(frame: 255, heat: 0, alpha: 0.3) == 179)    // 178.5
        #expect(Overlay.blend(frame: 77, heat: 3, alpha: 0) == 77)
        #expect(Overlay.blend(frame: 77, heat: 3, alpha: 1) == 3)
    }

    @Test(arguments: [(Colormap.jet, Float(0.5)), (.viridis, 0.3), (.turbo, 0.8), (.inferno, 1)])
    func fusedPassEqualsResizeColorizeBlend(_ colormap: Colormap, _ alpha: Float) throws {
        for (mapSize, width, height) in [(7, 321, 241), (14, 224, 224), (7, 31, 5), (3, 1, 1), (7, 2, 3)] {
            let map = randomMap(width: mapSize, height: mapSize, seed: 42)
            let frame = randomImage(width: width, height: height, seed: 7)
            var fused = frame
            apply(try Overlay(colormap: colormap, alpha: alpha), map, label: nil, to: &fused)

            let heat = colormap.colorize(resized(map, width, height))
            let expected = zip(frame.pixels, heat.pixels).map { Overlay.blend(frame: $0, heat: $1, alpha: alpha) }
            #expect(fused.pixels == expected, "\(colormap) \(mapSize)x\(mapSize) -> \(width)x\(height)")
        }
    }

    @Test(arguments: [Float(0), 0.25, 0.5, 0.7, 0.75, Float(1) / 3, 0.9, 1] as [Float])
    func everyFrameByteAndColourBlendsByTheFormula(_ alpha: Float) throws {
        // Frame byte = column, heat = a 0...1 ramp across columns: every (frame, colour) pair.
        let ramp = (0..<256).map { Float($0) / 255 }
        var frame = RGBImage(width: 256, height: 256)
        for y in 0..<256 {
            for x in 0..<256 { frame[x, y] = (UInt8(y), UInt8(255 - y), UInt8(y ^ x)) }
        }
        for colormap in Colormap.allCases {
            var fused = frame
            apply(try Overlay(colormap: colormap, alpha: alpha), heatmap(ramp, 256, 1), label: nil, to: &fused)
            let heat = colormap.colorize(resized(heatmap(ramp, 256, 1), 256, 256))
            #expect(fused.pixels == zip(frame.pixels, heat.pixels).map { Overlay.blend(frame: $0, heat: $1, alpha: alpha) },
                    "\(colormap) alpha \(alpha)")
        }
    }

    @Test func twoTimesReductionFollowsResize() throws {
        let map = randomMap(width: 8, height: 6, seed: 3)
        let frame = randomImage(width: 4, height: 3, seed: 4)
        var fused = frame
        apply(try Overlay(), map, label: nil, to: &fused)
        let heat = Colormap.jet.colorize(resized(map, 4, 3))
        #expect(fused.pixels == zip(frame.pixels, heat.pixels).map { Overlay.blend(frame: $0, heat: $1, alpha: 0.5) })
    }

    @Test func alphaZeroKeepsTheFrameAndOneShowsOnlyHeat() throws {
        let map = randomMap(width: 7, height: 7, seed: 9)
        let frame = randomImage(width: 33, height: 17, seed: 10)
        var unchanged = frame
        apply(try Overlay(alpha: 0), map, label: nil, to: &unchanged)
        #expect(unchanged == frame)
        var heatOnly = frame
        apply(try Overlay(colormap: .turbo, alpha: 1), map, label: nil, to: &heatOnly)
        #expect(heatOnly == Colormap.turbo.colorize(resized(map, 33, 17)))
    }

    @Test func bothLayersOffDrawNothing() throws {
        let frame = randomImage(width: 64, height: 48, seed: 11)
        var image = frame
        apply(try Overlay(), nil, label: nil, to: &image)
        #expect(image == frame)
    }

    @Test func labelOnlyLeavesTheRestOfTheFrame() throws {
        let frame = randomImage(width: 320, height: 180, seed: 12)
        var image = frame
        apply(try Overlay(), nil, label: "tabby 12.5%", to: &image)
        let layout = LabelLayout(text: "tabby 12.5%", font: .terminusBold16, style: LabelStyle(), width: 320, height: 180)
        var changed = 0
        for y in 0..<180 {
            for x in 0..<320 where image[x, y] != frame[x, y] {
                changed += 1
                #expect(x >= layout.boxX && x < layout.boxX + layout.boxWidth && y >= layout.boxY && y < layout.boxY + layout.boxHeight)
            }
        }
        #expect(changed > 0)
    }

    @Test func rejectsBadInput() {
        #expect(throws: RenderError.invalidAlpha(1.5)) { try Overlay(alpha: 1.5) }
        #expect(throws: RenderError.invalidAlpha(-0.1)) { try Overlay(alpha: -0.1) }
        #expect(throws: (any Error).self) { try Overlay(alpha: .nan) }
        #expect(RenderError.invalidAlpha(2).description.contains("--alpha"))
    }

    @Test func tinyFramesDoNotCrash() throws {
        var overlay = try Overlay()
        for (width, height) in [(1, 1), (1, 5), (5, 1), (2, 3), (13, 9)] {
            var image = randomImage(width: width, height: height, seed: 13)
            overlay.apply(randomMap(width: 7, height: 7, seed: 14), label: "American Staffordshire terrier 99.9%", to: &image)
            #expect(image.width == width && image.height == height)
        }
    }

    /// Prints the 720p cost (no assertion: timing depends on the machine and the build). CPU time
    /// of this thread, so other processes on a busy machine do not inflate it.
    @Test func measures720pOverlay() throws {
        let map = randomMap(width: 7, height: 7, seed: 15)
        let label = LabelStyle.text(className: "Egyptian cat", probability: 0.873)
        func ms(_ seconds: Double) -> String { "\((seconds * 1e5).rounded() / 100) ms" }
        for (width, height, alpha) in [(1280, 720, Float(0.5)), (1280, 720, 0.3), (1920, 1080, 0.5)] {
            var overlay = try Overlay(alpha: alpha)
            var image = randomImage(width: width, height: height, seed: 16)
            var heatOnly = [Double](), withLabel = [Double]()
            for _ in 0..<40 {
                var start = threadCPUSeconds()
                overlay.apply(map, label: nil, to: &image)
                heatOnly.append(threadCPUSeconds() - start)
                start = threadCPUSeconds()
                overlay.apply(map, label: label, to: &image)
                withLabel.append(threadCPUSeconds() - start)
            }
            heatOnly.sort()
            withLabel.sort()
            print("Overlay \(width)x\(height), 7x7 map, jet, alpha \(alpha), CPU time over 40 runs: heat median \(ms(heatOnly[20])) best \(ms(heatOnly[0])); heat+label median \(ms(withLabel[20])) best \(ms(withLabel[0]))")
            #expect(image.width == width)
        }
    }
}
