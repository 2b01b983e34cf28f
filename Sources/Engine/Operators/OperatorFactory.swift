import Core
/// Maps ONNX operator types to their implementations.
enum OperatorFactory {
    static func make(_ node: Node, opset: Int) throws -> any Operator {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw EngineError("\(node.label): operator domain '\(node.domain)' is not supported")
        }
        switch node.opType {
        case "Add": return try Add(node)
        case "Sub": return try Sub(node)
        case "Mul": return try Mul(node)
        case "Div": return try Div(node)
        case "Pow": return try Pow(node)
        case "Mod": return try Mod(node)
        case "Equal": return try Equal(node)
        case "Not": return try Not(node)
        case "Relu": return try Relu(node)
        case "LeakyRelu": return try LeakyRelu(node)
        case "PRelu": return try PRelu(node)
        case "Clip": return try Clip(node)
        case "Sigmoid": return try Sigmoid(node)
        case "HardSigmoid": return try HardSigmoid(node)
        case "HardSwish": return try HardSwish(node)
        case "Tanh": return try Tanh(node)
        case "Erf": return try Erf(node)
        case "Sqrt": return try Sqrt(node)
        case "Exp": return try Exp(node)
        case "Gelu": return try Gelu(node)
        case "Identity", "Dropout": return try Identity(node)
        case "Conv": return try Conv(node)
        case "ConvTranspose": return try ConvTranspose(node)
        case "BatchNormalization": return try BatchNormalization(node)
        case "MaxPool": return try MaxPool(node)
        case "AveragePool": return try AveragePool(node)
        case "GlobalAveragePool", "GlobalMaxPool": return try GlobalPool(node)
        case "ReduceMean": return try ReduceMean(node, opset: opset)
        case "ReduceL2": return try ReduceL2(node, opset: opset)
        case "ReduceMax": return try ReduceMax(node, opset: opset)
        case "TopK": return try TopK(node, opset: opset)
        case "Reshape", "Flatten", "Squeeze", "Unsqueeze": return try Reshape(node)
        case "Transpose": return try Transpose(node)
        case "Concat": return try Concat(node)
        case "Split": return try Split(node)
        case "Slice": return try Slice(node)
        case "Pad": return try Pad(node)
        case "Gather": return try Gather(node)
        case "GatherElements": return try GatherElements(node)
        case "GatherND": return try GatherND(node, opset: opset)
        case "ScatterND": return try ScatterND(node, opset: opset)
        case "Expand": return try Expand(node)
        case "Resize", "Upsample": return try Resize(node, opset: opset)
        case "Gemm": return try Gemm(node)
        case "MatMul": return try MatMul(node)
        case "Einsum": return try Einsum(node)
        case "Softmax": return try Softmax(node, opset: opset)
        case "LayerNormalization": return try LayerNormalization(node)
        case "Shape": return try Shape(node)
        case "Cast": return try Cast(node)
        case "ConstantOfShape": return try ConstantOfShape(node)
        case "Range": return try Range(node)
        case "Where": return try Where(node)
        default:
            throw EngineError("\(node.label): operator '\(node.opType)' is not supported")
        }
    }

    /// The value of a Constant node.
    static func constantValue(_ node: Node) throws -> Constant {
        try node.checkAttributes(["value", "value_float", "value_floats", "value_int", "value_ints"])
        switch node.attributes.first?.value {
        case .tensor(let c)?: return c
        case .float(let v)?: return Constant(tensor: Tensor(scalar: v))
        case .floats(let v)?: return Constant(tensor: Tensor(shape: [v.count], storage: v))
        case .int(let v)?: return Constant(shape: [], integers: [v])
        case .ints(let v)?: return Constant(shape: [v.count], integers: v)
        default: throw EngineError("\(node.label): Constant has no supported value attribute")
        }
    }
}
