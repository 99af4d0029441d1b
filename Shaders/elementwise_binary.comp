#version 450
// out = a + b or a * b; b has a's element count or is one row broadcast over every row.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;  // 0: add, 1: mul

layout(set = 0, binding = 0) readonly buffer A { float a[]; };
layout(set = 0, binding = 1) readonly buffer B { float b[]; };
layout(set = 0, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform Push {
    uint offA, offB, offO;  // element offsets of the three tensors
    uint n;                 // elements of a and out
    uint bCount;            // elements of b: n, or the row length when broadcast
} pc;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= pc.n) return;
    float x = a[pc.offA + i];
    float y = b[pc.offB + i % pc.bCount];
    o[pc.offO + i] = OP == 0 ? x + y : x * y;
}
