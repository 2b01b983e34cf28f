/// A dense float32 tensor: a logical shape (`[N, C, H, W]` for images) and its elements in a storage order.
///
/// A value type: copies share storage until one of them is written. Only 4-D tensors may be stored in another order
/// than row-major (see `StorageOrder`); the engine's results, and everything else callers get, are row-major.
public struct Tensor: Sendable, Equatable {
    /// The extent of each dimension, outermost first.
    public var shape: [Int]
    /// The elements in `order`; `count == shape.product`.
    public var storage: [Float]
    /// How `storage` lays the elements out: `.channelsFirst` (row-major) unless a 4-D tensor says otherwise.
    public let order: StorageOrder

    /// A tensor with the given shape and elements, stored in `order` (row-major by default).
    public init(shape: [Int], storage: [Float], order: StorageOrder = .channelsFirst) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(Tensor.elementCount(shape) == storage.count,
                     "shape \(shape) needs \(Tensor.elementCount(shape)) elements, got \(storage.count)")
        precondition(order == .channelsFirst || shape.count == 4, "a \(shape) tensor stored \(order)")
        precondition(order != .channelBlocks8 || shape[1] % 8 == 0, "8-channel blocks of \(shape[1]) channels")
        self.shape = shape
        self.storage = storage
        self.order = order
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

    /// Equal logical values: the same shape and elements, whatever the two storage orders.
    public static func == (a: Tensor, b: Tensor) -> Bool {
        a.shape == b.shape && a.storage == b.reordered(to: a.order).storage
    }

    /// The same elements (row-major) under another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, storage: reordered(to: .channelsFirst).storage)
    }

    /// The `index`-th slice along the first dimension, e.g. one image of a batch.
    public func slice(_ index: Int) -> Tensor {
        precondition(rank >= 1 && index >= 0 && index < shape[0], "slice \(index) out of \(shape)")
        let inner = Array(shape.dropFirst())
        let size = Tensor.elementCount(inner)
        let image = Tensor(shape: [1] + inner, storage: Array(storage[(index * size)..<((index + 1) * size)]), order: order)
        return Tensor(shape: inner, storage: image.reordered(to: .channelsFirst).storage)
    }

    /// Stacks tensors of one shape along a new first dimension.
    public static func stack(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty, "stack of no tensors")
        let inner = parts[0].shape
        precondition(parts.allSatisfy { $0.shape == inner }, "stack of unequal shapes")
        var storage: [Float] = []
        storage.reserveCapacity(parts.count * parts[0].count)
        for part in parts { storage.append(contentsOf: part.reordered(to: .channelsFirst).storage) }
        return Tensor(shape: [parts.count] + inner, storage: storage)
    }

    /// Concatenates tensors along their first dimension; parts stored in one order keep it (an image is contiguous in
    /// every order), others are joined row-major.
    public static func concatenate(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty, "concatenation of no tensors")
        let inner = Array(parts[0].shape.dropFirst())
        precondition(parts.allSatisfy { Array($0.shape.dropFirst()) == inner }, "concatenation of unequal shapes")
        let order = parts.allSatisfy { $0.order == parts[0].order } ? parts[0].order : .channelsFirst
        var storage: [Float] = []
        storage.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for part in parts { storage.append(contentsOf: part.reordered(to: order).storage) }
        return Tensor(shape: [parts.reduce(0) { $0 + $1.shape[0] }] + inner, storage: storage, order: order)
    }
}
