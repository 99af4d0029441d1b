#version 450
// The adjoint of psr_head.comp, second half: one work group per (head k, chunk of WG columns),
// each invocation one column c, walking the rows in order and taking those with headIndex = k:
//   gradients.w[k, c] = sum ds[n] h[n, c], gradients.z[k, c] = sum alpha[n] lambda[n] gradient[n, c],
//   gradients.bias[k] = sum ds[n] (the first chunk's first invocation),
// and, once the row's column is read, gradient[n, c] += ds[n] w[k, c] in place. Every (row,
// column) belongs to one head and so to one invocation: no races, and the sums run in row order
// (deterministic, no atomics). Heads no row uses get zeros: the gradients are written whole.
// ds and alpha * lambda come from psr_head_backward_rows.comp (rowStats [N, 2]).
layout(local_size_x_id = 0) in;
const uint WG = gl_WorkGroupSize.x;

layout(set = 0, binding = 0) readonly buffer H { float h[]; };
layout(set = 0, binding = 1) readonly buffer W { float w[]; };
layout(set = 0, binding = 2) readonly buffer Index { int headIndex[]; };
layout(set = 0, binding = 3) readonly buffer RowStats { float rowStats[]; };
layout(set = 0, binding = 4) buffer Gradient { float gradient[]; };
layout(set = 0, binding = 5) writeonly buffer DW { float dw[]; };
layout(set = 0, binding = 6) writeonly buffer DBias { float dbias[]; };
layout(set = 0, binding = 7) writeonly buffer DZ { float dz[]; };
layout(push_constant) uniform Push {
    uint offH, offW, offIndex, offStats, offGradient, offDW, offDBias, offDZ;
    uint n, d, heads;
} pc;

void main() {
    uint head = gl_WorkGroupID.y, c = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x;
    if (head >= pc.heads) return;
    bool owner = c < pc.d;
    float accW = 0.0, accZ = 0.0, accBias = 0.0;
    float weight = owner ? w[pc.offW + head * pc.d + c] : 0.0;
    for (uint row = 0; row < pc.n; row++) {
        if (headIndex[pc.offIndex + row] != int(head)) continue;
        float ds = rowStats[pc.offStats + 2 * row], alphaLambda = rowStats[pc.offStats + 2 * row + 1];
        accBias += ds;
        if (owner) {
            uint e = row * pc.d + c;
            float g = gradient[pc.offGradient + e];
            accZ += alphaLambda * g;
            accW += ds * h[pc.offH + e];
            gradient[pc.offGradient + e] = g + ds * weight;
        }
    }
    if (owner) {
        dw[pc.offDW + head * pc.d + c] = accW;
        dz[pc.offDZ + head * pc.d + c] = accZ;
    }
    if (gl_WorkGroupID.x == 0 && gl_LocalInvocationID.x == 0) dbias[pc.offDBias + head] = accBias;
}
