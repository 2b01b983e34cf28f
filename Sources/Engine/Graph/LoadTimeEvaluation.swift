import Core

/// Evaluation of a node whose inputs are all known at load time: shape subgraphs, index tables, attention masks.
///
/// Integer results are exact 64-bit integers, never float32 values (which hold integers exactly only up to 2^24): an
/// operator computing integers does so in `integerOutputs`; one that only rearranges elements (`copiedInputs`) is run
/// on the positions of the integers and its outputs read back from them; anything else computes in float32 and its
/// integer results are checked to be exact.
enum LoadTimeEvaluation {
    /// The outputs of `op` on `inputs`.
    static func outputs(_ op: any Operator, _ inputs: [Constant?], context: OperatorContext) throws -> [Constant] {
        var context = context
        context.constants = inputs
        if let exact = try op.integerOutputs(inputs) { return exact }
        let integerInputs = inputs.map { $0?.isInteger ?? false }
        context.integerInputs = integerInputs
        let copied = op.copiedInputs(count: inputs.count).filter { $0 < inputs.count && inputs[$0] != nil }
        if op.producesIntegers(integerInputs, output: 0), !copied.isEmpty, copied.allSatisfy({ inputs[$0]?.isInteger == true }) {
            return try rearrangingIntegers(op, inputs, copied, context: context)
        }
        let outputs = try op.forward(inputs.map { $0?.tensor }, context: context)
        return try outputs.enumerated().map { k, output in
            guard op.producesIntegers(integerInputs, output: k) else { return Constant(tensor: output) }
            return Constant(shape: output.shape, integers: try output.storage.map { try Operand.exactInteger($0, "load-time result") })
        }
    }

    /// Runs a rearranging operator on the positions of the integer elements of its `copied` inputs (exact in float32
    /// for fewer than 2^24 elements), then reads each output element at the position it moved.
    private static func rearrangingIntegers(_ op: any Operator, _ inputs: [Constant?], _ copied: [Int],
                                            context: OperatorContext) throws -> [Constant] {
        var table: [Int] = []
        var positions = inputs.map { $0?.tensor }
        for k in copied {
            guard let constant = inputs[k], let values = constant.integers else { continue }
            positions[k] = Tensor(shape: constant.shape, storage: values.indices.map { Float(table.count + $0) })
            table += values
        }
        guard table.count < 1 << 24 else { throw EngineError("\(table.count) integers are too many to rearrange at load time") }
        return try op.forward(positions, context: context).map { output in
            Constant(shape: output.shape, integers: try output.storage.map { position in
                guard position >= 0, position < Float(table.count), position == position.rounded() else {
                    throw EngineError("an integer rearrangement produced position \(position)")
                }
                return table[Int(position)]
            })
        }
    }
}
