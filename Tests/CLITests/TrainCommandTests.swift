import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `tiller train` on the lab model: trained heads beat DiffMean on held-out triplets and steer the
/// held-out answers; runs are deterministic, survive a kill (--resume ends where an uninterrupted
/// run ends), agree across backends, and refuse bad input in one line.
@Suite struct TrainCommandTests {
    typealias S = SteeringCommandTests

    /// A persona target of the lab corpus: 40 training and 8 held-out triplets.
    final class Corpus {
        let dir: S.Scratch
        let train: String, dev: String, small: String
        let trait = "cheerful"
        init() throws {
            let dir = try S.Scratch()
            self.dir = dir
            let corpus = dir.file("corpus")
            try S.ok(["lab", "corpus", "--seed", "1", "--out", corpus, "--train", "2000", "--heldout", "10"])
            let lines = try String(contentsOfFile: corpus + "/train.jsonl", encoding: .utf8).split(separator: "\n")
                .map { try S.jsonObject(String($0)) }
                .filter { $0["kind"] as? String == "persona" && $0["trait"] as? String == "cheerful" }
            #expect(lines.count >= 48)
            func write(_ chosen: ArraySlice<[String: Any]>, _ name: String) throws -> String {
                let path = dir.file(name)
                try (try chosen.map { try S.jsonLine($0) }.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
                return path
            }
            train = try write(lines[0..<40], "train.jsonl")
            dev = try write(lines[40..<48], "dev.jsonl")
            small = try write(lines[0..<12], "small.jsonl")
        }
    }
    static let shared = Result { try Corpus() }

    static func loss(_ file: String, _ triplets: String, _ objective: String) throws -> Double {
        let run = try S.ok(["loss", "--model", S.labModel, "--steer", file, "--triplets", triplets, "--objective", objective, "--backend", "cpu"])
        return try #require(try S.jsonObject(run.stdout)["loss"] as? Double)
    }

    static func traitScore(_ steer: String) throws -> Double {
        let run = try S.ok(["lab", "eval", "--kind", "persona", "--target", "cheerful", "--steer", steer, "--limit", "8", "--json", "--backend", "cpu"])
        let metrics = try #require(try S.jsonObject(run.stdout)["metrics"] as? [String: Any], "\(run.stdout)")
        return try #require(metrics["trait"] as? Double, "\(metrics)")
    }

    /// Runs `tiller train` with `arguments` and sends it `signal` as soon as its first checkpoint
    /// (beside `out`) exists; returns the finished process.
    static func interruptOnceCheckpointed(_ arguments: [String], out: String, signal: Int32) throws -> Process {
        let process = Process()
        process.executableURL = TillerProcess.binary
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: out + ".checkpoint.json") && process.isRunning && Date() < deadline { usleep(5_000) }
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        return process
    }

    /// The tensors of a steering file, by name.
    static func tensors(_ path: String) throws -> [String: [Float]] {
        try ModelCommandTests.readSafetensors(path).mapValues(\.values)
    }

