import Testing
import TillerCore

@Suite struct RoPEScalingTests {
    @Test func defaultSchedule() {
        // theta^(-2i/D) for D = 4: 1 and 1/100.
        #expect(RoPEScaling.none.inverseFrequencies(theta: 10_000, headDim: 4) == [1, 0.01])
    }

    @Test func linearDividesEveryFrequency() {
        #expect(RoPEScaling.linear(factor: 4).inverseFrequencies(theta: 10_000, headDim: 4) == [0.25, 0.0025])
    }

    /// Llama 3's schedule, checked frequency by frequency against transformers' rule written out by hand:
    /// original context 8192, factors low 1 and high 4: wavelengths below 2048 kept, above 8192
    /// divided by the factor, between them a linear blend in 8192 / wavelength.
    @Test func llama3Schedule() {
        let scaling = RoPEScaling.llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: 8192)
        let theta = 500_000.0, d = 128
        let scaled = scaling.inverseFrequencies(theta: theta, headDim: d)
        let plain = RoPEScaling.none.inverseFrequencies(theta: theta, headDim: d)
        var sawKept = false, sawDivided = false, sawBlended = false
        for i in 0..<(d / 2) {
            let f = Double(plain[i]), wavelength = 2 * Double.pi / f
            let expected: Double
            if wavelength < 2048 { expected = f; sawKept = true }
            else if wavelength > 8192 { expected = f / 8; sawDivided = true }
            else {
                let smooth = (8192 / wavelength - 1) / 3
                expected = (1 - smooth) * f / 8 + smooth * f
                sawBlended = true
            }
            #expect(abs(Double(scaled[i]) - expected) <= 1e-6 * expected, "frequency \(i)")
        }
        #expect(sawKept && sawDivided && sawBlended)
    }
}
