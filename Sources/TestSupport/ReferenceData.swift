import Foundation

/// Locates test material: the package's own files and the optional shared parity suite.
public enum ReferenceData {
    /// The package root (the folder holding Package.swift).
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    /// `../shared/reference` beside the package, or `$CAMVID_REFERENCE`, when it exists.
    public static let referenceDirectory: URL? = {
        let candidates = [
            ProcessInfo.processInfo.environment["CAMVID_REFERENCE"].map { URL(fileURLWithPath: $0) },
            packageRoot.deletingLastPathComponent().appendingPathComponent("shared/reference"),
        ].compactMap { $0 }
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("manifest.json").path) }
    }()

    /// The reference directory, or nil after printing one clear line saying the test is skipped.
    public static func referenceOrSkip(_ test: String) -> URL? {
        if let referenceDirectory { return referenceDirectory }
        print("SKIPPED \(test): the parity suite ../shared/reference (or $CAMVID_REFERENCE) is not present")
        return nil
    }

    /// A file of the package, by path relative to the package root (e.g. `Samples/bigbuckbunny.mp4`).
    public static func packageFile(_ relativePath: String) -> URL {
        packageRoot.appendingPathComponent(relativePath)
    }

    /// A fresh temporary directory for one test's outputs.
    public static func temporaryDirectory(_ name: String = "camvid-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(name)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes the first `fraction` of `source`'s bytes to `cut`: a file cut short in transfer.
    public static func cutShort(_ source: URL, keeping fraction: Double, to cut: URL) throws {
        let bytes = try Data(contentsOf: source)
        try bytes.prefix(Int(Double(bytes.count) * fraction)).write(to: cut)
    }
}
