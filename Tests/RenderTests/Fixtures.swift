import Foundation
import TestSupport

/// Reads the committed fixtures that scripts/gen-colormaps wrote with OpenCV and matplotlib.
enum Fixtures {
    /// A fixture file's URL.
    static func url(_ name: String) -> URL {
        ReferenceData.packageFile("Tests/RenderTests/Fixtures/\(name)")
    }

    /// A little-endian float32 2-D `.npy` file: its shape (rows, columns) and values.
    static func floatArray(_ name: String) throws -> (rows: Int, columns: Int, values: [Float]) {
        try floatArray(at: url(name))
    }

    /// A little-endian float32 2-D `.npy` file anywhere.
    static func floatArray(at file: URL) throws -> (rows: Int, columns: Int, values: [Float]) {
        let name = file.lastPathComponent
        let data = try Data(contentsOf: file)
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        guard header.contains("'descr': '<f4'"), header.contains("'fortran_order': False"),
              let open = header.firstIndex(of: "("), let close = header.firstIndex(of: ")")
        else { throw FixtureError.unreadable(name, header) }
        let dims = header[header.index(after: open)..<close].split(separator: ",")
            .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard dims.count == 2 else { throw FixtureError.unreadable(name, header) }
        let body = data[(10 + headerLength)...]
        var values = [Float](repeating: 0, count: dims[0] * dims[1])
        guard body.count == values.count * 4 else { throw FixtureError.unreadable(name, header) }
        values.withUnsafeMutableBytes { _ = body.copyBytes(to: $0) }
        return (dims[0], dims[1], values)
    }

    /// colormaps.txt: for each name, 768 bytes R, G, B of entries 0...255.
    static func colormapTables() throws -> [String: [UInt8]] {
        let text = try String(contentsOf: url("colormaps.txt"), encoding: .utf8)
        let lines = text.split(separator: "\n")
        let names = lines[0].split(separator: " ").dropFirst(2).enumerated()
            .filter { $0.offset % 3 == 0 }.map { String($0.element.split(separator: ".")[0]) }
        var tables = [String: [UInt8]](uniqueKeysWithValues: names.map { ($0, []) })
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ").compactMap { UInt8($0) }
            for (n, name) in names.enumerated() {
                tables[name]!.append(contentsOf: fields[(1 + 3 * n)..<(4 + 3 * n)])
            }
        }
        return tables
    }
}

/// A fixture that does not have the expected layout.
enum FixtureError: Error {
    case unreadable(String, String)
}
