import Core
import Engine
import EngineTestSupport
import Foundation
import ONNX
import Testing
import TestSupport

/// Integer tensors (shapes, indices, masks) are exact 64-bit integers, and no ONNX file crashes the process.
@Suite struct ExactIntegerTests {
    /// An exporter's "to the end" (INT64_MAX) and "before the start" (INT64_MIN) slice bounds.
    @Test func sliceBoundsAtTheInt64Limits() throws {
        let network = try builtNetwork([1, 2, 3, 4]) { b in
            b.addInitializer("starts", shape: [2], int64: [1, Int64.max])
            b.addInitializer("ends", shape: [2], int64: [Int64.max, Int64.min])
            b.addInitializer("axes", shape: [2], int64: [3, 2])
            b.addInitializer("steps", shape: [2], int64: [1, -1])
            b.addNode("Slice", inputs: ["input", "starts", "ends", "axes", "steps"], outputs: ["output"])
        }
        let x = Tensor(shape: [1, 2, 3, 4], storage: (0..<24).map(Float.init))
        let y = try network.forward(x).logits
        #expect(y.shape == [1, 2, 3, 3])
        // Rows reversed (axis 2 from its last row to before its first), columns from the second on.
        var expected: [Float] = []
        for channel in 0..<2 { for row in [2, 1, 0] { for column in 1..<4 { expected.append(Float(channel * 12 + row * 4 + column)) } } }
        #expect(y.storage == expected)
    }

    /// Shape arithmetic on values float32 cannot hold: (2^40 + 3) - 2^40, (2^53 + 10) / (2^51 + 2), 2^40 through
    /// Gather, Concat, Cast and Range, giving the reshape target [3, 4, 2].
    @Test func shapeArithmeticBeyondFloat32IsExact() throws {
        let big: Int64 = 1 << 40
        let network = try builtNetwork([1, 2, 3, 4]) { b in
            b.addInitializer("a", shape: [1], int64: [big + 3])
            b.addInitializer("b", shape: [1], int64: [big])
            b.addInitializer("c", shape: [1], int64: [(1 << 53) + 10])
            b.addInitializer("d", shape: [1], int64: [(1 << 51) + 2])
            b.addInitializer("table", shape: [3], int64: [big, -1, big + 2])
            b.addInitializer("pick", shape: [1], int64: [1])
            b.addInitializer("start", shape: [], int64: [big])
            b.addInitializer("limit", shape: [], int64: [big + 2])
            b.addInitializer("delta", shape: [], int64: [1])
            b.addNode("Sub", inputs: ["a", "b"], outputs: ["three"])
            b.addNode("Div", inputs: ["c", "d"], outputs: ["four"])
            b.addNode("Gather", inputs: ["table", "pick"], outputs: ["minusOne"], attributes: ["axis": .int(0)])
            b.addNode("Range", inputs: ["start", "limit", "delta"], outputs: ["range"])
            b.addNode("Shape", inputs: ["range"], outputs: ["two"])
            b.addNode("Cast", inputs: ["two"], outputs: ["twoCast"], attributes: ["to": .int(7)])
            b.addNode("Concat", inputs: ["three", "four", "twoCast"], outputs: ["target"], attributes: ["axis": .int(0)])
            b.addNode("Reshape", inputs: ["input", "target"], outputs: ["output"])
        }
        #expect(network.layers.first { $0.name == "output" }?.shape == [3, 4, 2])
        let x = Tensor(shape: [1, 2, 3, 4], storage: (0..<24).map(Float.init))
        #expect(try network.forward(x).logits == x.reshaped([3, 4, 2]))
    }

    /// An integer division by zero in a shape subgraph is an error naming the node, not a trap.
    @Test func integerDivisionByZeroNamesTheNode() throws {
        #expect {
            _ = try builtNetwork([1, 2, 3, 4]) { b in
                b.addInitializer("a", shape: [1], int64: [6])
                b.addInitializer("zero", shape: [1], int64: [0])
                b.addNode("Div", inputs: ["a", "zero"], outputs: ["q"], name: "divide")
                b.addNode("Reshape", inputs: ["input", "q"], outputs: ["output"])
            }
        } throws: { "\($0)".contains("divide") && "\($0)".contains("zero") }
    }
}

/// Mutated models: every load either succeeds or throws; a trap would end the test process.
/// `CAMVID_FUZZ_SEED` and `CAMVID_FUZZ_ROUNDS` (per model) explore further than the suite's fixed seed and 120 rounds.
@Suite(.serialized) struct ModelFuzzTests {
    static let environment = ProcessInfo.processInfo.environment
    static let seed = environment["CAMVID_FUZZ_SEED"].flatMap(UInt64.init) ?? 20261130
    static let rounds = environment["CAMVID_FUZZ_ROUNDS"].flatMap(Int.init) ?? 120

