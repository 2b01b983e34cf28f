import Core
import Foundation

/// One executable node of a plan: an operator with the tensor names it reads and writes.
struct Step: Sendable {
    var node: Int
    var op: any Operator
    var inputs: [String]
    var outputs: [String]
    /// Per input: the storage order the operator reads it in.
    var inputOrders: [StorageOrder] = []
    /// The storage order of the outputs.
    var outputOrder = StorageOrder.channelsFirst
}

/// The graph specialised to one input shape: folded constants, every tensor's shape, and the steps left to run.
struct Plan: Sendable {
    var inputShape: [Int]
    var constants: [String: Constant]
    var shapes: [String: [Int]]
    var steps: [Step]
    /// The step producing each runtime tensor.
    var producer: [String: Int]

    /// Folds everything computable from constants and the input shape; shape-checks the rest.
    ///
    /// With `fusing`, a convolution whose output only feeds a Relu or Clip absorbs it (a oneDNN post-op),
    /// unless that output is in `protected` (a tensor the caller reads) or a graph output.
    init(model: Model, operators: [(any Operator)?], constants base: [String: Constant], inputShape: [Int],
         kernels: any KernelBackend, layout: ActivationLayout = .channelBlocks, fusing: Bool = false,
         protected: Set<String> = []) throws {
        self.inputShape = inputShape
        var constants = base
        var shapes: [String: [Int]] = [model.inputName: inputShape]
        for (name, c) in base { shapes[name] = c.tensor.shape }
        var steps: [Step] = []
        var producer: [String: Int] = [:]
        let context = OperatorContext(kernels: kernels, rules: .standard)
        for (index, node) in model.nodes.enumerated() {
            guard let op = operators[index] else { continue }  // Constant nodes are in `base`.
            let inputConstants = node.inputs.map { $0.isEmpty ? nil : constants[$0] }
            var inputShapes: [[Int]?] = []
            for name in node.inputs {
                if name.isEmpty { inputShapes.append(nil); continue }
                guard let shape = shapes[name] else { throw EngineError("\(node.label): input '\(name)' has no known shape") }
                inputShapes.append(shape)
            }
            let allConstant = zip(node.inputs, inputConstants).allSatisfy { $0.isEmpty || $1 != nil }
            if allConstant || op is Shape {
                // Load-time evaluation: constants, and shapes of runtime tensors.
                let values: [Tensor?] = op is Shape && !allConstant
                    ? [Tensor(shape: inputShapes[0] ?? [], repeating: 0)]
                    : inputConstants.map { $0?.tensor }
                let integer = Plan.isIntegerResult(node, op, inputConstants)
                var outputs: [Tensor]
                do {
                    outputs = try op.forward(values, context: context)
                } catch let error as EngineError {
                    throw EngineError(error.description.hasPrefix(node.opType) ? error.description : "\(node.label): \(error.description)")
                }
                if integer && (op as? Div) != nil {
                    outputs = outputs.map { TensorMath.map($0) { $0.rounded(.towardZero) } }
                }
                for (name, value) in zip(node.outputs, outputs) where !name.isEmpty {
                    constants[name] = Constant(tensor: value, isInteger: integer)
                    shapes[name] = value.shape
                }
                continue
            }
            let outputShapes: [[Int]]
            do {
                outputShapes = try op.outputShapes(inputShapes, constants: inputConstants)
            } catch let error as EngineError {
                throw EngineError(error.description.contains(node.name) ? error.description : "\(node.label): \(error.description)")
            }
            guard outputShapes.count >= node.outputs.filter({ !$0.isEmpty }).count else {
                throw EngineError("\(node.label): \(node.outputs.count) outputs declared, \(outputShapes.count) computed")
            }
            for (name, shape) in zip(node.outputs, outputShapes) where !name.isEmpty {
                shapes[name] = shape
                producer[name] = steps.count
            }
            steps.append(Step(node: index, op: op, inputs: node.inputs, outputs: node.outputs))
        }
        // Layouts: convolutions run channels-last (oneDNN's fast direct kernels); elementwise operators keep the
        // layout of their inputs; every other operator reads NCHW, converted at the edge.
        var storage: [String: StorageOrder] = [:]
        func current(_ name: String) -> StorageOrder { storage[name] ?? .channelsFirst }
        for i in steps.indices {
            let step = steps[i]
            let runtime = step.inputs.map { !$0.isEmpty && constants[$0] == nil }
            var wants = [StorageOrder](repeating: .channelsFirst, count: step.inputs.count)
            var output = StorageOrder.channelsFirst
            if var conv = step.op as? Conv, shapes[step.inputs[0]]?.count == 4, layout != .nchw {
                conv.orders = ConvolutionOrders(.channelsLast)
                steps[i].op = conv
                (wants[0], output) = (.channelsLast, .channelsLast)
            } else if var pool = step.op as? MaxPool, runtime[0], current(step.inputs[0]) == .channelsLast {
                pool.order = .channelsLast
                steps[i].op = pool
                (wants[0], output) = (.channelsLast, .channelsLast)
            } else if runtime[0], current(step.inputs[0]) == .channelsLast,
                      Plan.isSpatialMean(step.op, inputShapes: step.inputs.map { shapes[$0] }, inputConstants: step.inputs.map { constants[$0] }) {
                steps[i].op = Plan.spatialMean(step.op, reading: .channelsLast)
                wants[0] = .channelsLast
            } else if Plan.isElementwise(step.op) {
                if runtime[0] && current(step.inputs[0]) == .channelsLast { (wants[0], output) = (.channelsLast, .channelsLast) }
            } else if Plan.isBinaryElementwise(step.op), step.inputs.count == 2,
                      runtime[0], runtime[1], current(step.inputs[0]) == .channelsLast, current(step.inputs[1]) == .channelsLast,
                      shapes[step.inputs[0]] == shapes[step.inputs[1]] {
                (wants[0], wants[1], output) = (.channelsLast, .channelsLast, .channelsLast)
            }
            steps[i].inputOrders = wants
            steps[i].outputOrder = output
            if output != .channelsFirst {
                for name in step.outputs where !name.isEmpty && shapes[name]?.count == 4 { storage[name] = output }
            }
        }
        if layout == .channelBlocks {
            let blocked = Plan.channelBlocks(steps, storage: storage, shapes: shapes, outputs: Set(model.outputNames), constants: constants)
            for i in steps.indices where steps[i].outputs.first.map(blocked.contains) ?? false {
                if var conv = steps[i].op as? Conv {
                    // A few input channels (an image) are read as they come: oneDNN's kernels for them write blocks.
                    let plain = (shapes[steps[i].inputs[0]]?[1] ?? 0) % 8 != 0
                    conv.orders = ConvolutionOrders(input: plain ? .channelsFirst : .channelBlocks8, output: .channelBlocks8)
                    steps[i].op = conv
                    steps[i].inputOrders[0] = conv.orders.input
                } else {
                    if var pool = steps[i].op as? MaxPool {
                        pool.order = .channelBlocks8
                        steps[i].op = pool
                    }
                    for k in steps[i].inputOrders.indices where steps[i].inputOrders[k] == .channelsLast { steps[i].inputOrders[k] = .channelBlocks8 }
                }
                steps[i].outputOrder = .channelBlocks8
            }
            for i in steps.indices where steps[i].inputOrders.first == .channelsLast && blocked.contains(steps[i].inputs[0])
                && (steps[i].op is GlobalPool || steps[i].op is ReduceMean) {
                steps[i].op = Plan.spatialMean(steps[i].op, reading: .channelBlocks8)
                steps[i].inputOrders[0] = .channelBlocks8
            }
        }
        if fusing {
            steps = Plan.fused(steps, protected: protected.union(model.outputNames), constants: constants)
            producer = [:]
            for (i, step) in steps.enumerated() { for name in step.outputs where !name.isEmpty { producer[name] = i } }
        }
        for output in model.outputNames where shapes[output] == nil {
            throw EngineError("graph output '\(output)' is never produced")
        }
        self.constants = constants
        self.shapes = shapes
        self.steps = steps
        self.producer = producer
        let perImage = producer.keys.map { Tensor.elementCount(shapes[$0] ?? []) / max(inputShape.first ?? 1, 1) }.max() ?? 0
        cacheFriendlyBatch = max(1, Plan.activationBudget / max(perImage * MemoryLayout<Float>.size, 1))
    }