    @Test func trainedHeadsBeatDiffMeanAndSteer() throws {
        let data = try Self.shared.get()
        let dir = data.dir
        // DiffMean on the same triplets, at layer 2 and on every layer.
        let capture = dir.file("capture.safetensors")
        try S.ok(["capture", "--model", S.labModel, "--triplets", data.train, "--layers", "all", "--out", capture, "--backend", "cpu"])
        let diffMean2 = dir.file("dm2.safetensors"), diffMeanAll = dir.file("dm-all.safetensors")
        try S.ok(["fit", "--method", "diffmean", "--capture", capture, "--layer", "2", "--model", S.labModel, "--out", diffMean2, "--backend", "cpu"])
        try S.ok(["fit", "--method", "diffmean", "--capture", capture, "--layers", "0,1,2,3", "--model", S.labModel, "--out", diffMeanAll,
                  "--backend", "cpu"])

        // S-PSR (MSE) at layer 2: its held-out MSE is below DiffMean's.
        let sPSR = dir.file("s-psr.safetensors")
        let run = try S.ok(["train", "--method", "psr", "--objective", "mse", "--layers", "2", "--model", S.labModel, "--triplets", data.train,
                            "--out", sPSR, "--epochs", "6", "--learning-rate", "0.03", "--seed", "3", "--backend", "cpu"])
        let summary = try S.jsonObject(run.stdout)
        #expect(summary["triplets"] as? Int == 36 && summary["held_out"] as? Int == 4 && summary["epochs"] as? Int == 6, "\(summary)")
        let sPSRLoss = try Self.loss(sPSR, data.dev, "mse"), diffMeanLoss = try Self.loss(diffMean2, data.dev, "mse")
        #expect(sPSRLoss < diffMeanLoss, "held-out MSE: S-PSR \(sPSRLoss), DiffMean \(diffMeanLoss)")
        // The log has every epoch's dev loss; the file says how it was made.
        let log = try S.jsonObject(try String(contentsOfFile: sPSR + ".training.json", encoding: .utf8))
        #expect((log["epochs"] as? [[String: Any]])?.compactMap { $0["devLoss"] as? Double }.count == 6, "\(log)")
        let recipe = try S.Safetensors(sPSR).metadata("tiller.training")
        #expect(recipe["method"] as? String == "psr" && recipe["objective"] as? String == "mse" && recipe["layers"] as? [Int] == [2]
                && recipe["epochs"] as? Int == 6 && recipe["seed"] as? Int == 3 && (recipe["dataHash"] as? String)?.isEmpty == false
                && recipe["final_dev_loss"] as? Double != nil, "\(recipe)")
        #expect(!FileManager.default.fileExists(atPath: sPSR + ".checkpoint.json"))

