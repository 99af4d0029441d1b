#version 450
// out[m, c] = x[indices[m], c], one thread per output element. Indices outside 0..<rows
// (possible when produced on the device, unchecked by the host) give rows of zeros.
layout(local_size_x_id = 0) in;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer Indices { int indices[]; };
layout(set = 0, binding = 2) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Push {
    uint offX, offIndices, offOut;
    uint m;     // indices
    uint d;     // row width
    uint rows;  // rows of x
} pc;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= pc.m * pc.d) return;
    uint r = i / pc.d, c = i - r * pc.d;
    int source = indices[pc.offIndices + r];
    o[pc.offOut + i] = source >= 0 && uint(source) < pc.rows ? x[pc.offX + uint(source) * pc.d + c] : 0.0;
}
