#version 450
// Top-k, stage 2, when a row spans several tiles: stage 1 (top_k.comp) left each tile's best
// kk = min(k, TILE) entries sorted, best first. One thread per candidate computes its rank in
// the whole row: its position in its own tile plus, for every other tile, how many of that
// tile's candidates outrank it (a binary search, since they are sorted). Keys are unique
// (ties are broken by column), so the ranks of the true top k are exactly 0..<k, each written
// by one thread, and every other candidate's count reaches k. The count is exact while it
// stays below k: a tile outranks a true top-k entry with fewer than k (and at most TILE)
// entries, all among its kk candidates. Threads stop counting once the rank reaches k, so
// most candidates leave after a few tiles.
// Cost per row: tiles * kk threads, each at most (tiles - 1) * log2(kk) reads.
layout(local_size_x_id = 0) in;

layout(set = 0, binding = 0) readonly buffer CandidateValues { float candidateValues[]; };
layout(set = 0, binding = 1) readonly buffer CandidateIndices { int candidateIndices[]; };
layout(set = 0, binding = 2) writeonly buffer Values { float values[]; };
layout(set = 0, binding = 3) writeonly buffer Indices { int indices[]; };
layout(push_constant) uniform Push {
    uint offCandidateValues, offCandidateIndices, offValues, offIndices;
    uint rows, c, tiles, kk, k;
    uint tile;  // columns per tile in stage 1
} pc;

uint orderedKey(float v) {  // as in top_k.comp
    uint b = floatBitsToUint(v);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return 0u;
    if (b == 0x80000000u) b = 0u;
    return (b & 0x80000000u) != 0u ? ~b : b | 0x80000000u;
}

uint candidates(uint t) { return min(pc.kk, min(pc.tile, pc.c - t * pc.tile)); }

void main() {
    uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uint perRow = pc.tiles * pc.kk;
    if (id >= pc.rows * perRow) return;
    uint row = id / perRow, inRow = id - row * perRow;
    uint t = inRow / pc.kk, p = inRow - t * pc.kk;
    if (p >= candidates(t)) return;

    uint rowBase = row * perRow;
    float value = candidateValues[pc.offCandidateValues + rowBase + inRow];
    int column = candidateIndices[pc.offCandidateIndices + rowBase + inRow];
    uint key = orderedKey(value);
    uint rank = p;
    for (uint other = 0u; other < pc.tiles && rank < pc.k; other++) {
        if (other == t) continue;
        uint lo = 0u, hi = candidates(other), base = rowBase + other * pc.kk;
        while (lo < hi) {  // the number of leading entries that outrank (key, column)
            uint mid = (lo + hi) >> 1;
            uint k2 = orderedKey(candidateValues[pc.offCandidateValues + base + mid]);
            int c2 = candidateIndices[pc.offCandidateIndices + base + mid];
            if (k2 > key || (k2 == key && c2 < column)) lo = mid + 1u; else hi = mid;
        }
        rank += lo;
    }
    if (rank < pc.k) {
        values[pc.offValues + row * pc.k + rank] = value;
        indices[pc.offIndices + row * pc.k + rank] = column;
    }
}
