// A tiny persistent thread pool for rc_sgemm.
//
// A job is a number of independent chunks. Chunks are claimed dynamically through one atomic
// word (generation << 32 | next chunk), so the calling thread never waits for a worker that has
// not started yet: if the workers are slow to wake (or the CPUs are busy with other processes)
// the caller simply computes the remaining chunks itself. It only waits for chunks a worker has
// actually claimed. Which thread computes a chunk does not change its result (chunks never split
// the depth dimension), so results are deterministic.
//
// Workers spin on their own go-slot for up to a millisecond after a job (so back-to-back calls
// are handed out in about a microsecond, and the serial stretches of a training step between
// parallel phases, a few hundred microseconds at most, do not put them to sleep), then sleep on a
// condition variable. One job at a time; a concurrent caller finds the pool busy and runs serially.
#include "internal.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sched.h>
#include <time.h>

#define RC_MAX_WORKERS 63
// How long a worker polls after a job before sleeping. It was 2000 pauses (~26 µs at 13 ns per
// pause here), after which a worker slept through many of the serial stretches of a step and the
// next job had to wake it (a futex call, then tens of µs before it took a chunk, chunks the caller
// meanwhile ran alone). In-process A/B, 30 pairs per run: 80,000 pauses against 2000, rnn256
// −0.7%, −0.7%, −1.0%, lstm128 −1.1%, −0.4%, −0.5%, gru256 0.0% step time; this 1 ms against
// 26 µs, rnn256 −0.9%, −0.9%, lstm128 −1.0%, −0.4%, gru256 −0.8%, lstm256 −0.4%. The same time
// as the sampling team's helpers poll (stepper.c).
#define RC_POOL_SPIN_NS 1000000L

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static atomic_flag pool_busy = ATOMIC_FLAG_INIT;
static struct { atomic_ulong gen; char pad[56]; } pool_slot[RC_MAX_WORKERS + 1];  // per-worker go signal
static _Atomic uint64_t pool_state;       // (generation << 32) | next unclaimed chunk
static atomic_int pool_done;              // chunks finished in the current generation
static atomic_int pool_sleepers;
static uint32_t pool_gen;                 // guarded by pool_busy
static int pool_nworkers;                 // guarded by pool_busy
static atomic_int pool_nchunks;           // written before a generation is published
static void (*pool_fn)(void *, int);
static void *pool_arg;

long rc_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/// Claims and runs chunks of generation gen until none are left. Returns how many it ran.
static int run_chunks(uint32_t gen) {
    int ran = 0;
    uint64_t s = atomic_load(&pool_state);
    for (;;) {
        if ((uint32_t)(s >> 32) != gen) return ran;
        uint32_t next = (uint32_t)s;
        // If a new generation is being set up, pool_nchunks may already be the new job's value,
        // but rc_pool_run first sets the state word to generation 0, so the CAS below fails.
        if ((int)next >= atomic_load_explicit(&pool_nchunks, memory_order_relaxed)) return ran;
        if (atomic_compare_exchange_weak(&pool_state, &s, s + 1)) {
            pool_fn(pool_arg, (int)next);
            atomic_fetch_add_explicit(&pool_done, 1, memory_order_release);
            ran++;
            s = atomic_load(&pool_state);
        }
    }
}

static void *worker_main(void *p) {
    atomic_ulong *slot = &pool_slot[(long)p].gen;
    unsigned long seen = 0;              // slots start at 0; only rc_pool_run changes them
    for (;;) {
        unsigned long g;
        long start = rc_now_ns();
        int spins = 0;
        while ((g = atomic_load_explicit(slot, memory_order_acquire)) == seen) {
            rc_cpu_relax();
            if (++spins % 64 == 0 && rc_now_ns() - start > RC_POOL_SPIN_NS) break;
        }
        if (g == seen) {
            pthread_mutex_lock(&pool_mu);
            atomic_fetch_add(&pool_sleepers, 1);
            while ((g = atomic_load(slot)) == seen) pthread_cond_wait(&pool_cv, &pool_mu);
            atomic_fetch_sub(&pool_sleepers, 1);
            pthread_mutex_unlock(&pool_mu);
        }
        seen = g;
        run_chunks((uint32_t)g);
    }
    return NULL;
}