    /// How the step producing the runtime tensor `name` stores it.
    func storageOrder(of name: String) -> StorageOrder {
        guard let step = producer[name], shapes[name]?.count == 4 else { return .channelsFirst }
        return steps[step].outputOrder
    }

    /// Operators applied element by element to one tensor (any storage order serves).
    static func isElementwise(_ op: any Operator) -> Bool {
        op is any UnaryOperator || op is Clip || op is Identity
    }

    /// A mean over height and width of a 4-D tensor (GlobalAveragePool, ReduceMean on axes 2 and 3): any storage order serves.
    static func isSpatialMean(_ op: any Operator, inputShapes: [[Int]?], inputConstants: [Constant?]) -> Bool {
        guard inputShapes.first??.count == 4 else { return false }
        if let pool = op as? GlobalPool { return !pool.isMax }
        if let mean = op as? ReduceMean {
            return (try? mean.axes(inputShapes[0] ?? [], inputConstants, inputShapes)) == ReduceMean.spatialAxes
        }
        return false
    }

    /// The spatial mean `op` set to read its input in `order`.
    static func spatialMean(_ op: any Operator, reading order: StorageOrder) -> any Operator {
        if var pool = op as? GlobalPool { pool.inputOrder = order; return pool }
        if var mean = op as? ReduceMean { mean.inputOrder = order; return mean }
        return op
    }

