#version 450
// Top-k, stage 1: one work group per (row, tile of TILE columns) sorts the tile in shared
// memory with a bitonic network (TILE/2 threads, one compare-exchange each per step,
// log2(TILE) (log2(TILE) + 1) / 2 steps) and writes its best kk entries, best first, to
// values/indices at ((row * tiles + tile) * kk). With one tile per row (C <= TILE) that is the
// answer itself (kk = k); otherwise the candidates go to scratch for top_k_merge.comp.
//
// Order: larger value first, lower column first on equal values (a strict total order, so the
// result is unique). Values compare through unsigned keys that order like the floats, with -0
// equal to +0 and NaN below everything (NaN never outranks a number). Columns past the end of
// the row are padding (key 0, index 0xFFFFFFFF) that every real column outranks.
layout(local_size_x_id = 0) in;                 // TILE / 2
layout(constant_id = 1) const uint TILE = 512;  // a power of two

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Values { float values[]; };
layout(set = 0, binding = 2) writeonly buffer Indices { int indices[]; };
layout(push_constant) uniform Push {
    uint offX, offValues, offIndices;
    uint rows, c;  // x is [rows, c]
    uint tiles;    // ceil(c / TILE)
    uint kk;       // entries written per tile: min(k, TILE)
} pc;

shared uint keys[TILE];
shared uint columns[TILE];

uint orderedKey(float v) {
    uint b = floatBitsToUint(v);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return 0u;  // NaN: below -inf (whose key is 0x007FFFFF)
    if (b == 0x80000000u) b = 0u;                     // -0 ties with +0
    return (b & 0x80000000u) != 0u ? ~b : b | 0x80000000u;
}

void main() {
    uint group = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (group >= pc.rows * pc.tiles) return;  // uniform across the work group
    uint row = group / pc.tiles, tile = group - row * pc.tiles;
    uint lid = gl_LocalInvocationID.x, pairs = TILE / 2u;
    uint start = tile * TILE, count = min(TILE, pc.c - start);
    uint rowBase = pc.offX + row * pc.c;

    for (uint j = lid; j < TILE; j += pairs) {
        bool real = j < count;
        keys[j] = real ? orderedKey(x[rowBase + start + j]) : 0u;
        columns[j] = real ? start + j : 0xFFFFFFFFu;
    }
    barrier();

    for (uint size = 2u; size <= TILE; size <<= 1) {
        for (uint stride = size >> 1; stride > 0u; stride >>= 1) {
            uint i = 2u * lid - (lid & (stride - 1u)), j = i + stride;
            uint ki = keys[i], kj = keys[j], ci = columns[i], cj = columns[j];
            bool jFirst = kj > ki || (kj == ki && cj < ci);
            // Blocks alternate direction so that each pair of neighbours forms a bitonic sequence;
            // the last merge (size == TILE) puts the best first.
            if (jFirst == ((i & size) == 0u)) {
                keys[i] = kj; keys[j] = ki;
                columns[i] = cj; columns[j] = ci;
            }
            barrier();
        }
    }

    uint n = min(pc.kk, count);
    uint outBase = group * pc.kk;
    for (uint p = lid; p < n; p += pairs) {
        uint column = columns[p];
        values[pc.offValues + outBase + p] = x[rowBase + column];  // the stored value itself (-0, NaN)
        indices[pc.offIndices + outBase + p] = int(column);
    }
}
