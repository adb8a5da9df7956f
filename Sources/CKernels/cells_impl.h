// Bodies of the fused cell kernels, included once per ISA by cells.c with
//   CELL_TARGET   the function attribute (target("avx512f,...")), or empty for the portable path
//   CELL_FN(x)    the variant's name for x (e.g. x##_avx512)
// The loops are plain branch-free C over one row of H units; the compiler vectorises them for the
// ISA of the enclosing function (16 lanes for AVX-512, 8 for AVX2, SSE2/NEON for the portable
// build). The math helpers (cells_math.h) are static inline and inline into each variant.
// No include guard: meant to be included several times.

#define CELL_VEC _Pragma("clang loop vectorize(enable) interleave(enable)")

// ---- LSTM ----

// One LSTM unit's gates from its four pre-activations (biases included), stored to gi…go.
#define LSTM_FWD_GATES(PI, PF, PG, PO)                                     \
    gi[j] = cm_sigmoid(PI); gf[j] = cm_sigmoid(PF); gg[j] = cm_tanh(PG); go[j] = cm_sigmoid(PO);

// The cell and the output of a row from its stored gates: a second pass over the row. One pass
// per unit made each iteration one long dependent chain (the gates' exp, then tanh of the cell:
// ~170 cycles of latency by the instruction tables), which the core seems not to overlap well
// (no counters on this VM to confirm); with the gates in their own pass, each iteration has four
// independent chains. The same arithmetic on the same values (the gates are read back as
// stored), so the same bits. C harness (B 25, AVX-512, alternated): 8–20% less time for H 128–512;
// see README-cells.md.
CELL_TARGET static inline void CELL_FN(lstm_cell_pass)(long H, const float *restrict gi, const float *restrict gf,
                                                       const float *restrict gg, const float *restrict go,
                                                       const float *restrict cPrev, float *restrict c,
                                                       float *restrict h) {
    CELL_VEC
    for (long j = 0; j < H; j++) {
        float cell = gf[j] * cPrev[j] + gi[j] * gg[j];
        c[j] = cell;
        h[j] = go[j] * cm_tanh(cell);
    }
}

CELL_TARGET static void CELL_FN(lstm_fwd_row)(long H, float *restrict gi, float *restrict gf, float *restrict gg,
                                              float *restrict go, const float *restrict bias,
                                              const float *restrict cPrev, float *restrict c, float *restrict h) {
    const float *restrict bi = bias, *restrict bf = bias + H, *restrict bg = bias + 2 * H, *restrict bo = bias + 3 * H;
    CELL_VEC
    for (long j = 0; j < H; j++) { LSTM_FWD_GATES(gi[j] + bi[j], gf[j] + bf[j], gg[j] + bg[j], go[j] + bo[j]) }
    CELL_FN(lstm_cell_pass)(H, gi, gf, gg, go, cPrev, c, h);
}

CELL_TARGET static void CELL_FN(lstm_forward)(long B, long H, float *gates, const float *bias,
                                              const float *cPrev, float *c, float *h) {
    for (long b = 0; b < B; b++) {
        float *g = gates + b * 4 * H;
        CELL_FN(lstm_fwd_row)(H, g, g + H, g + 2 * H, g + 3 * H, bias, cPrev + b * H, c + b * H, h + b * H);
    }
}

// The input projection x and the recurrent product hh apart: pre = (x + hh) + bias. In place
// (x is the gates row) or from a separate row (a folded embedding's table).
CELL_TARGET static void CELL_FN(lstm_fwd_row_hh)(long H, float *restrict gi, float *restrict gf, float *restrict gg,
                                                 float *restrict go, const float *restrict hh, const float *restrict bias,
                                                 const float *restrict cPrev, float *restrict c, float *restrict h) {
    const float *restrict bi = bias, *restrict bf = bias + H, *restrict bg = bias + 2 * H, *restrict bo = bias + 3 * H;
    const float *restrict hi = hh, *restrict hf = hh + H, *restrict hg = hh + 2 * H, *restrict ho = hh + 3 * H;
    CELL_VEC
    for (long j = 0; j < H; j++) {
        LSTM_FWD_GATES((gi[j] + hi[j]) + bi[j], (gf[j] + hf[j]) + bf[j], (gg[j] + hg[j]) + bg[j], (go[j] + ho[j]) + bo[j])
    }
    CELL_FN(lstm_cell_pass)(H, gi, gf, gg, go, cPrev, c, h);
}

