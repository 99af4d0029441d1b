import ArgumentParser
import Foundation
import TillerCore
import TillerModels
import TillerSteering
import TillerTraining

/// How a missing completion y' is sampled from x' (`tiller capture`, `loss`, `train`).
struct CompletionSampling: ParsableArguments {
    @Option(help: "Most tokens of a sampled y'.")
    var sampleMaxNewTokens: Int = 64

    @Option(help: "Temperature for sampling y' (0: greedy).")
    var sampleTemperature: Float = 0

    func validate() throws {
        try NumericOptions.check("--sample-max-new-tokens", sampleMaxNewTokens, NumericOptions.tokenCount)
        try NumericOptions.checkTemperature("--sample-temperature", sampleTemperature)
    }

    func options(seed: UInt64) -> GenerationOptions {
        GenerationOptions(maxNewTokens: sampleMaxNewTokens, temperature: sampleTemperature, seed: seed)
    }

    var summary: String { "\(sampleTemperature == 0 ? "greedy" : "temperature \(sampleTemperature)"), at most \(sampleMaxNewTokens) tokens" }
}

/// Triplet lines made into the objectives' `TrainingTriplet`s for `tiller loss` and `tiller train`:
/// tokenized as `tiller capture` does, y' sampled where a line has none, each checked to fit the
/// model's context (one-line errors naming the file and line).
enum TrainingTriplets {
    static func prepare(_ lines: [CaptureTripletLine], path: String, modelDirectory: String, model: TransformerModel,
                        tokenizer: Tokenizer, sampling: CompletionSampling, seed: UInt64, batchSize: Int) throws -> [TrainingTriplet] {
        let toSample = lines.filter { $0.completion == nil }.count
        var generator: Generator?
        if toSample > 0 {
            printError("tiller: sampling y' for \(toSample) triplet\(toSample == 1 ? "" : "s") (\(sampling.summary))")
            generator = try Generator(model: model, tokenizer: tokenizer, batchSize: batchSize)
        }
        let prepared = try CapturePreparer(tokenizer: tokenizer, templateDirectory: modelDirectory)
            .prepare(lines, path: path, generator: generator, options: sampling.options(seed: seed))
        let context = model.config.maxPositionEmbeddings ?? Int.max
        return try zip(lines, prepared).map { line, triplet in
            let longest = max(triplet.steeredSequence.count, triplet.unsteeredSequence.count)
            guard longest <= context else {
                throw TillerError.io(path: "\(path):\(line.number)", detail: "\(longest) tokens do not fit the model's context of \(context) (max_position_embeddings)")
            }
            return TrainingTriplet(ids: triplet, alpha: line.alpha)
        }
    }
}
