import Core
import Testing
import Engine
import Explain

@Suite struct SharedStepTests {
    @Test func layerMapsAreMinMaxedThenResizedBilinearly() {
        // Source positions (d + 0.5)/2 - 0.5 = -0.25, 0.25, 0.75, 1.25; both ends clamp.
        let square = Normalization.layerMap(raw: Tensor(shape: [2, 2], storage: [0, 1, 2, 3]), height: 4, width: 4)
        #expect(square.shape == [4, 4])
        let expected: [Float] = [0.5, 0.75, 1.25, 1.5].map { $0 / (3 + 1e-7) }
        #expect(zip(square.storage[4..<8], expected).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test func finalMapRenormalisesTheLayerMean() {
        let a = Tensor(shape: [1, 2], storage: [0, 2])
        let b = Tensor(shape: [1, 2], storage: [4, 0])
        let map = CAMSteps.finalMap(raws: [a, b], height: 1, width: 2)
        // Per layer: [0, 1] and [1, 0]; mean [0.5, 0.5]; min-max of a constant is 0.
        #expect(map.values == [0, 0])
        let single = CAMSteps.finalMap(raws: [Tensor(shape: [1, 3], storage: [1, 2, 5])], height: 1, width: 3)
        #expect(abs(single.values[1] - 0.25) < 1e-6 && single.values[0] == 0 && single.values[2] > 0.9999)
    }

    @Test func principalProjectionOfARankOneField() {
        // maps[c, p] = a_c t_p with t centred: the projection is ±|a| t; the sign rule makes the
        // largest magnitude positive.
        let t: [Float] = [1, -3, 0.5, 1.5]
        for a in [[Float](arrayLiteral: 2, -1, 0.5), [Float](repeating: 0.3, count: 9)] {
            let maps = Tensor(shape: [a.count, 2, 2], storage: a.flatMap { ac in t.map { ac * $0 } })
            let norm = a.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let projection = PrincipalProjection.project(maps)
            #expect(projection.shape == [2, 2])
            let expected = t.map { -$0 * norm }
            #expect(zip(projection.storage, expected).allSatisfy { abs($0 - $1) < 1e-4 }, "\(projection.storage) vs \(expected)")
        }
    }

    @Test func principalProjectionPicksTheDominantDirection() {
        // Two channels: a strong pattern on channel 0, a weak orthogonal one on channel 1.
        let strong: [Float] = [3, -3, 3, -3, 0, 0]
        let weak: [Float] = [0, 0, 1, 1, -1, -1]
        let maps = Tensor(shape: [2, 2, 3], storage: strong + weak)
        let projection = PrincipalProjection.project(maps)
        #expect(zip(projection.storage, strong).allSatisfy { abs($0 - $1) < 1e-5 }, "\(projection.storage)")
    }

    @Test func horizontalFlip() {
        let x = Tensor(shape: [1, 2, 3], storage: [1, 2, 3, 4, 5, 6])
        #expect(CAMSteps.flippedHorizontally(x).storage == [3, 2, 1, 6, 5, 4])
        #expect(CAMSteps.augmentations.count == 6)
    }

    @Test func viewableGradientImage() {
        let image = Explanation.viewable(Tensor(shape: [1, 1, 4], storage: [-1, 1, -1, 1]))
        // Standardised ±1, times 0.1, plus 0.5.
        #expect(zip(image.storage, [0.4, 0.6, 0.4, 0.6]).allSatisfy { abs($0 - $1) < 1e-4 })
    }
}
