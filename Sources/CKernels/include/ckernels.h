#ifndef RECURRENT_CKERNELS_H
#define RECURRENT_CKERNELS_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Row-major single-precision GEMM, single-threaded:
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
const char *rc_kernel_isa(void);

#ifdef __cplusplus
}
#endif
#endif
