import CKernels

/// How many threads the matrix kernels may use.
///
/// The thread pool lives in C (`CKernels`): a few persistent workers that spin briefly and then
/// sleep, so the small products of a recurrent time loop pay only a microsecond or so to hand out
/// work. Products below a size threshold always run on the calling thread. Results are bitwise
/// identical for any thread count (the depth dimension is never split).
public enum Threading {
    /// The number of threads `GEMM.multiply` may use (default: the number of online CPUs).
    /// Values below 1 are treated as 1. Thread-safe: the value is stored atomically in C.
    public static var count: Int {
        get { Int(rc_get_threads()) }
        set { rc_set_threads(Int32(clamping: newValue)) }
    }
}
