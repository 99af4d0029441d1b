// Weight-streaming matmul for the [N, K] ("nk", Hugging Face Linear) layout with few rows of x:
// decode steps (M = 1) and batched decode (M = the batch). OpenBLAS's sgemm repacks the whole
// weight matrix on every call, which for small M costs more than the product itself (M = 1 ran
// at a third of the memory bandwidth). Here each block of weight rows is loaded (and widened,
// for 16-bit weights) into registers once and dotted with a block of x rows while it is there;
// x stays in L1/L2, the weights stream from memory once per call.
//
// Compiled three times like gemv16.c (AVX-512, AVX2+FMA, baseline x86-64), picked at run time.
#include "CTillerKernels.h"
#include <string.h>
#include "half_float.h"

typedef float v16f __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef uint32_t v16u __attribute__((vector_size(64)));
typedef uint16_t v16h __attribute__((vector_size(32)));

#define AI inline __attribute__((always_inline))

enum { W_F32 = 0, W_BF16 = 1, W_F16 = 2 };
#define MAX_JB 4
#define MAX_IB 4
#define MAX_NR 24
#define MAX_IV 3

// Software prefetch, this far ahead in each weight row when rows are long (more than 4 KiB). A
// core's demand loads alone keep too few cache-line misses in flight to reach the memory
// bandwidth (16-bit weights were 20% slower per byte than f32 without it); prefetches retire at
// once, so they add the missing parallelism. Short rows prefetch the next block instead (below):
// 14.9 -> 18.2 GB/s for the bf16 (4864, 896) GEMV on both cores.
#define PREFETCH_BYTES 2048


static AI v16f load_f32(const float *p) {
    v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}

// 16 weights from element `index` of a row, widened to f32. bf16 is the high half of an f32;
// f16 is rebiased exactly by shifting into f32 position and multiplying by 2^112, with
// infinities and NaN given an all-ones exponent (as in gemv16.c).
static AI v16f load_weights(const void *w, const int type, long index) {
    if (type == W_F32) return load_f32((const float *)w + index);
    v16h h;
    memcpy(&h, (const uint16_t *)w + index, sizeof h);
    v16u bits = __builtin_convertvector(h, v16u);
    if (type == W_BF16) return (v16f)(bits << 16);
    v16f magnitude = (v16f)((bits & 0x7FFF) << 13) * 0x1p112f;
    v16u out = (v16u)magnitude | ((bits & 0x8000) << 16);
    v16u special = (v16u)((bits & 0x7C00) == 0x7C00);
    return (v16f)(out | (special & 0x7F800000));
}

static AI float load_weight(const void *w, const int type, long index) {
    if (type == W_F32) return ((const float *)w)[index];
    const uint16_t h = ((const uint16_t *)w)[index];
    if (type == W_BF16) { uint32_t bits = (uint32_t)h << 16; float f; memcpy(&f, &bits, 4); return f; }
    return tiller_half_to_float(h);
}

// Sum of 16 lanes by halving: 8 + 4 + 2 + 1 adds instead of 15 in a row.
static AI float hsum(v16f v) {
    v8f a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    v4f b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (b[0] + b[2]) + (b[1] + b[3]);
}

// One JB x IB block of outputs: weight rows j..j+JB against x rows i..i+IB, over all of K.
// JB and IB are constants at every call site, so the JB * IB accumulators live in registers.
static AI void block(const int JB, const int IB, const int type, const float *x, long k, const void *w,
                     long j, long i, float *out, long ldo, int accumulate) {
    // Fixed-size arrays (a variable-length one would live on the stack, not in registers).
    v16f acc[MAX_JB][MAX_IB];
    for (int a = 0; a < JB; a++)
        for (int b = 0; b < IB; b++) acc[a][b] = (v16f){0};
    const int esz = type == W_F32 ? 4 : 2;
    const int short_rows = k * esz <= 4096;
    long p = 0;
    for (; p + 16 <= k; p += 16) {
        v16f wv[MAX_JB];
        if (short_rows) {
            // Short rows: the block's rows are contiguous and consumed together, JB * 16 weights
            // a step, so the same share of the next block is requested now, one block ahead (a
            // fixed distance within each row would land in the block being read).
            const char *ahead = (const char *)w + ((j + JB) * k + JB * p) * esz;
            for (int l = 0; l < (JB * 16 * esz + 63) / 64; l++) __builtin_prefetch(ahead + l * 64, 0, 2);
        } else {
            for (int a = 0; a < JB; a++) __builtin_prefetch((const char *)w + ((j + a) * k + p) * esz + PREFETCH_BYTES);
        }
        for (int a = 0; a < JB; a++) wv[a] = load_weights(w, type, (j + a) * k + p);
        for (int b = 0; b < IB; b++) {
            v16f xv = load_f32(x + (i + b) * k + p);
            for (int a = 0; a < JB; a++) acc[a][b] += wv[a] * xv;
        }
    }
    for (int b = 0; b < IB; b++) {
        for (int a = 0; a < JB; a++) {
            float s = hsum(acc[a][b]);
            for (long q = p; q < k; q++) s += x[(i + b) * k + q] * load_weight(w, type, (j + a) * k + q);
            float *o = out + (i + b) * ldo + j + a;
            *o = accumulate ? *o + s : s;
        }
    }
}

