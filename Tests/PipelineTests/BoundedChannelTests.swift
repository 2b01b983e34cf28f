import Foundation
import Pipeline
import Testing

/// Yields until `condition` holds (the other task has reached the state under test).
func eventually(_ condition: () -> Bool) async {
    while !condition() { try? await Task.sleep(for: .milliseconds(1)) }
}

/// An item of a live stream: video frames may be dropped, other packets never.
struct LiveItem: Sendable, Equatable {
    var isFrame: Bool
    var number: Int
    static func frame(_ number: Int) -> LiveItem { LiveItem(isFrame: true, number: number) }
    static func packet(_ number: Int) -> LiveItem { LiveItem(isFrame: false, number: number) }
}

struct TestFailure: Error, Equatable, CustomStringConvertible {
    var description: String
}

@Suite struct BoundedChannelTests {
    @Test func holdsCapacityThenSuspendsTheSender() async throws {
        let channel = BoundedChannel<Int>(capacity: 3)
        for value in 0..<3 { try await channel.send(value) }
        #expect(channel.bufferedCount == 3)

        let fourth = Task { try await channel.send(3) }
        await eventually { channel.waitingSenderCount == 1 }
        #expect(channel.bufferedCount == 3)

        #expect(try await channel.next() == 0)
        try await fourth.value
        #expect(channel.bufferedCount == 3)
        #expect(channel.waitingSenderCount == 0)
        #expect(try await drained(channel) == [1, 2, 3])
    }

    @Test func keepsOrderThroughAFullChannel() async throws {
        let channel = BoundedChannel<Int>(capacity: 2)
        let producer = Task {
            for value in 0..<1000 { try await channel.send(value) }
            channel.finish()
        }
        var received: [Int] = []
        var largestBuffer = 0
        for try await value in channel {
            received.append(value)
            largestBuffer = max(largestBuffer, channel.bufferedCount)
        }
        try await producer.value
        #expect(received == Array(0..<1000))
        #expect(largestBuffer <= 2)
    }

    @Test func manySendersAllDelivered() async throws {
        let channel = BoundedChannel<Int>(capacity: 1)
        let received = try await withThrowingTaskGroup(of: Void.self, returning: [Int].self) { group in
            for sender in 0..<4 {
                group.addTask {
                    for value in 0..<50 { try await channel.send(sender * 100 + value) }
                }
            }
            var received: [Int] = []
            while received.count < 200, let value = try await channel.next() { received.append(value) }
            try await group.waitForAll()
            return received
        }
        let everything: [Int] = (0..<4).flatMap { (sender: Int) -> [Int] in (0..<50).map { sender * 100 + $0 } }
        #expect(received.sorted() == everything)
        for sender in 0..<4 {
            let own = received.filter { $0 / 100 == sender }
            #expect(own == own.sorted(), "each sender's items stay in its order")
        }
    }

    @Test func dropOldestCountsDrops() async throws {
        let channel = BoundedChannel<Int>(capacity: 3, overflow: .dropOldest)
        for value in 0..<10 { try await channel.send(value) }
        #expect(channel.droppedCount == 7)
        #expect(try await drained(channel) == [7, 8, 9])
    }

    @Test func dropOldestSparesPacketsAndWaitsWhenNothingMayBeDropped() async throws {
        let channel = BoundedChannel<LiveItem>(capacity: 3, overflow: .dropOldest(where: { $0.isFrame }))
        for item in [LiveItem.packet(0), .frame(1), .frame(2), .frame(3), .packet(4), .packet(5)] {
            try await channel.send(item)
        }
        #expect(channel.droppedCount == 3)
        // The buffer now holds packets only: the next frame must wait for room.
        let waiting = Task { try await channel.send(.frame(6)) }
        await eventually { channel.waitingSenderCount == 1 }
        #expect(try await channel.next() == .packet(0))
        try await waiting.value
        #expect(try await drained(channel) == [.packet(4), .packet(5), .frame(6)])
        #expect(channel.droppedCount == 3)
    }

    @Test func finishDeliversBufferedThenEnds() async throws {
        let channel = BoundedChannel<Int>(capacity: 4)
        let waitingReceiver = Task { try await channel.next() }
        try await channel.send(1)
        #expect(try await waitingReceiver.value == 1)

        let endReceiver = Task { try await channel.next() }
        await Task.yield()
        try await channel.send(2)
        try await channel.send(3)
        channel.finish()
        #expect(try await endReceiver.value == 2)
        #expect(try await channel.next() == 3)
        #expect(try await channel.next() == nil)
        #expect(try await channel.next() == nil)
    }

    @Test func errorArrivesAfterEveryElementSentBeforeIt() async throws {
        let channel = BoundedChannel<Int>(capacity: 2)
        let producer = Task {
            for value in 0..<5 { try await channel.send(value) }
            channel.finish(throwing: TestFailure(description: "corrupt"))
        }
        var received: [Int] = []
        await #expect(throws: TestFailure(description: "corrupt")) {
            for try await value in channel { received.append(value) }
        }
        try await producer.value
        #expect(received == [0, 1, 2, 3, 4])
    }

    @Test func closeStopsSenders() async throws {
        let channel = BoundedChannel<Int>(capacity: 1)
        try await channel.send(0)
        let waiting = Task { try await channel.send(1) }
        await eventually { channel.waitingSenderCount == 1 }
        channel.close()
        await #expect(throws: ChannelClosedError.self) { try await waiting.value }
        await #expect(throws: ChannelClosedError.self) { try await channel.send(2) }
        #expect(try await channel.next() == nil)
    }

    @Test func cancelledSenderLeavesTheChannelUsable() async throws {
        let channel = BoundedChannel<Int>(capacity: 1)
        try await channel.send(0)
        let waiting = Task { try await channel.send(1) }
        await eventually { channel.waitingSenderCount == 1 }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(channel.waitingSenderCount == 0)
        #expect(try await channel.next() == 0)
        try await channel.send(2)
        channel.finish()
        #expect(try await channel.next() == 2)
        #expect(try await channel.next() == nil)
    }

    @Test func cancelledReceiverThrows() async throws {
        let channel = BoundedChannel<Int>(capacity: 1)
        let waiting = Task { try await channel.next() }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        try await channel.send(5)
        #expect(try await channel.next() == 5)
    }

    @Test func batchTakesOnlyWhatIsWaitingUpToTheLimit() async throws {
        let channel = BoundedChannel<LiveItem>(capacity: 8)
        for item in [LiveItem.frame(0), .packet(1), .frame(2), .frame(3), .packet(4)] {
            try await channel.send(item)
        }
        let first = try await channel.next(upTo: 2, counting: { $0.isFrame })
        #expect(first == [.frame(0), .packet(1), .frame(2)])
        let second = try await channel.next(upTo: 2, counting: { $0.isFrame })
        #expect(second == [.frame(3), .packet(4)])
        channel.finish()
        #expect(try await channel.next(upTo: 2).isEmpty)
    }
}

/// Finishes `channel` and receives everything still in it.
func drained<Element: Sendable>(_ channel: BoundedChannel<Element>) async throws -> [Element] {
    channel.finish()
    var rest: [Element] = []
    for try await value in channel { rest.append(value) }
    return rest
}
