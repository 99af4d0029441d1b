#version 450
// out[n, c] = table[ids[n], c] * scale, one thread per output element.
// The table is bound as 32-bit words whatever its dtype: f32 is one value per word, f16 and
// bf16 two (little-endian: the element at an even 16-bit offset is the low half). Its offset
// from the push constants is in elements of its dtype. Ids outside 0..<vocab (possible when
// they were produced on the device, where the host could not check them) give rows of zeros.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint DTYPE = 0;  // 0: f32, 1: f16, 2: bf16

layout(set = 0, binding = 0) readonly buffer Table { uint table[]; };
layout(set = 0, binding = 1) readonly buffer Ids { int ids[]; };
layout(set = 0, binding = 2) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Push {
    uint offTable, offIds, offOut;
    uint n;      // ids
    uint d;      // row width
    uint vocab;  // table rows
    float scale;
} pc;

float load(uint e) {
    if (DTYPE == 0) return uintBitsToFloat(table[e]);
    uint word = table[e >> 1];
    uint h = (e & 1u) == 0u ? (word & 0xFFFFu) : (word >> 16);
    return DTYPE == 1 ? unpackHalf2x16(h).x : uintBitsToFloat(h << 16);
}

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= pc.n * pc.d) return;
    uint r = i / pc.d, c = i - r * pc.d;
    int id = ids[pc.offIds + r];
    float v = 0.0;
    if (id >= 0 && uint(id) < pc.vocab) v = load(pc.offTable + uint(id) * pc.d + c) * pc.scale;
    o[pc.offOut + i] = v;
}
