import CDNNL

/// How many threads one network call may use: oneDNN parallelises each kernel with OpenMP, whose
/// thread count is a per-thread setting (`omp_set_num_threads`), so it is set on the thread that
/// runs the call, just before it.
///
/// In the video pipeline a single thread per call does more frames per CPU-second: the other
/// stages (decode, conversion, blend, the encoder's threads) keep the other cores busy, and
/// OpenMP's second thread would spend its waits spinning between the network's many short
/// kernels instead of leaving the core to them.
public enum NetworkThreads {
    /// The threads a network call made now on the calling thread may use (`omp_get_max_threads`).
    public static var callingThreadLimit: Int { Int(omp_get_max_threads()) }

    /// Lets network calls made on the calling thread use `count` threads (at least 1).
    public static func limitCallingThread(to count: Int) {
        omp_set_num_threads(Int32(clamping: max(1, count)))
    }
}
