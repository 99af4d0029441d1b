#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The rotary-embedding frequency schedules of transformers' ROPE_INIT_FUNCTIONS that the Llama
/// family uses. The backend op only sees the resulting inverse frequencies [D/2].
public enum RoPEScaling: Equatable, Sendable {
    case none
    /// Positions divided by `factor` (rope_type "linear").
    case linear(factor: Double)
    /// rope_type "llama3": long wavelengths divided by `factor`, short ones kept, a smooth ramp between.
    case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalMaxPositions: Double)

    /// inv_freq[i] = theta^(-2i/D), then scaled.
    public func inverseFrequencies(theta: Double, headDim: Int) -> [Float] {
        let base = (0..<(headDim / 2)).map { 1.0 / pow(theta, Double(2 * $0) / Double(headDim)) }
        switch self {
        case .none:
            return base.map(Float.init)
        case let .linear(factor):
            return base.map { Float($0 / factor) }
        case let .llama3(factor, low, high, original):
            let lowWavelength = original / low, highWavelength = original / high
            return base.map { f in
                let wavelength = 2 * Double.pi / f
                if wavelength < highWavelength { return Float(f) }
                if wavelength > lowWavelength { return Float(f / factor) }
                let smooth = (original / wavelength - low) / (high - low)
                return Float((1 - smooth) * f / factor + smooth * f)
            }
        }
    }
}
