import Foundation

/// Thrown by `BoundedChannel.send` once the receiving side has called `close()`: nobody will read.
public struct ChannelClosedError: Error, CustomStringConvertible, Sendable {
    /// The error's one-line text.
    public var description: String { "the receiving stage has stopped" }
}

/// A first-in first-out channel holding at most `capacity` elements between two stages.
///
/// Written here rather than taken from swift-async-algorithms because its `AsyncChannel`
/// is a rendezvous with no buffer and no drop policy: the pipeline needs a buffer so that
/// stages overlap, a bound so that memory stays flat (`send` suspends while the channel is
/// full), a drop-oldest policy for live sources, and an end that can carry an error
/// after every element sent before it.
///
/// Any number of tasks may send and receive; waiting senders are served in arrival order.
/// A task cancelled while it waits leaves with `CancellationError` and changes nothing else.
public final class BoundedChannel<Element: Sendable>: @unchecked Sendable {
    /// What `send` does when the channel is full.
    public enum OverflowPolicy: Sendable {
        /// Wait until the receiver makes room (back-pressure).
        case suspend
        /// Discard the oldest buffered element for which the predicate holds and count it;
        /// wait as with `suspend` when no buffered element may be dropped.
        case dropOldest(where: @Sendable (Element) -> Bool)

        /// Drop any element.
        public static var dropOldest: OverflowPolicy { .dropOldest(where: { _ in true }) }
    }

    /// How many elements may wait in the channel.
    public let capacity: Int
    private let policy: OverflowPolicy

    // All state below is guarded by `lock`; continuations are resumed after unlocking.
    private let lock = NSLock()
    private var buffer: RingBuffer<Element>
    private var senders: [(id: UInt64, element: Element, continuation: CheckedContinuation<Void, Error>)] = []
    private var receivers: [(id: UInt64, limit: Int, counts: @Sendable (Element) -> Bool, continuation: CheckedContinuation<[Element], Error>)] = []
    private var end: End?
    private var closed = false
    private var dropped = 0
    private var nextWaiterID: UInt64 = 0

    private enum End {
        case finished
        case failed(Error)
    }

    /// A channel holding up to `capacity` elements (at least 1).
    public init(capacity: Int, overflow policy: OverflowPolicy = .suspend) {
        self.capacity = Swift.max(1, capacity)
        self.policy = policy
        self.buffer = RingBuffer(capacity: Swift.max(1, capacity))
    }

    /// How many elements the drop-oldest policy has discarded so far.
    public var droppedCount: Int {
        lock.withLock { dropped }
    }

    /// How many senders are waiting for room now (for tests and diagnostics).
    public var waitingSenderCount: Int {
        lock.withLock { senders.count }
    }

    /// How many elements are buffered now (for tests and diagnostics).
    public var bufferedCount: Int {
        lock.withLock { buffer.count }
    }

