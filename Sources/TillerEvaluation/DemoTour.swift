import Foundation
import TillerCore
import TillerLab
import TillerModels

/// `tiller demo`: a few held-out questions, each answered bare and with its steering prompt, with the
/// judges' scores side by side, then a summary table. Twelve short greedy generations in one batch,
/// so it takes seconds even on a small CPU.
public struct DemoTour {
    /// One question: the unsteered and the prompt-steered answer, both judged against its target.
    public struct Item: Sendable {
        public let example: LabExample
        public let unsteered: LabEvaluationRow
        public let steered: LabEvaluationRow
    }

    public let items: [Item]
    public let generation: GenerationProgress

    /// Per kind, the first held-out example with the steering text in the system message and the first
    /// in the user message, preferring a second target unlike the first (another format type, trait or
    /// concept) so the tour shows more of the lab.
    public static func select(_ heldout: [LabExample], kinds: [LabKind] = [.concept, .persona, .format]) -> [LabExample] {
        var chosen: [LabExample] = []
        for kind in kinds {
            let candidates = heldout.filter { $0.kind == kind }
            guard let first = candidates.first(where: { $0.placement == .system }) ?? candidates.first else { continue }
            chosen.append(first)
            let others = candidates.filter { $0.placement != first.placement }
            if let second = others.first(where: { !sameKindOfTarget($0, first) }) ?? others.first {
                chosen.append(second)
            }
        }
        return chosen
    }

    static func sameKindOfTarget(_ a: LabExample, _ b: LabExample) -> Bool {
        switch (a.target, b.target) {
        case (.format(let x)?, .format(let y)?): return x.kind == y.kind
        default: return a.target == b.target
        }
    }

    /// Answers every example twice (bare, then steered) in one batch and judges both answers against
    /// the example's target.
    public static func run(_ examples: [LabExample], evaluation: LabEvaluation,
                           progress: ((GenerationProgress) -> Void)? = nil) throws -> DemoTour {
        if let bare = examples.first(where: { $0.target == nil }) {
            throw TillerError.invalidArgument(op: "demo", detail: "\(bare.id) has no steering target")
        }
        let prompts = examples.flatMap { [$0.promptMessages(steered: false), $0.promptMessages(steered: true)] }
        var last = GenerationProgress(totalRequests: prompts.count)
        let results = try evaluation.answer(prompts, batchSize: prompts.count, progress: { p in
            last = p
            progress?(p)
        })
        let items = examples.enumerated().map { i, example -> Item in
            func row(_ j: Int) -> LabEvaluationRow {
                let result = results[j]
                let scores = LabJudge.score(example: example, answer: result.completion)!
                return LabEvaluationRow(example: example, messages: prompts[j], answer: result.completion,
                                        stopReason: result.stopReason, scores: scores)
            }
            return Item(example: example, unsteered: row(2 * i), steered: row(2 * i + 1))
        }
        return DemoTour(items: items, generation: last)
    }
}
