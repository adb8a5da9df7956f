import CKernels

/// How many threads the matrix kernels may use.
///
/// The thread pool lives in C (`CKernels`): a few persistent workers that poll for up to a
/// millisecond after a job and then sleep, so the small products of a recurrent time loop pay only
/// a microsecond or so to hand out work. Products below a size threshold always run on the calling
/// thread. Results are bitwise identical for any thread count (the depth dimension is never split).
public enum Threading {
    /// The number of threads `GEMM.multiply` may use (default: the number of online CPUs).
    /// Values below 1 are treated as 1. Thread-safe: the value is stored atomically in C.
    public static var count: Int {
        get { Int(rc_get_threads()) }
        set { rc_set_threads(Int32(clamping: newValue)) }
    }
}

extension Threading {
    /// Runs `body(0)`, …, `body(parts − 1)` in parallel on the C pool (the caller and up to
    /// `count − 1` workers), with a single hand-off; returns when all have finished. Runs them in
    /// order on the calling thread when `parts` is 1, `count` is 1 or the pool is busy.
    /// `body` must be safe to call concurrently for different parts.
    static func parallel(_ parts: Int, _ body: (Int) -> Void) {
        if parts <= 1 { if parts == 1 { body(0) }; return }
        withoutActuallyEscaping(body) { escaping in
            var closure = escaping
            withUnsafeMutablePointer(to: &closure) { context in
                rc_parallel_for(Int32(clamping: parts), { ctx, i in
                    guard let ctx else { return }
                    ctx.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(i))
                }, context)
            }
        }
    }
}
