import CKernels

/// Vectorised in-place elementwise functions (same run-time ISA dispatch as `GEMM`).
/// Used for the gate nonlinearities of the recurrent cells.
public enum Vector {
    /// `p[i] = 1 / (1 + exp(-p[i]))` for `i` in `0..<count` (relative error ~1e-7).
    @inlinable
    public static func sigmoid(_ p: UnsafeMutablePointer<Float>, count: Int) {
        if count > 0 { rc_sigmoid(p, count) }
    }

    /// `p[i] = tanh(p[i])` for `i` in `0..<count` (exact 0 at 0, saturates to ±1).
    @inlinable
    public static func tanh(_ p: UnsafeMutablePointer<Float>, count: Int) {
        if count > 0 { rc_tanh(p, count) }
    }
}

extension Vector {
    /// Calls `body(lo, hi)` over `0..<count` in `Threading.count` contiguous ranges in parallel when
    /// `count` is at least `minimum`, else once on the calling thread.
    static func forRanges(_ count: Int, minimum: Int = 1 << 16, _ body: (Int, Int) -> Void) {
        let parts = count >= minimum ? max(1, Threading.count) : 1
        Threading.parallel(parts) { part in
            let lo = count * part / parts, hi = count * (part + 1) / parts
            if hi > lo { body(lo, hi) }
        }
    }
}