CELL_TARGET static void CELL_FN(lstm_fwd_row_x)(long H, const float *restrict x, float *restrict gi, float *restrict gf,
                                                float *restrict gg, float *restrict go, const float *restrict hh,
                                                const float *restrict bias, const float *restrict cPrev,
                                                float *restrict c, float *restrict h) {
    const float *restrict bi = bias, *restrict bf = bias + H, *restrict bg = bias + 2 * H, *restrict bo = bias + 3 * H;
    const float *restrict hi = hh, *restrict hf = hh + H, *restrict hg = hh + 2 * H, *restrict ho = hh + 3 * H;
    const float *restrict xi = x, *restrict xf = x + H, *restrict xg = x + 2 * H, *restrict xo = x + 3 * H;
    CELL_VEC
    for (long j = 0; j < H; j++) {
        LSTM_FWD_GATES((xi[j] + hi[j]) + bi[j], (xf[j] + hf[j]) + bf[j], (xg[j] + hg[j]) + bg[j], (xo[j] + ho[j]) + bo[j])
    }
    CELL_FN(lstm_cell_pass)(H, gi, gf, gg, go, cPrev, c, h);
}

CELL_TARGET static void CELL_FN(lstm_forward_x)(long B, long H, const float *x, const int32_t *rows, const float *hh,
                                                const float *bias, const float *cPrev, float *gates, float *c, float *h) {
    for (long b = 0; b < B; b++) {
        float *g = gates + b * 4 * H;
        if (x)
            CELL_FN(lstm_fwd_row_x)(H, x + (long)rows[b] * 4 * H, g, g + H, g + 2 * H, g + 3 * H, hh + b * 4 * H, bias,
                                    cPrev + b * H, c + b * H, h + b * H);
        else
            CELL_FN(lstm_fwd_row_hh)(H, g, g + H, g + 2 * H, g + 3 * H, hh + b * 4 * H, bias, cPrev + b * H, c + b * H,
                                     h + b * H);
    }
}

// One LSTM unit's backward: reads the gates GI…GO, writes dPre to DI…DO (which may be the gates).
// (One pass: tanh(c) first in a pass of its own, as the forward does with the gates, made it 3–20%
// slower in the C harness; the backward cell is bound by its memory traffic, not by latency.)
#define LSTM_BWD_UNIT(GI, GF, GG, GO, DI, DF, DG, DO)                      \
    float i = GI[j], f = GF[j], g = GG[j], o = GO[j];                      \
    float tc = cm_tanh(c[j]);                                              \
    float dh = dOut[j] + dhNext[j];                                        \
    float dc = dcNext[j] + dh * o * (1.0f - tc * tc);                      \
    DI[j] = dc * g * i * (1.0f - i);                                       \
    DF[j] = dc * cPrev[j] * f * (1.0f - f);                                \
    DG[j] = dc * i * (1.0f - g * g);                                       \
    DO[j] = dh * tc * o * (1.0f - o);                                      \
    dcNext[j] = dc * f;

CELL_TARGET static void CELL_FN(lstm_bwd_row)(long H, const float *restrict gi, const float *restrict gf,
                                              const float *restrict gg, const float *restrict go,
                                              const float *restrict cPrev, const float *restrict c,
                                              const float *restrict dOut, float *restrict dhNext,
                                              float *restrict dcNext, float *restrict di, float *restrict df,
                                              float *restrict dg, float *restrict dO) {
    CELL_VEC
    for (long j = 0; j < H; j++) { LSTM_BWD_UNIT(gi, gf, gg, go, di, df, dg, dO) }
}

/// The same with dPre written over the gates (each unit reads its four gates before writing).
CELL_TARGET static void CELL_FN(lstm_bwd_row_inplace)(long H, float *restrict gi, float *restrict gf,
                                                      float *restrict gg, float *restrict go,
                                                      const float *restrict cPrev, const float *restrict c,
                                                      const float *restrict dOut, float *restrict dhNext,
                                                      float *restrict dcNext) {
    CELL_VEC
    for (long j = 0; j < H; j++) { LSTM_BWD_UNIT(gi, gf, gg, go, gi, gf, gg, go) }
}

CELL_TARGET static void CELL_FN(lstm_backward)(long B, long H, const float *gates, const float *cPrev, const float *c,
                                               const float *dOut, long ldOut, float *dhNext, float *dcNext,
                                               float *dPre) {
    for (long b = 0; b < B; b++) {
        const float *g = gates + b * 4 * H;
        float *d = dPre + b * 4 * H;
        if (d == g)
            CELL_FN(lstm_bwd_row_inplace)(H, d, d + H, d + 2 * H, d + 3 * H, cPrev + b * H, c + b * H, dOut + b * ldOut,
                                          dhNext + b * H, dcNext + b * H);
        else
            CELL_FN(lstm_bwd_row)(H, g, g + H, g + 2 * H, g + 3 * H, cPrev + b * H, c + b * H, dOut + b * ldOut,
                                  dhNext + b * H, dcNext + b * H, d, d + H, d + 2 * H, d + 3 * H);
    }
}

// ---- GRU ----

// A GRU row's forward in two passes, as the LSTM's (see lstm_cell_pass): first r, z and the
// hidden side of n (each unit's chains independent), then n and h, whose tanh waits on r. XR, XZ,
// XN are the input-side pre-activations (without b_ih) of unit j. The same arithmetic on the same
// values as one pass, so the same bits. C harness, B 25 × H 256, AVX-512: see README-cells.md.
#define GRU_FWD_PASS1(XR, XZ)                                              \
    CELL_VEC                                                               \
    for (long j = 0; j < H; j++) {                                         \
        gr[j] = cm_sigmoid(XR + bih[j] + hr[j] + bhh[j]);                  \
        gz[j] = cm_sigmoid(XZ + bih[H + j] + hz[j] + bhh[H + j]);          \
        hn[j] = hnr[j] + bhh[2 * H + j];                                   \
    }
