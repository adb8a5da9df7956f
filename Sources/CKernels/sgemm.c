// Blocked, packed SGEMM driver with run-time ISA dispatch and optional multi-threading.
// Loop nest (Goto/BLIS style, row-major):
//   for jg (a group of NC-column blocks) / for pc (KC depth): pack op(B) into NR-wide panels
//     for ic (MC rows): pack op(A) block into MR-tall panels
//       for jc (one NC block of the group, kept in L2)
//         for ir (MR panel of A, stays in L1) / for jr (NR panel of B, streamed from L2): micro-kernel
// All four transpose cases differ only in the packing routines.
#include "ckernels.h"
#include "internal.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdint.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>

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

// ---------------------------------------------------------------- ISA selection

static int detect_isa(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma"))
        return RC_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return RC_ISA_AVX2;
#endif
    return RC_ISA_GENERIC;
}

static int isa_from_name(const char *s) {
    if (!s) return -1;
    if (strcasecmp(s, "avx512") == 0) return RC_ISA_AVX512;
    if (strcasecmp(s, "avx2") == 0) return RC_ISA_AVX2;
    if (strcasecmp(s, "generic") == 0) return RC_ISA_GENERIC;
    return -1;
}

const rc_isa_desc *rc_desc_for(int isa) {
#if defined(__x86_64__)
    if (isa == RC_ISA_AVX512) return &rc_desc_avx512;
    if (isa == RC_ISA_AVX2) return &rc_desc_avx2;
#endif
    (void)isa;
    return &rc_desc_generic;
}

static int g_detected = -1;                 // best ISA of this CPU
static _Atomic(const rc_isa_desc *) g_desc; // current selection
static pthread_once_t g_isa_once = PTHREAD_ONCE_INIT;

static void isa_init(void) {
    g_detected = detect_isa();
    int isa = g_detected;
    int env = isa_from_name(getenv("RECURRENT_ISA"));
    if (env >= 0 && env < isa) isa = env;
    g_desc = rc_desc_for(isa);
}

const rc_isa_desc *rc_current_desc(void) {
    pthread_once(&g_isa_once, isa_init);
    return g_desc;
}

const char *rc_kernel_isa(void) { return rc_current_desc()->name; }

int rc_force_isa(const char *name) {
    pthread_once(&g_isa_once, isa_init);
    int isa;
    if (name == NULL) {
        isa = g_detected;
        int env = isa_from_name(getenv("RECURRENT_ISA"));
        if (env >= 0 && env < isa) isa = env;
    } else {
        isa = isa_from_name(name);
        if (isa < 0 || isa > g_detected) return -1;
    }
    g_desc = rc_desc_for(isa);
    return 0;
}

int rc_isa_supported(const char *name) {
    pthread_once(&g_isa_once, isa_init);
    int isa = isa_from_name(name);
    return isa >= 0 && isa <= g_detected;
}

// ---------------------------------------------------------------- packing buffers

// Per-thread packing buffers, grown on demand and reused (no allocation per call in steady
// state); freed by a thread-specific-data destructor when the thread exits.
typedef struct { float *p; size_t cap; } buf_t;
static __thread buf_t tl_bufA, tl_bufB, tl_bufK, tl_bufP;   // K: partial sums of K-split products; P: the shared B block
static pthread_key_t buf_key;
static pthread_once_t buf_key_once = PTHREAD_ONCE_INIT;

static void buf_release(void *unused) {
    (void)unused;
    free(tl_bufA.p);
    free(tl_bufB.p);
    free(tl_bufK.p);
    free(tl_bufP.p);
    tl_bufA.p = tl_bufB.p = tl_bufK.p = tl_bufP.p = NULL;
    tl_bufA.cap = tl_bufB.cap = tl_bufK.cap = tl_bufP.cap = 0;
}

static void buf_make_key(void) { pthread_key_create(&buf_key, buf_release); }

static float *buf_get(buf_t *b, size_t nfloats) {
    if (b->cap < nfloats) {
        if (b->p == NULL) {
            pthread_once(&buf_key_once, buf_make_key);
            pthread_setspecific(buf_key, (void *)1);
        }
        free(b->p);
        size_t cap = nfloats + nfloats / 4 + 64;
        void *p = NULL;
        if (posix_memalign(&p, 64, cap * sizeof(float)) != 0) { b->p = NULL; b->cap = 0; return NULL; }
        b->p = (float *)p;
        b->cap = cap;
    }
    return b->p;
}

// ---------------------------------------------------------------- packing

/// Packs op(A)[ic..ic+mc, pc..pc+kc] into MR-tall panels: panel p, element (i,k) at p*MR*kc + k*MR + i.
static void pack_a(rc_transpose8_fn t8, int transA, const float *A, long lda, long ic, long pc, long mc, long kc, int mr, float *dst) {
    if (transA && mr == 8) {
        // A transposed (the weight gradients dPreᵀ·x: A is T·B rows of G·H floats, read once,
        // mostly from memory): row by row, so each line of A is fetched once for all the panels it
        // feeds, and 8 rows ahead, since rows G·H·4 bytes apart (1–8 KB) defeat the hardware
        // prefetchers. Full panels here, a ragged last one below. −0.3 to −1.7% step time on
        // rnn256, gru256, lstm128 and lstm256 (in-process A/B against panel by panel, 20 pairs).
        long mfull = mc / 8 * 8;
        for (long k = 0; k < kc; k++) {
            const float *s = A + (pc + k) * lda + ic;
            if (k + 8 < kc) {
                const char *ahead = (const char *)(s + 8 * lda);
                for (long o = 0; o < mc * (long)sizeof(float); o += 64) __builtin_prefetch(ahead + o);
            }
            for (long ir = 0; ir < mfull; ir += 8) memcpy(dst + ir * kc + k * 8, s + ir, 8 * sizeof(float));
        }
        if (mfull == mc) return;
        ic += mfull; dst += mfull * kc; mc -= mfull;
    }
    for (long ir = 0; ir < mc; ir += mr) {
        long m = mc - ir < mr ? mc - ir : mr;
        float *d = dst + ir * kc;
        if (!transA) {
            // A(i,k) = A[(ic+i)*lda + pc+k]: rows contiguous in k
            if (m < mr) memset(d, 0, sizeof(float) * (size_t)(mr * kc));
            // The first 8 rows (of an 8-row panel, or of a 9-row tall one) by 8 x 8 transposes,
            // the rest element by element.
            long k8 = t8 && m >= 8 ? kc / 8 * 8 : 0;
            if (k8 > 0) t8(A + (ic + ir) * lda + pc, lda, k8, d, mr);
            for (long i = 0; i < m; i++) {
                const float *s = A + (ic + ir + i) * lda + pc;
                for (long k = i < 8 ? k8 : 0; k < kc; k++) d[k * mr + i] = s[k];
            }
        } else {
            // A(i,k) = A[(pc+k)*lda + ic+i]: contiguous in i
            for (long k = 0; k < kc; k++) {
                const float *s = A + (pc + k) * lda + ic + ir;
                float *dk = d + k * mr;
                long i = 0;
                for (; i < m; i++) dk[i] = s[i];
                for (; i < mr; i++) dk[i] = 0.0f;
            }
        }
    }
}

