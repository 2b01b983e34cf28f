// CDNNL's shim includes <malloc.h> (`mallopt`), which Glibc's module lacks.
import CDNNL
import Core

/// The large activation buffers a network reuses from call to call, so that a call writes into memory earlier calls (or
/// earlier steps of the same call) already touched instead of memory the kernel must map and zero again.
///
/// The allocator keeps freed blocks below `minimumBytes` for the next allocation, which its most-recently-freed reuse
/// keeps in cache; a pool by size does that worse (every buffer pooled, EfficientNet-Lite0 at batch 1 ran 13% slower).
/// Larger blocks it maps for each allocation and unmaps when freed, so each call would page-fault them in again: those
/// the pool keeps (guided backprop on ResNet-18 at batch 17: 70 000 page faults a call without it, 40 000 with).
///
/// Buffers are `[Float]` arrays. Steps take their outputs from here (`take`); a run gives a buffer back once no tensor
/// of the run holds it any more (`BufferLedger`), and only if this pool lent it during the current call, so that
/// buffers a caller holds (the input, a forward pass's tensors) never come back. Arrays copy on write, so a buffer given
/// back while something else still shared it would be copied on its next write, never changed under that holder.
///
/// Not for concurrent use: the network serialises its calls.
final class BufferPool: @unchecked Sendable {
    /// The size from which the allocator maps blocks (glibc's largest, set here once) and the pool keeps them.
    static let minimumBytes = 32 << 20

    /// Bytes the pool keeps at most: beyond them, the buffers given back longest ago are let go (calls alternating
    /// between very different batch sizes then allocate again, with memory bounded).
    static let capacity = 256 << 20

    /// A buffer waiting to be taken, and when it was given back (a counter of give-backs).
    private struct Idle {
        var buffer: [Float]
        var since: Int
    }
    /// Idle buffers by element count, the one given back last on top.
    private var idle: [Int: [Idle]] = [:]
    private var givenBack = 0
    private var bytesKept = 0
    /// The buffers handed out during the current call.
    private var lent: Set<UnsafeRawPointer> = []

    init() {
        BufferPool.tuneAllocator
    }

    /// glibc maps blocks from a threshold that starts at 128 KB and grows with the blocks freed, and hands free memory
    /// at the top of its heap back to the kernel beyond another: fixed at `minimumBytes` and 1 GB, blocks below the pool's
    /// size stay in the heap from the first call on (ResNet-18 at batch 65: 5 800 page faults a call without, none with).
    private static let tuneAllocator: Void = {
        #if os(Linux)
        _ = mallopt(M_MMAP_THRESHOLD, Int32(minimumBytes))
        _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
        #endif
    }()

    /// A buffer of `count` elements, holding whatever it held before.
    ///
    /// Below `minimumBytes`, a new one. Else the buffer of that count given back last: a call repeating an earlier one
    /// finds every size it needs, so that from its second time on it maps nothing. (Serving smaller counts from larger
    /// buffers would share memory across sizes, but then shortened buffers miss their own size the next time, and calls
    /// would map again and again.)
    func take(_ count: Int) -> [Float] {
        guard count * MemoryLayout<Float>.size >= BufferPool.minimumBytes else { return TensorMath.buffer(count, from: nil) }
        let buffer: [Float]
        if let reused = idle[count]?.popLast()?.buffer {
            bytesKept -= reused.capacity * MemoryLayout<Float>.size
            buffer = reused
        } else {
            buffer = TensorMath.buffer(count, from: nil)
        }
        if let address = BufferPool.address(buffer) { lent.insert(address) }
        return buffer
    }

    /// Takes back `buffer` if this pool lent it during the current call (its last holder is done with it).
    func giveBack(_ buffer: [Float]) {
        guard let address = BufferPool.address(buffer), lent.remove(address) != nil else { return }
        givenBack += 1
        idle[buffer.count, default: []].append(Idle(buffer: buffer, since: givenBack))
        bytesKept += buffer.capacity * MemoryLayout<Float>.size
        while bytesKept > BufferPool.capacity,
              let oldest = idle.filter({ !$0.value.isEmpty }).min(by: { $0.value[0].since < $1.value[0].since })?.key {
            bytesKept -= idle[oldest]!.removeFirst().buffer.capacity * MemoryLayout<Float>.size
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
