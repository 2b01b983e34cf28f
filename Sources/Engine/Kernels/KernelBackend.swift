import Core
import Foundation

/// The shape of one 2-D sliding-window operation (a convolution, or a pooling with `groups` 1): what a backend needs
/// to build a primitive.
struct WindowGeometry: Hashable, Sendable {
    /// Input `[N, C, H, W]`.
    var input: [Int]
    /// Output `[N, O, OH, OW]`.
    var output: [Int]
    /// Kernel `[KH, KW]`.
    var kernel: [Int]
    var strides: [Int]
    /// ONNX dilations (1 = dense).
    var dilations: [Int]
    var padsBegin: [Int]
    var padsEnd: [Int]
    var groups: Int
}

/// How a convolution's input and output are stored: the same order, except where a few input channels (an RGB image)
/// are read plain and the output written in blocks.
struct ConvolutionOrders: Hashable, Sendable {
    var input: StorageOrder
    var output: StorageOrder

    /// Input and output both in `order`.
    init(_ order: StorageOrder) { (input, output) = (order, order) }
    init(input: StorageOrder, output: StorageOrder) { (self.input, self.output) = (input, output) }
}

/// An activation a convolution kernel applies to its output in the same pass.
enum FusedActivation: Hashable, Sendable {
    case none
    case relu
    case clip(Float, Float)
}

/// Elementwise functions a backend runs vectorised (libm's erf per element was most of a transformer's GELU time).
enum ElementwiseFunction: Hashable, Sendable {
    /// `x/2 · (1 + erf(x/√2))`.
    case geluErf
    /// `x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    case geluTanh
    /// `1 / (1 + e^-x)` (a YOLO runs one per convolution, in its SiLU).
    case logistic
}

/// The constant operands of one convolution node, with per-backend prepared copies (reordered weights).
final class ConvolutionWeights: @unchecked Sendable {
    /// ONNX layout `[O, C/groups, KH, KW]`.
    let weights: Tensor
    /// `[O]` or nil.
    let bias: Tensor?
    private let lock = NSLock()
    private var prepared: [String: AnyObject] = [:]

    init(weights: Tensor, bias: Tensor?) {
        self.weights = weights
        self.bias = bias
    }

    /// The backend-prepared form stored under `key`, made once by `make`.
    func prepared<T: AnyObject>(_ key: String, _ make: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        if let value = prepared[key] as? T { return value }
        let value = try make()
        prepared[key] = value
        return value
    }
}

/// The numeric kernels the operators delegate to, so that another backend could replace oneDNN.
///
/// Each kernel writes its result into `destination`, a buffer of the result's element count whatever it holds, which
/// the caller hands over (it must hold no other reference, or the first write would copy it).
protocol KernelBackend: Sendable {
    /// `activation(conv(x, W) + b + addend)`, where the addend is what `destination` holds when `accumulating`; the
    /// input stored in `orders.input`, addend and output in `orders.output`.
    func convolution(_ x: Tensor, _ weights: ConvolutionWeights, _ geometry: WindowGeometry, activation: FusedActivation,
                     accumulating: Bool, into destination: consuming [Float], orders: ConvolutionOrders) throws -> Tensor
    /// The gradient of a convolution's input (stored in `orders.input`) given the gradient of its output (in
    /// `orders.output`), bias and activation excluded.
    func convolutionBackwardData(_ gradient: Tensor, _ weights: ConvolutionWeights, _ geometry: WindowGeometry,
                                 orders: ConvolutionOrders, into destination: consuming [Float]) throws -> Tensor
    /// Max pooling (padded positions never win); input and output stored in `order`.
    func maxPooling(_ x: Tensor, _ geometry: WindowGeometry, order: StorageOrder, into destination: consuming [Float]) throws -> Tensor
    /// The softmax of each of `rows` contiguous rows of `length` elements (attention's scores).
    func softmax(rows: Int, length: Int, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) throws
    /// `function` of each of `count` elements.
    func elementwise(_ function: ElementwiseFunction, count: Int, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) throws
    /// Row-major `C = alpha * op(A) * op(B) + beta * C`, with `op` transposing when asked.
    func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
              beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) throws
}
