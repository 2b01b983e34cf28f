import Core
import Foundation

/// One tensor of a network: its name, what produces it, and its shape for a batch of one.
public struct LayerInfo: Sendable, Equatable {
    /// The ONNX tensor name.
    public let name: String
    /// The ONNX operator type producing it (e.g. `Conv`).
    public let opType: String
    /// The name of the ONNX node producing it.
    public let nodeName: String
    /// The tensors that node reads (constants included), in its input order.
    public let inputs: [String]
    /// The shape for a batch of one at the network's input size.
    public let shape: [Int]
    /// How the engine keeps it in memory between operators: `NCHW`, `NHWC` or `nChw8c` (8-channel blocks); callers
    /// always read NCHW.
    public let storage: String
    /// The algorithm of a convolution that does not run oneDNN's direct kernel (`Winograd F(4x4,3x3)`), else nil.
    public var algorithm: String? = nil
}

/// How the engine stores activations between convolutions.
public enum ActivationLayout: Sendable, Equatable {
    /// 8-channel blocks (oneDNN's nChw8c) where only convolutions and elementwise operators read a tensor, NHWC around
    /// other operators: the fastest on AVX2; the default.
    case channelBlocks
    /// NHWC between convolutions (oneDNN's direct kernels, ~7x faster than plain NCHW).
    case channelsLast
    /// Plain NCHW everywhere: slower, but reproduces PyTorch's CPU summation order more closely.
    case nchw

    /// `CAMVID_ENGINE_LAYOUT=nhwc` or `nchw` replaces the default layout (a diagnostic, for timing one against another).
    static let diagnosticOverride: ActivationLayout? = {
        switch ProcessInfo.processInfo.environment["CAMVID_ENGINE_LAYOUT"] {
        case "nhwc": return .channelsLast
        case "nchw": return .nchw
        default: return nil
        }
    }()
}

/// The retained tensors of one forward run, for reading and for later backward passes or reruns.
public struct ForwardPass: Sendable {
    /// The retained tensors by name (requested ones, outputs, input, and what backward reads), in the engine's storage
    /// orders.
    let values: [String: Tensor]
    let inputShape: [Int]
    let logitsName: String

    /// The tensor called `name` (NCHW for images), if it was retained.
    public subscript(name: String) -> Tensor? {
        values[name]?.reordered(to: .channelsFirst)
    }

    /// The network's (first) output, `[N, classes]` for a classifier.
    public var logits: Tensor { self[logitsName] ?? Tensor(shape: [0]) }

    /// The batch size of the run.
    public var batchSize: Int { inputShape.first ?? 0 }
}

/// A convolutional network loaded from ONNX, run by the engine's own executor on oneDNN kernels.
///
/// Not for concurrent use: one caller at a time (calls are serialised internally).
public final class Network: @unchecked Sendable {
    private let model: Model
    private let operators: [(any Operator)?]
    private let constants: [String: Constant]
    private let kernels: any KernelBackend
    private let defaultInputShape: [Int]
    private let lock = NSLock()
    private var plans: [PlanKey: Plan] = [:]
    /// Batch sizes tried, and whether the graph runs them.
    private var batchSupport: [Int: Bool] = [1: true]
    /// The large activation buffers calls reuse.
    private let buffers = BufferPool()
    /// Tensors that fused plans may drop: convolution outputs fused with the Relu/Clip or residual Add after them,
    /// residual sums, and the pieces of a GELU spelled out.
    private let fusable: Set<String>

    private struct PlanKey: Hashable {
        var inputShape: [Int]
        var fused: Bool
        var protected: Set<String>
    }
    private let referencePlan: Plan
    private let layout: ActivationLayout

