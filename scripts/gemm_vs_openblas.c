// Recurrent's matrix products against an OpenBLAS in the same process, taking turns, so a change of
// the shared host's speed hits both alike (separate processes run minutes apart read ±20%).
// Built and run by scripts/gemm_vs_openblas.sh, which says where the OpenBLAS comes from.
//
//   gemm_vs_openblas LIBOPENBLAS.so THREADS ROUNDS
//
// Each round, for each shape: one library's calls for 0.4 s (at least 5; the median time kept), a
// pause, the other's; the library that goes first alternates from round to round. The pause is
// 0.3 s because OpenBLAS's idle threads keep spinning for about 0.1 s after a call (its
// THREAD_TIMEOUT, 2^28 cycles): with 30 ms, Recurrent's small products ran at half speed against
// that spinning thread on this 2-vCPU machine (Recurrent's own workers sleep after 2000 pause
// instructions). Prints, per shape, both libraries' median GFLOP/s over the rounds, the median of
// the per-round ratios and the rounds in which Recurrent was ahead; and checks once per shape that
// both give the same product to 1e-4 (relative to the largest element), so the two are timed doing
// the same work.
#include "ckernels.h"
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

// CBLAS with 64-bit integers (NumPy's scipy-openblas) or 32-bit ones (Debian's libopenblas0).
typedef void (*sgemm64_fn)(int, int, int, long, long, long, float, const float *, long, const float *, long,
                           float, float *, long);
typedef void (*sgemm32_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                           float, float *, int);
static sgemm64_fn blas64;
static sgemm32_fn blas32;
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