        // A-PSR (LL) on every layer: a held-out likelihood better than DiffMean's on every layer,
        // and held-out answers that now carry the trait.
        let aPSR = dir.file("a-psr.safetensors")
        try S.ok(["train", "--method", "psr", "--objective", "ll", "--layers", "all", "--model", S.labModel, "--triplets", data.train,
                  "--out", aPSR, "--epochs", "4", "--learning-rate", "0.03", "--backend", "cpu"])
        let aPSRLoss = try Self.loss(aPSR, data.dev, "ll"), diffMeanLL = try Self.loss(diffMeanAll, data.dev, "ll")
        #expect(aPSRLoss < diffMeanLL, "held-out LL: A-PSR \(aPSRLoss), DiffMean \(diffMeanLL)")
        let bare = try Self.traitScore("none"), steered = try Self.traitScore(aPSR)
        #expect(steered > bare + 50, "trait score: unsteered \(bare), A-PSR \(steered)")
    }

    @Test func deterministicAndResumableAfterAKill() throws {
        let data = try Self.shared.get()
        let dir = data.dir
        let args = ["train", "--method", "psr", "--objective", "ll", "--layers", "1,3", "--model", S.labModel, "--triplets", data.small,
                    "--epochs", "12", "--batch-size", "4", "--learning-rate", "0.02", "--regularizer", "0.1", "--backend", "cpu"]
        let first = dir.file("first.safetensors"), second = dir.file("second.safetensors"), killed = dir.file("killed.safetensors")
        try S.ok(args + ["--out", first])
        try S.ok(args + ["--out", second])
        #expect(try Self.tensors(first) == Self.tensors(second), "two runs of one seed differ")

        // Killed (SIGKILL) once a checkpoint exists, then resumed: the same parameters.
        for signal in [SIGKILL, SIGINT] {
            try? FileManager.default.removeItem(atPath: killed)
            let process = try Self.interruptOnceCheckpointed(args + ["--out", killed], out: killed, signal: signal)
            let checkpoint = killed + ".checkpoint.json"
            #expect(process.terminationReason == (signal == SIGKILL ? .uncaughtSignal : .exit), "signal \(signal)")
            if signal == SIGINT { #expect(process.terminationStatus == 130) }
            #expect(FileManager.default.fileExists(atPath: checkpoint) && !FileManager.default.fileExists(atPath: killed))
            let resumed = try S.ok(args + ["--out", killed, "--resume"])
            #expect(resumed.stderr.contains("resuming at epoch"), "\(resumed.stderr)")
            #expect(try Self.tensors(killed) == Self.tensors(first), "resumed after signal \(signal): parameters differ from an uninterrupted run")
        }
        // --resume with no checkpoint, or with another recipe's checkpoint, is refused.
        try S.fails(args + ["--out", dir.file("none.safetensors"), "--resume"], containing: ["checkpoint", "--resume"])
    }

    @Test func vulkanEndsWhereTheCPUEnds() throws {
        let data = try Self.shared.get()
        let dir = data.dir
        guard (try? TillerProcess.run(["info", "--backend", "vulkan"]))?.status == 0 else {
            print("TrainCommandTests: no Vulkan device here; the CPU/Vulkan comparison is skipped")
            return
        }
        var results: [[String: [Float]]] = []
        for backend in ["cpu", "vulkan"] {
            let out = dir.file("\(backend).safetensors")
            try S.ok(["train", "--method", "psr", "--objective", "mse", "--layers", "1,2", "--model", S.labModel, "--triplets", data.small,
                      "--epochs", "2", "--batch-size", "4", "--learning-rate", "0.01", "--out", out, "--backend", backend])
            results.append(try Self.tensors(out))
        }
        for (name, cpu) in results[0] {
            let vulkan = try #require(results[1][name])
            let scale = cpu.map(abs).max() ?? 0
            let worst = zip(cpu, vulkan).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-3 * max(scale, 1e-6), "\(name): CPU and Vulkan differ by \(worst) (largest \(scale))")
        }
    }

    @Test func badInput() throws {
        let data = try Self.shared.get()
        let dir = data.dir
        let out = dir.file("bad.safetensors")
        let base = ["train", "--objective", "ll", "--layers", "2", "--model", S.labModel, "--out", out, "--backend", "cpu"]
        let empty = dir.file("empty.jsonl")
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        try S.fails(base + ["--triplets", empty], containing: [empty, "no triplets"])
        // Every line judged incoherent.
        let judged = dir.file("judged.jsonl")
        let lines = try String(contentsOfFile: data.small, encoding: .utf8).split(separator: "\n").map { line -> String in
            var object = try S.jsonObject(String(line))
            object["coherence"] = 0.2
            return try S.jsonLine(object)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: judged, atomically: true, encoding: .utf8)
        try S.fails(base + ["--triplets", judged], containing: [judged, "--score-threshold"])
        // A completion longer than the model's context.
        let long = dir.file("long.jsonl")
        try "{\"steered\": [5, 6, 7], \"unsteered\": [6, 7], \"completion\": [\(Array(repeating: "9", count: 5000).joined(separator: ","))]}\n"
            .write(toFile: long, atomically: true, encoding: .utf8)
        try S.fails(base + ["--triplets", long], containing: ["\(long):1", "context"])
        // The output is never one of the inputs.
        let before = try String(contentsOfFile: data.small, encoding: .utf8)
        try S.fails(["train", "--objective", "ll", "--layers", "2", "--model", S.labModel, "--triplets", data.small, "--out", data.small,
                     "--backend", "cpu"], containing: ["--out", data.small])
        #expect(try String(contentsOfFile: data.small, encoding: .utf8) == before)
        try S.fails(base + ["--triplets", data.small, "--method", "reft"], containing: ["--method", "reft"])
        try S.fails(base + ["--triplets", data.small, "--layers", "9"], containing: ["--layers", "9"])
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func aNonFiniteLossStopsNamingTheBatch() throws {
        // A model whose embedding of token 77 is NaN, and a triplet that holds it in its second batch.
        let model = try ModelCommandTests.ModelDir()
        let weights = model.file("model.safetensors")
        let d = try S.Safetensors(weights).shape("model.embed_tokens.weight")[1]
        try InputHardeningTests.patched(weights, "model.embed_tokens.weight", element: 77 * d, count: d, value: .nan, to: weights)
        let dir = try S.Scratch()
        let triplets = dir.file("t.jsonl"), out = dir.file("o.safetensors")
        try ("{\"steered\": [1, 100, 40], \"unsteered\": [1, 40], \"completion\": [60, 61]}\n"
             + "{\"steered\": [1, 100, 40], \"unsteered\": [1, 40], \"completion\": [77, 61]}\n")
            .write(toFile: triplets, atomically: true, encoding: .utf8)
        try S.fails(["train", "--objective", "ll", "--layers", "1", "--model", model.path, "--triplets", triplets, "--out", out,
                     "--batch-size", "1", "--dev-share", "0", "--backend", "cpu"], containing: ["epoch 1", "batch", "not finite"])
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
