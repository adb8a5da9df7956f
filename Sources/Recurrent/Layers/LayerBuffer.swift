/// A fixed-size, zero-initialised float buffer with a stable address, for the scratch and cache
/// arrays of the layers. Layers take `pointer` once before their time loops, so the loops neither
/// allocate nor go through Swift's array exclusivity checks.
final class LayerBuffer: @unchecked Sendable {
    let count: Int
    let pointer: UnsafeMutablePointer<Float>

    init(_ count: Int) {
        self.count = count
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// A buffer holding a copy of `values`.
    convenience init(copying values: [Float]) {
        self.init(values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { pointer.deallocate() }

    /// The elements `[offset, offset + count)` as an array.
    func array(offset: Int = 0, count: Int? = nil) -> [Float] {
        let n = count ?? (self.count - offset)
        return Array(UnsafeBufferPointer(start: pointer + offset, count: n))
    }
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
