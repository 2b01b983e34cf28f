import CDNNL
import Core
import Foundation

/// What the engine's kernels run on: the oneDNN library loaded, the instruction set its kernels use, its threads,
/// and the processor (for `camvid doctor` and bug reports).
public struct EngineRuntime: Sendable {
    /// The version the loaded oneDNN reports (`2.6.3`), and the headers' when they differ (`2.7.0, built against 2.6.3`).
    public let oneDNNVersion: String
    /// The file oneDNN was loaded from, when the loader can say.
    public let oneDNNFile: String?
    /// oneDNN's CPU threading runtime (`OpenMP`).
    public let threading: String
    /// The instruction set oneDNN's kernels use on this processor (`AVX2`), after any `DNNL_MAX_CPU_ISA` limit.
    public let instructionSet: String
    /// The threads a network call made now on the calling thread may use (OpenMP's team; see `NetworkThreads`).
    public let threadsPerCall: Int
    /// The processor's model name (`/proc/cpuinfo`), nil where it cannot be read.
    public let processor: String?
    /// Logical processors available to the process.
    public let logicalProcessors: Int

    /// What this process runs on.
    public static func current() -> EngineRuntime {
        let loaded = dnnl_version().pointee
        var version = "\(loaded.major).\(loaded.minor).\(loaded.patch)"
        let headers = "\(DNNL_VERSION_MAJOR).\(DNNL_VERSION_MINOR).\(DNNL_VERSION_PATCH)"
        if version != headers { version += ", built against \(headers)" }
        typealias VersionFunction = @convention(c) () -> UnsafePointer<dnnl_version_t>?
        let function: VersionFunction = dnnl_version
        return EngineRuntime(
            oneDNNVersion: version,
            oneDNNFile: LoadedLibrary.file(holding: unsafeBitCast(function, to: UnsafeRawPointer.self)),
            threading: runtimeName(loaded.cpu_runtime),
            instructionSet: instructionSetName(dnnl_get_effective_cpu_isa()),
            threadsPerCall: NetworkThreads.callingThreadLimit,
            processor: processorName(),
            logicalProcessors: ProcessInfo.processInfo.activeProcessorCount)
    }

    /// oneDNN's `DNNL_RUNTIME_*` values (dnnl_types.h).
    private static func runtimeName(_ runtime: UInt32) -> String {
        let names: [UInt32: String] = [0: "none", 1: "sequential", 2: "OpenMP", 4: "TBB", 8: "thread pool", 256: "OpenCL", 512: "SYCL"]
        return names[runtime] ?? "runtime \(runtime)"
    }

    private static func instructionSetName(_ isa: dnnl_cpu_isa_t) -> String {
        let names: [(dnnl_cpu_isa_t, String)] = [
            (dnnl_cpu_isa_all, "any"), (dnnl_cpu_isa_sse41, "SSE4.1"), (dnnl_cpu_isa_avx, "AVX"), (dnnl_cpu_isa_avx2, "AVX2"),
            (dnnl_cpu_isa_avx2_vnni, "AVX2 with VNNI"), (dnnl_cpu_isa_avx512_mic, "AVX-512 (Xeon Phi)"),
            (dnnl_cpu_isa_avx512_mic_4ops, "AVX-512 (Xeon Phi, 4FMAPS)"), (dnnl_cpu_isa_avx512_core, "AVX-512"),
            (dnnl_cpu_isa_avx512_core_vnni, "AVX-512 with VNNI"), (dnnl_cpu_isa_avx512_core_bf16, "AVX-512 with VNNI and BF16"),
            (dnnl_cpu_isa_avx512_core_amx, "AVX-512 with AMX"),
        ]
        return names.first { $0.0 == isa }?.1 ?? "ISA 0x" + String(isa.rawValue, radix: 16)
    }

    /// The first `model name` of `/proc/cpuinfo`.
    private static func processorName() -> String? {
        guard let text = ProcFile.text("/proc/cpuinfo") else { return nil }
        let line = text.split(separator: "\n").first { $0.hasPrefix("model name") }
        return line?.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
    }
}
