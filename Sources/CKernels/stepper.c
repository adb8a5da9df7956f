// A batch-1 char-LM stepper: Embedding -> L recurrent layers -> Linear, one token per call.
// See README-gemv.md for the design and the measurements.
//
// Layout. Each layer's gate rows are regrouped into blocks of `ub`·16 hidden units: a block holds
// the G gates of those units (nv = G·ub vectors of 16 rows), so one thread computes the gate
// pre-activations of its units and applies the cell right away. A block stores its input part
// (over x, K = D) and then its recurrent part (over h, K = H), contiguously: one sequential stream.
// Layer 0 has no input part: the table emb·W_ih0ᵀ + biases (V rows, in block row order) replaces it.
//
// Threads. A step is a sequence of phases (layer 0, …, layer L−1, head). Blocks of a phase are
// claimed from a generation-tagged atomic word; a phase starts once the previous one has counted
// all its blocks done. A helper that wakes late finds nothing left and returns: the caller never
// waits for a thread that has not claimed anything. Helpers spin on a generation counter for about
// a millisecond after their last job, then sleep on a condition variable.
#include "internal.h"
#include "gemv_internal.h"
#include "ckernels.h"
#include "ckernels_gemv.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define RC_STEP_MAX_THREADS 8
#define RC_STEP_MAX_LAYERS 64
#define RC_STEP_SPIN_NS 1000000L     // helpers poll this long after a job before sleeping

typedef struct {
    long D;              // input width of the packed input part (0 for layer 0)
    long block_bytes;    // bytes of one block (input part + recurrent part)
    long x_bytes;        // bytes of the input part
    unsigned char *w;    // nb blocks
    float *init;         // nb*nv*16: bias rows (layer 0: unused, the table carries them)
    float *bhn;          // GRU: nb*ub*16 b_hn values, else NULL
    float *h[2];         // hidden state, double-buffered by step parity (Hp floats each)
    float *c;            // LSTM cell (Hp floats), else NULL
} rc_step_layer;

/// A thread's int8 copies of a phase's inputs (int8 precision only): x (layer input or head
/// input) and h (the layer's previous hidden state), each quantised once per phase per thread.
typedef struct {
    uint8_t *x, *h;
    float xs, hs;
} rc_step_quant;

struct rc_stepper {
    int cell, L, V, E, H, G, ub, nv, nb, Hp, precision, isa;
    rc_gemv_fn gemv;
    rc_gemv_q8_fn q8;
    const rc_isa_desc *desc;   // the stepper's ISA path: layer 0's table and the activations
    uint8_t *qbuf;       // int8: RC_STEP_MAX_THREADS x 2 x Kq bytes
    rc_step_quant quant[RC_STEP_MAX_THREADS];
    float *emb;          // V x E, until layer 0 is set
    float *table;        // V x (nb*nv*16)
    int head_nb;
    long *head_off;      // byte offset of each head block
    int *head_nv;
    unsigned char *head_w;
    float *head_b;       // head_nb*64 (padded)
    float *logits;       // head_nb*64
    int parity, token;
    rc_step_layer *layer;
    // per step
    _Alignas(64) _Atomic uint64_t claim[RC_STEP_MAX_LAYERS + 1];
    _Alignas(64) _Atomic uint64_t done[RC_STEP_MAX_LAYERS + 1];
};

static void *aligned(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    if (posix_memalign(&p, 64, (bytes + 63) / 64 * 64) != 0) return NULL;
    memset(p, 0, bytes);
    return p;
}

// ---------------------------------------------------------------- construction

