#ifndef RECURRENT_CKERNELS_CELLS_H
#define RECURRENT_CKERNELS_CELLS_H
// Fused pointwise kernels of the recurrent cells and the softmax cross-entropy.
//
// One call covers one time step of B rows: each kernel makes a single pass over the gates, with
// vectorised exp/sigmoid/tanh. The matrix products (x·W_ihᵀ, h·W_hhᵀ, dPre·W_hh) stay in rc_sgemm.
// Every kernel has an AVX-512, an AVX2+FMA and a portable C variant, picked at run time like
// rc_sgemm (same CPU detection, RECURRENT_ISA and rc_force_isa, see rc_kernel_isa()); a thread
// can override the choice with rc_cells_set_thread_isa (test hook).
//
// Shapes: B rows (batch), H hidden units; gate blocks of H in PyTorch's order (LSTM i,f,g,o;
// GRU r,z,n). All row-major and contiguous unless a row stride is given. Outputs never alias inputs
// unless stated ("in/out"). Activations: σ(x) = 1/(1+e^-x) and tanh with ~2e-7 absolute error.
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// LSTM step, forward.
///
///     i, f, g, o = σ(p_i + b_i), σ(p_f + b_f), tanh(p_g + b_g), σ(p_o + b_o)     (p = gates in)
///     c = f⊙cPrev + i⊙g;   h = o⊙tanh(c)
///
/// gates (B,4H) in/out: pre-activations without bias in, activated i,f,g,o out (what backward reads);
/// bias (4H) = b_ih + b_hh; cPrev (B,H); c (B,H) out; h (B,H) out.
void rc_lstm_forward(long B, long H, float *gates, const float *bias, const float *cPrev, float *c, float *h);

/// LSTM step, forward, with the recurrent product apart from the input projection (what the
/// time loop uses: the per-step product writes hh without reading the projection back):
///
///     pre = (x_b + hh_b) + bias;  then as rc_lstm_forward
///
/// x_b, the row's input projection (4H, no bias): with x == NULL the gates row itself (in/out,
/// as in rc_lstm_forward), else x + rows[b]·4H (e.g. a folded embedding's table, rows = token
/// ids); hh (B,4H) = hPrev·W_hhᵀ; gates (B,4H) out: activated i,f,g,o. (x + hh) is rounded once,
/// as the product's accumulation into the projection would be.
void rc_lstm_forward_x(long B, long H, const float *x, const int32_t *rows, const float *hh, const float *bias,
                       const float *cPrev, float *gates, float *c, float *h);

/// LSTM step, backward (tanh(c) is recomputed rather than cached).
///
///     dh = dOut + dhNext;  dc = dcNext + dh⊙o⊙(1 − tanh²c)
///     dPre = [dc⊙g⊙i(1−i), dc⊙cPrev⊙f(1−f), dc⊙i⊙(1−g²), dh⊙tanh(c)⊙o(1−o)];  dcNext ← dc⊙f
///
/// gates (B,4H) activated; cPrev, c (B,H); dOut: row b at dOut + b·ldOut (H values);
/// dhNext (B,H) in: gradient on h from the step after, only read (h[t−1] reaches h[t] through
/// the gates alone, so the caller's product then writes dPre·W_hh over it, beta 0);
/// dcNext (B,H) in/out: gradient on c in, on cPrev out; dPre (B,4H) out: either apart from gates
/// or equal to gates (then written over them; the same values).
void rc_lstm_backward(long B, long H, const float *gates, const float *cPrev, const float *c,
                      const float *dOut, long ldOut, float *dhNext, float *dcNext, float *dPre);

/// GRU step, forward (b_hn stays inside the reset product, as PyTorch).
///
///     r = σ(xr + b_ir + hr + b_hr);  z = σ(xz + b_iz + hz + b_hz)
///     hn = hn_raw + b_hn;  n = tanh(xn + b_in + r⊙hn);  h = (1−z)⊙n + z⊙hPrev
///
/// gates (B,3H) in/out: x·W_ihᵀ (no bias) in, activated r,z,n out; hh (B,3H) = hPrev·W_hhᵀ (no bias);
/// bih, bhh (3H); hPrev (B,H); hn (B,H) out: W_hn·hPrev + b_hn (for backward); h (B,H) out.
void rc_gru_forward(long B, long H, float *gates, const float *hh, const float *bih, const float *bhh,
                    const float *hPrev, float *hn, float *h);

