// One kernel body, compiled three times (AVX-512, AVX2+FMA, baseline x86-64) through clang's
// vector extensions, and picked at run time from the CPU's features. Swift cannot compile one
// function for several targets, and this is the one place where baseline SSE2 cannot keep up:
// a 16-bit weight GEMV must out-run f32 sgemm, which OpenBLAS runs with AVX-512.
#include "CTillerKernels.h"
#include <string.h>
#include "half_float.h"

typedef float v16f __attribute__((vector_size(64)));
typedef uint32_t v16u __attribute__((vector_size(64)));
typedef uint16_t v16h __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) v16f load_f32(const float *p) {
    v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}

// bf16 is the high half of an f32. f16: shift exponent and mantissa into f32 position and
// multiply by 2^112 (exact for normals and subnormals); infinities and NaN get an all-ones exponent.
static inline __attribute__((always_inline)) v16f load_widened(const uint16_t *p, int bf16) {
    v16h h;
    memcpy(&h, p, sizeof h);
    v16u bits = __builtin_convertvector(h, v16u);
    if (bf16) return (v16f)(bits << 16);
    v16f magnitude = (v16f)((bits & 0x7FFF) << 13) * 0x1p112f;
    v16u out = (v16u)magnitude | ((bits & 0x8000) << 16);
    v16u special = (v16u)((bits & 0x7C00) == 0x7C00);
    return (v16f)(out | (special & 0x7F800000));
}

static inline __attribute__((always_inline)) float widen_one(uint16_t h, int bf16) {
    if (bf16) { uint32_t bits = (uint32_t)h << 16; float f; memcpy(&f, &bits, 4); return f; }
    return tiller_half_to_float(h);
}

static inline __attribute__((always_inline)) float hsum(v16f v) {
    float s = 0;
    for (int i = 0; i < 16; i++) s += v[i];
    return s;
}

// M is a compile-time constant at every call site, so the accumulators live in registers.
static inline __attribute__((always_inline)) void rows(const int M, const float *x, long k, const uint16_t *w,
                                                       int bf16, long j0, long j1, float *out, long ldo, int accumulate) {
    for (long j = j0; j < j1; j++) {
        const uint16_t *row = w + j * k;
        v16f acc[8] = {0};
        long p = 0;
        for (; p + 16 <= k; p += 16) {
            v16f wv = load_widened(row + p, bf16);
            for (int i = 0; i < M; i++) acc[i] += load_f32(x + i * k + p) * wv;
        }
        for (int i = 0; i < M; i++) {
            float s = hsum(acc[i]);
            for (long q = p; q < k; q++) s += x[i * k + q] * widen_one(row[q], bf16);
            out[i * ldo + j] = accumulate ? out[i * ldo + j] + s : s;
        }
    }
}

static inline __attribute__((always_inline)) void body(const float *x, long m, long k, const uint16_t *w, int bf16,
                                                       long j0, long j1, float *out, long ldo, int accumulate) {
    switch (m) {
    case 1: rows(1, x, k, w, bf16, j0, j1, out, ldo, accumulate); break;
    case 2: rows(2, x, k, w, bf16, j0, j1, out, ldo, accumulate); break;
    case 3: rows(3, x, k, w, bf16, j0, j1, out, ldo, accumulate); break;
    case 4: rows(4, x, k, w, bf16, j0, j1, out, ldo, accumulate); break;
    case 5: rows(5, x, k, w, bf16, j0, j1, out, ldo, accumulate); break;
    case 6: rows(6, x, k, w, bf16, j0, j1, out, ldo, accumulate); break;
    case 7: rows(7, x, k, w, bf16, j0, j1, out, ldo, accumulate); break;
    default: rows(8, x, k, w, bf16, j0, j1, out, ldo, accumulate); break;
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,fma")))
static void gemv_avx512(const float *x, long m, long k, const uint16_t *w, int bf16, long j0, long j1, float *out, long ldo, int accumulate) {
    body(x, m, k, w, bf16, j0, j1, out, ldo, accumulate);
}

__attribute__((target("avx2,fma")))
static void gemv_avx2(const float *x, long m, long k, const uint16_t *w, int bf16, long j0, long j1, float *out, long ldo, int accumulate) {
    body(x, m, k, w, bf16, j0, j1, out, ldo, accumulate);
}

static void gemv_baseline(const float *x, long m, long k, const uint16_t *w, int bf16, long j0, long j1, float *out, long ldo, int accumulate) {
    body(x, m, k, w, bf16, j0, j1, out, ldo, accumulate);
}

typedef void (*gemv_fn)(const float *, long, long, const uint16_t *, int, long, long, float *, long, int);

static gemv_fn choose(const char **isa) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
        *isa = "avx512";
        return gemv_avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *isa = "avx2";
        return gemv_avx2;
    }
    *isa = "baseline";
    return gemv_baseline;
}

static const char *chosen_isa;
static gemv_fn chosen;

static void ensure_chosen(void) {
    // Racing threads compute the same answer; the pointer store is atomic on x86-64.
    if (!chosen) {
        const char *isa;
        gemv_fn fn = choose(&isa);
        chosen_isa = isa;
        __atomic_store_n(&chosen, fn, __ATOMIC_RELEASE);
    }
}

void tiller_gemv16_nk(const float *x, long m, long k, const uint16_t *w, int bf16,
                      long j0, long j1, float *out, long ldo, int accumulate) {
    ensure_chosen();
    chosen(x, m, k, w, bf16, j0, j1, out, ldo, accumulate);
}

int tiller_gemv16_nk_isa(const char *isa, const float *x, long m, long k, const uint16_t *w, int bf16,
                         long j0, long j1, float *out, long ldo, int accumulate) {
    __builtin_cpu_init();
    gemv_fn fn;
    if (strcmp(isa, "avx512") == 0) {
        if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))) return -1;
        fn = gemv_avx512;
    } else if (strcmp(isa, "avx2") == 0) {
        if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return -1;
        fn = gemv_avx2;
    } else if (strcmp(isa, "baseline") == 0) {
        fn = gemv_baseline;
    } else {
        return -1;
    }
    fn(x, m, k, w, bf16, j0, j1, out, ldo, accumulate);
    return 0;
}

const char *tiller_kernels_isa(void) {
    ensure_chosen();
    return chosen_isa;
}
