#version 450
// Prefill-shaped matmul: out[b] = x[b] . W[b] (+ bias) (+ out), x [M, K] f32, W [N, K] (nk) or
// [K, N] (kn) in f32, f16 or bf16, out [M, N] f32. Batch b is gl_WorkGroupID.z (per-batch strides
// in push constants; wBatch = 0 shares one W).
//
// One workgroup computes a BM x BN tile of out. Each step it stages a BM x BK slab of x and a
// BK x BN slab of W (widened to f32) in shared memory, both k-major so the inner loop reads rows;
// each invocation then accumulates a TM x TN block of outputs in registers. The block is strided
// (rows ty + i*TY, columns tx + j*TX), so neighbouring invocations read neighbouring shared words
// (no bank conflicts) and write neighbouring output columns (coalesced). Tile sizes and the
// workgroup size (TX * TY = (BN/TN) * (BM/TM)) are specialization constants set by the host.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint THREADS = 256;
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 16;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;
layout(constant_id = 6) const uint WDTYPE = 0;  // 0: f32, 1: f16, 2: bf16
layout(constant_id = 7) const uint LAYOUT = 0;  // 0: W [N, K], 1: W [K, N]

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
// 16-bit weights are read as 32-bit words holding two values each: no 16-bit storage needed.
layout(set = 0, binding = 1) readonly buffer W { uint w[]; };
layout(set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(set = 0, binding = 3) buffer O { float o[]; };
layout(push_constant) uniform Push {
    uint offX, offW, offB, offO;  // element offsets (offW in units of W's dtype)
    uint M, N, K;
    uint flags;                   // 1: add bias, 2: add the previous out
    uint xBatch, wBatch, oBatch;  // elements per batch
} pc;

const uint TX = BN / TN;  // invocations across a tile's columns
const uint TY = BM / TM;  // and down its rows
const uint SA = BM + 1;   // padded strides: the transposing stores hit distinct banks
const uint SB = BN + 1;
shared float As[BK * SA];  // As[k * SA + row]
shared float Bs[BK * SB];  // Bs[k * SB + column]

// W element i (counted from the start of the binding, in W's dtype) as f32.
float loadW(uint i) {
    if (WDTYPE == 0) return uintBitsToFloat(w[i]);
    uint word = w[i >> 1];
    uint h = (i & 1u) != 0u ? word >> 16 : word & 0xFFFFu;
    if (WDTYPE == 2) return uintBitsToFloat(h << 16);
    return unpackHalf2x16(h).x;
}

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint tx = lid % TX, ty = lid / TX;
    uint n0 = gl_WorkGroupID.x * BN, m0 = gl_WorkGroupID.y * BM, b = gl_WorkGroupID.z;
    uint xBase = pc.offX + b * pc.xBatch;
    uint wBase = pc.offW + b * pc.wBatch;
    uint oBase = pc.offO + b * pc.oBatch;

    float acc[TM * TN];
    for (uint i = 0; i < TM * TN; i++) acc[i] = 0.0;

    for (uint k0 = 0; k0 < pc.K; k0 += BK) {
        // x slab: consecutive invocations read consecutive k of one row.
        for (uint i = lid; i < BM * BK; i += THREADS) {
            uint r = i / BK, kk = i % BK;
            uint gm = m0 + r, gk = k0 + kk;
            float v = 0.0;
            if (gm < pc.M && gk < pc.K) v = x[xBase + gm * pc.K + gk];
            As[kk * SA + r] = v;
        }
        // W slab: consecutive invocations read along W's contiguous dimension.
        for (uint i = lid; i < BN * BK; i += THREADS) {
            uint c, kk;
            if (LAYOUT == 0) { c = i / BK; kk = i % BK; } else { kk = i / BN; c = i % BN; }
            uint gn = n0 + c, gk = k0 + kk;
            float v = 0.0;
            if (gn < pc.N && gk < pc.K) v = loadW(wBase + (LAYOUT == 0 ? gn * pc.K + gk : gk * pc.N + gn));
            Bs[kk * SB + c] = v;
        }
        barrier();
        for (uint kk = 0; kk < BK; kk++) {
            float a[TM];
            float bv[TN];
            for (uint i = 0; i < TM; i++) a[i] = As[kk * SA + ty + i * TY];
            for (uint j = 0; j < TN; j++) bv[j] = Bs[kk * SB + tx + j * TX];
            for (uint i = 0; i < TM; i++)
                for (uint j = 0; j < TN; j++) acc[i * TN + j] = fma(a[i], bv[j], acc[i * TN + j]);
        }
        barrier();
    }

    for (uint i = 0; i < TM; i++) {
        uint gm = m0 + ty + i * TY;
        if (gm >= pc.M) break;
        for (uint j = 0; j < TN; j++) {
            uint gn = n0 + tx + j * TX;
            if (gn >= pc.N) break;
            float v = acc[i * TN + j];
            if ((pc.flags & 1u) != 0u) v += bias[pc.offB + gn];
            uint oi = oBase + gm * pc.N + gn;
            if ((pc.flags & 2u) != 0u) v += o[oi];
            o[oi] = v;
        }
    }
}
