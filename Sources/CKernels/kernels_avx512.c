// AVX-512 (F/VL/DQ + FMA) micro-kernel and activations. Compiled with per-function target
// attributes so the package needs no global compiler flags; only called when the CPU has them.
#include "internal.h"
#if defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512vl,avx512dq,fma")))
#ifndef MR512
#define MR512 8
#endif
#ifndef NV512
#define NV512 3                 // zmm vectors per tile row (8 x 48 tile: 24 accumulators)
#endif
#define NR512 (16 * NV512)
#ifndef KC512
#define KC512 384               // depth of a cache block (the packed A and B blocks)
#endif

/// The C tile is read only after the k loop (beta != 0), typically from L3 or memory: asking for
/// its rows (NR512 floats = 3 lines, 4 when not aligned) before the loop hides that latency behind
/// the multiply-adds. No effect on the arithmetic; +1–3% on the lstm512 products (in-process A/B).
T512 static inline void prefetch_c512(const float *c, long ldc, int rows) {
    for (int i = 0; i < rows; i++) {
        const char *ci = (const char *)(c + i * ldc);
        _mm_prefetch(ci, _MM_HINT_T0);
        _mm_prefetch(ci + 64, _MM_HINT_T0);
        _mm_prefetch(ci + 128, _MM_HINT_T0);
        _mm_prefetch(ci + 4 * NR512 - 1, _MM_HINT_T0);
    }
}

