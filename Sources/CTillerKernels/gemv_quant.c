// Decode-shaped matmul over ggml's quantized blocks (q8_0, q4_0, q4_1, q4_K; layouts in
// TillerCore's QuantizedBlocks.swift), and the panel dequantizer prefill uses before sgemm.
// As in gemv16.c, one body is compiled for AVX-512, AVX2+FMA and baseline x86-64 through clang's
// vector extensions and picked at run time. Each block is decoded into f32 registers (the scale
// folded in with one multiply-add per 16 values) and meets every row of x while it is there, so
// the weights stream from memory once, at 0.56 (q4_0) to 1.06 (q8_0) bytes per value.
#include "CTillerKernels.h"
#include <string.h>
#include "half_float.h"

typedef float v16f __attribute__((vector_size(64)));
typedef uint8_t v16b __attribute__((vector_size(16)));
typedef int8_t v16s __attribute__((vector_size(16)));

enum { Q8_0 = 0, Q4_0 = 1, Q4_1 = 2, Q4_K = 3 };

static inline __attribute__((always_inline)) v16f load_x(const float *p) {
    v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}

// IEEE f16 to f32 (scales are finite in any file a quantizer wrote; infinities and NaN still map
// to themselves).
static inline __attribute__((always_inline)) float half_to_float(const uint8_t *p) {
    return tiller_half_to_float((uint16_t)(p[0] | (p[1] << 8)));
}

static inline __attribute__((always_inline)) v16b load_bytes(const uint8_t *p) {
    v16b v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) v16f low_nibbles(v16b q) {
    return __builtin_convertvector(q & 0x0F, v16f);
}

static inline __attribute__((always_inline)) v16f high_nibbles(v16b q) {
    return __builtin_convertvector(q >> 4, v16f);
}

long tiller_quant_block_elements(int type) { return type == Q4_K ? 256 : 32; }

long tiller_quant_block_bytes(int type) {
    switch (type) {
    case Q8_0: return 34;
    case Q4_0: return 18;
    case Q4_1: return 20;
    default: return 144;
    }
}

