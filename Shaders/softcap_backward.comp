#version 450
// The adjoint of soft-capping at its input: gradX = gradOut * (1 - tanh(x / cap)^2), with
// 1 - tanh(y)^2 = 4e / (1 + e)^2, e = exp(-2|y|): no cancellation near |y| = 0 or overflow
// for large |y| (e underflows to 0, the derivative to exactly 0).
layout(local_size_x_id = 0) in;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer G { float gradOut[]; };
layout(set = 0, binding = 2) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform Push {
    uint offX, offG, offDX;
    uint n;
    float cap;
} pc;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= pc.n) return;
    float e = exp(-2.0 * abs(x[pc.offX + i] / pc.cap));
    float onePlus = 1.0 + e;
    dx[pc.offDX + i] = gradOut[pc.offG + i] * (4.0 * e / (onePlus * onePlus));
}
