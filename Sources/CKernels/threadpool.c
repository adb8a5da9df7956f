// A tiny persistent thread pool for rc_sgemm. Workers spin briefly on a generation counter
// (so back-to-back calls from a recurrent time loop cost ~1 us to hand out), then sleep on a
// condition variable. One job at a time; a concurrent caller finds the pool busy and runs serially.
#include "internal.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>

#define RC_MAX_WORKERS 63
#define RC_SPIN_ITERS 20000     // ~ tens of microseconds of polling before sleeping

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static atomic_flag pool_busy = ATOMIC_FLAG_INIT;
static struct { atomic_ulong gen; char pad[56]; } pool_slot[RC_MAX_WORKERS + 1];  // per-worker go signal
static unsigned long pool_gen;            // guarded by pool_busy
static atomic_int pool_sleepers;
static atomic_int pool_pending;
static int pool_nworkers;                 // guarded by pool_busy
static void (*pool_fn)(void *, int);
static void *pool_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void *worker_main(void *p) {
    int id = (int)(long)p;               // this worker runs part id (1-based)
    atomic_ulong *slot = &pool_slot[id].gen;
    unsigned long seen = 0;              // slots start at 0; only rc_pool_run changes them
    for (;;) {
        unsigned long g;
        int spins = 0;
        while ((g = atomic_load_explicit(slot, memory_order_acquire)) == seen && spins < RC_SPIN_ITERS) {
            cpu_relax();
            spins++;
        }
        if (g == seen) {
            pthread_mutex_lock(&pool_mu);
            atomic_fetch_add(&pool_sleepers, 1);
            while ((g = atomic_load(slot)) == seen) pthread_cond_wait(&pool_cv, &pool_mu);
            atomic_fetch_sub(&pool_sleepers, 1);
            pthread_mutex_unlock(&pool_mu);
        }
        seen = g;
        pool_fn(pool_arg, id);
        atomic_fetch_sub_explicit(&pool_pending, 1, memory_order_release);
    }
    return NULL;
}

int rc_pool_run(int nparts, void (*fn)(void *arg, int part), void *arg) {
    if (nparts > RC_MAX_WORKERS + 1) return 0;
    if (atomic_flag_test_and_set_explicit(&pool_busy, memory_order_acquire)) return 0;
    while (pool_nworkers < nparts - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker_main, (void *)(long)(pool_nworkers + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        pool_nworkers++;
    }
    if (pool_nworkers < nparts - 1) {    // could not start enough threads: caller runs serially
        atomic_flag_clear_explicit(&pool_busy, memory_order_release);
        return 0;
    }
    pool_fn = fn;
    pool_arg = arg;
    atomic_store(&pool_pending, nparts - 1);
    pool_gen++;
    // Only the workers that have a part are woken. seq_cst stores pair with the sleepers
    // increment in worker_main, so a worker about to sleep either sees its slot or gets the broadcast.
    for (int w = 1; w < nparts; w++) atomic_store(&pool_slot[w].gen, pool_gen);
    if (atomic_load(&pool_sleepers) > 0) {
        pthread_mutex_lock(&pool_mu);
        pthread_cond_broadcast(&pool_cv);
        pthread_mutex_unlock(&pool_mu);
    }
    fn(arg, 0);
    int spins = 0;
    while (atomic_load_explicit(&pool_pending, memory_order_acquire) > 0) {
        if (++spins < 100000) cpu_relax(); else sched_yield();
    }
    atomic_flag_clear_explicit(&pool_busy, memory_order_release);
    return 1;
}
