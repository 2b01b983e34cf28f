import Foundation

/// Linux's `/proc` files, which report a size of 0: Foundation's whole-file reads
/// (`String(contentsOfFile:)`) stop after the first page of them, so they are read to the end here.
public enum ProcFile {
    /// The text of `path` (e.g. `/proc/self/maps`), nil where it cannot be read.
    public static func text(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        do {
            return String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        } catch {
            return nil
        }
    }
}
