#version 450
// The adjoint of psr_head.comp, first half: the per-row scalars, one work group per row n.
// With k = headIndex[n], s = w[k] . h[n] + bias[k] and lambda = f_k(s) (both dots reduced in
// one shared-memory tree): ds = (alpha[n] * (gradient[n] . z[k]) + gradLambda[n]) * f_k'(s)
// (relu: 0 at s <= 0; constant: 0) and alpha[n] * lambda, written to rowStats [N, 2] for
// psr_head_backward_heads.comp, which sums them per head and updates the gradient in place.
// A row without a valid head (index outside 0 ..< K, unknown activation code) gets (0, 0).
layout(local_size_x_id = 0) in;
const uint WG = gl_WorkGroupSize.x;  // a power of two

layout(set = 0, binding = 0) readonly buffer H { float h[]; };
layout(set = 0, binding = 1) readonly buffer W { float w[]; };
layout(set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(set = 0, binding = 3) readonly buffer Z { float z[]; };
layout(set = 0, binding = 4) readonly buffer Act { int activation[]; };
layout(set = 0, binding = 5) readonly buffer Index { int headIndex[]; };
layout(set = 0, binding = 6) readonly buffer Alpha { float alpha[]; };
layout(set = 0, binding = 7) readonly buffer GradLambda { float gradLambda[]; };  // any buffer when absent
layout(set = 0, binding = 8) readonly buffer Gradient { float gradient[]; };
layout(set = 0, binding = 9) writeonly buffer RowStats { float rowStats[]; };
layout(push_constant) uniform Push {
    uint offH, offW, offBias, offZ, offAct, offIndex, offAlpha, offGradLambda, offGradient, offStats;
    uint n, d, heads;
    uint hasGradLambda;
} pc;

shared float sPre[WG], sAlong[WG];

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= pc.n) return;  // uniform across the work group
    uint tid = gl_LocalInvocationID.x;
    int head = headIndex[pc.offIndex + row];
    int kind = head >= 0 && uint(head) < pc.heads ? activation[pc.offAct + uint(head)] : -1;
    if (kind < 0 || kind > 2) {
        if (tid == 0) { rowStats[pc.offStats + 2 * row] = 0.0; rowStats[pc.offStats + 2 * row + 1] = 0.0; }
        return;
    }
    uint base = row * pc.d, headBase = uint(head) * pc.d;
    float pre = 0.0, along = 0.0;
    for (uint i = tid; i < pc.d; i += WG) {
        pre += w[pc.offW + headBase + i] * h[pc.offH + base + i];
        along += gradient[pc.offGradient + base + i] * z[pc.offZ + headBase + i];
    }
    sPre[tid] = pre;
    sAlong[tid] = along;
    barrier();
    for (uint stride = WG / 2; stride > 0; stride >>= 1) {
        if (tid < stride) {
            sPre[tid] += sPre[tid + stride];
            sAlong[tid] += sAlong[tid + stride];
        }
        barrier();
    }
    if (tid == 0) {
        float s = sPre[0] + bias[pc.offBias + uint(head)];
        float lambda, slope;
        if (kind == 0) { lambda = max(s, 0.0); slope = s > 0.0 ? 1.0 : 0.0; }
        else if (kind == 1) { lambda = s; slope = 1.0; }
        else { lambda = 1.0; slope = 0.0; }
        float a = alpha[pc.offAlpha + row];
        float extra = pc.hasGradLambda != 0u ? gradLambda[pc.offGradLambda + row] : 0.0;
        rowStats[pc.offStats + 2 * row] = (a * sAlong[0] + extra) * slope;
        rowStats[pc.offStats + 2 * row + 1] = a * lambda;
    }
}
