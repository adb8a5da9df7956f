// Branch-free float exp / sigmoid / tanh for the fused cell kernels. Written with plain arithmetic,
// bit casts and selects only, so the loops that call them vectorise for whatever ISA the calling
// function is compiled for (no libm calls in the hot loops).
#ifndef RECURRENT_CKERNELS_CELLS_MATH_H
#define RECURRENT_CKERNELS_CELLS_MATH_H
#include <stdint.h>
#include <string.h>

static inline float cm_from_bits(int32_t i) { float f; memcpy(&f, &i, sizeof f); return f; }

/// exp(x) for x <= 0 (NaN propagates; x < −87 is clamped, giving ≈ 1.6e-38 instead of smaller).
/// x = n·ln2 + r with |r| <= ln2/2 (ln2 split in two parts so r is exact), then
/// e^r ≈ 1 + r + r²·P(r) with Cephes' degree-5 P (relative error < 2e-7), times 2^n built in the
/// exponent bits. n >= −126 after the clamp, so 2^n is a normal number.
static inline float cm_exp_nonpositive(float x) {
    x = x < -87.0f ? -87.0f : x;
    // Round x·log2(e) to the nearest integer by adding and removing 1.5·2^23.
    float fn = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float er = (p * r) * r + r + 1.0f;
    int32_t n = (int32_t)fn;
    return er * cm_from_bits((n + 127) << 23);
}

/// σ(x) = 1/(1+e^-x), evaluated as 1/(1+e) or e/(1+e) with e = e^-|x| so it never overflows.
static inline float cm_sigmoid(float x) {
    float e = cm_exp_nonpositive(-__builtin_fabsf(x));
    float s = 1.0f / (1.0f + e);
    return x < 0.0f ? e * s : s;
}

/// tanh(x): an odd polynomial for |x| < 0.625 (Cephes' coefficients; exact 0 and −0), else
/// sign(x)·(1 − e)/(1 + e) with e = e^-2|x| (saturates to ±1).
static inline float cm_tanh(float x) {
    float ax = __builtin_fabsf(x);
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = (x * z) * p + x;
    float e = cm_exp_nonpositive(-2.0f * ax);
    float big = __builtin_copysignf((1.0f - e) / (1.0f + e), x);
    return ax < 0.625f ? small : big;
}
#endif