rc_stepper *rc_stepper_new(int cell, int layers, int vocab, int embed, int hidden, int precision, int isa) {
    // int8 sums stay exact in int32 for K <= 16384 (16384 · 255 · 127 < 2^31).
    if (precision == RC_PREC_INT8 && hidden > 16384) return NULL;
    if (cell < 0 || cell > 3 || (long)hidden > 16L * 65535 || vocab > 64 * 65535 || layers < 1 || layers > RC_STEP_MAX_LAYERS || vocab < 1 || embed < 1 || hidden < 1)
        return NULL;
    rc_stepper *s = aligned(sizeof(rc_stepper));
    if (!s) return NULL;
    s->cell = cell; s->L = layers; s->V = vocab; s->E = embed; s->H = hidden;
    s->precision = (precision == RC_PREC_BF16 || precision == RC_PREC_INT8) ? precision : RC_PREC_F32;
    int best = rc_current_desc()->isa;
    {
        // The best the CPU has, independent of the global selection (so tests can ask for it).
        int detected = rc_isa_supported("avx512") ? RC_ISA_AVX512 : rc_isa_supported("avx2") ? RC_ISA_AVX2 : RC_ISA_GENERIC;
        s->isa = isa < 0 ? best : (isa > detected ? detected : isa);
    }
    s->desc = rc_desc_for(s->isa);
    s->gemv = rc_gemv_kernel(s->isa, s->precision);
    s->q8 = rc_gemv_q8_kernel(s->isa);
    if (s->precision == RC_PREC_INT8) {
        long kq = ((long)hidden + 63) / 64 * 64;
        s->qbuf = aligned((size_t)RC_STEP_MAX_THREADS * 2 * kq);
        if (!s->qbuf) { free(s); return NULL; }
        for (int t = 0; t < RC_STEP_MAX_THREADS; t++) {
            s->quant[t].x = s->qbuf + (size_t)t * 2 * kq;
            s->quant[t].h = s->quant[t].x + kq;
        }
    }
    s->G = cell == RC_CELL_LSTM ? 4 : cell == RC_CELL_GRU ? 3 : 1;
    s->ub = s->G == 1 ? 4 : 1;                    // nv = 4 (LSTM, RNN) or 3 (GRU) vectors per block
    s->nv = s->G * s->ub;
    long bu = (long)s->ub * 16;                   // units per block
    s->nb = (int)((hidden + bu - 1) / bu);
    s->Hp = (int)(s->nb * bu);
    s->layer = calloc((size_t)layers, sizeof(rc_step_layer));
    s->emb = aligned((size_t)vocab * embed * sizeof(float));
    s->table = aligned((size_t)vocab * s->nb * s->nv * 16 * sizeof(float));
    s->head_nb = (vocab + 63) / 64;
    s->head_off = calloc((size_t)s->head_nb + 1, sizeof(long));
    s->head_nv = calloc((size_t)s->head_nb, sizeof(int));
    s->head_b = aligned((size_t)s->head_nb * 64 * sizeof(float));
    s->logits = aligned((size_t)s->head_nb * 64 * sizeof(float));
    if (!s->layer || !s->emb || !s->table || !s->head_off || !s->head_nv || !s->head_b || !s->logits) {
        rc_stepper_free(s);
        return NULL;
    }
    for (int l = 0; l < layers; l++) {
        rc_step_layer *ly = &s->layer[l];
        ly->D = l == 0 ? 0 : hidden;
        ly->x_bytes = l == 0 ? 0 : rc_gemv_block_bytes(s->nv, ly->D, s->precision);
        ly->block_bytes = ly->x_bytes + rc_gemv_block_bytes(s->nv, hidden, s->precision);
        ly->w = aligned((size_t)s->nb * ly->block_bytes);
        ly->init = aligned((size_t)s->nb * s->nv * 16 * sizeof(float));
        ly->bhn = cell == RC_CELL_GRU ? aligned((size_t)s->Hp * sizeof(float)) : NULL;
        ly->h[0] = aligned((size_t)s->Hp * sizeof(float));
        ly->h[1] = aligned((size_t)s->Hp * sizeof(float));
        ly->c = cell == RC_CELL_LSTM ? aligned((size_t)s->Hp * sizeof(float)) : NULL;
        if (!ly->w || !ly->init || !ly->h[0] || !ly->h[1] || (cell == RC_CELL_GRU && !ly->bhn) ||
            (cell == RC_CELL_LSTM && !ly->c)) {
            rc_stepper_free(s);
            return NULL;
        }
    }
    long off = 0;
    for (int b = 0; b < s->head_nb; b++) {
        int rows = vocab - 64 * b < 64 ? vocab - 64 * b : 64;
        s->head_nv[b] = (rows + 15) / 16;
        s->head_off[b] = off;
        off += rc_gemv_block_bytes(s->head_nv[b], hidden, s->precision);
    }
    s->head_off[s->head_nb] = off;
    s->head_w = aligned((size_t)off);
    if (!s->head_w) { rc_stepper_free(s); return NULL; }
    return s;
}

