// Fused pointwise kernels of the recurrent cells and the softmax cross-entropy, with run-time
// ISA dispatch. The bodies live in cells_impl.h and are compiled three times: for AVX-512, for
// AVX2+FMA (x86-64 only, per-function target attributes, no global flags) and portably.
// See include/ckernels_cells.h for the contracts and README-cells.md for the measurements.
#include "ckernels.h"
#include "ckernels_cells.h"
#include "cells_math.h"
#include <math.h>
#include <string.h>
#include <strings.h>

typedef struct {
    void (*lstm_forward)(long, long, float *, const float *, const float *, float *, float *);
    void (*lstm_backward)(long, long, const float *, const float *, const float *, const float *, long, float *,
                          float *, float *);
    void (*gru_forward)(long, long, float *, const float *, const float *, const float *, const float *, float *,
                        float *);
    void (*gru_backward)(long, long, const float *, const float *, const float *, const float *, long, float *,
                         float *, float *);
    void (*rnn_forward)(long, long, float *, const float *, int);
    void (*rnn_backward)(long, long, const float *, const float *, long, float *, float *, int);
    double (*softmax_xent)(long, long, const float *, const int32_t *, int32_t, float, float *);
    void (*add_rows)(long, long, const float *, long, float *);
    void (*adam)(long, float *, const float *, float *, float *, const float *);
    void (*lstm_forward_x)(long, long, const float *, const int32_t *, const float *, const float *, const float *,
                           float *, float *, float *);
    void (*gru_forward_x)(long, long, const float *, const int32_t *, const float *, const float *, const float *,
                          const float *, float *, float *, float *);
    void (*rnn_forward_x)(long, long, const float *, const int32_t *, const float *, const float *, float *, int);
    double (*sum_squares)(long, const float *);
    void (*scatter_add_rows)(long, long, const float *, long, const int32_t *, float *, long);
    void (*softmax_xent_rows)(long, long, const float *, const int32_t *, int32_t, float, float *, double *);
    void (*fill_rows)(long, long, const float *, float *, long);
    void (*gru_backward_sums)(long, long, const float *, const float *, const float *, const float *, long, float *,
                              float *, float *, float *, float *);
    void (*rnn_backward_sums)(long, long, const float *, const float *, long, float *, float *, int, float *);
    void (*softmax_xent_bias_rows)(long, long, const float *, const float *, const int32_t *, int32_t, float, float *,
                                   double *, float *);
} rc_cells_table;

#define CELL_TARGET
#define CELL_FN(x) x##_generic
#include "cells_impl.h"
#undef CELL_TARGET
#undef CELL_FN

#if defined(__x86_64__)
#define CELL_TARGET __attribute__((target("avx2,fma")))
#define CELL_FN(x) x##_avx2
#include "cells_impl.h"
#undef CELL_TARGET
#undef CELL_FN

#define CELL_TARGET __attribute__((target("avx512f,avx512vl,avx512dq,fma")))
#define CELL_FN(x) x##_avx512
#include "cells_impl.h"
#undef CELL_TARGET
#undef CELL_FN
#endif

static const rc_cells_table *table_named(const char *name) {
#if defined(__x86_64__)
    if (name && strcasecmp(name, "avx512") == 0) return &cells_table_avx512;
    if (name && strcasecmp(name, "avx2") == 0) return &cells_table_avx2;
#endif
    (void)name;
    return &cells_table_generic;
}

static __thread const rc_cells_table *tl_override;
static __thread const char *tl_override_name;

// rc_kernel_isa() already honours CPU detection, RECURRENT_ISA and rc_force_isa (it returns one
// of three string constants, so the cache compares pointers).
static const rc_cells_table *current(void) {
    if (tl_override) return tl_override;
    static _Atomic(const char *) last_name;
    static _Atomic(const rc_cells_table *) last_table;
    const char *name = rc_kernel_isa();
    if (name == last_name) { const rc_cells_table *t = last_table; if (t) return t; }
    const rc_cells_table *t = table_named(name);
    last_table = t;
    last_name = name;
    return table_named(name);
}

int rc_cells_set_thread_isa(const char *isa) {
    if (isa == NULL) { tl_override = NULL; tl_override_name = NULL; return 0; }
    if (!rc_isa_supported(isa)) return -1;
    tl_override = table_named(isa);
    tl_override_name = tl_override == &cells_table_generic ? "generic"
#if defined(__x86_64__)
        : tl_override == &cells_table_avx2 ? "avx2" : "avx512";
#else
        : "generic";
#endif
    return 0;
}

const char *rc_cells_isa(void) { return tl_override ? tl_override_name : rc_kernel_isa(); }

void rc_lstm_forward(long B, long H, float *gates, const float *bias, const float *cPrev, float *c, float *h) {
    if (B > 0 && H > 0) current()->lstm_forward(B, H, gates, bias, cPrev, c, h);
}

