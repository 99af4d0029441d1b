import Foundation
import Testing

/// Every numeric option of every command, and the numeric fields of prompt and triplet lines,
/// driven with extreme values (0, -1, Int.max, NaN, 1e308): each run must end with exit status 0
/// or one `Error:` line naming the option, never a trap or a Foundation/Codable dump.
///
/// The options come from the binary itself (`--experimental-dump-help`), and `kinds` classifies
/// each one: an option that is not in the table fails the test, so a new option is covered (or
/// consciously called non-numeric) the day it is added.
@Suite struct ExtremeValueTests {
    enum Kind { case int, float, intList, floatList, text }

    /// Each option, by "command path --name"; "* --name" stands for that option in every command.
    static let kinds: [String: Kind] = [
        "* --backend": .text, "* --device": .text, "* --weight-dtype": .text, "* --model": .text, "* --out": .text, "* --max-line-bytes": .int,
        "detokenize --ids": .intList,
        "tokenize --text": .text,
        "logits --ids": .intList, "logits --steer": .text,
        "generate --prompts": .text, "generate --max-new-tokens": .int, "generate --temperature": .float,
        "generate --top-k": .int, "generate --top-p": .float, "generate --seed": .int, "generate --batch-size": .int,
        "generate --context-limit": .int, "generate --stop": .text, "generate --steer": .text,
        "generate --steer-location": .text, "generate --steer-file": .text,
        "lab corpus --seed": .int, "lab corpus --train": .int, "lab corpus --heldout": .int,
        "lab eval --kind": .text, "lab eval --steer": .text, "lab eval --target": .text, "lab eval --factors": .floatList,
        "lab eval --limit": .int, "lab eval --seed": .int, "lab eval --heldout": .text, "lab eval --batch-size": .int,
        "lab eval --max-new-tokens": .int, "lab eval --show": .int,
        "lab compare --kinds": .text, "lab compare --targets": .text, "lab compare --layer": .int,
        "lab compare --train-triplets": .int, "lab compare --limit": .int, "lab compare --factors": .floatList,
        "lab compare --methods": .text, "lab compare --rows": .text, "lab compare --location": .text,
        "lab compare --train-epochs": .int, "lab compare --learning-rate": .float, "lab compare --matched-steps": .int,
        "lab compare --seed": .int, "lab compare --batch-size": .int, "lab compare --max-new-tokens": .int,
        "steer export-gguf --in": .text, "steer import-gguf --in": .text,
        "capture --triplets": .text, "capture --layers": .intList, "capture --sample-max-new-tokens": .int,
        "capture --sample-temperature": .float, "capture --seed": .int, "capture --batch-size": .int,
        "analyze --capture": .text, "analyze --steer": .text, "analyze --triplets": .text, "analyze --examples": .int,
        "analyze --color-layer": .int,
        "fit --method": .text, "fit --capture": .text, "fit --layer": .int, "fit --layers": .intList, "fit --rows": .text,
        "fit --location": .text, "fit --steps": .int, "fit --learning-rate": .float,
        "loss --steer": .text, "loss --triplets": .text, "loss --objective": .text, "loss --location": .text,
        "loss --regularizer": .float, "loss --gradients": .text, "loss --batch-size": .int,
        "loss --sample-max-new-tokens": .int, "loss --sample-temperature": .float, "loss --seed": .int,
        "train --method": .text, "train --objective": .text, "train --layers": .intList, "train --triplets": .text,
        "train --location": .text, "train --epochs": .int, "train --batch-size": .int, "train --learning-rate": .float,
        "train --weight-decay": .float, "train --regularizer": .float, "train --normalize-mse": .text, "train --dev-share": .float,
        "train --score-threshold": .float, "train --seed": .int, "train --resume": .text, "train --sample-max-new-tokens": .int,
        "train --sample-temperature": .float, "train --progress": .text, "train --topk": .int, "train --l1-coefficient": .float,
        "* --shard": .text, "* --run-id": .text, "lab eval --answers": .text, "merge <shard>": .text,
        "eval run --protocol": .text, "eval run --prompts": .text, "eval run --limit": .int, "eval run --max-new-tokens": .int,
        "eval run --batch-size": .int, "eval run --judge-url": .text, "eval run --judge-model": .text,
        "eval run --judge-concurrency": .int, "eval run --judge-timeout": .float, "eval run --judge-attempts": .int,
        "eval run --judge-cache": .text, "eval run --steer": .text, "eval run --alpha": .floatList, "eval run --report": .text,
        "eval run --show": .int, "eval run --coherence": .text, "eval compare --coherence": .text,
        "eval compare --protocol": .text, "eval compare --prompts": .text, "eval compare --limit": .int,
        "eval compare --max-new-tokens": .int, "eval compare --batch-size": .int, "eval compare --judge-url": .text,
        "eval compare --judge-model": .text, "eval compare --judge-concurrency": .int, "eval compare --judge-timeout": .float,
        "eval compare --judge-attempts": .int, "eval compare --judge-cache": .text, "eval compare --steer": .text,
        "eval compare --max-alpha": .float, "eval compare --steps": .int,
        "serve --host": .text, "serve --port": .int, "serve --steer-file": .text, "serve --steer-dir": .text,
        "serve --max-batch": .int, "serve --max-queue": .int, "serve --api-key": .text, "serve --context-limit": .int,
        "serve --max-tokens-limit": .int, "serve --default-max-tokens": .int, "serve --max-body-bytes": .int,
        "serve --request-timeout": .float, "serve --shutdown-timeout": .float, "serve --prefill-chunk": .int,
        "serve --served-model-name": .text,
    ]

