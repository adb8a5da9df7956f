// Panel-packed matrix-vector kernels for batch-1 inference (see README-gemv.md).
//
// A block holds nv vectors of 16 output rows (nv <= 8) over K inputs, k-major, so one pass over
// the block reads every weight once, sequentially, with full-width loads: for each k, broadcast
// x[k] and add w[k][0..nv*16) * x[k] into nv*16 accumulators. Each row is accumulated in k order
// from init with one FMA chain, whatever the ISA's vector width, so a block's result does not
// depend on which thread computes it or on which other blocks are computed with it.
//
// bf16 blocks pair k: one 32-bit word holds W[r][2kp] (low half) and W[r][2kp+1] (high half).
// The weights are widened exactly to fp32 (a shift and a mask) and x stays fp32, so only the
// weights are rounded.
#include "internal.h"
#include "gemv_internal.h"
#include "ckernels.h"
#include "ckernels_gemv.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// ---------------------------------------------------------------- generic

static void gemv_f32_generic(const void *wv, long K, int nv, const float *x, const float *init, float *out) {
    const float *w = wv;
    int n = nv * 16;
    float acc[RC_GEMV_MAX_NV * 16];
    for (int i = 0; i < n; i++) acc[i] = init[i];
    for (long k = 0; k < K; k++) {
        float xk = x[k];
        const float *wk = w + k * n;
        for (int i = 0; i < n; i++) acc[i] += wk[i] * xk;
    }
    for (int i = 0; i < n; i++) out[i] = acc[i];
}

static inline float bf16_lo(uint32_t u) { union { uint32_t u; float f; } v = { u << 16 }; return v.f; }
static inline float bf16_hi(uint32_t u) { union { uint32_t u; float f; } v = { u & 0xffff0000u }; return v.f; }

static void gemv_bf16_generic(const void *wv, long K, int nv, const float *x, const float *init, float *out) {
    const uint32_t *w = wv;
    int n = nv * 16;
    float acc[RC_GEMV_MAX_NV * 16];
    for (int i = 0; i < n; i++) acc[i] = init[i];
    long kp = 0;
    for (; 2 * kp + 1 < K; kp++) {
        float x0 = x[2 * kp], x1 = x[2 * kp + 1];
        const uint32_t *wk = w + kp * n;
        for (int i = 0; i < n; i++) {
            acc[i] += bf16_lo(wk[i]) * x0;
            acc[i] += bf16_hi(wk[i]) * x1;
        }
    }
    if (2 * kp < K) {   // odd K: the last pair's high half is zero padding
        float x0 = x[2 * kp];
        const uint32_t *wk = w + kp * n;
        for (int i = 0; i < n; i++) acc[i] += bf16_lo(wk[i]) * x0;
    }
    for (int i = 0; i < n; i++) out[i] = acc[i];
}

// int8 blocks (see gemv_internal.h): exact int32 sums of (q(x_k) + 128) * w_ik, started from the
// block's offsets (-128 * the row's weight sum), so the sum is q(x) . w. Then one rounding step,
// out = fma(float(sum), scale_i * xs, init_i), written the same way in every path: the result is
// bitwise the same on every ISA and thread.
static void gemv_q8_generic(const void *wv, long K, int nv, const uint8_t *xq, float xs, const float *init, float *out) {
    int n = nv * 16;
    const float *scale = wv;
    const int32_t *off = (const int32_t *)(scale + n);
    const int8_t *w = (const int8_t *)(off + n);
    long K4 = (K + 3) / 4;
    int32_t acc[RC_GEMV_MAX_NV * 16];
    for (int i = 0; i < n; i++) acc[i] = off[i];
    for (long k4 = 0; k4 < K4; k4++) {
        const int8_t *wk = w + k4 * n * 4;
        int32_t x0 = xq[4 * k4], x1 = xq[4 * k4 + 1], x2 = xq[4 * k4 + 2], x3 = xq[4 * k4 + 3];
        for (int i = 0; i < n; i++)
            acc[i] += x0 * wk[4 * i] + x1 * wk[4 * i + 1] + x2 * wk[4 * i + 2] + x3 * wk[4 * i + 3];
    }
    for (int i = 0; i < n; i++) out[i] = fmaf((float)acc[i], scale[i] * xs, init[i]);
}

