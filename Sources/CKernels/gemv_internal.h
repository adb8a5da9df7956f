// Private declarations shared by gemv.c and stepper.c (not part of the public module).
#ifndef RECURRENT_CKERNELS_GEMV_INTERNAL_H
#define RECURRENT_CKERNELS_GEMV_INTERNAL_H
#include <stdint.h>

#define RC_GEMV_MAX_NV 8   // vectors of 16 rows per panel block (128 rows)

/// out[nv*16] = init[nv*16] + W x over a packed block (see rc_gemv_pack_rows). init may alias out.
/// f32 blocks: element (k, i) at w[k*nv*16 + i]. bf16 blocks: 32-bit word (kp, i) at
/// w[kp*nv*16 + i] holds rows i's k = 2kp (low half) and 2kp+1 (high half), K padded to even.
/// int8 blocks: nv*16 float row scales, then int8 element (k, i) at byte k*nv*16 + i.
typedef void (*rc_gemv_fn)(const void *w, long K, int nv, const float *x, const float *init, float *out);

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
