#if canImport(Glibc)
import Glibc
#endif

/// How many threads one network call may use: oneDNN parallelises each kernel with OpenMP, whose
/// thread count is a per-thread setting (`omp_set_num_threads`), so it is set on the thread that
/// runs the call, just before it.
///
/// In the video pipeline a single thread per call does more frames per CPU-second: the other
/// stages (decode, conversion, blend, the encoder's threads) keep the other cores busy, and
/// OpenMP's second thread would spend its waits spinning between the network's many short
/// kernels instead of leaving the core to them.
public enum NetworkThreads {
    private typealias SetNumThreads = @convention(c) (Int32) -> Void
    private typealias GetMaxThreads = @convention(c) () -> Int32

    // Looked up once; nil when OpenMP is not loaded (the engine then runs its calls as it does).
    private static let setNumThreads = openMPFunction("omp_set_num_threads", as: SetNumThreads.self)
    private static let getMaxThreads = openMPFunction("omp_get_max_threads", as: GetMaxThreads.self)

    private static func openMPFunction<Function>(_ name: String, as type: Function.Type) -> Function? {
        #if canImport(Glibc)
        guard let symbol = dlsym(nil, name) else { return nil }
        return unsafeBitCast(symbol, to: type)
        #else
        return nil
        #endif
    }

    /// The threads a network call made now on the calling thread may use (`omp_get_max_threads`),
    /// nil when OpenMP is not loaded.
    public static var callingThreadLimit: Int? { getMaxThreads.map { Int($0()) } }

    /// Whether the thread count can be set (OpenMP is loaded in this process).
    public static var isAvailable: Bool { setNumThreads != nil }

    /// Lets network calls made on the calling thread use `count` threads (at least 1).
    public static func limitCallingThread(to count: Int) {
        setNumThreads?(Int32(clamping: max(1, count)))
    }
}