float rc_quantize_u8(const float *x, long K, uint8_t *xq) {
    float m = 0, poison = 0;
    for (long k = 0; k < K; k++) {
        float a = fabsf(x[k]);
        m = a > m ? a : m;
        poison += x[k] * 0.0f;          // NaN if any x is NaN or infinite
    }
    long K4 = (K + 3) / 4;
    memset(xq + K, 128, (size_t)(K4 * 4 - K));
    if (!(m > 0) || poison != 0.0f) {   // all zero, or not finite: the scale carries it (0 or NaN)
        memset(xq, 128, (size_t)K);
        return m > 0 ? NAN : 0.0f;
    }
    float inv = 127.0f / m;
    for (long k = 0; k < K; k++) {
        float q = nearbyintf(x[k] * inv);
        q = q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q;
        xq[k] = (uint8_t)((int)q + 128);
    }
    return m / 127.0f;
}

#if defined(__x86_64__)
// ---------------------------------------------------------------- AVX2 + FMA

#define RC_AVX2 __attribute__((target("avx2,fma")))

#define DEF_F32_AVX2(NV)                                                                        \
    static inline __attribute__((always_inline)) RC_AVX2 void f32_avx2_##NV(                      \
        const float *w, long K, const float *x, const float *init, float *out) {                 \
        __m256 acc[2 * NV];                                                                      \
        for (int v = 0; v < 2 * NV; v++) acc[v] = _mm256_loadu_ps(init + 8 * v);                 \
        for (long k = 0; k < K; k++) {                                                           \
            __m256 xb = _mm256_broadcast_ss(x + k);                                              \
            const float *wk = w + k * NV * 16;                                                   \
            for (int v = 0; v < 2 * NV; v++)                                                     \
                acc[v] = _mm256_fmadd_ps(_mm256_load_ps(wk + 8 * v), xb, acc[v]);                \
        }                                                                                        \
        for (int v = 0; v < 2 * NV; v++) _mm256_storeu_ps(out + 8 * v, acc[v]);                  \
    }
DEF_F32_AVX2(1) DEF_F32_AVX2(2) DEF_F32_AVX2(3) DEF_F32_AVX2(4)

RC_AVX2 static void gemv_f32_avx2(const void *wv, long K, int nv, const float *x, const float *init, float *out) {
    const float *w = wv;
    switch (nv) {
    case 1: f32_avx2_1(w, K, x, init, out); return;
    case 2: f32_avx2_2(w, K, x, init, out); return;
    case 3: f32_avx2_3(w, K, x, init, out); return;
    case 4: f32_avx2_4(w, K, x, init, out); return;
    default: gemv_f32_generic(wv, K, nv, x, init, out); return;   // not used by the stepper
    }
}

#define DEF_BF16_AVX2(NV)                                                                       \
    static inline __attribute__((always_inline)) RC_AVX2 void bf16_avx2_##NV(                     \
        const uint32_t *w, long K, const float *x, const float *init, float *out) {              \
        __m256 acc[2 * NV];                                                                      \
        const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);                                  \
        for (int v = 0; v < 2 * NV; v++) acc[v] = _mm256_loadu_ps(init + 8 * v);                 \
        long kp = 0;                                                                             \
        for (; 2 * kp + 1 < K; kp++) {                                                          \
            __m256 x0 = _mm256_broadcast_ss(x + 2 * kp), x1 = _mm256_broadcast_ss(x + 2 * kp + 1); \
            const uint32_t *wk = w + kp * NV * 16;                                               \
            for (int v = 0; v < 2 * NV; v++) {                                                   \
                __m256i q = _mm256_load_si256((const __m256i *)(wk + 8 * v));                    \
                acc[v] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(q, 16)), x0, acc[v]); \
                acc[v] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(q, hi)), x1, acc[v]); \
            }                                                                                    \
        }                                                                                        \
        if (2 * kp < K) {                                                                        \
            __m256 x0 = _mm256_broadcast_ss(x + 2 * kp);                                         \
            const uint32_t *wk = w + kp * NV * 16;                                               \
            for (int v = 0; v < 2 * NV; v++) {                                                   \
                __m256i q = _mm256_load_si256((const __m256i *)(wk + 8 * v));                    \
                acc[v] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(q, 16)), x0, acc[v]); \
            }                                                                                    \
        }                                                                                        \
        for (int v = 0; v < 2 * NV; v++) _mm256_storeu_ps(out + 8 * v, acc[v]);                  \
    }
