// Private declarations shared by the CKernels translation units (not part of the public module).
#ifndef RECURRENT_CKERNELS_INTERNAL_H
#define RECURRENT_CKERNELS_INTERNAL_H
#include <stddef.h>

enum { RC_ISA_GENERIC = 0, RC_ISA_AVX2 = 1, RC_ISA_AVX512 = 2 };

/// Micro-kernel: C[m x n] = alpha * Ap * Bp + beta * C, where Ap is a packed MR x kc panel
/// (element (i,k) at a[k*MR + i]) and Bp a kc x NR panel with row stride bs (element (k,j) at
/// b[k*bs + j]; bs == NR when packed, or ldb when B is read in place), m <= MR, n <= NR.
/// All NR columns of Bp are read. beta == 0 overwrites C without reading it.
typedef void (*rc_ukernel_fn)(long kc, const float *a, const float *b, long bs, float *c, long ldc,
                              long m, long n, float alpha, float beta);
/// Thin rows (m <= 2, Ap packed as for rc_ukernel_fn) of C against all NR-wide panels of B at once
/// (panel p at b + p*ps, row stride bs), n columns counted from the first panel; same sums as the
/// tile kernels.
typedef void (*rc_thin_fn)(long kc, const float *a, const float *b, long ps, long bs, float *c, long ldc,
                           long m, long n, float alpha, float beta);
/// Tile reading A in place: as rc_ukernel_fn, but row i of A at a + i·lda (element (i,k) at
/// a[i·lda + k]) instead of a packed panel; m rows (up to 9), the same sums as the packed tiles.
typedef void (*rc_dkernel_fn)(long kc, const float *a, long lda, const float *b, long bs, float *c, long ldc,
                              long m, long n, float alpha, float beta);
typedef void (*rc_unary_fn)(float *x, long n);
/// Transposes a strip of 8 rows and k8 columns (k8 a multiple of 8), 8 x 8 blocks at a time:
/// dst[c*ldd + r] = src[r*lds + c] for r < 8, c < k8.
typedef void (*rc_transpose8_fn)(const float *src, long lds, long k8, float *dst, long ldd);

typedef struct {
    int isa;
    const char *name;
    int mr, nr;           // register tile
    long kc, mc, nc;      // cache blocks (mc multiple of mr, nc multiple of nr)
    rc_ukernel_fn kernel;
    rc_unary_fn sigmoid, tanh;
    rc_transpose8_fn transpose8;  // optional SIMD helper for packing (NULL: scalar)
    const rc_ukernel_fn *edge;    // optional: edge[m·(vectors+1) + v] for tiles of m ≤ mr rows and v ≤ vectors
                                  // vectors of nr/vectors columns (same sums), or NULL: `kernel` for all
    int vectors;                  // with `edge`: vectors per tile row (nr = vectors · vector width)
    rc_thin_fn thin;              // optional: rows m <= 2 over several panels at once, or NULL
    const rc_ukernel_fn *tall;    // optional (mr 8): tall[v], 9-row tiles of v vectors, A packed 9 wide, or NULL
    const rc_dkernel_fn *direct;  // optional (mr 8): direct[m·(vectors+1) + v], m 1…9 rows of A read in place, or NULL
} rc_isa_desc;

/// The kernel for an m x n tile (m ≤ mr, n ≤ nr): the narrowest edge kernel that covers it.
static inline rc_ukernel_fn rc_tile_kernel(const rc_isa_desc *d, long m, long n) {
    if (!d->edge || (m == d->mr && n == d->nr)) return d->kernel;
    long width = d->nr / d->vectors, v = (n + width - 1) / width;
    return d->edge[m * (d->vectors + 1) + v];
}

/// The in-place tile (rc_isa_desc.direct, which must be set) for m rows (1…9) of A and the vectors
/// that cover n ≤ nr columns.
static inline rc_dkernel_fn rc_direct_kernel(const rc_isa_desc *d, long m, long n) {
    long width = d->nr / d->vectors;
    return d->direct[m * (d->vectors + 1) + (n + width - 1) / width];
}

extern const rc_isa_desc rc_desc_generic;
#if defined(__x86_64__)
extern const rc_isa_desc rc_desc_avx2;
extern const rc_isa_desc rc_desc_avx512;
void rc_transpose8_avx2(const float *src, long lds, long k8, float *dst, long ldd);
#endif

/// The descriptor currently in use (after CPU detection, RECURRENT_ISA and rc_force_isa).
const rc_isa_desc *rc_current_desc(void);
const rc_isa_desc *rc_desc_for(int isa);

/// Single-threaded blocked GEMM with a given kernel set (K > 0, M > 0, N > 0).
void rc_sgemm_serial(const rc_isa_desc *d, int transA, int transB, long M, long N, long K,
                     float alpha, const float *A, long lda, const float *B, long ldb,
                     float beta, float *C, long ldc);

/// Runs fn(arg, chunk) for every chunk in 0..<nchunks on the caller and up to nthreads-1 pool
/// workers (chunks are claimed dynamically). Returns 0 without running anything if the pool is
/// busy (another caller) or no helper is useful, so the caller must then run serially.
int rc_pool_run(int nchunks, int nthreads, void (*fn)(void *arg, int chunk), void *arg);

/// Grows a set of detached worker threads to `want`: starts fn((void *)id) for ids *count+1 … want,
/// stopping early if thread creation fails; *count is updated to the number running.
void rc_spawn_workers(int *count, int want, void *(*fn)(void *));

/// CLOCK_MONOTONIC in nanoseconds (how long idle workers have polled).
long rc_now_ns(void);

/// One polling pause of a waiting thread (x86 `pause`, arm64 `yield`).
static inline void rc_cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