/// Packs op(B)[pc..pc+kc, jc..jc+nc] into NR-wide panels: panel p, element (k,j) at p*NR*kc + k*NR + j.
static void pack_b(rc_transpose8_fn t8, int transB, const float *B, long ldb, long pc, long jc, long kc, long nc, int nr, float *dst) {
    if (!transB) {
        // B(k,j) = B[(pc+k)*ldb + jc+j]: the full panels row by row, so B is read as one stream
        // (the weight gradients' x and h[t-1], T·B rows, mostly from memory) instead of a strip of
        // each row per panel, with the rows 8 ahead prefetched as in pack_a. The same layout.
        // C harness, two threads, alternated in one process (15–21 pairs): rnn256's dW pair
        // (256 × 256 × 5000) +2 to +5% GFLOP/s in six runs; other products −1.5 to +3%.
        // The ragged last panel (N = 256 is 5·48 + 16) in the same pass: its columns copied, the
        // rest of its rows zeroed once. Copies of a constant size, which the compiler inlines
        // (a variable-size memcpy is a libc call per 192 bytes).
        long nfull = nc / nr * nr, rest = nc - nfull;
        float *last = dst + nfull * kc;
        if (rest > 0) memset(last, 0, sizeof(float) * (size_t)(nr * kc));
        for (long k = 0; k < kc; k++) {
            const float *s = B + (pc + k) * ldb + jc;
            if (k + 8 < kc) {
                const char *ahead = (const char *)(s + 8 * ldb);
                for (long o = 0; o < nc * (long)sizeof(float); o += 64) __builtin_prefetch(ahead + o);
            }
            float *dk = dst + k * nr;
            if (nr == 48) for (long jr = 0; jr < nfull; jr += 48) memcpy(dk + jr * kc, s + jr, 48 * sizeof(float));
            else if (nr == 16) for (long jr = 0; jr < nfull; jr += 16) memcpy(dk + jr * kc, s + jr, 16 * sizeof(float));
            else for (long jr = 0; jr < nfull; jr += nr) memcpy(dk + jr * kc, s + jr, sizeof(float) * (size_t)nr);
            const float *sr = s + nfull;
            float *lk = last + k * nr;
            long j = 0;
            for (; j + 16 <= rest; j += 16) memcpy(lk + j, sr + j, 16 * sizeof(float));
            for (; j < rest; j++) lk[j] = sr[j];
        }
        return;
    }
    for (long jr = 0; jr < nc; jr += nr) {
        long n = nc - jr < nr ? nc - jr : nr;
        float *d = dst + jr * kc;
        // Transposed: B(k,j) = B[(jc+j)*ldb + pc+k], contiguous in k
        if (n < nr) memset(d, 0, sizeof(float) * (size_t)(nr * kc));
        long j0 = 0, k8 = t8 ? kc / 8 * 8 : 0;
        if (k8 > 0) {
            for (; j0 + 8 <= n; j0 += 8) {
                const float *s = B + (jc + jr + j0) * ldb + pc;
                t8(s, ldb, k8, d + j0, nr);
                for (long j = j0; j < j0 + 8; j++)
                    for (long k = k8; k < kc; k++) d[k * nr + j] = s[(j - j0) * ldb + k];
            }
        }
        for (long j = j0; j < n; j++) {
            const float *s = B + (jc + jr + j) * ldb + pc;
            for (long k = 0; k < kc; k++) d[k * nr + j] = s[k];
        }
    }
}

// ---------------------------------------------------------------- serial driver

/// Products with at most this many rows read a non-transposed B in place (see sgemm_serial_n).
/// 128 until 2026-11-30; at 768 the weight gradients of the small models (K-split slices run
/// here: rnn256's dW pair M 256, lstm128's M 512, gru256's M 768, K = T·B) skip packing their
/// x and h[t-1] rows. Whole training steps, release binaries alternated (10–12 pairs) under
/// bench/side_by_side.sh's allocator settings (huge pages): rnn256 ×1.016 and ×1.017, gru256
/// ×1.003 and ×1.000, lstm128 ×1.005; without those settings rnn256 ×1.001. C harness, two
/// threads, 256 × 256 × 5000ᵀ 2.25 → 2.20 ms, 768 × 256 × 5000ᵀ 6.52 → 6.22 ms; other shapes
/// with M 256–768 within the host's noise.
#ifndef RC_DIRECT_B_MAX_M
#define RC_DIRECT_B_MAX_M 768
#endif

static long balanced(long total, long nominal, long unit) {
    long blocks = (total + nominal - 1) / nominal;
    long size = (total + blocks - 1) / blocks;
    return (size + unit - 1) / unit * unit;
}

/// One right operand of a product and its output: op(B) K x N, C M x N (see rc_sgemm_pair).
typedef struct { const float *B; long ldb; float *C; long ldc; } rhs_t;

/// Column groups: op(B) is packed for several NC-wide blocks at once (up to RC_GROUP_MAX_FLOATS
/// floats per operand, more than L2 holds: each block is read from L3 and kept in L2 while one
/// packed block of A runs over it), so a product with N > NC packs op(A) once per K block instead
/// of once per NC block, and a row split has two hand-offs per K block instead of two per (NC, KC)
/// block. Inside a group the loops still run block by block, and each C element's sum is the same
/// chain over the same K blocks: the same bits as one block at a time.
#ifndef RC_GROUP_MAX_FLOATS
#define RC_GROUP_MAX_FLOATS (1L << 20)
#endif
static _Atomic int g_group_blocks = 0;   // test hook: NC blocks per group (0: as many as fit)

int rc_set_column_group_blocks(int blocks) { return atomic_exchange(&g_group_blocks, blocks < 0 ? 0 : blocks); }

static long column_group(long N, long KC, long NC) {
    long blocks = (N + NC - 1) / NC, fit = g_group_blocks;
    if (fit == 0) fit = RC_GROUP_MAX_FLOATS / (KC * NC);
    if (fit < 1) fit = 1;
    return (fit < blocks ? fit : blocks) * NC;
}

