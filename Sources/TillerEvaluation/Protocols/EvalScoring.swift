import Foundation
import TillerCore

/// The scores of one answer, per protocol (docs/evaluation.md):
/// - ifeval-format: `pass` (IFEval's strict rule, 1 or 0; all instructions of the item followed),
///   `pass_loose`, and `coherence` 0-100;
/// - persona: `trait` 0-100 (judge) and `coherence` 0-100;
/// - concept: `concept`, `instruction`, `fluency` 0-2 (judge) and `aggregate`, their harmonic
///   mean (0 if any is 0), plus `coherence` 0-100.
/// `coherence` comes from the judge when there is one (unless the proxy is asked for), else from
/// `CoherenceProxy`.
public struct EvalScores: Sendable {
    /// Each metric's value; nil when it could not be had (no judge, an unreadable rating, an
    /// unavailable checker).
    public var metrics: [String: Double?]
    public var coherenceSource: CoherenceSource
    public var checks: [Check]
    public var judgments: [JudgeClient.Judgment]
    /// The answer's mean negative log-likelihood under the unsteered model (the proxy's input).
    public var meanNLL: Double?

    public enum CoherenceSource: String, Sendable, CaseIterable { case judge, proxy }

    public struct Check: Sendable {
        public var instruction: IFEvalInstruction
        public var strict: IFEvalVerdict
        public var loose: IFEvalVerdict
    }

    /// AxBench's per-answer score: the harmonic mean of the three 0-2 ratings, 0 if any is 0.
    public static func aggregate(concept: Int, instruction: Int, fluency: Int) -> Double {
        let values = [concept, instruction, fluency].map(Double.init)
        if values.contains(0) { return 0 }
        return 3 / values.map { 1 / $0 }.reduce(0, +)
    }
}

/// Scores answers: the checkers, the judge (when given) and the proxy.
public struct EvalScorer {
    public var proto: EvalProtocol
    public var judge: JudgeClient?
    /// Where coherence comes from: the judge by default when there is one; the proxy can be asked
    /// for with a judge too (the judge then rates only the trait or concept), so that methods are
    /// matched on the model's own perplexity while a judge scores what they steer.
    public var coherenceSource: EvalScores.CoherenceSource

    public init(proto: EvalProtocol, judge: JudgeClient?, coherence: EvalScores.CoherenceSource? = nil) {
        self.proto = proto
        self.judge = judge
        coherenceSource = Self.coherenceSource(judged: judge != nil, asked: coherence)
    }

    /// The proxy without a judge; with one, what was asked for (the judge by default).
    public static func coherenceSource(judged: Bool, asked: EvalScores.CoherenceSource?) -> EvalScores.CoherenceSource {
        judged ? asked ?? .judge : .proxy
    }

    /// The judge prompts an answer needs (none without a judge).
    func prompts(item: EvalItem, response: String) -> [JudgePrompts.Prompt] {
        guard judge != nil else { return [] }
        let judgesCoherence = coherenceSource == .judge
        switch item.target {
        case .instructions:
            return judgesCoherence ? [JudgePrompts.coherence(question: item.question, answer: response)] : []
        case .trait(let name, let description):
            return [JudgePrompts.trait(name: name, description: description, question: item.question, answer: response)]
                + (judgesCoherence ? [JudgePrompts.coherence(question: item.question, answer: response)] : [])
        case .concept(let name, let instruction):
            return [JudgePrompts.concept(name, answer: response), JudgePrompts.instruction(instruction, answer: response),
                    JudgePrompts.fluency(answer: response)]
                + (judgesCoherence ? [JudgePrompts.coherence(question: instruction, answer: response)] : [])
        }
    }

    /// The scores of one answer from its judgments (in `prompts` order) and its proxy NLL.
    func scores(item: EvalItem, response: String, judgments: [JudgeClient.Judgment], meanNLL: Double?) -> EvalScores {
        var metrics: [String: Double?] = [:]
        func rating(_ metric: String) -> Int? { judgments.first { $0.metric == metric }?.rating }
        let source = coherenceSource
        metrics.updateValue(source == .judge ? rating("coherence").map(Double.init) : meanNLL.map(CoherenceProxy.score), forKey: "coherence")
        var checks: [EvalScores.Check] = []
        switch item.target {
        case .instructions(let list):
            checks = list.map { EvalScores.Check(instruction: $0, strict: $0.verdict(response), loose: $0.looseVerdict(response)) }
            func all(_ verdicts: [IFEvalVerdict]) -> Double? {
                let known = verdicts.compactMap(\.pass)
                return known.count < verdicts.count ? nil : (known.allSatisfy { $0 } ? 1 : 0)
            }
            metrics.updateValue(all(checks.map(\.strict)), forKey: "pass")
            metrics.updateValue(all(checks.map(\.loose)), forKey: "pass_loose")
        case .trait:
            let trait = judgments.first { $0.metric == "trait" }
            // A refusal shows no trait (Persona Vectors leaves refusals out; here they count 0 so
            // that a method which makes the model refuse is not rewarded by fewer answers).
            metrics.updateValue(trait.flatMap { $0.refusal ? 0 : $0.rating.map(Double.init) }, forKey: "trait")
        case .concept:
            let c = rating("concept"), i = rating("instruction"), f = rating("fluency")
            metrics.updateValue(c.map(Double.init), forKey: "concept")
            metrics.updateValue(i.map(Double.init), forKey: "instruction")
            metrics.updateValue(f.map(Double.init), forKey: "fluency")
            metrics.updateValue(c.flatMap { c in i.flatMap { i in f.map { f in EvalScores.aggregate(concept: c, instruction: i, fluency: f) } } },
                                forKey: "aggregate")
        }
        return EvalScores(metrics: metrics, coherenceSource: source, checks: checks, judgments: judgments, meanNLL: meanNLL)
    }

    /// The metrics a protocol reports, in table order.
    public static func metricNames(_ proto: EvalProtocol) -> [String] {
        switch proto {
        case .ifevalFormat: return ["pass", "pass_loose", "coherence"]
        case .persona: return ["trait", "coherence"]
        case .concept: return ["aggregate", "concept", "instruction", "fluency", "coherence"]
        }
    }
}
