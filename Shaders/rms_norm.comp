#version 450
// out = x / sqrt(mean(x^2) + eps) * w (or * (1 + w)), one work group per row: each thread sums
// the squares of a strided slice of the row, a shared-memory tree combines them, then every
// thread scales its slice. The weight is bound as 32-bit words (see embedding.comp).
layout(local_size_x_id = 0) in;  // a power of two
layout(constant_id = 1) const uint DTYPE = 0;  // weight: 0 f32, 1 f16, 2 bf16

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer W { uint w[]; };
layout(set = 0, binding = 2) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Push {
    uint offX, offW, offOut;
    uint rows, d;
    float eps;
    uint unitOffset;  // 1: multiply by 1 + w (Gemma)
} pc;

shared float partial[gl_WorkGroupSize.x];

float weight(uint e) {
    if (DTYPE == 0) return uintBitsToFloat(w[e]);
    uint word = w[e >> 1];
    uint h = (e & 1u) == 0u ? (word & 0xFFFFu) : (word >> 16);
    return DTYPE == 1 ? unpackHalf2x16(h).x : uintBitsToFloat(h << 16);
}

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= pc.rows) return;  // uniform across the work group
    uint lid = gl_LocalInvocationID.x, size = gl_WorkGroupSize.x;
    uint base = pc.offX + row * pc.d, outBase = pc.offOut + row * pc.d;

    float sum = 0.0;
    for (uint i = lid; i < pc.d; i += size) { float v = x[base + i]; sum += v * v; }
    partial[lid] = sum;
    barrier();
    for (uint s = size >> 1; s > 0; s >>= 1) {
        if (lid < s) partial[lid] += partial[lid + s];
        barrier();
    }
    float inverse = 1.0 / sqrt(partial[0] / float(pc.d) + pc.eps);
    float offset = pc.unitOffset != 0u ? 1.0 : 0.0;
    for (uint i = lid; i < pc.d; i += size) {
        o[outBase + i] = x[base + i] * inverse * (offset + weight(pc.offW + i));
    }
}