/// The serial driver over nb (1 or 2) right operands of the same shape: each (KC, MC) block of
/// op(A) is packed once and multiplied by every operand's packed column group, one NC block at a
/// time (the operands' blocks, nb · KC · NC floats, stay in L2 together). Each C element's sum is
/// the same as with one operand.
static void sgemm_serial_n(const rc_isa_desc *d, int transA, int transB, long M, long N, long K,
                           float alpha, const float *A, long lda, int nb, const rhs_t *rhs, float beta) {
    const int mr = d->mr, nr = d->nr;
    // Balanced blocks: split each dimension into the fewest blocks of at most the nominal size,
    // then make them equal (rounded up to the register tile), e.g. K=300 -> 2 x 150, not 256 + 44.
    long KC = balanced(K, d->kc, 1), MC = balanced(M, d->mc, mr), NC = balanced(N, d->nc, nr);
    long NG = column_group(N, KC, NC);
    float *bufB = buf_get(&tl_bufB, (size_t)(nb * KC * NG));
    float *bufA = buf_get(&tl_bufA, (size_t)(KC * MC));
    if (!bufA || !bufB) { // out of memory: fall back to the reference
        for (int o = 0; o < nb; o++)
            rc_sgemm_reference(transA, transB, M, N, K, alpha, A, lda, rhs[o].B, rhs[o].ldb, beta, rhs[o].C, rhs[o].ldc);
        return;
    }
    // With few rows, each B panel is used by only a few micro-tiles, so copying B costs more than
    // it saves: a non-transposed B is then read in place (full NR-wide panels; only the ragged
    // last panel is packed, so the kernel never reads past column N). Same arithmetic either way.
    const int direct = !transB && M <= RC_DIRECT_B_MAX_M;
    for (long jg = 0; jg < N; jg += NG) {
        long ng = N - jg < NG ? N - jg : NG;
        long nfull = ng / nr * nr;
        for (long pc = 0; pc < K; pc += KC) {
            long kc = K - pc < KC ? K - pc : KC;
            float b_eff = pc == 0 ? beta : 1.0f;
            for (int o = 0; o < nb; o++) {
                float *bp = bufB + o * KC * NG;
                if (!direct) pack_b(d->transpose8, transB, rhs[o].B, rhs[o].ldb, pc, jg, kc, ng, nr, bp);
                else if (nfull < ng) pack_b(d->transpose8, transB, rhs[o].B, rhs[o].ldb, pc, jg + nfull, kc, ng - nfull, nr, bp);
            }
            for (long ic = 0; ic < M; ic += MC) {
                long mc = M - ic < MC ? M - ic : MC;
                pack_a(d->transpose8, transA, A, lda, ic, pc, mc, kc, mr, bufA);
                for (long jb = 0; jb < ng; jb += NC) {
                    long je = ng - jb < NC ? ng : jb + NC;
                    for (long ir = 0; ir < mc; ir += mr) {
                        long m = mc - ir < mr ? mc - ir : mr;
                        const float *ap = bufA + ir * kc;
                        for (int o = 0; o < nb; o++) {
                            const float *bp = bufB + o * KC * NG, *B = rhs[o].B;
                            long ldb = rhs[o].ldb, ldc = rhs[o].ldc;
                            float *crow = rhs[o].C + (ic + ir) * ldc + jg;
                            for (long jr = jb; jr < je; jr += nr) {
                                long n = ng - jr < nr ? ng - jr : nr;
                                rc_ukernel_fn kernel = rc_tile_kernel(d, m, n);
                                if (!direct) kernel(kc, ap, bp + jr * kc, nr, crow + jr, ldc, m, n, alpha, b_eff);
                                else if (n == nr) kernel(kc, ap, B + pc * ldb + jg + jr, ldb, crow + jr, ldc, m, n, alpha, b_eff);
                                else kernel(kc, ap, bp, nr, crow + jr, ldc, m, n, alpha, b_eff);
                            }
                        }
                    }
                }
            }
        }
    }
}

void rc_sgemm_serial(const rc_isa_desc *d, int transA, int transB, long M, long N, long K,
                     float alpha, const float *A, long lda, const float *B, long ldb,
                     float beta, float *C, long ldc) {
    rhs_t rhs = { B, ldb, C, ldc };
    sgemm_serial_n(d, transA, transB, M, N, K, alpha, A, lda, 1, &rhs, beta);
}

// ---------------------------------------------------------------- threading and entry points

static _Atomic int g_threads = 0;   // 0 = not yet initialised

int rc_get_threads(void) {
    int t = g_threads;
    if (t == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 1) n = 1;
        if (n > 64) n = 64;
        int expected = 0;
        atomic_compare_exchange_strong(&g_threads, &expected, (int)n);
        t = g_threads;
    }
    return t;
}

void rc_set_threads(int n) {
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    g_threads = n;
}

/// Products with fewer multiply-adds than this run on the calling thread only.
#define RC_PARALLEL_MIN_FLOPS 2097152L  // M*N*K (~30 us serial); see README for the measurements

typedef struct {
    const rc_isa_desc *d;
    int transA, transB, splitN, nparts;
    long M, N, K, lda, ldb, ldc, unit, units;
    float alpha, beta;
    const float *A, *B;
    float *C;
} job_t;

static void job_part(void *arg, int part) {
    const job_t *j = (const job_t *)arg;
    long u0 = j->units * part / j->nparts, u1 = j->units * (part + 1) / j->nparts;
    long lo = u0 * j->unit, hi = u1 * j->unit;
    long total = j->splitN ? j->N : j->M;
    if (hi > total) hi = total;
    if (lo >= hi) return;
    if (j->splitN) {
        const float *B = j->transB ? j->B + lo * j->ldb : j->B + lo;
        rc_sgemm_serial(j->d, j->transA, j->transB, j->M, hi - lo, j->K, j->alpha, j->A, j->lda,
                        B, j->ldb, j->beta, j->C + lo, j->ldc);
    } else {
        const float *A = j->transA ? j->A + lo : j->A + lo * j->lda;
        rc_sgemm_serial(j->d, j->transA, j->transB, hi - lo, j->N, j->K, j->alpha, A, j->lda,
                        j->B, j->ldb, j->beta, j->C + lo * j->ldc, j->ldc);
    }
}

// K-split products. When K is long against small M and N (the weight gradients dPreᵀ·x over all
// T·B rows of the small models, the head's), the product is cut into S slices of K instead of rows
// (S from the shape alone, never from the thread count): slice 0 accumulates into C with beta,
// slice s > 0 into its own buffer, then C += buffer 1, 2, … in order. Each thread then packs only
// its slice of both operands, with one hand-off for the whole product (a row split synchronises
// once per K block, and has few row tiles to share here). Same result for any thread count.
#define RC_KSPLIT_MAX_FLOATS (1L << 18)   // (S-1)·M·N floats of buffers at most (1 MB); larger: row split

