import Foundation
import TillerCore
import TillerModels

/// Coherence without a judge: the perplexity of the answer under the unsteered model, given the
/// bare request (the same context for every arm, so arms are compared on the same footing),
/// mapped to 0-100 (docs/evaluation.md):
///
///     coherence = 100 * clamp(1 - ln(perplexity) / ln(1000), 0, 1)
///
/// Perplexity 1 is 100, 10 is 66.7, 1000 or more is 0. It rewards what the model itself finds
/// fluent; it cannot see that a fluent answer is off-topic, and a repetitive loop scores high. A
/// judge (--judge-url) replaces it.
public enum CoherenceProxy {
    /// The perplexity that maps to 0.
    public static let zeroPerplexity = 1000.0

    public static func score(meanNLL: Double) -> Double {
        guard meanNLL.isFinite else { return 0 }
        return 100 * min(1, max(0, 1 - meanNLL / log(zeroPerplexity)))
    }

    /// The mean negative log-likelihood of `answer` after `context` (the prompt's ids): one forward
    /// pass with every row's logits, log-softmax on the host in Double. Infinity for an empty
    /// answer (nothing said is not coherent: it maps to 0); nil for one that does not fit the context.
    public static func meanNLL(model: TransformerModel, context: [Int32], answer: [Int32]) throws -> Double? {
        guard !answer.isEmpty else { return .infinity }
        guard !context.isEmpty else { return nil }
        let tokens = context + answer
        guard tokens.count <= model.config.maxPositionEmbeddings ?? Int.max else { return nil }
        let cache = try model.makeCache(batchSize: 1, capacity: tokens.count)
        let output = try model.forward([tokens], cache: cache, logits: .all)
        let vocabulary = model.vocabularySize
        let logits = try model.backend.floats(output.logits)
        var total = 0.0
        // Row p predicts token p + 1; the answer's tokens are predicted by rows context-1 ..< count-1.
        for (k, row) in output.rows.enumerated() where row.position >= context.count - 1 && row.position < tokens.count - 1 {
            let values = logits[(k * vocabulary)..<((k + 1) * vocabulary)]
            let peak = Double(values.max() ?? 0)
            var sum = 0.0
            for v in values { sum += exp(Double(v) - peak) }
            let target = Int(tokens[row.position + 1])
            total += peak + log(sum) - Double(values[values.startIndex + target])
        }
        return total / Double(answer.count)
    }
}
