#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Host-side sampling over the candidates that the backend's topK op returns (sorted by
/// descending logit), with transformers' semantics for temperature and top-p.
public enum Sampling {
    /// Probabilities of the kept candidates: softmax(logits / temperature), then the smallest
    /// prefix whose mass reaches topP (a candidate is kept when the mass before it is < topP,
    /// as TopPLogitsWarper does; the first one always stays), renormalised.
    public static func nucleus(sortedLogits: [Float], temperature: Float, topP: Float) throws -> [Float] {
        guard !sortedLogits.isEmpty else { throw TillerError.emptyTensor(op: "nucleus", name: "sortedLogits") }
        guard temperature > 0 else { throw TillerError.invalidArgument(op: "nucleus", detail: "temperature \(temperature) must be > 0") }
        guard topP > 0, topP <= 1 else { throw TillerError.invalidArgument(op: "nucleus", detail: "top-p \(topP) must be in (0, 1]") }
        for i in 1..<sortedLogits.count where sortedLogits[i] > sortedLogits[i - 1] {
            throw TillerError.invalidArgument(op: "nucleus", detail: "logits are not sorted descending at \(i)")
        }
        let top = Double(sortedLogits[0])
        let weights = sortedLogits.map { exp((Double($0) - top) / Double(temperature)) }
        let total = weights.reduce(0, +)
        var kept: [Double] = []
        var before = 0.0
        for w in weights {
            let p = w / total
            if !kept.isEmpty && before >= Double(topP) { break }
            kept.append(p)
            before += p
        }
        let keptTotal = kept.reduce(0, +)
        return kept.map { Float($0 / keptTotal) }
    }

    /// Index drawn from a probability vector (inverse CDF).
    public static func draw<G: RandomNumberGenerator>(_ probabilities: [Float], using generator: inout G) -> Int {
        let u = Float.random(in: 0..<1, using: &generator)
        var cumulative: Float = 0
        for (i, p) in probabilities.enumerated() {
            cumulative += p
            if u < cumulative { return i }
        }
        return probabilities.count - 1
    }
}
