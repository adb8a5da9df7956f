// The arm64 (NEON) GEMM path against the double-precision reference, for scripts/check_arm64.sh:
// odd shapes, all four transpose cases, alpha and beta, several cache blocks, 1–3 threads (which
// must give the same bits), and the pre-packed right operand (the same bits as the serial
// product). Prints one line per failure and a summary; exits non-zero on any failure.
#include "ckernels.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long state = 12345;
static float uniform(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((state >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}
static float *randoms(long n) {
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (long i = 0; i < n; i++) p[i] = uniform();
    return p;
}

int main(void) {
    const char *isa = rc_kernel_isa();
    long shapes[][3] = {
        {1, 1, 1}, {7, 11, 5}, {8, 12, 1}, {9, 13, 300}, {17, 25, 257}, {33, 100, 64}, {64, 48, 513},
        {130, 37, 40}, {200, 300, 129}, {5, 1030, 70}, {300, 24, 2600}, {256, 256, 256}, {25, 1024, 256},
    };
    int failures = 0, checks = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        long M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        for (int tA = 0; tA < 2; tA++)
            for (int tB = 0; tB < 2; tB++) {
                long lda = (tA ? M : K) + 3, ldb = (tB ? K : N) + 1, ldc = N + 2;
                float *A = randoms((tA ? K : M) * lda), *B = randoms((tB ? N : K) * ldb), *C0 = randoms(M * ldc);
                float alpha = (s & 1) ? 0.5f : 1.0f, beta = tA ? 1.0f : 0.0f;
                float *ref = malloc(sizeof(float) * (size_t)(M * ldc)), *one = malloc(sizeof(float) * (size_t)(M * ldc));
                memcpy(ref, C0, sizeof(float) * (size_t)(M * ldc));
                rc_sgemm_reference(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, ref, ldc);
                for (int threads = 1; threads <= 3; threads++) {
                    float *C = malloc(sizeof(float) * (size_t)(M * ldc));
                    memcpy(C, C0, sizeof(float) * (size_t)(M * ldc));
                    rc_sgemm_isa(isa, threads, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
                    double worst = 0;
                    int padding = 0;
                    for (long i = 0; i < M; i++)
                        for (long j = 0; j < ldc; j++) {
                            if (j >= N) { padding |= C[i * ldc + j] != C0[i * ldc + j]; continue; }
                            double e = fabs((double)C[i * ldc + j] - (double)ref[i * ldc + j]) / (1.0 + sqrt((double)K));
                            if (!(e <= worst)) worst = e;   // NaN counts as the worst
                        }
                    checks++;
                    if (!(worst < 1e-5) || padding) {
                        printf("FAIL %ldx%ldx%ld tA %d tB %d threads %d: max scaled error %g%s\n", M, N, K, tA, tB, threads,
                               worst, padding ? ", wrote outside C's columns" : "");
                        failures++;
                    }
                    if (threads == 1) memcpy(one, C, sizeof(float) * (size_t)(M * ldc));
                    else if (memcmp(one, C, sizeof(float) * (size_t)(M * ldc)) != 0) {
                        printf("FAIL %ldx%ldx%ld tA %d tB %d: %d threads differ from 1\n", M, N, K, tA, tB, threads);
                        failures++;
                    }
                    free(C);
                }
                // The pre-packed right operand: bitwise the serial product (shapes that
                // rc_sgemm_single does not cut into K slices, see ckernels.h).
                int kslices = K >= 2 * (M > N ? M : N) && M * N <= 262144 && (double)M * N * K >= 8388608.0;
                if (!tA && !kslices) {
                    float *packed = malloc(sizeof(float) * (size_t)rc_packed_b_floats(K, N));
                    rc_pack_b_all(tB, K, N, B, ldb, packed);
                    float *fast = malloc(sizeof(float) * (size_t)(M * ldc)), *serial = malloc(sizeof(float) * (size_t)(M * ldc));
                    memcpy(fast, C0, sizeof(float) * (size_t)(M * ldc));
                    memcpy(serial, C0, sizeof(float) * (size_t)(M * ldc));
                    rc_sgemm_packed_single(M, N, K, A, lda, packed, beta, fast, ldc);
                    rc_sgemm_single(0, tB, M, N, K, 1.0f, A, lda, B, ldb, beta, serial, ldc);
                    checks++;
                    if (memcmp(fast, serial, sizeof(float) * (size_t)(M * ldc)) != 0) {
                        printf("FAIL %ldx%ldx%ld tB %d: packed right operand differs from the serial product\n", M, N, K, tB);
                        failures++;
                    }
                    free(packed); free(fast); free(serial);
                }
                free(A); free(B); free(C0); free(ref); free(one);
            }
    }
    printf("%s path: %d checks, %d failures\n", isa, checks, failures);
    return failures ? 1 : 0;
}