DEF_BF16_AVX2(1) DEF_BF16_AVX2(2) DEF_BF16_AVX2(3) DEF_BF16_AVX2(4)

RC_AVX2 static void gemv_bf16_avx2(const void *wv, long K, int nv, const float *x, const float *init, float *out) {
    const uint32_t *w = wv;
    switch (nv) {
    case 1: bf16_avx2_1(w, K, x, init, out); return;
    case 2: bf16_avx2_2(w, K, x, init, out); return;
    case 3: bf16_avx2_3(w, K, x, init, out); return;
    case 4: bf16_avx2_4(w, K, x, init, out); return;
    default: gemv_bf16_generic(wv, K, nv, x, init, out); return;
    }
}

// ---------------------------------------------------------------- AVX-512

#define RC_AVX512 __attribute__((target("avx512f")))

#define DEF_F32_AVX512(NV)                                                                      \
    static inline __attribute__((always_inline)) RC_AVX512 void f32_avx512_##NV(                  \
        const float *w, long K, const float *x, const float *init, float *out) {                 \
        __m512 acc[NV];                                                                          \
        for (int v = 0; v < NV; v++) acc[v] = _mm512_loadu_ps(init + 16 * v);                    \
        for (long k = 0; k < K; k++) {                                                           \
            __m512 xb = _mm512_set1_ps(x[k]);                                                    \
            const float *wk = w + k * NV * 16;                                                   \
            for (int v = 0; v < NV; v++)                                                         \
                acc[v] = _mm512_fmadd_ps(_mm512_load_ps(wk + 16 * v), xb, acc[v]);               \
        }                                                                                        \
        for (int v = 0; v < NV; v++) _mm512_storeu_ps(out + 16 * v, acc[v]);                     \
    }
DEF_F32_AVX512(1) DEF_F32_AVX512(2) DEF_F32_AVX512(3) DEF_F32_AVX512(4)
DEF_F32_AVX512(5) DEF_F32_AVX512(6) DEF_F32_AVX512(7) DEF_F32_AVX512(8)

RC_AVX512 static void gemv_f32_avx512(const void *wv, long K, int nv, const float *x, const float *init, float *out) {
    const float *w = wv;
    switch (nv) {
    case 1: f32_avx512_1(w, K, x, init, out); return;
    case 2: f32_avx512_2(w, K, x, init, out); return;
    case 3: f32_avx512_3(w, K, x, init, out); return;
    case 4: f32_avx512_4(w, K, x, init, out); return;
    case 5: f32_avx512_5(w, K, x, init, out); return;
    case 6: f32_avx512_6(w, K, x, init, out); return;
    case 7: f32_avx512_7(w, K, x, init, out); return;
    default: f32_avx512_8(w, K, x, init, out); return;
    }
}

#define DEF_BF16_AVX512(NV)                                                                     \
    static inline __attribute__((always_inline)) RC_AVX512 void bf16_avx512_##NV(                 \
        const uint32_t *w, long K, const float *x, const float *init, float *out) {              \
        __m512 acc[NV];                                                                          \
        const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);                                  \
        for (int v = 0; v < NV; v++) acc[v] = _mm512_loadu_ps(init + 16 * v);                    \
        long kp = 0;                                                                             \
        for (; 2 * kp + 1 < K; kp++) {                                                          \
            __m512 x0 = _mm512_set1_ps(x[2 * kp]), x1 = _mm512_set1_ps(x[2 * kp + 1]);           \
            const uint32_t *wk = w + kp * NV * 16;                                               \
            for (int v = 0; v < NV; v++) {                                                       \
                __m512i q = _mm512_load_si512((const void *)(wk + 16 * v));                      \
                acc[v] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(q, 16)), x0, acc[v]); \
                acc[v] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(q, hi)), x1, acc[v]); \
            }                                                                                    \
        }                                                                                        \
        if (2 * kp < K) {                                                                        \
            __m512 x0 = _mm512_set1_ps(x[2 * kp]);                                               \
            const uint32_t *wk = w + kp * NV * 16;                                               \
            for (int v = 0; v < NV; v++) {                                                       \
                __m512i q = _mm512_load_si512((const void *)(wk + 16 * v));                      \
                acc[v] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(q, 16)), x0, acc[v]); \
            }                                                                                    \
        }                                                                                        \
        for (int v = 0; v < NV; v++) _mm512_storeu_ps(out + 16 * v, acc[v]);                     \
    }
