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

/// Decode-shaped matmul with ggml-quantized weights in the [N, K] layout (gemv_quant.c), for
/// output columns j0..<j1:
///   out[i * ldo + j] (+)= sum_p x[i * k + p] * dequantize(w)[j * k + p],  i < m (m <= 8).
/// type: 0 q8_0, 1 q4_0, 2 q4_1, 3 q4_K; k is a multiple of tiller_quant_block_elements(type)
/// and a row of W is k / that * tiller_quant_block_bytes(type) bytes. Blocks are decoded in
/// registers, so the weights stream from memory once.
void tiller_gemv_quant_nk(const float *x, long m, long k, const void *w, int type,
                          long j0, long j1, float *out, long ldo, int accumulate);
/// The same kernel built for a named instruction set, for tests; -1 when this CPU lacks it.
int tiller_gemv_quant_nk_isa(const char *isa, const float *x, long m, long k, const void *w, int type,
                             long j0, long j1, float *out, long ldo, int accumulate);
/// `blocks` consecutive blocks of `type` into f32 (prefill's panels, before sgemm).
void tiller_dequantize_blocks(const void *w, int type, long blocks, float *out);
int tiller_dequantize_blocks_isa(const char *isa, const void *w, int type, long blocks, float *out);
/// The int8 form of the same product, llama.cpp's (gemv_quant_int8.c): tiller_quantize_rows_q8
/// rounds each row of x to int8 per 32 values once per call (qs [m, k], scales d and
/// d * sum(q) in s, both [m, k / 32]); tiller_gemv_quant_int8_nk then multiplies every block in
/// integers, for output columns j0..<j1 of out (m <= 8; any type above).
void tiller_quantize_rows_q8(const float *x, long m, long k, int8_t *qs, float *d, float *s);
void tiller_gemv_quant_int8_nk(const int8_t *qs, const float *d, const float *s, long m, long k, const void *w,
                               int type, long j0, long j1, float *out, long ldo, int accumulate);
/// The same for a named instruction set, for tests; -1 when this CPU lacks it.
int tiller_gemv_quant_int8_nk_isa(const char *isa, const int8_t *qs, const float *d, const float *s, long m, long k,
                                  const void *w, int type, long j0, long j1, float *out, long ldo, int accumulate);
long tiller_quant_block_elements(int type);
long tiller_quant_block_bytes(int type);

/// The softmax numerator in place: p[i] = exp(p[i] - max(p)) for i < n (n >= 1); returns the sum.
float tiller_exp_minus_max(float *p, long n);

/// The same for a named instruction set, for tests; returns -1 when this CPU lacks it.
int tiller_exp_minus_max_isa(const char *isa, float *p, long n, float *total);

/// The instruction set the kernels above dispatch to on this CPU: "avx512", "avx2" or "baseline".
const char *tiller_kernels_isa(void);

/// Matmul with weights in the [N, K] layout for few rows of x (decode and batched decode), for
/// output columns j0..<j1:
///   out[i * ldo + j] (+)= sum_p x[i * k + p] * w[j * k + p],  i < m.
/// type: 0 f32, 1 bf16, 2 IEEE f16 weights. Blocks of weight rows are loaded (and widened) into
/// registers once and meet a block of x rows there, so the weights stream from memory once.
void tiller_matmul_nk(const float *x, long m, long k, const void *w, int type,
                      long j0, long j1, float *out, long ldo, int accumulate);

/// The same kernel built for a named instruction set ("avx512", "avx2", "baseline"), for tests.
/// Returns 0, or -1 when this CPU lacks that set.
int tiller_matmul_nk_isa(const char *isa, const float *x, long m, long k, const void *w, int type,
                         long j0, long j1, float *out, long ldo, int accumulate);

/// Batched-decode matmul (1 <= m <= 48; the backend uses it for 8 < m) with weights in the [N, K] layout. x is first
/// transposed by tiller_pack_xt into xt [k, tiller_xt_width(m)] (zero-padded), shared by every
/// thread; then, for output columns j0..<j1,
///   out[i * ldo + j] (+)= sum_p xt[p * width + i] * w[j * k + p],  i < m  (m <= 48).
/// type as for tiller_matmul_nk. wbuf: per-thread scratch of tiller_xt_tile_rows(m) * k floats,
/// used for 16-bit weights (NULL is fine for f32). Any other m writes nothing (the _isa form returns -1).
void tiller_matmul_xt(const float *xt, long m, long k, const void *w, int type, long j0, long j1,
                      float *wbuf, float *out, long ldo, int accumulate);
int tiller_matmul_xt_isa(const char *isa, const float *xt, long m, long k, const void *w, int type, long j0, long j1,
                         float *wbuf, float *out, long ldo, int accumulate);
void tiller_pack_xt(const float *x, long m, long k, float *xt);
/// Columns of xt: 16 * ceil(m / 16).
long tiller_xt_width(long m);
/// Weight rows per tile of tiller_matmul_xt's widest build (24 / ceil(m / 16)): the unit to split
/// output columns across threads in, and the rows of wbuf.
long tiller_xt_tile_rows(long m);

/// out[i] = act(gate[i]) * up[i] for i < n; kind 0: SiLU, 1: tanh-approximated GELU. out may
/// alias gate or up.
void tiller_gated_activation(int kind, const float *gate, const float *up, float *out, long n);
/// The same for a named instruction set, for tests; returns -1 when this CPU lacks it.
int tiller_gated_activation_isa(const char *isa, int kind, const float *gate, const float *up, float *out, long n);

/// The adjoint of tiller_gated_activation for i < n: grad_gate[i] = grad_out[i] * up[i] * act'(gate[i]),
/// grad_up[i] = grad_out[i] * act(gate[i]). The outputs may alias the inputs of the same index.
void tiller_gated_activation_backward(int kind, const float *gate, const float *up, const float *grad_out,
                                      float *grad_gate, float *grad_up, long n);
/// The same for a named instruction set, for tests; returns -1 when this CPU lacks it.
int tiller_gated_activation_backward_isa(const char *isa, int kind, const float *gate, const float *up, const float *grad_out,
                                         float *grad_gate, float *grad_up, long n);

typedef void (*tiller_task_fn)(void *context, long task);
/// Runs fn(context, t) for every t < tasks on the calling thread and the pool's workers (one per
/// other online CPU, started on first use) and returns when all have finished. Returns -1 without
/// running anything when the pool cannot take the job (called from inside a pool task, from a
/// second thread while a job runs, or no workers): the caller then runs the tasks itself.
int tiller_pool_run(long tasks, tiller_task_fn fn, void *context);
/// Sends the pool's idle workers to sleep now instead of after their spin: called before handing
/// the cores to OpenBLAS's own threads. The next tiller_pool_run wakes them.
void tiller_pool_park(void);

/// Sets glibc's mmap threshold to a fixed value (which also stops glibc from raising it each time
/// a large block is freed). Does nothing on other C libraries.
void tiller_fix_mmap_threshold(long bytes);