/// The weight row of block b's packed row i (−1 for padding units).
static long block_row(const rc_stepper *s, int b, int i) {
    int v = i / 16, lane = i % 16;
    int g = v / s->ub, u = v % s->ub;
    long unit = (long)b * s->ub * 16 + u * 16 + lane;
    return unit < s->H ? g * (long)s->H + unit : -1;
}

void rc_stepper_set_embedding(rc_stepper *s, const float *emb) {
    memcpy(s->emb, emb, (size_t)s->V * s->E * sizeof(float));
}

void rc_stepper_set_layer(rc_stepper *s, int l, const float *w_ih, const float *w_hh,
                          const float *b_ih, const float *b_hh) {
    rc_step_layer *ly = &s->layer[l];
    int n = s->nv * 16, H = s->H;
    long map[RC_GEMV_MAX_NV * 16];
    long D = l == 0 ? s->E : H;
    for (int b = 0; b < s->nb; b++) {
        for (int i = 0; i < n; i++) map[i] = block_row(s, b, i);
        unsigned char *blk = ly->w + (size_t)b * ly->block_bytes;
        if (l > 0) rc_gemv_pack_rows(w_ih, D, 0, D, map, s->nv, s->precision, blk);
        rc_gemv_pack_rows(w_hh, H, 0, H, map, s->nv, s->precision, blk + ly->x_bytes);
        for (int i = 0; i < n; i++) {
            long r = map[i];
            float bias = 0;
            if (r >= 0) {
                int gate = (int)(r / H);
                bias = b_ih[r] + ((s->cell == RC_CELL_GRU && gate == 2) ? 0.0f : b_hh[r]);
                if (s->cell == RC_CELL_GRU && gate == 2) ly->bhn[b * 16 + i % 16] = b_hh[r];
            }
            ly->init[b * n + i] = bias;
        }
    }
    if (l == 0) {
        // table[v] = emb[v]·W_ih0ᵀ + init, in block row order.
        long GH = (long)s->G * H;
        float *t = aligned((size_t)s->V * GH * sizeof(float));
        if (!t) return;
        rc_sgemm_serial(s->desc, 0, 1, s->V, GH, s->E, 1.0f, s->emb, s->E, w_ih, s->E, 0.0f, t, GH);
        long width = (long)s->nb * n;
        for (int v = 0; v < s->V; v++) {
            for (int b = 0; b < s->nb; b++) {
                for (int i = 0; i < n; i++) {
                    long r = block_row(s, b, i);
                    s->table[v * width + b * n + i] = ly->init[b * n + i] + (r >= 0 ? t[v * GH + r] : 0.0f);
                }
            }
        }
        free(t);
    }
}

void rc_stepper_set_head(rc_stepper *s, const float *w, const float *bias) {
    long map[64];
    for (int b = 0; b < s->head_nb; b++) {
        int nv = s->head_nv[b];
        for (int i = 0; i < nv * 16; i++) map[i] = 64L * b + i < s->V ? 64L * b + i : -1;
        rc_gemv_pack_rows(w, s->H, 0, s->H, map, nv, s->precision, s->head_w + s->head_off[b]);
    }
    for (int v = 0; v < s->V; v++) s->head_b[v] = bias[v];
}

void rc_stepper_reset(rc_stepper *s) {
    for (int l = 0; l < s->L; l++) {
        rc_step_layer *ly = &s->layer[l];
        memset(ly->h[0], 0, (size_t)s->Hp * sizeof(float));
        memset(ly->h[1], 0, (size_t)s->Hp * sizeof(float));
        if (ly->c) memset(ly->c, 0, (size_t)s->Hp * sizeof(float));
    }
}