DEF_BF16_AVX512(1) DEF_BF16_AVX512(2) DEF_BF16_AVX512(3) DEF_BF16_AVX512(4)

// int8 with VNNI: one vpdpbusd adds 4 k of 16 rows (64 multiply-adds). Two accumulator sets
// (even and odd groups of k) keep 2·NV independent chains; integer sums, so their order is free.
#define RC_VNNI __attribute__((target("avx512f,avx512vnni")))
#define DEF_Q8_VNNI(NV)                                                                         \
    static inline __attribute__((always_inline)) RC_VNNI void q8_vnni_##NV(                       \
        const float *scale, const int32_t *off, const int8_t *w, long K4, const uint8_t *xq, float xs, \
        const float *init, float *out) {                                                         \
        __m512i a0[NV], a1[NV];                                                                  \
        for (int v = 0; v < NV; v++) { a0[v] = _mm512_loadu_si512(off + 16 * v); a1[v] = _mm512_setzero_si512(); } \
        long k4 = 0;                                                                             \
        for (; k4 + 1 < K4; k4 += 2) {                                                           \
            int32_t u0, u1;                                                                      \
            memcpy(&u0, xq + 4 * k4, 4); memcpy(&u1, xq + 4 * k4 + 4, 4);                        \
            __m512i x0 = _mm512_set1_epi32(u0), x1 = _mm512_set1_epi32(u1);                      \
            const int8_t *wk = w + k4 * NV * 64;                                                 \
            for (int v = 0; v < NV; v++) {                                                       \
                a0[v] = _mm512_dpbusd_epi32(a0[v], x0, _mm512_load_si512((const void *)(wk + 64 * v))); \
                a1[v] = _mm512_dpbusd_epi32(a1[v], x1, _mm512_load_si512((const void *)(wk + NV * 64 + 64 * v))); \
            }                                                                                    \
        }                                                                                        \
        if (k4 < K4) {                                                                           \
            int32_t u0;                                                                          \
            memcpy(&u0, xq + 4 * k4, 4);                                                         \
            __m512i x0 = _mm512_set1_epi32(u0);                                                  \
            const int8_t *wk = w + k4 * NV * 64;                                                 \
            for (int v = 0; v < NV; v++)                                                         \
                a0[v] = _mm512_dpbusd_epi32(a0[v], x0, _mm512_load_si512((const void *)(wk + 64 * v))); \
        }                                                                                        \
        __m512 vs = _mm512_set1_ps(xs);                                                          \
        for (int v = 0; v < NV; v++) {                                                           \
            __m512 sum = _mm512_cvtepi32_ps(_mm512_add_epi32(a0[v], a1[v]));                     \
            __m512 sc = _mm512_mul_ps(_mm512_loadu_ps(scale + 16 * v), vs);                      \
            _mm512_storeu_ps(out + 16 * v, _mm512_fmadd_ps(sum, sc, _mm512_loadu_ps(init + 16 * v))); \
        }                                                                                        \
    }
DEF_Q8_VNNI(1) DEF_Q8_VNNI(2) DEF_Q8_VNNI(3) DEF_Q8_VNNI(4)

RC_VNNI static void gemv_q8_vnni(const void *wv, long K, int nv, const uint8_t *xq, float xs, const float *init, float *out) {
    int n = nv * 16;
    const float *scale = wv;
    const int32_t *off = (const int32_t *)(scale + n);
    const int8_t *w = (const int8_t *)(off + n);
    long K4 = (K + 3) / 4;
    switch (nv) {
    case 1: q8_vnni_1(scale, off, w, K4, xq, xs, init, out); return;
    case 2: q8_vnni_2(scale, off, w, K4, xq, xs, init, out); return;
    case 3: q8_vnni_3(scale, off, w, K4, xq, xs, init, out); return;
    case 4: q8_vnni_4(scale, off, w, K4, xq, xs, init, out); return;
    default: gemv_q8_generic(wv, K, nv, xq, xs, init, out); return;
    }
}