T512 static void kernel_avx512(long kc, const float *a, const float *b, long bs, float *c, long ldc,
                               long m, long n, float alpha, float beta) {
    if (beta != 0.0f) prefetch_c512(c, ldc, MR512);
    __m512 acc[MR512][NV512];
#pragma clang loop unroll(full)
    for (int i = 0; i < MR512; i++)
#pragma clang loop unroll(full)
        for (int v = 0; v < NV512; v++) acc[i][v] = _mm512_setzero_ps();
#ifndef KUNROLL
#define KUNROLL 4
#endif
#pragma clang loop unroll_count(KUNROLL)
    for (long k = 0; k < kc; k++) {
        __m512 bv[NV512];
#pragma clang loop unroll(full)
        for (int v = 0; v < NV512; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma clang loop unroll(full)
        for (int i = 0; i < MR512; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
#pragma clang loop unroll(full)
            for (int v = 0; v < NV512; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += MR512;
        b += bs;
    }
    __mmask16 km[NV512];
#pragma clang loop unroll(full)
    for (int v = 0; v < NV512; v++) {
        long r = n - 16 * v;
        km[v] = r >= 16 ? (__mmask16)0xffff : r > 0 ? (__mmask16)((1u << r) - 1) : (__mmask16)0;
    }
    __m512 va = _mm512_set1_ps(alpha);
    if (beta == 0.0f) {
#pragma clang loop unroll(full)
        for (int i = 0; i < MR512; i++) {
            if (i < m) {
                float *ci = c + i * ldc;
#pragma clang loop unroll(full)
                for (int v = 0; v < NV512; v++) _mm512_mask_storeu_ps(ci + 16 * v, km[v], _mm512_mul_ps(va, acc[i][v]));
            }
        }
    } else {
        __m512 vb = _mm512_set1_ps(beta);
#pragma clang loop unroll(full)
        for (int i = 0; i < MR512; i++) {
            if (i < m) {
                float *ci = c + i * ldc;
#pragma clang loop unroll(full)
                for (int v = 0; v < NV512; v++) {
                    __m512 o = _mm512_maskz_loadu_ps(km[v], ci + 16 * v);
                    _mm512_mask_storeu_ps(ci + 16 * v, km[v], _mm512_fmadd_ps(va, acc[i][v], _mm512_mul_ps(vb, o)));
                }
            }
        }
    }
}

// Edge tiles: the same kernel for 1..8 rows and 1..3 vectors of 16 columns (the A panel is still
// MR512 tall and the B panel NR512 wide), so a ragged last tile costs its rows and columns, not a
// full 8 x 48: a small M (B = 50 rows split over two threads: 25 = 3·8 + 1) or an N of 256
// (5·48 + 16: the last panel needs one vector, not three). Each element's sum is the same FMA
// chain in k order as in kernel_avx512, so the results are the same bits. DEF_TILE512 also makes
// the 9-row tall tiles below (A packed 9 wide: ASTEP 9).
/// The tile body shared by the packed tiles (row i of A at a[i], a += ASTEP per k) and the ones
/// reading A in place (row i at a[i·lda], a += 1); LOOP_PRAGMA precedes the k loop (or is empty).
/// The accumulators' loops are unrolled in full so that they stay in registers: until 2026-11-30
/// the 7 × 3, 8 × 3, 9 × 2 and 9 × 3 tiles (packed, in place and tall) zeroed them with a call to
/// memset on the stack and loaded them back before the k loop, on every call (rnn256 ×1.019,
/// gru256 ×1.020 whole steps).
#define TILE512_BODY(ROWS, NV, LDA, ASTEP, LOOP_PRAGMA)                                                     \
    if (beta != 0.0f) prefetch_c512(c, ldc, ROWS < m ? ROWS : (int)m);                                      \
    __m512 acc[ROWS][NV];                                                                                   \
    _Pragma("clang loop unroll(full)")                                                                      \
    for (int i = 0; i < ROWS; i++)                                                                          \
        _Pragma("clang loop unroll(full)")                                                                  \
        for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();                                       \
    LOOP_PRAGMA                                                                                             \
    for (long k = 0; k < kc; k++) {                                                                         \
        __m512 bv[NV];                                                                                      \
        for (int v = 0; v < NV; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);                                   \
        for (int i = 0; i < ROWS; i++) {                                                                    \
            __m512 ai = _mm512_set1_ps(a[i * (LDA)]);                                                       \
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);                 \
        }                                                                                                   \
        a += ASTEP;                                                                                         \
        b += bs;                                                                                            \
    }                                                                                                       \
    __mmask16 km[NV];                                                                                       \
    for (int v = 0; v < NV; v++) {                                                                          \
        long r = n - 16 * v;                                                                                \
        km[v] = r >= 16 ? (__mmask16)0xffff : r > 0 ? (__mmask16)((1u << r) - 1) : (__mmask16)0;            \
    }                                                                                                       \
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);                                           \
    _Pragma("clang loop unroll(full)")                                                                      \
    for (int i = 0; i < ROWS; i++) {                                                                        \
        if (i >= m) break;                                                                                  \
        float *ci = c + i * ldc;                                                                            \
        _Pragma("clang loop unroll(full)")                                                                  \
        for (int v = 0; v < NV; v++) {                                                                      \
            __m512 r = _mm512_mul_ps(va, acc[i][v]);                                                        \
            if (beta != 0.0f) r = _mm512_fmadd_ps(va, acc[i][v], _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(km[v], ci + 16 * v))); \
            _mm512_mask_storeu_ps(ci + 16 * v, km[v], r);                                                   \
        }                                                                                                   \
    }
#define DEF_TILE512(NAME, ROWS, NV, ASTEP)                                                                  \
T512 static void NAME(long kc, const float *a, const float *b, long bs, float *c,                           \
                      long ldc, long m, long n, float alpha, float beta) {                                  \
    TILE512_BODY(ROWS, NV, 1, ASTEP, )                                                                      \
}
#define DEF_EDGE512(ROWS, NV) DEF_TILE512(kernel_avx512_##ROWS##x##NV, ROWS, NV, MR512)
#define DEF_EDGE512_ROW(ROWS) DEF_EDGE512(ROWS, 1) DEF_EDGE512(ROWS, 2) DEF_EDGE512(ROWS, 3)
DEF_EDGE512_ROW(1) DEF_EDGE512_ROW(2) DEF_EDGE512_ROW(3) DEF_EDGE512_ROW(4) DEF_EDGE512_ROW(5) DEF_EDGE512_ROW(6)
DEF_EDGE512_ROW(7) DEF_EDGE512(8, 1) DEF_EDGE512(8, 2)

