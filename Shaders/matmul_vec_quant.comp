#version 450
// Matmul with ggml-quantized weights W [N, K] (q8_0, q4_0, q4_1, q4_K; layouts in TillerCore's
// QuantizedBlocks.swift): out = x . W^T (+ bias) (+ out), x [M, K]. The blocks are decoded here,
// never widened whole: W streams from memory once per MROWS rows of x.
//
// A workgroup owns COLS rows of W and MROWS rows of x (rows m0 = gl_WorkGroupID.z * MROWS on);
// its invocations stride over the row's 32-value units (a q8_0/q4_0/q4_1 block, or one sub-block
// of a q4_K super-block), decode each into registers and multiply it into every row of x, keeping
// MROWS x COLS partial sums; a tree in shared memory reduces them at the end. Blocks sit at even
// byte addresses in a word buffer, so they are read as 16-bit halves of 32-bit words.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;    // a power of two
layout(constant_id = 1) const uint MROWS = 8;  // rows of x per workgroup; rows >= M are skipped
layout(constant_id = 2) const uint COLS = 2;   // output columns per workgroup
layout(constant_id = 3) const uint QTYPE = 0;  // 0: q8_0, 1: q4_0, 2: q4_1, 3: q4_K

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer W { uint w[]; };
layout(set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(set = 0, binding = 3) buffer O { float o[]; };
layout(push_constant) uniform Push {
    uint offX, offW, offB, offO;  // offW in bytes, the others in floats
    uint M, N, K;
    uint flags;                   // 1: add bias, 2: add the previous out
    uint rowBytes;                // bytes of one row of W
} pc;

shared float red[COLS * MROWS * WG];  // red[(c * MROWS + m) * WG + invocation]

// The 16 bits at even byte address a.
uint half16(uint a) {
    uint word = w[a >> 2];
    return (a & 2u) != 0u ? word >> 16 : word & 0xFFFFu;
}

float f16at(uint a) { return unpackHalf2x16(half16(a)).x; }

uint byteAt(uint a) { return (w[a >> 2] >> ((a & 3u) * 8u)) & 0xFFu; }

// q4_K's 6-bit scale and min of sub-block j from the twelve bytes at q (get_scale_min_k4).
vec2 scaleMin(uint j, uint q) {
    if (j < 4u) return vec2(float(byteAt(q + j) & 63u), float(byteAt(q + j + 4u) & 63u));
    uint d = (byteAt(q + j + 4u) & 15u) | ((byteAt(q + j - 4u) >> 6) << 4);
    uint m = (byteAt(q + j + 4u) >> 4) | ((byteAt(q + j) >> 6) << 4);
    return vec2(float(d), float(m));
}

float acc[COLS * MROWS];
uint xBase[MROWS];

void add(uint c, uint k, float v) {
    for (uint m = 0; m < MROWS; m++) {
        if (m < pc.M - min(pc.M, gl_WorkGroupID.z * MROWS)) acc[c * MROWS + m] = fma(v, x[xBase[m] + k], acc[c * MROWS + m]);
    }
}

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint n0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * COLS;
    if (n0 >= pc.N) return;  // the spare groups of a 2D grid; uniform over the workgroup
    uint m0 = gl_WorkGroupID.z * MROWS;
    for (uint m = 0; m < MROWS; m++) xBase[m] = pc.offX + (m0 + m) * pc.K;
    for (uint i = 0; i < COLS * MROWS; i++) acc[i] = 0.0;

    uint units = pc.K / 32u;
    for (uint c = 0; c < COLS; c++) {
        uint n = n0 + c;
        if (n >= pc.N) break;
        uint row = pc.offW + n * pc.rowBytes;
        for (uint u = lid; u < units; u += WG) {
            uint k0 = 32u * u;
            if (QTYPE == 0u) {
                uint b = row + 34u * u;
                float d = f16at(b);
                for (uint h = 0; h < 16u; h++) {
                    int q = int(half16(b + 2u + 2u * h));
                    add(c, k0 + 2u * h, float(bitfieldExtract(q, 0, 8)) * d);
                    add(c, k0 + 2u * h + 1u, float(bitfieldExtract(q, 8, 8)) * d);
                }
            } else if (QTYPE == 1u || QTYPE == 2u) {
                uint b = row + (QTYPE == 1u ? 18u : 20u) * u;
                float d = f16at(b);
                float offset = QTYPE == 1u ? -8.0 * d : f16at(b + 2u);
                uint qs = b + (QTYPE == 1u ? 2u : 4u);
                for (uint h = 0; h < 8u; h++) {
                    uint q = half16(qs + 2u * h);
                    add(c, k0 + 2u * h, fma(float(q & 15u), d, offset));
                    add(c, k0 + 2u * h + 16u, fma(float((q >> 4) & 15u), d, offset));
                    add(c, k0 + 2u * h + 1u, fma(float((q >> 8) & 15u), d, offset));
                    add(c, k0 + 2u * h + 17u, fma(float(q >> 12), d, offset));
                }
            } else {
                uint sub = u % 8u;
                uint b = row + 144u * (u / 8u);
                vec2 sm = scaleMin(sub, b + 4u);
                float d1 = f16at(b) * sm.x, m1 = f16at(b + 2u) * sm.y;
                uint qs = b + 16u + 32u * (sub / 2u), shift = 4u * (sub & 1u);
                for (uint h = 0; h < 16u; h++) {
                    uint q = half16(qs + 2u * h) >> shift;
                    add(c, k0 + 2u * h, d1 * float(q & 15u) - m1);
                    add(c, k0 + 2u * h + 1u, d1 * float((q >> 8) & 15u) - m1);
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
        if (m0 + m >= pc.M || n >= pc.N) continue;
        float v = red[i * WG];
        if ((pc.flags & 1u) != 0u) v += bias[pc.offB + n];
        uint oi = pc.offO + (m0 + m) * pc.N + n;
        if ((pc.flags & 2u) != 0u) v += o[oi];
        o[oi] = v;
    }
}
