#version 450
#extension GL_EXT_control_flow_attributes : require
// Causal grouped-query attention over a padded batch in one pass, with an online softmax
// (flash-attention style): the scores never leave shared memory.
//
// One workgroup per (tile of stacked query rows, KV head g, sequence b). The query heads that share KV head g
// are stacked into rows R = t * group + i (position t, query head g * group + i), as in the CPU
// backend, so one K/V tile serves every head of the group. A workgroup takes BR consecutive
// stacked rows and walks the keys its rows can see in tiles of BC:
//   1. K tile -> shared (row stride D + 1: the score loop reads it without bank conflicts),
//   2. scores S[r][j] = softcap(scale * q_r . k_j), masked keys marked with NEG; an
//      invocation owns ceil(BR * BC / WG) scores of one key, so each K read serves all of them,
//   3. per row: running max m and sum l in f32, P = exp(S - m_new), the old state rescaled by
//      exp(m_old - m_new); meanwhile the V tile replaces the K tile,
//   4. O[r][c] = O[r][c] * rescale[r] + sum_j P[r][j] V[j][c], O held in registers: each
//      invocation owns ceil(BR * D / WG) elements of the tile's output.
// Masked keys get a weight of exactly 0 (never exp of a sentinel), and rows that see no key
// (padding: t >= lengths[b]) are written as exact zeros.
//
// Bindings: 0 q [B, T, Hq, D], 1 k and 2 v [B, S, Hkv, D], 3 out [B, T, Hq, D],
// 4 meta i32 [2B]: starts then lengths. Sequences whose metadata does not fit (never the case
// after the host's checks) are treated as empty rather than read out of bounds.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint D = 64;   // head dim
layout(constant_id = 2) const uint BR = 16;  // stacked query rows per workgroup
layout(constant_id = 3) const uint BC = 32;  // keys per tile

const uint WG = gl_WorkGroupSize.x;
const uint KS = D + 1;                       // padded K/V row stride in shared memory
const uint PER = (BR * D + WG - 1) / WG;     // output elements per invocation
const uint NS = (BR * BC + WG - 1) / WG;     // scores per invocation per tile
const float NEG = -3.402823466e38;           // a masked score (and the initial running max)

layout(set = 0, binding = 0) readonly buffer Q { float q[]; };
layout(set = 0, binding = 1) readonly buffer K { float k[]; };
layout(set = 0, binding = 2) readonly buffer V { float v[]; };
layout(set = 0, binding = 3) writeonly buffer O { float o[]; };
layout(set = 0, binding = 4) readonly buffer M { int meta[]; };
layout(push_constant) uniform Push {
    uint offQ, offK, offV, offO, offMeta;
    uint B, T, S, Hq, Hkv, group;
    int window;       // 0: no sliding window
    float scale;
    float softcap;    // 0: none
} pc;

shared float sQ[BR * D];
shared float sKV[BC * KS];
shared float sP[BR * BC];
shared float sMax[BR], sSum[BR], sRescale[BR];
shared int sPos[BR], sLo[BR];  // each row's position and first visible key (-1, 0 for none)

