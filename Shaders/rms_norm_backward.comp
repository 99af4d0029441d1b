#version 450
// The adjoint of rms_norm.comp with respect to x, one work group per row. With
// r = 1 / sqrt(mean(x^2) + eps) and w' = w (or 1 + w):
//   dx_j = r * (g_j w'_j - x_j r^2 mean_i(g_i w'_i x_i)),
// both sums reduced in one shared-memory tree. The weight is bound as 32-bit words (see
// embedding.comp), so 16-bit weights are never widened whole.
layout(local_size_x_id = 0) in;  // a power of two
layout(constant_id = 1) const uint DTYPE = 0;  // weight: 0 f32, 1 f16, 2 bf16

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer W { uint w[]; };
layout(set = 0, binding = 2) readonly buffer G { float gradOut[]; };
layout(set = 0, binding = 3) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform Push {
    uint offX, offW, offG, offDX;
    uint rows, d;
    float eps;
    uint unitOffset;  // 1: the weight is 1 + w (Gemma)
} pc;

shared float squares[gl_WorkGroupSize.x];
shared float projections[gl_WorkGroupSize.x];

float weight(uint e) {
    float value;
    if (DTYPE == 0) {
        value = uintBitsToFloat(w[e]);
    } else {
        uint word = w[e >> 1];
        uint h = (e & 1u) == 0u ? (word & 0xFFFFu) : (word >> 16);
        value = DTYPE == 1 ? unpackHalf2x16(h).x : uintBitsToFloat(h << 16);
    }
    return pc.unitOffset != 0u ? 1.0 + value : value;
}

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= pc.rows) return;  // uniform across the work group
    uint lid = gl_LocalInvocationID.x, size = gl_WorkGroupSize.x;
    uint base = row * pc.d;

    float sum = 0.0, projection = 0.0;
    for (uint i = lid; i < pc.d; i += size) {
        float v = x[pc.offX + base + i];
        sum += v * v;
        projection += gradOut[pc.offG + base + i] * weight(pc.offW + i) * v;
    }
    squares[lid] = sum;
    projections[lid] = projection;
    barrier();
    for (uint s = size >> 1; s > 0; s >>= 1) {
        if (lid < s) {
            squares[lid] += squares[lid + s];
            projections[lid] += projections[lid + s];
        }
        barrier();
    }
    float inverse = 1.0 / sqrt(squares[0] / float(pc.d) + pc.eps);
    float mean = projections[0] / float(pc.d);
    for (uint i = lid; i < pc.d; i += size) {
        float v = x[pc.offX + base + i];
        dx[pc.offDX + base + i] = inverse * (gradOut[pc.offG + base + i] * weight(pc.offW + i) - v * inverse * inverse * mean);
    }
}
