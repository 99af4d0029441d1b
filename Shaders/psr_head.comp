#version 450
// The PSR coefficient head, fused in one pass over h: one workgroup per row n. With
// k = headIndex[n]: lambda = f_k(w[k] . h[n] + bias[k]) (f: 0 relu, 1 identity, 2 constant 1),
// the dot reduced in shared memory, then h[n] += alpha[n] * lambda * z[k] while the row is
// still in cache; lambda[n] = 0 where the row has no head. A head index outside 0 ..< K, or a
// head whose activation code is unknown, counts as no head (the host rejects both when it
// knows the values; indices produced on the device are only guarded here).
layout(local_size_x_id = 0) in;
const uint WG = gl_WorkGroupSize.x;  // a power of two

layout(set = 0, binding = 0) buffer H { float h[]; };
layout(set = 0, binding = 1) readonly buffer W { float w[]; };
layout(set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(set = 0, binding = 3) readonly buffer Z { float z[]; };
layout(set = 0, binding = 4) readonly buffer Act { int activation[]; };
layout(set = 0, binding = 5) readonly buffer Index { int headIndex[]; };
layout(set = 0, binding = 6) readonly buffer Alpha { float alpha[]; };
layout(set = 0, binding = 7) writeonly buffer Lambda { float lambda[]; };
layout(push_constant) uniform Push {
    uint offH, offW, offBias, offZ, offAct, offIndex, offAlpha, offLambda;
    uint n, d, heads;
} pc;

shared float partial[WG];

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= pc.n) return;  // uniform across the workgroup
    uint tid = gl_LocalInvocationID.x;
    int head = headIndex[pc.offIndex + row];
    int kind = head >= 0 && uint(head) < pc.heads ? activation[pc.offAct + uint(head)] : -1;
    if (kind < 0 || kind > 2) {
        if (tid == 0) lambda[pc.offLambda + row] = 0.0;
        return;
    }
    uint hBase = pc.offH + row * pc.d;
    uint wBase = pc.offW + uint(head) * pc.d, zBase = pc.offZ + uint(head) * pc.d;
    float coefficient = 1.0;
    if (kind != 2) {
        float s = 0.0;
        for (uint i = tid; i < pc.d; i += WG) s += w[wBase + i] * h[hBase + i];
        partial[tid] = s;
        barrier();
        for (uint stride = WG / 2; stride > 0; stride >>= 1) {
            if (tid < stride) partial[tid] += partial[tid + stride];
            barrier();
        }
        float pre = partial[0] + bias[pc.offBias + uint(head)];
        coefficient = kind == 0 ? max(pre, 0.0) : pre;
    }
    if (tid == 0) lambda[pc.offLambda + row] = coefficient;
    float strength = alpha[pc.offAlpha + row] * coefficient;
    // Every invocation read its h elements for the dot before the barriers above.
    if (strength != 0.0) {
        for (uint i = tid; i < pc.d; i += WG) h[hBase + i] += strength * z[zBase + i];
    }
}
