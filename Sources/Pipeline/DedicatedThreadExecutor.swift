import Foundation

/// A task executor running every job on one thread of its own, in order.
///
/// The explain stage runs there: the network's calls then always come from the same thread, so
/// glibc serves their large activation buffers from one arena (a second thread would grow a
/// second arena to the same peak), OpenMP keeps one setting and one team, and the long,
/// blocking network calls stay off Swift's cooperative pool, which the other stages share.
final class DedicatedThreadExecutor: TaskExecutor, @unchecked Sendable {
    // `jobs` and `stopped` are guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false

    /// Starts the thread, named `name` (seen in profilers and debuggers).
    init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        condition.withLock {
            jobs.append(unowned)
            condition.signal()
        }
    }

    /// Lets the thread end once the jobs already enqueued have run.
    func shutdown() {
        condition.withLock {
            stopped = true
            condition.signal()
        }
    }

    private func loop() {
        while true {
            let next: UnownedJob? = condition.withLock {
                while jobs.isEmpty && !stopped { condition.wait() }
                return jobs.isEmpty ? nil : jobs.removeFirst()
            }
            guard let next else { return }
            next.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
