// The scalar IEEE f16 -> f32 conversion every kernel file shares (private to CTillerKernels).
// Written with integer and float arithmetic only, so it builds for the baseline ISA (no F16C):
// the exponent is rebased by multiplying by 2^112, subnormals come out exact, and infinities and
// NaN map to themselves.
#ifndef TILLER_HALF_FLOAT_H
#define TILLER_HALF_FLOAT_H

#include <stdint.h>
#include <string.h>

static inline __attribute__((always_inline)) float tiller_half_to_float(uint16_t h) {
    uint32_t bits = h, out;
    uint32_t m = (bits & 0x7FFF) << 13;
    float f;
    memcpy(&f, &m, 4);
    f *= 0x1p112f;
    memcpy(&out, &f, 4);
    out |= (bits & 0x8000) << 16;
    if ((bits & 0x7C00) == 0x7C00) out |= 0x7F800000;
    memcpy(&f, &out, 4);
    return f;
}

#endif
