import Core
import Foundation
import ONNX
import SwiftProtobuf

/// One attribute value of an ONNX node, decoded from the protobuf.
enum AttributeValue: Sendable {
    case int(Int)
    case float(Float)
    case string(String)
    case ints([Int])
    case floats([Float])
    case tensor(Constant)
    case unsupported(String)
}

/// A tensor known at load time. Integer and boolean tensors (shapes, indices, masks) keep their exact 64-bit values,
/// since float32 holds integers exactly only up to 2^24 (an exporter's "to the end" is INT64_MAX).
struct Constant: Sendable {
    /// The values as float32: what a step reads at run time.
    var tensor: Tensor
    /// The exact values when ONNX typed the tensor as an integer or boolean, else nil.
    var integers: [Int]?

    var isInteger: Bool { integers != nil }
    var shape: [Int] { tensor.shape }

    /// A float tensor.
    init(tensor: Tensor) {
        self.tensor = tensor
        integers = nil
    }

    /// An integer tensor of `shape` holding `integers` (row-major).
    init(shape: [Int], integers: [Int]) {
        self.integers = integers
        tensor = Tensor(shape: shape, storage: integers.map { Float($0) })
    }
}

/// A node of the graph with its attributes decoded.
struct Node: Sendable {
    var name: String
    var opType: String
    var domain: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [String: AttributeValue]

    /// `opType` and name, for error messages.
    var label: String { "\(opType) node '\(name)'" }

    func int(_ key: String, _ fallback: Int) throws -> Int {
        guard let value = attributes[key] else { return fallback }
        guard case .int(let v) = value else { throw EngineError("\(label): attribute '\(key)' must be an int") }
        return v
    }

    func float(_ key: String, _ fallback: Float) throws -> Float {
        guard let value = attributes[key] else { return fallback }
        switch value {
        case .float(let v): return v
        case .int(let v): return Float(v)
        default: throw EngineError("\(label): attribute '\(key)' must be a float")
        }
    }

    func ints(_ key: String) throws -> [Int]? {
        guard let value = attributes[key] else { return nil }
        switch value {
        case .ints(let v): return v
        case .int(let v): return [v]
        default: throw EngineError("\(label): attribute '\(key)' must be a list of ints")
        }
    }

    func string(_ key: String, _ fallback: String) throws -> String {
        guard let value = attributes[key] else { return fallback }
        guard case .string(let v) = value else { throw EngineError("\(label): attribute '\(key)' must be a string") }
        return v
    }

    /// Throws when the node carries an attribute outside `known`.
    func checkAttributes(_ known: Set<String>) throws {
        for key in attributes.keys.sorted() where !known.contains(key) {
            throw EngineError("\(label): unsupported attribute '\(key)'")
        }
    }
}

/// An ONNX model reduced to what the engine executes: nodes, constants, input and outputs.
struct Model: Sendable {
    var nodes: [Node]
    var constants: [String: Constant]
    var inputName: String
    /// The declared input dimensions (nil where symbolic).
    var inputDimensions: [Int?]
    var outputNames: [String]
    /// The model's metadata (`metadata_props`: an exporter's class names, strides, input size...).
    var metadata: [String: String]
    var opset: Int