static int ksplit_slices(long M, long N, long K) {
    long big = M > N ? M : N;
    if ((double)M * (double)N * (double)K < (double)RC_PARALLEL_MIN_FLOPS * 4) return 1;
    long s = K / big;
    if (s > 4) s = 4;
    while (s > 1 && (s - 1) * M * N > RC_KSPLIT_MAX_FLOATS) s--;
    // 1, 2 or 4 slices: with 3, one of two threads (the common count) runs two slices while the
    // other waits. 512 × 256 × 5000ᵀ (GRU H 256's r and z rows), two threads: 5.80 and 5.85 ms
    // with 3 slices, 4.72 and 4.23 ms with 2 (C harness).
    if (s == 3) s = 2;
    return s < 2 ? 1 : (int)s;
}

typedef struct {
    const rc_isa_desc *d;
    int transA, transB, slices, nb;
    long M, N, K, lda;
    float alpha, beta;
    const float *A;
    const rhs_t *rhs;
    float *tmp;
} kjob_t;

static void kjob_part(void *arg, int part) {
    const kjob_t *j = (const kjob_t *)arg;
    long k0 = j->K * part / j->slices, k1 = j->K * (part + 1) / j->slices;
    const float *A = j->transA ? j->A + k0 * j->lda : j->A + k0;
    rhs_t slice[2];
    for (int o = 0; o < j->nb; o++) {
        const rhs_t *r = &j->rhs[o];
        slice[o].B = j->transB ? r->B + k0 : r->B + k0 * r->ldb;
        slice[o].ldb = r->ldb;
        // Slice 0 accumulates into C with beta; slice p > 0 into its own buffer.
        slice[o].C = part == 0 ? r->C : j->tmp + ((part - 1) * j->nb + o) * j->M * j->N;
        slice[o].ldc = part == 0 ? r->ldc : j->N;
    }
    sgemm_serial_n(j->d, j->transA, j->transB, j->M, j->N, k1 - k0, j->alpha, A, j->lda, j->nb, slice,
                   part == 0 ? j->beta : 0.0f);
}

typedef struct {
    const kjob_t *j;
    int bands;
} kreduce_t;

/// Band `band` of the rows of C: adds slices 1… of each operand's partial sums, in slice order.
static void kjob_reduce(void *arg, int band) {
    const kreduce_t *r = (const kreduce_t *)arg;
    const kjob_t *j = r->j;
    long i0 = j->M * band / r->bands, i1 = j->M * (band + 1) / r->bands;
    for (int o = 0; o < j->nb; o++)
        for (int p = 1; p < j->slices; p++) {
            const float *t = j->tmp + ((p - 1) * j->nb + o) * j->M * j->N;
            for (long i = i0; i < i1; i++) {
                float *c = j->rhs[o].C + i * j->rhs[o].ldc;
                const float *u = t + i * j->N;
                for (long jj = 0; jj < j->N; jj++) c[jj] += u[jj];
            }
        }
}

/// Runs a K-split product (see above) for nb right operands; returns 0 if the buffers cannot be had.
static int sgemm_ksplit(const rc_isa_desc *d, int nthreads, int slices, int transA, int transB, long M, long N, long K,
                        float alpha, const float *A, long lda, int nb, const rhs_t *rhs, float beta) {
    float *tmp = buf_get(&tl_bufK, (size_t)((slices - 1) * nb * M * N));
    if (!tmp) return 0;
    kjob_t j = { d, transA, transB, slices, nb, M, N, K, lda, alpha, beta, A, rhs, tmp };
    if (nthreads < 2 || !rc_pool_run(slices, nthreads, kjob_part, &j))
        for (int p = 0; p < slices; p++) kjob_part(&j, p);
    // The slices' partial sums added into C, in slice order, by row bands across the threads
    // (each element's additions are the same whoever makes them).
    int bands = nthreads < 2 || M * N * nb < (1L << 15) ? 1 : nthreads;
    if (bands > M) bands = (int)M;
    if (bands < 2 || !rc_pool_run(bands, bands, kjob_reduce, &(kreduce_t){ &j, bands }))
        kjob_reduce(&(kreduce_t){ &j, 1 }, 0);
    return 1;
}

// Row-split products with a shared, blocked B. For each (column group, KC depth) block of op(B),
// the threads first pack it together into one shared buffer, then compute their chunks of rows
// against it (each packing only its own rows of A, or reading them in place: see
// RC_BIG_DIRECT_A_MAX_N). Nothing is packed twice, the buffer is one group (KC x NG, see
// column_group) per right operand (two for rc_sgemm_pair, both multiplied by each block of A), and
// the loop nest and K blocking are those of rc_sgemm_serial, so the sums are the same for any
// thread count.
typedef struct {
    const rc_isa_desc *d;
    int transA, transB, groups, chunks, nb;
    long M, N, K, lda, munits, bstride;
    long jc, nc, pc, kc, NC;    // the column group [jc, jc + nc), run NC columns at a time
    float alpha, beta;
    const float *A;
    const rhs_t *rhs;
    float *Bp;    // operand o's packed block at Bp + o·bstride
    const long *bounds;   // chunk c: row tiles [bounds[c], bounds[c + 1])
} sjob_t;

static void sjob_pack(void *arg, int g) {
    const sjob_t *j = (const sjob_t *)arg;
    int o = g / j->groups;
    g %= j->groups;
    long panels = (j->nc + j->d->nr - 1) / j->d->nr;
    long p0 = panels * g / j->groups, p1 = panels * (g + 1) / j->groups;
    if (p0 >= p1) return;
    long c0 = p0 * j->d->nr, c1 = p1 * j->d->nr < j->nc ? p1 * j->d->nr : j->nc;
    pack_b(j->d->transpose8, j->transB, j->rhs[o].B, j->rhs[o].ldb, j->pc, j->jc + c0, j->kc, c1 - c0, j->d->nr,
           j->Bp + o * j->bstride + c0 * j->kc);
}

/// Row-split products with at most this many columns (and K blocks of at least 128) read a
/// non-transposed A in place, with the per-step products' tiles (rc_isa_desc.direct), instead of
/// packing it: each row tile of A then serves at most 6 B panels, and packing it (8 × 8
/// transposes of rows read from L3) cost more than the strided reads. C harness, two threads, the
/// two alternated in one process (30 pairs, median of the per-pair ratios): 5000 × 256 × 256
/// ×1.031 (x·W_ihᵀ) and ×1.036 (dPre·W_ih), the head's 5000 × 65 × 256 ×1.18, 2500 × 65 × 128
/// ×1.15, 6400 × 65 × 512 ×1.20, lstm128's dx 2500 × 128 × 512 ×1.11, 5000 × 256 × 1024 ×1.04,
/// 5000 × 256 × 512 ×1.04; with K 65 (the head's dx) ×0.95–0.96, hence the K bound. The same FMA
/// chains: the same bits.
#ifndef RC_BIG_DIRECT_A_MAX_N
#define RC_BIG_DIRECT_A_MAX_N 256
#endif