/// rc_gru_forward with the input projection read from x + rows[b]·3H (e.g. a folded embedding's
/// table) instead of the gates row; gates (B,3H) out: activated r,z,n. x == NULL: rc_gru_forward.
void rc_gru_forward_x(long B, long H, const float *x, const int32_t *rows, const float *hh, const float *bih,
                      const float *bhh, const float *hPrev, float *gates, float *hn, float *h);

/// GRU step, backward.
///
///     dh = dOut + dhNext;  dn = dh⊙(1−z)(1−n²);  dz = dh⊙(hPrev−n)⊙z(1−z);  dr = dn⊙hn⊙r(1−r)
///     dPreHidden = [dr, dz, dn⊙r];  dPreInputN = dn;  dhNext ← dh⊙z
///
/// gates (B,3H) activated; hn, hPrev (B,H); dOut row b at dOut + b·ldOut; dhNext (B,H) in/out
/// (out: the direct part of the gradient on hPrev; the caller adds dPreHidden·W_hh);
/// dPreHidden (B,3H), the gradient w.r.t. W_hh·hPrev + b_hh, and dPreInputN (B,H) out. The gradient
/// w.r.t. W_ih·x + b_ih is [dr, dz, dn]: its r and z parts are dPreHidden's, so only its n part is
/// written. dPreHidden may equal gates and dPreInputN may equal hn (then written over them; each
/// element is read first).
void rc_gru_backward(long B, long H, const float *gates, const float *hn, const float *hPrev,
                     const float *dOut, long ldOut, float *dhNext, float *dPreHidden, float *dPreInputN);
/// rc_gru_backward, and each row's dPreHidden added into rowSums (B,3H) and (when rowSumsN is not
/// NULL) its dPreInputN into rowSumsN (B,H): the running sums for the bias gradients, added while
/// the values are in registers when both outputs are in place (the same bits as rc_add_rows after).
void rc_gru_backward_sums(long B, long H, const float *gates, const float *hn, const float *hPrev,
                          const float *dOut, long ldOut, float *dhNext, float *dPreHidden, float *dPreInputN,
                          float *rowSums, float *rowSumsN);

/// Elman RNN step, forward, in place: h = act(h + bias), act = tanh (relu == 0) or max(·, 0).
/// h (B,H) in/out (pre-activations without bias in); bias (H) = b_ih + b_hh.
void rc_rnn_forward(long B, long H, float *h, const float *bias, int relu);

/// Elman RNN step, forward, with the recurrent product apart: h = act((x_b + s_b) + bias), with
/// s (B,H) = hPrev·W_hhᵀ and x_b the input projection: the h row itself (x == NULL, in place) or
/// x + rows[b]·H (e.g. a folded embedding's table, rows = token ids).
void rc_rnn_forward_x(long B, long H, const float *x, const int32_t *rows, const float *s, const float *bias, float *h,
                      int relu);

/// Elman RNN step, backward: dPre = (dOut + dhNext) ⊙ act'(·), written with the output h:
/// (1 − h²) for tanh, [h > 0] for relu. dhNext is only read: an Elman cell has no direct path to
/// h[t−1], so the caller's product then writes dPre·W_hh over it (beta 0).
/// h (B,H); dOut row b at dOut + b·ldOut; dhNext (B,H) in; dPre (B,H) out. dPre may be dOut
/// itself (ldOut == H): each row is then computed in place.
void rc_rnn_backward(long B, long H, const float *h, const float *dOut, long ldOut, float *dhNext,
                     float *dPre, int relu);

/// rc_rnn_backward, and each row's dPre added into rowSums (B,H) in the same pass: rowSums[b][j] +=
/// dPre[b][j], the same additions as rc_add_rows over the rows afterwards.
void rc_rnn_backward_sums(long B, long H, const float *h, const float *dOut, long ldOut, float *dhNext,
                          float *dPre, int relu, float *rowSums);

