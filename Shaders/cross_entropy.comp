#version 450
// Fused log-softmax cross-entropy, in place over the logits, one work group per row: an online
// (max, sum of exp(x - max)) per invocation over a strided slice, merged by a shared-memory tree
// (as softmax.comp); loss = logsumexp - x[target]; then every invocation overwrites its slice
// with gradScale * (softmax - onehot(target)). x[target] is read before the tree's barriers and
// every write comes after them, so the in-place update races with no read. A row whose target
// is -1 (outside the loss), or outside 0 ..< V when produced on the device, gets loss 0 and a
// zero gradient.
// A confident row (target within 20 of the max) would lose its small loss log(1 + u) and target
// gradient p_t - 1 = -u / (1 + u) to cancellation in logsumexp - x[target], so a second tree
// sums u = sum_{i != target} exp(x_i - x[target]) (at most V e^20: no overflow) and both come
// from u directly, log(1 + u) by its series for small u (GPU log is only accurate to an absolute
// 2^-21 near 1).
layout(local_size_x_id = 0) in;  // a power of two

layout(set = 0, binding = 0) buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer Targets { int targets[]; };
layout(set = 0, binding = 2) readonly buffer Scale { float gradScale[]; };
layout(set = 0, binding = 3) writeonly buffer Loss { float loss[]; };
layout(push_constant) uniform Push {
    uint offX, offTargets, offScale, offLoss;
    uint rows, c;
} pc;

shared float maxima[gl_WorkGroupSize.x];
shared float sums[gl_WorkGroupSize.x];

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= pc.rows) return;  // uniform across the work group
    uint lid = gl_LocalInvocationID.x, size = gl_WorkGroupSize.x;
    uint base = pc.offX + row * pc.c;
    int target = targets[pc.offTargets + row];
    if (target < 0 || uint(target) >= pc.c) {
        for (uint i = lid; i < pc.c; i += size) x[base + i] = 0.0;
        if (lid == 0) loss[pc.offLoss + row] = 0.0;
        return;
    }

    const float NEG_INF = uintBitsToFloat(0xFF800000u);
    float m = NEG_INF, s = 0.0;
    for (uint i = lid; i < pc.c; i += size) {
        float v = x[base + i];
        if (v > m) { s = s * exp(m - v) + 1.0; m = v; }
        else s += v == m ? 1.0 : exp(v - m);
    }
    float picked = x[base + uint(target)];
    maxima[lid] = m;
    sums[lid] = s;
    barrier();
    for (uint h = size >> 1; h > 0; h >>= 1) {
        if (lid < h) {
            float m1 = maxima[lid], m2 = maxima[lid + h];
            float mm = max(m1, m2);
            float s1 = sums[lid] * (m1 == mm ? 1.0 : exp(m1 - mm));
            float s2 = sums[lid + h] * (m2 == mm ? 1.0 : exp(m2 - mm));
            maxima[lid] = mm;
            sums[lid] = s1 + s2;
        }
        barrier();
    }
    float largest = maxima[0], total = sums[0];
    barrier();  // every invocation has read the tree's result before sums is reused
    float logTotal, rowLoss, targetGradient;  // targetGradient: p_t - 1
    if (largest - picked <= 20.0) {  // uniform: every invocation read the same values
        float others = 0.0;
        for (uint i = lid; i < pc.c; i += size) {
            if (i != uint(target)) others += exp(x[base + i] - picked);
        }
        sums[lid] = others;
        barrier();
        for (uint h = size >> 1; h > 0; h >>= 1) {
            if (lid < h) sums[lid] += sums[lid + h];
            barrier();
        }
        float u = sums[0];
        rowLoss = u < 0.01 ? u * (1.0 - u * (0.5 - u * (1.0 / 3.0 - u * (0.25 - u * (0.2 - u / 6.0)))))
                           : log(1.0 + u);
        logTotal = picked + rowLoss;
        targetGradient = -u / (1.0 + u);
    } else {
        logTotal = largest + log(total);
        rowLoss = logTotal - picked;
        targetGradient = exp(picked - logTotal) - 1.0;
    }
    if (lid == 0) loss[pc.offLoss + row] = rowLoss;
    float scale = gradScale[pc.offScale + row];
    for (uint i = lid; i < pc.c; i += size) {
        x[base + i] = scale * (i == uint(target) ? targetGradient : exp(x[base + i] - logTotal));
    }
}