#define GRU_FWD_PASS2(XN)                                                  \
    CELL_VEC                                                               \
    for (long j = 0; j < H; j++) {                                         \
        float n = cm_tanh(XN + bih[2 * H + j] + gr[j] * hn[j]);            \
        gn[j] = n;                                                         \
        h[j] = (1.0f - gz[j]) * n + gz[j] * hPrev[j];                      \
    }

CELL_TARGET static void CELL_FN(gru_fwd_row)(long H, float *restrict gr, float *restrict gz, float *restrict gn,
                                             const float *restrict hh, const float *restrict bih,
                                             const float *restrict bhh, const float *restrict hPrev,
                                             float *restrict hn, float *restrict h) {
    const float *restrict hr = hh, *restrict hz = hh + H, *restrict hnr = hh + 2 * H;
    GRU_FWD_PASS1(gr[j], gz[j])
    GRU_FWD_PASS2(gn[j])
}

CELL_TARGET static void CELL_FN(gru_fwd_row_x)(long H, const float *restrict x, float *restrict gr, float *restrict gz,
                                               float *restrict gn, const float *restrict hh, const float *restrict bih,
                                               const float *restrict bhh, const float *restrict hPrev,
                                               float *restrict hn, float *restrict h) {
    const float *restrict hr = hh, *restrict hz = hh + H, *restrict hnr = hh + 2 * H;
    const float *restrict xr = x, *restrict xz = x + H, *restrict xn = x + 2 * H;
    GRU_FWD_PASS1(xr[j], xz[j])
    GRU_FWD_PASS2(xn[j])
}

CELL_TARGET static void CELL_FN(gru_forward)(long B, long H, float *gates, const float *hh, const float *bih,
                                             const float *bhh, const float *hPrev, float *hn, float *h) {
    for (long b = 0; b < B; b++) {
        float *g = gates + b * 3 * H;
        CELL_FN(gru_fwd_row)(H, g, g + H, g + 2 * H, hh + b * 3 * H, bih, bhh, hPrev + b * H, hn + b * H, h + b * H);
    }
}

CELL_TARGET static void CELL_FN(gru_forward_x)(long B, long H, const float *x, const int32_t *rows, const float *hh,
                                               const float *bih, const float *bhh, const float *hPrev, float *gates,
                                               float *hn, float *h) {
    if (!x) { CELL_FN(gru_forward)(B, H, gates, hh, bih, bhh, hPrev, hn, h); return; }
    for (long b = 0; b < B; b++) {
        float *g = gates + b * 3 * H;
        CELL_FN(gru_fwd_row_x)(H, x + (long)rows[b] * 3 * H, g, g + H, g + 2 * H, hh + b * 3 * H, bih, bhh, hPrev + b * H,
                               hn + b * H, h + b * H);
    }
}

// One GRU unit's backward: reads the gates GR, GZ, GN and HN[j], writes the hidden-side dPre
// [dr, dz, dn⊙r] to DHR, DHZ, DHN (which may be the gates) and the n part of the input-side one,
// dn, to DIN (which may be HN): the input side's r and z parts equal the hidden side's, so they are
// not written twice.
#define GRU_BWD_UNIT(GR, GZ, GN, HN, DHR, DHZ, DHN, DIN)                   \
    float r = GR[j], z = GZ[j], n = GN[j];                                 \
    float d = dOut[j] + dhNext[j];                                         \
    float dn = d * (1.0f - z) * (1.0f - n * n);                            \
    float dz = d * (hPrev[j] - n) * z * (1.0f - z);                        \
    float dr = dn * HN[j] * r * (1.0f - r);                                \
    DHR[j] = dr; DHZ[j] = dz; DHN[j] = dn * r; DIN[j] = dn;                \
    dhNext[j] = d * z;

CELL_TARGET static void CELL_FN(gru_bwd_row)(long H, const float *restrict gr, const float *restrict gz,
                                             const float *restrict gn, const float *restrict hn,
                                             const float *restrict hPrev, const float *restrict dOut,
                                             float *restrict dhNext, float *restrict dhr, float *restrict dhz,
                                             float *restrict dhn, float *restrict din) {
    CELL_VEC
    for (long j = 0; j < H; j++) { GRU_BWD_UNIT(gr, gz, gn, hn, dhr, dhz, dhn, din) }
}

/// The same consuming the cache: the hidden-side dPre written over the gates, dn over hn (each
/// element read before it is written).
CELL_TARGET static void CELL_FN(gru_bwd_row_inplace)(long H, float *restrict gr, float *restrict gz,
                                                     float *restrict gn, float *restrict hn,
                                                     const float *restrict hPrev, const float *restrict dOut,
                                                     float *restrict dhNext) {
    CELL_VEC
    for (long j = 0; j < H; j++) { GRU_BWD_UNIT(gr, gz, gn, hn, gr, gz, gn, hn) }
}

