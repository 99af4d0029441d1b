import ArgumentParser
import Foundation
import TillerCore
import TillerModels

struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run token ids through the model and write the logits of every position.",
        discussion: "Writes a safetensors file with one F32 tensor \"logits\" of shape [T, vocab].")

    @Option(help: "The model directory (config.json, *.safetensors).")
    var model: String

    @Option(help: "Comma-separated token ids, e.g. 1,2,3.")
    var ids: String

    @Option(help: "The safetensors file to write.")
    var out: String

    @Option(help: ArgumentHelp("Steer every position with this steering file or .gguf control vector; ALPHA replaces its alpha (repeatable: stacked in order).",
                               valueName: "file[:alpha]"))
    var steer: [String] = []

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        _ = try LogitsSteering.validate(steer)
    }

    func run() throws {
        let tokens = try Self.parseIDs(ids)
        let steerEntries = try LogitsSteering.validate(steer)
        try ModelDirectory.check(model)
        try OutputPaths.check(out, inputs: steerEntries.map { ("--steer", $0.name) }, modelDirectory: model)
        let backend = try backendOptions.make()
        let transformer = try TransformerModel.load(directory: model, backend: backend, weightDType: backendOptions.weightDType?.dtype,
                                                    keepQuantized: backendOptions.keepsQuantizedWeights)
        // Positions past max_position_embeddings are ones the model never saw (and Gemma's
        // sliding windows, RoPE schedules and KV sizes assume they do not occur).
        if let limit = transformer.config.maxPositionEmbeddings, tokens.count > limit {
            throw TillerError.invalidArgument(op: "logits", detail: "--ids has \(tokens.count) ids, more than the context of \(limit) (max_position_embeddings)")
        }
        let cache = try transformer.makeCache(batchSize: 1, capacity: tokens.count)
        let hook = try LogitsSteering.hook(steerEntries, model: transformer, modelDirectory: model, tokenCount: tokens.count)
        let output = try transformer.forward([tokens], cache: cache, logits: .all, hook: hook)
        let values = try backend.floats(output.logits)
        try SafetensorsWriter.write([.init(name: "logits", shape: [tokens.count, transformer.vocabularySize], values: values)], to: out)
    }

    static func parseIDs(_ text: String) throws -> [Int32] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw TillerError.invalidArgument(op: "logits", detail: "--ids is empty: pass comma-separated token ids, e.g. 1,2,3")
        }
        return try parts.map { part in
            guard let id = Int32(part), id >= 0 else {
                throw TillerError.invalidArgument(op: "logits", detail: "--ids: \"\(part)\" is not a token id (a non-negative integer)")
            }
            return id
        }
    }
}
