#version 450
// out[n] = a[n] . b[n] (b one row [d] broadcast when BROADCAST), or with NORM out[n] = sqrt(x[n] . x[n])
// (rowNorm binds x as both a and b). TPR invocations share a row (a power of two dividing the
// workgroup, chosen near the row length), their f32 partial sums reduced in shared memory;
// a workgroup covers WG / TPR rows.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint TPR = 64;
layout(constant_id = 2) const bool NORM = false;
const uint WG = gl_WorkGroupSize.x;
const uint ROWS_PER_GROUP = WG / TPR;

layout(set = 0, binding = 0) readonly buffer A { float a[]; };
layout(set = 0, binding = 1) readonly buffer B { float b[]; };
layout(set = 0, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform Push {
    uint offA, offB, offO;
    uint rows, cols;
    uint broadcast;  // 1: b is one row
} pc;

shared float partial[WG];

void main() {
    uint tid = gl_LocalInvocationID.x, lane = tid % TPR;
    uint group = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint row = group * ROWS_PER_GROUP + tid / TPR;
    float s = 0.0;
    if (row < pc.rows) {
        uint aBase = pc.offA + row * pc.cols;
        uint bBase = pc.offB + (pc.broadcast != 0 ? 0 : row * pc.cols);
        for (uint i = lane; i < pc.cols; i += TPR) s += a[aBase + i] * b[bBase + i];
    }
    partial[tid] = s;
    barrier();
    for (uint stride = TPR / 2; stride > 0; stride >>= 1) {
        if (lane < stride) partial[tid] += partial[tid + stride];
        barrier();
    }
    if (lane == 0 && row < pc.rows) o[pc.offO + row] = NORM ? sqrt(partial[tid]) : partial[tid];
}
