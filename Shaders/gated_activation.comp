#version 450
// out = act(gate) * up, one thread per element.
// silu(g) = g / (1 + exp(-g)).
// gelu_pytorch_tanh(g) = 0.5 g (1 + tanh(u)), u = sqrt(2/pi) (g + 0.044715 g^3), evaluated as
// g / (1 + exp(-2u)): the same function (1 + tanh(u) = 2 / (1 + exp(-2u))) without tanh, whose
// precision and overflow for large |u| vary across drivers, and without the cancellation of
// 1 + tanh(u) in the negative tail. Saturation is exact: exp overflows to +inf and g / inf = 0;
// exp underflows to 0 and the result is g.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint KIND = 0;  // 0: silu, 1: gelu (tanh approximation)

layout(set = 0, binding = 0) readonly buffer Gate { float gate[]; };
layout(set = 0, binding = 1) readonly buffer Up { float up[]; };
layout(set = 0, binding = 2) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Push {
    uint offGate, offUp, offOut;
    uint n;
} pc;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= pc.n) return;
    float g = gate[pc.offGate + i];
    float t;
    if (KIND == 0) {
        t = -g;
    } else {
        const float k = 0.7978845608028654;  // sqrt(2 / pi)
        t = -2.0 * k * (g + 0.044715 * g * g * g);
    }
    o[pc.offOut + i] = g / (1.0 + exp(t)) * up[pc.offUp + i];
}