#if MR512 == 8 && NV512 == 3
/// edge512[m · 4 + nv]: the kernel for m rows (1…8) and nv vectors (1…3); 8 x 3 is the full tile.
#define EDGE512_ROW(ROWS) NULL, kernel_avx512_##ROWS##x1, kernel_avx512_##ROWS##x2, kernel_avx512_##ROWS##x3,
static const rc_ukernel_fn edge512[(MR512 + 1) * (NV512 + 1)] = {
    NULL, NULL, NULL, NULL,
    EDGE512_ROW(1) EDGE512_ROW(2) EDGE512_ROW(3) EDGE512_ROW(4) EDGE512_ROW(5) EDGE512_ROW(6) EDGE512_ROW(7)
    NULL, kernel_avx512_8x1, kernel_avx512_8x2, kernel_avx512,
};
#define EDGE512_TABLE edge512
#else
#define EDGE512_TABLE NULL   // experiments with other tile shapes: full-tile kernel only
#define THIN512 NULL
#define TALL512 NULL
#define DIRECT512 NULL
#endif

#if MR512 == 8 && NV512 == 3
/// Thin row tiles against several B panels at once. A 1 x 48 tile has only 3 accumulator chains
/// in flight, so with 4-cycle FMA latency on 2 ports it runs at ~3/8 of the FMA rate (2 x 48: 6/8):
/// the ragged last row of a 25-row slice cost ~4% of a small model's step. 1 row x 3 panels
/// (9 chains) and 2 rows x 2 panels (12 chains) keep both ports busy. Since the 9-row tiles
/// below, only blocks of 1, 2 or 10 rows still end in a thin tile. Each element's sum is the
/// same FMA chain in k order as in kernel_avx512, and the same alpha/beta formula: same bits.
#define DEF_THIN512(ROWS, P)                                                                                \
T512 static void thin_avx512_##ROWS##x##P(long kc, const float *a, const float *b, long ps, long bs,         \
                                          float *c, long ldc, long n, float alpha, float beta) {             \
    enum { Q = P * NV512 };                                                                                 \
    __m512 acc[ROWS][Q];                                                                                    \
    for (int i = 0; i < ROWS; i++)                                                                          \
        for (int q = 0; q < Q; q++) acc[i][q] = _mm512_setzero_ps();                                        \
    for (long k = 0; k < kc; k++) {                                                                         \
        __m512 bv[Q];                                                                                       \
        for (int p = 0; p < P; p++)                                                                         \
            for (int v = 0; v < NV512; v++) bv[p * NV512 + v] = _mm512_loadu_ps(b + p * ps + 16 * v);        \
        for (int i = 0; i < ROWS; i++) {                                                                    \
            __m512 ai = _mm512_set1_ps(a[i]);                                                               \
            for (int q = 0; q < Q; q++) acc[i][q] = _mm512_fmadd_ps(ai, bv[q], acc[i][q]);                  \
        }                                                                                                   \
        a += MR512;                                                                                         \
        b += bs;                                                                                            \
    }                                                                                                       \
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);                                           \
    for (int q = 0; q < Q; q++) {                                                                           \
        long r = n - 16 * q;                                                                                \
        if (r <= 0) break;                                                                                  \
        __mmask16 km = r >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << r) - 1);                            \
        long col = (q / NV512) * NR512 + 16 * (q % NV512);                                                  \
        for (int i = 0; i < ROWS; i++) {                                                                    \
            float *ci = c + i * ldc + col;                                                                  \
            __m512 o = _mm512_mul_ps(va, acc[i][q]);                                                        \
            if (beta != 0.0f) o = _mm512_fmadd_ps(va, acc[i][q], _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(km, ci))); \
            _mm512_mask_storeu_ps(ci, km, o);                                                               \
        }                                                                                                   \
    }                                                                                                       \
}
DEF_THIN512(1, 3) DEF_THIN512(1, 2) DEF_THIN512(2, 2)

