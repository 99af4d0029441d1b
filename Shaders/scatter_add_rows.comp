#version 450
// The adjoint of gather_rows.comp: gradX[indices[m]] += gradOut[m], one thread per element of
// gradX. The host sorts the source rows by destination (stably, so each destination's rows stay
// in the order of m) into `plan`: offsets [N + 1], then the source rows [M]; a thread adds its
// destination's rows onto gradX in that order. Deterministic without float atomics, and each
// thread reads only the rows it needs. Plan entries outside their ranges are skipped.
layout(local_size_x_id = 0) in;

layout(set = 0, binding = 0) readonly buffer G { float gradOut[]; };
layout(set = 0, binding = 1) readonly buffer Plan { int plan[]; };
layout(set = 0, binding = 2) buffer DX { float dx[]; };
layout(push_constant) uniform Push {
    uint offG, offPlan, offDX;
    uint m, d, n;
} pc;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= pc.n * pc.d) return;
    uint row = i / pc.d, c = i % pc.d;
    int first = max(plan[pc.offPlan + row], 0), last = min(plan[pc.offPlan + row + 1], int(pc.m));
    float acc = dx[pc.offDX + i];
    for (int e = first; e < last; e++) {
        int source = plan[pc.offPlan + pc.n + 1 + uint(e)];
        if (source >= 0 && uint(source) < pc.m) acc += gradOut[pc.offG + uint(source) * pc.d + c];
    }
    dx[pc.offDX + i] = acc;
}
