import Core

/// The activation buffers a network reuses from call to call, so that a call writes into memory earlier calls (or
/// earlier steps of the same call) already touched: no page faults, warm caches, whatever the allocator does.
///
/// Buffers are `[Float]` arrays kept by element count. Steps take their outputs from here (`take`); a run gives a
/// buffer back once no tensor of the run holds it any more (`BufferLedger`), and only if this pool lent it during the
/// current call, so that buffers a caller holds (the input, a forward pass's tensors) never come back. Arrays copy on
/// write, so a buffer given back while something else still shared it would be copied on its next write, never
/// changed under that holder.
///
/// Not for concurrent use: the network serialises its calls.
final class BufferPool: @unchecked Sendable {
    /// Bytes the pool keeps at most: beyond them, the sizes used least recently are let go (calls alternating between
    /// very different batch sizes then allocate again, with memory bounded).
    static let capacity = 256 << 20

    private var free: [Int: [[Float]]] = [:]
    /// When each size was last taken or given back, on a counter of those events.
    private var lastUse: [Int: Int] = [:]
    private var clock = 0
    private var bytesKept = 0
    /// The buffers handed out during the current call.
    private var lent: Set<UnsafeRawPointer> = []

    /// A buffer of `count` elements, holding whatever it held before.
    func take(_ count: Int) -> [Float] {
        clock += 1
        lastUse[count] = clock
        let buffer: [Float]
        if let reused = free[count]?.popLast() {
            bytesKept -= count * MemoryLayout<Float>.size
            buffer = reused
        } else {
            buffer = [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        }
        if let address = BufferPool.address(buffer) { lent.insert(address) }
        return buffer
    }

    /// Takes back `buffer` if this pool lent it during the current call (its last holder is done with it).
    func giveBack(_ buffer: [Float]) {
        guard let address = BufferPool.address(buffer), lent.remove(address) != nil else { return }
        let bytes = buffer.count * MemoryLayout<Float>.size
        clock += 1
        lastUse[buffer.count] = clock
        while bytesKept + bytes > BufferPool.capacity,
              let stale = free.filter({ !$0.value.isEmpty && $0.key != buffer.count }).min(by: { lastUse[$0.key, default: 0] < lastUse[$1.key, default: 0] }) {
            bytesKept -= stale.key * stale.value.count * MemoryLayout<Float>.size
            free[stale.key] = nil
        }
        guard bytesKept + bytes <= BufferPool.capacity else { return }
        free[buffer.count, default: []].append(buffer)
        bytesKept += bytes
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

    /// Gives back `tensor`'s buffer if no tensor counted here holds it (a temporary, such as an input converted for one
    /// step).
    func release(_ tensor: Tensor) {
        guard let address = BufferPool.address(tensor.storage), holders[address] == nil else { return }
        pool.giveBack(tensor.storage)
    }
}