float *rc_stepper_hidden(rc_stepper *s, int layer) { return s->layer[layer].h[s->parity]; }
float *rc_stepper_cell(rc_stepper *s, int layer) { return s->layer[layer].c; }

const char *rc_stepper_isa(const rc_stepper *s) { return rc_desc_for(s->isa)->name; }

long rc_stepper_weight_bytes(const rc_stepper *s) {
    long total = s->head_off[s->head_nb];
    for (int l = 0; l < s->L; l++) total += (long)s->nb * s->layer[l].block_bytes;
    return total;
}

// ---------------------------------------------------------------- one block

// relu that keeps NaN, as PyTorch's does.
static void relu_inplace(float *x, long n) { for (long i = 0; i < n; i++) x[i] = (x[i] > 0 || x[i] != x[i]) ? x[i] : 0; }

/// Gates of block b of layer l, then the cell update of its units into h[next parity] (and c).
static void run_layer_block(rc_stepper *s, int l, int b, const rc_step_quant *q) {
    rc_step_layer *ly = &s->layer[l];
    int n = s->nv * 16, bu = s->ub * 16;
    const float *hprev = ly->h[s->parity];
    float *hnext = ly->h[s->parity ^ 1] + (long)b * bu;
    const unsigned char *blk = ly->w + (size_t)b * ly->block_bytes;
    _Alignas(64) float a[RC_GEMV_MAX_NV * 16], g[RC_GEMV_MAX_NV * 16];
    const float *xinit = l == 0 ? s->table + ((long)s->token * s->nb + b) * n : ly->init + (long)b * n;
    if (l > 0) {
        if (q) s->q8(blk, ly->D, s->nv, q->x, q->xs, xinit, a);
        else s->gemv(blk, ly->D, s->nv, s->layer[l - 1].h[s->parity ^ 1], xinit, a);
        xinit = a;
    }
    if (s->cell == RC_CELL_GRU) {
        // a = (x-part r, z, n_x); g = (r, z, W_hn h + b_hn)
        memcpy(g, xinit, 2 * 16 * sizeof(float));
        memcpy(g + 32, ly->bhn + (long)b * 16, 16 * sizeof(float));
        if (q) s->q8(blk + ly->x_bytes, s->H, s->nv, q->h, q->hs, g, g);
        else s->gemv(blk + ly->x_bytes, s->H, s->nv, hprev, g, g);
        s->desc->sigmoid(g, 32);
        float nn[16];
        for (int j = 0; j < 16; j++) nn[j] = xinit[32 + j] + g[j] * g[32 + j];
        s->desc->tanh(nn, 16);
        const float *hp = hprev + (long)b * 16;
        for (int j = 0; j < 16; j++) hnext[j] = (1 - g[16 + j]) * nn[j] + g[16 + j] * hp[j];
        return;
    }
    if (q) s->q8(blk + ly->x_bytes, s->H, s->nv, q->h, q->hs, xinit, g);
    else s->gemv(blk + ly->x_bytes, s->H, s->nv, hprev, xinit, g);
    if (s->cell == RC_CELL_LSTM) {
        float *c = ly->c + (long)b * bu;
        s->desc->sigmoid(g, 2 * bu);                 // i, f
        s->desc->tanh(g + 2 * bu, bu);               // g
        s->desc->sigmoid(g + 3 * bu, bu);            // o
        for (int j = 0; j < bu; j++) {
            c[j] = g[bu + j] * c[j] + g[j] * g[2 * bu + j];
            a[j] = c[j];
        }
        s->desc->tanh(a, bu);
        for (int j = 0; j < bu; j++) hnext[j] = g[3 * bu + j] * a[j];
    } else if (s->cell == RC_CELL_RNN_TANH) {
        s->desc->tanh(g, bu);
        memcpy(hnext, g, (size_t)bu * sizeof(float));
    } else {
        relu_inplace(g, bu);
        memcpy(hnext, g, (size_t)bu * sizeof(float));
    }
}

