import ArgumentParser
import Foundation
import TillerCore
import TillerModels
import TillerSteering

struct Steer: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Steering files: convert to and from llama.cpp control vectors.",
        discussion: "Steering files and the layer convention of control vectors: docs/steering.md.",
        subcommands: [ExportGGUF.self, ImportGGUF.self])

    struct ExportGGUF: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-gguf",
            abstract: "Write a steering file of constant heads as a llama.cpp control vector (GGUF).",
            discussion: """
                Layer L (the residual after block L) becomes direction.L, alpha is multiplied into \
                the directions, and the location is dropped: llama.cpp steers every position, so a \
                file fitted for answer_only (fit's default) gives other outputs there than in Tiller; \
                fit with --location all (or generate with --steer-location all) to compare. \
                Non-constant heads (PSR, Stolfo) cannot be exported, nor layer 0 (llama.cpp refuses \
                direction.0): --drop-layer-0 exports the other layers without it.
                """)

        @Option(name: .customLong("in"), help: "The steering file (.safetensors).")
        var input: String

        @Option(help: "The control vector to write (.gguf).")
        var out: String

        @Flag(name: .customLong("drop-layer-0"), help: "Leave out layer 0, which llama.cpp cannot load, instead of refusing the file.")
        var dropLayer0 = false

        func run() throws {
            try OutputPaths.check(out, inputs: [("--in", input)])
            let file = try SteeringFile.read(path: input)
            var intervention = file.intervention
            let (kept, dropped) = ControlVector.droppingUnrepresentableLayers(intervention)
            if !dropped.isEmpty {
                guard dropLayer0 else {
                    throw TillerError.io(path: input, detail: "has a head on layer \(dropped.map(String.init).joined(separator: ",")), which llama.cpp cannot load (it refuses direction.0); pass --drop-layer-0 to export the other layers without it")
                }
                guard !kept.heads.isEmpty else {
                    throw TillerError.io(path: input, detail: "steers layer 0 only, which llama.cpp cannot load: nothing is left to export")
                }
                intervention = kept
                FileHandle.standardError.write(Data("note: dropped layer \(dropped.map(String.init).joined(separator: ",")) (llama.cpp cannot load direction.0); the control vector steers layers \(kept.layers.map(String.init).joined(separator: ",")) only\n".utf8))
            }
            let vector: ControlVector
            do {
                vector = try ControlVector(intervention: intervention, modelHint: file.model.modelType)
            } catch let error as TillerError {
                throw TillerError.io(path: input, detail: "\(error)")
            }
            try vector.write(to: out)
            for note in ControlVector.exportNotes(intervention) {
                FileHandle.standardError.write(Data("note: \(note)\n".utf8))
            }
            print("wrote \(out): \(vector.layers.count) direction\(vector.layers.count == 1 ? "" : "s") (layers \(vector.layers.map(String.init).joined(separator: ","))), model hint \(vector.modelHint)")
        }
    }

    struct ImportGGUF: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-gguf",
            abstract: "Read a llama.cpp or repeng control vector (GGUF) as a steering file for a model.",
            discussion: "direction.N becomes a constant head on layer N (the residual after block N), at every position, alpha 1.")

        @Option(name: .customLong("in"), help: "The control vector (.gguf).")
        var input: String

        @Option(help: "The model directory the vector is for (config.json, *.safetensors).")
        var model: String

        @Option(help: "The steering file to write (.safetensors).")
        var out: String

        func run() throws {
            try ModelDirectory.check(model)
            try OutputPaths.check(out, inputs: [("--in", input)], modelDirectory: model)
            let fingerprint = try ModelFingerprint(directory: model)
            let vector = try ControlVector.read(path: input)
            let intervention = try vector.intervention(for: fingerprint, path: input)
            if !vector.modelHint.isEmpty, vector.modelHint != fingerprint.modelType {
                FileHandle.standardError.write(Data("note: the control vector's model hint is \(vector.modelHint), the model is \(fingerprint.modelType)\n".utf8))
            }
            let notes = ["tiller.imported_from": (input as NSString).lastPathComponent,
                         "controlvector.model_hint": vector.modelHint]
            try SteeringFile.save(intervention, model: fingerprint, metadata: notes, to: out)
            print("wrote \(out): \(intervention.layers.count) constant head\(intervention.layers.count == 1 ? "" : "s") (layers \(intervention.layers.map(String.init).joined(separator: ","))) for \(fingerprint.architecture)")
        }
    }
}