    /// Parses a serialised `ModelProto`; external tensor data is read relative to `baseDirectory`.
    init(data: Data, baseDirectory: URL?) throws {
        let proto: Onnx_ModelProto
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 64
            proto = try Onnx_ModelProto(serializedBytes: data, options: options)
        } catch {
            throw EngineError("not a readable ONNX model (\(error))")
        }
        guard proto.hasGraph else { throw EngineError("the ONNX model has no graph") }
        let graph = proto.graph
        opset = Int(proto.opsetImport.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }?.version ?? 0)
        guard opset > 0 else { throw EngineError("the ONNX model does not import the default operator set") }
        guard (7...22).contains(opset) else {
            throw EngineError("ONNX opset \(opset) is not supported (supported: 11 to 21)")
        }
        var external = ExternalData(baseDirectory: baseDirectory)
        var constants: [String: Constant] = [:]
        for initializer in graph.initializer {
            constants[initializer.name] = try Model.constant(initializer, external: &external)
        }
        let initializerNames = Set(constants.keys)
        guard let input = graph.input.first(where: { !initializerNames.contains($0.name) }) else {
            throw EngineError("the ONNX graph has no input")
        }
        let extraInputs = graph.input.filter { !initializerNames.contains($0.name) && $0.name != input.name }
        if let extra = extraInputs.first {
            throw EngineError("the ONNX graph has more than one input ('\(input.name)', '\(extra.name)'); one image input is supported")
        }
        inputName = input.name
        inputDimensions = input.type.tensorType.shape.dim.map { dim in
            if case .dimValue(let v)? = dim.value, v > 0 { return Int(v) }
            return nil
        }
        outputNames = graph.output.map(\.name)
        metadata = Dictionary(proto.metadataProps.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        guard !outputNames.isEmpty else { throw EngineError("the ONNX graph has no output") }

        var nodes: [Node] = []
        for (index, proto) in graph.node.enumerated() {
            let name = proto.name.isEmpty ? "\(proto.opType)_\(index)" : proto.name
            var attributes: [String: AttributeValue] = [:]
            for attribute in proto.attribute {
                attributes[attribute.name] = try Model.attribute(attribute, node: name, external: &external)
            }
            nodes.append(Node(name: name, opType: proto.opType, domain: proto.domain,
                              inputs: proto.input, outputs: proto.output, attributes: attributes))
        }
        self.constants = constants
        self.nodes = try Model.topologicallySorted(nodes, available: initializerNames.union([inputName]))
    }

    /// Orders nodes so that every node follows the producers of its inputs; rejects cycles and dangling inputs.
    static func topologicallySorted(_ nodes: [Node], available: Set<String>) throws -> [Node] {
        var producer: [String: Int] = [:]
        for (index, node) in nodes.enumerated() {
            for output in node.outputs where !output.isEmpty {
                if producer[output] != nil || available.contains(output) {
                    throw EngineError("\(node.label): tensor '\(output)' is produced twice")
                }
                producer[output] = index
            }
        }
        var state = [UInt8](repeating: 0, count: nodes.count)  // 0 new, 1 visiting, 2 done
        var order: [Int] = []
        for start in nodes.indices where state[start] == 0 {
            // Iterative depth-first search so that deep graphs cannot overflow the stack.
            var stack: [(Int, Int)] = [(start, 0)]
            state[start] = 1
            while let (index, next) = stack.last {
                let inputs = nodes[index].inputs
                if next < inputs.count {
                    stack[stack.count - 1].1 += 1
                    let name = inputs[next]
                    if name.isEmpty || available.contains(name) { continue }
                    guard let source = producer[name] else {
                        throw EngineError("\(nodes[index].label): input '\(name)' is not produced by any node")
                    }
                    if state[source] == 1 { throw EngineError("\(nodes[index].label): the graph has a cycle") }
                    if state[source] == 0 {
                        state[source] = 1
                        stack.append((source, 0))
                    }
                } else {
                    state[index] = 2
                    order.append(index)
                    stack.removeLast()
                }
            }
        }
        return order.map { nodes[$0] }
    }

    static func attribute(_ proto: Onnx_AttributeProto, node: String, external: inout ExternalData) throws -> AttributeValue {
        switch proto.type {
        case .int: return .int(try checkedInt(proto.i, node: node))
        case .float: return .float(proto.f)
        case .string: return .string(String(decoding: proto.s, as: UTF8.self))
        case .ints: return .ints(try proto.ints.map { try checkedInt($0, node: node) })
        case .floats: return .floats(proto.floats)
        case .tensor: return .tensor(try constant(proto.t, external: &external))
        default:
            // Infer from the populated field when the type is missing (older exporters).
            if proto.hasT { return .tensor(try constant(proto.t, external: &external)) }
            if !proto.ints.isEmpty { return .ints(try proto.ints.map { try checkedInt($0, node: node) }) }
            if !proto.floats.isEmpty { return .floats(proto.floats) }
            if proto.hasI { return .int(try checkedInt(proto.i, node: node)) }
            if proto.hasF { return .float(proto.f) }
            if proto.hasS { return .string(String(decoding: proto.s, as: UTF8.self)) }
            return .unsupported("\(proto.type)")
        }
    }

    /// An attribute's integer (a kernel size, stride, pad, axis or legacy slice bound), saturated at ±2^31: no valid
    /// value is larger, "to the end" sentinels keep their meaning, and shape arithmetic on them cannot overflow.
    private static func checkedInt(_ value: Int64, node: String) throws -> Int {
        Int(min(max(value, -(1 << 31)), 1 << 31))
    }

    /// Decodes a `TensorProto` (float, double, float16, integer and boolean types) into a float tensor.
    static func constant(_ proto: Onnx_TensorProto, external: inout ExternalData) throws -> Constant {
        guard proto.dims.allSatisfy({ $0 >= 0 && $0 < (1 << 31) }) else {
            throw EngineError("tensor '\(proto.name)' has invalid dimensions \(proto.dims)")
        }
        let shape = proto.dims.map { Int($0) }
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product < (1 << 34) else { throw EngineError("tensor '\(proto.name)' is too large: \(shape)") }
            count = product
        }
        var raw = proto.rawData
        if proto.dataLocation == .external {
            raw = try external.read(proto)
        }
        let type = proto.dataType
        let itemSize: Int
        let isInteger: Bool
        switch type {
        case 1: itemSize = 4; isInteger = false             // FLOAT
        case 11: itemSize = 8; isInteger = false            // DOUBLE
        case 10: itemSize = 2; isInteger = false            // FLOAT16
        case 6: itemSize = 4; isInteger = true              // INT32
        case 7: itemSize = 8; isInteger = true              // INT64
        case 2, 3, 9: itemSize = 1; isInteger = true        // UINT8, INT8, BOOL
        case 5, 4: itemSize = 2; isInteger = true           // INT16, UINT16
        default: throw EngineError("tensor '\(proto.name)' has unsupported data type \(type)")
        }
        /// The elements as `read` decodes each from the raw bytes, else `typed` (the proto's typed field).
        func elements<T>(_ typed: @autoclosure () -> [T], _ read: (UnsafeRawPointer) -> T) throws -> [T] {
            if raw.isEmpty {
                let values = typed()
                guard values.count == count else { throw EngineError("tensor '\(proto.name)': \(values.count) values for shape \(shape)") }
                return values
            }
            guard raw.count == count * itemSize else {
                throw EngineError("tensor '\(proto.name)': \(raw.count) bytes of data for shape \(shape) (expected \(count * itemSize))")
            }
            return raw.withUnsafeBytes { bytes in
                (0..<count).map { i in read(bytes.baseAddress!.advanced(by: i * itemSize)) }
            }
        }
        if isInteger {
            let values: [Int] = try elements(type == 7 ? proto.int64Data.map { Int($0) } : proto.int32Data.map { Int($0) }) { p in
                switch type {
                case 6: Int(Int32(littleEndian: p.loadUnaligned(as: Int32.self)))
                case 7: Int(Int64(littleEndian: p.loadUnaligned(as: Int64.self)))
                case 3: Int(p.load(as: Int8.self))
                case 5: Int(Int16(littleEndian: p.loadUnaligned(as: Int16.self)))
                case 4: Int(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
                default: Int(p.load(as: UInt8.self))
                }
            }
            return Constant(shape: shape, integers: values)
        }
        let typed: [Float] = switch type {
        case 1: proto.floatData
        case 11: proto.doubleData.map { Float($0) }
        default: proto.int32Data.map { Model.halfToFloat(UInt16(truncatingIfNeeded: $0)) }
        }
        let values: [Float] = try elements(typed) { p in
            switch type {
            case 1: Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
            case 11: Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))))
            default: Model.halfToFloat(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
            }
        }
        return Constant(tensor: Tensor(shape: shape, storage: values))
    }

    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            let magnitude = Float(mantissa) * Float(pow(2.0, -24.0))
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}

