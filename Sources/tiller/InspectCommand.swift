import ArgumentParser
import Foundation

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What a model is: architecture, sizes, context, dtypes, parameters, chat template.",
        discussion: """
            Reads config.json, the safetensors headers (no weights: instant for any size) and the \
            tokenizer files. Parameters are the elements of every tensor (a tied output projection \
            counted once). The default system prompt is what the chat template writes into a \
            conversation that has no system message (Qwen2's "You are a helpful assistant."): a \
            prompt without a system message is then compared with one that has the default.
            """)

    @Option(help: "The model directory (config.json, *.safetensors).")
    var model: String

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func run() throws {
        let inspection = try ModelInspection(directory: model)
        print(json ? try jsonLine(inspection) : inspection.text)
    }
}