/// The in-place row with its values also added to per-row running sums: sums (3H) += [dr, dz,
/// dn⊙r] (its three parts as sr, sz, sn: one pointer with offsets H and 2H made clang guard the
/// vector loop with a runtime check that sent every row down the scalar loop) and, when WITH_N,
/// sumsN (H) += dn, while they are in registers (the same additions, in the same order, as adding
/// the row afterwards).
#define DEF_GRU_BWD_SUMS(NAME, WITH_N)                                                                   \
CELL_TARGET static void CELL_FN(NAME)(long H, float *restrict gr, float *restrict gz, float *restrict gn,  \
                                      float *restrict hn, const float *restrict hPrev,                     \
                                      const float *restrict dOut, float *restrict dhNext,                  \
                                      float *restrict sr, float *restrict sz, float *restrict sn,          \
                                      float *restrict sumsN) {                                             \
    (void)sumsN;                                                                                           \
    CELL_VEC                                                                                               \
    for (long j = 0; j < H; j++) {                                                                         \
        GRU_BWD_UNIT(gr, gz, gn, hn, gr, gz, gn, hn)                                                       \
        float dnr = dn * r;                                                                                \
        sr[j] += dr; sz[j] += dz; sn[j] += dnr;                                                            \
        if (WITH_N) sumsN[j] += dn;                                                                        \
    }                                                                                                      \
}
DEF_GRU_BWD_SUMS(gru_bwd_row_inplace_sums, 0)
DEF_GRU_BWD_SUMS(gru_bwd_row_inplace_sums_n, 1)
#undef DEF_GRU_BWD_SUMS

/// Any other aliasing (one side in place, the other not): plain pointers.
CELL_TARGET static void CELL_FN(gru_bwd_row_mixed)(long H, const float *gr, const float *gz, const float *gn,
                                                   const float *hn, const float *hPrev, const float *dOut,
                                                   float *dhNext, float *dhr, float *dhz, float *dhn, float *din) {
    for (long j = 0; j < H; j++) { GRU_BWD_UNIT(gr, gz, gn, hn, dhr, dhz, dhn, din) }
}

CELL_TARGET static void CELL_FN(gru_backward)(long B, long H, const float *gates, const float *hn, const float *hPrev,
                                              const float *dOut, long ldOut, float *dhNext, float *dPreHidden,
                                              float *dPreInputN) {
    for (long b = 0; b < B; b++) {
        const float *g = gates + b * 3 * H, *hb = hn + b * H;
        float *dh = dPreHidden + b * 3 * H, *dn = dPreInputN + b * H;
        if (dh == g && dn == hb)
            CELL_FN(gru_bwd_row_inplace)(H, dh, dh + H, dh + 2 * H, dn, hPrev + b * H, dOut + b * ldOut, dhNext + b * H);
        else if (dh != g && dn != hb)
            CELL_FN(gru_bwd_row)(H, g, g + H, g + 2 * H, hb, hPrev + b * H, dOut + b * ldOut, dhNext + b * H,
                                 dh, dh + H, dh + 2 * H, dn);
        else
            CELL_FN(gru_bwd_row_mixed)(H, g, g + H, g + 2 * H, hb, hPrev + b * H, dOut + b * ldOut, dhNext + b * H,
                                       dh, dh + H, dh + 2 * H, dn);
    }
}

// ---- Elman RNN ----

// relu as PyTorch computes it: NaN stays NaN (`v > 0 ? v : 0` would make it 0), and its gradient
// passes where the output is not ≤ 0 (threshold_backward), NaN included.
#ifndef RC_RELU
#define RC_RELU(v) (((v) > 0.0f || (v) != (v)) ? (v) : 0.0f)
#define RC_RELU_PASSES(out) (!((out) <= 0.0f))
#endif

CELL_TARGET static void CELL_FN(rnn_forward)(long B, long H, float *h, const float *bias, int relu) {
    for (long b = 0; b < B; b++) {
        float *restrict row = h + b * H;
        const float *restrict bs = bias;
        if (relu) {
            CELL_VEC
            for (long j = 0; j < H; j++) { float v = row[j] + bs[j]; row[j] = RC_RELU(v); }
        } else {
            CELL_VEC
            for (long j = 0; j < H; j++) row[j] = cm_tanh(row[j] + bs[j]);
        }
    }
}

// h = act((x + s) + bias) with s = h[t-1]·W_hhᵀ: x is the output row itself (in place, the input
// projection stored there) or a separate row (a folded embedding's table). X is x's j-th value.
#define RNN_FWD_LOOPS(X)                                                                       \
    if (relu) {                                                                                \
        CELL_VEC                                                                               \
        for (long j = 0; j < H; j++) { float v = (X + s[j]) + bs[j]; row[j] = RC_RELU(v); } \
    } else {                                                                                   \
        CELL_VEC                                                                               \
        for (long j = 0; j < H; j++) row[j] = cm_tanh((X + s[j]) + bs[j]);                     \
    }