static void sjob_compute(void *arg, int part) {
    const sjob_t *j = (const sjob_t *)arg;
    const rc_isa_desc *d = j->d;
    const int mr = d->mr, nr = d->nr;
    long lo = j->bounds[part] * mr, hi = j->bounds[part + 1] * mr;
    if (hi > j->M) hi = j->M;
    if (lo >= hi) return;
    long MC = balanced(j->M, d->mc, mr);
    float *bufA = buf_get(&tl_bufA, (size_t)(j->kc * MC));
    float b_eff = j->pc == 0 ? j->beta : 1.0f;
    for (long ic = lo; ic < hi; ic += MC) {
        long mc = hi - ic < MC ? hi - ic : MC;
        if (!bufA) {   // out of memory: the reference loop over this block
            for (int o = 0; o < j->nb; o++)
                for (long i = ic; i < ic + mc; i++)
                    for (long jj = 0; jj < j->nc; jj++) {
                        const float *panel = j->Bp + o * j->bstride + (jj / nr) * nr * j->kc;
                        float acc = 0;
                        for (long k = 0; k < j->kc; k++) acc += at(j->A, j->lda, j->transA, i, j->pc + k) * panel[k * nr + jj % nr];
                        float *c = j->rhs[o].C + i * j->rhs[o].ldc + j->jc + jj;
                        *c = j->alpha * acc + (b_eff == 0.0f ? 0.0f : b_eff * *c);
                    }
            continue;
        }
        const int inPlace = !j->transA && d->direct && j->N <= RC_BIG_DIRECT_A_MAX_N && j->kc >= 128;
        if (!inPlace) pack_a(d->transpose8, j->transA, j->A, j->lda, ic, j->pc, mc, j->kc, mr, bufA);
        for (long jb = 0; jb < j->nc; jb += j->NC) {
            long je = j->nc - jb < j->NC ? j->nc : jb + j->NC;
            for (long ir = 0; ir < mc; ir += mr) {
                long m = mc - ir < mr ? mc - ir : mr;
                const float *ap = bufA + ir * j->kc, *arow = j->A + (ic + ir) * j->lda + j->pc;
                for (int o = 0; o < j->nb; o++) {
                    long ldc = j->rhs[o].ldc;
                    float *crow = j->rhs[o].C + (ic + ir) * ldc + j->jc;
                    const float *bp = j->Bp + o * j->bstride;
                    for (long jr = jb; jr < je; jr += nr) {
                        long n = j->nc - jr < nr ? j->nc - jr : nr;
                        if (inPlace)
                            rc_direct_kernel(d, m, n)(j->kc, arow, j->lda, bp + jr * j->kc, nr, crow + jr, ldc, m, n, j->alpha, b_eff);
                        else
                            rc_tile_kernel(d, m, n)(j->kc, ap, bp + jr * j->kc, nr, crow + jr, ldc, m, n, j->alpha, b_eff);
                    }
                }
            }
        }
    }
}

#define RC_MAX_CHUNKS 64
/// Cuts `units` row tiles into chunks for `nthreads` threads; returns the number of chunks. With
/// one chunk per thread, equal parts. With more (big products), guided sizes: each chunk half of
/// an equal share of what is left (at least 1/128 of a thread's share), so the chunks claimed last
/// are small and a thread that falls behind (a busy host) leaves the other little to wait for at
/// the end of each K block. In-process A/B against equal chunks (two threads, 20–40 pairs, three
/// runs): 2048³ −2.4%, +1.2%, −1.0%; 6400×2048×512 −6.8%, −2.4%, −1.4%; 6400×512×2048 +0.7%,
/// −7.3%, −2.0%. The least chunk was 1/16 of a share until 2026-11-30: 19 row tiles of a
/// 5000 × 256 × 256 product, ~130 µs, half of which the other thread waited on average. C harness,
/// two threads, the two alternated in one process (40 pairs, median of the per-pair ratios),
/// speed-up of 1/128 over 1/16: 5000 × 256 × 256 ×1.017 (x·W_ihᵀ) and ×1.021 (dPre·W_ih),
/// 5000 × 65 × 256 ×1.018, 5000 × 256 × 65 ×1.017, 5000 × 768 × 256 ×1.026, 6400 × 2048 × 512
/// ×1.027; 1/64 gave ×1.009–1.020, 1/256 ×1.008–1.021.
static int chunk_bounds(long units, int nthreads, int chunks, long *bounds) {
    int c = 0;
    bounds[0] = 0;
    if (chunks <= nthreads) {
        if (chunks > RC_MAX_CHUNKS) chunks = RC_MAX_CHUNKS;
        for (c = 1; c <= chunks; c++) bounds[c] = units * c / chunks;
        return chunks;
    }
    long u = 0, least = units / (128L * nthreads);
    if (least < 1) least = 1;
    while (u < units) {
        long r = units - u, size = (r + 2L * nthreads - 1) / (2L * nthreads);
        if (size < least) size = least;
        if (size > r || c == RC_MAX_CHUNKS - 1) size = r;
        u += size;
        bounds[++c] = u;
    }
    return c;
}

/// Returns 0 (having done nothing) if the shared buffer cannot be had.
static int sgemm_shared_b(const rc_isa_desc *d, int nthreads, int chunks, int transA, int transB, long M, long N, long K,
                          float alpha, const float *A, long lda, int nb, const rhs_t *rhs, float beta) {
    long KC = balanced(K, d->kc, 1), NC = balanced(N, d->nc, d->nr), NG = column_group(N, KC, NC);
    long bstride = KC * ((NG + d->nr - 1) / d->nr * d->nr);
    float *Bp = buf_get(&tl_bufP, (size_t)(nb * bstride));
    if (!Bp) return 0;
    long munits = (M + d->mr - 1) / d->mr, bounds[RC_MAX_CHUNKS + 1];
    chunks = chunk_bounds(munits, nthreads, chunks, bounds);
    sjob_t j = { d, transA, transB, 0, chunks, nb, M, N, K, lda, munits, bstride,
                 0, 0, 0, 0, NC, alpha, beta, A, rhs, Bp, bounds };
    for (long jc = 0; jc < N; jc += NG) {
        j.jc = jc;
        j.nc = N - jc < NG ? N - jc : NG;
        long panels = (j.nc + d->nr - 1) / d->nr;
        j.groups = (int)(panels < nthreads ? panels : nthreads);
        for (long pc = 0; pc < K; pc += KC) {
            j.pc = pc;
            j.kc = K - pc < KC ? K - pc : KC;
            int packs = j.groups * nb;
            if (packs < 2 || !rc_pool_run(packs, nthreads, sjob_pack, &j))
                for (int g = 0; g < packs; g++) sjob_pack(&j, g);
            if (!rc_pool_run(chunks, nthreads, sjob_compute, &j))
                for (int c = 0; c < chunks; c++) sjob_compute(&j, c);
        }
    }
    return 1;
}

