// Portable micro-kernel and activations: plain C, compiles everywhere (the compiler may
// auto-vectorise it for the baseline ISA, e.g. SSE2 or NEON).
#include "internal.h"
#include <string.h>
#include <stdint.h>

#define GMR 4
#define GNR 16

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

const rc_isa_desc rc_desc_generic = {
    RC_ISA_GENERIC, "generic", GMR, GNR, 256, 128, 1024, kernel_generic, sigmoid_generic, tanh_generic, NULL,
};