CELL_TARGET static void CELL_FN(rnn_fwd_row_x)(long H, const float *restrict x, const float *restrict s,
                                               const float *restrict bs, float *restrict row, int relu) {
    RNN_FWD_LOOPS(x[j])
}

CELL_TARGET static void CELL_FN(rnn_fwd_row_s)(long H, const float *restrict s, const float *restrict bs,
                                               float *restrict row, int relu) {
    RNN_FWD_LOOPS(row[j])
}

CELL_TARGET static void CELL_FN(rnn_forward_x)(long B, long H, const float *x, const int32_t *rows, const float *s,
                                               const float *bias, float *h, int relu) {
    for (long b = 0; b < B; b++) {
        if (x) CELL_FN(rnn_fwd_row_x)(H, x + (long)rows[b] * H, s + b * H, bias, h + b * H, relu);
        else CELL_FN(rnn_fwd_row_s)(H, s + b * H, bias, h + b * H, relu);
    }
}

// dPre = (dOut + dhNext) ⊙ act'(·), dhNext only read; DOUT and DPRE name the rows (the same row
// in place: each element is read before it is written). SUM(j, v) adds the new dPre[j] into a
// running sum (or does nothing).
#define RNN_BWD_LOOPS_SUM(DOUT, DPRE, SUM)                                                     \
    if (relu) {                                                                                \
        CELL_VEC                                                                               \
        for (long j = 0; j < H; j++) {                                                         \
            float d = DOUT[j] + dhNext[j];                                                     \
            float p = RC_RELU_PASSES(h[j]) ? d : 0.0f;                                         \
            DPRE[j] = p;                                                                       \
            SUM(j, p);                                                                         \
        }                                                                                      \
    } else {                                                                                   \
        CELL_VEC                                                                               \
        for (long j = 0; j < H; j++) {                                                         \
            float d = DOUT[j] + dhNext[j];                                                     \
            float p = d * (1.0f - h[j] * h[j]);                                                \
            DPRE[j] = p;                                                                       \
            SUM(j, p);                                                                         \
        }                                                                                      \
    }
#define RNN_NO_SUM(j, p) ((void)0)
#define RNN_ADD_SUM(j, p) (sums[j] = sums[j] + (p))
#define RNN_BWD_LOOPS(DOUT, DPRE) RNN_BWD_LOOPS_SUM(DOUT, DPRE, RNN_NO_SUM)

CELL_TARGET static void CELL_FN(rnn_bwd_row)(long H, const float *restrict h, const float *restrict dOut,
                                             float *restrict dhNext, float *restrict dPre, int relu) {
    RNN_BWD_LOOPS(dOut, dPre)
}

/// The same with dPre written over dOut (one row, `io`).
CELL_TARGET static void CELL_FN(rnn_bwd_row_inplace)(long H, const float *restrict h, float *restrict io,
                                                     float *restrict dhNext, int relu) {
    RNN_BWD_LOOPS(io, io)
}

CELL_TARGET static void CELL_FN(rnn_backward)(long B, long H, const float *h, const float *dOut, long ldOut,
                                              float *dhNext, float *dPre, int relu) {
    for (long b = 0; b < B; b++) {
        if (dPre + b * H == dOut + b * ldOut)
            CELL_FN(rnn_bwd_row_inplace)(H, h + b * H, dPre + b * H, dhNext + b * H, relu);
        else
            CELL_FN(rnn_bwd_row)(H, h + b * H, dOut + b * ldOut, dhNext + b * H, dPre + b * H, relu);
    }
}

/// rnn_bwd_row and rnn_bwd_row_inplace with each new dPre element also added into sums[j].
CELL_TARGET static void CELL_FN(rnn_bwd_row_sums)(long H, const float *restrict h, const float *restrict dOut,
                                                  float *restrict dhNext, float *restrict dPre, float *restrict sums,
                                                  int relu) {
    RNN_BWD_LOOPS_SUM(dOut, dPre, RNN_ADD_SUM)
}

CELL_TARGET static void CELL_FN(rnn_bwd_row_inplace_sums)(long H, const float *restrict h, float *restrict io,
                                                          float *restrict dhNext, float *restrict sums, int relu) {
    RNN_BWD_LOOPS_SUM(io, io, RNN_ADD_SUM)
}

/// rnn_backward, and each row's dPre added into rowSums (B,H) in the same pass, while in registers.
CELL_TARGET static void CELL_FN(rnn_backward_sums)(long B, long H, const float *h, const float *dOut, long ldOut,
                                                   float *dhNext, float *dPre, int relu, float *rowSums) {
    for (long b = 0; b < B; b++) {
        if (dPre + b * H == dOut + b * ldOut)
            CELL_FN(rnn_bwd_row_inplace_sums)(H, h + b * H, dPre + b * H, dhNext + b * H, rowSums + b * H, relu);
        else
            CELL_FN(rnn_bwd_row_sums)(H, h + b * H, dOut + b * ldOut, dhNext + b * H, dPre + b * H, rowSums + b * H,
                                      relu);
    }
}

