// Branch-free float exp / sigmoid / tanh for the fused cell kernels. Written with plain arithmetic,
// bit casts and selects only, so the loops that call them vectorise for whatever ISA the calling
// function is compiled for (no libm calls in the hot loops).
#ifndef RECURRENT_CKERNELS_CELLS_MATH_H
#define RECURRENT_CKERNELS_CELLS_MATH_H
#include <stdint.h>
#include <string.h>

static inline float cm_from_bits(int32_t i) { float f; memcpy(&f, &i, sizeof f); return f; }

/// exp(x) for x <= 0 (NaN propagates; x < −87 is clamped, giving ≈ 1.6e-38 instead of smaller).
/// x = n·ln2 + r with |r| <= ln2/2 (ln2 split in two parts so r is exact), then e^r by a degree-6
/// polynomial with P(0) = 1 (a minimax fit for relative error, 4.9e-9 in exact arithmetic), times
/// 2^n. n comes from one rounding: t = x·log2(e) + 1.5·2²³ + 127 is a float whose unit is 1, so
/// it holds round(x·log2(e)) + 127 in its low mantissa bits, and shifting t's bits left by 23
/// leaves 2^n's bits (n >= −126 after the clamp, so 2^n is a normal number). 13 operations instead
/// of 17 for the Cephes form it replaced (a degree-7 polynomial, a conversion to int and an add).
static inline float cm_exp_nonpositive(float x) {
    x = x < -87.0f ? -87.0f : x;
    float t = x * 1.44269504088896341f + 12583039.0f;
    float fn = t - 12583039.0f;
    float r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.3886008909545242e-3f;
    p = p * r + 8.37296618595043e-3f;
    p = p * r + 4.166748837872474e-2f;
    p = p * r + 1.6666476163212465e-1f;
    p = p * r + 4.999999485148823e-1f;
    p = p * r + 1.000000001500941f;
    p = p * r + 1.0f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    return p * cm_from_bits((int32_t)(bits << 23));
}

/// σ(x) = 1/(1+e^-x), evaluated as 1/(1+e) or e/(1+e) with e = e^-|x| so it never overflows.
static inline float cm_sigmoid(float x) {
    float e = cm_exp_nonpositive(-__builtin_fabsf(x));
    float s = 1.0f / (1.0f + e);
    return x < 0.0f ? e * s : s;
}

/// tanh(x) = x·P(x²)/Q(x²) on x clamped to [−9, 9] (beyond, tanh rounds to ±1 within an ulp), with
/// P of degree 5 and Q of degree 4 in x²: a minimax fit of tanh(x)/x for relative error, 9e-9 in
/// exact arithmetic (linear programming over a dense grid, refitted with the last denominator as
/// weight; `scripts/fit_tanh.py`). In float: at most 5.05 ulp from tanh over every float in
/// [2⁻³¹, 12] (90% within 1 ulp, 99.5% within 2; the exp-based form it replaced: 1.5 ulp), exact
/// ±0 and tiny x, NaN propagates (`cellTanhWithinSixUlp`). Nine multiply-adds and one division,
/// against an exp (a range reduction, a polynomial, exponent bits), a division and a polynomial for
/// small |x|: 6400 values in 1.56 µs instead of 2.83 µs on AVX-512 (the cells' hot loops).
static inline float cm_tanh(float x) {
    float c = x > 9.0f ? 9.0f : x;
    c = c < -9.0f ? -9.0f : c;
    float z = c * c;
    float p = -1.1871882629734025e-11f;
    p = p * z + 3.022737592564261e-08f;
    p = p * z + 2.789412219757651e-05f;
    p = p * z + 3.8638334207613083e-3f;
    p = p * z + 1.3676620886604224e-1f;
    p = p * z + 1.0f;
    float q = 1.2782796611634898e-06f;
    q = q * z + 3.929896871126991e-4f;
    q = q * z + 2.723034776555224e-2f;
    q = q * z + 4.700995421896856e-1f;
    q = q * z + 1.0f;
    return (c * p) / q;
}
#endif