RC_AVX512 static void gemv_bf16_avx512(const void *wv, long K, int nv, const float *x, const float *init, float *out) {
    const uint32_t *w = wv;
    switch (nv) {
    case 1: bf16_avx512_1(w, K, x, init, out); return;
    case 2: bf16_avx512_2(w, K, x, init, out); return;
    case 3: bf16_avx512_3(w, K, x, init, out); return;
    case 4: bf16_avx512_4(w, K, x, init, out); return;
    default: gemv_bf16_generic(wv, K, nv, x, init, out); return;
    }
}
#endif

// ---------------------------------------------------------------- dispatch, packing

rc_gemv_fn rc_gemv_kernel(int isa, int precision) {
#if defined(__x86_64__)
    if (isa == RC_ISA_AVX512)
        return precision == RC_PREC_BF16 ? gemv_bf16_avx512 : gemv_f32_avx512;
    if (isa == RC_ISA_AVX2)
        return precision == RC_PREC_BF16 ? gemv_bf16_avx2 : gemv_f32_avx2;
#endif
    (void)isa;
    return precision == RC_PREC_BF16 ? gemv_bf16_generic : gemv_f32_generic;
}

rc_gemv_q8_fn rc_gemv_q8_kernel(int isa) {
#if defined(__x86_64__)
    if (isa == RC_ISA_AVX512 && __builtin_cpu_supports("avx512vnni")) return gemv_q8_vnni;
#endif
    (void)isa;
    return gemv_q8_generic;
}

const char *rc_gemv_q8_name(int isa) {
    return rc_gemv_q8_kernel(isa) == gemv_q8_generic ? "generic" : "avx512-vnni";
}

long rc_gemv_block_bytes(int nv, long K, int precision) {
    long n = (long)nv * 16;
    if (precision == RC_PREC_INT8) return n * 8 + (K + 3) / 4 * n * 4;
    return precision == RC_PREC_BF16 ? (K + 1) / 2 * n * 4 : K * n * 4;
}

void rc_gemv_pack_rows(const float *W, long ldw, long col0, long K, const long *rowmap, int nv,
                       int precision, void *dst) {
    long n = (long)nv * 16;
    if (precision == RC_PREC_INT8) {
        float *scale = dst;
        int32_t *off = (int32_t *)(scale + n);
        int8_t *d = (int8_t *)(off + n);
        long K4 = (K + 3) / 4;
        memset(d, 0, (size_t)(K4 * n * 4));
        for (long i = 0; i < n; i++) {
            const float *row = rowmap[i] >= 0 ? W + rowmap[i] * ldw + col0 : NULL;
            float m = 0;
            for (long k = 0; row && k < K; k++) m = fabsf(row[k]) > m ? fabsf(row[k]) : m;
            float sc = m > 0 ? m / 127.0f : 0.0f;
            scale[i] = sc;
            int32_t sum = 0;
            for (long k = 0; row && sc > 0 && k < K; k++) {
                long q = lrintf(row[k] / sc);
                q = q > 127 ? 127 : q < -127 ? -127 : q;
                d[(k / 4) * n * 4 + i * 4 + k % 4] = (int8_t)q;
                sum += (int32_t)q;
            }
            off[i] = -128 * sum;
        }
        return;
    }
    if (precision == RC_PREC_BF16) {
        uint32_t *d = dst;
        long kps = (K + 1) / 2;
        for (long i = 0; i < n; i++) {
            const float *row = rowmap[i] >= 0 ? W + rowmap[i] * ldw + col0 : NULL;
            for (long kp = 0; kp < kps; kp++) {
                uint32_t lo = row ? rc_f32_to_bf16(row[2 * kp]) : 0;
                uint32_t hi = (row && 2 * kp + 1 < K) ? rc_f32_to_bf16(row[2 * kp + 1]) : 0;
                d[kp * n + i] = lo | (hi << 16);
            }
        }
    } else {
        float *d = dst;
        for (long i = 0; i < n; i++) {
            const float *row = rowmap[i] >= 0 ? W + rowmap[i] * ldw + col0 : NULL;
            for (long k = 0; k < K; k++) d[k * n + i] = row ? row[k] : 0.0f;
        }
    }
}

static int isa_index(const char *name) {
    if (name == NULL) return rc_current_desc()->isa;
    if (!rc_isa_supported(name)) return -1;
    if (strcmp(name, "avx512") == 0) return RC_ISA_AVX512;
    if (strcmp(name, "avx2") == 0) return RC_ISA_AVX2;
    return RC_ISA_GENERIC;
}

