#version 450
// Decode-shaped matmul (M <= MROWS <= 8) with W [K, N]: out[b] = x[b] . W[b] (+ bias) (+ out).
// Batch b is gl_WorkGroupID.z.
//
// W streams from memory exactly once: a workgroup owns CX consecutive output columns and splits
// K into KS = WG / CX interleaved slices. Invocation (column c, slice s) reads W[k, n0 + c] for
// k = s, s + KS, ... (neighbouring invocations read neighbouring columns: coalesced) and
// multiplies it into all M rows of x at once, keeping MROWS f32 partial sums in registers; the
// KS slices are summed through shared memory at the end.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint MROWS = 8;  // M rounded up to a power of two; rows >= M are skipped
layout(constant_id = 2) const uint CX = 64;    // output columns per workgroup; WG is a multiple
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

const uint KS = WG / CX;
shared float red[MROWS * WG];  // red[(m * KS + slice) * CX + column]

float loadW(uint i) {
    if (WDTYPE == 0) return uintBitsToFloat(w[i]);
    uint word = w[i >> 1];
    uint h = (i & 1u) != 0u ? word >> 16 : word & 0xFFFFu;
    if (WDTYPE == 2) return uintBitsToFloat(h << 16);
    return unpackHalf2x16(h).x;
}

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint cx = lid % CX, slice = lid / CX;
    uint n0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * CX;
    if (n0 >= pc.N) return;  // the spare groups of a 2D grid; uniform over the workgroup
    uint b = gl_WorkGroupID.z;
    uint xBase = pc.offX + b * pc.xBatch;
    uint wBase = pc.offW + b * pc.wBatch;
    uint oBase = pc.offO + b * pc.oBatch;
    uint n = n0 + cx;

    float acc[MROWS];
    for (uint m = 0; m < MROWS; m++) acc[m] = 0.0;
    if (n < pc.N) {
        for (uint k = slice; k < pc.K; k += KS) {
            float wv = loadW(wBase + k * pc.N + n);
            for (uint m = 0; m < MROWS; m++)
                if (m < pc.M) acc[m] = fma(wv, x[xBase + m * pc.K + k], acc[m]);
        }
    }
    for (uint m = 0; m < MROWS; m++) red[(m * KS + slice) * CX + cx] = acc[m];
    barrier();
    for (uint i = lid; i < MROWS * CX; i += WG) {
        uint m = i / CX, c = i % CX, col = n0 + c;
        if (m >= pc.M || col >= pc.N) continue;
        float v = 0.0;
        for (uint s = 0; s < KS; s++) v += red[(m * KS + s) * CX + c];
        if ((pc.flags & 1u) != 0u) v += bias[pc.offB + col];
        uint oi = oBase + m * pc.N + col;
        if ((pc.flags & 2u) != 0u) v += o[oi];
        o[oi] = v;
    }
}
