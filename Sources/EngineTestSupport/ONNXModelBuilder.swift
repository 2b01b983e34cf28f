import Core
import Foundation
import ONNX
import SwiftProtobuf

/// An attribute value for `ONNXModelBuilder`.
public enum ONNXAttribute: Sendable {
    /// An integer.
    case int(Int)
    /// A float.
    case float(Float)
    /// A string.
    case string(String)
    /// A list of integers.
    case ints([Int])
    /// A list of floats.
    case floats([Float])
    /// A float tensor (e.g. a Constant's value).
    case tensor(Tensor)
    /// An int64 tensor (e.g. a Constant holding a shape).
    case integerTensor(Tensor)
}

/// Builds small ONNX models in memory: for tests that need a graph without an exporter.
public struct ONNXModelBuilder: Sendable {
    private var graph = Onnx_GraphProto()
    private var metadata: [(key: String, value: String)] = []
    private let opset: Int

    /// A graph with one float input of the given shape (nil = symbolic dimension).
    public init(opset: Int = 17, inputName: String = "input", inputShape: [Int?]) {
        self.opset = opset
        graph.name = "camvid-built"
        var input = Onnx_ValueInfoProto()
        input.name = inputName
        var type = Onnx_TypeProto.Tensor()
        type.elemType = 1
        type.shape.dim = inputShape.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            if let d { dim.dimValue = Int64(d) } else { dim.dimParam = "batch" }
            return dim
        }
        input.type.tensorType = type
        graph.input = [input]
    }

    private static func tensorProto(_ name: String, _ tensor: Tensor, integer: Bool) -> Onnx_TensorProto {
        var proto = Onnx_TensorProto()
        proto.name = name
        proto.dims = tensor.shape.map { Int64($0) }
        if integer {
            proto.dataType = 7
            proto.int64Data = tensor.storage.map { Int64($0) }
        } else {
            proto.dataType = 1
            proto.floatData = tensor.storage
        }
        return proto
    }

    /// Adds a constant tensor (float32, or int64 when `integer`).
    public mutating func addInitializer(_ name: String, _ tensor: Tensor, integer: Bool = false) {
        graph.initializer.append(Self.tensorProto(name, tensor, integer: integer))
    }

    /// Adds an int64 constant of `shape` holding exactly `values` (row-major).
    public mutating func addInitializer(_ name: String, shape: [Int], int64 values: [Int64]) {
        var proto = Onnx_TensorProto()
        proto.name = name
        proto.dims = shape.map { Int64($0) }
        proto.dataType = 7
        proto.int64Data = values
        graph.initializer.append(proto)
    }

    /// Adds a float32 constant stored in the side file `location` at byte `offset` (`data_location: EXTERNAL`).
    ///
    /// The caller writes the little-endian float32 bytes into that file.
    public mutating func addExternalInitializer(_ name: String, shape: [Int], location: String, offset: Int) {
        var proto = Onnx_TensorProto()
        proto.name = name
        proto.dims = shape.map { Int64($0) }
        proto.dataType = 1
        proto.dataLocation = .external
        proto.externalData = [("location", location), ("offset", "\(offset)"), ("length", "\(Tensor.elementCount(shape) * 4)")].map {
            var entry = Onnx_StringStringEntryProto()
            entry.key = $0.0
            entry.value = $0.1
            return entry
        }
        graph.initializer.append(proto)
    }

    /// Adds a node; its name defaults to `opType_index`.
    public mutating func addNode(_ opType: String, inputs: [String], outputs: [String], name: String? = nil,
                                 attributes: [String: ONNXAttribute] = [:]) {
        var node = Onnx_NodeProto()
        node.opType = opType
        node.name = name ?? "\(opType)_\(graph.node.count)"
        node.input = inputs
        node.output = outputs
        node.attribute = attributes.keys.sorted().map { key in
            var attribute = Onnx_AttributeProto()
            attribute.name = key
            switch attributes[key]! {
            case .int(let v): attribute.type = .int; attribute.i = Int64(v)
            case .float(let v): attribute.type = .float; attribute.f = v
            case .string(let v): attribute.type = .string; attribute.s = Data(v.utf8)
            case .ints(let v): attribute.type = .ints; attribute.ints = v.map { Int64($0) }
            case .floats(let v): attribute.type = .floats; attribute.floats = v
            case .tensor(let t): attribute.type = .tensor; attribute.t = Self.tensorProto("", t, integer: false)
            case .integerTensor(let t): attribute.type = .tensor; attribute.t = Self.tensorProto("", t, integer: true)
            }
            return attribute
        }
        graph.node.append(node)
    }

    /// Declares a graph output.
    public mutating func addOutput(_ name: String) {
        var output = Onnx_ValueInfoProto()
        output.name = name
        graph.output.append(output)
    }

    /// Adds a model metadata entry (`metadata_props`), as exporters write class names.
    public mutating func addMetadata(_ key: String, _ value: String) {
        metadata.append((key, value))
    }

    /// The serialised `ModelProto`.
    public func serialized() throws -> Data {
        var model = Onnx_ModelProto()
        model.metadataProps = metadata.map { entry in
            var property = Onnx_StringStringEntryProto()
            (property.key, property.value) = (entry.key, entry.value)
            return property
        }
        model.irVersion = 8
        model.producerName = "camvid"
        var set = Onnx_OperatorSetIdProto()
        set.version = Int64(opset)
        model.opsetImport = [set]
        model.graph = graph
        return try model.serializedData()
    }
}
