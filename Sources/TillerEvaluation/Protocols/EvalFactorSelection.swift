import Foundation

/// AxBench's score of a steering file run at several strengths (concept protocol): per concept, the
/// alpha with the best mean aggregate on the first half of the concept's instructions (ties: the
/// smallest alpha, `LabSweep.choose`), and the mean aggregate of the other half at that alpha; the
/// file's score is the mean over concepts. Needs judged aggregates: a concept whose answers have
/// none is left out.
public enum EvalFactorSelection {
    public struct Choice {
        public var concept: String
        public var alpha: Double
        public var score: Double
    }

    public struct Result {
        /// The file, with " + prompt" when stacked on the prompt.
        public var name: String
        public var choices: [Choice]
        public var mean: Double? { choices.isEmpty ? nil : choices.map(\.score).reduce(0, +) / Double(choices.count) }
    }

    public static func select(_ results: [EvalResult]) -> [Result] {
        var order: [String] = [], byFile: [String: [EvalResult]] = [:]
        for r in results where r.mode == "file" && r.alpha != nil {
            let name = (r.steer["file"] as? String ?? "?") + ((r.steer["with_prompt"] as? Bool ?? false) ? " + prompt" : "")
            if byFile[name] == nil { order.append(name) }
            byFile[name, default: []].append(r)
        }
        return order.compactMap { name -> Result? in
            let lines = byFile[name]!
            let alphas = Array(Set(lines.compactMap(\.alpha))).sorted()
            guard alphas.count >= 2 else { return nil }
            var concepts: [String] = []
            for r in lines where !concepts.contains(r.group) { concepts.append(r.group) }
            var choices: [Choice] = []
            for concept in concepts {
                // The concept's items in the order of the prompt set (the order of the first alpha's lines).
                var ids: [String] = []
                for r in lines where r.group == concept && !ids.contains(r.id) { ids.append(r.id) }
                guard ids.count >= 2 else { continue }
                let (selection, evaluation) = LabSweep.halves(ids.count)
                func mean(_ part: Range<Int>, _ alpha: Double) -> Double? {
                    let wanted = Set(ids[part])
                    let values = lines.filter { $0.alpha == alpha && wanted.contains($0.id) }.compactMap { $0.metrics["aggregate"] ?? nil }
                    return values.count == part.count ? values.reduce(0, +) / Double(values.count) : nil
                }
                let scores = alphas.map { mean(selection, $0) }
                guard scores.allSatisfy({ $0 != nil }) else { continue }
                let chosen = alphas[LabSweep.choose(factors: alphas, scores: scores.map { $0! })]
                guard let score = mean(evaluation, chosen) else { continue }
                choices.append(Choice(concept: concept, alpha: chosen, score: score))
            }
            return Result(name: name, choices: choices)
        }
    }
}