static void run_head_block(rc_stepper *s, int b, const rc_step_quant *q) {
    const unsigned char *w = s->head_w + s->head_off[b];
    if (q) {
        s->q8(w, s->H, s->head_nv[b], q->x, q->xs, s->head_b + 64L * b, s->logits + 64L * b);
        return;
    }
    const float *h = s->layer[s->L - 1].h[s->parity ^ 1];
    s->gemv(w, s->H, s->head_nv[b], h, s->head_b + 64L * b, s->logits + 64L * b);
}

/// int8: this thread's quantised inputs of phase p (layer p, or the head when p == L).
static const rc_step_quant *quantize_phase(rc_stepper *s, int p, int tid) {
    if (s->precision != RC_PREC_INT8) return NULL;
    rc_step_quant *q = &s->quant[tid];
    if (p > 0) q->xs = rc_quantize_u8(s->layer[p - 1].h[s->parity ^ 1], s->H, q->x);
    if (p < s->L) q->hs = rc_quantize_u8(s->layer[p].h[s->parity], s->H, q->h);
    return q;
}

static int phase_blocks(const rc_stepper *s, int p) { return p < s->L ? s->nb : s->head_nb; }

// ---------------------------------------------------------------- the team

static pthread_mutex_t team_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t team_cv = PTHREAD_COND_INITIALIZER;
static atomic_flag team_busy = ATOMIC_FLAG_INIT;
static _Atomic uint64_t team_gen;                 // published job generation (low 32 bits used)
static _Atomic uint64_t tag_source;               // unique step tags
static _Atomic(rc_stepper *) team_job;
static atomic_int team_threads;                   // threads of the current job (caller included)
static atomic_int team_inside;                    // helpers currently reading team_job
static atomic_int team_sleepers;
static int team_nworkers;                         // guarded by team_busy

/// Runs every phase of the step tagged `tag` with the other threads. Returns early if the
/// step is over (a newer tag), which only a helper can see.
///
/// A phase's claim word is tag << 32 | front << 16 | back: blocks front..<back are unclaimed.
/// Even thread ids take blocks from the front, odd ones from the back, so with two threads each
/// core keeps computing the same blocks from step to step (their weights stay in its L2) as long
/// as both keep pace; if one is late the other simply takes more.
static void run_step(rc_stepper *s, uint32_t tag, int tid) {
    uint64_t t = (uint64_t)tag << 32;
    int from_back = tid & 1;
    for (int p = 0; p <= s->L; p++) {
        if (p > 0) {
            uint64_t want = t | (uint32_t)phase_blocks(s, p - 1);
            int spins = 0;
            for (;;) {
                uint64_t d = atomic_load_explicit(&s->done[p - 1], memory_order_acquire);
                if (d == want) break;
                if ((d >> 32) != tag) return;
                if (++spins < 4000) rc_cpu_relax(); else sched_yield();
            }
        }
        uint64_t c = atomic_load(&s->claim[p]);
        const rc_step_quant *q = NULL;
        int quantized = 0;
        for (;;) {
            if ((c >> 32) != tag) return;
            uint32_t front = (uint32_t)(c >> 16) & 0xffffu, back = (uint32_t)c & 0xffffu;
            if (front >= back) break;
            uint64_t next = from_back ? c - 1 : c + (1u << 16);
            if (atomic_compare_exchange_weak(&s->claim[p], &c, next)) {
                int b = (int)(from_back ? back - 1 : front);
                if (!quantized) { q = quantize_phase(s, p, tid); quantized = 1; }
                if (p < s->L) run_layer_block(s, p, b, q); else run_head_block(s, b, q);
                atomic_fetch_add_explicit(&s->done[p], 1, memory_order_acq_rel);
                c = atomic_load(&s->claim[p]);
            }
        }
    }
}

/// The caller's end of a step: waits for the head blocks other threads claimed.
static void finish_step(rc_stepper *s, uint32_t tag) {
    uint64_t want = ((uint64_t)tag << 32) | (uint32_t)phase_blocks(s, s->L);
    int spins = 0;
    while (atomic_load_explicit(&s->done[s->L], memory_order_acquire) != want) {
        if (++spins < 4000) rc_cpu_relax(); else sched_yield();
    }
}

