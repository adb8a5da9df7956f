// An FMA loop: the machine's multiply-add ceiling as the benchmark measures it (`recurrent bench
// --mode peak`). Independent chains (more than FMA latency × ports), registers only, for the ISA
// path in use, so the figure is what this process can reach, not a data-sheet number.
#include "ckernels.h"
#include "internal.h"
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static volatile float sink;

#if defined(__x86_64__)
__attribute__((target("avx512f,fma"))) static double fma_avx512(long n) {
    __m512 a[24];
    for (int i = 0; i < 24; i++) a[i] = _mm512_set1_ps(0.001f * (float)i);
    __m512 x = _mm512_set1_ps(0.9999f), y = _mm512_set1_ps(0.0001f);
    for (long k = 0; k < n; k++) {
#pragma clang loop unroll(full)
        for (int i = 0; i < 24; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
    }
    __m512 s = a[0];
    for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, a[i]);
    sink = _mm512_reduce_add_ps(s);
    return (double)n * 24 * 16 * 2;
}

__attribute__((target("avx2,fma"))) static double fma_avx2(long n) {
    __m256 a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps(0.001f * (float)i);
    __m256 x = _mm256_set1_ps(0.9999f), y = _mm256_set1_ps(0.0001f);
    for (long k = 0; k < n; k++) {
#pragma clang loop unroll(full)
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
    }
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    float v[8];
    _mm256_storeu_ps(v, s);
    sink = v[0] + v[7];
    return (double)n * 12 * 8 * 2;
}
#endif

static double fma_generic(long n) {
    float a[16];
    for (int i = 0; i < 16; i++) a[i] = 0.001f * (float)i;
    for (long k = 0; k < n; k++)
        for (int i = 0; i < 16; i++) a[i] = a[i] * 0.9999f + 0.0001f;
    float s = 0;
    for (int i = 0; i < 16; i++) s += a[i];
    sink = s;
    return (double)n * 16 * 2;
}

double rc_fma_loop(long n) {
#if defined(__x86_64__)
    int isa = rc_current_desc()->isa;
    if (isa == RC_ISA_AVX512) return fma_avx512(n);
    if (isa == RC_ISA_AVX2) return fma_avx2(n);
#endif
    return fma_generic(n);
}
