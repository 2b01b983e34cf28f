import Annotate
import Testing

/// `camvid report --frames / --every`: which frames are sampled.
@Suite struct FrameSamplingTests {
    /// The frames `sampling` takes out of `total`, stopping where it says it is done.
    static func taken(_ sampling: FrameSampling, total: Int) -> [Int] {
        var taken: [Int] = []
        for index in 0..<total where !sampling.isDone(at: index, taken: taken.count) {
            if sampling.takes(index) { taken.append(index) }
        }
        return taken
    }

    @Test func evenlyTakesTheMiddleOfEqualParts() {
        #expect(Self.taken(.evenly(count: 3, of: 9), total: 9) == [1, 4, 7])
        #expect(Self.taken(.evenly(count: 4, of: 10), total: 10) == [1, 3, 6, 8])
        #expect(Self.taken(.evenly(count: 1, of: 300), total: 300) == [150])
        // More frames asked for than there are: every frame, once.
        #expect(Self.taken(.evenly(count: 10, of: 4), total: 4) == [0, 1, 2, 3])
        // A video shorter than its estimate gives what it has.
        #expect(Self.taken(.evenly(count: 3, of: 9), total: 5) == [1, 4])
        #expect(FrameSampling.evenly(count: 3, of: 9).isDone(at: 8, taken: 2))
    }

    @Test func everyTakesEachStepUpToItsLimit() {
        #expect(Self.taken(.every(5), total: 12) == [0, 5, 10])
        #expect(Self.taken(.every(2, limit: 3), total: 100) == [0, 2, 4])
        #expect(FrameSampling.every(2, limit: 3).isDone(at: 5, taken: 3))
        #expect(!FrameSampling.every(2).isDone(at: 1_000_000, taken: 500_000))
    }
}