// q4_K's 6-bit scale and min of sub-block j (ggml's get_scale_min_k4).
static inline __attribute__((always_inline)) void scale_min(int j, const uint8_t *q, float *d, float *m) {
    if (j < 4) {
        *d = (float)(q[j] & 63);
        *m = (float)(q[j + 4] & 63);
    } else {
        *d = (float)((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        *m = (float)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// The values of one block, 16 at a time: v[0..blockElements/16). Shared by the GEMV and the
// panel dequantizer so both see the same numbers.
static inline __attribute__((always_inline)) void decode(const int type, const uint8_t *b, v16f *v) {
    switch (type) {
    case Q8_0: {
        float d = half_to_float(b);
        v16s lo, hi;
        memcpy(&lo, b + 2, 16);
        memcpy(&hi, b + 18, 16);
        v[0] = __builtin_convertvector(lo, v16f) * d;
        v[1] = __builtin_convertvector(hi, v16f) * d;
        break;
    }
    case Q4_0: {
        float d = half_to_float(b), offset = -8 * d;
        v16b q = load_bytes(b + 2);
        v[0] = low_nibbles(q) * d + offset;
        v[1] = high_nibbles(q) * d + offset;
        break;
    }
    case Q4_1: {
        float d = half_to_float(b), m = half_to_float(b + 2);
        v16b q = load_bytes(b + 4);
        v[0] = low_nibbles(q) * d + m;
        v[1] = high_nibbles(q) * d + m;
        break;
    }
    default: {
        float d = half_to_float(b), dmin = half_to_float(b + 2);
        const uint8_t *scales = b + 4, *qs = b + 16;
        for (int c = 0; c < 4; c++) {
            float s1, m1, s2, m2;
            scale_min(2 * c, scales, &s1, &m1);
            scale_min(2 * c + 1, scales, &s2, &m2);
            float d1 = d * s1, min1 = dmin * m1, d2 = d * s2, min2 = dmin * m2;
            v16b q0 = load_bytes(qs + 32 * c), q1 = load_bytes(qs + 32 * c + 16);
            v[4 * c + 0] = low_nibbles(q0) * d1 - min1;
            v[4 * c + 1] = low_nibbles(q1) * d1 - min1;
            v[4 * c + 2] = high_nibbles(q0) * d2 - min2;
            v[4 * c + 3] = high_nibbles(q1) * d2 - min2;
        }
        break;
    }
    }
}

static inline __attribute__((always_inline)) float hsum(v16f v) {
    float s = 0;
    for (int i = 0; i < 16; i++) s += v[i];
    return s;
}

// M and TYPE are compile-time constants at every call site, so accumulators stay in registers
// and the decode is specialised.
static inline __attribute__((always_inline)) void rows(const int M, const int type, const float *x, long k,
                                                       const uint8_t *w, long j0, long j1, float *out, long ldo,
                                                       int accumulate) {
    const long block = type == Q4_K ? 256 : 32, lanes = block / 16;
    const long bytes = tiller_quant_block_bytes(type), row_bytes = k / block * bytes;
    for (long j = j0; j < j1; j++) {
        const uint8_t *row = w + j * row_bytes;
        v16f acc[8] = {0};
        for (long p = 0; p < k; p += block, row += bytes) {
            v16f v[16];
            decode(type, row, v);
            for (long l = 0; l < lanes; l++)
                for (int i = 0; i < M; i++) acc[i] += load_x(x + i * k + p + 16 * l) * v[l];
        }
        for (int i = 0; i < M; i++) {
            float s = hsum(acc[i]);
            out[i * ldo + j] = accumulate ? out[i * ldo + j] + s : s;
        }
    }
}

static inline __attribute__((always_inline)) void typed(const int type, const float *x, long m, long k, const uint8_t *w,
                                                        long j0, long j1, float *out, long ldo, int accumulate) {
    switch (m) {
    case 1: rows(1, type, x, k, w, j0, j1, out, ldo, accumulate); break;
    case 2: rows(2, type, x, k, w, j0, j1, out, ldo, accumulate); break;
    case 3: rows(3, type, x, k, w, j0, j1, out, ldo, accumulate); break;
    case 4: rows(4, type, x, k, w, j0, j1, out, ldo, accumulate); break;
    case 5: rows(5, type, x, k, w, j0, j1, out, ldo, accumulate); break;
    case 6: rows(6, type, x, k, w, j0, j1, out, ldo, accumulate); break;
    case 7: rows(7, type, x, k, w, j0, j1, out, ldo, accumulate); break;
    default: rows(8, type, x, k, w, j0, j1, out, ldo, accumulate); break;
    }
}

static inline __attribute__((always_inline)) void gemv_body(const float *x, long m, long k, const void *w, int type,
                                                            long j0, long j1, float *out, long ldo, int accumulate) {
    switch (type) {
    case Q8_0: typed(Q8_0, x, m, k, w, j0, j1, out, ldo, accumulate); break;
    case Q4_0: typed(Q4_0, x, m, k, w, j0, j1, out, ldo, accumulate); break;
    case Q4_1: typed(Q4_1, x, m, k, w, j0, j1, out, ldo, accumulate); break;
    default: typed(Q4_K, x, m, k, w, j0, j1, out, ldo, accumulate); break;
    }
}

static inline __attribute__((always_inline)) void dequant_typed(const int type, const uint8_t *w, long blocks, float *out) {
    const long block = type == Q4_K ? 256 : 32, bytes = tiller_quant_block_bytes(type);
    for (long b = 0; b < blocks; b++) {
        v16f v[16];
        decode(type, w + b * bytes, v);
        memcpy(out + b * block, v, (size_t)block * sizeof(float));
    }
}

static inline __attribute__((always_inline)) void dequant_body(const void *w, int type, long blocks, float *out) {
    switch (type) {
    case Q8_0: dequant_typed(Q8_0, w, blocks, out); break;
    case Q4_0: dequant_typed(Q4_0, w, blocks, out); break;
    case Q4_1: dequant_typed(Q4_1, w, blocks, out); break;
    default: dequant_typed(Q4_K, w, blocks, out); break;
    }
}

#define BUILD(suffix, target)                                                                                   \
    target static void gemv_##suffix(const float *x, long m, long k, const void *w, int type, long j0, long j1, \
                                     float *out, long ldo, int accumulate) {                                  \
        gemv_body(x, m, k, w, type, j0, j1, out, ldo, accumulate);                                             \
    }                                                                                                          \
    target static void dequant_##suffix(const void *w, int type, long blocks, float *out) {                    \
        dequant_body(w, type, blocks, out);                                                                    \
    }

BUILD(avx512, __attribute__((target("avx512f,avx512bw,avx512vl,fma"))))
BUILD(avx2, __attribute__((target("avx2,fma"))))
BUILD(baseline, )

typedef void (*gemv_fn)(const float *, long, long, const void *, int, long, long, float *, long, int);
typedef void (*dequant_fn)(const void *, int, long, float *);

// The instruction set tiller_kernels_isa() reports, as an index: 0 avx512, 1 avx2, 2 baseline.
static int isa_index(const char *isa) {
    if (strcmp(isa, "avx512") == 0) return 0;
    if (strcmp(isa, "avx2") == 0) return 1;
    if (strcmp(isa, "baseline") == 0) return 2;
    return -1;
}

static const gemv_fn gemv_builds[3] = {gemv_avx512, gemv_avx2, gemv_baseline};
static const dequant_fn dequant_builds[3] = {dequant_avx512, dequant_avx2, dequant_baseline};

void tiller_gemv_quant_nk(const float *x, long m, long k, const void *w, int type,
                          long j0, long j1, float *out, long ldo, int accumulate) {
    gemv_builds[isa_index(tiller_kernels_isa())](x, m, k, w, type, j0, j1, out, ldo, accumulate);
}

static int supported(int index) {
    __builtin_cpu_init();
    if (index == 0) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    if (index == 1) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return index == 2;
}

int tiller_gemv_quant_nk_isa(const char *isa, const float *x, long m, long k, const void *w, int type,
                             long j0, long j1, float *out, long ldo, int accumulate) {
    int index = isa_index(isa);
    if (index < 0 || !supported(index)) return -1;
    gemv_builds[index](x, m, k, w, type, j0, j1, out, ldo, accumulate);
    return 0;
}

void tiller_dequantize_blocks(const void *w, int type, long blocks, float *out) {
    dequant_builds[isa_index(tiller_kernels_isa())](w, type, blocks, out);
}

int tiller_dequantize_blocks_isa(const char *isa, const void *w, int type, long blocks, float *out) {
    int index = isa_index(isa);
    if (index < 0 || !supported(index)) return -1;
    dequant_builds[index](w, type, blocks, out);
    return 0;
}
