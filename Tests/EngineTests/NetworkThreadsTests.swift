import Engine
import Foundation
import Testing

/// `NetworkThreads`: OpenMP's thread count is a setting of the calling thread.
@Suite(.serialized) struct NetworkThreadsTests {
    @Test func limitAppliesToTheCallingThreadOnly() throws {
        NetworkThreads.limitCallingThread(to: 1)
        #expect(NetworkThreads.callingThreadLimit == 1)
        let elsewhere = Thread.detachNewThreadAndWait { NetworkThreads.callingThreadLimit }
        #expect(elsewhere != 1 || ProcessInfo.processInfo.activeProcessorCount == 1)
        NetworkThreads.limitCallingThread(to: 2)
        #expect(NetworkThreads.callingThreadLimit == 2)
        NetworkThreads.limitCallingThread(to: 0)
        #expect(NetworkThreads.callingThreadLimit == 1, "counts below 1 are raised to 1")
    }
}

extension Thread {
    /// Runs `body` on a new thread and waits for its result.
    static func detachNewThreadAndWait<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T? {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        Thread.detachNewThread {
            box.value = body()
            done.signal()
        }
        done.wait()
        return box.value
    }
}

/// A value handed from one thread to another, ordered by a semaphore.
final class ResultBox<T: Sendable>: @unchecked Sendable {
    var value: T?
}
