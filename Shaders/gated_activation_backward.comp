#version 450
// The adjoint of gated_activation.comp, one thread per element:
//   gradGate = gradOut * up * act'(gate), gradUp = gradOut * act(gate).
// silu: with s = sigmoid(g), act = g s, act' = s (1 + g (1 - s)).
// gelu (tanh approximation): with u = sqrt(2/pi) (g + 0.044715 g^3) and s = sigmoid(2u)
// (1 + tanh(u) = 2s, 1 - tanh(u)^2 = 4 s (1 - s)): act = g s and
// act' = s + 2 g s (1 - s) sqrt(2/pi) (1 + 3 * 0.044715 g^2); no tanh, saturating exactly
// as in the forward (exp overflows to +inf and s = 0).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint KIND = 0;  // 0: silu, 1: gelu (tanh approximation)

layout(set = 0, binding = 0) readonly buffer Gate { float gate[]; };
layout(set = 0, binding = 1) readonly buffer Up { float up[]; };
layout(set = 0, binding = 2) readonly buffer G { float gradOut[]; };
layout(set = 0, binding = 3) writeonly buffer DGate { float dgate[]; };
layout(set = 0, binding = 4) writeonly buffer DUp { float dup[]; };
layout(push_constant) uniform Push {
    uint offGate, offUp, offG, offDGate, offDUp;
    uint n;
} pc;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= pc.n) return;
    float g = gate[pc.offGate + i], grad = gradOut[pc.offG + i];
    float value, slope;
    if (KIND == 0) {
        float s = 1.0 / (1.0 + exp(-g));
        value = g * s;
        slope = s * (1.0 + g * (1.0 - s));
    } else {
        const float k = 0.7978845608028654;  // sqrt(2 / pi)
        float s = 1.0 / (1.0 + exp(-2.0 * k * (g + 0.044715 * g * g * g)));
        value = g * s;
        slope = s + 2.0 * g * s * (1.0 - s) * k * (1.0 + 3.0 * 0.044715 * g * g);
    }
    dgate[pc.offDGate + i] = grad * up[pc.offUp + i] * slope;
    dup[pc.offDUp + i] = grad * value;
}