    /// Elementwise operators of two tensors (storage-order free when both have one shape and one order).
    static func isBinaryElementwise(_ op: any Operator) -> Bool {
        op is Add || op is Sub || op is Mul || op is Div
    }

    /// The channels-last tensors stored in 8-channel blocks instead, decided in execution order: the output of a dense
    /// spatial convolution (groups 1, kernel larger than 1x1), of any convolution, elementwise operator or max pooling
    /// reading blocks, when every reader is one of those (a reader writing another order converts). A stem (a dense
    /// spatial convolution of fewer than 8 channels, such as the RGB input) writes blocks too when its output reaches,
    /// through elementwise operators and max poolings, only steps that write blocks.
    ///
    /// In a network, oneDNN's AVX2 direct 3x3 kernels run 15-25% faster on blocks than on NHWC (ResNet-18), while its
    /// 1x1 and depthwise kernels run 5-10% slower (EfficientNet-Lite0): blocks start where dense kernels are. Its max
    /// pooling runs 4-5x faster on blocks than on NHWC (ResNet-18's 112x112x64).
    static func channelBlocks(_ steps: [Step], storage: [String: StorageOrder], shapes: [String: [Int]], outputs: Set<String>,
                              constants: [String: Constant]) -> Set<String> {
        var consumers: [String: [Int]] = [:]
        for (i, step) in steps.enumerated() { for name in step.inputs where !name.isEmpty { consumers[name, default: []].append(i) } }
        func divisible(_ name: String) -> Bool { (shapes[name]?.count ?? 0) == 4 && shapes[name]![1] % 8 == 0 }
        func propagatesBlocks(_ op: any Operator) -> Bool { op is Conv || op is MaxPool || isElementwise(op) || isBinaryElementwise(op) }
        // Readers of blocks: those, and spatial means the planner already gave another order.
        func readsBlocks(_ step: Step) -> Bool { propagatesBlocks(step.op) || step.inputOrders.first == .channelsLast }
        func candidate(_ step: Step) -> String? {
            guard let name = step.outputs.first, storage[name] == .channelsLast, divisible(name), !outputs.contains(name),
                  propagatesBlocks(step.op), (consumers[name] ?? []).allSatisfy({ readsBlocks(steps[$0]) }) else { return nil }
            return name
        }
        func denseSpatial(_ step: Step) -> Bool {
            guard let conv = step.op as? Conv else { return false }
            return conv.groups == 1 && (constants[step.inputs[1]]?.tensor.shape.dropFirst(2).reduce(1, *) ?? 1) > 1
        }
        var blocked = Set<String>()
        for step in steps {
            guard let name = candidate(step) else { continue }
            let readsBlocks = step.inputs.contains(where: blocked.contains)
            if step.op is Conv {
                // The input is converted to blocks, which needs whole blocks of input channels.
                if divisible(step.inputs[0]) && (readsBlocks || denseSpatial(step)) { blocked.insert(name) }
            } else if readsBlocks {
                blocked.insert(name)
            }
        }
        // The tensors from `name` to steps writing blocks, if every path gets there through single-input operators.
        func pathToBlocks(_ name: String) -> Set<String>? {
            guard let readers = consumers[name], !readers.isEmpty else { return nil }
            var path: Set<String> = [name]
            for reader in readers {
                let step = steps[reader]
                guard let output = step.outputs.first else { return nil }
                if blocked.contains(output) { continue }
                guard isElementwise(step.op) || step.op is MaxPool, candidate(step) != nil,
                      let rest = pathToBlocks(output) else { return nil }
                path.formUnion(rest)
            }
            return path
        }
        for step in steps where denseSpatial(step) {
            guard let name = candidate(step), let channels = shapes[step.inputs[0]]?[1], channels < 8,
                  let path = pathToBlocks(name) else { continue }
            blocked.formUnion(path)
        }
        return blocked
    }