// All rows of x against weight rows j..j+JB: full IB-row blocks, then the remaining rows.
static AI void column_block(const int JB, const int IB, const int type, const float *x, long m, long k,
                            const void *w, long j, float *out, long ldo, int accumulate) {
    long i = 0;
    for (; i + IB <= m; i += IB) block(JB, IB, type, x, k, w, j, i, out, ldo, accumulate);
    // Fewer than IB rows left: pairs, then one.
    if (IB > 2 && i + 2 <= m) { block(JB, 2, type, x, k, w, j, i, out, ldo, accumulate); i += 2; }
    for (; i < m; i++) block(JB, 1, type, x, k, w, j, i, out, ldo, accumulate);
}

static AI void body(const int JB, const int IB, const int type, const float *x, long m, long k, const void *w,
                    long j0, long j1, float *out, long ldo, int accumulate) {
    long j = j0;
    for (; j + JB <= j1; j += JB) column_block(JB, IB, type, x, m, k, w, j, out, ldo, accumulate);
    for (; j < j1; j++) column_block(1, IB, type, x, m, k, w, j, out, ldo, accumulate);
}

// ---------------------------------------------------------------------------------------------
// Batched decode (about 8 < M <= 48): the dot-product blocks above re-read x from L2 for every
// block of weight rows, and their horizontal sums grow with M. Here x is transposed once per call
// into xt[p][L] (L = 16 * ceil(M / 16), zero-padded), and a tile of NR weight rows is multiplied
// as an outer product: for each p, the L-wide vector(s) xt[p] times a broadcast of w[j][p] for
// each of the NR rows, NR * L / 16 accumulators in registers, no horizontal sums. Weight rows
// stream from memory once; 16-bit tiles are widened into a per-thread f32 buffer first.

// One tile: NR rows of f32 weights (row stride ldw) against xt; writes res[a][l].
static AI void xt_tile(const int NR, const int IV, const float *xt, long k, const float *w, long ldw,
                       float *res, const char *next, long next_bytes) {
    v16f acc[MAX_NR][MAX_IV];
    for (int a = 0; a < NR; a++)
        for (int v = 0; v < IV; v++) acc[a][v] = (v16f){0};
    long p = 0;
    for (; p < k; p++) {
        // The next tile's rows (contiguous) are pulled into L2 a line per step, ahead of use.
        if (p * 64 < next_bytes) __builtin_prefetch(next + p * 64, 0, 2);
        v16f xv[MAX_IV];
        for (int v = 0; v < IV; v++) xv[v] = load_f32(xt + (p * IV + v) * 16);
        for (int a = 0; a < NR; a++) {
            float s = w[a * ldw + p];
            v16f b = {s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s};
            for (int v = 0; v < IV; v++) acc[a][v] += b * xv[v];
        }
    }
    for (int a = 0; a < NR; a++)
        for (int v = 0; v < IV; v++) memcpy(res + (a * IV + v) * 16, &acc[a][v], sizeof(v16f));
}