/// Rows 0..m-1 (m <= 2) of C[m x n] = alpha · Ap · B + beta · C over all NR-wide packed panels of B
/// (panel p at b + p·ps, row stride bs): groups of 3 panels for one row, 2 for two, the rest by
/// the edge kernels. `n` counts columns from the first panel.
T512 static void thin_avx512(long kc, const float *a, const float *b, long ps, long bs, float *c, long ldc,
                             long m, long n, float alpha, float beta) {
    long j = 0;
    const long group = m == 1 ? 3 : 2;
    for (; n - j > (group - 1) * NR512; j += group * NR512) {
        long w = n - j < group * NR512 ? n - j : group * NR512;
        const float *bp = b + (j / NR512) * ps;
        if (m == 1) thin_avx512_1x3(kc, a, bp, ps, bs, c + j, ldc, w, alpha, beta);
        else thin_avx512_2x2(kc, a, bp, ps, bs, c + j, ldc, w, alpha, beta);
    }
    if (m == 1 && n - j > NR512) {
        thin_avx512_1x2(kc, a, b + (j / NR512) * ps, ps, bs, c + j, ldc, n - j, alpha, beta);
        return;
    }
    for (; j < n; j += NR512) {
        long w = n - j < NR512 ? n - j : NR512;
        edge512[m * (NV512 + 1) + (w + 15) / 16](kc, a, b + (j / NR512) * ps, bs, c + j, ldc, m, w, alpha, beta);
    }
}
#define THIN512 thin_avx512

/// Tall tiles: 9 rows x NV vectors, A packed 9 rows wide (element (i,k) at a[k*9 + i]). A slice of
/// 8n + 1 or 8n + 2 rows runs its last 9 or 18 rows as one or two 9-row tiles instead of 8-row
/// tiles and a thin 1- or 2-row one, so no row streams the B panels on its own: 27 accumulators +
/// 3 B vectors + 1 broadcast fit the 32 registers. Each element's sum is the same FMA chain in k
/// order as in kernel_avx512, with the same alpha/beta formula: same bits.
#define DEF_TALL512(NV) DEF_TILE512(tall_avx512_##NV, 9, NV, 9)
DEF_TALL512(1) DEF_TALL512(2) DEF_TALL512(3)
/// tall512[v]: the 9-row tile for v vectors (1…3) of 16 columns.
static const rc_ukernel_fn tall512[NV512 + 1] = { NULL, tall_avx512_1, tall_avx512_2, tall_avx512_3 };
#define TALL512 tall512