/// Softmax cross-entropy over N rows of V logits, returning the sum of the rows' losses (double).
///
///     loss_n = log Σ_v exp(z[n,v] − m) + m − z[n, y_n]      (m = max_v z[n,v])
///     dz[n,:] = scale·(softmax(z[n,:]) − onehot(y_n))       (zero rows when y_n == ignore)
///
/// Computed in float per row (max, exp and sum in one pass, the gradient in a second), summed in
/// double. logits, dLogits (N,V) (dLogits may not alias logits); targets (N) must be in 0..<V or
/// ignore (checked by the caller).
double rc_softmax_xent(long N, long V, const float *logits, const int32_t *targets, int32_t ignore,
                       float scale, float *dLogits);

/// rc_softmax_xent without the sum: row n's loss (logsumexp − z[y], in double; 0 for an ignored
/// target) goes to rowLoss[n], and dLogits as there. Rows are independent, so callers may split
/// them across threads; adding rowLoss in row order gives rc_softmax_xent's total bit for bit.
void rc_softmax_xent_rows(long N, long V, const float *logits, const int32_t *targets, int32_t ignore, float scale,
                          float *dLogits, double *rowLoss);

/// rc_softmax_xent_rows on logits without their bias: row n is read as logits[n] + bias (the same
/// rounding as a product added onto bias-filled rows), and dBias (V) += each gradient row, rows in
/// order. The losses and dLogits are those of rc_softmax_xent_rows on the biased logits, bit for
/// bit.
void rc_softmax_xent_bias_rows(long N, long V, const float *logits, const float *bias, const int32_t *targets, int32_t ignore,
                               float scale, float *dLogits, double *rowLoss, float *dBias);

/// dst[r·ld + j] = row[j] for r in 0..<rows, j in 0..<cols (a bias copied into every output row).
void rc_fill_rows(long rows, long cols, const float *row, float *dst, long ld);

/// Column sums accumulated: y[j] += Σ_r X[r·ldx + j] for r in 0..<rows, j in 0..<cols
/// (bias gradients). Rows are added in order, so the result does not depend on the ISA's width
/// beyond floating-point contraction.
void rc_add_rows(long rows, long cols, const float *X, long ldx, float *y);

/// Rows added into indexed rows: Y[ids[r]·ldy + j] += X[r·ldx + j] for r in 0..<rows in order,
/// j in 0..<cols: the same sums as rc_add_rows(1, cols, X + r·ldx, ldx, Y + ids[r]·ldy) row by
/// row (per-token sums of a folded embedding's gradient). ids must be valid rows of Y.
void rc_scatter_add_rows(long rows, long cols, const float *X, long ldx, const int32_t *ids, float *Y, long ldy);

/// Adam (PyTorch's torch.optim.Adam, decoupled from nothing: L2 weight decay added to the gradient)
/// on n elements, hyper = {1−β1, β2, 1−β2, √(1−β2^t), ε, lr/(1−β1^t), weight decay, flush}:
///     g' = g + wd·w;  m ← lerp(m, g', 1−β1);  v ← β2·v + (1−β2)·g'²  (moments below `flush` → 0;
///     FLT_MIN flushes the subnormal ones, 0 none)
///     w ← w − (lr/(1−β1^t))·m / (√v/√(1−β2^t) + ε)
void rc_adam(long n, float *w, const float *g, float *m, float *v, const float *hyper);

/// Σ x[i]² for i in 0..<n, in double (gradient norms): 16 fixed lanes (lane l sums the elements
/// i ≡ l mod 16 in order), then the lanes in order, so every ISA returns the same bits.
double rc_sum_squares(long n, const float *x);

/// Overrides the ISA of these kernels on the calling thread only ("generic", "avx2", "avx512";
/// NULL restores the process-wide choice of rc_kernel_isa()). Returns -1 if the CPU lacks it.
/// Test hook: lets tests compare every path without touching global state.
int rc_cells_set_thread_isa(const char *isa);

/// The ISA the calling thread's cell kernels use now.
const char *rc_cells_isa(void);

#ifdef __cplusplus
}
#endif
#endif