static void scale_c(long M, long N, float beta, float *C, long ldc) {
    for (long i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) memset(c, 0, sizeof(float) * (size_t)N);
        else if (beta != 1.0f) for (long j = 0; j < N; j++) c[j] *= beta;
    }
}

/// Whether two right operands' packed blocks (2 · KC · NC floats) take at most 1 MB, half of L2:
/// only then does rc_sgemm_pair share the packed A; else it runs two products. With a quarter of
/// L2 (2¹⁷ floats) the pair measured 4–5% faster than two products on lstm128's dW (M 512 × N 128
/// × K 2500, two threads), and with half also 1.8% on rnn256's (256 × 256 × 5000) and 0.3–3.4% on
/// lstm256's (1024 × 256 × 5000); C harness, alternating, 20–60 pairs, three runs each.
#ifndef RC_PAIR_MAX_FLOATS
#define RC_PAIR_MAX_FLOATS (1L << 18)
#endif
static int pair_fits(const rc_isa_desc *d, long N, long K) {
    return 2 * balanced(K, d->kc, 1) * balanced(N, d->nc, d->nr) <= RC_PAIR_MAX_FLOATS;
}

static void sgemm_with_n(const rc_isa_desc *d, int nthreads, int transA, int transB, long M, long N, long K,
                         float alpha, const float *A, long lda, int nb, const rhs_t *rhs, float beta) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { for (int o = 0; o < nb; o++) scale_c(M, N, beta, rhs[o].C, rhs[o].ldc); return; }
    if (nb > 1 && !pair_fits(d, N, K)) {
        for (int o = 0; o < nb; o++) sgemm_with_n(d, nthreads, transA, transB, M, N, K, alpha, A, lda, 1, rhs + o, beta);
        return;
    }
    int slices = ksplit_slices(M, N, K);
    if (slices > 1 && sgemm_ksplit(d, nthreads, slices, transA, transB, M, N, K, alpha, A, lda, nb, rhs, beta)) return;
    int chunks = 1, splitN = 0;
    long unit = 0, units = 0;
    if (nthreads > 1 && (double)M * (double)N * (double)K >= (double)RC_PARALLEL_MIN_FLOPS) {
        long nunits = (N + d->nr - 1) / d->nr, munits = (M + d->mr - 1) / d->mr;
        // Rows are split with a shared packed B (nothing packed twice); columns only when there
        // are too few row tiles, and then each chunk packs all of A.
        splitN = munits < 2L * nthreads && nunits >= nthreads;
        if (splitN) { unit = d->nr; units = nunits; }
        else { unit = d->mr; units = munits; }
        // Big products get a few chunks per thread (guided sizes, see chunk_bounds), claimed
        // dynamically, so a thread that is descheduled (busy machine) or slower holds up only a
        // small piece of the work.
        long want = (double)M * (double)N * (double)K >= 67108864.0 ? 4L * nthreads : nthreads;
        chunks = (int)(want < units ? want : units);
        // Row splits share one packed block of op(B) (see sgemm_shared_b) instead of each chunk
        // packing all of it.
        if (!splitN && chunks > 1 &&
            sgemm_shared_b(d, nthreads, chunks, transA, transB, M, N, K, alpha, A, lda, nb, rhs, beta)) return;
    }
    if (chunks <= 1) { sgemm_serial_n(d, transA, transB, M, N, K, alpha, A, lda, nb, rhs, beta); return; }
    for (int o = 0; o < nb; o++) {
        job_t j = { d, transA, transB, splitN, chunks, M, N, K, lda, rhs[o].ldb, rhs[o].ldc, unit, units, alpha, beta,
                    A, rhs[o].B, rhs[o].C };
        if (!rc_pool_run(chunks, nthreads, job_part, &j))
            rc_sgemm_serial(d, transA, transB, M, N, K, alpha, A, lda, rhs[o].B, rhs[o].ldb, beta, rhs[o].C, rhs[o].ldc);
    }
}

static void sgemm_with(const rc_isa_desc *d, int nthreads, int transA, int transB, long M, long N, long K,
                       float alpha, const float *A, long lda, const float *B, long ldb,
                       float beta, float *C, long ldc) {
    rhs_t rhs = { B, ldb, C, ldc };
    sgemm_with_n(d, nthreads, transA, transB, M, N, K, alpha, A, lda, 1, &rhs, beta);
}