/// Reads tensors stored outside the model file (`data_location: EXTERNAL`), caching opened files.
struct ExternalData {
    let baseDirectory: URL?
    private var files: [String: Data] = [:]

    init(baseDirectory: URL?) {
        self.baseDirectory = baseDirectory
    }

    mutating func read(_ proto: Onnx_TensorProto) throws -> Data {
        var entries: [String: String] = [:]
        for entry in proto.externalData { entries[entry.key] = entry.value }
        guard let location = entries["location"], !location.isEmpty else {
            throw EngineError("tensor '\(proto.name)' is external but names no location")
        }
        guard let baseDirectory else {
            throw EngineError("tensor '\(proto.name)' is stored in '\(location)' but the model was given without a directory")
        }
        guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
            throw EngineError("tensor '\(proto.name)': external location '\(location)' leaves the model's directory")
        }
        let url = baseDirectory.appendingPathComponent(location)
        if files[location] == nil {
            guard let data = try? Data(contentsOf: url, options: .alwaysMapped) else {
                throw EngineError("tensor '\(proto.name)': cannot read external data file \(url.path)")
            }
            files[location] = data
        }
        let file = files[location] ?? Data()
        let offset = Int(entries["offset"] ?? "0") ?? -1
        let length = entries["length"].map { Int($0) ?? -1 } ?? (file.count - max(offset, 0))
        guard offset >= 0, length >= 0, offset + length <= file.count else {
            throw EngineError("tensor '\(proto.name)': external range offset \(offset) length \(length) is outside \(url.lastPathComponent) (\(file.count) bytes)")
        }
        return file.subdata(in: offset..<(offset + length))
    }
}
