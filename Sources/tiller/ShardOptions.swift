import ArgumentParser
import Foundation
import TillerCore

/// `--shard I/N` and `--run-id` of the batch commands that walk a list of lines (generate, capture,
/// lab eval, eval): run one shard of a cluster job array (docs/cluster.md). Without --shard the shard
/// comes from the job array's environment (Slurm, Kubernetes Indexed Jobs), and the command says
/// which variables it used.
struct ShardOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Do only shard I of N (0-based) of the input lines, written to OUT.shard-000I-of-000N.EXT with a manifest OUT...EXT.shard.json (tiller merge joins them); none: the whole input even in a job array (default: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX + TILLER_SHARD_COUNT, else none).",
                               valueName: "i/n|none"))
    var shard: String?

    @Option(help: ArgumentHelp("The run id recorded in each shard's manifest; merge refuses shards of different runs (default: derived from the command line and the input files' contents).",
                               valueName: "id"))
    var runId: String?

    func validate() throws {
        if let shard, shard != "none" {
            do { _ = try Shard(parsing: shard) } catch { throw ValidationError("\(error)") }
        }
        if let runId {
            guard !runId.isEmpty, runId.count <= 128, runId.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
                throw ValidationError("--run-id must be 1-128 printable characters without spaces")
            }
        }
    }

    /// The shard this process runs, or nil for the whole input. `out` is the output the unsharded
    /// run writes (`outFlag` names it in errors; a shard needs a file), `inputs` the input files
    /// whose contents go into the derived run id.
    func resolve(command: String, format: ShardManifest.Format, out: String?, outFlag: String = "--out", inputs: [String],
                 environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ShardRun? {
        let chosen: (shard: Shard, source: String)?
        switch shard {
        case "none": chosen = nil
        case let text?: chosen = (try Shard(parsing: text), "--shard")
        case nil: chosen = try Shard.fromEnvironment(environment)
        }
        guard let chosen else { return nil }
        guard let out, out != "-" else {
            throw TillerError.invalidArgument(op: outFlag, detail: "shard \(chosen.shard) (from \(chosen.source)) writes its own file: give \(outFlag) FILE, not standard output (or --shard none)")
        }
        let id = try runId ?? Self.derivedRunID(command: command, inputs: inputs)
        let run = ShardRun(shard: chosen.shard, runID: id, command: command, format: format, output: chosen.shard.outputPath(out))
        printError("tiller: shard \(chosen.shard) (from \(chosen.source)), run \(id)\(runId == nil ? " (derived)" : ""): writing \(run.output)")
        return run
    }

    /// 16 hex digits of SHA-256 over the command line (without --shard and --run-id, which differ
    /// per task or name the run) and the contents of the input files, so every task of an array,
    /// and the same job submitted again, derive the same id, and a changed input or option another.
    static func derivedRunID(command: String, inputs: [String], arguments: [String] = CommandLine.arguments) throws -> String {
        var kept: [String] = []
        var skipNext = false
        for argument in arguments.dropFirst() {
            if skipNext { skipNext = false; continue }
            if argument == "--shard" || argument == "--run-id" { skipNext = true; continue }
            if argument.hasPrefix("--shard=") || argument.hasPrefix("--run-id=") { continue }
            kept.append(argument)
        }
        var hasher = SHA256()
        hasher.update(Data(([command] + kept).joined(separator: "\u{0}").utf8))
        for input in inputs {
            var info = stat()
            // Standard input and pipes cannot be read twice: only the command line names them.
            guard input != "-", stat(input, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            hasher.update(Data("\u{0}\(input)\u{0}\(try SHA256.hex(file: input))".utf8))
        }
        return String(hasher.finishHex().prefix(16))
    }
}

/// One shard's run: what it reads, where it writes, and its manifest once the output is complete.
struct ShardRun {
    let shard: Shard
    let runID: String
    let command: String
    let format: ShardManifest.Format
    /// The shard's output path (the unsharded output's, with the shard's label).
    let output: String

    /// True (after saying so) when this shard's output of this run is already complete: a
    /// re-submitted array redoes only the shards that did not finish. Otherwise an old manifest is
    /// removed first, so a run killed after replacing the output never leaves a stale one that
    /// would vouch for it.
    func skipIfComplete() throws -> Bool {
        if let manifest = try? ShardManifest.read(for: output), manifest.runID == runID, manifest.shard == shard.index,
           manifest.shards == shard.count, manifest.command == command, try manifest.mismatch(output) == nil {
            printError("tiller: shard \(shard) of run \(runID) is already complete (\(output), \(manifest.lines) of \(manifest.inputLines) lines): skipped")
            return true
        }
        let stale = ShardManifest.path(for: output)
        if FileManager.default.fileExists(atPath: stale) {
            do { try FileManager.default.removeItem(atPath: stale) } catch {
                throw TillerError.io(path: stale, detail: "cannot remove the old manifest (\(ErrorReason.file(error, path: stale)))")
            }
        }
        return false
    }

    /// This shard's items of the whole input's, in input order.
    func select<T>(_ items: [T]) -> [T] { shard.select(items) }

    /// Writes the manifest of the complete output (after the output was committed).
    /// `indices`: the input lines written, when the split is not by line index modulo the count.
    func finish(inputLines: Int, indices: [Int]? = nil) throws {
        let manifest = try ShardManifest.describing(output, runID: runID, command: command, format: format, shard: shard,
                                                    inputLines: inputLines, indices: indices)
        try manifest.write(for: output)
        printError("tiller: shard \(shard) complete: \(manifest.lines) of \(inputLines) lines in \(output)")
    }
}