static void blas(int ta, int tb, long M, long N, long K, const float *A, long lda, const float *B, long ldb,
                 float *C, long ldc) {
    if (blas64) blas64(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
    else blas32(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, (int)M, (int)N, (int)K, 1.0f, A, (int)lda,
                B, (int)ldb, 0.0f, C, (int)ldc);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void pause_ms(int ms) {
    struct timespec t = { 0, ms * 1000000L };
    nanosleep(&t, NULL);
}

// The median time of the calls one turn makes: at least 5, for at least 0.4 s, so each library
// runs hot (its threads awake, its buffers allocated) as in a sustained loop.
static double timed(int ours, int ta, int tb, long M, long N, long K, const float *A, const float *B, float *C) {
    long lda = ta ? M : K, ldb = tb ? K : N;
    double t[256], start = now();
    int n = 0;
    while (n < 256 && (n < 5 || now() - start < 0.4)) {
        double s = now();
        if (ours) rc_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
        else blas(ta, tb, M, N, K, A, lda, B, ldb, C, N);
        t[n++] = now() - s;
    }
    qsort(t, n, sizeof t[0], by_value);
    return t[n / 2];
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: gemm_vs_openblas LIBOPENBLAS.so THREADS ROUNDS\n");
        return 2;
    }
    int threads = atoi(argv[2]), rounds = atoi(argv[3]);
    if (threads < 1 || rounds < 1 || rounds > 200) {
        fprintf(stderr, "gemm_vs_openblas: THREADS must be at least 1 and ROUNDS 1–200\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "gemm_vs_openblas: cannot load %s: %s\n", argv[1], dlerror());
        return 2;
    }
    blas64 = (sgemm64_fn)dlsym(lib, "scipy_cblas_sgemm64_");
    if (!blas64) blas32 = (sgemm32_fn)dlsym(lib, "cblas_sgemm");
    void (*set64)(long) = (void (*)(long))dlsym(lib, "scipy_openblas_set_num_threads64_");
    void (*set32)(int) = (void (*)(int))dlsym(lib, "openblas_set_num_threads");
    char *(*config)(void) = (char *(*)(void))dlsym(lib, "scipy_openblas_get_config64_");
    if (!config) config = (char *(*)(void))dlsym(lib, "openblas_get_config");
    if ((!blas64 && !blas32) || (!set64 && !set32)) {
        fprintf(stderr, "gemm_vs_openblas: %s has no cblas_sgemm / openblas_set_num_threads\n", argv[1]);
        return 2;
    }
    if (set64) set64(threads); else set32(threads);
    rc_set_threads(threads);
    printf("OpenBLAS: %s\nRecurrent: %s kernels; %d threads each, %d rounds\n", config ? config() : "?",
           rc_kernel_isa(), threads, rounds);

    static const struct { const char *name; long M, N, K; int ta, tb; } shapes[] = {
        { "x·W_ihᵀ (lstm512 input projection)", 6400, 2048, 512, 0, 1 },
        { "dPreᵀ·x (lstm512 weight gradient)", 2048, 512, 6400, 1, 0 },
        { "dPre·W_ih (lstm512 input gradient)", 6400, 512, 2048, 0, 0 },
        { "square", 2048, 2048, 2048, 0, 0 },
        { "x·W_ihᵀ (rnn256 layer 1)", 5000, 256, 256, 0, 1 },
        { "dPreᵀ·x (rnn256 weight gradient)", 256, 256, 5000, 1, 0 },
        { "logits (head, V 65)", 5000, 65, 256, 0, 1 },
    };
    int failures = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        long M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
        int ta = shapes[s].ta, tb = shapes[s].tb;
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
        float *C = malloc(sizeof(float) * M * N), *D = malloc(sizeof(float) * M * N);
        if (!A || !B || !C || !D) { fprintf(stderr, "gemm_vs_openblas: out of memory\n"); return 1; }
        unsigned long x = 12345 + s;
        for (long i = 0; i < M * K; i++) { x = x * 6364136223846793005UL + 1; A[i] = (float)(x >> 40) / (1UL << 24) - 0.5f; }
        for (long i = 0; i < K * N; i++) { x = x * 6364136223846793005UL + 1; B[i] = (float)(x >> 40) / (1UL << 24) - 0.5f; }
        // Same work: both products agree (and warm up both libraries' threads and buffers).
        rc_sgemm(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C, N);
        blas(ta, tb, M, N, K, A, ta ? M : K, B, tb ? K : N, D, N);
        double diff = 0, big = 0;
        for (long i = 0; i < M * N; i++) { diff = fmax(diff, fabs(C[i] - D[i])); big = fmax(big, fabs(D[i])); }
        if (diff > 1e-4 * big) { printf("%s: the products differ by %.3g (largest %.3g)\n", shapes[s].name, diff, big); failures++; }
        double ours[200], theirs[200], ratio[200];
        int ahead = 0;
        for (int r = 0; r < rounds; r++) {
            for (int turn = 0; turn < 2; turn++) {
                int mine = (turn == 0) == (r % 2 == 0);
                pause_ms(300);   // the other library's threads go back to sleep
                double t = timed(mine, ta, tb, M, N, K, A, B, mine ? C : D);
                if (mine) ours[r] = t; else theirs[r] = t;
            }
            ratio[r] = theirs[r] / ours[r];
            ahead += ratio[r] > 1.0;
        }
        double flop = 2.0 * M * N * K;
        for (int r = 0; r < rounds; r++) { ours[r] = flop / ours[r] / 1e9; theirs[r] = flop / theirs[r] / 1e9; }
        qsort(ours, rounds, sizeof ours[0], by_value);
        qsort(theirs, rounds, sizeof theirs[0], by_value);
        qsort(ratio, rounds, sizeof ratio[0], by_value);
        printf("%-38s %5ld×%ld×%ld  Recurrent %5.0f GFLOP/s (%3.0f–%3.0f)  OpenBLAS %5.0f (%3.0f–%3.0f)  ratio %.3f (%.3f–%.3f), ahead in %d of %d\n",
               shapes[s].name, M, N, K, ours[rounds / 2], ours[0], ours[rounds - 1], theirs[rounds / 2], theirs[0],
               theirs[rounds - 1], ratio[rounds / 2], ratio[0], ratio[rounds - 1], ahead, rounds);
        fflush(stdout);
        free(A); free(B); free(C); free(D);
    }
    return failures ? 1 : 0;
}