// ---- softmax cross-entropy ----

// The row kernels read element v of the row through Z(v): z[v], or z[v] + b[v] for logits that
// lack their bias (the same single rounding as a product added onto a bias-filled row).
#define ROW_MAX_BODY(Z)                                                                                 \
    /* 16 running maxima (one per lane), combined at the end: vectorisable without -ffast-math. */      \
    float part[16];                                                                                     \
    for (int l = 0; l < 16; l++) part[l] = Z(0);                                                        \
    long v = 0;                                                                                         \
    for (; v + 16 <= V; v += 16) {                                                                      \
        CELL_VEC                                                                                        \
        for (int l = 0; l < 16; l++) part[l] = Z(v + l) > part[l] ? Z(v + l) : part[l];                 \
    }                                                                                                   \
    /* The ragged tail as the row's last 16 elements, overlapping the ones already seen (harmless       \
       for a maximum), or element by element in a row shorter than 16; the lanes combined as a          \
       tree. A row's time went to its chains of dependent operations (V = 65: 99 ns a row with a        \
       scalar tail and a 15-step chain here and in row_exp_sum; 2500 rows, AVX-512, C harness). */      \
    if (v < V && V >= 16) {                                                                             \
        CELL_VEC                                                                                        \
        for (int l = 0; l < 16; l++) part[l] = Z(V - 16 + l) > part[l] ? Z(V - 16 + l) : part[l];       \
    } else {                                                                                            \
        for (int l = 0; v + l < V; l++) part[l] = Z(v + l) > part[l] ? Z(v + l) : part[l];              \
    }                                                                                                   \
    for (int w = 8; w >= 1; w /= 2)                                                                     \
        for (int l = 0; l < w; l++) part[l] = part[l + w] > part[l] ? part[l + w] : part[l];            \
    return part[0];

#define ROW_EXP_SUM_BODY(Z)                                                                             \
    /* Per-lane partial sums (a fixed 16-lane layout on every ISA) keep the sum vectorisable            \
       without -ffast-math, and make the result independent of the vector width. */                     \
    float part[16] = {0};                                                                               \
    long v = 0;                                                                                         \
    for (; v + 16 <= V; v += 16) {                                                                      \
        CELL_VEC                                                                                        \
        for (int l = 0; l < 16; l++) {                                                                  \
            float x = cm_exp_nonpositive(Z(v + l) - m);                                                 \
            e[v + l] = x;                                                                               \
            part[l] += x;                                                                               \
        }                                                                                               \
    }                                                                                                   \
    if (v < V && V >= 16) {                                                                             \
        /* The tail as the row's last 16 elements: lanes holding elements already summed add +0.0       \
           (which leaves their partial sums as they are) and store the same exp again. */               \
        const long o = V - 16;                                                                          \
        CELL_VEC                                                                                        \
        for (int l = 0; l < 16; l++) {                                                                  \
            float x = cm_exp_nonpositive(Z(o + l) - m);                                                 \
            e[o + l] = x;                                                                               \
            part[l] += o + l >= v ? x : 0.0f;                                                           \
        }                                                                                               \
    } else {                                                                                            \
        for (int l = 0; v + l < V; l++) {                                                               \
            float x = cm_exp_nonpositive(Z(v + l) - m);                                                 \
            e[v + l] = x;                                                                               \
            part[l] += x;                                                                               \
        }                                                                                               \
    }                                                                                                   \
    /* Lanes added as a tree (l + 8 into l, then + 4, + 2, + 1): the same order on every ISA. */        \
    for (int w = 8; w >= 1; w /= 2)                                                                     \
        for (int l = 0; l < w; l++) part[l] += part[l + w];                                             \
    return part[0];

#define Z_PLAIN(v) z[v]
#define Z_BIASED(v) (z[v] + b[v])

CELL_TARGET static float CELL_FN(row_max)(long V, const float *restrict z) { ROW_MAX_BODY(Z_PLAIN) }
CELL_TARGET static float CELL_FN(row_max_b)(long V, const float *restrict z, const float *restrict b) {
    ROW_MAX_BODY(Z_BIASED)
}

CELL_TARGET static float CELL_FN(row_exp_sum)(long V, const float *restrict z, float m, float *restrict e) {
    ROW_EXP_SUM_BODY(Z_PLAIN)
}
CELL_TARGET static float CELL_FN(row_exp_sum_b)(long V, const float *restrict z, const float *restrict b, float m,
                                               float *restrict e) {
    ROW_EXP_SUM_BODY(Z_BIASED)
}

