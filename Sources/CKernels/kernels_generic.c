// The baseline path: a NEON micro-kernel on arm64 (NEON is part of every arm64 CPU, so it needs
// no run-time check), plain C everywhere else (the compiler may auto-vectorise it, e.g. for SSE2),
// and the activations in plain C.
#include "internal.h"
#include <string.h>
#include <stdint.h>
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

#define GMR 4
#define GNR 16

#if !defined(__aarch64__)
static void kernel_generic(long kc, const float *a, const float *b, long bs, float *c, long ldc,
                           long m, long n, float alpha, float beta) {
    float acc[GMR][GNR];
    memset(acc, 0, sizeof acc);
    for (long k = 0; k < kc; k++) {
        for (int i = 0; i < GMR; i++) {
            float ai = a[i];
            for (int j = 0; j < GNR; j++) acc[i][j] += ai * b[j];
        }
        a += GMR;
        b += bs;
    }
    for (long i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f) {
            for (long j = 0; j < n; j++) ci[j] = alpha * acc[i][j];
        } else {
            for (long j = 0; j < n; j++) ci[j] = alpha * acc[i][j] + beta * ci[j];
        }
    }
}
#endif

#if defined(__aarch64__)
// ---- NEON (arm64) ----
// 8 x 12 tile: 24 accumulators of 4 floats, the 8 A values of a k in 2 registers and the 12 B
// values in 3 (29 of the 32 vector registers), one fused multiply-add by lane per accumulator:
// 24 FMAs per 5 loads (the shape of OpenBLAS's and BLIS's arm64 sgemm kernels).
#define NMR 8
#define NNR 12

#define NEON_ROW(i, av, lane)                                   \
    c##i##0 = vfmaq_laneq_f32(c##i##0, b0, av, lane);           \
    c##i##1 = vfmaq_laneq_f32(c##i##1, b1, av, lane);           \
    c##i##2 = vfmaq_laneq_f32(c##i##2, b2, av, lane);

static void kernel_neon(long kc, const float *a, const float *b, long bs, float *c, long ldc,
                        long m, long n, float alpha, float beta) {
    float32x4_t z = vdupq_n_f32(0.0f);
    float32x4_t c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z, c20 = z, c21 = z, c22 = z,
                c30 = z, c31 = z, c32 = z, c40 = z, c41 = z, c42 = z, c50 = z, c51 = z, c52 = z,
                c60 = z, c61 = z, c62 = z, c70 = z, c71 = z, c72 = z;
    for (long k = 0; k < kc; k++) {
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        NEON_ROW(0, a0, 0) NEON_ROW(1, a0, 1) NEON_ROW(2, a0, 2) NEON_ROW(3, a0, 3)
        NEON_ROW(4, a1, 0) NEON_ROW(5, a1, 1) NEON_ROW(6, a1, 2) NEON_ROW(7, a1, 3)
        a += NMR;
        b += bs;
    }
    float32x4_t acc[NMR][3] = {
        { c00, c01, c02 }, { c10, c11, c12 }, { c20, c21, c22 }, { c30, c31, c32 },
        { c40, c41, c42 }, { c50, c51, c52 }, { c60, c61, c62 }, { c70, c71, c72 },
    };
    float32x4_t va = vdupq_n_f32(alpha), vb = vdupq_n_f32(beta);
    if (n == NNR) {
        for (long i = 0; i < m; i++) {
            float *ci = c + i * ldc;
            for (int v = 0; v < 3; v++) {
                float32x4_t r = vmulq_f32(va, acc[i][v]);
                if (beta != 0.0f) r = vfmaq_f32(vmulq_f32(vb, vld1q_f32(ci + 4 * v)), va, acc[i][v]);
                vst1q_f32(ci + 4 * v, r);
            }
        }
        return;
    }
    // partial columns: through a small buffer, the same arithmetic per element
    float tile[NMR][NNR];
    for (int i = 0; i < NMR; i++)
        for (int v = 0; v < 3; v++) vst1q_f32(tile[i] + 4 * v, acc[i][v]);
    for (long i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        for (long j = 0; j < n; j++) ci[j] = beta == 0.0f ? alpha * tile[i][j] : __builtin_fmaf(alpha, tile[i][j], beta * ci[j]);
    }
}
#endif

// ---- activations (same algorithm as the SIMD versions, scalar) ----

static inline float bits_to_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/// exp(x) for x in any range: Cephes-style reduction x = n*ln2 + r, |r| <= ln2/2,
/// degree-6 polynomial, 2^n applied in two halves so denormal results and exp(88.7) work.
static inline float exp_generic(float x) {
    if (x != x) return x;
    if (x > 88.72f) x = 88.72f;
    if (x < -104.0f) x = -104.0f;
    float fn = x * 1.44269504088896341f;
    fn = (float)(long)(fn + (fn >= 0 ? 0.5f : -0.5f));
    float r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int n = (int)fn;
    int n1 = n / 2, n2 = n - n1;
    return p * bits_to_float((uint32_t)(n1 + 127) << 23) * bits_to_float((uint32_t)(n2 + 127) << 23);
}

static inline float sigmoid_generic1(float x) {
    float ax = x < 0 ? -x : x;
    float e = exp_generic(-ax);          // in (0, 1]
    float s = 1.0f / (1.0f + e);
    return x >= 0 ? s : e * s;           // x < 0: e/(1+e); NaN falls through to e*s = NaN
}

static inline float tanh_generic1(float x) {
    float ax = x < 0 ? -x : x;
    float r;
    if (ax < 0.625f) {
        float z = x * x;
        float p = -5.70498872745e-3f;
        p = p * z + 2.06390887954e-2f;
        p = p * z - 5.37397155531e-2f;
        p = p * z + 1.33314422036e-1f;
        p = p * z - 3.33332819422e-1f;
        return x + x * z * p;            // exact 0 at 0, keeps the sign of -0
    }
    if (ax > 20.0f) ax = 20.0f;
    r = 1.0f - 2.0f / (exp_generic(2.0f * ax) + 1.0f);
    if (x != x) return x;
    return x < 0 ? -r : r;
}

static void sigmoid_generic(float *x, long n) { for (long i = 0; i < n; i++) x[i] = sigmoid_generic1(x[i]); }
static void tanh_generic(float *x, long n) { for (long i = 0; i < n; i++) x[i] = tanh_generic1(x[i]); }

#if defined(__aarch64__)
const rc_isa_desc rc_desc_generic = {
    RC_ISA_GENERIC, "generic", NMR, NNR, 256, NMR * 16, NNR * 80, kernel_neon, sigmoid_generic, tanh_generic, NULL,
};
#else
const rc_isa_desc rc_desc_generic = {
    RC_ISA_GENERIC, "generic", GMR, GNR, 256, 128, 1024, kernel_generic, sigmoid_generic, tanh_generic, NULL,
};
#endif
