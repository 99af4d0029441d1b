#version 450
#extension GL_EXT_control_flow_attributes : require
// The adjoint of attention.comp, first half: dQ for one (sequence b, query row t, query head h)
// per work group, recomputing the row's softmax instead of reading stored probabilities.
//   pass 1, over the keys the row sees (each invocation a strided slice): an online
//     (max m, sum l of exp(s - m), sum a of exp(s - m) * dP) with dP_j = gradOut . v_j, merged
//     by a shared-memory tree: lse = m + log(l) and D = a / l = sum_j P_j dP_j;
//   pass 2, over tiles of WG keys: each invocation one key's dS_j = P_j (dP_j - D) cap'(s_j) scale
//     into shared memory, then each invocation accumulates its columns of dQ = sum_j dS_j k_j in
//     key order (deterministic, no atomics).
// lse and D go to `stats` [B, T, Hq, 2] for attention_backward_kv.comp, which then needs no
// [T, S] matrix either. Padding rows (t >= lengths[b]) get dQ = 0 and stats 0.
//
// Bindings: 0 q [B, T, Hq, D], 1 k and 2 v [B, S, Hkv, D], 3 gradOut [B, T, Hq, D],
// 4 meta i32 [2B] (starts then lengths), 5 gradQ [B, T, Hq, D], 6 stats f32 [B, T, Hq, 2].
layout(local_size_x_id = 0) in;              // a power of two
layout(constant_id = 1) const uint D = 64;   // head dim

const uint WG = gl_WorkGroupSize.x;
const uint PER = (D + WG - 1) / WG;          // dQ columns per invocation
const float NEG = -3.402823466e38;           // the running max before any key

layout(set = 0, binding = 0) readonly buffer Q { float q[]; };
layout(set = 0, binding = 1) readonly buffer K { float k[]; };
layout(set = 0, binding = 2) readonly buffer V { float v[]; };
layout(set = 0, binding = 3) readonly buffer G { float gradOut[]; };
layout(set = 0, binding = 4) readonly buffer M { int meta[]; };
layout(set = 0, binding = 5) writeonly buffer DQ { float dq[]; };
layout(set = 0, binding = 6) writeonly buffer Stats { float stats[]; };
layout(push_constant) uniform Push {
    uint offQ, offK, offV, offG, offMeta, offDQ, offStats;
    uint B, T, S, Hq, Hkv, group;
    int window;       // 0: no sliding window
    float scale;
    float softcap;    // 0: none
} pc;

shared float sQ[D], sG[D];
shared float sM[WG], sL[WG], sA[WG];
shared float sDS[WG];

// cap * tanh(x / cap), as in attention.comp.
float capped(float x, float cap) {
    float y = x / cap, a = abs(y);
    float t;
    if (a < 0.25) {
        float y2 = y * y;
        t = y * (1.0 + y2 * (-1.0 / 3.0 + y2 * (2.0 / 15.0 + y2 * (-17.0 / 315.0 + y2 * (62.0 / 2835.0)))));
    } else {
        float e = exp(-2.0 * a);
        t = sign(y) * ((1.0 - e) / (1.0 + e));
    }
    return cap * t;
}