void rc_lstm_forward_x(long B, long H, const float *x, const int32_t *rows, const float *hh, const float *bias,
                       const float *cPrev, float *gates, float *c, float *h) {
    if (B > 0 && H > 0) current()->lstm_forward_x(B, H, x, rows, hh, bias, cPrev, gates, c, h);
}

void rc_gru_forward_x(long B, long H, const float *x, const int32_t *rows, const float *hh, const float *bih,
                      const float *bhh, const float *hPrev, float *gates, float *hn, float *h) {
    if (B > 0 && H > 0) current()->gru_forward_x(B, H, x, rows, hh, bih, bhh, hPrev, gates, hn, h);
}

void rc_rnn_forward_x(long B, long H, const float *x, const int32_t *rows, const float *s, const float *bias, float *h,
                      int relu) {
    if (B > 0 && H > 0) current()->rnn_forward_x(B, H, x, rows, s, bias, h, relu);
}

void rc_lstm_backward(long B, long H, const float *gates, const float *cPrev, const float *c,
                      const float *dOut, long ldOut, float *dhNext, float *dcNext, float *dPre) {
    if (B > 0 && H > 0) current()->lstm_backward(B, H, gates, cPrev, c, dOut, ldOut, dhNext, dcNext, dPre);
}

void rc_gru_forward(long B, long H, float *gates, const float *hh, const float *bih, const float *bhh,
                    const float *hPrev, float *hn, float *h) {
    if (B > 0 && H > 0) current()->gru_forward(B, H, gates, hh, bih, bhh, hPrev, hn, h);
}

void rc_gru_backward(long B, long H, const float *gates, const float *hn, const float *hPrev,
                     const float *dOut, long ldOut, float *dhNext, float *dPreHidden, float *dPreInputN) {
    if (B > 0 && H > 0) current()->gru_backward(B, H, gates, hn, hPrev, dOut, ldOut, dhNext, dPreHidden, dPreInputN);
}

void rc_gru_backward_sums(long B, long H, const float *gates, const float *hn, const float *hPrev,
                          const float *dOut, long ldOut, float *dhNext, float *dPreHidden, float *dPreInputN,
                          float *rowSums, float *rowSumsN) {
    if (B > 0 && H > 0)
        current()->gru_backward_sums(B, H, gates, hn, hPrev, dOut, ldOut, dhNext, dPreHidden, dPreInputN, rowSums, rowSumsN);
}

void rc_rnn_forward(long B, long H, float *h, const float *bias, int relu) {
    if (B > 0 && H > 0) current()->rnn_forward(B, H, h, bias, relu);
}

void rc_rnn_backward(long B, long H, const float *h, const float *dOut, long ldOut, float *dhNext,
                     float *dPre, int relu) {
    if (B > 0 && H > 0) current()->rnn_backward(B, H, h, dOut, ldOut, dhNext, dPre, relu);
}

void rc_rnn_backward_sums(long B, long H, const float *h, const float *dOut, long ldOut, float *dhNext,
                          float *dPre, int relu, float *rowSums) {
    if (B > 0 && H > 0) current()->rnn_backward_sums(B, H, h, dOut, ldOut, dhNext, dPre, relu, rowSums);
}

double rc_softmax_xent(long N, long V, const float *logits, const int32_t *targets, int32_t ignore,
                       float scale, float *dLogits) {
    if (N <= 0 || V <= 0) return 0.0;
    return current()->softmax_xent(N, V, logits, targets, ignore, scale, dLogits);
}

void rc_softmax_xent_rows(long N, long V, const float *logits, const int32_t *targets, int32_t ignore, float scale,
                          float *dLogits, double *rowLoss) {
    if (N > 0 && V > 0) current()->softmax_xent_rows(N, V, logits, targets, ignore, scale, dLogits, rowLoss);
}

void rc_softmax_xent_bias_rows(long N, long V, const float *logits, const float *bias, const int32_t *targets, int32_t ignore,
                               float scale, float *dLogits, double *rowLoss, float *dBias) {
    if (N > 0 && V > 0) current()->softmax_xent_bias_rows(N, V, logits, bias, targets, ignore, scale, dLogits, rowLoss, dBias);
}

void rc_fill_rows(long rows, long cols, const float *row, float *dst, long ld) {
    if (rows > 0 && cols > 0) current()->fill_rows(rows, cols, row, dst, ld);
}

void rc_add_rows(long rows, long cols, const float *X, long ldx, float *y) {
    if (rows > 0 && cols > 0) current()->add_rows(rows, cols, X, ldx, y);
}

void rc_scatter_add_rows(long rows, long cols, const float *X, long ldx, const int32_t *ids, float *Y, long ldy) {
    if (rows > 0 && cols > 0) current()->scatter_add_rows(rows, cols, X, ldx, ids, Y, ldy);
}

void rc_adam(long n, float *w, const float *g, float *m, float *v, const float *hyper) {
    if (n > 0) current()->adam(n, w, g, m, v, hyper);
}

double rc_sum_squares(long n, const float *x) {
    return n > 0 ? current()->sum_squares(n, x) : 0.0;
}
