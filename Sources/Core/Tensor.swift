/// A dense float32 tensor in row-major (NCHW for images) order.
///
/// A value type: copies share storage until one of them is written.
public struct Tensor: Sendable, Equatable {
    /// The extent of each dimension, outermost first.
    public var shape: [Int]
    /// The elements in row-major order; `count == shape.product`.
    public var storage: [Float]

    /// A tensor with the given shape and elements.
    public init(shape: [Int], storage: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(Tensor.elementCount(shape) == storage.count,
                     "shape \(shape) needs \(Tensor.elementCount(shape)) elements, got \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    /// A tensor of the given shape filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        self.init(shape: shape, storage: [Float](repeating: value, count: Tensor.elementCount(shape)))
    }

    /// A scalar (rank-0) tensor.
    public init(scalar: Float) {
        self.init(shape: [], storage: [scalar])
    }

    /// The number of elements a shape holds.
    public static func elementCount(_ shape: [Int]) -> Int {
        shape.reduce(1, *)
    }

    /// The number of elements.
    public var count: Int { storage.count }

    /// The number of dimensions.
    public var rank: Int { shape.count }

    /// The same elements under another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, storage: storage)
    }

    /// The `index`-th slice along the first dimension, e.g. one image of a batch.
    public func slice(_ index: Int) -> Tensor {
        precondition(rank >= 1 && index >= 0 && index < shape[0], "slice \(index) out of \(shape)")
        let inner = Array(shape.dropFirst())
        let size = Tensor.elementCount(inner)
        return Tensor(shape: inner, storage: Array(storage[(index * size)..<((index + 1) * size)]))
    }

    /// Stacks tensors of one shape along a new first dimension.
    public static func stack(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty, "stack of no tensors")
        let inner = parts[0].shape
        precondition(parts.allSatisfy { $0.shape == inner }, "stack of unequal shapes")
        var storage: [Float] = []
        storage.reserveCapacity(parts.count * parts[0].count)
        for part in parts { storage.append(contentsOf: part.storage) }
        return Tensor(shape: [parts.count] + inner, storage: storage)
    }

    /// Concatenates tensors along their first dimension.
    public static func concatenate(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty, "concatenation of no tensors")
        let inner = Array(parts[0].shape.dropFirst())
        precondition(parts.allSatisfy { Array($0.shape.dropFirst()) == inner }, "concatenation of unequal shapes")
        var storage: [Float] = []
        for part in parts { storage.append(contentsOf: part.storage) }
        return Tensor(shape: [parts.reduce(0) { $0 + $1.shape[0] }] + inner, storage: storage)
    }
}
