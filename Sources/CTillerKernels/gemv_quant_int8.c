// Decode-shaped matmul over ggml's quantized blocks with integer dot products, as llama.cpp's CPU
// backend does it: each row of x is first rounded to int8 per 32 values (one f32 scale d_x per
// block, ggml's q8_0 for activations, plus d_x * sum(q_x), q8_1's s, for the types with an offset),
// then every 32-value block of a weight row meets a block of x as 32 byte products summed in
// integers (AVX2 vpmaddubsw + vpmaddwd: two instructions for 32 multiply-adds, where the f32
// kernel in gemv_quant.c needs a widen, convert and scale per 16 weights before its FMAs) and one
// f32 multiply-add of that sum by d_w * d_x. The offset term of q4_0 (-8 d), q4_1 (m) and q4_K
// (-dmin * min) is o_w * d_x * sum(q_x) = o_w * s_x per block, so the nibbles are used unsigned.
//
// Builds: AVX2 (+F16C for the scales) intrinsics, compiled a second time for the avx512 index
// (the same 256-bit code; VNNI's vpdpbusd would fuse the two integer steps but is not written:
// no machine at hand to test it), and portable C for baseline. The integer sums are exact, so
// the builds differ only in the order of the f32 sums over blocks.
#include "CTillerKernels.h"
#include <math.h>
#include <string.h>
#include <immintrin.h>
#include "half_float.h"

enum { Q8_0 = 0, Q4_0 = 1, Q4_1 = 2, Q4_K = 3 };

// IEEE f16 to f32 without F16C (half_float.h), for the baseline build.
static inline __attribute__((always_inline)) float half_bits_to_float(const uint8_t *p) {
    return tiller_half_to_float((uint16_t)(p[0] | (p[1] << 8)));
}

void tiller_quantize_rows_q8(const float *x, long m, long k, int8_t *qs, float *d, float *s) {
    const long blocks = k / 32;
    for (long i = 0; i < m; i++) {
        for (long b = 0; b < blocks; b++) {
            const float *v = x + i * k + 32 * b;
            int8_t *q = qs + i * k + 32 * b;
            float amax = 0, total = 0;
            for (int l = 0; l < 32; l++) {
                amax = fmaxf(amax, fabsf(v[l]));
                total += v[l];
            }
            // fmaxf skips NaN: a NaN (or infinite) x must still reach the output as it does in f32.
            const float scale = total != total ? NAN : amax / 127, inverse = amax > 0 ? 127 / amax : 0;
            int sum = 0;
            for (int l = 0; l < 32; l++) {
                // Nearest, ties away from zero (roundf, as ggml's reference quantizer); |v * inverse| <= 127.
                int r = (int)roundf(v[l] * inverse);
                q[l] = (int8_t)r;
                sum += r;
            }
            d[i * blocks + b] = scale;
            s[i * blocks + b] = scale * (float)sum;
        }
    }
}

