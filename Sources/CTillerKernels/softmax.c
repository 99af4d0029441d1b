// The softmax numerator, compiled per instruction set like gemv16.c: in attention it runs once
// per score, as often as the innermost sgemm loop, and baseline SSE2 halves attention's speed.
#include "CTillerKernels.h"
#include <math.h>
#include <string.h>

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

// Cephes' expf: range reduction by n = round(x / ln 2) (via the 1.5 * 2^23 trick), a degree-5
// polynomial on the remainder, then 2^n built in the exponent field. Inputs are clamped to the
// range where the result is a normal float.
static inline __attribute__((always_inline)) v16f vexp(v16f x) {
    x = __builtin_elementwise_max(x, (v16f){0} - 87.3f);
    x = __builtin_elementwise_min(x, (v16f){0} + 88.3f);
    v16f shifted = x * 1.44269504f + 0x1.8p23f;
    v16f n = shifted - 0x1.8p23f;
    v16f r = x - n * 0.693359375f + n * 2.12194440e-4f;
    v16f p = (v16f){0} + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    v16f y = p * r * r + r + 1.0f;
    v16i e = (((v16i)shifted - 0x4B400000) + 127) << 23;
    return y * (v16f)e;
}

static inline __attribute__((always_inline)) float body(float *p, long n) {
    float largest = -INFINITY;
    long i = 0;
    if (n >= 16) {
        v16f acc;
        memcpy(&acc, p, sizeof acc);
        for (i = 16; i + 16 <= n; i += 16) {
            v16f v;
            memcpy(&v, p + i, sizeof v);
            acc = __builtin_elementwise_max(acc, v);
        }
        for (int j = 0; j < 16; j++) largest = acc[j] > largest ? acc[j] : largest;
    }
    for (; i < n; i++) largest = p[i] > largest ? p[i] : largest;

    v16f sum = {0};
    for (i = 0; i + 16 <= n; i += 16) {
        v16f v;
        memcpy(&v, p + i, sizeof v);
        v = vexp(v - largest);
        memcpy(p + i, &v, sizeof v);
        sum += v;
    }
    float total = 0;
    for (int j = 0; j < 16; j++) total += sum[j];
    if (i < n) {
        v16f tail = (v16f){0} - INFINITY;
        for (long j = 0; j < n - i; j++) tail[j] = p[i + j];
        v16f e = vexp(tail - largest);
        for (long j = 0; j < n - i; j++) { p[i + j] = e[j]; total += e[j]; }
    }
    return total;
}

__attribute__((target("avx512f,avx512bw,avx512vl,fma")))
static float exp_avx512(float *p, long n) { return body(p, n); }

__attribute__((target("avx2,fma")))
static float exp_avx2(float *p, long n) { return body(p, n); }

static float exp_baseline(float *p, long n) { return body(p, n); }

typedef float (*exp_fn)(float *, long);
static exp_fn chosen;

float tiller_exp_minus_max(float *p, long n) {
    if (!chosen) {
        const char *isa = tiller_kernels_isa();
        exp_fn fn = strcmp(isa, "avx512") == 0 ? exp_avx512 : strcmp(isa, "avx2") == 0 ? exp_avx2 : exp_baseline;
        __atomic_store_n(&chosen, fn, __ATOMIC_RELEASE);
    }
    return chosen(p, n);
}

int tiller_exp_minus_max_isa(const char *isa, float *p, long n, float *total) {
    const char *available = tiller_kernels_isa();
    int rank = strcmp(available, "avx512") == 0 ? 2 : strcmp(available, "avx2") == 0 ? 1 : 0;
    if (strcmp(isa, "avx512") == 0 && rank >= 2) *total = exp_avx512(p, n);
    else if (strcmp(isa, "avx2") == 0 && rank >= 1) *total = exp_avx2(p, n);
    else if (strcmp(isa, "baseline") == 0) *total = exp_baseline(p, n);
    else return -1;
    return 0;
}