// One row of the softmax cross-entropy: writes d (V) and returns the row's loss in double, 0 for
// an ignored target (whose d row is zero).
CELL_TARGET static inline double CELL_FN(xent_row)(long V, const float *restrict z, int32_t y, int32_t ignore,
                                                   float scale, float *restrict d) {
    if (y == ignore) {
        for (long v = 0; v < V; v++) d[v] = 0.0f;
        return 0.0;
    }
    float m = CELL_FN(row_max)(V, z);
    float sum = CELL_FN(row_exp_sum)(V, z, m, d);  // d holds exp(z − m) for now
    float logSum = logf(sum);
    double loss = (double)logSum + (double)m - (double)z[y];
    float k = scale / sum;
    CELL_VEC
    for (long v = 0; v < V; v++) d[v] *= k;
    d[y] -= scale;
    return loss;
}

// xent_row on a row that lacks its bias b, also adding the row's gradient into db (the same
// d bits as xent_row on the biased row: d[y]'s subtraction comes after its scaling there too).
CELL_TARGET static inline double CELL_FN(xent_row_b)(long V, const float *restrict z, const float *restrict b, int32_t y,
                                                     int32_t ignore, float scale, float *restrict d, float *restrict db) {
    if (y == ignore) {
        for (long v = 0; v < V; v++) d[v] = 0.0f;
        return 0.0;
    }
    float m = CELL_FN(row_max_b)(V, z, b);
    float sum = CELL_FN(row_exp_sum_b)(V, z, b, m, d);  // d holds exp(z + b − m) for now
    float logSum = logf(sum);
    double loss = (double)logSum + (double)m - (double)(z[y] + b[y]);
    float k = scale / sum;
    CELL_VEC
    for (long v = 0; v < V; v++) {
        float g = d[v] * k;
        g = v == y ? g - scale : g;
        d[v] = g;
        db[v] += g;
    }
    return loss;
}

// The rows' losses are added in row order (an ignored row adds +0.0, which leaves the sum as it is).
CELL_TARGET static double CELL_FN(softmax_xent)(long N, long V, const float *logits, const int32_t *targets,
                                                int32_t ignore, float scale, float *dLogits) {
    double total = 0.0;
    for (long n = 0; n < N; n++) total += CELL_FN(xent_row)(V, logits + n * V, targets[n], ignore, scale, dLogits + n * V);
    return total;
}

CELL_TARGET static void CELL_FN(softmax_xent_rows)(long N, long V, const float *logits, const int32_t *targets,
                                                   int32_t ignore, float scale, float *dLogits, double *rowLoss) {
    for (long n = 0; n < N; n++) rowLoss[n] = CELL_FN(xent_row)(V, logits + n * V, targets[n], ignore, scale, dLogits + n * V);
}

// dst[r·ld + j] = row[j]: a bias copied into every row of a product's output before it is added to.
CELL_TARGET static void CELL_FN(fill_rows)(long rows, long cols, const float *restrict row, float *restrict dst, long ld) {
    for (long r = 0; r < rows; r++) {
        float *restrict out = dst + r * ld;
        CELL_VEC
        for (long j = 0; j < cols; j++) out[j] = row[j];
    }
}

CELL_TARGET static void CELL_FN(add_rows)(long rows, long cols, const float *X, long ldx, float *y) {
    for (long r = 0; r < rows; r++) {
        const float *restrict x = X + r * ldx;
        float *restrict out = y;
        CELL_VEC
        for (long j = 0; j < cols; j++) out[j] += x[j];
    }
}

// Y[ids[r]] += X[r] for r in order: add_rows of one row each, in one call (a folded embedding's
// per-token sums of dPre ran one dispatched call per row).
CELL_TARGET static void CELL_FN(scatter_add_rows)(long rows, long cols, const float *X, long ldx, const int32_t *ids,
                                                  float *Y, long ldy) {
    for (long r = 0; r < rows; r++) CELL_FN(add_rows)(1, cols, X + r * ldx, ldx, Y + (long)ids[r] * ldy);
}

// softmax_xent_rows on logits that lack their bias (xent_row_b), each row's gradient added into
// dBias (rows in order).
CELL_TARGET static void CELL_FN(softmax_xent_bias_rows)(long N, long V, const float *logits, const float *bias,
                                                        const int32_t *targets, int32_t ignore, float scale,
                                                        float *dLogits, double *rowLoss, float *dBias) {
    for (long n = 0; n < N; n++)
        rowLoss[n] = CELL_FN(xent_row_b)(V, logits + n * V, bias, targets[n], ignore, scale, dLogits + n * V, dBias);
}

// Σ x² in double over 16 fixed lanes (lane l takes the elements ≡ l mod 16), the lanes added in
// order at the end: the same sum on every ISA (each square of a float is exact in double, so
// contraction cannot change it), and 16 independent chains instead of one.
CELL_TARGET static double CELL_FN(sum_squares)(long n, const float *restrict x) {
    double part[16] = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        CELL_VEC
        for (int l = 0; l < 16; l++) part[l] += (double)x[i + l] * (double)x[i + l];
    }
    for (int l = 0; i + l < n; l++) part[l] += (double)x[i + l] * (double)x[i + l];
    double sum = 0;
    for (int l = 0; l < 16; l++) sum += part[l];
    return sum;
}