    /// The small committed models: shape subgraphs, attention, windows and masks, convolutions and channel shuffles,
    /// a detector's upsampling and box decoding, an NMS-free head's TopK and run-time integers, a segmenter's resizes.
    static var models: [URL] {
        let transformers = ReferenceData.packageFile("Tests/Fixtures/Transformers")
        let cnns = ReferenceData.packageFile("Tests/EngineTests/Fixtures")
        return ["vit/legacy-opset17.onnx", "vit/dynamo-opset20.onnx", "swin/legacy-opset17.onnx", "swin/dynamo-opset20.onnx",
                "maxvit/dynamo-opset20.onnx"].map { transformers.appendingPathComponent($0) }
            + ["shufflenet_v2_x0_5/legacy-opset13.onnx"].map { cnns.appendingPathComponent($0) }
            + ["yolov8n/model.onnx", "yolo26n_e2e/model.onnx", "lraspp_legacy/model.onnx"].map { ReferenceData.packageFile("Tests/Fixtures/Detectors").appendingPathComponent($0) }
    }

    /// Loads `data` and, when it loads, runs a forward and a backward to the input.
    static func exercise(_ data: Data) {
        guard let network = try? Network(model: data, baseDirectory: nil, inputHeight: nil, inputWidth: nil),
              let pass = try? network.forward(Tensor(shape: network.inputShape, repeating: 0.5)) else { return }
        _ = try? network.backward(pass, seed: Tensor(shape: pass.logits.shape, repeating: 1), to: [network.inputName])
    }

    /// Values that break arithmetic done carelessly.
    static let extremes: [Int64] = [0, -1, 1, -2, Int64.max, Int64.min, Int64(Int32.max), 1 << 31, 1 << 40, -(1 << 40), 1 << 24 + 1]

    /// Integer attributes, integer constants and tensor names replaced with extremes or each other.
    @Test func structuralMutationsNeverCrash() throws {
        var rng = SeededGenerator(state: Self.seed)
        var loaded = 0, refused = 0
        for url in Self.models {
            let original = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: url))
            let names = original.graph.node.flatMap(\.output)
            for _ in 0..<Self.rounds {
                var model = original
                let n = Int.random(in: 0..<model.graph.node.count, using: &rng)
                var node = model.graph.node[n]
                switch Int.random(in: 0..<4, using: &rng) {
                case 0 where !node.attribute.isEmpty:
                    let a = Int.random(in: 0..<node.attribute.count, using: &rng)
                    let value = Self.extremes.randomElement(using: &rng)!
                    if node.attribute[a].ints.isEmpty { node.attribute[a].i = value } else {
                        node.attribute[a].ints[Int.random(in: 0..<node.attribute[a].ints.count, using: &rng)] = value
                    }
                case 1 where !node.input.isEmpty:
                    node.input[Int.random(in: 0..<node.input.count, using: &rng)] = names.randomElement(using: &rng)!
                case 2:
                    node.opType = original.graph.node.randomElement(using: &rng)!.opType
                default:
                    // An integer initializer (a shape, axes, indices) gets an extreme value.
                    let integers = model.graph.initializer.indices.filter { model.graph.initializer[$0].dataType == 7 }
                    guard let i = integers.randomElement(using: &rng) else { continue }
                    var tensor = model.graph.initializer[i]
                    if !tensor.int64Data.isEmpty {
                        tensor.int64Data[Int.random(in: 0..<tensor.int64Data.count, using: &rng)] = Self.extremes.randomElement(using: &rng)!
                    } else if tensor.rawData.count >= 8 {
                        var raw = tensor.rawData
                        let at = 8 * Int.random(in: 0..<(raw.count / 8), using: &rng)
                        withUnsafeBytes(of: Self.extremes.randomElement(using: &rng)!.littleEndian) { raw.replaceSubrange(at..<(at + 8), with: $0) }
                        tensor.rawData = raw
                    }
                    model.graph.initializer[i] = tensor
                }
                model.graph.node[n] = node
                let data = try model.serializedData()
                if (try? Network(model: data, baseDirectory: nil, inputHeight: nil, inputWidth: nil)) != nil { loaded += 1 } else { refused += 1 }
                Self.exercise(data)
            }
        }
        print("ModelFuzzTests: \(loaded) structural mutants loaded, \(refused) refused with an error, none crashed")
        #expect(refused > 0)
    }

    /// Random bytes of the serialized file overwritten, or the file cut short.
    @Test func byteMutationsNeverCrash() throws {
        var rng = SeededGenerator(state: Self.seed &+ 7)
        var refused = 0
        for url in Self.models {
            let original = try Data(contentsOf: url)
            for round in 0..<40 {
                var data = original
                if round % 8 == 7 {
                    data = data.prefix(Int.random(in: 0..<data.count, using: &rng))
                } else {
                    for _ in 0..<Int.random(in: 1...8, using: &rng) {
                        data[Int.random(in: 0..<data.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                    }
                }
                if (try? Network(model: data, baseDirectory: nil, inputHeight: nil, inputWidth: nil)) == nil { refused += 1 }
                Self.exercise(data)
            }
        }
        print("ModelFuzzTests: \(refused) of \(Self.models.count * 40) byte mutants refused with an error, none crashed")
    }
}
