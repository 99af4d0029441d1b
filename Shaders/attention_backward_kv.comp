#version 450
#extension GL_EXT_control_flow_attributes : require
// The adjoint of attention.comp, second half: dK and dV for one (sequence b, key row s, KV head
// g) per work group, iterating the (query row, query head of g's group) pairs that see the key
// in row order, then head order. Each pair's probability and score gradient are recomputed from
// the row's logsumexp and D = sum_j P_j dP_j that attention_backward_query.comp stored:
//   P = exp(score - lse), dS = P (gradOut . v_s - D) cap'(score) scale,
// one pair per invocation over tiles of WG pairs into shared memory; then each invocation
// accumulates its columns of dV = sum P gradOut_t and dK = sum dS q_t in pair order
// (deterministic, no atomics). Keys no query sees (past the sequence, outside every window)
// get exact zeros: gradK and gradV are written whole.
//
// Bindings: 0 q [B, T, Hq, D], 1 k and 2 v [B, S, Hkv, D], 3 gradOut [B, T, Hq, D],
// 4 meta i32 [2B] (starts then lengths), 5 stats f32 [B, T, Hq, 2] (lse, D),
// 6 gradK and 7 gradV [B, S, Hkv, D].
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint D = 64;   // head dim

const uint WG = gl_WorkGroupSize.x;
const uint PER = (D + WG - 1) / WG;          // columns per invocation

layout(set = 0, binding = 0) readonly buffer Q { float q[]; };
layout(set = 0, binding = 1) readonly buffer K { float k[]; };
layout(set = 0, binding = 2) readonly buffer V { float v[]; };
layout(set = 0, binding = 3) readonly buffer G { float gradOut[]; };
layout(set = 0, binding = 4) readonly buffer M { int meta[]; };
layout(set = 0, binding = 5) readonly buffer Stats { float stats[]; };
layout(set = 0, binding = 6) writeonly buffer DK { float dk[]; };
layout(set = 0, binding = 7) writeonly buffer DV { float dv[]; };
layout(push_constant) uniform Push {
    uint offQ, offK, offV, offG, offMeta, offStats, offDK, offDV;
    uint B, T, S, Hq, Hkv, group;
    int window;       // 0: no sliding window
    float scale;
    float softcap;    // 0: none
} pc;

shared float sK[D], sV[D];
shared float sP[WG], sDS[WG];

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
    if (index >= pc.B * pc.S * pc.Hkv) return;  // uniform across the work group
    uint tid = gl_LocalInvocationID.x;
    uint g = index % pc.Hkv, key = (index / pc.Hkv) % pc.S, b = index / (pc.Hkv * pc.S);
    uint kvBase = index * D;

    int start = meta[pc.offMeta + b], len = meta[pc.offMeta + pc.B + b];
    if (start < 0 || len < 0 || uint(len) > pc.T || uint(start) + uint(len) > pc.S) { start = 0; len = 0; }
    // Query rows whose position start + t lies in key ... key + window - 1.
    int tLo = max(0, int(key) - start), tHi = len;
    if (pc.window > 0) tHi = min(tHi, int(key) + pc.window - start);
    uint pairs = tLo < tHi ? uint(tHi - tLo) * pc.group : 0u;

    for (uint c = tid; c < D; c += WG) {
        sK[c] = k[pc.offK + kvBase + c];
        sV[c] = v[pc.offV + kvBase + c];
    }
    barrier();

    float accK[PER], accV[PER];
    [[unroll]] for (uint i = 0; i < PER; i++) { accK[i] = 0.0; accV[i] = 0.0; }
    for (uint e0 = 0; e0 < pairs; e0 += WG) {
        uint e = e0 + tid;
        float p = 0.0, ds = 0.0;
        if (e < pairs) {
            uint t = uint(tLo) + e / pc.group, h = g * pc.group + e % pc.group;
            uint row = (b * pc.T + t) * pc.Hq + h, rowBase = row * D;
            float dot = 0.0, dp = 0.0;
            for (uint c = 0; c < D; c++) {
                dot += q[pc.offQ + rowBase + c] * sK[c];
                dp += gradOut[pc.offG + rowBase + c] * sV[c];
            }
            float s = dot * pc.scale, slope = 1.0;
            if (pc.softcap > 0.0) {
                s = capped(s, pc.softcap);
                float th = s / pc.softcap;
                slope = 1.0 - th * th;
            }
            p = exp(s - stats[pc.offStats + 2 * row]);
            ds = p * (dp - stats[pc.offStats + 2 * row + 1]) * slope * pc.scale;
        }
        sP[tid] = p;
        sDS[tid] = ds;
        barrier();
        uint n = min(WG, pairs - e0);
        for (uint j = 0; j < n; j++) {
            uint t = uint(tLo) + (e0 + j) / pc.group, h = g * pc.group + (e0 + j) % pc.group;
            uint rowBase = ((b * pc.T + t) * pc.Hq + h) * D;
            float pj = sP[j], dsj = sDS[j];
            [[unroll]] for (uint i = 0; i < PER; i++) {
                uint c = tid + i * WG;
                if (c < D) {
                    accV[i] += pj * gradOut[pc.offG + rowBase + c];
                    accK[i] += dsj * q[pc.offQ + rowBase + c];
                }
            }
        }
        barrier();
    }
    [[unroll]] for (uint i = 0; i < PER; i++) {
        uint c = tid + i * WG;
        if (c < D) {
            dk[pc.offDK + kvBase + c] = accK[i];
            dv[pc.offDV + kvBase + c] = accV[i];
        }
    }
}
