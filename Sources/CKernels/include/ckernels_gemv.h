#ifndef RECURRENT_CKERNELS_GEMV_H
#define RECURRENT_CKERNELS_GEMV_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Batch-1 inference: panel-packed GEMV kernels and a char-LM stepper built on them.
// See Sources/CKernels/README-gemv.md.

/// Weight precision of packed panels.
/// F32: exact. BF16: weights rounded to bfloat16 (activations stay float32). INT8: weights as int8
/// with one float scale per row (symmetric, absmax / 127) and each input vector quantised to int8
/// with its own scale (absmax / 127); exact integer sums (AVX-512 VNNI where the CPU has it).
enum { RC_PREC_F32 = 0, RC_PREC_BF16 = 1, RC_PREC_INT8 = 2 };

// ---------------------------------------------------------------- GEMV (test hooks)

/// Bytes needed to pack a (rows x K) matrix, rows <= 128, into one panel block.
long rc_gemv_packed_bytes(long rows, long K, int precision);
/// Packs W (rows x K, row stride ldw), rows <= 128, into one panel block at dst (64-byte aligned):
/// k-major, 16 rows per vector, zero rows up to a multiple of 16 (bf16: k in pairs, zero-padded).
void rc_gemv_pack(const float *W, long rows, long ldw, long K, int precision, void *dst);
/// y[rows] = init[rows] + W x with the named ISA path ("generic", "avx2", "avx512", NULL = the
/// current one). Returns -1 (and does nothing) if this CPU lacks it. init may alias y.
int rc_gemv_isa(const char *isa, int precision, const void *packed, long rows, long K,
                const float *x, const float *init, float *y);
/// Quantises x[K] to xq[(K+3)/4*4] bytes q_k + 128, q_k = round(x_k / xs) in [-127, 127], padding
/// with 128; returns xs = max|x| / 127 (0 for a zero vector, NaN if x has a NaN or infinity).
float rc_quantize_u8(const float *x, long K, unsigned char *xq);
/// The int8 kernel the stepper uses for an ISA index (0 generic, 1 avx2, 2 avx512):
/// "avx512-vnni" or "generic".
const char *rc_gemv_q8_name(int isa);
/// The naive double-precision loop: y = init + W x.
void rc_gemv_reference(const float *W, long rows, long ldw, long K, const float *x,
                       const float *init, float *y);

// ---------------------------------------------------------------- sampling helpers

/// Probabilities of a temperature / top-k softmax over logits[V] into p[V] (scratch: V floats).
/// Every value above the k-th is kept, and of those equal to it the lowest indices. temperature <= 0 is treated as 1e-6.
void rc_softmax_topk(const float *logits, int V, float temperature, int topk, float *p, float *scratch);
/// Draws an index with uniform u in [0,1) from the temperature / top-k distribution (or the
/// argmax when greedy != 0; u unused). scratch: 2V floats. Deterministic for given inputs.
/// Returns -1 when a logit is NaN, or +inf when not greedy, or every logit is -inf (no
/// distribution to draw from).
int rc_sample_logits(const float *logits, int V, float temperature, int topk, int greedy, float u,
                     float *scratch);

// ---------------------------------------------------------------- char-LM stepper

/// Cell kinds, as Recurrent's CellKind.
enum { RC_CELL_LSTM = 0, RC_CELL_GRU = 1, RC_CELL_RNN_TANH = 2, RC_CELL_RNN_RELU = 3 };

typedef struct rc_stepper rc_stepper;

/// A batch-1 stepper for Embedding(V,E) -> L-layer cell(H) -> Linear(H,V). isa: -1 for the
/// current path, else 0 generic, 1 avx2, 2 avx512 (lowered to what the CPU has).
/// Returns NULL for invalid sizes or out of memory. Then call rc_stepper_set_embedding,
/// rc_stepper_set_layer for every layer (layer 0 last of all needs the embedding) and
/// rc_stepper_set_head, in that order; weights are copied.
rc_stepper *rc_stepper_new(int cell, int layers, int vocab, int embed, int hidden, int precision, int isa);
void rc_stepper_free(rc_stepper *s);
/// emb (V x E), row-major.
void rc_stepper_set_embedding(rc_stepper *s, const float *emb);
/// PyTorch's weight_ih_l (G·H x D), weight_hh_l (G·H x H), bias_ih_l, bias_hh_l (G·H).
void rc_stepper_set_layer(rc_stepper *s, int layer, const float *w_ih, const float *w_hh,
                          const float *b_ih, const float *b_hh);
/// head weight (V x H) and bias (V).
void rc_stepper_set_head(rc_stepper *s, const float *w, const float *b);
/// Zero state.
void rc_stepper_reset(rc_stepper *s);
/// Feeds token (0 <= token < V) and returns the V logits of the next character (valid until the
/// next call). Uses up to `threads` threads (the caller plus spinning helpers).
const float *rc_stepper_step(rc_stepper *s, int token, int threads);
/// The current hidden (and, for LSTM, cell) state of a layer: H floats each; writable.
float *rc_stepper_hidden(rc_stepper *s, int layer);
float *rc_stepper_cell(rc_stepper *s, int layer);
/// The ISA path the stepper runs ("generic", "avx2", "avx512").
const char *rc_stepper_isa(const rc_stepper *s);
/// Bytes of packed weights streamed per step.
long rc_stepper_weight_bytes(const rc_stepper *s);

#ifdef __cplusplus
}
#endif
#endif