// cap * tanh(x / cap): an odd series near 0 (where (1 - e) / (1 + e) would cancel), and
// otherwise through exp(-2|y|), which cannot overflow for large |y|.
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
    uint tid = gl_LocalInvocationID.x;
    // Grid: x * (y / Hkv) numbers the row tiles (y carries the overflow past x's limit),
    // y % Hkv is the KV head, z the sequence.
    uint g = gl_WorkGroupID.y % pc.Hkv, b = gl_WorkGroupID.z;
    uint tile = gl_WorkGroupID.x + (gl_WorkGroupID.y / pc.Hkv) * gl_NumWorkGroups.x;
    uint rows = pc.T * pc.group;             // stacked rows per sequence
    uint firstRow = tile * BR;               // past rows: the workgroup does nothing

    int start = meta[pc.offMeta + b], len = meta[pc.offMeta + pc.B + b];
    if (start < 0 || len < 0 || uint(len) > pc.T || uint(start) + uint(len) > pc.S) { start = 0; len = 0; }

    // The keys any row of this tile sees: keyLo ..< keyHi (workgroup-uniform).
    uint tFirst = firstRow / pc.group;
    int keyLo = 0, keyHi = 0;
    if (firstRow < rows && tFirst < uint(len)) {
        uint tLast = min((min(firstRow + BR, rows) - 1) / pc.group, uint(len) - 1);
        keyLo = pc.window > 0 ? max(0, start + int(tFirst) - pc.window + 1) : 0;
        keyHi = start + int(tLast) + 1;
    }

    if (tid < BR) {
        uint row = firstRow + tid, t = row / pc.group;
        bool valid = row < rows && t < uint(len);
        int pos = start + int(t);
        sPos[tid] = valid ? pos : -1;
        sLo[tid] = valid && pc.window > 0 ? max(0, pos - pc.window + 1) : 0;
        sMax[tid] = NEG;
        sSum[tid] = 0.0;
    }
    for (uint e = tid; e < BR * D; e += WG) {
        uint r = e / D, c = e % D, row = firstRow + r, t = row / pc.group;
        uint h = g * pc.group + row % pc.group;
        bool valid = row < rows && t < uint(len);
        sQ[e] = valid ? q[pc.offQ + ((b * pc.T + t) * pc.Hq + h) * D + c] : 0.0;
    }

    float acc[PER];
    [[unroll]] for (uint i = 0; i < PER; i++) acc[i] = 0.0;
    barrier();

    for (int key0 = keyLo; key0 < keyHi; key0 += int(BC)) {
        for (uint e = tid; e < BC * D; e += WG) {
            uint j = e / D, c = e % D;
            int key = key0 + int(j);
            sKV[j * KS + c] = key < keyHi ? k[pc.offK + ((b * pc.S + uint(key)) * pc.Hkv + g) * D + c] : 0.0;
        }
        barrier();

        // Invocation tid owns scores e = tid + n * WG: BC divides WG, so all its scores share
        // one key j and each K element read serves NS dot products.
        float dots[NS];
        [[unroll]] for (uint n = 0; n < NS; n++) dots[n] = 0.0;
        uint jOwn = tid % BC;
        for (uint c = 0; c < D; c++) {
            float kc = sKV[jOwn * KS + c];
            [[unroll]] for (uint n = 0; n < NS; n++) {
                uint r = min((tid + n * WG) / BC, BR - 1);
                dots[n] += sQ[r * D + c] * kc;
            }
        }
        [[unroll]] for (uint n = 0; n < NS; n++) {
            uint e = tid + n * WG, r = e / BC;
            int key = key0 + int(jOwn);
            if (e < BR * BC) {
                float s = NEG;
                if (key <= sPos[r] && key >= sLo[r]) {
                    s = dots[n] * pc.scale;
                    if (pc.softcap > 0.0) s = capped(s, pc.softcap);
                }
                sP[e] = s;
            }
        }
        barrier();

        if (tid < BR) {
            float previous = sMax[tid], largest = previous;
            for (uint j = 0; j < BC; j++) largest = max(largest, sP[tid * BC + j]);
            float sum = 0.0;
            for (uint j = 0; j < BC; j++) {
                float s = sP[tid * BC + j];
                float p = s == NEG ? 0.0 : exp(s - largest);
                sP[tid * BC + j] = p;
                sum += p;
            }
            float rescale = previous == NEG ? 0.0 : exp(previous - largest);
            sMax[tid] = largest;
            sSum[tid] = sSum[tid] * rescale + sum;
            sRescale[tid] = rescale;
        }
        for (uint e = tid; e < BC * D; e += WG) {
            uint j = e / D, c = e % D;
            int key = key0 + int(j);
            sKV[j * KS + c] = key < keyHi ? v[pc.offV + ((b * pc.S + uint(key)) * pc.Hkv + g) * D + c] : 0.0;
        }
        barrier();

        [[unroll]] for (uint i = 0; i < PER; i++) acc[i] *= sRescale[min((tid + i * WG) / D, BR - 1)];
        for (uint j = 0; j < BC; j++) {
            [[unroll]] for (uint i = 0; i < PER; i++) {
                uint e = tid + i * WG, r = min(e / D, BR - 1), c = e % D;
                acc[i] += sP[r * BC + j] * sKV[j * KS + c];
            }
        }
        barrier();
    }

    [[unroll]] for (uint i = 0; i < PER; i++) {
        uint e = tid + i * WG;
        uint r = e / D, c = e % D, row = firstRow + r;
        if (e < BR * D && row < rows) {
            uint t = row / pc.group, h = g * pc.group + row % pc.group;
            float l = sSum[r];
            o[pc.offO + ((b * pc.T + t) * pc.Hq + h) * D + c] = sPos[r] >= 0 && l > 0.0 ? acc[i] / l : 0.0;
        }
    }
}
