import Foundation

/// An executor running every job on one thread of its own, in order: a stage actor's executor.
///
/// FFmpeg and oneDNN calls block (file, pipe and device reads, encoder writes, long network
/// kernels); on threads of their own they stay off Swift's cooperative pool, which has only as
/// many threads as cores, so the other stages keep running while one waits. The network's calls
/// then also always come from the same thread, so glibc serves their large buffers from one
/// arena and OpenMP keeps one setting and one team.
final class ThreadExecutor: SerialExecutor, TaskExecutor, @unchecked Sendable {
    // `jobs` and `stopped` are guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false

    /// Starts the thread, named `name` (at most 15 bytes on Linux; seen in `top -H`, profilers and debuggers).
    init(name: String) {
        let thread = Thread { [self] in
            // Foundation on Linux does not pass a thread's name to the system: the kernel takes it here.
            try? name.write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            loop()
        }
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
            next.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
        }
    }
}
