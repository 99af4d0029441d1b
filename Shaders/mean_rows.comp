#version 450
// out[c] = mean over m of x[indices[m]][c]. A workgroup covers 32 columns (coalesced reads of
// each gathered row) with 8 slices of the index list, whose f32 partial sums are reduced in
// shared memory. Indices outside 0 ..< N (possible only when the device produced them; the host
// rejects the ones it knows) contribute nothing.
layout(local_size_x = 32, local_size_y = 8) in;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer I { int indices[]; };
layout(set = 0, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform Push {
    uint offX, offI, offO;
    uint m, d, n;
} pc;

shared float partial[8][32];

void main() {
    uint lx = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
    uint col = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * 32 + lx;
    float s = 0.0;
    if (col < pc.d) {
        for (uint r = ly; r < pc.m; r += 8) {
            int i = indices[pc.offI + r];
            if (i >= 0 && uint(i) < pc.n) s += x[pc.offX + uint(i) * pc.d + col];
        }
    }
    partial[ly][lx] = s;
    barrier();
    for (uint stride = 4; stride > 0; stride >>= 1) {
        if (ly < stride) partial[ly][lx] += partial[ly + stride][lx];
        barrier();
    }
    if (ly == 0 && col < pc.d) o[pc.offO + col] = partial[0][lx] / float(pc.m);
}