/// Tiles that read A in place (row i at a + i·lda), for the per-step products: their A is the few
/// rows of h[t−1] or dPre[t] just written, and packing it cost ~4% of a 25 × 256 × 256 product
/// (the 9-row tall panel most). 1–8 rows with the k loop unrolled 4 times, 9 rows without (27
/// accumulators leave no registers for an unrolled loop: it ran 60% slower). Each element's sum is
/// the same FMA chain in k order as in the packed tiles, with the same alpha/beta formula: same bits.
#define DEF_DIRECT512(ROWS, NV, UNROLL)                                                                     \
T512 static void direct_avx512_##ROWS##x##NV(long kc, const float *a, long lda, const float *b, long bs,    \
                                             float *c, long ldc, long m, long n, float alpha, float beta) { \
    TILE512_BODY(ROWS, NV, lda, 1, _Pragma(UNROLL))                                                         \
}
#define DEF_DIRECT512_ROW(ROWS, UNROLL) DEF_DIRECT512(ROWS, 1, UNROLL) DEF_DIRECT512(ROWS, 2, UNROLL) DEF_DIRECT512(ROWS, 3, UNROLL)
#define UNROLL4 "clang loop unroll_count(4)"
DEF_DIRECT512_ROW(1, UNROLL4) DEF_DIRECT512_ROW(2, UNROLL4) DEF_DIRECT512_ROW(3, UNROLL4) DEF_DIRECT512_ROW(4, UNROLL4)
DEF_DIRECT512_ROW(5, UNROLL4) DEF_DIRECT512_ROW(6, UNROLL4) DEF_DIRECT512_ROW(7, UNROLL4) DEF_DIRECT512_ROW(8, UNROLL4)
DEF_DIRECT512_ROW(9, "clang loop unroll(disable)")
#undef UNROLL4
/// direct512[m · 4 + nv]: the in-place tile for m rows (1…9) and nv vectors (1…3).
#define DIRECT512_ROW(ROWS) NULL, direct_avx512_##ROWS##x1, direct_avx512_##ROWS##x2, direct_avx512_##ROWS##x3,
static const rc_dkernel_fn direct512[10 * (NV512 + 1)] = {
    NULL, NULL, NULL, NULL,
    DIRECT512_ROW(1) DIRECT512_ROW(2) DIRECT512_ROW(3) DIRECT512_ROW(4) DIRECT512_ROW(5) DIRECT512_ROW(6)
    DIRECT512_ROW(7) DIRECT512_ROW(8) DIRECT512_ROW(9)
};
#define DIRECT512 direct512
#endif

// ---- activations ----

/// exp(x), Cephes-style: x = n ln2 + r, degree-6 polynomial in r, 2^n applied in two halves
/// (covers denormal results and exp(88.7) without overflow). NaN propagates.
T512 static inline __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_set1_ps(88.72f), x);   // min/max(const, x) return x when x is NaN
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    __m512 fn = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i n = _mm512_cvtps_epi32(fn);
    __m512i n1 = _mm512_srai_epi32(n, 1);
    __m512i n2 = _mm512_sub_epi32(n, n1);
    __m512i bias = _mm512_set1_epi32(127);
    __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
    __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
    return _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
}

T512 static inline __m512 sigmoid512(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), ax));
    __m512 s = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_mul_ps(s, neg, e, s);
}

T512 static inline __m512 tanh512(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    // small |x|: odd polynomial (exact 0 at 0, keeps -0)
    __m512 z = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(-5.70498872745e-3f);
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.06390887954e-2f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-5.37397155531e-2f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.33314422036e-1f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-3.33332819422e-1f));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(x, z), p, x);
    // large |x|: 1 - 2/(exp(2|x|)+1), sign restored
    __m512 a2 = _mm512_min_ps(_mm512_set1_ps(40.0f), _mm512_add_ps(ax, ax));
    __m512 e = exp512(a2);
    __m512 big = _mm512_sub_ps(_mm512_set1_ps(1.0f),
                               _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    big = _mm512_or_ps(big, _mm512_and_ps(x, _mm512_set1_ps(-0.0f)));
    __mmask16 isSmall = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(isSmall, big, small);
}

T512 static void sigmoid_avx512(float *x, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, sigmoid512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, k, sigmoid512(_mm512_maskz_loadu_ps(k, x + i)));
    }
}

T512 static void tanh_avx512(float *x, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, tanh512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, k, tanh512(_mm512_maskz_loadu_ps(k, x + i)));
    }
}

const rc_isa_desc rc_desc_avx512 = {
    RC_ISA_AVX512, "avx512", MR512, NR512, KC512, MR512 * 16, NR512 * 20, kernel_avx512, sigmoid_avx512, tanh_avx512,
    rc_transpose8_avx2, EDGE512_TABLE, NV512, THIN512, TALL512, DIRECT512,
};
#endif