    /// Convolution outputs that a following Relu or Clip could be fused into.
    static func fusablePairs(_ steps: [Step], constants: [String: Constant]) -> [(conv: Int, activation: Int, FusedActivation)] {
        var consumers: [String: [Int]] = [:]
        for (i, step) in steps.enumerated() { for name in step.inputs where !name.isEmpty { consumers[name, default: []].append(i) } }
        var pairs: [(Int, Int, FusedActivation)] = []
        for (i, step) in steps.enumerated() {
            guard let conv = step.op as? Conv, case .none = conv.activation, let c = step.outputs.first,
                  let users = consumers[c], users.count == 1 else { continue }
            let j = users[0], next = steps[j]
            if next.op is Relu {
                pairs.append((i, j, .relu))
            } else if let clip = next.op as? Clip {
                let lo = next.inputs.count > 1 && !next.inputs[1].isEmpty ? constants[next.inputs[1]]?.tensor : nil
                let hi = next.inputs.count > 2 && !next.inputs[2].isEmpty ? constants[next.inputs[2]]?.tensor : nil
                if next.inputs.count > 1 && !next.inputs[1].isEmpty && lo == nil { continue }
                if next.inputs.count > 2 && !next.inputs[2].isEmpty && hi == nil { continue }
                let (l, h) = clip.bounds(lo, hi)
                pairs.append((i, j, .clip(l, h)))
            }
        }
        return pairs
    }

    /// A convolution whose output only feeds an Add of two channels-last tensors of one shape (a residual join), and
    /// the Relu that alone reads the sum, if any.
    static func residualJoins(_ steps: [Step], constants: [String: Constant]) -> [(conv: Int, add: Int, relu: Int?)] {
        var consumers: [String: [Int]] = [:]
        for (i, step) in steps.enumerated() { for name in step.inputs where !name.isEmpty { consumers[name, default: []].append(i) } }
        var joins: [(Int, Int, Int?)] = []
        for (i, step) in steps.enumerated() {
            guard let conv = step.op as? Conv, conv.orders.output != .channelsFirst, case .none = conv.activation, let c = step.outputs.first,
                  let users = consumers[c], users.count == 1 else { continue }
            let j = users[0], add = steps[j]
            guard add.op is Add, add.inputs.count == 2, add.inputs[0] != add.inputs[1], add.inputOrders == [conv.orders.output, conv.orders.output],
                  add.inputs.allSatisfy({ constants[$0] == nil }) else { continue }
            // When both branches are convolutions, the later one absorbs the Add (the other is ready by then).
            if let other = joins.firstIndex(where: { $0.1 == j }) { joins.remove(at: other) }
            let sum = add.outputs[0]
            let relu = consumers[sum].flatMap { $0.count == 1 && steps[$0[0]].op is Relu && steps[$0[0]].outputOrder == conv.orders.output ? $0[0] : nil }
            joins.append((i, j, relu))
        }
        return joins
    }

