// AVX2 + FMA micro-kernel (6 x 16: 12 accumulators of the 16 ymm registers) and activations.
#include "internal.h"
#if defined(__x86_64__)
#include <immintrin.h>

#define T256 __attribute__((target("avx2,fma")))
#define MR256 6
#define NR256 16

T256 static void kernel_avx2(long kc, const float *a, const float *b, long bs, float *c, long ldc,
                             long m, long n, float alpha, float beta) {
    __m256 c0[MR256], c1[MR256];
#pragma clang loop unroll(full)
    for (int i = 0; i < MR256; i++) { c0[i] = _mm256_setzero_ps(); c1[i] = _mm256_setzero_ps(); }
    for (long k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma clang loop unroll(full)
        for (int i = 0; i < MR256; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
        }
        a += MR256;
        b += bs;
    }
    __m256 va = _mm256_set1_ps(alpha);
    if (n == NR256) {
        if (beta == 0.0f) {
#pragma clang loop unroll(full)
            for (int i = 0; i < MR256; i++) {
                if (i < m) {
                    _mm256_storeu_ps(c + i * ldc, _mm256_mul_ps(va, c0[i]));
                    _mm256_storeu_ps(c + i * ldc + 8, _mm256_mul_ps(va, c1[i]));
                }
            }
        } else {
            __m256 vb = _mm256_set1_ps(beta);
#pragma clang loop unroll(full)
            for (int i = 0; i < MR256; i++) {
                if (i < m) {
                    float *ci = c + i * ldc;
                    _mm256_storeu_ps(ci, _mm256_fmadd_ps(va, c0[i], _mm256_mul_ps(vb, _mm256_loadu_ps(ci))));
                    _mm256_storeu_ps(ci + 8, _mm256_fmadd_ps(va, c1[i], _mm256_mul_ps(vb, _mm256_loadu_ps(ci + 8))));
                }
            }
        }
        return;
    }
    // partial columns: go through a small buffer
    float tile[MR256][NR256];
#pragma clang loop unroll(full)
    for (int i = 0; i < MR256; i++) {
        _mm256_storeu_ps(tile[i], _mm256_mul_ps(va, c0[i]));
        _mm256_storeu_ps(tile[i] + 8, _mm256_mul_ps(va, c1[i]));
    }
    for (long i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f) for (long j = 0; j < n; j++) ci[j] = tile[i][j];
        else for (long j = 0; j < n; j++) ci[j] = tile[i][j] + beta * ci[j];
    }
}

// ---- packing helper (also used by the AVX-512 path) ----

/// 8 x k8 strip transpose, one 8 x 8 block at a time. Rows r and r+4 are loaded into the two
/// 128-bit halves of one register (the lane crossing is done by the load unit), so only 16 in-lane
/// shuffles per block remain. The loop over the blocks is here rather than in the packing code,
/// which called through a function pointer for every 64 floats.
T256 void rc_transpose8_avx2(const float *src, long lds, long k8, float *dst, long ldd) {
#define RC_LOAD2(r, c) _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(src + (r) * lds + (c))), \
                                            _mm_loadu_ps(src + ((r) + 4) * lds + (c)), 1)
    for (long k0 = 0; k0 < k8; k0 += 8, src += 8, dst += 8 * ldd) {
        for (int c = 0; c < 8; c += 4) {
            // lanes: low = rows 0-3, high = rows 4-7; columns c..c+3
            __m256 r0 = RC_LOAD2(0, c), r1 = RC_LOAD2(1, c), r2 = RC_LOAD2(2, c), r3 = RC_LOAD2(3, c);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            _mm256_storeu_ps(dst + (c + 0) * ldd, _mm256_shuffle_ps(t0, t2, 0x44));
            _mm256_storeu_ps(dst + (c + 1) * ldd, _mm256_shuffle_ps(t0, t2, 0xEE));
            _mm256_storeu_ps(dst + (c + 2) * ldd, _mm256_shuffle_ps(t1, t3, 0x44));
            _mm256_storeu_ps(dst + (c + 3) * ldd, _mm256_shuffle_ps(t1, t3, 0xEE));
        }
    }
#undef RC_LOAD2
}

// ---- activations (same algorithm as the AVX-512 version) ----

T256 static inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_set1_ps(88.72f), x);
    x = _mm256_max_ps(_mm256_set1_ps(-104.0f), x);
    __m256 fn = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i n = _mm256_cvtps_epi32(fn);
    __m256i n1 = _mm256_srai_epi32(n, 1);
    __m256i n2 = _mm256_sub_epi32(n, n1);
    __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

T256 static inline __m256 sigmoid256(__m256 x) {
    __m256 signbit = _mm256_set1_ps(-0.0f);
    __m256 nax = _mm256_or_ps(x, signbit);                     // -|x|
    __m256 e = exp256(nax);
    __m256 s = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(s, _mm256_mul_ps(e, s), neg);
}

T256 static inline __m256 tanh256(__m256 x) {
    __m256 signbit = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(signbit, x);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(x, z), p, x);
    __m256 a2 = _mm256_min_ps(_mm256_set1_ps(40.0f), _mm256_add_ps(ax, ax));
    __m256 e = exp256(a2);
    __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                               _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    big = _mm256_or_ps(big, _mm256_and_ps(x, signbit));
    __m256 isSmall = _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ);
    return _mm256_blendv_ps(big, small, isSmall);
}

T256 static void sigmoid_avx2(float *x, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, sigmoid256(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float t[8] = {0};
        for (long j = i; j < n; j++) t[j - i] = x[j];
        _mm256_storeu_ps(t, sigmoid256(_mm256_loadu_ps(t)));
        for (long j = i; j < n; j++) x[j] = t[j - i];
    }
}

T256 static void tanh_avx2(float *x, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, tanh256(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float t[8] = {0};
        for (long j = i; j < n; j++) t[j - i] = x[j];
        _mm256_storeu_ps(t, tanh256(_mm256_loadu_ps(t)));
        for (long j = i; j < n; j++) x[j] = t[j - i];
    }
}

const rc_isa_desc rc_desc_avx2 = {
    RC_ISA_AVX2, "avx2", MR256, NR256, 256, MR256 * 32, 1024, kernel_avx2, sigmoid_avx2, tanh_avx2, rc_transpose8_avx2,
};
#endif