// q4_K's 6-bit scale and min of sub-block j (ggml's get_scale_min_k4).
static inline __attribute__((always_inline)) void scale_min_k4(int j, const uint8_t *q, int *sc, int *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// ---- portable C (the baseline build) ----

// One weight row against m rows of quantized x: sums[i] = sum_p x~[i, p] * w[p].
static inline __attribute__((always_inline)) void row_generic(const int type, long m, long k, const uint8_t *row,
                                                              const int8_t *qs, const float *d, const float *s,
                                                              float *sums) {
    const long blocks = k / 32;
    for (long i = 0; i < m; i++) sums[i] = 0;
    if (type == Q4_K) {
        for (long p = 0; p < k; p += 256, row += 144) {
            const float dw = half_bits_to_float(row), dmin = half_bits_to_float(row + 2);
            for (int j = 0; j < 8; j++) {
                int sc, mn;
                scale_min_k4(j, row + 4, &sc, &mn);
                const uint8_t *q = row + 16 + 32 * (j / 2);
                const int shift = 4 * (j % 2);
                const long b = p / 32 + j;
                for (long i = 0; i < m; i++) {
                    const int8_t *xq = qs + i * k + 32 * b;
                    int dot = 0;
                    for (int l = 0; l < 32; l++) dot += ((q[l] >> shift) & 0x0F) * xq[l];
                    sums[i] += dw * (float)sc * d[i * blocks + b] * (float)dot - dmin * (float)mn * s[i * blocks + b];
                }
            }
        }
        return;
    }
    const long bytes = type == Q8_0 ? 34 : type == Q4_0 ? 18 : 20;
    for (long b = 0; b < blocks; b++, row += bytes) {
        const float dw = half_bits_to_float(row);
        for (long i = 0; i < m; i++) {
            const int8_t *xq = qs + i * k + 32 * b;
            int dot = 0;
            float offset = 0;
            if (type == Q8_0) {
                const int8_t *q = (const int8_t *)(row + 2);
                for (int l = 0; l < 32; l++) dot += q[l] * xq[l];
            } else {
                const uint8_t *q = row + (type == Q4_0 ? 2 : 4);
                for (int l = 0; l < 16; l++) dot += (q[l] & 0x0F) * xq[l] + (q[l] >> 4) * xq[l + 16];
                offset = type == Q4_0 ? -8 * dw : half_bits_to_float(row + 2);
            }
            sums[i] += dw * d[i * blocks + b] * (float)dot + offset * s[i * blocks + b];
        }
    }
}

static void gemv_int8_baseline(const int8_t *qs, const float *d, const float *s, long m, long k, const void *w,
                               int type, long j0, long j1, float *out, long ldo, int accumulate) {
    const long row_bytes = k / tiller_quant_block_elements(type) * tiller_quant_block_bytes(type);
    for (long j = j0; j < j1; j++) {
        float sums[8];
        row_generic(type, m, k, (const uint8_t *)w + j * row_bytes, qs, d, s, sums);
        for (long i = 0; i < m; i++) out[i * ldo + j] = accumulate ? out[i * ldo + j] + sums[i] : sums[i];
    }
}

// ---- AVX2 ----

#define AVX2_TARGET __attribute__((target("avx2,fma,f16c"), always_inline))

// A block's first two f16 fields (d, and q4_1's m or q4_K's dmin) as lanes 0 and 1, converted
// straight from memory (every block is at least 8 bytes). In asm because clang otherwise turns
// the load into a word insert (vpinsrw) into whatever register is free, often an accumulator,
// and that false dependency chains each block's scale to the previous block's sum (measured: up
// to 2x slower at one row).
typedef uint64_t unaligned_u64 __attribute__((may_alias, aligned(1)));

static inline AVX2_TARGET __m128 scales_f16c(const uint8_t *p) {
    __m128 v;
    __asm__("vcvtph2ps %1, %0" : "=x"(v) : "m"(*(const unaligned_u64 *)p));
    return v;
}

// The 32 nibbles of a q4_0/q4_1 block as bytes 0..15 in value order (low nibbles are values 0..15).
static inline AVX2_TARGET __m256i nibbles_avx2(const uint8_t *p) {
    const __m128i q = _mm_loadu_si128((const __m128i *)p);
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// The 8 partial sums of u[l] * v[l] (u unsigned <= 15, or |w| <= 128 with v's sign fixed: at most
// 2 * 128 * 127 < 2^15 per pair, so vpmaddubsw's saturation never triggers), as f32.
static inline AVX2_TARGET __m256 dot_avx2(__m256i u, __m256i v) {
    const __m256i pairs = _mm256_maddubs_epi16(u, v);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

static inline AVX2_TARGET float hsum_avx2(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

// One x block (32 int8 of row i) against a decoded weight block u with scale dw and offset ow.
// Signed weights (q8_0, q4_0's q - 8) go through vpsignb: |w| unsigned, x with w's sign, as in
// llama.cpp.
#define BLOCK_AVX2(i, b, u, sgn, dw, ow)                                                                   \
    do {                                                                                                   \
        __m256i xv = _mm256_loadu_si256((const __m256i *)(qs + (i) * k + 32 * (b)));                       \
        if (type == Q8_0 || type == Q4_0) xv = _mm256_sign_epi8(xv, sgn);                                  \
        acc[i] = _mm256_fmadd_ps(dot_avx2(u, xv), _mm256_set1_ps((dw) * d[(i) * blocks + (b)]), acc[i]); \
        if (type == Q4_1 || type == Q4_K) offsets[i] += (ow) * s[(i) * blocks + (b)];                       \
    } while (0)

// M and TYPE are constants at every call site (see typed_avx2), so the accumulators stay in registers.
static inline AVX2_TARGET void rows_avx2(const int M, const int type, const int8_t *qs, const float *d, const float *s,
                                         long k, const uint8_t *w, long j0, long j1, float *out, long ldo,
                                         int accumulate) {
    const long blocks = k / 32;
    const long row_bytes = k / tiller_quant_block_elements(type) * tiller_quant_block_bytes(type);
    for (long j = j0; j < j1; j++) {
        const uint8_t *row = w + j * row_bytes;
        __m256 acc[8];
        float offsets[8];
        for (int i = 0; i < M; i++) {
            acc[i] = _mm256_setzero_ps();
            offsets[i] = 0;
        }
        if (type == Q4_K) {
            for (long b = 0; b < blocks; b += 8, row += 144) {
                const __m128 scales = scales_f16c(row);
                const float dw = _mm_cvtss_f32(scales), dmin = _mm_cvtss_f32(_mm_movehdup_ps(scales));
                for (int c = 0; c < 4; c++) {
                    const __m256i q = _mm256_loadu_si256((const __m256i *)(row + 16 + 32 * c));
                    const __m256i lo = _mm256_and_si256(q, _mm256_set1_epi8(0x0F));
                    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(0x0F));
                    int sc1, mn1, sc2, mn2;
                    scale_min_k4(2 * c, row + 4, &sc1, &mn1);
                    scale_min_k4(2 * c + 1, row + 4, &sc2, &mn2);
                    const float d1 = dw * (float)sc1, o1 = -dmin * (float)mn1;
                    const float d2 = dw * (float)sc2, o2 = -dmin * (float)mn2;
                    for (int i = 0; i < M; i++) {
                        BLOCK_AVX2(i, b + 2 * c, lo, lo, d1, o1);
                        BLOCK_AVX2(i, b + 2 * c + 1, hi, hi, d2, o2);
                    }
                }
            }
        } else {
            const long bytes = tiller_quant_block_bytes(type);
            for (long b = 0; b < blocks; b++, row += bytes) {
                const __m128 scales = scales_f16c(row);
                const float dw = _mm_cvtss_f32(scales);
                __m256i u, sgn = _mm256_setzero_si256();
                float ow = 0;
                if (type == Q8_0) {
                    sgn = _mm256_loadu_si256((const __m256i *)(row + 2));
                    u = _mm256_sign_epi8(sgn, sgn);
                } else if (type == Q4_0) {
                    // Signed (q - 8) as q8_0's, rather than an offset term per row: measured faster.
                    sgn = _mm256_sub_epi8(nibbles_avx2(row + 2), _mm256_set1_epi8(8));
                    u = _mm256_sign_epi8(sgn, sgn);
                } else {
                    u = nibbles_avx2(row + 4);
                    ow = _mm_cvtss_f32(_mm_movehdup_ps(scales));
                }
                for (int i = 0; i < M; i++) BLOCK_AVX2(i, b, u, sgn, dw, ow);
            }
        }
        for (int i = 0; i < M; i++) {
            const float v = hsum_avx2(acc[i]) + offsets[i];
            out[i * ldo + j] = accumulate ? out[i * ldo + j] + v : v;
        }
    }
}

static inline AVX2_TARGET void typed_avx2(const int type, const int8_t *qs, const float *d, const float *s, long m,
                                          long k, const uint8_t *w, long j0, long j1, float *out, long ldo,
                                          int accumulate) {
    switch (m) {
    case 1: rows_avx2(1, type, qs, d, s, k, w, j0, j1, out, ldo, accumulate); break;
    case 2: rows_avx2(2, type, qs, d, s, k, w, j0, j1, out, ldo, accumulate); break;
    case 3: rows_avx2(3, type, qs, d, s, k, w, j0, j1, out, ldo, accumulate); break;
    case 4: rows_avx2(4, type, qs, d, s, k, w, j0, j1, out, ldo, accumulate); break;
    case 5: rows_avx2(5, type, qs, d, s, k, w, j0, j1, out, ldo, accumulate); break;
    case 6: rows_avx2(6, type, qs, d, s, k, w, j0, j1, out, ldo, accumulate); break;
    case 7: rows_avx2(7, type, qs, d, s, k, w, j0, j1, out, ldo, accumulate); break;
    default: rows_avx2(8, type, qs, d, s, k, w, j0, j1, out, ldo, accumulate); break;
    }
}

static inline AVX2_TARGET void body_avx2(const int8_t *qs, const float *d, const float *s, long m, long k,
                                         const void *w, int type, long j0, long j1, float *out, long ldo,
                                         int accumulate) {
    switch (type) {
    case Q8_0: typed_avx2(Q8_0, qs, d, s, m, k, w, j0, j1, out, ldo, accumulate); break;
    case Q4_0: typed_avx2(Q4_0, qs, d, s, m, k, w, j0, j1, out, ldo, accumulate); break;
    case Q4_1: typed_avx2(Q4_1, qs, d, s, m, k, w, j0, j1, out, ldo, accumulate); break;
    default: typed_avx2(Q4_K, qs, d, s, m, k, w, j0, j1, out, ldo, accumulate); break;
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
static void gemv_int8_avx512(const int8_t *qs, const float *d, const float *s, long m, long k, const void *w,
                             int type, long j0, long j1, float *out, long ldo, int accumulate) {
    body_avx2(qs, d, s, m, k, w, type, j0, j1, out, ldo, accumulate);
}

__attribute__((target("avx2,fma,f16c")))
static void gemv_int8_avx2(const int8_t *qs, const float *d, const float *s, long m, long k, const void *w,
                           int type, long j0, long j1, float *out, long ldo, int accumulate) {
    body_avx2(qs, d, s, m, k, w, type, j0, j1, out, ldo, accumulate);
}

// ---- dispatch ----

typedef void (*gemv_int8_fn)(const int8_t *, const float *, const float *, long, long, const void *, int, long, long,
                             float *, long, int);
static const gemv_int8_fn builds[3] = {gemv_int8_avx512, gemv_int8_avx2, gemv_int8_baseline};

// Index of an instruction set name (0 avx512, 1 avx2, 2 baseline), or -1 when unknown or this CPU
// lacks it (F16C included: the vector builds convert the blocks' scales with it).
static int usable(const char *isa) {
    __builtin_cpu_init();
    const int f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (strcmp(isa, "avx512") == 0)
        return f16c && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512vl") ? 0 : -1;
    if (strcmp(isa, "avx2") == 0) return f16c ? 1 : -1;
    if (strcmp(isa, "baseline") == 0) return 2;
    return -1;
}

static int chosen = -1;

void tiller_gemv_quant_int8_nk(const int8_t *qs, const float *d, const float *s, long m, long k, const void *w,
                               int type, long j0, long j1, float *out, long ldo, int accumulate) {
    int index = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (index < 0) {
        // Racing threads compute the same answer.
        index = usable(tiller_kernels_isa());
        if (index < 0) index = 2;
        __atomic_store_n(&chosen, index, __ATOMIC_RELEASE);
    }
    builds[index](qs, d, s, m, k, w, type, j0, j1, out, ldo, accumulate);
}

int tiller_gemv_quant_int8_nk_isa(const char *isa, const int8_t *qs, const float *d, const float *s, long m, long k,
                                  const void *w, int type, long j0, long j1, float *out, long ldo, int accumulate) {
    const int index = usable(isa);
    if (index < 0) return -1;
    builds[index](qs, d, s, m, k, w, type, j0, j1, out, ldo, accumulate);
    return 0;
}