void rc_sgemm(int transA, int transB, long M, long N, long K, float alpha,
              const float *A, long lda, const float *B, long ldb,
              float beta, float *C, long ldc) {
    sgemm_with(rc_current_desc(), rc_get_threads(), transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void rc_sgemm_single(int transA, int transB, long M, long N, long K, float alpha,
                     const float *A, long lda, const float *B, long ldb,
                     float beta, float *C, long ldc) {
    sgemm_with(rc_current_desc(), 1, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void rc_parallel_for(int n, void (*fn)(void *ctx, int i), void *ctx) {
    if (n <= 0) return;
    int threads = rc_get_threads();
    if (n > 1 && threads > 1 && rc_pool_run(n, threads, fn, ctx)) return;
    for (int i = 0; i < n; i++) fn(ctx, i);
}

/// The kernels of a named ISA path, or NULL if the name is unknown or the CPU lacks it (test hooks).
static const rc_isa_desc *desc_named(const char *isa) {
    pthread_once(&g_isa_once, isa_init);
    int i = isa_from_name(isa);
    return i < 0 || i > g_detected ? NULL : rc_desc_for(i);
}

int rc_sgemm_isa(const char *isa, int threads, int transA, int transB, long M, long N, long K, float alpha,
                 const float *A, long lda, const float *B, long ldb,
                 float beta, float *C, long ldc) {
    const rc_isa_desc *d = desc_named(isa);
    if (!d) return -1;
    sgemm_with(d, threads < 1 ? 1 : threads, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return 0;
}

void rc_sgemm_pair(int transA, int transB, long M, long N, long K, float alpha, const float *A, long lda,
                   const float *B1, long ldb1, const float *B2, long ldb2, float beta,
                   float *C1, long ldc1, float *C2, long ldc2) {
    rhs_t rhs[2] = { { B1, ldb1, C1, ldc1 }, { B2, ldb2, C2, ldc2 } };
    sgemm_with_n(rc_current_desc(), rc_get_threads(), transA, transB, M, N, K, alpha, A, lda, 2, rhs, beta);
}

int rc_sgemm_pair_isa(const char *isa, int threads, int transA, int transB, long M, long N, long K, float alpha,
                      const float *A, long lda, const float *B1, long ldb1, const float *B2, long ldb2, float beta,
                      float *C1, long ldc1, float *C2, long ldc2) {
    const rc_isa_desc *d = desc_named(isa);
    if (!d) return -1;
    rhs_t rhs[2] = { { B1, ldb1, C1, ldc1 }, { B2, ldb2, C2, ldc2 } };
    sgemm_with_n(d, threads < 1 ? 1 : threads, transA, transB, M, N, K, alpha, A, lda, 2, rhs, beta);
    return 0;
}

void rc_sigmoid(float *x, long n) { if (n > 0) rc_current_desc()->sigmoid(x, n); }
void rc_tanh(float *x, long n) { if (n > 0) rc_current_desc()->tanh(x, n); }

// ---------------------------------------------------------------- products with a pre-packed B

/// Row stride of the compact copy of the ragged last panel that rc_pack_b_all appends to its
/// layout when K takes more than one K block (see rc_sgemm_packed_single): the panel's columns
/// rounded up to 16; nr (no copy) when N has no ragged panel, it needs all nr columns, or K fits
/// one block.
static long edge_stride(const rc_isa_desc *d, long K, long N) {
    long nr = d->nr, w = (N % nr + 15) / 16 * 16;
    return w == 0 || w >= nr || K <= d->kc ? nr : w;
}

/// Floats needed by rc_pack_b_all for a K x N operand: NR-wide panels over N rounded up to NR,
/// then the compact copy of the ragged last panel (K rows of edge_stride floats) if there is one.
long rc_packed_b_floats(long K, long N) {
    const rc_isa_desc *d = rc_current_desc();
    long w = edge_stride(d, K, N);
    return (N + d->nr - 1) / d->nr * d->nr * K + (w < d->nr ? w * K : 0);
}

typedef struct {
    const rc_isa_desc *d;
    int transB, parts;
    long K, N, ldb;
    const float *B;
    float *dst;
} packall_t;

/// Part `part` of rc_pack_b_all: its share of the NR-wide panels, in every KC block. Panels are
/// copies, so the split does not change the packed floats.
static void packall_part(void *arg, int part) {
    const packall_t *j = (const packall_t *)arg;
    const rc_isa_desc *d = j->d;
    long panels = (j->N + d->nr - 1) / d->nr;
    long p0 = panels * part / j->parts, p1 = panels * (part + 1) / j->parts;
    if (p1 <= p0) return;
    long npad = panels * d->nr, KC = balanced(j->K, d->kc, 1);
    long j0 = p0 * d->nr, j1 = p1 * d->nr < j->N ? p1 * d->nr : j->N;
    long nr = d->nr, w = edge_stride(d, j->K, j->N);
    for (long pc = 0; pc < j->K; pc += KC) {
        long kc = j->K - pc < KC ? j->K - pc : KC;
        pack_b(d->transpose8, j->transB, j->B, j->ldb, pc, j0, kc, j1 - j0, d->nr, j->dst + pc * npad + j0 * kc);
        if (w < nr && j1 == j->N) {   // the ragged last panel again, its rows w apart (after the layout)
            const float *last = j->dst + pc * npad + j->N / nr * nr * kc;
            float *compact = j->dst + j->K * npad + pc * w;
            for (long k = 0; k < kc; k++) memcpy(compact + k * w, last + k * nr, sizeof(float) * (size_t)w);
        }
    }
}

/// Packs op(B) (K x N) once, for every later rc_sgemm_packed_single with the same K and N: for
/// each KC block of rows (the blocking rc_sgemm uses), all NR-wide panels over N.
void rc_pack_b_all(int transB, long K, long N, const float *B, long ldb, float *dst) {
    const rc_isa_desc *d = rc_current_desc();
    // Split across the pool's threads when big enough (W_hh of H 128 is 64K floats): this runs
    // before each time loop, while the other threads would wait.
    long panels = (N + d->nr - 1) / d->nr;
    int threads = rc_get_threads();
    int parts = K * N >= (1L << 15) && panels >= 2 ? (threads < panels ? threads : (int)panels) : 1;
    packall_t j = { d, transB, parts, K, N, ldb, B, dst };
    if (parts < 2 || !rc_pool_run(parts, parts, packall_part, &j)) {
        j.parts = 1;
        packall_part(&j, 0);
    }
}

/// Lines of a caller's range still to prefetch, handed out a few per tile (rc_sgemm_packed_prefetch).
typedef struct { const char *p; long bytes, off, quota; } prefetch_cursor;

static inline void prefetch_some(prefetch_cursor *pf) {
    if (!pf) return;
    for (long q = pf->quota; q > 0 && pf->off < pf->bytes; q--, pf->off += 64) __builtin_prefetch(pf->p + pf->off, 0, 2);
}

static void packed_single(long M, long N, long K, const float *A, long lda, const float *Bp, float beta, float *C,
                          long ldc, prefetch_cursor *pf);

/// The B panel of columns [jr, jr + n) in K block pc (kc deep) of rc_pack_b_all's layout, and its
/// row stride: the ragged last panel from its compact copy when there is one (edge_stride w < nr;
/// rows 16 or 32 floats apart instead of nr: GRU's backward per-step product, 25 x 256 x 768,
/// 62.3–63.3 → 60.6–61.4 µs, C harness, three alternations; with one block, rnn256's
/// 25 x 256 x 256, no gain, so no copy), else the panel in place. The same arithmetic either way.
static inline const float *packed_panel(const float *Bp, long K, long npad, long pc, long kc, long jr, long n,
                                        long nr, long w, long *bs) {
    int compact = n < nr && w < nr;
    *bs = compact ? w : nr;
    return compact ? Bp + K * npad + pc * w : Bp + pc * npad + jr * kc;
}

/// C[M x N] = A[M x K] · B + beta · C on the calling thread, B packed by rc_pack_b_all (with the
/// same ISA path). Every B panel is read contiguously and reused by all row tiles of A before
/// the next; the sums are those of rc_sgemm_single (same K blocking), so results are identical.
/// On an ISA path with in-place tiles (rc_isa_desc.direct) and N ≤ RC_DIRECT_A_MAX_N, A's rows are
/// read where they are instead of being packed first.
void rc_sgemm_packed_single(long M, long N, long K, const float *A, long lda, const float *Bp,
                            float beta, float *C, long ldc) {
    packed_single(M, N, K, A, lda, Bp, beta, C, ldc, NULL);
}

void rc_sgemm_packed_prefetch(long M, long N, long K, const float *A, long lda, const float *Bp, float beta, float *C,
                              long ldc, const void *ahead, long bytes) {
    if (!ahead || bytes <= 0 || M <= 0 || N <= 0 || K <= 0) { packed_single(M, N, K, A, lda, Bp, beta, C, ldc, NULL); return; }
    const rc_isa_desc *d = rc_current_desc();
    // About as many tile calls as (K blocks) x (B panels) x (row tiles): the lines spread over them.
    long KC = balanced(K, d->kc, 1);
    long tiles = ((K + KC - 1) / KC) * ((N + d->nr - 1) / d->nr) * ((M + d->mr - 1) / d->mr);
    long lines = (bytes + 63) / 64;
    prefetch_cursor pf = { (const char *)ahead, bytes, 0, (lines + tiles - 1) / tiles };
    packed_single(M, N, K, A, lda, Bp, beta, C, ldc, &pf);
}

/// Per-step products with at most this many columns read A in place when the ISA path has the
/// tiles for it (rc_isa_desc.direct): for wider products each A row tile is read once per B panel,
/// and more panels pay more for the strided rows than the packing saves.
#define RC_DIRECT_A_MAX_N 256

static void packed_single(long M, long N, long K, const float *A, long lda, const float *Bp, float beta, float *C,
                          long ldc, prefetch_cursor *pf) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { scale_c(M, N, beta, C, ldc); return; }
    const rc_isa_desc *d = rc_current_desc();
    const int mr = d->mr, nr = d->nr;
    long npad = (N + nr - 1) / nr * nr, KC = balanced(K, d->kc, 1), MC = balanced(M, d->mc, mr), w = edge_stride(d, K, N);
    float *bufA = buf_get(&tl_bufA, (size_t)(KC * MC));
    if (!bufA) { // out of memory: plain loops over the packed layout
        for (long i = 0; i < M; i++)
            for (long j = 0; j < N; j++) {
                float s = 0;
                for (long pc = 0; pc < K; pc += KC) {
                    long kc = K - pc < KC ? K - pc : KC;
                    const float *panel = Bp + pc * npad + (j / nr) * nr * kc;
                    for (long k = 0; k < kc; k++) s += A[i * lda + pc + k] * panel[k * nr + j % nr];
                }
                C[i * ldc + j] = s + (beta == 0.0f ? 0.0f : beta * C[i * ldc + j]);
            }
        return;
    }
    for (long pc = 0; pc < K; pc += KC) {
        long kc = K - pc < KC ? K - pc : KC;
        float b_eff = pc == 0 ? beta : 1.0f;
        const float *block = Bp + pc * npad;
        for (long ic = 0; ic < M; ic += MC) {
            long mc = M - ic < MC ? M - ic : MC;
            if (d->direct && N <= RC_DIRECT_A_MAX_N) {
                // A read in place (see rc_dkernel_fn): row tiles of 8, the last 9 or 18 rows as
                // 9-row tiles when 8n + 1 or 8n + 2, else a ragged tile of mc mod 8 rows.
                long ragged = mc % mr;
                long tall = ragged >= 1 && ragged <= 2 && mc >= 9 * ragged ? ragged : 0;
                long full = mc - ragged - 8 * tall;
                const float *a = A + ic * lda + pc;
                for (long jr = 0; jr < N; jr += nr) {
                    long n = N - jr < nr ? N - jr : nr, bs;
                    const float *bp = packed_panel(Bp, K, npad, pc, kc, jr, n, nr, w, &bs);
                    float *c = C + ic * ldc + jr;
                    long ir = 0;
                    for (; ir < full; ir += mr) {
                        prefetch_some(pf);
                        rc_direct_kernel(d, mr, n)(kc, a + ir * lda, lda, bp, bs, c + ir * ldc, ldc, mr, n, 1.0f, b_eff);
                    }
                    for (long t = 0; t < tall; t++, ir += 9) {
                        prefetch_some(pf);
                        rc_direct_kernel(d, 9, n)(kc, a + ir * lda, lda, bp, bs, c + ir * ldc, ldc, 9, n, 1.0f, b_eff);
                    }
                    if (!tall && ragged) {
                        prefetch_some(pf);
                        rc_direct_kernel(d, ragged, n)(kc, a + ir * lda, lda, bp, bs, c + ir * ldc, ldc, ragged, n, 1.0f, b_eff);
                    }
                }
                continue;
            }
            // 8n + 1 or 8n + 2 rows (a 25-row slice of B = 50): the last 9 or 18 rows run as 9-row
            // tiles (d->tall, A packed 9 wide), so no row streams the B panels alone: −1.4 to −3.6%
            // step time on rnn256, gru256, lstm256 and lstm128 (in-process A/B against the thin
            // tile, two runs of 20 pairs); 8–12% off a 25-row per-step product. Else a thin last
            // row tile (1 or 2 rows) goes over all panels at once (see rc_thin_fn). Same bits.
            long ragged = mc % mr;
            long tall = d->tall && ragged >= 1 && ragged <= 2 && mc >= 9 * ragged ? ragged : 0;
            long thin = !tall && d->thin && ragged != 0 && ragged <= 2 ? ragged : 0, mtiles = mc - thin - 9 * tall;
            pack_a(d->transpose8, 0, A, lda, ic, pc, mc - 9 * tall, kc, mr, bufA);   // thin rows: a last, partial panel
            if (tall) pack_a(d->transpose8, 0, A, lda, ic + mtiles, pc, 9 * tall, kc, 9, bufA + mtiles * kc);
            for (long jr = 0; jr < N; jr += nr) {
                long n = N - jr < nr ? N - jr : nr, bs;
                const float *bp = packed_panel(Bp, K, npad, pc, kc, jr, n, nr, w, &bs);
                for (long ir = 0; ir < mtiles; ir += mr) {
                    long m = mtiles - ir < mr ? mtiles - ir : mr;
                    prefetch_some(pf);
                    rc_tile_kernel(d, m, n)(kc, bufA + ir * kc, bp, bs, C + (ic + ir) * ldc + jr, ldc, m, n, 1.0f, b_eff);
                }
                for (long t = 0; t < tall; t++) {
                    prefetch_some(pf);
                    d->tall[(n + 15) / 16](kc, bufA + (mtiles + 9 * t) * kc, bp, bs, C + (ic + mtiles + 9 * t) * ldc + jr, ldc, 9, n, 1.0f, b_eff);
                }
            }
            if (thin) d->thin(kc, bufA + mtiles * kc, block, nr * kc, nr, C + (ic + mtiles) * ldc, ldc, thin, N, 1.0f, b_eff);
        }
    }
}