void rc_spawn_workers(int *count, int want, void *(*fn)(void *)) {
    while (*count < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, fn, (void *)(long)(*count + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0) return;
        (*count)++;
    }
}

int rc_pool_run(int nchunks, int nthreads, void (*fn)(void *arg, int chunk), void *arg) {
    int helpers = (nthreads < nchunks ? nthreads : nchunks) - 1;
    if (helpers > RC_MAX_WORKERS) helpers = RC_MAX_WORKERS;
    if (helpers < 1) return 0;
    if (atomic_flag_test_and_set_explicit(&pool_busy, memory_order_acquire)) return 0;
    rc_spawn_workers(&pool_nworkers, helpers, worker_main);
    if (pool_nworkers < helpers) helpers = pool_nworkers;   // fewer helpers is fine (dynamic claiming)
    // Close the previous generation before touching the job: a worker of that generation that
    // still holds an old state word (all chunks claimed) compares its chunk index with
    // pool_nchunks, and must not see the new, larger count while the old word is still current,
    // or its CAS would claim a chunk that does not exist and count it done in the new job.
    // Generation 0 is never published, so no worker claims anything until the new word below.
    atomic_store(&pool_state, 0);
    pool_fn = fn;
    pool_arg = arg;
    atomic_store_explicit(&pool_nchunks, nchunks, memory_order_relaxed);
    atomic_store(&pool_done, 0);
    pool_gen++;
    if (pool_gen == 0) pool_gen = 1;
    atomic_store(&pool_state, (uint64_t)pool_gen << 32);
    // Wake the helpers. seq_cst stores pair with the sleepers increment in worker_main, so a
    // worker about to sleep either sees its slot change or receives the broadcast.
    for (int w = 1; w <= helpers; w++) atomic_store(&pool_slot[w].gen, pool_gen);
    if (atomic_load(&pool_sleepers) > 0) {
        pthread_mutex_lock(&pool_mu);
        pthread_cond_broadcast(&pool_cv);
        pthread_mutex_unlock(&pool_mu);
    }
    run_chunks(pool_gen);
    int spins = 0;
    while (atomic_load_explicit(&pool_done, memory_order_acquire) < nchunks) {
        if (++spins < 2000) rc_cpu_relax(); else sched_yield();
    }
    atomic_flag_clear_explicit(&pool_busy, memory_order_release);
    return 1;
}

// ---------------------------------------------------------------- test hook

typedef struct {
    _Atomic int running;      // chunks inside fn right now
    _Atomic int ran;          // chunks run in the current job
    _Atomic int bad_index;    // chunks called with an index >= the job's count
    int n;
} stress_t;

static void stress_chunk(void *arg, int chunk) {
    stress_t *s = arg;
    atomic_fetch_add(&s->running, 1);
    if (chunk >= s->n) atomic_fetch_add(&s->bad_index, 1);
    for (volatile int i = 0; i < (chunk & 3) * 50; i++) {}   // uneven chunk lengths
    atomic_fetch_add(&s->ran, 1);
    atomic_fetch_sub(&s->running, 1);
}

long rc_pool_stress(long rounds, int nthreads) {
    stress_t s;
    long violations = 0;
    for (long r = 0; r < rounds; r++) {
        atomic_store(&s.running, 0);
        atomic_store(&s.ran, 0);
        atomic_store(&s.bad_index, 0);
        s.n = (r & 1) ? 7 : 2;                  // alternate small and larger jobs, back to back
        if (!rc_pool_run(s.n, nthreads, stress_chunk, &s)) for (int c = 0; c < s.n; c++) stress_chunk(&s, c);
        // On return every chunk must have run exactly once and none may still be running.
        if (atomic_load(&s.running) != 0 || atomic_load(&s.ran) != s.n || atomic_load(&s.bad_index) != 0) violations++;
    }
    return violations;
}
