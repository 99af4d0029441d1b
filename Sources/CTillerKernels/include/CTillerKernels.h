#pragma once
#include <stdint.h>

/// Decode-shaped matmul with 16-bit weights in the [N, K] layout, for output columns j0..<j1:
///   out[i * ldo + j] (+)= sum_p x[i * k + p] * widen(w[j * k + p]),  i < m (m <= 8).
/// Each weight row is widened in registers and meets every row of x while it is there, so the
/// weights stream from memory once. bf16 != 0 selects bf16, otherwise IEEE f16.
void tiller_gemv16_nk(const float *x, long m, long k, const uint16_t *w, int bf16,
                      long j0, long j1, float *out, long ldo, int accumulate);

/// The same kernel built for a named instruction set ("avx512", "avx2", "baseline"), so tests can
/// check every build the dispatcher might pick. Returns 0, or -1 when this CPU lacks that set.
int tiller_gemv16_nk_isa(const char *isa, const float *x, long m, long k, const uint16_t *w, int bf16,
                         long j0, long j1, float *out, long ldo, int accumulate);

/// The softmax numerator in place: p[i] = exp(p[i] - max(p)) for i < n (n >= 1); returns the sum.
float tiller_exp_minus_max(float *p, long n);

/// The same for a named instruction set, for tests; returns -1 when this CPU lacks it.
int tiller_exp_minus_max_isa(const char *isa, float *p, long n, float *total);

/// The instruction set the kernels above dispatch to on this CPU: "avx512", "avx2" or "baseline".
const char *tiller_kernels_isa(void);
