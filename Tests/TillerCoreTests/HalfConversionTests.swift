import Testing
@testable import TillerCore

@Suite struct HalfConversionTests {
    @Test func bf16KnownValues() {
        #expect(HalfConversion.floatToBF16(1.0) == 0x3F80)
        #expect(HalfConversion.floatToBF16(-2.0) == 0xC000)
        // 0.1 = 0x3DCCCCCD: the dropped half 0xCCCD is above the midpoint, so it rounds up.
        #expect(HalfConversion.floatToBF16(0.1) == 0x3DCD)
        // Exactly halfway between 0x3F80 and 0x3F81: ties go to the even one.
        #expect(HalfConversion.floatToBF16(Float(bitPattern: 0x3F80_8000)) == 0x3F80)
        #expect(HalfConversion.floatToBF16(Float(bitPattern: 0x3F81_8000)) == 0x3F82)
        #expect(HalfConversion.bf16ToFloat(0x3F80) == 1.0)
        #expect(HalfConversion.floatToBF16(.infinity) == 0x7F80)
        #expect(HalfConversion.bf16ToFloat(HalfConversion.floatToBF16(.nan)).isNaN)
    }

    @Test func f16KnownValues() {
        #expect(HalfConversion.floatToF16(1.0) == 0x3C00)
        #expect(HalfConversion.floatToF16(-2.0) == 0xC000)
        #expect(HalfConversion.floatToF16(65504) == 0x7BFF)          // largest finite half
        #expect(HalfConversion.floatToF16(65520) == 0x7C00)          // rounds past it: infinity
        #expect(HalfConversion.floatToF16(0x1p-24) == 0x0001)        // smallest subnormal
        #expect(HalfConversion.floatToF16(0x1p-26) == 0x0000)        // below half of it: zero
        #expect(HalfConversion.floatToF16(0.1) == 0x2E66)
        #expect(HalfConversion.f16ToFloat(0x0001) == 0x1p-24)
        #expect(HalfConversion.f16ToFloat(0x3555) == 0.333251953125)
        #expect(HalfConversion.f16ToFloat(0xFC00) == -.infinity)
        #expect(HalfConversion.f16ToFloat(0x7E00).isNaN)
    }

    /// Every half value survives f16 -> f32 -> f16, and every f32 rounds to its nearest half.
    @Test func f16RoundTripsExhaustively() {
        for bits in UInt16.min...UInt16.max {
            let value = HalfConversion.f16ToFloat(bits)
            if value.isNaN {
                #expect(HalfConversion.floatToF16(value) & 0x7C00 == 0x7C00)
                continue
            }
            #expect(HalfConversion.floatToF16(value) == bits, "f16 bits \(bits)")
        }
    }

    @Test func f16MatchesSwiftFloat16Rounding() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<20_000 {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x47FF_FFFF | (rng.next() & 1 == 0 ? 0 : 0x8000_0000))
            #expect(HalfConversion.floatToF16(x) == Float16(x).bitPattern, "x = \(x)")
        }
    }
}
