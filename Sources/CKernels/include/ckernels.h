#ifndef RECURRENT_CKERNELS_H
#define RECURRENT_CKERNELS_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Row-major single-precision GEMM (blocked, packed, run-time ISA dispatch; uses up to
/// rc_get_threads() threads for large products, results are bitwise deterministic):
///   C[M x N] = alpha * op(A)[M x K] * op(B)[K x N] + beta * C
/// op(A) = A (M x K, row stride lda) when transA == 0, else A^T with A stored K x M (row stride lda).
/// op(B) = B (K x N, row stride ldb) when transB == 0, else B^T with B stored N x K (row stride ldb).
/// beta == 0 overwrites C without reading it (NaNs in C do not propagate).
void rc_sgemm(int transA, int transB, long M, long N, long K, float alpha,
              const float *A, long lda, const float *B, long ldb,
              float beta, float *C, long ldc);

/// The naive triple loop with the same contract, kept as the reference for tests.
void rc_sgemm_reference(int transA, int transB, long M, long N, long K, float alpha,
                        const float *A, long lda, const float *B, long ldb,
                        float beta, float *C, long ldc);

/// Name of the instruction-set path that rc_sgemm picked on this CPU ("avx512", "avx2", "generic").
/// The environment variable RECURRENT_ISA=generic|avx2|avx512 (read once) can force a lower path.
const char *rc_kernel_isa(void);

/// Runs n iterations of an FMA loop (independent chains, registers only) on the calling thread with
/// the current ISA path; returns the floating-point operations done (2 per multiply-add lane).
double rc_fma_loop(long n);

/// Forces the ISA path ("generic", "avx2", "avx512"); NULL restores the default (CPU detection
/// and RECURRENT_ISA). Returns 0 on success, -1 if the name is unknown or the CPU lacks it.
/// Meant for tests; do not call while other threads are inside rc_sgemm.
int rc_force_isa(const char *isa);

/// 1 if this CPU can run the named ISA path, else 0.
int rc_isa_supported(const char *isa);

/// rc_sgemm with an explicit ISA path and thread count (test hook). Returns -1 (and does
/// nothing) if the CPU lacks that ISA, else 0.
int rc_sgemm_isa(const char *isa, int threads, int transA, int transB, long M, long N, long K, float alpha,
                 const float *A, long lda, const float *B, long ldb,
                 float beta, float *C, long ldc);

/// rc_sgemm on the calling thread only, with the current ISA path (for callers that already run
/// in parallel, e.g. one batch slice of a recurrent time loop). Same results as rc_sgemm.
void rc_sgemm_single(int transA, int transB, long M, long N, long K, float alpha,
                     const float *A, long lda, const float *B, long ldb,
                     float beta, float *C, long ldc);

/// Two products with one left operand, C1 = alpha·op(A)·op(B1) + beta·C1 and
/// C2 = alpha·op(A)·op(B2) + beta·C2 (both K x N; C1, C2 M x N and not overlapping), with the
/// bits of two rc_sgemm calls. op(A) is packed once for both when their packed blocks fit in half
/// of L2 (N up to about 340 with AVX-512's blocks), as for a layer's dW_ih = dPreᵀ·x and
/// dW_hh = dPreᵀ·h[t-1]; else it runs the two products.
void rc_sgemm_pair(int transA, int transB, long M, long N, long K, float alpha, const float *A, long lda,
                   const float *B1, long ldb1, const float *B2, long ldb2, float beta,
                   float *C1, long ldc1, float *C2, long ldc2);

/// rc_sgemm_pair with an explicit ISA path and thread count (test hook); -1 if the CPU lacks it.
int rc_sgemm_pair_isa(const char *isa, int threads, int transA, int transB, long M, long N, long K, float alpha,
                      const float *A, long lda, const float *B1, long ldb1, const float *B2, long ldb2, float beta,
                      float *C1, long ldc1, float *C2, long ldc2);

