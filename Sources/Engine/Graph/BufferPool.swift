import Core

/// The activation buffers a network reuses from call to call, so that a call writes into memory earlier calls (or
/// earlier steps of the same call) already touched: no page faults, warm caches, whatever the allocator does.
///
/// Buffers are `[Float]` arrays. Steps take their outputs from here (`take`); a run gives a buffer back once no tensor
/// of the run holds it any more (`BufferLedger`), and only if this pool lent it during the current call, so that
/// buffers a caller holds (the input, a forward pass's tensors) never come back. Arrays copy on write, so a buffer given
/// back while something else still shared it would be copied on its next write, never changed under that holder.
///
/// Not for concurrent use: the network serialises its calls.
final class BufferPool: @unchecked Sendable {
    /// Bytes the pool keeps at most: beyond them, the buffers given back longest ago are let go (calls alternating
    /// between very different batch sizes then allocate again, with memory bounded).
    static let capacity = 256 << 20

    /// A buffer waiting to be taken, and when it was given back (a counter of give-backs).
    private struct Idle {
        var buffer: [Float]
        var since: Int
    }
    private var idle: [Idle] = []
    private var givenBack = 0
    private var bytesKept = 0
    /// The buffers handed out during the current call.
    private var lent: Set<UnsafeRawPointer> = []

    /// A buffer of `count` elements, holding whatever it held before (zeros where it grew).
    ///
    /// The smallest idle buffer with room for `count` elements serves, unless it is more than twice that: tensors of
    /// many sizes then share few buffers, so a call touches little more memory than it holds at its peak.
    func take(_ count: Int) -> [Float] {
        var best: Int?
        for (i, candidate) in idle.enumerated() {
            let room = candidate.buffer.capacity
            if room >= count && room <= 2 * count && room < best.map({ idle[$0].buffer.capacity }) ?? .max { best = i }
        }
        var buffer: [Float]
        if let best {
            idle.swapAt(best, idle.count - 1)
            buffer = idle.removeLast().buffer
            bytesKept -= buffer.capacity * MemoryLayout<Float>.size
            // Within its capacity the array changes its count in place.
            if buffer.count > count {
                buffer.removeLast(buffer.count - count)
            } else if buffer.count < count {
                buffer.append(contentsOf: repeatElement(0, count: count - buffer.count))
            }
        } else {
            buffer = [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        }
        if let address = BufferPool.address(buffer) { lent.insert(address) }
        return buffer
    }

    /// Takes back `buffer` if this pool lent it during the current call (its last holder is done with it).
    func giveBack(_ buffer: [Float]) {
        guard let address = BufferPool.address(buffer), lent.remove(address) != nil else { return }
        givenBack += 1
        idle.append(Idle(buffer: buffer, since: givenBack))
        bytesKept += buffer.capacity * MemoryLayout<Float>.size
        while bytesKept > BufferPool.capacity, let oldest = idle.indices.min(by: { idle[$0].since < idle[$1].since }) {
            bytesKept -= idle[oldest].buffer.capacity * MemoryLayout<Float>.size
            idle.remove(at: oldest)
        }
    }

    /// Ends a call: what it handed out and did not get back stays with its holders.
    func endCall() {
        lent.removeAll(keepingCapacity: true)
    }

    /// The first element's address: which buffer an array uses (nil when it has none).
    static func address(_ buffer: [Float]) -> UnsafeRawPointer? {
        buffer.isEmpty ? nil : buffer.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
    }
}

/// The tensors of one run that hold each buffer, giving a buffer back to the pool when the last of them is dropped.
struct BufferLedger {
    let pool: BufferPool
    private var holders: [UnsafeRawPointer: Int] = [:]

    init(pool: BufferPool) {
        self.pool = pool
    }

    /// Counts `tensor` as holding its buffer.
    mutating func hold(_ tensor: Tensor) {
        if let address = BufferPool.address(tensor.storage) { holders[address, default: 0] += 1 }
    }

    /// Counts `tensor` as no longer holding its buffer, which goes back to the pool when nothing else holds it.
    mutating func drop(_ tensor: Tensor) {
        guard let address = BufferPool.address(tensor.storage) else { return }
        let remaining = holders[address, default: 1] - 1
        holders[address] = remaining > 0 ? remaining : nil
        if remaining <= 0 { pool.giveBack(tensor.storage) }
    }

    /// Gives back the buffers of `tensors` that no tensor counted here holds (each once, however many of them share it).
    mutating func giveBack(_ tensors: some Collection<Tensor>) {
        for tensor in tensors { hold(tensor) }
        for tensor in tensors { drop(tensor) }
    }

    /// Gives back `tensor`'s buffer if no tensor counted here holds it (a temporary, such as an input converted for one
    /// step).
    func release(_ tensor: Tensor) {
        guard let address = BufferPool.address(tensor.storage), holders[address] == nil else { return }
        pool.giveBack(tensor.storage)
    }
}