// Adam's update of n elements (see rc_adam in ckernels_cells.h); each element's arithmetic is the
// same whatever n, so a split into ranges gives the same results.
CELL_TARGET static void CELL_FN(adam)(long n, float *restrict w, const float *restrict g, float *restrict m,
                                      float *restrict v, const float *restrict hp) {
#pragma clang fp contract(off)   // the same roundings on every ISA path (no fused multiply-adds)
    const float w1 = hp[0], beta2 = hp[1], w2 = hp[2], bc2 = hp[3], eps = hp[4], step = hp[5], wd = hp[6];
    const float tiny = hp[7];   // FLT_MIN: smaller moments are flushed to zero; 0: none is
    if (w1 < 0.5f) {
        CELL_VEC
        for (long j = 0; j < n; j++) {
            float gj = wd != 0.0f ? g[j] + wd * w[j] : g[j];
            float mj = m[j] + w1 * (gj - m[j]);
            float vj = v[j] * beta2 + w2 * gj * gj;
            mj = fabsf(mj) < tiny ? 0.0f : mj;
            vj = vj < tiny ? 0.0f : vj;
            m[j] = mj; v[j] = vj;
            w[j] = w[j] + (-step) * mj / (sqrtf(vj) / bc2 + eps);
        }
    } else {
        CELL_VEC
        for (long j = 0; j < n; j++) {
            float gj = wd != 0.0f ? g[j] + wd * w[j] : g[j];
            float mj = gj - (gj - m[j]) * (1.0f - w1);
            float vj = v[j] * beta2 + w2 * gj * gj;
            mj = fabsf(mj) < tiny ? 0.0f : mj;
            vj = vj < tiny ? 0.0f : vj;
            m[j] = mj; v[j] = vj;
            w[j] = w[j] + (-step) * mj / (sqrtf(vj) / bc2 + eps);
        }
    }
}

/// gru_backward, then each row's hidden-side dPre added into rowSums (B,3H) and, if rowSumsN is not
/// NULL, its dn into rowSumsN (B,H); fused into the cell when both sides are in place.
CELL_TARGET static void CELL_FN(gru_backward_sums)(long B, long H, const float *gates, const float *hn,
                                                   const float *hPrev, const float *dOut, long ldOut, float *dhNext,
                                                   float *dPreHidden, float *dPreInputN, float *rowSums,
                                                   float *rowSumsN) {
    for (long b = 0; b < B; b++) {
        const float *g = gates + b * 3 * H, *hb = hn + b * H;
        float *dh = dPreHidden + b * 3 * H, *dn = dPreInputN + b * H;
        float *sums = rowSums + b * 3 * H, *sumsN = rowSumsN ? rowSumsN + b * H : NULL;
        if (dh == g && dn == hb) {
            if (sumsN)
                CELL_FN(gru_bwd_row_inplace_sums_n)(H, dh, dh + H, dh + 2 * H, dn, hPrev + b * H, dOut + b * ldOut,
                                                    dhNext + b * H, sums, sums + H, sums + 2 * H, sumsN);
            else
                CELL_FN(gru_bwd_row_inplace_sums)(H, dh, dh + H, dh + 2 * H, dn, hPrev + b * H, dOut + b * ldOut,
                                                  dhNext + b * H, sums, sums + H, sums + 2 * H, NULL);
        } else {
            CELL_FN(gru_backward)(1, H, g, hb, hPrev + b * H, dOut + b * ldOut, ldOut, dhNext + b * H, dh, dn);
            CELL_FN(add_rows)(1, 3 * H, dh, 3 * H, sums);
            if (sumsN) CELL_FN(add_rows)(1, H, dn, H, sumsN);
        }
    }
}

static const rc_cells_table CELL_FN(cells_table) = {
    CELL_FN(lstm_forward), CELL_FN(lstm_backward), CELL_FN(gru_forward), CELL_FN(gru_backward),
    CELL_FN(rnn_forward), CELL_FN(rnn_backward), CELL_FN(softmax_xent), CELL_FN(add_rows), CELL_FN(adam),
    CELL_FN(lstm_forward_x), CELL_FN(gru_forward_x), CELL_FN(rnn_forward_x), CELL_FN(sum_squares), CELL_FN(scatter_add_rows),
    CELL_FN(softmax_xent_rows), CELL_FN(fill_rows), CELL_FN(gru_backward_sums), CELL_FN(rnn_backward_sums),
    CELL_FN(softmax_xent_bias_rows),
};

#undef CELL_VEC
#undef ROW_MAX_BODY
#undef ROW_EXP_SUM_BODY
#undef Z_PLAIN
#undef Z_BIASED
#undef LSTM_FWD_GATES
#undef RNN_FWD_LOOPS
#undef RNN_BWD_LOOPS
#undef RNN_BWD_LOOPS_SUM
#undef RNN_NO_SUM
#undef RNN_ADD_SUM
#undef GRU_FWD_PASS1
#undef GRU_FWD_PASS2
#undef LSTM_BWD_UNIT
#undef GRU_BWD_UNIT