/// Runs fn(ctx, i) for every i in 0..<n, on the caller and up to rc_get_threads()-1 pool workers,
/// with one hand-off for the whole call; returns when all have finished. If the pool is busy
/// (another caller) or only one thread is allowed, everything runs on the caller, in order.
/// Test hook: `rounds` pool jobs back to back (alternately 2 and 7 chunks) on `nthreads` threads;
/// returns how many returned with a chunk still running, run twice, skipped or out of range.
long rc_pool_stress(long rounds, int nthreads);
/// fn must not call rc_parallel_for itself (a nested call simply runs serially).
void rc_parallel_for(int n, void (*fn)(void *ctx, int i), void *ctx);

/// Number of threads rc_sgemm may use (default: online CPUs). Values < 1 mean 1.
void rc_set_threads(int n);
int rc_get_threads(void);

/// Test hook: how many NC-wide column blocks of op(B) a product packs at once (0, the default: as
/// many as fit in 4 MB per operand). Any value gives the same bits. Returns the previous value.
int rc_set_column_group_blocks(int blocks);

/// In-place logistic sigmoid 1/(1+exp(-x)) over n floats (vectorised, ~1e-7 relative error).
void rc_sigmoid(float *x, long n);
/// In-place hyperbolic tangent over n floats (vectorised, exact 0 at 0, saturates to +-1).
void rc_tanh(float *x, long n);

/// Products whose right operand stays the same over many calls (a recurrent layer's W_hh over
/// its time loop): pack op(B) (K x N) once into rc_packed_b_floats(K, N) floats with
/// rc_pack_b_all, then rc_sgemm_packed_single computes C = A·B + beta·C (A: M x K, row stride
/// lda, not transposed) on the calling thread. Its sums are those of the blocked serial product
/// (same K blocking), so the results are rc_sgemm_single's bits, except for the shapes that
/// rc_sgemm_single cuts into K slices (K ≥ 2·max(M, N), M·N ≤ 2¹⁸ and M·N·K ≥ 2²³), whose
/// partial sums it adds in another order. The packed layout belongs to the ISA path current at
/// packing time.
long rc_packed_b_floats(long K, long N);
void rc_pack_b_all(int transB, long K, long N, const float *B, long ldb, float *dst);
void rc_sgemm_packed_single(long M, long N, long K, const float *A, long lda, const float *Bp,
                            float beta, float *C, long ldc);
/// rc_sgemm_packed_single (the same bits), asking for the `bytes` at `ahead` (none if NULL) a few lines
/// before each tile, into L2: rows that the caller reads right after the product.
void rc_sgemm_packed_prefetch(long M, long N, long K, const float *A, long lda, const float *Bp, float beta, float *C,
                              long ldc, const void *ahead, long bytes);

/// Row stealing between the slices of a recurrent time loop that sweep a phase's steps in
/// parallel (one slot per slice). The owner of slot `part` calls rc_steal_begin, then
/// rc_steal_poll at the start of every step (`next`, of the phase's steps up to `end`) with its
/// rows [b0, b0 + rows), which returns how many rows to keep: when a thief has asked, the last half
/// of them (a multiple of `quantum`) pass to the thief for steps next..<end. rc_steal_end when
/// done. A slice done early calls rc_steal_take, which asks the slot with the most work left and
/// returns 1 with the rows and steps it got, 0 when no slot has enough left to share.
typedef struct rc_steal rc_steal;
rc_steal *rc_steal_create(int parts);
void rc_steal_destroy(rc_steal *s);
void rc_steal_begin(rc_steal *s, int part);
long rc_steal_poll(rc_steal *s, int part, long b0, long rows, long next, long end, long quantum);
void rc_steal_end(rc_steal *s, int part);
int rc_steal_take(rc_steal *s, int thief, long quantum, long *b0, long *rows, long *from, long *end);
/// Successful rc_steal_take calls since the process started (for tests).
long rc_steal_count(void);

#ifdef __cplusplus
}
#endif

#endif
