import Foundation

/// Reading and writing NumPy `.npy` files (format versions 1 to 3) holding float32 tensors.
///
/// Reads little-endian `<f4`, and converts `<f2`, `<f8`, `<i8`, `<i4`, `|u1` and `|b1` to float32
/// so that NumPy arrays of any common dtype can be fed in; writes `<f4` in C order, version 1.
public enum NumPyFile {
    /// A malformed or unsupported `.npy` file.
    public struct FormatError: Error, CustomStringConvertible, Sendable {
        /// What is wrong, naming the file when known.
        public let description: String
    }

    /// Reads a tensor from the `.npy` file at `path`.
    public static func read(path: String) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FormatError(description: "\(path): cannot read file")
        }
        do {
            return try decode(data)
        } catch let error as FormatError {
            throw FormatError(description: "\(path): \(error.description)")
        }
    }

    /// Writes `tensor` as a float32 `.npy` file at `path`.
    public static func write(_ tensor: Tensor, path: String) throws {
        let url = URL(fileURLWithPath: path)
        do {
            try encode(tensor).write(to: url)
        } catch {
            throw FormatError(description: "\(path): cannot write file (\(error.localizedDescription))")
        }
    }

    /// Decodes the bytes of a `.npy` file.
    public static func decode(_ data: Data) throws -> Tensor {
        let bytes = [UInt8](data)
        let (shape, dtype, body) = try header(of: bytes)
        let count = Tensor.elementCount(shape)
        let itemSize: Int
        switch dtype {
        case "<f4", "<i4": itemSize = 4
        case "<f8", "<i8": itemSize = 8
        case "|u1", "|b1", "<u1": itemSize = 1
        case "<f2": itemSize = 2
        default: throw FormatError(description: "unsupported dtype \(dtype); use float32")
        }
        guard bytes.count - body >= count * itemSize else {
            throw FormatError(description: "truncated data: \(shape) \(dtype) needs \(count * itemSize) bytes, file has \(bytes.count - body)")
        }
        var storage = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress!.advanced(by: body)
            for i in 0..<count {
                let p = base.advanced(by: i * itemSize)
                switch dtype {
                case "<f4": storage[i] = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
                case "<f8": storage[i] = Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))))
                case "<f2": storage[i] = Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(as: UInt16.self))))
                case "<i4": storage[i] = Float(Int32(littleEndian: p.loadUnaligned(as: Int32.self)))
                case "<i8": storage[i] = Float(Int64(littleEndian: p.loadUnaligned(as: Int64.self)))
                default: storage[i] = Float(p.load(as: UInt8.self))
                }
            }
        }
        return Tensor(shape: shape, storage: storage)
    }

    /// The shape, dtype (`<f4`, …) and data offset of the `.npy` file whose first bytes are `bytes`
    /// (the header is small: a file's first 4 KiB hold it).
    public static func header(of bytes: [UInt8]) throws -> (shape: [Int], dtype: String, dataOffset: Int) {
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw FormatError(description: "not a NumPy .npy file (bad magic)")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw FormatError(description: "truncated .npy header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw FormatError(description: "unsupported .npy version \(major)")
        }
        guard headerStart + headerLength <= bytes.count,
              let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: .ascii)
        else { throw FormatError(description: "truncated .npy header") }
        let descr = try field("descr", in: header)
        let fortran = try field("fortran_order", in: header)
        let shapeText = try field("shape", in: header)
        guard fortran.hasPrefix("False") else {
            throw FormatError(description: "Fortran-ordered arrays are not supported; save with np.ascontiguousarray")
        }
        let shape = try parseShape(shapeText)
        let dtype = String(descr.dropFirst().prefix { $0 != "'" && $0 != "\"" })
        return (shape, dtype, headerStart + headerLength)
    }

    /// Encodes a tensor as the bytes of a version-1 float32 `.npy` file (C order, whatever the tensor's storage order).
    public static func encode(_ tensor: Tensor) -> Data {
        var data = header(shape: tensor.shape)
        tensor.reordered(to: .channelsFirst).storage.withUnsafeBufferPointer { buffer in
            var littleEndian = buffer.map { $0.bitPattern.littleEndian }
            data.append(Data(bytes: &littleEndian, count: littleEndian.count * 4))
        }
        return data
    }

    /// The header of a version-1 float32 C-order `.npy` file holding `shape`: padded with spaces
    /// so that the data starts on a 64-byte boundary, or at byte `length` when given (a header
    /// rewritten in place as an array grows keeps its length).
    public static func header(shape: [Int], length: Int? = nil) -> Data {
        let dims = shape.map(String.init)
        let shapeText = shape.count == 1 ? "(\(dims[0]),)" : "(\(dims.joined(separator: ", ")))"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        // The header ends in a newline; the magic, version and length take 10 bytes.
        let unpadded = 10 + header.utf8.count + 1
        let padding = length.map { $0 - unpadded } ?? (64 - unpadded % 64) % 64
        header += String(repeating: " ", count: max(0, padding)) + "\n"
        var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let count = UInt16(header.utf8.count)
        data.append(UInt8(count & 0xFF))
        data.append(UInt8(count >> 8))
        data.append(contentsOf: Array(header.utf8))
        return data
    }

    private static func field(_ key: String, in header: String) throws -> String {
        guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\""),
              let colon = header[keyRange.upperBound...].firstIndex(of: ":")
        else { throw FormatError(description: "header has no '\(key)'") }
        return String(header[header.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
    }

    private static func parseShape(_ text: String) throws -> [Int] {
        guard let open = text.firstIndex(of: "("), let close = text.firstIndex(of: ")"), open < close else {
            throw FormatError(description: "malformed shape")
        }
        let inner = text[text.index(after: open)..<close]
        return try inner.split(separator: ",").compactMap { part -> Int? in
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { return nil }
            guard let value = Int(trimmed), value >= 0 else { throw FormatError(description: "malformed shape \(text)") }
            return value
        }
    }
}
