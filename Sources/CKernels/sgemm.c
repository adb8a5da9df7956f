#include "ckernels.h"

static inline float at(const float *X, long ld, int trans, long r, long c) {
    return trans ? X[c * ld + r] : X[r * ld + c];
}

void rc_sgemm_reference(int transA, int transB, long M, long N, long K, float alpha,
                        const float *A, long lda, const float *B, long ldb,
                        float beta, float *C, long ldc) {
    for (long i = 0; i < M; i++) {
        for (long j = 0; j < N; j++) {
            double s = 0;
            for (long k = 0; k < K; k++) s += (double)at(A, lda, transA, i, k) * (double)at(B, ldb, transB, k, j);
            float prev = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
            C[i * ldc + j] = alpha * (float)s + prev;
        }
    }
}

// Placeholder until the dispatched kernels land: same contract.
void rc_sgemm(int transA, int transB, long M, long N, long K, float alpha,
              const float *A, long lda, const float *B, long ldb,
              float beta, float *C, long ldc) {
    rc_sgemm_reference(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

const char *rc_kernel_isa(void) { return "reference"; }
