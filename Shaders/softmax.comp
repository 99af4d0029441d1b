#version 450
// Row-wise softmax, one work group per row, two passes over the row. Pass 1: each thread keeps
// an online (max, sum of exp(x - max)) over a strided slice (one exp per element), and a
// shared-memory tree merges the pairs. Pass 2: out = exp(x - max) / sum.
// -inf entries (masked logits) contribute zero; a row of only -inf gives NaN, as 0/0 would.
layout(local_size_x_id = 0) in;  // a power of two

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Push {
    uint offX, offOut;
    uint rows, c;
} pc;

shared float maxima[gl_WorkGroupSize.x];
shared float sums[gl_WorkGroupSize.x];

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= pc.rows) return;  // uniform across the work group
    uint lid = gl_LocalInvocationID.x, size = gl_WorkGroupSize.x;
    uint base = pc.offX + row * pc.c, outBase = pc.offOut + row * pc.c;

    const float NEG_INF = uintBitsToFloat(0xFF800000u);
    float m = NEG_INF, s = 0.0;
    for (uint i = lid; i < pc.c; i += size) {
        float v = x[base + i];
        if (v > m) { s = s * exp(m - v) + 1.0; m = v; }
        else s += v == m ? 1.0 : exp(v - m);  // v == m == -inf counts 1, erased once a finite value arrives
    }
    maxima[lid] = m;
    sums[lid] = s;
    barrier();
    for (uint h = size >> 1; h > 0; h >>= 1) {
        if (lid < h) {
            float m1 = maxima[lid], m2 = maxima[lid + h];
            float mm = max(m1, m2);
            // Equal maxima scale by exactly 1 (also when both are -inf, where exp would give NaN).
            float s1 = sums[lid] * (m1 == mm ? 1.0 : exp(m1 - mm));
            float s2 = sums[lid + h] * (m2 == mm ? 1.0 : exp(m2 - mm));
            maxima[lid] = mm;
            sums[lid] = s1 + s2;
        }
        barrier();
    }
    float largest = maxima[0], inverse = 1.0 / sums[0];
    for (uint i = lid; i < pc.c; i += size) o[outBase + i] = exp(x[base + i] - largest) * inverse;
}
