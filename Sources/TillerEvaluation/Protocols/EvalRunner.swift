import Foundation
import TillerCore
import TillerModels

/// Runs a protocol's requests: generates in chunks, scores each chunk (checkers, judge, proxy) and
/// appends its lines to the results file before the next, skipping the pairs the file already
/// holds. What a run cut short has written is never generated or judged again.
public final class EvalRunner {
    public let evaluation: LabEvaluation
    public let proto: EvalProtocol
    public let model: String
    public let scorer: EvalScorer
    public var maxNewTokens = 128
    public var batchSize = LabEvaluation.defaultBatchSize
    /// The coherence source a results file must hold to be resumed by this runner.
    public var coherenceSource: String { scorer.coherenceSource.rawValue }
    /// Requests generated (and then scored and written) together.
    public var chunkSize = 64

    public init(evaluation: LabEvaluation, proto: EvalProtocol, model: String, judge: JudgeClient?,
                coherence: EvalScores.CoherenceSource? = nil) {
        self.evaluation = evaluation
        self.proto = proto
        self.model = model
        scorer = EvalScorer(proto: proto, judge: judge, coherence: coherence)
    }

    /// Progress of a run: requests done (including those resumed) of all, and time spent on the
    /// ones this run generated.
    public struct Progress: Sendable {
        public var done: Int
        public var total: Int
        public var resumed: Int
        public var elapsed: Double
        public var generatedTokens: Int

        /// Seconds left at this run's pace; nil before anything was generated.
        public var eta: Double? {
            let fresh = done - resumed
            guard fresh > 0, elapsed > 0 else { return nil }
            return elapsed / Double(fresh) * Double(total - done)
        }
    }

    /// The results of `requests`, in order, from `file` where it holds them and generated otherwise.
    /// Without a file nothing is kept between runs.
    public func run(_ requests: [EvalRequest], file: EvalResultsFile?,
                    progress: ((Progress) -> Void)? = nil) throws -> [EvalResult] {
        let start = Date()
        let todo = requests.filter { !(file?.isDone($0) ?? false) }
        var state = Progress(done: requests.count - todo.count, total: requests.count, resumed: requests.count - todo.count,
                             elapsed: 0, generatedTokens: 0)
        progress?(state)
        var fresh: [EvalResult] = []
        var next = 0
        while next < todo.count {
            let chunk = Array(todo[next..<min(todo.count, next + chunkSize)])
            let base = state
            let answers = try evaluation.answer(chunk, maxNewTokens: maxNewTokens, batchSize: batchSize, progress: { g in
                var p = base
                // Generation is most of the time: count a chunk's requests as they finish.
                p.done = base.done + g.finishedRequests
                p.generatedTokens = base.generatedTokens + g.generatedTokens
                p.elapsed = Date().timeIntervalSince(start)
                progress?(p)
            })
            let results = try score(chunk, answers)
            try file?.append(results)
            fresh += results
            next += chunk.count
            state.done += chunk.count
            state.generatedTokens += answers.reduce(0) { $0 + $1.result.ids.count }
            state.elapsed = Date().timeIntervalSince(start)
            progress?(state)
        }
        // Every request's line: from this run, else from the file.
        var byKey: [String: EvalResult] = [:]
        for result in (file?.results ?? []) + fresh { byKey[EvalResultsFile.key(result.id, result.steerKey)] = result }
        return requests.compactMap { byKey[EvalResultsFile.key($0.item.id, $0.arm.key)] }
    }

    /// Scores a chunk: all its judge prompts in one concurrent batch, then the proxy where coherence
    /// comes from it.
    func score(_ requests: [EvalRequest], _ answers: [EvalAnswer]) throws -> [EvalResult] {
        var prompts: [JudgePrompts.Prompt] = [], ranges: [Range<Int>] = []
        for (request, answer) in zip(requests, answers) {
            let own = scorer.prompts(item: request.item, response: answer.result.completion)
            ranges.append(prompts.count..<(prompts.count + own.count))
            prompts += own
        }
        let judgments = try scorer.judge?.judge(prompts) ?? []
        var results: [EvalResult] = []
        for (k, (request, answer)) in zip(requests, answers).enumerated() {
            var nll: Double?
            if scorer.coherenceSource == .proxy {
                // The proxy's context is the bare request (the prompted one when there is none).
                let context = try evaluation.promptIDs(request.item.bare ?? request.item.prompted)
                nll = try CoherenceProxy.meanNLL(model: evaluation.model, context: context, answer: answer.result.ids)
            }
            let scores = scorer.scores(item: request.item, response: answer.result.completion,
                                       judgments: Array(judgments[ranges[k]]), meanNLL: nll)
            results.append(EvalResult(proto: proto, model: model, request: request, answer: answer, scores: scores,
                                      maxNewTokens: maxNewTokens))
        }
        return results
    }
}
