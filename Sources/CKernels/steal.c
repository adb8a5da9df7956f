// Row stealing for the recurrent time loops (see ckernels.h, rc_steal_*): a thread that has swept
// its rows to the end of a phase takes the last rows of a slower thread for the phase's remaining
// steps, instead of waiting for it.
#include "ckernels.h"
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

enum { IDLE = 0, RUNNING = 1, REQUESTED = 2, GIFTED = 3 };

typedef struct {
    _Atomic int state;
    _Atomic long rows, next, end;            // published by the owner at each step
    long gift_b0, gift_rows, gift_from, gift_end;   // written before state = GIFTED
    char pad[64];
} slot_t;

struct rc_steal { int parts; slot_t slot[]; };

static _Atomic long steals;   // successful steals since the process started

long rc_steal_count(void) { return atomic_load_explicit(&steals, memory_order_relaxed); }

rc_steal *rc_steal_create(int parts) {
    if (parts < 1) parts = 1;
    rc_steal *s = calloc(1, sizeof(rc_steal) + (size_t)parts * sizeof(slot_t));
    if (s) s->parts = parts;
    return s;
}

void rc_steal_destroy(rc_steal *s) { free(s); }

void rc_steal_begin(rc_steal *s, int part) {
    atomic_store_explicit(&s->slot[part].rows, 0, memory_order_relaxed);
    atomic_store_explicit(&s->slot[part].state, RUNNING, memory_order_release);
}

long rc_steal_poll(rc_steal *s, int part, long b0, long rows, long next, long end, long quantum) {
    slot_t *me = &s->slot[part];
    atomic_store_explicit(&me->rows, rows, memory_order_relaxed);
    atomic_store_explicit(&me->next, next, memory_order_relaxed);
    atomic_store_explicit(&me->end, end, memory_order_relaxed);
    if (atomic_load_explicit(&me->state, memory_order_acquire) != REQUESTED) return rows;
    // Give the last half of the rows (a multiple of `quantum`), if enough steps are left to pay.
    long give = end - next >= 2 && rows >= 2 * quantum ? rows / 2 / quantum * quantum : 0;
    me->gift_b0 = b0 + rows - give;
    me->gift_rows = give;
    me->gift_from = next;
    me->gift_end = end;
    atomic_store_explicit(&me->state, GIFTED, memory_order_release);
    return rows - give;
}

void rc_steal_end(rc_steal *s, int part) {
    slot_t *me = &s->slot[part];
    atomic_store_explicit(&me->rows, 0, memory_order_relaxed);   // no thief picks it again
    for (;;) {
        int st = atomic_load_explicit(&me->state, memory_order_acquire);
        if (st == RUNNING) {
            if (atomic_compare_exchange_weak(&me->state, &st, IDLE)) return;
        } else if (st == REQUESTED) {
            me->gift_rows = 0;   // nothing left to give
            atomic_store_explicit(&me->state, GIFTED, memory_order_release);
        } else if (st == GIFTED) {
            sched_yield();       // the thief has not read the answer yet
        } else {
            return;
        }
    }
}

int rc_steal_take(rc_steal *s, int thief, long quantum, long *b0, long *rows, long *from, long *end) {
    for (;;) {
        int victim = -1;
        long most = 0;
        for (int p = 0; p < s->parts; p++) {
            if (p == thief || atomic_load_explicit(&s->slot[p].state, memory_order_acquire) != RUNNING) continue;
            long r = atomic_load_explicit(&s->slot[p].rows, memory_order_relaxed);
            long left = atomic_load_explicit(&s->slot[p].end, memory_order_relaxed) -
                        atomic_load_explicit(&s->slot[p].next, memory_order_relaxed);
            if (r >= 2 * quantum && left >= 2 && r * left > most) { most = r * left; victim = p; }
        }
        if (victim < 0) return 0;
        slot_t *v = &s->slot[victim];
        int expected = RUNNING;
        if (!atomic_compare_exchange_strong(&v->state, &expected, REQUESTED)) continue;
        while (atomic_load_explicit(&v->state, memory_order_acquire) != GIFTED) sched_yield();
        long n = v->gift_rows;
        *b0 = v->gift_b0; *rows = n; *from = v->gift_from; *end = v->gift_end;
        atomic_store_explicit(&v->state, RUNNING, memory_order_release);
        if (n > 0) { atomic_fetch_add_explicit(&steals, 1, memory_order_relaxed); return 1; }
    }
}