    static let extremes = ["0", "-1", "9223372036854775807", "nan", "1e308"]

    /// The options `tiller --experimental-dump-help` lists, as (command path, --name).
    static func dumpedOptions() throws -> [(command: [String], name: String)] {
        try dumpedOptionsOnce.get()
    }
    static let dumpedOptionsOnce = Result { try readDumpedOptions() }

    static func readDumpedOptions() throws -> [(command: [String], name: String)] {
        let result = try TillerProcess.run(["--experimental-dump-help"])
        let root = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        var found: [(command: [String], name: String)] = []
        func walk(_ command: [String: Any], path: [String]) {
            for argument in command["arguments"] as? [[String: Any]] ?? [] where argument["kind"] as? String != "flag" {
                let names = argument["names"] as? [[String: Any]] ?? []
                let long = names.first { $0["kind"] as? String == "long" }?["name"] as? String
                found.append((path, long.map { "--" + $0 } ?? "<\(argument["valueName"] as? String ?? "?")>"))
            }
            for sub in command["subcommands"] as? [[String: Any]] ?? [] {
                guard let name = sub["commandName"] as? String, name != "help" else { continue }
                walk(sub, path: path + [name])
            }
        }
        walk(try #require(root["command"] as? [String: Any]), path: [])
        return found
    }

    static func kind(_ command: [String], _ name: String) -> Kind? {
        kinds[(command + [name]).joined(separator: " ")] ?? kinds["* " + name]
    }

    @Test func everyOptionIsClassified() throws {
        let options = try Self.dumpedOptions()
        #expect(options.count > 50, "the help dump lists \(options.count) options")
        for (command, name) in options {
            #expect(Self.kind(command, name) != nil, "classify \(name) of `tiller \(command.joined(separator: " "))` in ExtremeValueTests.kinds")
        }
    }

    /// The cheap inputs every command runs on: the tiny llama fixture (128 positions, so even
    /// an unlimited generation is short), one prompt, one triplet, a capture of it.
    final class Inputs {
        let scratch: SteeringCommandTests.Scratch
        let model: ModelCommandTests.ModelDir
        var prompts: String { scratch.file("prompts.jsonl") }
        var triplets: String { scratch.file("triplets.jsonl") }
        var capture: String { scratch.file("capture.safetensors") }
        var steering: String { scratch.file("steer.safetensors") }
        /// A one-shard generation, the input of merge.
        var shards: String { scratch.file("generated.shard-0000-of-0001.jsonl") }
        /// One IFEval-layout line short enough for the fixture's 128 positions.
        var ifeval: String { scratch.file("ifeval.jsonl") }

        init() throws {
            scratch = try SteeringCommandTests.Scratch()
            model = try ModelCommandTests.ModelDir()
            try ModelCommandTests.write(["{\"prompt\": \"hi\"}"], to: prompts)
            try ModelCommandTests.write([#"{"key": 1, "prompt": "hi, no commas", "question": "hi", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}"#], to: ifeval)
            try ModelCommandTests.write(["{\"steered\": \"be loud: hi\", \"unsteered\": \"hi\", \"completion\": \"yo\"}"], to: triplets)
            try SteeringCommandTests.ok(["capture", "--model", model.path, "--triplets", triplets, "--layers", "0,1",
                                         "--out", capture, "--backend", "cpu"])
            try SteeringCommandTests.ok(["fit", "--method", "diffmean", "--capture", capture, "--layer", "1", "--model", model.path,
                                         "--out", steering, "--backend", "cpu"])
            try SteeringCommandTests.ok(["generate", "--model", model.path, "--prompts", prompts, "--max-new-tokens", "2",
                                         "--out", scratch.file("generated.jsonl"), "--shard", "0/1", "--backend", "cpu"])
        }

        /// Otherwise valid, cheap arguments of each command; `out` is this run's own output path.
        func base(_ command: [String], out: String) -> [String] {
            let m = model.path
            switch command {
            case ["logits"]: return ["--model=\(m)", "--ids=1,2", "--out=\(out)"]
            case ["detokenize"]: return ["--model=\(m)"]
            case ["generate"]:
                return ["--model=\(m)", "--prompts=\(prompts)", "--out=\(out)", "--max-new-tokens=3", "--temperature=0.7"]
            case ["lab", "corpus"]: return ["--seed=1", "--out=\(out)", "--train=3", "--heldout=3"]
            // The lab commands need the lab model: lab prompts and triplets are longer than the
            // fixture's 128 positions.
            case ["lab", "eval"]:
                return ["--model=\(SteeringCommandTests.labModel)", "--kind=concept", "--steer=prompt", "--target=pottery", "--limit=1", "--max-new-tokens=2"]
            case ["lab", "compare"]:
                return ["--model=\(SteeringCommandTests.labModel)", "--kinds=concept", "--targets=pottery", "--train-triplets=2", "--limit=2",
                        "--methods=diffmean", "--factors=1", "--max-new-tokens=2", "--layer=0", "--out=\(out)"]
            case ["capture"]:
                return ["--model=\(m)", "--triplets=\(triplets)", "--layers=0", "--out=\(out)", "--sample-max-new-tokens=2"]
            case ["analyze"]: return ["--capture=\(capture)", "--model=\(m)", "--out=\(out)"]
            case ["train"]:
                return ["--objective=ll", "--layers=1", "--model=\(m)", "--triplets=\(triplets)", "--out=\(out)", "--epochs=1",
                        "--dev-share=0"]
            case ["loss"]:
                return ["--model=\(m)", "--steer=\(steering)", "--triplets=\(triplets)", "--objective=mse", "--gradients=\(out)"]
            case ["merge"]: return [shards, "--out=\(out)"]
            // --check loads everything and exits instead of listening.
            case ["serve"]: return ["--model=\(m)", "--check"]
            case ["fit"]: return ["--method=diffmean", "--capture=\(capture)", "--layer=0", "--model=\(m)", "--out=\(out)", "--steps=1"]
            case ["eval", "run"]:
                return ["--model=\(m)", "--protocol=ifeval-format", "--prompts=\(ifeval)", "--steer=prompt", "--limit=1",
                        "--max-new-tokens=2", "--out=\(out)"]
            case ["eval", "compare"]:
                return ["--model=\(m)", "--protocol=ifeval-format", "--prompts=\(ifeval)", "--steer=\(steering)", "--limit=1",
                        "--max-new-tokens=2", "--steps=1", "--out=\(out)"]
            default: return []
            }
        }
    }

    struct Case: CustomStringConvertible {
        let arguments: [String]
        /// What the one error line must name.
        let name: String
        var description: String { "tiller " + arguments.joined(separator: " ") }
    }

    /// Runs every case (a few at a time) and returns the failures, one line each.
    static func run(_ cases: [Case]) -> [String] {
        let lock = NSLock()
        var next = 0, failures: [String] = []
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            while true {
                lock.lock()
                let index = next
                next += 1
                lock.unlock()
                guard index < cases.count else { return }
                let problem = check(cases[index])
                if let problem { lock.withLock { failures.append("\(cases[index]): \(problem)") } }
            }
        }
        return failures
    }

    /// Why a run is not clean, or nil.
    static func check(_ test: Case) -> String? {
        guard let result = try? TillerProcess.run(test.arguments) else { return "did not start" }
        if result.signalled { return "killed by signal \(result.status): \(result.stderr.suffix(300))" }
        for dump in ["Fatal error", "Error Domain", "DecodingError", "NSCocoaErrorDomain"] where result.stderr.contains(dump) {
            return "printed \(dump): \(result.stderr)"
        }
        guard result.status != 0 else { return nil }
        let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
        guard errors.count == 1, let error = errors.first else { return "\(errors.count) error lines: \(result.stderr)" }
        return error.contains(test.name) ? nil : "the error does not name \(test.name): \(error)"
    }

    @Test func numericOptionsTakeExtremeValues() throws {
        let inputs = try Inputs()
        var cases: [Case] = []
        let options = try Self.dumpedOptions()
        for (command, name) in options {
            let backend = options.contains { $0.command == command && $0.name == "--backend" } ? ["--backend=cpu"] : []
            guard let kind = Self.kind(command, name), kind != .text else { continue }
            for value in Self.extremes {
                let out = inputs.scratch.file("out-\(cases.count)")
                let base = inputs.base(command, out: out).filter { !$0.hasPrefix(name + "=") }
                // --layer and --layers of fit exclude each other.
                let rest = command == ["fit"] && name == "--layers" ? base.filter { !$0.hasPrefix("--layer=") } : base
                cases.append(Case(arguments: command + rest + ["\(name)=\(value)"] + backend, name: name))
            }
        }
        #expect(cases.count >= 30 * Self.extremes.count, "only \(cases.count) cases")
        for failure in Self.run(cases) { Issue.record(Comment(rawValue: failure)) }
    }

    /// The reported trap: a max-new-tokens of Int.max means "until the context is full".
    @Test func hugeMaxNewTokensGeneratesUntilTheContextIsFull() throws {
        let inputs = try Inputs()
        let out = inputs.scratch.file("out.jsonl")
        try SteeringCommandTests.ok(["generate", "--model", inputs.model.path, "--prompts", inputs.prompts, "--out", out,
                                     "--max-new-tokens", "9223372036854775807", "--backend", "cpu"])
        let line = try #require(try ModelCommandTests.readLines(out).first)
        // The fixture's config has max_position_embeddings 128; "hi" is 2 byte tokens.
        #expect(line.stop_reason == "eos" || (line.stop_reason == "capacity" && line.ids.count == 128 - 2),
                "\(line.stop_reason) after \(line.ids.count) tokens")
    }

    /// The numeric fields of prompt lines (generate) and triplet lines (capture).
    @Test func numericJSONFieldsTakeExtremeValues() throws {
        let inputs = try Inputs()
        let values = ["0", "-1", "9223372036854775807", "NaN", "1e308", "-1e308", "18446744073709551616"]
        let prompts = [
            "{\"prompt\": \"hi\", \"seed\": V}", "{\"prompt\": \"hi\", \"alpha\": V}", "{\"prompt\": \"hi\", \"system_length\": V}",
            "{\"ids\": [1, V]}", "{\"prompt\": \"hi\", \"location\": {\"mask\": [V, 1]}}",
            "{\"prompt\": \"hi\", \"steer\": \"s\", \"alpha\": V}", "{\"prompt\": \"hi\", \"steer\": \"s:V\"}",
            "{\"prompt\": \"hi\", \"steer\": {\"file\": \"s\", \"alpha\": V}}",
        ]
        let triplets = [
            "{\"steered\": [1, V], \"unsteered\": [1], \"completion\": [2]}",
            "{\"steered\": [1], \"unsteered\": [V], \"completion\": [2]}",
            "{\"steered\": [1], \"unsteered\": [1], \"completion\": [V]}",
        ]
        var cases: [Case] = []
        for value in values {
            for (template, command) in prompts.map({ ($0, "generate") }) + triplets.map({ ($0, "capture") }) {
                let file = inputs.scratch.file("input-\(cases.count).jsonl")
                try ModelCommandTests.write([template.replacingOccurrences(of: "V", with: value)], to: file)
                let out = inputs.scratch.file("out-\(cases.count)")
                let arguments = command == "generate"
                    ? ["generate", "--model=\(inputs.model.path)", "--prompts=\(file)", "--out=\(out)", "--max-new-tokens=2",
                       "--steer-file=s=\(inputs.steering)"]
                    : ["capture", "--model=\(inputs.model.path)", "--triplets=\(file)", "--layers=0", "--out=\(out)"]
                cases.append(Case(arguments: arguments + ["--backend=cpu"], name: file))
            }
        }
        // A steering alpha after the file name (--steer FILE:ALPHA).
        for value in values {
            let out = inputs.scratch.file("out-\(cases.count)")
            cases.append(Case(arguments: ["generate", "--model=\(inputs.model.path)", "--prompts=\(inputs.prompts)", "--out=\(out)",
                                          "--max-new-tokens=2", "--steer=\(inputs.steering):\(value)", "--backend=cpu"], name: "--steer"))
        }
        for failure in Self.run(cases) { Issue.record(Comment(rawValue: failure)) }
    }
}
