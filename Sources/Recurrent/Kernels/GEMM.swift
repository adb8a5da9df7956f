import CKernels
import Dispatch

/// Matrix products used by every layer. Row-major, BLAS-like contract:
///
///     C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C
///
/// `transA == false`: A is m×k with row stride `lda`; `true`: A is stored k×m (row stride `lda`)
/// and used transposed. Likewise B (k×n, or n×k when `transB`). `beta == 0` overwrites C.
public enum GEMM {
    /// Computes the product with the fastest kernel this CPU supports (see `CKernels`), using up
    /// to `Threading.count` threads for large products. Results are bitwise identical for any
    /// thread count. The environment variable `RECURRENT_ISA=generic|avx2|avx512` forces a lower path.
    @inlinable
    public static func multiply(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        rc_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// Two products with one left operand, `c1 = alpha·op(a)·b1 + beta·c1` and
    /// `c2 = alpha·op(a)·b2 + beta·c2` (b1, b2 not transposed, both k × n): the bits of two
    /// `multiply` calls, with op(a) packed once for both when their packed blocks fit in half of L2
    /// (else two products; see `rc_sgemm_pair`): a layer's dW_ih and dW_hh, which share dPreᵀ.
    @inlinable
    public static func multiplyPair(
        transA: Bool, m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b1: UnsafePointer<Float>, ldb1: Int, b2: UnsafePointer<Float>, ldb2: Int, beta: Float = 0,
        c1: UnsafeMutablePointer<Float>, ldc1: Int, c2: UnsafeMutablePointer<Float>, ldc2: Int
    ) {
        if m == 0 || n == 0 { return }
        rc_sgemm_pair(transA ? 1 : 0, 0, m, n, k, alpha, a, lda, b1, ldb1, b2, ldb2, beta, c1, ldc1, c2, ldc2)
    }

    /// `multiply` on the calling thread only (for code that already runs in parallel, such as one
    /// batch slice of a recurrent time loop). Same results as `multiply`.
    @inlinable
    public static func multiplySerial(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        rc_sgemm_single(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// Runs n iterations of an FMA loop on the calling thread (the current ISA path, registers
    /// only) and returns the floating-point operations done: the benchmark's ceiling probe.
    public static func fmaLoop(_ n: Int) -> Double { rc_fma_loop(n) }

    /// `fmaLoop(n)` on every thread of the pool at once (`Threading.count`): GFLOP/s of the round.
    public static func fmaLoopRate(_ n: Int) -> Double {
        let threads = Threading.count
        let flops = UnsafeMutablePointer<Double>.allocate(capacity: threads)
        defer { flops.deallocate() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        Threading.parallel(threads) { part in flops[part] = rc_fma_loop(n) }
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return (0..<threads).reduce(0) { $0 + flops[$1] } / dt / 1e9
    }

    /// Floats that `pack` needs for a k×n right operand.
    public static func packedCount(k: Int, n: Int) -> Int { rc_packed_b_floats(k, n) }

    /// Lays out op(B) (k×n; B is n×k when `transB`) once in the micro-kernel's panel format, for
    /// many `multiplyPacked` calls with the same right operand (a recurrent weight over a time
    /// loop). The layout belongs to the instruction-set path current when packing.
    public static func pack(transB: Bool, k: Int, n: Int, b: UnsafePointer<Float>, ldb: Int, into packed: UnsafeMutablePointer<Float>) {
        rc_pack_b_all(transB ? 1 : 0, k, n, b, ldb, packed)
    }

    /// C[m×n] = A[m×k]·B + beta·C on the calling thread, B from `pack`; bitwise the same as
    /// `multiplySerial` with the unpacked B, but every B panel is read contiguously. With
    /// `prefetching`, the `bytes` there are asked for (into L2) a few lines before each tile: rows
    /// that the caller reads right after the product (the same bits).
    @inlinable
    public static func multiplyPacked(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, packed: UnsafePointer<Float>,
                                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                                      prefetching ahead: UnsafeRawPointer? = nil, bytes: Int = 0) {
        if m == 0 || n == 0 { return }
        rc_sgemm_packed_prefetch(m, n, k, a, lda, packed, beta, c, ldc, ahead, bytes)
    }

    /// The naive reference with the same contract (for tests).
    public static func reference(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        rc_sgemm_reference(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// The instruction-set path picked at run time.
    public static var isa: String { String(cString: rc_kernel_isa()) }
}
