import Dispatch

/// Owns one resource that is not thread-safe (a decoder, a converter, an encoder) and runs
/// every call on it on one private serial queue.
///
/// FFmpeg calls block (file, pipe and device reads, encoder writes); running them here keeps
/// them off Swift's cooperative thread pool, which has only as many threads as cores, so the
/// other stages keep running while one waits.
final class ResourceQueue<Resource>: @unchecked Sendable {
    // Touched only on `queue`, which serialises every access.
    private var resource: Resource
    private let queue: DispatchQueue

    init(_ resource: sending Resource, label: String) {
        self.resource = resource
        self.queue = DispatchQueue(label: "camvid.\(label)", qos: .userInitiated)
    }

    /// Runs `body` on the resource's queue and returns its result.
    func run<Result: Sendable>(_ body: @escaping @Sendable (inout Resource) throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                do {
                    continuation.resume(returning: try body(&self.resource))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}