    /// Appends `element`, suspending while the channel is full (or dropping the oldest, by policy).
    ///
    /// Throws `ChannelClosedError` when the receiver has closed the channel, and `CancellationError`
    /// when the sending task is cancelled while waiting (the element is then not sent).
    /// Sending after `finish` is a programming error and is ignored.
    public func send(_ element: Element) async throws {
        try Task.checkCancellation()
        let id = lock.withLock { () -> UInt64 in
            nextWaiterID += 1
            return nextWaiterID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                var wake: [() -> Void] = []
                lock.lock()
                if closed {
                    lock.unlock()
                    continuation.resume(throwing: ChannelClosedError())
                    return
                }
                if end != nil {
                    lock.unlock()
                    continuation.resume()
                    return
                }
                if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(throwing: CancellationError())
                    return
                }
                if buffer.count < capacity && senders.isEmpty {
                    buffer.append(element)
                    wake = serveReceivers()
                    lock.unlock()
                    continuation.resume()
                    wake.forEach { $0() }
                    return
                }
                if case .dropOldest(let droppable) = policy, senders.isEmpty,
                   let victim = buffer.firstIndex(where: droppable) {
                    buffer.remove(at: victim)
                    dropped += 1
                    buffer.append(element)
                    lock.unlock()
                    continuation.resume()
                    return
                }
                senders.append((id, element, continuation))
                lock.unlock()
            }
        } onCancel: {
            let waiter = lock.withLock { () -> CheckedContinuation<Void, Error>? in
                guard let index = senders.firstIndex(where: { $0.id == id }) else { return nil }
                return senders.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Ends the channel: the receiver gets every buffered element, then `nil` (or `error`).
    ///
    /// Senders still waiting keep their place and are delivered first. Later calls are ignored.
    public func finish(throwing error: Error? = nil) {
        let wake: [() -> Void] = lock.withLock {
            guard end == nil else { return [] }
            end = error.map { .failed($0) } ?? .finished
            return serveReceivers()
        }
        wake.forEach { $0() }
    }

    /// Stops the channel from the receiving side: buffered and waiting elements are discarded
    /// and every present and future `send` throws `ChannelClosedError`, so upstream stages stop.
    public func close() {
        let wake: [() -> Void] = lock.withLock {
            closed = true
            buffer.removeAll()
            let waitingSenders = senders
            senders.removeAll()
            let waitingReceivers = receivers
            receivers.removeAll()
            return waitingSenders.map { sender in { sender.continuation.resume(throwing: ChannelClosedError()) } }
                + waitingReceivers.map { receiver in { receiver.continuation.resume(returning: []) } }
        }
        wake.forEach { $0() }
    }

    /// The next element, waiting while the channel is empty; `nil` after the end.
    ///
    /// Throws the error the channel was finished with, after every element sent before it.
    public func next() async throws -> Element? {
        try await next(upTo: 1).first
    }

    /// At least one element (waiting for it) and then as many more as are already buffered,
    /// stopping once `limit` elements for which `counts` holds have been taken.
    ///
    /// Returns an empty array after the end (or the close); throws the channel's error once
    /// every element before it has been received.
    public func next(upTo limit: Int, counting counts: @escaping @Sendable (Element) -> Bool = { _ in true }) async throws -> [Element] {
        try Task.checkCancellation()
        let id = lock.withLock { () -> UInt64 in
            nextWaiterID += 1
            return nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[Element], Error>) in
                lock.lock()
                if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(throwing: CancellationError())
                    return
                }
                if closed {
                    lock.unlock()
                    continuation.resume(returning: [])
                    return
                }
                receivers.append((id, Swift.max(1, limit), counts, continuation))
                let wake = serveReceivers()
                lock.unlock()
                wake.forEach { $0() }
            }
        } onCancel: {
            let waiter = lock.withLock { () -> CheckedContinuation<[Element], Error>? in
                guard let index = receivers.firstIndex(where: { $0.id == id }) else { return nil }
                return receivers.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Hands buffered elements to waiting receivers and refills from waiting senders.
    /// Called with the lock held; returns the resumptions to run after unlocking.
    private func serveReceivers() -> [() -> Void] {
        var wake: [() -> Void] = []
        while !receivers.isEmpty {
            refillFromSenders(into: &wake)
            if buffer.isEmpty {
                guard let end else { break }
                // Every element has been delivered: the end reaches each waiting receiver.
                let waiting = receivers
                receivers.removeAll()
                for receiver in waiting {
                    switch end {
                    case .finished: wake.append { receiver.continuation.resume(returning: []) }
                    case .failed(let error): wake.append { receiver.continuation.resume(throwing: error) }
                    }
                }
                break
            }
            let receiver = receivers.removeFirst()
            var taken: [Element] = []
            var counted = 0
            while counted < receiver.limit {
                if buffer.isEmpty { refillFromSenders(into: &wake) }
                guard let element = buffer.popFirst() else { break }
                if receiver.counts(element) { counted += 1 }
                taken.append(element)
            }
            refillFromSenders(into: &wake)
            wake.append { receiver.continuation.resume(returning: taken) }
        }
        return wake
    }

    /// Moves waiting senders' elements into free buffer slots, oldest sender first.
    private func refillFromSenders(into wake: inout [() -> Void]) {
        while buffer.count < capacity, !senders.isEmpty {
            let sender = senders.removeFirst()
            buffer.append(sender.element)
            wake.append { sender.continuation.resume() }
        }
    }
}

extension BoundedChannel: AsyncSequence {
    /// Receives elements until the end of the channel.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let channel: BoundedChannel

        /// The next element, or `nil` after the end.
        public mutating func next() async throws -> Element? {
            try await channel.next()
        }
    }

    /// An iterator over the channel's elements.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(channel: self)
    }
}

/// A fixed-capacity first-in first-out buffer without reallocation.
struct RingBuffer<Element> {
    private var slots: [Element?]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) {
        slots = Array(repeating: nil, count: capacity)
    }

    var isEmpty: Bool { count == 0 }

    mutating func append(_ element: Element) {
        slots[(head + count) % slots.count] = element
        count += 1
    }

    mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let element = slots[head]
        slots[head] = nil
        head = (head + 1) % slots.count
        count -= 1
        return element
    }

    /// The position (0 = oldest) of the first element matching `predicate`.
    func firstIndex(where predicate: (Element) -> Bool) -> Int? {
        for offset in 0..<count {
            if let element = slots[(head + offset) % slots.count], predicate(element) { return offset }
        }
        return nil
    }

    /// Removes the element at `offset` from the oldest, keeping the others' order.
    mutating func remove(at offset: Int) {
        for position in offset..<(count - 1) {
            slots[(head + position) % slots.count] = slots[(head + position + 1) % slots.count]
        }
        slots[(head + count - 1) % slots.count] = nil
        count -= 1
    }

    mutating func removeAll() {
        for index in slots.indices { slots[index] = nil }
        head = 0
        count = 0
    }
}
