// Private declarations shared by gemv.c and stepper.c (not part of the public module).
#ifndef RECURRENT_CKERNELS_GEMV_INTERNAL_H
#define RECURRENT_CKERNELS_GEMV_INTERNAL_H
#include <stdint.h>

#define RC_GEMV_MAX_NV 8   // vectors of 16 rows per panel block (128 rows)

/// out[nv*16] = init[nv*16] + W x over a packed block (see rc_gemv_pack_rows). init may alias out.
/// f32 blocks: element (k, i) at w[k*nv*16 + i]. bf16 blocks: 32-bit word (kp, i) at
/// w[kp*nv*16 + i] holds rows i's k = 2kp (low half) and 2kp+1 (high half), K padded to even.
/// int8 blocks use rc_gemv_q8_fn instead.
typedef void (*rc_gemv_fn)(const void *w, long K, int nv, const float *x, const float *init, float *out);

/// int8 blocks: nv*16 float row scales s_i (absmax / 127), nv*16 int32 offsets (-128 times the
/// row's sum of int8 weights), then the int8 weights in groups of four k: weight (k, i) at byte
/// (k/4)*nv*64 + 4i + k%4, K padded to a multiple of 4 with zeros. x comes quantised by
/// rc_quantize_u8 (xq, scale xs). out = fma(float(offset_i + sum_k xq_k w_ik), s_i * xs, init_i),
/// with an exact integer sum, so every ISA gives the same bits.
typedef void (*rc_gemv_q8_fn)(const void *w, long K, int nv, const uint8_t *xq, float xs, const float *init, float *out);

/// The int8 kernel for an ISA (AVX-512 VNNI when the CPU has it, else portable C).
rc_gemv_q8_fn rc_gemv_q8_kernel(int isa);

/// The kernel for an ISA (RC_ISA_*) and precision (RC_PREC_*).
rc_gemv_fn rc_gemv_kernel(int isa, int precision);

/// Bytes of one packed block of nv vectors over K inputs.
long rc_gemv_block_bytes(int nv, long K, int precision);

/// Packs rows rowmap[0..nv*16) of W (row stride ldw), columns col0..col0+K, into dst; a row
/// index < 0 packs zeros.
void rc_gemv_pack_rows(const float *W, long ldw, long col0, long K, const long *rowmap, int nv,
                       int precision, void *dst);

/// Round to nearest even bfloat16.
static inline uint16_t rc_f32_to_bf16(float f) {
    union { float f; uint32_t u; } v = { f };
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);  // quiet NaN
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}

#endif
