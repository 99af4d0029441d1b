#version 450
// Index of the largest value per row, the first on ties; one work group per row. Each thread
// scans a strided slice, then a shared-memory tree merges (key, index) pairs preferring the
// larger key and, on equal keys, the lower index.
// Keys are the float bits mapped to unsigned integers that order like the floats (-0 as +0),
// which also pins down NaN the way the sequential scan (best = i where x[i] > x[best]) treats
// it: a NaN never wins, except at index 0, where nothing can beat it.
layout(local_size_x_id = 0) in;  // a power of two

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Out { int o[]; };
layout(push_constant) uniform Push {
    uint offX, offOut;
    uint rows, c;
} pc;

shared uint keys[gl_WorkGroupSize.x];
shared uint indices[gl_WorkGroupSize.x];

uint orderedKey(float v, uint i) {
    uint b = floatBitsToUint(v);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return i == 0u ? 0xFFFFFFFFu : 0u;  // NaN
    if (b == 0x80000000u) b = 0u;                                              // -0 ties with +0
    return (b & 0x80000000u) != 0u ? ~b : b | 0x80000000u;
}

bool better(uint k1, uint i1, uint k2, uint i2) { return k1 > k2 || (k1 == k2 && i1 < i2); }

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= pc.rows) return;  // uniform across the work group
    uint lid = gl_LocalInvocationID.x, size = gl_WorkGroupSize.x;
    uint base = pc.offX + row * pc.c;

    // Ascending scan: a later equal key never replaces the earlier one. Threads with no
    // element keep index c with key 0, which every element's key beats or ties at a lower index.
    uint bestKey = 0u, bestIndex = pc.c;
    for (uint i = lid; i < pc.c; i += size) {
        uint k = orderedKey(x[base + i], i);
        if (k > bestKey || bestIndex == pc.c) { bestKey = k; bestIndex = i; }
    }
    keys[lid] = bestKey;
    indices[lid] = bestIndex;
    barrier();
    for (uint h = size >> 1; h > 0; h >>= 1) {
        if (lid < h && better(keys[lid + h], indices[lid + h], keys[lid], indices[lid])) {
            keys[lid] = keys[lid + h];
            indices[lid] = indices[lid + h];
        }
        barrier();
    }
    if (lid == 0u) o[pc.offOut + row] = int(indices[0]);
}