// Rows j..j+NR of the weights (widened into wbuf when 16-bit) against all of xt.
static AI void xt_rows(const int NR, const int IV, const int type, const float *xt, long m, long k, const void *w,
                       long j, long j1, float *wbuf, float *out, long ldo, int accumulate) {
    float res[MAX_NR * MAX_IV * 16];
    const float *rows;
    const char *next = NULL;
    long next_bytes = 0;
    if (type == W_F32) {
        rows = (const float *)w + j * k;
        if (j + 2 * NR <= j1) { next = (const char *)(rows + NR * k); next_bytes = NR * k * 4; }
    } else {
        // The NR rows are contiguous: widen them as one run.
        long e = 0, count = NR * k;
        for (; e + 16 <= count; e += 16) {
            v16f v = load_weights(w, type, j * k + e);
            memcpy(wbuf + e, &v, sizeof v);
        }
        for (; e < count; e++) wbuf[e] = load_weight(w, type, j * k + e);
        rows = wbuf;
    }
    xt_tile(NR, IV, xt, k, rows, k, res, next, next_bytes);
    for (int a = 0; a < NR; a++) {
        for (long i = 0; i < m; i++) {
            float *o = out + i * ldo + j + a;
            float r = res[a * IV * 16 + i];
            *o = accumulate ? *o + r : r;
        }
    }
}

static AI void xt_body(const int IV, const int NR, const int type, const float *xt, long m, long k, const void *w,
                       long j0, long j1, float *wbuf, float *out, long ldo, int accumulate) {
    long j = j0;
    for (; j + NR <= j1; j += NR) xt_rows(NR, IV, type, xt, m, k, w, j, j1, wbuf, out, ldo, accumulate);
    for (; j + 4 <= j1; j += 4) xt_rows(4, IV, type, xt, m, k, w, j, j1, wbuf, out, ldo, accumulate);
    for (; j < j1; j++) xt_rows(1, IV, type, xt, m, k, w, j, j1, wbuf, out, ldo, accumulate);
}

// Register budgets: AVX-512 has 32 vector registers of 16 floats (4 x 4 accumulators, 4 weight
// vectors, x); AVX2 16 of 8 (a 16-float vector takes two); SSE 16 of 4.
#define DEFINE_KERNEL(name, target, JB, IB)                                                           \
    target static void name(const float *x, long m, long k, const void *w, int type, long j0, long j1, \
                            float *out, long ldo, int accumulate) {                                    \
        switch (type) {                                                                                \
        case W_F32: body(JB, IB, W_F32, x, m, k, w, j0, j1, out, ldo, accumulate); break;             \
        case W_BF16: body(JB, IB, W_BF16, x, m, k, w, j0, j1, out, ldo, accumulate); break;           \
        default: body(JB, IB, W_F16, x, m, k, w, j0, j1, out, ldo, accumulate); break;                \
        }                                                                                              \
    }

DEFINE_KERNEL(matmul_avx512, __attribute__((target("avx512f,avx512bw,avx512vl,fma"))), 4, 4)
DEFINE_KERNEL(matmul_avx2, __attribute__((target("avx2,fma"))), 2, 2)
DEFINE_KERNEL(matmul_baseline, , 1, 2)

// Tiles of NR weight rows by IV 16-lane vectors of x rows: NR * IV accumulators (24 with AVX-512).
#define DEFINE_XT_KERNEL(name, target, ACCS)                                                             \
    target static void name(const float *xt, long m, long k, const void *w, int type, long j0, long j1,  \
                            float *wbuf, float *out, long ldo, int accumulate) {                          \
        long iv = (m + 15) / 16;                                                                        \
        switch (type * 4 + (int)iv) {                                                                   \
        case W_F32 * 4 + 1: xt_body(1, ACCS, W_F32, xt, m, k, w, j0, j1, wbuf, out, ldo, accumulate); break;         \
        case W_F32 * 4 + 2: xt_body(2, ACCS / 2, W_F32, xt, m, k, w, j0, j1, wbuf, out, ldo, accumulate); break;     \
        case W_F32 * 4 + 3: xt_body(3, ACCS / 3, W_F32, xt, m, k, w, j0, j1, wbuf, out, ldo, accumulate); break;     \
        case W_BF16 * 4 + 1: xt_body(1, ACCS, W_BF16, xt, m, k, w, j0, j1, wbuf, out, ldo, accumulate); break;       \
        case W_BF16 * 4 + 2: xt_body(2, ACCS / 2, W_BF16, xt, m, k, w, j0, j1, wbuf, out, ldo, accumulate); break;   \
        case W_BF16 * 4 + 3: xt_body(3, ACCS / 3, W_BF16, xt, m, k, w, j0, j1, wbuf, out, ldo, accumulate); break;   \
        case W_F16 * 4 + 1: xt_body(1, ACCS, W_F16, xt, m, k, w, j0, j1, wbuf, out, ldo, accumulate); break;         \
        case W_F16 * 4 + 2: xt_body(2, ACCS / 2, W_F16, xt, m, k, w, j0, j1, wbuf, out, ldo, accumulate); break;     \
        default: xt_body(3, ACCS / 3, W_F16, xt, m, k, w, j0, j1, wbuf, out, ldo, accumulate); break;               \
        }                                                                                               \
    }