    private static func fused(_ steps: [Step], protected: Set<String>, constants: [String: Constant]) -> [Step] {
        var steps = steps
        var removed = Set<Int>()
        // Residual joins first: the convolution moves to the Add's place (the other branch is ready there) and adds it.
        // oneDNN may add the bias after the branch (a rounding apart), so a sum the caller reads is never fused.
        for (i, j, k) in residualJoins(steps, constants: constants)
        where !protected.contains(steps[i].outputs[0]) && !protected.contains(steps[j].outputs[0]) {
            guard var conv = steps[i].op as? Conv else { continue }
            let other = steps[j].inputs[0] == steps[i].outputs[0] ? steps[j].inputs[1] : steps[j].inputs[0]
            var step = steps[i]
            conv.addsResidual = true
            step.inputs = Array(step.inputs.prefix(2)) + [step.inputs.count > 2 ? step.inputs[2] : "", other]
            step.inputOrders = Array(step.inputOrders.prefix(2)) + [.channelsFirst, conv.orders.output]
            step.outputs = steps[j].outputs
            if let k {
                conv.activation = .relu
                step.outputs = steps[k].outputs
                removed.insert(k)
            }
            step.op = conv
            steps[j] = step
            removed.insert(i)
        }
        for (i, j, activation) in fusablePairs(steps, constants: constants)
        where !protected.contains(steps[i].outputs[0]) && !removed.contains(i) && !removed.contains(j) {
            guard var conv = steps[i].op as? Conv, !conv.addsResidual, steps[j].outputOrder == steps[i].outputOrder else { continue }
            conv.activation = activation
            steps[i].op = conv
            steps[i].outputs = [steps[j].outputs[0]]
            removed.insert(j)
        }
        return steps.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    private static func isIntegerResult(_ node: Node, _ op: any Operator, _ inputs: [Constant?]) -> Bool {
        switch op {
        case is Shape: return true
        case let cast as Cast: return cast.toInteger
        case is ConstantOfShape:
            if case .tensor(let t)? = node.attributes["value"] { return t.isInteger }
            return false
        case is Equal: return true
        case is Where: return inputs.count > 1 && (inputs[1]?.isInteger ?? false)
        default: return inputs.first??.isInteger ?? false
        }
    }

    /// Indices of steps that (transitively) read `names`, the names included.
    func descendants(of names: Set<String>) -> (steps: Set<Int>, tensors: Set<String>) {
        var tensors = names
        var result = Set<Int>()
        for (i, step) in steps.enumerated() where step.inputs.contains(where: { tensors.contains($0) }) {
            result.insert(i)
            tensors.formUnion(step.outputs)
        }
        return (result, tensors)
    }

    /// Indices of steps needed to compute `names` from tensors in `known` (and constants).
    func ancestors(of names: Set<String>, stoppingAt known: (String) -> Bool) -> Set<Int> {
        var result = Set<Int>()
        var pending = Array(names)
        var seen = Set<String>()
        while let name = pending.popLast() {
            if seen.contains(name) || known(name) || constants[name] != nil { continue }
            seen.insert(name)
            guard let s = producer[name] else { continue }
            if result.insert(s).inserted {
                pending.append(contentsOf: steps[s].inputs.filter { !$0.isEmpty })
            }
        }
        return result
    }

    /// Runs `subset` of the steps in order on `values`, dropping intermediates not in `keep` once read.
    func execute(_ subset: Set<Int>?, values: inout [String: Tensor], keep: Set<String>, kernels: any KernelBackend) throws {
        let order = subset.map { $0.sorted() } ?? Array(steps.indices)
        var remaining: [String: Int] = [:]
        for i in order { for name in steps[i].inputs where !name.isEmpty { remaining[name, default: 0] += 1 } }
        let context = OperatorContext(kernels: kernels, rules: .standard)
        for i in order {
            let step = steps[i]
            let started = StepProfile.enabled ? DispatchTime.now().uptimeNanoseconds : 0
            let inputs = try stepInputs(i, values)
            let outputs = try step.op.forward(inputs, context: context)
            if StepProfile.enabled { StepProfile.shared.record(step, since: started) }
            for (name, value) in zip(step.outputs, outputs) where !name.isEmpty {
                values[name] = value
            }
            for name in step.inputs where !name.isEmpty {
                remaining[name, default: 0] -= 1
                if remaining[name] == 0 && !keep.contains(name) { values[name] = nil }
            }
        }
    }

    /// The inputs of step `i` from `values` or the constants, in the storage orders the step reads.
    func stepInputs(_ i: Int, _ values: [String: Tensor]) throws -> [Tensor?] {
        let step = steps[i]
        var inputs: [Tensor?] = []
        for (k, name) in step.inputs.enumerated() {
            if name.isEmpty { inputs.append(nil); continue }
            if let v = values[name] {
                inputs.append(v.reordered(to: step.inputOrders[k]))
                continue
            }
            if let c = constants[name] { inputs.append(c.tensor); continue }
            inputs.append(nil)
        }
        return inputs
    }

    /// The largest batch whose biggest activation stays within a cache-sized budget (at least 1): larger batches
    /// spill to memory and run slower per image than small ones on CPUs (measured on EfficientNet-Lite0 and ResNet-18).
    private(set) var cacheFriendlyBatch = 1

    /// Bytes of the largest activation a chunk may hold: well inside the 32 MB last-level cache of the machines measured.
    static let activationBudget = 12 << 20

    /// Runtime tensors read by the backward of the steps downstream of `names` (what a backward to them needs).
    func backwardReads(downstreamOf names: Set<String>) -> Set<String> {
        var result = Set<String>()
        for i in descendants(of: names).steps {
            let step = steps[i], needs = step.op.backwardNeeds
            for k in needs.inputs where k < step.inputs.count && constants[step.inputs[k]] == nil { result.insert(step.inputs[k]) }
            for k in needs.outputs where k < step.outputs.count { result.insert(step.outputs[k]) }
        }
        result.remove("")
        return result
    }
}

/// `CAMVID_ENGINE_PROFILE=1`: wall time per operator kind over the process, printed to stderr at exit (a diagnostic).
/// `CAMVID_ENGINE_PROFILE=steps`: the minimum and median time of every step instead, in plan order.
final class StepProfile: @unchecked Sendable {
    static let enabled = ProcessInfo.processInfo.environment["CAMVID_ENGINE_PROFILE"] != nil
    static let perStep = ProcessInfo.processInfo.environment["CAMVID_ENGINE_PROFILE"] == "steps"
    static let shared: StepProfile = {
        let profile = StepProfile()
        atexit { StepProfile.shared.report() }
        return profile
    }()
    private let lock = NSLock()
    /// Samples in nanoseconds per key, and the order keys were first seen in.
    private var samples: [String: [UInt64]] = [:]
    private var keys: [String] = []

