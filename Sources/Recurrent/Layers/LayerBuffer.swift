import Foundation

/// A fixed-size float buffer with a stable address, for the scratch and cache arrays of the
/// layers. Layers take `pointer` once before their time loops, so the loops neither allocate nor
/// go through Swift's array exclusivity checks.
///
/// Storage comes from `BufferPool`: a training step frees and re-requests the same sizes every
/// step, so after the first step no memory is mapped, faulted in or returned to the system.
/// `zeroed: false` skips the clearing for buffers that are fully written before being read.
final class LayerBuffer: @unchecked Sendable {
    let count: Int
    let pointer: UnsafeMutablePointer<Float>

    init(_ count: Int, zeroed: Bool = true) {
        self.count = count
        pointer = BufferPool.shared.take(max(count, 1))
        if zeroed { pointer.update(repeating: 0, count: max(count, 1)) }
    }

    /// A buffer holding a copy of `values`.
    convenience init(copying values: [Float]) {
        self.init(values.count, zeroed: values.isEmpty)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { BufferPool.shared.give(pointer, count: max(count, 1)) }

    /// The elements `[offset, offset + count)` as an array.
    func array(offset: Int = 0, count: Int? = nil) -> [Float] {
        let n = count ?? (self.count - offset)
        return Array(UnsafeBufferPointer(start: pointer + offset, count: n))
    }
}

/// Recycles `LayerBuffer` storage by exact size (thread-safe). Keeps at most `capacityBytes`
/// of idle buffers; beyond that, freed buffers go back to the allocator. Idle memory is bounded
/// by what one training step had live, as long as the shapes repeat.
final class BufferPool: @unchecked Sendable {
    static let shared = BufferPool()
    /// Upper bound on idle pooled memory.
    let capacityBytes = 512 << 20
    private var idle: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var idleBytes = 0
    private let lock = NSLock()

    /// Storage for `count` floats (contents unspecified; Float is a trivial type).
    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        lock.lock()
        if let p = idle[count]?.popLast() {
            idleBytes -= count * MemoryLayout<Float>.stride
            lock.unlock()
            return p
        }
        lock.unlock()
        let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
        p.initialize(repeating: 0, count: count)
        return p
    }

    func give(_ p: UnsafeMutablePointer<Float>, count: Int) {
        let bytes = count * MemoryLayout<Float>.stride
        lock.lock()
        if idleBytes + bytes <= capacityBytes {
            idle[count, default: []].append(p)
            idleBytes += bytes
            lock.unlock()
            return
        }
        lock.unlock()
        p.deallocate()
    }

    /// Bytes of idle buffers kept.
    var idleByteCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return idleBytes
    }

    /// Frees every idle buffer; returns the bytes freed.
    func releaseIdle() -> Int {
        lock.lock()
        let buffers = idle.values.flatMap { $0 }, bytes = idleBytes
        idle = [:]
        idleBytes = 0
        lock.unlock()
        for p in buffers { p.deallocate() }
        return bytes
    }
}

/// The memory Recurrent keeps for reuse between calls.
///
/// Layers take their scratch and cache buffers from a pool that keeps freed buffers, by exact
/// size, for the next call that asks for that size (up to 512 MiB of them): training repeats the
/// same shapes every step, so after the first step it maps and faults in no new memory. A program
/// that runs inference on shapes that keep changing (a server answering requests of any length)
/// fills the pool with sizes that do not come back: a 2-layer LSTM answering 400 requests of
/// random batch and length held about 590 MB. Call `release()` when a burst of work is over, or
/// between requests, to hand that memory back.
public enum CachedMemory {
    /// Bytes of freed buffers kept for reuse now.
    public static var bytes: Int { BufferPool.shared.idleByteCount }

    /// Frees every kept buffer and returns how many bytes that was. Safe at any time, from any
    /// thread: buffers in use are not touched, and later calls allocate what they need again.
    @discardableResult
    public static func release() -> Int { BufferPool.shared.releaseIdle() }
}

extension Tensor {
    /// Batch-major (B,T,F) elements copied to time-major (T,B,F) at `destination`.
    static func transposeBatchTime(_ source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>,
                                   outer: Int, inner: Int, features: Int) {
        // source (outer, inner, F) -> destination (inner, outer, F)
        for o in 0..<outer {
            for i in 0..<inner {
                (destination + (i * outer + o) * features).update(from: source + (o * inner + i) * features, count: features)
            }
        }
    }
}