long rc_gemv_packed_bytes(long rows, long K, int precision) {
    int nv = (int)((rows + 15) / 16);
    return rc_gemv_block_bytes(nv < 1 ? 1 : nv, K, precision);
}

void rc_gemv_pack(const float *W, long rows, long ldw, long K, int precision, void *dst) {
    int nv = (int)((rows + 15) / 16);
    if (nv < 1) nv = 1;
    long map[RC_GEMV_MAX_NV * 16];
    for (long i = 0; i < nv * 16; i++) map[i] = i < rows ? i : -1;
    rc_gemv_pack_rows(W, ldw, 0, K, map, nv, precision, dst);
}

int rc_gemv_isa(const char *isa, int precision, const void *packed, long rows, long K,
                const float *x, const float *init, float *y) {
    int i = isa_index(isa);
    if (i < 0 || rows < 1 || rows > RC_GEMV_MAX_NV * 16) return -1;
    int nv = (int)((rows + 15) / 16);
    float in[RC_GEMV_MAX_NV * 16] = {0}, out[RC_GEMV_MAX_NV * 16];
    memcpy(in, init, (size_t)rows * sizeof(float));
    if (precision == RC_PREC_INT8) {
        uint8_t *xq = malloc((size_t)((K + 3) / 4 * 4));
        if (!xq) return -1;
        float xs = rc_quantize_u8(x, K, xq);
        rc_gemv_q8_kernel(i)(packed, K, nv, xq, xs, in, out);
        free(xq);
    } else {
        rc_gemv_kernel(i, precision)(packed, K, nv, x, in, out);
    }
    memcpy(y, out, (size_t)rows * sizeof(float));
    return 0;
}

void rc_gemv_reference(const float *W, long rows, long ldw, long K, const float *x,
                       const float *init, float *y) {
    for (long r = 0; r < rows; r++) {
        double s = init[r];
        for (long k = 0; k < K; k++) s += (double)W[r * ldw + k] * x[k];
        y[r] = (float)s;
    }
}

// ---------------------------------------------------------------- sampling

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

void rc_softmax_topk(const float *logits, int V, float temperature, int topk, float *p, float *scratch) {
    float t = temperature > 1e-6f ? temperature : 1e-6f;
    for (int i = 0; i < V; i++) p[i] = logits[i] / t;
    if (topk > 0 && topk < V) {
        memcpy(scratch, p, (size_t)V * sizeof(float));
        qsort(scratch, (size_t)V, sizeof(float), cmp_desc);
        // Every value above the k-th is kept; of those equal to it, the lowest indices fill the
        // remaining places (keeping the first k at or above it in index order dropped a larger
        // value that came after a tie).
        float kth = scratch[topk - 1];
        int ties = topk;
        for (int i = 0; i < V; i++) if (p[i] > kth) ties--;
        for (int i = 0; i < V; i++) {
            if (p[i] > kth) continue;
            if (p[i] == kth && ties > 0) ties--; else p[i] = -INFINITY;
        }
    }
    float m = -INFINITY;
    for (int i = 0; i < V; i++) if (p[i] > m) m = p[i];
    float sum = 0;
    for (int i = 0; i < V; i++) { p[i] = p[i] == -INFINITY ? 0.0f : expf(p[i] - m); sum += p[i]; }
    float inv = 1.0f / sum;
    for (int i = 0; i < V; i++) p[i] *= inv;
}

int rc_sample_logits(const float *logits, int V, float temperature, int topk, int greedy, float u,
                     float *scratch) {
    // NaN logits (an overflowing model) have no distribution, nor +inf ones a softmax: -1, as
    // torch.multinomial refuses them. Greedy takes +inf as the largest.
    int finite = 0;
    for (int i = 0; i < V; i++) {
        if (logits[i] != logits[i] || (!greedy && logits[i] == INFINITY)) return -1;
        if (logits[i] > -INFINITY) finite = 1;
    }
    if (!finite) return -1;   // every score -inf: nothing can be drawn
    if (greedy) {
        int best = 0;
        for (int i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
    float *p = scratch;
    rc_softmax_topk(logits, V, temperature, topk, p, scratch + V);
    for (int i = 0; i < V; i++) {
        u -= p[i];
        if (u < 0) return i;
    }
    for (int i = V - 1; i >= 0; i--) if (p[i] > 0) return i;
    return 0;
}
