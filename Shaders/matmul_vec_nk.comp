#version 450
// Decode-shaped matmul (M <= MROWS <= 8) with W [N, K] (HF Linear): out[b] = x[b] . W[b]^T
// (+ bias) (+ out). Batch b is gl_WorkGroupID.z.
//
// W streams from memory exactly once: a workgroup owns COLS rows of W (output columns n); its
// invocations stride over K together (consecutive invocations read consecutive words, so every
// read is coalesced) and each multiplies the weight it read into all M rows of x at once, keeping
// MROWS x COLS f32 partial sums in registers. A tree in shared memory reduces them at the end.
// 16-bit weights are read as 32-bit words, two values per read, whatever the row's alignment.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;   // a power of two
layout(constant_id = 1) const uint MROWS = 8;  // M rounded up to a power of two; rows >= M are skipped
layout(constant_id = 2) const uint COLS = 2;   // output columns per workgroup
layout(constant_id = 3) const uint WDTYPE = 0; // 0: f32, 1: f16, 2: bf16

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer W { uint w[]; };
layout(set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(set = 0, binding = 3) buffer O { float o[]; };
layout(push_constant) uniform Push {
    uint offX, offW, offB, offO;
    uint M, N, K;
    uint flags;                   // 1: add bias, 2: add the previous out
    uint xBatch, wBatch, oBatch;
} pc;

shared float red[COLS * MROWS * WG];  // red[(c * MROWS + m) * WG + invocation]

vec2 widen(uint word) {
    if (WDTYPE == 2) return vec2(uintBitsToFloat(word << 16), uintBitsToFloat(word & 0xFFFF0000u));
    return unpackHalf2x16(word);
}

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint n0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * COLS;
    if (n0 >= pc.N) return;  // the spare groups of a 2D grid; uniform over the workgroup
    uint b = gl_WorkGroupID.z;
    uint xBase = pc.offX + b * pc.xBatch;
    uint wBase = pc.offW + b * pc.wBatch;
    uint oBase = pc.offO + b * pc.oBatch;

    float acc[COLS * MROWS];
    for (uint i = 0; i < COLS * MROWS; i++) acc[i] = 0.0;

    for (uint c = 0; c < COLS; c++) {
        uint n = n0 + c;
        if (n >= pc.N) break;
        uint s = wBase + n * pc.K;  // the row's first element, in W's dtype
        if (WDTYPE == 0) {
            for (uint k = lid; k < pc.K; k += WG) {
                float wv = uintBitsToFloat(w[s + k]);
                for (uint m = 0; m < MROWS; m++)
                    if (m < pc.M) acc[c * MROWS + m] = fma(wv, x[xBase + m * pc.K + k], acc[c * MROWS + m]);
            }
        } else {
            // Words w0...w1 cover the row; the first and last may hold a neighbour's value.
            uint w0 = s >> 1, w1 = (s + pc.K - 1u) >> 1;
            for (uint wi = w0 + lid; wi <= w1; wi += WG) {
                vec2 f = widen(w[wi]);
                uint k = 2u * wi - s;  // K index of the low half (wraps to ~0 when it precedes the row)
                bool lo = 2u * wi >= s, hi = k + 1u < pc.K;
                for (uint m = 0; m < MROWS; m++) {
                    if (m >= pc.M) break;
                    uint xr = xBase + m * pc.K;
                    float a = acc[c * MROWS + m];
                    if (lo) a = fma(f.x, x[xr + k], a);
                    if (hi) a = fma(f.y, x[xr + k + 1u], a);
                    acc[c * MROWS + m] = a;
                }
            }
        }
    }

    for (uint i = 0; i < COLS * MROWS; i++) red[i * WG + lid] = acc[i];
    barrier();
    for (uint stride = WG / 2; stride > 0; stride >>= 1) {
        if (lid < stride)
            for (uint i = 0; i < COLS * MROWS; i++) red[i * WG + lid] += red[i * WG + lid + stride];
        barrier();
    }
    for (uint i = lid; i < COLS * MROWS; i += WG) {
        uint c = i / MROWS, m = i % MROWS, n = n0 + c;
        if (m >= pc.M || n >= pc.N) continue;
        float v = red[i * WG];
        if ((pc.flags & 1u) != 0u) v += bias[pc.offB + n];
        uint oi = oBase + m * pc.N + n;
        if ((pc.flags & 2u) != 0u) v += o[oi];
        o[oi] = v;
    }
}
