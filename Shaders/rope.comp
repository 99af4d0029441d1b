#version 450
// Rotary embedding in place, transformers' rotate_half layout: element i of a head pairs with
// i + D/2. x is [rows, H, D]; one thread per pair (row, head, i < D/2).
//
// The angle is float(position) * inverseFrequency[i] rounded to f32, as transformers computes
// it. Its sine and cosine are computed here rather than with GLSL sin/cos, whose accuracy
// Vulkan only bounds (2^-11 absolute) on [-pi, pi] and which real GPUs reduce with one f32
// multiply, losing ~1e-3 at angles of 1e4-1e5 (long positions times the highest frequency).
// Cody-Waite reduction by pi/2 in three parts: the first two have 7 significant bits, so
// k * C1 and k * C2 are exact for |k| < 2^17, i.e. angles up to ~2e5, and the subtractions are
// exact too; the error of r is then ~1e-6 at the largest angles. `precise` keeps the compiler
// from fusing or reordering these steps. Then minimax polynomials on |r| <= pi/4 (Cephes sinf,
// cosf) and the quadrant k mod 4.
layout(local_size_x_id = 0) in;

layout(set = 0, binding = 0) buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer Positions { int positions[]; };
layout(set = 0, binding = 2) readonly buffer Frequencies { float inverseFrequencies[]; };
layout(push_constant) uniform Push {
    uint offX, offPositions, offFrequencies;
    uint rows, heads, halfD;  // halfD = D / 2
} pc;

void main() {
    uint p = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uint pairsPerRow = pc.heads * pc.halfD;
    if (p >= pc.rows * pairsPerRow) return;
    uint row = p / pairsPerRow, inRow = p - row * pairsPerRow;
    uint head = inRow / pc.halfD, i = inRow - head * pc.halfD;

    precise float angle = float(positions[pc.offPositions + row]) * inverseFrequencies[pc.offFrequencies + i];
    precise float k = roundEven(angle * 0.63661977236758134);  // 2 / pi
    const float C1 = 1.5625;                      // 100 / 64
    const float C2 = 8.1787109375e-3;             // 67 / 8192
    const float C3 = 1.1761585483327508e-4;       // pi/2 - C1 - C2, rounded to f32
    const float C4 = 2.5633441e-12;               // what C3 leaves out
    precise float r = ((angle - k * C1) - k * C2) - k * C3;
    r = r - k * C4;
    precise float r2 = r * r;
    precise float s = r + r * r2 * (-1.6666654611e-1 + r2 * (8.3321608736e-3 + r2 * -1.9515295891e-4));
    precise float c = 1.0 - 0.5 * r2 + r2 * r2 * (4.166664568298827e-2 + r2 * (-1.388731625493765e-3 + r2 * 2.443315711809948e-5));
    int quadrant = int(k) & 3;
    float sine = quadrant == 0 ? s : quadrant == 1 ? c : quadrant == 2 ? -s : -c;
    float cosine = quadrant == 0 ? c : quadrant == 1 ? -s : quadrant == 2 ? -c : s;

    uint base = pc.offX + (row * pc.heads + head) * 2u * pc.halfD + i;
    float a = x[base], b = x[base + pc.halfD];
    x[base] = a * cosine - b * sine;
    x[base + pc.halfD] = b * cosine + a * sine;
}