DEFINE_XT_KERNEL(xt_avx512, __attribute__((target("avx512f,avx512bw,avx512vl,fma"))), 24)
DEFINE_XT_KERNEL(xt_avx2, __attribute__((target("avx2,fma"))), 6)
DEFINE_XT_KERNEL(xt_baseline, , 3)

typedef void (*matmul_fn)(const float *, long, long, const void *, int, long, long, float *, long, int);
typedef void (*xt_fn)(const float *, long, long, const void *, int, long, long, float *, float *, long, int);

static matmul_fn for_isa(const char *isa) {
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == NULL) return avx512 ? matmul_avx512 : avx2 ? matmul_avx2 : matmul_baseline;
    if (strcmp(isa, "avx512") == 0) return avx512 ? matmul_avx512 : NULL;
    if (strcmp(isa, "avx2") == 0) return avx2 ? matmul_avx2 : NULL;
    if (strcmp(isa, "baseline") == 0) return matmul_baseline;
    return NULL;
}

static matmul_fn chosen;

void tiller_matmul_nk(const float *x, long m, long k, const void *w, int type,
                      long j0, long j1, float *out, long ldo, int accumulate) {
    matmul_fn fn = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (!fn) {
        // Racing threads compute the same answer; the pointer store is atomic on x86-64.
        fn = for_isa(NULL);
        __atomic_store_n(&chosen, fn, __ATOMIC_RELEASE);
    }
    fn(x, m, k, w, type, j0, j1, out, ldo, accumulate);
}

int tiller_matmul_nk_isa(const char *isa, const float *x, long m, long k, const void *w, int type,
                         long j0, long j1, float *out, long ldo, int accumulate) {
    matmul_fn fn = for_isa(isa);
    if (!fn) return -1;
    fn(x, m, k, w, type, j0, j1, out, ldo, accumulate);
    return 0;
}

long tiller_xt_width(long m) { return (m + 15) / 16 * 16; }

long tiller_xt_tile_rows(long m) { (void)m; return 24 / ((m + 15) / 16 > 0 ? (m + 15) / 16 : 1); }

void tiller_pack_xt(const float *x, long m, long k, float *xt) {
    long width = tiller_xt_width(m);
    for (long p = 0; p < k; p++) {
        float *row = xt + p * width;
        for (long i = 0; i < m; i++) row[i] = x[i * k + p];
        for (long i = m; i < width; i++) row[i] = 0;
    }
}

static xt_fn xt_for_isa(const char *isa) {
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == NULL) return avx512 ? xt_avx512 : avx2 ? xt_avx2 : xt_baseline;
    if (strcmp(isa, "avx512") == 0) return avx512 ? xt_avx512 : NULL;
    if (strcmp(isa, "avx2") == 0) return avx2 ? xt_avx2 : NULL;
    if (strcmp(isa, "baseline") == 0) return xt_baseline;
    return NULL;
}

static xt_fn xt_chosen;

void tiller_matmul_xt(const float *xt, long m, long k, const void *w, int type, long j0, long j1,
                      float *wbuf, float *out, long ldo, int accumulate) {
    if (m < 1 || m > 48) return;  // outside the kernel's tiles: the caller's contract
    xt_fn fn = __atomic_load_n(&xt_chosen, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = xt_for_isa(NULL);
        __atomic_store_n(&xt_chosen, fn, __ATOMIC_RELEASE);
    }
    fn(xt, m, k, w, type, j0, j1, wbuf, out, ldo, accumulate);
}

int tiller_matmul_xt_isa(const char *isa, const float *xt, long m, long k, const void *w, int type, long j0, long j1,
                         float *wbuf, float *out, long ldo, int accumulate) {
    xt_fn fn = xt_for_isa(isa);
    if (!fn || m < 1 || m > 48) return -1;
    fn(xt, m, k, w, type, j0, j1, wbuf, out, ldo, accumulate);
    return 0;
}