    /// Loads the ONNX model at `url` (external data beside it) for `inputHeight` x `inputWidth` images (by default the
    /// size the model declares, else 224 x 224).
    public convenience init(contentsOf url: URL, inputHeight: Int? = nil, inputWidth: Int? = nil,
                            layout: ActivationLayout = .channelBlocks) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw EngineError("\(url.path): cannot read the model file")
        }
        do {
            try self.init(model: data, baseDirectory: url.deletingLastPathComponent(), inputHeight: inputHeight, inputWidth: inputWidth,
                          layout: layout)
        } catch let error as EngineError {
            throw EngineError("\(url.lastPathComponent): \(error.description)")
        }
    }

    /// Loads a serialised ONNX model; external tensor data is looked up relative to `baseDirectory`.
    ///
    /// Every node is checked (operator, attributes, shapes for the given size), and the network has run once on zeros
    /// (its kernels built and weights prepared), before this returns.
    public convenience init(model data: Data, baseDirectory: URL?, inputHeight: Int?, inputWidth: Int?) throws {
        try self.init(model: data, baseDirectory: baseDirectory, inputHeight: inputHeight, inputWidth: inputWidth, layout: .channelBlocks)
    }

    /// Loads a serialised ONNX model with a chosen activation layout (see `ActivationLayout`); a size not given is the
    /// one the model declares, else 224.
    public init(model data: Data, baseDirectory: URL?, inputHeight: Int?, inputWidth: Int?, layout: ActivationLayout) throws {
        let model = try Model(data: data, baseDirectory: baseDirectory)
        let declared = model.inputDimensions.count == 4 ? (model.inputDimensions[2], model.inputDimensions[3]) : (nil, nil)
        let (inputHeight, inputWidth) = (inputHeight ?? declared.0 ?? 224, inputWidth ?? declared.1 ?? 224)
        guard inputHeight > 0, inputWidth > 0 else { throw EngineError("input size \(inputHeight)x\(inputWidth) is not positive") }
        var constants = model.constants
        var operators: [(any Operator)?] = []
        for node in model.nodes {
            if node.opType == "Constant" {
                let value = try OperatorFactory.constantValue(node)
                for name in node.outputs where !name.isEmpty { constants[name] = value }
                operators.append(nil)
            } else {
                operators.append(try OperatorFactory.make(node, opset: model.opset))
            }
        }
        switch DNNLBackend.shared {
        case .success(let backend): kernels = backend
        case .failure(let error): throw error
        }
        let dims = model.inputDimensions
        guard dims.count == 4 || dims.isEmpty else {
            throw EngineError("input '\(model.inputName)' has rank \(dims.count); an image input [N,C,H,W] is expected")
        }
        let channels = dims.count == 4 ? (dims[1] ?? 3) : 3
        defaultInputShape = [1, channels, inputHeight, inputWidth]
        self.model = model
        self.layout = layout == .channelBlocks ? ActivationLayout.diagnosticOverride ?? layout : layout
        self.operators = operators
        self.constants = constants
        let reference = try Plan(model: model, operators: operators, constants: constants, inputShape: defaultInputShape, kernels: kernels,
                                 layout: self.layout)
        referencePlan = reference
        let steps = reference.steps
        fusable = Set(reference.fusableActivations().map { steps[$0.conv].outputs[0] })
            .union(reference.residualJoins().flatMap { join in [steps[join.conv].outputs[0], steps[join.add].outputs[0]] })
            .union(reference.decomposedGelus().flatMap(\.pieces))
        plans[PlanKey(inputShape: defaultInputShape, fused: false, protected: [])] = reference
        // One forward on zeros at load: oneDNN compiles its kernels and the weights take the layouts (or Winograd's
        // transform) the kernels want now, not in the first call (ResNet-18: 70 of the first call's 90 ms on one thread).
        _ = try forward(Tensor(shape: defaultInputShape))
    }

    /// The name of the image input.
    public var inputName: String { model.inputName }

    /// The name of the (first) output, the logits.
    public var outputName: String { model.outputNames[0] }

    /// The model's metadata entries (`metadata_props`), such as the class names an exporter wrote.
    public var metadata: [String: String] { model.metadata }

    /// The input shape for a batch of one: `[1, C, H, W]`.
    public var inputShape: [Int] { defaultInputShape }

    /// Every tensor computed at run time, in execution order, with its producer and batch-1 shape.
    public var layers: [LayerInfo] {
        referencePlan.steps.flatMap { step in
            step.outputs.filter { !$0.isEmpty }.map { name in
                let node = model.nodes[step.node]
                let storage = switch referencePlan.storageOrder(of: name) {
                case .channelsFirst: "NCHW"
                case .channelsLast: "NHWC"
                case .channelBlocks8: "nChw8c"
                }
                let algorithm = step.op.kernelAlgorithm(step.inputs.map { referencePlan.shapes[$0] }, inputOrders: step.inputOrders,
                                                        outputOrder: step.outputOrder)
                return LayerInfo(name: name, opType: node.opType, nodeName: node.name, inputs: node.inputs.filter { !$0.isEmpty },
                                 shape: referencePlan.shapes[name] ?? [], storage: storage, algorithm: algorithm)
            }
        }
    }

    /// The last 4-D tensor with a spatial map (height and width > 1): a convolutional network's last stage, before the
    /// classifier head.
    ///
    /// Both sides must exceed 1 so that a head's channels-last [N, 1, 1, C] tensors (ConvNeXt's LayerNorm) are passed over.
    public var lastSpatialLayer: String {
        let maps = layers.filter { $0.shape.count == 4 }
        return (maps.last { $0.shape[2] > 1 && $0.shape[3] > 1 } ?? maps.last { $0.shape[2] * $0.shape[3] > 1 })?.name ?? outputName
    }

    /// The plan for an input shape: unfused (every tensor exists), or fused except for the `reading` tensors.
    private func plan(for inputShape: [Int], fusedExcept reading: Set<String>? = nil) throws -> Plan {
        let key = PlanKey(inputShape: inputShape, fused: reading != nil, protected: (reading ?? []).intersection(fusable))
        if let plan = plans[key] { return plan }
        let plan = try Plan(model: model, operators: operators, constants: constants, inputShape: inputShape, kernels: kernels,
                            layout: layout, fusing: reading != nil, protected: key.protected)
        if plans.count > 64 { plans = plans.filter { !$0.key.fused } }  // bounded: fused variants are cheap to rebuild
        plans[key] = plan
        return plan
    }

    private func checkRuntimeTensor(_ name: String, _ plan: Plan) throws {
        guard plan.producer[name] != nil || name == model.inputName else {
            if plan.constants[name] != nil { throw EngineError("'\(name)' is a constant of the model, not a layer") }
            throw EngineError("the model has no tensor named '\(name)'")
        }
    }

    /// Whether the graph runs a batch of `n` images at once, each output holding `n` rows. A model exported for a fixed
    /// batch of one does not (a Reshape to a constant shape holding the batch, as ultralytics' default `dynamic=False`
    /// export; a Resize to constant sizes, which silently keeps one row): its caller runs one image at a time.
    public func runsBatch(_ n: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if let known = batchSupport[n] { return known }
        let plan = try? plan(for: [n] + defaultInputShape.dropFirst())
        let runs = plan.map { plan in model.outputNames.allSatisfy { plan.shapes[$0]?.first == n } } ?? false
        batchSupport[n] = runs
        return runs
    }

    /// `batch` `[N, ...]` as the batches the graph runs: itself, or its images one by one when it runs only one at a time.
    public func runnableBatches(_ batch: Tensor) -> [Tensor] {
        let count = batch.shape.first ?? 1
        return count == 1 || runsBatch(count) ? [batch] : (0..<count).map { Tensor.stack([batch.slice($0)]) }
    }

    /// Runs the network on `input` `[N, C, H, W]`, keeping the tensors named in `retaining`.
    public func forward(_ input: Tensor, retaining: Set<String> = []) throws -> ForwardPass {
        lock.lock()
        defer { lock.unlock() }
        defer { buffers.endCall() }
        guard input.rank == 4, input.shape[0] >= 1, Array(input.shape[1...]) == Array(defaultInputShape[1...]) else {
            throw EngineError("input has shape \(input.shape); expected [N, \(defaultInputShape[1...].map(String.init).joined(separator: ", "))]")
        }
        let full = try plan(for: input.shape)
        for name in retaining { try checkRuntimeTensor(name, full) }
        // Kept: what a backward from the outputs to the retained tensors reads. Everything else is freed once used, so the
        // working set stays small (a later backward to an earlier tensor recomputes what it misses).
        let keep = retaining.union(model.outputNames).union([model.inputName])
        let batch = input.shape[0], chunk = min(batch, full.cacheFriendlyBatch)
        if chunk == batch {
            let plan = try self.plan(for: input.shape, fusedExcept: retaining)
            var values: [String: Tensor] = [model.inputName: input]
            try plan.execute(nil, values: &values, keep: keep.union(plan.backwardReads(downstreamOf: retaining)), kernels: kernels,
                             buffers: buffers)
            return ForwardPass(values: values, inputShape: input.shape, logitsName: outputName)
        }
        // Large batches run in chunks whose activations stay in cache; each chunk's kept tensors are copied into their
        // rows of the whole batch's, and its buffers go back to the pool for the next chunk.
        var joined: [String: Tensor] = [:]
        for start in stride(from: 0, to: batch, by: chunk) {
            let slice = TensorMath.rows(input, start..<min(start + chunk, batch), buffers: buffers)
            let plan = try self.plan(for: slice.shape, fusedExcept: retaining)
            var values: [String: Tensor] = [model.inputName: slice]
            try plan.execute(nil, values: &values, keep: keep.union(plan.backwardReads(downstreamOf: retaining)), kernels: kernels,
                             buffers: buffers)
            for (name, part) in values where name != model.inputName {
                let rowSize = part.count / slice.shape[0]
                // Taken out of the dictionary while written, so that the write does not copy it.
                var whole = joined.removeValue(forKey: name)
                    ?? Tensor(shape: [batch] + part.shape.dropFirst(), storage: TensorMath.buffer(batch * rowSize, from: nil), order: part.order)
                part.reordered(to: whole.order).storage.withUnsafeBufferPointer { rows in
                    whole.storage.withUnsafeMutableBufferPointer { ($0.baseAddress! + start * rowSize).update(from: rows.baseAddress!, count: rows.count) }
                }
                joined[name] = whole
            }
            var ledger = BufferLedger(pool: buffers)
            ledger.giveBack(values.values)
        }
        joined[model.inputName] = input
        return ForwardPass(values: joined, inputShape: input.shape, logitsName: outputName)
    }

    /// Computes tensors missing from `pass` (freed intermediates) from what it retained.
    private func materialize(_ names: Set<String>, _ pass: ForwardPass, _ plan: Plan) throws -> [String: Tensor] {
        var values = pass.values
        let missing = names.filter { values[$0] == nil && plan.constants[$0] == nil }
        if missing.isEmpty { return values }
        let steps = plan.ancestors(of: Set(missing)) { pass.values[$0] != nil }
        try plan.execute(steps, values: &values, keep: Set(values.keys).union(names), kernels: kernels, buffers: buffers)
        return values
    }

    /// The gradients of `seed · output` (default output: the logits) with respect to each tensor in `targets`.
    ///
    /// Only the part of the graph between the targets and `output` is evaluated; `seed` has the output's shape.
    public func backward(_ pass: ForwardPass, seed: Tensor, at output: String? = nil, to targets: Set<String>,
                         rules: GradientRules = .standard) throws -> [String: Tensor] {
        lock.lock()
        defer { lock.unlock() }
        defer { buffers.endCall() }
        let plan = try plan(for: pass.inputShape)
        let outputName = output ?? self.outputName
        try checkRuntimeTensor(outputName, plan)
        for t in targets { try checkRuntimeTensor(t, plan) }
        guard seed.shape == plan.shapes[outputName] else {
            throw EngineError("seed has shape \(seed.shape); output '\(outputName)' has \(plan.shapes[outputName] ?? [])")
        }
        let (downstream, reachable) = plan.descendants(of: targets)
        let upstream = plan.ancestors(of: [outputName]) { _ in false }
        let relevant = downstream.intersection(upstream).sorted()
        var needed = Set<String>()
        for i in relevant {
            let step = plan.steps[i], needs = step.op.backwardNeeds
            for k in needs.inputs where k < step.inputs.count { needed.insert(step.inputs[k]) }
            for k in needs.outputs where k < step.outputs.count { needed.insert(step.outputs[k]) }
        }
        needed.remove("")
        let values = try materialize(needed, pass, plan)
        // Gradients and recomputed values take buffers from the pool and give them back once nothing reads them.
        var ledger = BufferLedger(pool: buffers)
        for value in values.values { ledger.hold(value) }
        var gradients: [String: Tensor] = [outputName: seed]
        ledger.hold(seed)
        for i in relevant.reversed() {
            let step = plan.steps[i]
            // Output values and gradients in the order the step wrote them, which its backward reads.
            var converted: [Tensor] = []
            func written(_ tensor: Tensor?) -> Tensor? {
                guard let tensor, tensor.rank == 4, tensor.order != step.outputOrder else { return tensor }
                let copy = tensor.reordered(to: step.outputOrder, reusing: buffers.take(tensor.count))
                converted.append(copy)
                return copy
            }
            let outputGradients = step.outputs.map { written(gradients[$0]) }
            if outputGradients.allSatisfy({ $0 == nil }) { continue }
            let differentiable = step.op.differentiableInputs
            // Integers (indices, classes) carry no gradient.
            let wanted = step.inputs.enumerated().map { k, name in
                !name.isEmpty && reachable.contains(name) && differentiable.contains(k) && plan.constants[name] == nil
                    && !plan.integerTensors.contains(name)
            }
            if !wanted.contains(true) { continue }
            let (inputs, convertedInputs) = plan.stepInputs(i, values, buffers: buffers)
            converted += convertedInputs.compactMap { inputs[$0] }
            let args = BackwardArguments(inputs: inputs, outputs: step.outputs.map { written(values[$0]) }, gradients: outputGradients,
                                         wanted: wanted, inputShapes: step.inputs.map { $0.isEmpty ? nil : plan.shapes[$0] })
            let inputGradients: [Tensor?]
            let started = StepProfile.enabled ? DispatchTime.now().uptimeNanoseconds : 0
            defer { if StepProfile.enabled { StepProfile.shared.record(step, since: started, backward: true) } }
            do {
                inputGradients = try step.op.backward(args, context: step.context(kernels, buffers: buffers, rules: rules))
            } catch let error as EngineError {
                throw EngineError("\(model.nodes[step.node].label): \(error.description)")
            }
            for (k, name) in step.inputs.enumerated() where k < inputGradients.count && wanted[k] {
                guard let g = inputGradients[k] else { continue }
                if let existing = gradients[name] {
                    let sum = TensorMath.zip(existing, g, buffers: buffers, +)
                    ledger.drop(existing)
                    ledger.release(g)
                    gradients[name] = sum
                    ledger.hold(sum)
                } else {
                    gradients[name] = g
                    ledger.hold(g)
                }
            }
            for tensor in converted { ledger.release(tensor) }
            // Free output gradients nothing reads any more.
            for name in step.outputs where !targets.contains(name) && name != outputName {
                if let g = gradients.removeValue(forKey: name) { ledger.drop(g) }
            }
        }
        var result: [String: Tensor] = [:]
        for t in targets {
            let gradient = gradients[t]?.reordered(to: .channelsFirst) ?? Tensor(shape: plan.shapes[t] ?? [])
            result[t] = gradient
            ledger.hold(gradient)
        }
        // What the results do not hold goes back: recomputed values and the gradients left.
        for value in values.values { ledger.drop(value) }
        for g in gradients.values { ledger.drop(g) }
        return result
    }

    /// Reruns only the part of the graph downstream of `name`, with `value` in place of that tensor.
    ///
    /// `value` may have another batch size N' than the pass: tensors from the pass with batch 1 are repeated.
    /// Returns `outputs` (default: the graph outputs).
    public func rerun(_ pass: ForwardPass, replacing name: String, with value: Tensor,
                      outputs: Set<String>? = nil) throws -> [String: Tensor] {
        lock.lock()
        defer { lock.unlock() }
        defer { buffers.endCall() }
        let passPlan = try plan(for: pass.inputShape)
        try checkRuntimeTensor(name, passPlan)
        guard value.rank >= 1, value.shape[0] >= 1 else { throw EngineError("replacement for '\(name)' has shape \(value.shape)") }
        let batch = value.shape[0]
        guard batch == pass.batchSize || pass.batchSize == 1 else {
            throw EngineError("replacement batch \(batch) differs from the pass's batch \(pass.batchSize) (only a batch of 1 is repeated)")
        }
        let wantedOutputs = outputs ?? Set(model.outputNames)
        let plan = try plan(for: [batch] + pass.inputShape.dropFirst(), fusedExcept: wantedOutputs.union([name]))
        guard value.shape == plan.shapes[name] else {
            throw EngineError("replacement for '\(name)' has shape \(value.shape); expected \(plan.shapes[name] ?? [])")
        }
        let wanted = wantedOutputs
        for o in wanted { try checkRuntimeTensor(o, passPlan) }
        let (downstream, downstreamTensors) = plan.descendants(of: [name])
        let upstream = plan.ancestors(of: wanted) { $0 == name }
        let subset = downstream.intersection(upstream)
        var external = Set<String>()
        for i in subset {
            for input in plan.steps[i].inputs where !input.isEmpty && !downstreamTensors.contains(input) && plan.constants[input] == nil {
                external.insert(input)
            }
        }
        let untouched = wanted.filter { !downstreamTensors.contains($0) }
        let source = try materialize(external.union(untouched), pass, passPlan)
        var values: [String: Tensor] = [name: value]
        for e in external.union(untouched) {
            guard let v = source[e] else { throw EngineError("internal: '\(e)' could not be recomputed") }
            values[e] = TensorMath.tile(v, batch: batch)
        }
        try plan.execute(subset, values: &values, keep: wanted, kernels: kernels, buffers: buffers)
        var result: [String: Tensor] = [:]
        for o in wanted { result[o] = values[o]?.reordered(to: .channelsFirst) }
        return result
    }
}
