// A small persistent thread pool for the CPU backend's parallel loops. Dispatch's
// concurrentPerform put its worker to sleep after every op and woke it through the kernel for the
// next one; a decode step issues some 170 parallel matmuls of 20 - 500 microseconds each, and the
// wake-ups (and the idle core while they happen) cost several percent. Here the workers spin for a
// while after each job, so back-to-back ops start at once, then sleep on a condition variable.
#include "CTillerKernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 63
// How long an idle worker spins before sleeping: longer than the gap between two ops of a
// forward pass, short enough not to steal a core from OpenBLAS's threads for long.
#define SPIN_NANOSECONDS 100000

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;   // one job at a time
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static long worker_count;
static _Atomic long sleepers;
static _Atomic long remaining;
static _Atomic int parked;

// The job being run: its generation in the high 32 bits of `cursor`, the next task index in the low
// 32. A task is claimed by a compare-and-swap that also checks the generation, so a worker that
// wakes late can never claim a task of a later job with an earlier job's function. Job g's function,
// context and size sit in slot g % 2, written before g is published and left alone until g + 2,
// which cannot start before every task of g has finished.
static _Atomic unsigned long cursor;
static struct { tiller_task_fn fn; void *context; long tasks; } slots[2];
static _Thread_local int in_pool_task;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

// Claims and runs tasks of job `g` until none are left (or a later job has replaced it).
static void drain(unsigned long g) {
    in_pool_task = 1;
    for (;;) {
        unsigned long c = atomic_load(&cursor);
        if ((c >> 32) != g) break;
        long index = (long)(c & 0xFFFFFFFFul);
        if (index >= slots[g & 1].tasks) break;
        if (!atomic_compare_exchange_weak(&cursor, &c, c + 1)) continue;
        slots[g & 1].fn(slots[g & 1].context, index);
        atomic_fetch_sub(&remaining, 1);
    }
    in_pool_task = 0;
}

static void *worker(void *unused) {
    (void)unused;
    unsigned long seen = atomic_load(&cursor) >> 32;
    for (;;) {
        long start = now_ns();
        long spins = 0;
        while ((atomic_load(&cursor) >> 32) == seen) {
            cpu_relax();
            if (++spins % 64 == 0 && (atomic_load(&parked) || now_ns() - start > SPIN_NANOSECONDS)) {
                pthread_mutex_lock(&sleep_lock);
                atomic_fetch_add(&sleepers, 1);
                while ((atomic_load(&cursor) >> 32) == seen) pthread_cond_wait(&wake, &sleep_lock);
                atomic_fetch_sub(&sleepers, 1);
                pthread_mutex_unlock(&sleep_lock);
            }
        }
        seen = atomic_load(&cursor) >> 32;
        drain(seen);
    }
    return NULL;
}

static void start_workers(void) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long wanted = cpus > 1 ? cpus - 1 : 0;
    if (wanted > MAX_WORKERS) wanted = MAX_WORKERS;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (long i = 0; i < wanted; i++) {
        pthread_t thread;
        if (pthread_create(&thread, &attr, worker, NULL) != 0) break;
        worker_count++;
    }
    pthread_attr_destroy(&attr);
}

int tiller_pool_run(long tasks, tiller_task_fn fn, void *context) {
    if (tasks <= 0) return 0;
    if (tasks > 0x7FFFFFFF) return -1;
    pthread_once(&once, start_workers);
    // Inside a pool task, with no workers, or while another thread's job runs: the caller falls back.
    if (in_pool_task || worker_count == 0 || pthread_mutex_trylock(&run_lock) != 0) return -1;
    unsigned long g = ((atomic_load(&cursor) >> 32) + 1) & 0xFFFFFFFFul;
    slots[g & 1].fn = fn;
    slots[g & 1].context = context;
    slots[g & 1].tasks = tasks;
    atomic_store(&parked, 0);
    atomic_store(&remaining, tasks);
    atomic_store(&cursor, g << 32);  // publish
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&sleep_lock);
    }
    drain(g);
    while (atomic_load(&remaining) > 0) cpu_relax();
    pthread_mutex_unlock(&run_lock);
    return 0;
}

void tiller_pool_park(void) { atomic_store(&parked, 1); }

#include <malloc.h>

void tiller_fix_mmap_threshold(long bytes) {
#ifdef M_MMAP_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, (int)bytes);
#else
    (void)bytes;
#endif
}
