#version 450
// out = x * p (scale) or p * tanh(x / p) (soft-cap).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;  // 0: scale, 1: soft-cap

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer O { float o[]; };
layout(push_constant) uniform Push {
    uint offX, offO;
    uint n;
    float p;  // the factor, or the cap
} pc;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= pc.n) return;
    float v = x[pc.offX + i];
    o[pc.offO + i] = OP == 0 ? v * pc.p : pc.p * tanh(v / pc.p);
}