    func record(_ step: Step, since start: UInt64, backward: Bool = false) {
        let elapsed = DispatchTime.now().uptimeNanoseconds - start
        var kind = (backward ? "backward " : "") + "\(type(of: step.op))"
        if let conv = step.op as? Conv { kind += conv.groups > 1 ? " depthwise/grouped" : "" }
        if StepProfile.perStep { kind += " \(step.outputs.first ?? "")" }
        lock.lock()
        defer { lock.unlock() }
        if samples[kind] == nil { keys.append(kind) }
        samples[kind, default: []].append(elapsed)
    }

    func report() {
        lock.lock()
        defer { lock.unlock() }
        var lines: [String] = []
        if StepProfile.perStep {
            var minimum = 0.0, median = 0.0
            for key in keys {
                let sorted = samples[key, default: []].sorted()
                let low = Double(sorted[0]) / 1e6, middle = Double(sorted[sorted.count / 2]) / 1e6
                minimum += low
                median += middle
                lines.append("\(key): min \(String(format: "%.3f", low)) ms, median \(String(format: "%.3f", middle)) ms")
            }
            lines.append("sum of steps: min \(String(format: "%.2f", minimum)) ms, median \(String(format: "%.2f", median)) ms")
        } else {
            let totals = samples.mapValues { ($0.reduce(0, +), $0.count) }
            for (kind, total) in totals.sorted(by: { $0.value.0 > $1.value.0 }) {
                lines.append("\(kind): \(Double(total.0) / 1e6) ms over \(total.1) steps")
            }
        }
        FileHandle.standardError.write(lines.map { $0 + "\n" }.joined().data(using: .utf8)!)
    }
}
