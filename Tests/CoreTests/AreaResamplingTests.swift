import Core
import Media
import Foundation
import TestSupport
import Testing

@Suite struct AreaResamplingTests {
    /// An exact 2x2 reduction averages each block; a flat colour stays flat.
    @Test func averagesWholeCells() {
        var image = RGBImage(width: 448, height: 448)
        for y in 0..<448 { for x in 0..<448 { image[x, y] = (UInt8((x % 2) * 100), 50, UInt8(y % 2 * 10)) } }
        let small = AreaResampling(width: 448, height: 448, toWidth: 224, toHeight: 224).resample(image)
        #expect(small.width == 224 && small.height == 224)
        #expect(stride(from: 0, to: small.pixels.count, by: 3).allSatisfy { small.pixels[$0] == 50 && small.pixels[$0 + 1] == 50 && small.pixels[$0 + 2] == 5 })
    }

    /// A region is read as if it were the whole picture.
    @Test func aRegionIsResampledAlone() {
        var image = RGBImage(width: 30, height: 20, fill: (200, 0, 0))
        for y in 0..<10 { for x in 10..<25 { image[x, y] = (UInt8(x * 7), UInt8(y * 11), 3) } }
        var region = RGBImage(width: 15, height: 10)
        for y in 0..<10 { for x in 0..<15 { region[x, y] = image[x + 10, y] } }
        let plan = AreaResampling(width: 15, height: 10, toWidth: 6, toHeight: 4)
        #expect(plan.resample(image, region: PixelRect(x: 10, y: 0, width: 15, height: 10)) == plan.resample(region))
    }

    /// The reference inputs are OpenCV's INTER_AREA resize of the pictures: reproduced to within one
    /// level, almost every value exactly.
    @Test func reproducesTheReferenceInputs() throws {
        guard let reference = ReferenceData.referenceOrSkip("AreaResamplingTests.reproducesTheReferenceInputs") else { return }
        let media = reference.deletingLastPathComponent().appendingPathComponent("media")
        for name in ["chelsea", "coffee"] {
            let original = try PictureFile.read(media.appendingPathComponent("\(name).png").path)
            let expected = try PictureFile.read(reference.appendingPathComponent("inputs/\(name).png").path)
            let resized = AreaResampling(width: original.width, height: original.height, toWidth: 224, toHeight: 224).resample(original)
            let differences = zip(resized.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }
            let exact = differences.filter { $0 == 0 }.count
            #expect(differences.max() ?? 99 <= 1 && exact * 1000 >= differences.count * 995,
                    "\(name): max diff \(differences.max() ?? -1), \(exact)/\(differences.count) exact")
        }
    }
}

extension AreaResamplingTests {
    /// Prints the 720p cost (no assertion: timing depends on the machine and the build).
    @Test func measures720pToTheNetworkInput() {
        var image = RGBImage(width: 1280, height: 720)
        for i in image.pixels.indices { image.pixels[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 13) }
        let plan = AreaResampling(width: 1280, height: 720, toWidth: 224, toHeight: 224)
        var times: [Double] = []
        for _ in 0..<30 {
            let start = ContinuousClock.now
            _ = plan.resample(image)
            let elapsed = ContinuousClock.now - start
            times.append(Double(elapsed.components.attoseconds) * 1e-15 + Double(elapsed.components.seconds) * 1e3)
        }
        times.sort()
        print("AreaResampling 1280x720 -> 224x224: median \(times[15]) ms, best \(times[0]) ms")
    }
}