static void *team_worker(void *arg) {
    int tid = (int)(long)arg;
    uint64_t seen = atomic_load(&team_gen);
    for (;;) {
        uint64_t g;
        long start = rc_now_ns();
        int spins = 0;
        while ((g = atomic_load_explicit(&team_gen, memory_order_acquire)) == seen) {
            rc_cpu_relax();
            if (++spins % 256 == 0 && rc_now_ns() - start > RC_STEP_SPIN_NS) break;
        }
        if (g == seen) {
            pthread_mutex_lock(&team_mu);
            atomic_fetch_add(&team_sleepers, 1);
            while ((g = atomic_load(&team_gen)) == seen) pthread_cond_wait(&team_cv, &team_mu);
            atomic_fetch_sub(&team_sleepers, 1);
            pthread_mutex_unlock(&team_mu);
        }
        seen = g;
        atomic_fetch_add(&team_inside, 1);
        rc_stepper *s = atomic_load(&team_job);
        if (s && tid < atomic_load(&team_threads) && atomic_load(&team_gen) == g) run_step(s, (uint32_t)g, tid);
        atomic_fetch_sub(&team_inside, 1);
    }
    return NULL;
}

static uint32_t new_tag(void) {
    uint32_t t;
    do { t = (uint32_t)atomic_fetch_add(&tag_source, 1) + 1; } while (t == 0);
    return t;
}

static void start_tags(rc_stepper *s, uint32_t tag) {
    for (int p = 0; p <= s->L; p++) {
        atomic_store_explicit(&s->claim[p], ((uint64_t)tag << 32) | (uint32_t)phase_blocks(s, p), memory_order_relaxed);
        atomic_store_explicit(&s->done[p], (uint64_t)tag << 32, memory_order_relaxed);
    }
}

const float *rc_stepper_step(rc_stepper *s, int token, int threads) {
    if (token < 0 || token >= s->V) token = 0;
    s->token = token;
    if (threads > RC_STEP_MAX_THREADS) threads = RC_STEP_MAX_THREADS;
    int helpers = threads - 1;
    uint32_t tag = new_tag();
    start_tags(s, tag);
    if (helpers > 0 && !atomic_flag_test_and_set_explicit(&team_busy, memory_order_acquire)) {
        rc_spawn_workers(&team_nworkers, helpers, team_worker);
        atomic_store(&team_threads, threads);
        atomic_store(&team_job, s);
        atomic_store(&team_gen, (uint64_t)tag);
        if (atomic_load(&team_sleepers) > 0) {
            pthread_mutex_lock(&team_mu);
            pthread_cond_broadcast(&team_cv);
            pthread_mutex_unlock(&team_mu);
        }
        run_step(s, tag, 0);
        finish_step(s, tag);
        atomic_flag_clear_explicit(&team_busy, memory_order_release);
    } else {
        run_step(s, tag, 0);
    }
    s->parity ^= 1;
    return s->logits;
}

void rc_stepper_free(rc_stepper *s) {
    if (!s) return;
    // Make sure no helper is (or will be) inside this stepper's job.
    while (atomic_flag_test_and_set_explicit(&team_busy, memory_order_acquire)) sched_yield();
    if (atomic_load(&team_job) == s) {
        atomic_store(&team_job, NULL);
        atomic_store(&team_gen, (uint64_t)new_tag());
    }
    while (atomic_load(&team_inside) > 0) sched_yield();
    atomic_flag_clear_explicit(&team_busy, memory_order_release);
    if (s->layer) {
        for (int l = 0; l < s->L; l++) {
            rc_step_layer *ly = &s->layer[l];
            free(ly->w); free(ly->init); free(ly->bhn); free(ly->h[0]); free(ly->h[1]); free(ly->c);
        }
    }
    free(s->layer); free(s->emb); free(s->table); free(s->head_off); free(s->head_nv);
    free(s->head_w); free(s->head_b); free(s->logits); free(s->qbuf);
    free(s);
}
