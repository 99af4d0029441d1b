import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `tiller train --method reft-r1` on the lab model: AxBench's ReFT-r1 trains, writes a constant
/// head z = (largest latent) * w whose held-out likelihood beats the bare model and the untrained
/// direction, the same file for a seed and after an interruption and --resume; its flags are
/// refused with the other methods.
@Suite struct ReFTR1TrainTests {
    typealias S = SteeringCommandTests
    typealias T = TrainCommandTests

    @Test func trainsAConstantHeadThatBeatsTheStart() throws {
        let data = try T.shared.get()
        let dir = data.dir
        let args = ["train", "--method", "reft-r1", "--objective", "ll", "--layers", "2", "--model", S.labModel, "--triplets", data.train,
                    "--seed", "5", "--backend", "cpu"]
        let trained = dir.file("reft.safetensors"), again = dir.file("reft-again.safetensors"), start = dir.file("reft-start.safetensors")
        let run = try S.ok(args + ["--out", trained])
        let summary = try S.jsonObject(run.stdout)
        // AxBench's defaults: 3 epochs, k 8, L1 weight 0.005, learning rate 0.01, no weight decay.
        #expect(summary["epochs"] as? Int == 3 && summary["triplets"] as? Int == 36, "\(summary)")
        let recipe = try S.Safetensors(trained).metadata("tiller.training")
        #expect(recipe["method"] as? String == "reft-r1" && recipe["topK"] as? Int == 8 && recipe["l1Coefficient"] as? Double == 0.005
                && recipe["learningRate"] as? Double == 0.01 && recipe["weightDecay"] as? Double == 0, "\(recipe)")
        let maxLatent = try #require((recipe["max_latents"] as? [String: Double])?["2"], "\(recipe)")
        #expect(maxLatent > 0)

        // One constant head at layer 2: w and bias 0, z = maxLatent * w with w of unit length
        // (AxBench normalises it before every step; the last step moves it by about lr / steps).
        let tensors = try T.tensors(trained)
        #expect(Set(tensors.keys) == ["layers.2.w", "layers.2.bias", "layers.2.z"], "\(tensors.keys)")
        #expect(tensors["layers.2.w"]!.allSatisfy { $0 == 0 } && tensors["layers.2.bias"] == [0])
        let length = Double(tensors["layers.2.z"]!.reduce(0) { $0 + $1 * $1 }.squareRoot())
        #expect(abs(length / maxLatent - 1) < 0.02, "|z| \(length), largest latent \(maxLatent)")
        #expect(run.stderr.contains("largest latent"), "\(run.stderr)")

        // The same file for a seed.
        try S.ok(args + ["--out", again])
        #expect(try T.tensors(trained) == T.tensors(again), "two runs of one seed differ")

        // Held-out LL: below the bare model's (the dev lines with alpha 0 leave it unsteered) and
        // below the untrained direction's (a learning rate of 1e-12: the start, scaled the same way).
        try S.ok(args + ["--out", start, "--epochs", "1", "--learning-rate", "1e-12"])
        let bareDev = dir.file("dev-bare.jsonl")
        let lines = try String(contentsOfFile: data.dev, encoding: .utf8).split(separator: "\n").map { line -> String in
            var object = try S.jsonObject(String(line))
            object["alpha"] = 0
            return try S.jsonLine(object)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: bareDev, atomically: true, encoding: .utf8)
        let trainedLoss = try T.loss(trained, data.dev, "ll"), startLoss = try T.loss(start, data.dev, "ll")
        let bareLoss = try T.loss(trained, bareDev, "ll")
        #expect(trainedLoss < startLoss && trainedLoss < bareLoss, "held-out LL: trained \(trainedLoss), untrained \(startLoss), bare \(bareLoss)")
    }

    @Test func resumesWhereAnUninterruptedRunEnds() throws {
        let data = try T.shared.get()
        let dir = data.dir
        // The L1 weight ramps with the optimiser's step, which the checkpoint carries.
        let args = ["train", "--method", "reft-r1", "--objective", "ll", "--layers", "1,3", "--model", S.labModel, "--triplets", data.small,
                    "--epochs", "12", "--batch-size", "4", "--l1-coefficient", "0.5", "--backend", "cpu"]
        let whole = dir.file("reft-whole.safetensors"), stopped = dir.file("reft-stopped.safetensors")
        try S.ok(args + ["--out", whole])
        let process = try T.interruptOnceCheckpointed(args + ["--out", stopped], out: stopped, signal: SIGINT)
        let checkpoint = stopped + ".checkpoint.json"
        #expect(process.terminationStatus == 130 && FileManager.default.fileExists(atPath: checkpoint))
        let resumed = try S.ok(args + ["--out", stopped, "--resume"])
        #expect(resumed.stderr.contains("resuming at epoch"), "\(resumed.stderr)")
        #expect(try T.tensors(stopped) == T.tensors(whole), "resumed: the file differs from an uninterrupted run's")
    }

    @Test func flagsBelongToTheirMethod() throws {
        let data = try T.shared.get()
        let out = data.dir.file("reft-bad.safetensors")
        let base = ["train", "--objective", "ll", "--layers", "2", "--model", S.labModel, "--triplets", data.small, "--out", out, "--backend", "cpu"]
        try S.fails(base + ["--method", "psr", "--topk", "4"], containing: ["--topk", "reft-r1"])
        try S.fails(base + ["--method", "const", "--l1-coefficient", "0.1"], containing: ["--l1-coefficient", "reft-r1"])
        try S.fails(base + ["--method", "reft-r1", "--regularizer", "0.1"], containing: ["--regularizer", "reft-r1"])
        try S.fails(base + ["--method", "reft-r1", "--topk", "0"], containing: ["--topk", "0"])
        try S.fails(base + ["--method", "reft-r1", "--l1-coefficient=-1"], containing: ["--l1-coefficient", "-1"])
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