void main() {
    uint index = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (index >= pc.B * pc.T * pc.Hq) return;  // uniform across the work group
    uint tid = gl_LocalInvocationID.x;
    uint h = index % pc.Hq, t = (index / pc.Hq) % pc.T, b = index / (pc.Hq * pc.T);
    uint g = h / pc.group;
    uint rowBase = index * D;

    int start = meta[pc.offMeta + b], len = meta[pc.offMeta + pc.B + b];
    if (start < 0 || len < 0 || uint(len) > pc.T || uint(start) + uint(len) > pc.S) { start = 0; len = 0; }
    if (t >= uint(len)) {
        for (uint c = tid; c < D; c += WG) dq[pc.offDQ + rowBase + c] = 0.0;
        if (tid == 0) { stats[pc.offStats + 2 * index] = 0.0; stats[pc.offStats + 2 * index + 1] = 0.0; }
        return;
    }
    int pos = start + int(t);
    int keyLo = pc.window > 0 ? max(0, pos - pc.window + 1) : 0, keyHi = pos + 1;

    for (uint c = tid; c < D; c += WG) {
        sQ[c] = q[pc.offQ + rowBase + c];
        sG[c] = gradOut[pc.offG + rowBase + c];
    }
    barrier();

    // Pass 1: online max, sum and P-weighted dP.
    float m = NEG, l = 0.0, a = 0.0;
    for (int key = keyLo + int(tid); key < keyHi; key += int(WG)) {
        uint kvBase = ((b * pc.S + uint(key)) * pc.Hkv + g) * D;
        float dot = 0.0, dp = 0.0;
        for (uint c = 0; c < D; c++) {
            dot += sQ[c] * k[pc.offK + kvBase + c];
            dp += sG[c] * v[pc.offV + kvBase + c];
        }
        float s = dot * pc.scale;
        if (pc.softcap > 0.0) s = capped(s, pc.softcap);
        if (s > m) {
            float r = m == NEG ? 0.0 : exp(m - s);
            l = l * r + 1.0;
            a = a * r + dp;
            m = s;
        } else {
            float p = exp(s - m);
            l += p;
            a += p * dp;
        }
    }
    sM[tid] = m;
    sL[tid] = l;
    sA[tid] = a;
    barrier();
    for (uint stride = WG / 2; stride > 0; stride >>= 1) {
        if (tid < stride) {
            float m1 = sM[tid], m2 = sM[tid + stride], mm = max(m1, m2);
            float r1 = m1 == NEG ? 0.0 : exp(m1 - mm), r2 = m2 == NEG ? 0.0 : exp(m2 - mm);
            sM[tid] = mm;
            sL[tid] = sL[tid] * r1 + sL[tid + stride] * r2;
            sA[tid] = sA[tid] * r1 + sA[tid + stride] * r2;
        }
        barrier();
    }
    // The row sees at least its own position, so l >= 1.
    float lse = sM[0] + log(sL[0]), meanDP = sA[0] / sL[0];

    // Pass 2: dQ over tiles of keys.
    float acc[PER];
    [[unroll]] for (uint i = 0; i < PER; i++) acc[i] = 0.0;
    for (int key0 = keyLo; key0 < keyHi; key0 += int(WG)) {
        int key = key0 + int(tid);
        float ds = 0.0;
        if (key < keyHi) {
            uint kvBase = ((b * pc.S + uint(key)) * pc.Hkv + g) * D;
            float dot = 0.0, dp = 0.0;
            for (uint c = 0; c < D; c++) {
                dot += sQ[c] * k[pc.offK + kvBase + c];
                dp += sG[c] * v[pc.offV + kvBase + c];
            }
            float s = dot * pc.scale, slope = 1.0;
            if (pc.softcap > 0.0) {
                s = capped(s, pc.softcap);
                float th = s / pc.softcap;
                slope = 1.0 - th * th;
            }
            ds = exp(s - lse) * (dp - meanDP) * slope * pc.scale;
        }
        sDS[tid] = ds;
        barrier();
        uint n = uint(min(int(WG), keyHi - key0));
        for (uint j = 0; j < n; j++) {
            uint kvBase = ((b * pc.S + uint(key0) + j) * pc.Hkv + g) * D;
            float dsj = sDS[j];
            [[unroll]] for (uint i = 0; i < PER; i++) {
                uint c = tid + i * WG;
                if (c < D) acc[i] += dsj * k[pc.offK + kvBase + c];
            }
        }
        barrier();
    }
    [[unroll]] for (uint i = 0; i < PER; i++) {
        uint c = tid + i * WG;
        if (c < D) dq[pc.offDQ + rowBase + c] = acc[i];
    }
    if (tid == 0) {
        stats[pc.offStats + 2 * index] = lse;
        stats[pc.offStats + 2 * index + 1] = meanDP;
    }
}
