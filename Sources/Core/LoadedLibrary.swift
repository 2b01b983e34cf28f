import Foundation

/// Which files the dynamic loader took code from: the facts a bug report needs (`camvid doctor`).
public enum LoadedLibrary {
    /// The path of the mapped file (a shared library, or the executable itself) holding `address`, e.g. a function
    /// pointer, from `/proc/self/maps` (Glibc's Swift module lacks `dladdr`); nil where that cannot be read.
    public static func file(holding address: UnsafeRawPointer) -> String? {
        let value = UInt(bitPattern: address)
        guard let maps = ProcFile.text("/proc/self/maps") else { return nil }
        // Each line: `start-end perms offset device inode path`.
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            let range = fields.first?.split(separator: "-") ?? []
            guard fields.count == 6, range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
                  start <= value, value < end else { continue }
            let path = fields[5].trimmingCharacters(in: .whitespaces)
            return path.hasPrefix("/") ? path : nil
        }
        return nil
    }

    /// The path of the shared library called `soname` (`libswiftCore.so`) when this process has loaded it, found
    /// through `symbol`, one of its functions; nil when it is not loaded (it is never loaded by asking).
    public static func file(ofLoaded soname: String, defining symbol: String) -> String? {
        guard let handle = dlopen(soname, RTLD_LAZY | RTLD_NOLOAD) else { return nil }
        defer { dlclose(handle) }
        return dlsym(handle, symbol).flatMap { file(holding: $0) } ?? soname
    }
}
