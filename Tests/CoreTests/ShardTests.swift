import Core
import Testing

/// The shard rule: cuts at lower + ⌊(upper − lower)·k / N⌋, the ends open.
struct ShardRuleTests {
    @Test func parsesIOverN() {
        #expect(Shard("2/4") == Shard(index: 2, count: 4))
        for bad in ["4/4", "-1/4", "1/0", "1", "a/b", "1/2/3", ""] { #expect(Shard(bad) == nil, "\(bad)") }
    }

    @Test func cutsEveryValueIntoExactlyOneShard() {
        for count in [1, 2, 3, 7, 10] {
            let shards = (0..<count).map { Shard(index: $0, count: count)! }
            for value in Int64(-5)...105 {
                let owners = shards.filter { shard in
                    let (start, end) = shard.bounds(lower: 0, upper: 100)
                    return (start.map { value >= $0 } ?? true) && (end.map { value < $0 } ?? true)
                }
                #expect(owners.count == 1, "value \(value) of \(count) shards")
            }
        }
        #expect(Shard(index: 1, count: 3)!.bounds(lower: 10, upper: 20) == (13, 16))
        // Hours of 90 kHz ticks times many shards do not overflow.
        // 2^50 ticks · 9 999 overflows 64 bits; the cut is still ⌊2^50 · 9 999 / 10 000⌋.
        #expect(Shard(index: 9_999, count: 10_000)!.bounds(lower: 0, upper: Int64(1) << 50).start == 1_125_787_316_851_939)
    }

    @Test func itemsOfAList() {
        #expect((0..<2).map { Shard(index: $0, count: 2)!.items(of: 3) } == [0..<1, 1..<3])
        #expect((0..<4).map { Shard(index: $0, count: 4)!.items(of: 2) } == [0..<0, 0..<1, 1..<1, 1..<2])
    }
}
