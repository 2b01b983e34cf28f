import Core
import Foundation

/// One executable node of a plan: an operator with the tensor names it reads and writes, and the storage orders it
/// reads and writes them in.
struct Step: Sendable {
    var node: Int
    var op: any Operator
    var inputs: [String]
    var outputs: [String]
    /// Per input: the storage order the operator reads it in.
    var inputOrders: [StorageOrder]
    /// The storage order of the 4-D outputs (others are row-major).
    var outputOrder = StorageOrder.channelsFirst
    /// The inputs known at load time (weights, shapes, indices), exact.
    var constants: [Constant?]
    /// Per input: whether it holds integers (see `Plan.integerTensors`).
    var integerInputs: [Bool]

    init(node: Int, op: any Operator, inputs: [String], outputs: [String], constants: [Constant?], integerInputs: [Bool]? = nil) {
        (self.node, self.op, self.inputs, self.outputs, self.constants) = (node, op, inputs, outputs, constants)
        inputOrders = inputs.map { _ in .channelsFirst }
        self.integerInputs = integerInputs ?? inputs.map { _ in false }
    }

    /// The environment the operator runs in for this step.
    func context(_ kernels: any KernelBackend, buffers: BufferPool, rules: GradientRules = .standard) -> OperatorContext {
        OperatorContext(kernels: kernels, rules: rules, buffers: buffers, inputOrders: inputOrders, outputOrder: outputOrder,
                        constants: constants, integerInputs: integerInputs)
    }
}

/// The graph specialised to one input shape: folded constants, every tensor's shape, and the steps left to run.
struct Plan: Sendable {
    var inputShape: [Int]
    var constants: [String: Constant]
    var shapes: [String: [Int]]
    /// The run-time tensors holding integers (TopK's indices, a Cast to an integer type, what integer operators compute
    /// from those): float32 storage, exact below 2^24, on which integer operators compute as integers (Div truncates).
    var integerTensors: Set<String>
    var steps: [Step]
    /// The step producing each runtime tensor.
    var producer: [String: Int]

    /// Builds the plan in passes: constants and shapes folded, then storage orders chosen for `layout`, then (with
    /// `fusing`) activations and residual joins fused into convolutions unless their output is in `protected` (a
    /// tensor the caller reads) or a graph output.
    init(model: Model, operators: [(any Operator)?], constants base: [String: Constant], inputShape: [Int],
         kernels: any KernelBackend, layout: ActivationLayout = .channelBlocks, fusing: Bool = false,
         protected: Set<String> = []) throws {
        self.inputShape = inputShape
        (constants, shapes, integerTensors, steps) = try Plan.foldingConstantsAndShapes(model, operators, base, inputShape, kernels)
        producer = Plan.producers(steps)
        if layout != .nchw { placeChannelsLast() }
        if layout == .channelBlocks { placeChannelBlocks(graphOutputs: Set(model.outputNames)) }
        if fusing {
            fuseIntoConvolutions(protecting: protected.union(model.outputNames))
            fuseGelus(protecting: protected.union(model.outputNames))
        }
        let perImage = producer.keys.map { Tensor.elementCount(shapes[$0] ?? []) / max(inputShape.first ?? 1, 1) }.max() ?? 0
        cacheFriendlyBatch = max(1, Plan.activationBudget / max(perImage * MemoryLayout<Float>.size, 1))
    }

    /// Pass 1: evaluates every node computable from constants and the input shape, and shape-checks the rest, which
    /// become the steps, noting which of their outputs hold integers.
    private static func foldingConstantsAndShapes(_ model: Model, _ operators: [(any Operator)?], _ base: [String: Constant],
                                                  _ inputShape: [Int], _ kernels: any KernelBackend)
        throws -> (constants: [String: Constant], shapes: [String: [Int]], integerTensors: Set<String>, steps: [Step]) {
        var constants = base
        var shapes: [String: [Int]] = [model.inputName: inputShape]
        var integerTensors = Set<String>()
        for (name, c) in base { shapes[name] = c.tensor.shape }
        var steps: [Step] = []
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
            // Every output's shape, checked before anything is computed or allocated.
            let outputShapes = try located(node) { try op.outputShapes(inputShapes, constants: inputConstants) }
            guard outputShapes.count >= node.outputs.filter({ !$0.isEmpty }).count else {
                throw EngineError("\(node.label): \(node.outputs.count) outputs declared, \(outputShapes.count) computed")
            }
            for shape in outputShapes where try located(node, { try Operand.elementCount(shape, "output") }) > Plan.largestTensor {
                throw EngineError("\(node.label): an output of shape \(shape) is larger than camvid's limit of 2^28 elements")
            }
            let allConstant = zip(node.inputs, inputConstants).allSatisfy { $0.isEmpty || $1 != nil }
            if allConstant || op.readsOnlyInputShape {
                // Load-time evaluation: constants, and what depends only on a runtime tensor's shape.
                let values = allConstant ? inputConstants : [Constant(tensor: Tensor(shape: inputShapes[0] ?? [], repeating: 0))]
                let outputs = try located(node) { try LoadTimeEvaluation.outputs(op, values, context: context) }
                for (name, value) in zip(node.outputs, outputs) where !name.isEmpty {
                    constants[name] = value
                    shapes[name] = value.shape
                }
                continue
            }
            for (name, shape) in zip(node.outputs, outputShapes) where !name.isEmpty { shapes[name] = shape }
            let integerInputs = zip(node.inputs, inputConstants).map { name, constant in constant?.isInteger ?? integerTensors.contains(name) }
            for (k, name) in node.outputs.enumerated() where !name.isEmpty && op.producesIntegers(integerInputs, output: k) {
                integerTensors.insert(name)
            }
            steps.append(Step(node: index, op: op, inputs: node.inputs, outputs: node.outputs, constants: inputConstants,
                              integerInputs: integerInputs))
        }
        for output in model.outputNames where shapes[output] == nil {
            throw EngineError("graph output '\(output)' is never produced")
        }
        return (constants, shapes, integerTensors, steps)
    }

    /// The most elements a tensor of a plan may have (1 GiB of float32): a larger shape comes from a broken model.
    static let largestTensor = 1 << 28

    /// `body`'s result, its error naming `node`.
    private static func located<T>(_ node: Node, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as EngineError {
            throw error.description.contains("'\(node.name)'") ? error : EngineError("\(node.label): \(error.description)")
        }
    }

    /// Pass 2: convolutions run channels-last (oneDNN's fast direct kernels); an operator that follows its input's
    /// order keeps a channels-last input so, a spatial mean reads it as it is, and every other operator reads NCHW,
    /// converted at the edge.
    private mutating func placeChannelsLast() {
        for i in steps.indices {
            let step = steps[i]
            func channelsLast(_ k: Int) -> Bool { k < step.inputs.count && storageOrder(of: step.inputs[k]) == .channelsLast }
            switch orderSupport(step) {
            case .convolution:
                (steps[i].inputOrders[0], steps[i].outputOrder) = (.channelsLast, .channelsLast)
            case .followsInput where channelsLast(0):
                (steps[i].inputOrders[0], steps[i].outputOrder) = (.channelsLast, .channelsLast)
            case .readsAnyOrder where channelsLast(0):
                steps[i].inputOrders[0] = .channelsLast
            case .followsBothInputs where channelsLast(0) && channelsLast(1) && shapes[step.inputs[0]] == shapes[step.inputs[1]]:
                (steps[i].inputOrders[0], steps[i].inputOrders[1], steps[i].outputOrder) = (.channelsLast, .channelsLast, .channelsLast)
            default:
                break
            }
        }
    }

    /// Pass 3: the channels-last tensors to store in 8-channel blocks instead (`channelBlocks`), with the orders of the
    /// steps writing and reading them: a convolution reading a few input channels (an image) reads them as they come,
    /// since oneDNN's kernels for those write blocks.
    private mutating func placeChannelBlocks(graphOutputs: Set<String>) {
        let blocked = channelBlocks(graphOutputs: graphOutputs)
        for i in steps.indices {
            if let output = steps[i].outputs.first, blocked.contains(output) {
                if case .convolution = orderSupport(steps[i]) {
                    let plain = (shapes[steps[i].inputs[0]]?[1] ?? 0) % 8 != 0
                    steps[i].inputOrders[0] = plain ? .channelsFirst : .channelBlocks8
                } else {
                    for k in steps[i].inputOrders.indices where steps[i].inputOrders[k] == .channelsLast { steps[i].inputOrders[k] = .channelBlocks8 }
                }
                steps[i].outputOrder = .channelBlocks8
            } else if orderSupport(steps[i]) == .readsAnyOrder, steps[i].inputOrders.first == .channelsLast,
                      blocked.contains(steps[i].inputs[0]) {
                steps[i].inputOrders[0] = .channelBlocks8
            }
        }
    }

    /// The channels-last tensors to store in 8-channel blocks, decided in execution order: the output of a dense
    /// spatial convolution (groups 1, kernel larger than 1x1), of any convolution or operator following its inputs'
    /// order that reads blocks, when every reader is one of those or a spatial mean (a reader writing another order
    /// converts). A stem (a dense spatial convolution of fewer than 8 channels, such as the RGB input) writes blocks too
    /// when its output reaches, through operators following one input's order, only steps that write blocks.
    ///
    /// In a network, oneDNN's AVX2 direct 3x3 kernels run 15-25% faster on blocks than on NHWC (ResNet-18), while its
    /// 1x1 and depthwise kernels run 5-10% slower (EfficientNet-Lite0): blocks start where dense kernels are. Its max
    /// pooling runs 4-5x faster on blocks than on NHWC (ResNet-18's 112x112x64).
    private func channelBlocks(graphOutputs: Set<String>) -> Set<String> {
        let consumers = self.consumers()
        func divisible(_ name: String) -> Bool { (shapes[name]?.count ?? 0) == 4 && shapes[name]![1] % 8 == 0 }
        func propagatesBlocks(_ step: Step) -> Bool {
            switch orderSupport(step) {
            case .convolution, .followsInput, .followsBothInputs: return true
            case .channelsFirst, .readsAnyOrder: return false
            }
        }
        // Readers of blocks: those, and spatial means reading channels-last.
        func readsBlocks(_ step: Step) -> Bool { propagatesBlocks(step) || step.inputOrders.first == .channelsLast }
        func candidate(_ step: Step) -> String? {
            guard let name = step.outputs.first, storageOrder(of: name) == .channelsLast, divisible(name), !graphOutputs.contains(name),
                  propagatesBlocks(step), (consumers[name] ?? []).allSatisfy({ readsBlocks(steps[$0]) }) else { return nil }
            return name
        }
        func denseSpatial(_ step: Step) -> Bool { orderSupport(step) == .convolution(blocksPay: true) }
        var blocked = Set<String>()
        for step in steps {
            guard let name = candidate(step) else { continue }
            let readsBlocks = step.inputs.contains(where: blocked.contains)
            if case .convolution = orderSupport(step) {
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
                guard orderSupport(step) == .followsInput, candidate(step) != nil, let rest = pathToBlocks(output) else { return nil }
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

    /// Pass 4: residual joins, then activations, fused into the convolutions before them, unless a tensor that fusion
    /// removes is `protected`. oneDNN may add the bias after the residual branch (a rounding apart), so a sum the caller
    /// reads is never fused.
    private mutating func fuseIntoConvolutions(protecting protected: Set<String>) {
        var removed = Set<Int>()
        // A joined convolution moves to the Add's place (the other branch is ready there) and adds that branch.
        for join in residualJoins() where !protected.contains(steps[join.conv].outputs[0]) && !protected.contains(steps[join.add].outputs[0]) {
            var step = steps[join.conv]
            guard var op = step.op.absorbingResidual() else { continue }
            let add = steps[join.add]
            let other = add.inputs[0] == step.outputs[0] ? add.inputs[1] : add.inputs[0]
            step.inputs = Array(step.inputs.prefix(2)) + [step.inputs.count > 2 ? step.inputs[2] : "", other]
            step.inputOrders = Array(step.inputOrders.prefix(2)) + [.channelsFirst, step.outputOrder]
            step.outputs = add.outputs
            if let activation = join.activation, let absorbed = op.absorbing(absorbedActivation(activation)) {
                op = absorbed
                step.outputs = steps[activation].outputs
                removed.insert(activation)
            }
            step.op = op
            steps[join.add] = step
            removed.insert(join.conv)
        }
        removeSteps(removed)
        removed = []
        for (conv, activation) in fusableActivations() where !protected.contains(steps[conv].outputs[0]) {
            guard let op = steps[conv].op.absorbing(absorbedActivation(activation)) else { continue }
            steps[conv].op = op
            steps[conv].outputs = [steps[activation].outputs[0]]
            removed.insert(activation)
        }
        removeSteps(removed)
    }

    /// Pass 5: each GELU that an exporter spelled out (`decomposedGelus`) becomes one Gelu step, unless a caller
    /// reads one of its pieces.
    private mutating func fuseGelus(protecting protected: Set<String>) {
        var removed = Set<Int>()
        for gelu in decomposedGelus() where gelu.pieces.allSatisfy({ !protected.contains($0) }) {
            let last = steps[gelu.steps.last!]
            var step = Step(node: last.node, op: Gelu(tanhApproximation: false), inputs: [gelu.input], outputs: last.outputs,
                            constants: [nil])
            step.outputOrder = last.outputOrder
            steps[gelu.steps.last!] = step
            removed.formUnion(gelu.steps.dropLast())
        }
        removeSteps(removed)
    }

    /// The GELUs PyTorch's legacy exporter writes out, `x / √2 -> Erf -> + 1 -> x * . -> * 0.5` (five steps on row-major
    /// tensors, each piece read only by the next): the steps in order, the input and the pieces fusion drops.
    func decomposedGelus() -> [(steps: [Int], input: String, pieces: [String])] {
        let consumers = self.consumers()
        func scalar(_ name: String, near value: Float) -> Bool {
            guard let c = constants[name], c.tensor.count == 1 else { return false }
            return abs(c.tensor.storage[0] - value) <= 1e-4 * value
        }
        /// The one step reading `name`, if exactly one does.
        func onlyReader(_ name: String) -> Int? {
            guard let readers = consumers[name], readers.count == 1 else { return nil }
            return readers[0]
        }
        /// The operand of a two-input step other than `name`.
        func other(_ step: Step, _ name: String) -> String? {
            guard step.inputs.count == 2 else { return nil }
            return step.inputs[0] == name ? step.inputs[1] : step.inputs[1] == name ? step.inputs[0] : nil
        }
        var found: [(steps: [Int], input: String, pieces: [String])] = []
        for (div, step) in steps.enumerated() where step.op.kind == "Div" && step.inputs.count == 2 {
            let x = step.inputs[0]
            guard scalar(step.inputs[1], near: Float(2).squareRoot()), constants[x] == nil,
                  let erf = onlyReader(step.outputs[0]), steps[erf].op.kind == "Erf",
                  let add = onlyReader(steps[erf].outputs[0]), steps[add].op.kind == "Add",
                  other(steps[add], steps[erf].outputs[0]).map({ scalar($0, near: 1) }) == true,
                  let mul = onlyReader(steps[add].outputs[0]), steps[mul].op.kind == "Mul",
                  other(steps[mul], steps[add].outputs[0]) == x,
                  let half = onlyReader(steps[mul].outputs[0]), steps[half].op.kind == "Mul",
                  other(steps[half], steps[mul].outputs[0]).map({ scalar($0, near: 0.5) }) == true else { continue }
            let chain = [div, erf, add, mul, half]
            guard chain.allSatisfy({ i in steps[i].outputOrder == .channelsFirst && steps[i].inputOrders.allSatisfy { $0 == .channelsFirst } }) else {
                continue
            }
            found.append((chain, x, chain.dropLast().map { steps[$0].outputs[0] }))
        }
        return found
    }

    /// Drops the steps at `indices` (their work now done by others).
    private mutating func removeSteps(_ indices: Set<Int>) {
        steps = steps.enumerated().filter { !indices.contains($0.offset) }.map(\.element)
        producer = Plan.producers(steps)
    }

    /// Convolutions whose output only feeds an activation a kernel can apply, stored in the convolution's order.
    func fusableActivations() -> [(conv: Int, activation: Int)] {
        let consumers = self.consumers()
        return steps.indices.compactMap { i in
            guard let output = steps[i].outputs.first, let users = consumers[output], users.count == 1, let j = users.first,
                  kernelActivation(steps[j]) != nil, steps[j].outputOrder == steps[i].outputOrder,
                  steps[i].op.absorbing(absorbedActivation(j)) != nil else { return nil }
            return (i, j)
        }
    }

    /// Convolutions whose output only feeds a sum of two runtime tensors of one shape stored in its order (a residual
    /// join, stored channels-last or in blocks), with the activation that alone reads the sum, if any.
    func residualJoins() -> [(conv: Int, add: Int, activation: Int?)] {
        let consumers = self.consumers()
        var joins: [(conv: Int, add: Int, activation: Int?)] = []
        for (i, step) in steps.enumerated() {
            guard step.outputOrder != .channelsFirst, step.op.absorbingResidual() != nil, let output = step.outputs.first,
                  let users = consumers[output], users.count == 1, let j = users.first else { continue }
            let add = steps[j]
            guard add.op.isSum, add.inputs.count == 2, add.inputs[0] != add.inputs[1],
                  add.inputOrders == [step.outputOrder, step.outputOrder], add.inputs.allSatisfy({ constants[$0] == nil }) else { continue }
            // When both branches are convolutions, the later one absorbs the Add (the other is ready by then).
            joins.removeAll { $0.add == j }
            let activation = consumers[add.outputs[0]].flatMap { readers in
                readers.count == 1 && kernelActivation(steps[readers[0]]) != nil && steps[readers[0]].outputOrder == step.outputOrder
                    ? readers[0] : nil
            }
            joins.append((i, j, activation))
        }
        return joins
    }

    /// The step of each runtime tensor.
    private static func producers(_ steps: [Step]) -> [String: Int] {
        var producer: [String: Int] = [:]
        for (i, step) in steps.enumerated() { for name in step.outputs where !name.isEmpty { producer[name] = i } }
        return producer
    }

    /// The steps reading each tensor.
    private func consumers() -> [String: [Int]] {
        var consumers: [String: [Int]] = [:]
        for (i, step) in steps.enumerated() { for name in step.inputs where !name.isEmpty { consumers[name, default: []].append(i) } }
        return consumers
    }

    /// The shapes and load-time values of step `step`'s inputs.
    private func inputShapesAndConstants(_ step: Step) -> (shapes: [[Int]?], constants: [Constant?]) {
        (step.inputs.map { $0.isEmpty ? nil : shapes[$0] }, step.inputs.map { $0.isEmpty ? nil : constants[$0] })
    }

    private func orderSupport(_ step: Step) -> OrderSupport {
        let inputs = inputShapesAndConstants(step)
        return step.op.orderSupport(inputs.shapes, constants: inputs.constants)
    }

    private func kernelActivation(_ step: Step) -> FusedActivation? {
        let inputs = inputShapesAndConstants(step)
        return step.op.kernelActivation(inputs.shapes, constants: inputs.constants)
    }

    /// Step `index`'s activation operator as a convolution absorbs it.
    private func absorbedActivation(_ index: Int) -> AbsorbedActivation {
        let step = steps[index]
        return AbsorbedActivation(kernel: kernelActivation(step) ?? .none, op: step.op,
                                  constants: step.inputs.dropFirst().map { $0.isEmpty ? nil : constants[$0]?.tensor })
    }

    /// How the step producing the runtime tensor `name` stores it (NCHW for the input, constants and tensors of other
    /// ranks).
    func storageOrder(of name: String) -> StorageOrder {
        guard let step = producer[name], shapes[name]?.count == 4 else { return .channelsFirst }
        return steps[step].outputOrder
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

    /// Runs `subset` of the steps in order on `values`, dropping intermediates not in `keep` once read; outputs and
    /// converted inputs take their memory from `buffers`, and intermediates give it back once dropped.
    func execute(_ subset: Set<Int>?, values: inout [String: Tensor], keep: Set<String>, kernels: any KernelBackend,
                 buffers: BufferPool) throws {
        let order = subset.map { $0.sorted() } ?? Array(steps.indices)
        var remaining: [String: Int] = [:]
        for i in order { for name in steps[i].inputs where !name.isEmpty { remaining[name, default: 0] += 1 } }
        var ledger = BufferLedger(pool: buffers)
        for value in values.values { ledger.hold(value) }
        for i in order {
            let step = steps[i]
            let started = StepProfile.enabled ? DispatchTime.now().uptimeNanoseconds : 0
            let (inputs, converted) = stepInputs(i, values, buffers: buffers)
            let outputs = try step.op.forward(inputs, context: step.context(kernels, buffers: buffers))
            if StepProfile.enabled { StepProfile.shared.record(step, since: started) }
            for (name, value) in zip(step.outputs, outputs) where !name.isEmpty {
                if let replaced = values.updateValue(value, forKey: name) { ledger.drop(replaced) }
                ledger.hold(value)
            }
            for k in converted { if let input = inputs[k] { ledger.release(input) } }
            for name in step.inputs where !name.isEmpty {
                remaining[name, default: 0] -= 1
                if remaining[name] == 0 && !keep.contains(name), let value = values.removeValue(forKey: name) { ledger.drop(value) }
            }
        }
    }

    /// The inputs of step `i` from `values` or the constants, in the storage orders the step reads, and which of them
    /// were converted to that order (into buffers from `buffers`).
    func stepInputs(_ i: Int, _ values: [String: Tensor], buffers: BufferPool) -> (inputs: [Tensor?], converted: [Int]) {
        let step = steps[i]
        var inputs: [Tensor?] = []
        var converted: [Int] = []
        for (k, name) in step.inputs.enumerated() {
            if name.isEmpty { inputs.append(nil); continue }
            if let v = values[name] {
                if v.order == step.inputOrders[k] || v.rank != 4 {
                    inputs.append(v)
                } else {
                    inputs.append(v.reordered(to: step.inputOrders[k], reusing: buffers.take(v.count)))
                    converted.append(k)
                }
                continue
            }
            inputs.append(constants[name]?.tensor)
        }
        return (inputs, converted)
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

