import Foundation
import Testing

/// `tiller lab compare` and `tiller lab eval --steer FILE` on the built-in lab model with tiny
/// settings: one concept, 40 train triplets, 12 held-out examples (6 choose, 6 are scored), two
/// factors. A few hundred short greedy generations.
@Suite(.serialized) struct LabCompareTests {
    struct Report: Decodable {
        struct Target: Decodable {
            struct Row: Decodable {
                let method: String
                let metrics: [String: Double]
                let factor: Double?
                let selection_scores: [Double]?
            }
            let kind: String
            let target: String
            let train_triplets: Int
            let selection_count: Int
            let evaluation_count: Int
            let rows: [Row]
        }
        let factors: [Double]
        let targets: [Target]
    }

    static let methods = ["unsteered", "prompt", "diffmean", "pca", "stolfo", "psr"]
    static let labels = ["unsteered", "prompt", "DiffMean", "PCA", "Stolfo", "local PSR"]

    @Test func compareOneConcept() throws {
        let markdown = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-compare-\(UUID().uuidString).md").path
        defer { try? FileManager.default.removeItem(atPath: markdown) }
        let result = try TillerProcess.run(["lab", "compare", "--kinds", "concept", "--targets", "pottery", "--train-triplets", "40",
                                            "--limit", "12", "--factors", "1,5", "--methods", "diffmean,pca,stolfo,psr",
                                            "--json", "--out", markdown, "--backend", "cpu"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
        #expect(report.factors == [1, 5])
        #expect(report.targets.count == 1)
        let target = try #require(report.targets.first)
        #expect(target.kind == "concept" && target.target == "pottery")
        #expect(target.train_triplets == 40 && target.selection_count == 6 && target.evaluation_count == 6)
        #expect(target.rows.map(\.method) == Self.methods)
        for row in target.rows {
            let swept = row.method != "unsteered" && row.method != "prompt"
            #expect((row.factor != nil) == swept, "\(row.method)")
            #expect((row.selection_scores?.count ?? 0) == (swept ? 2 : 0), "\(row.method)")
        }
        func metric(_ method: String, _ name: String) -> Double {
            target.rows.first { $0.method == method }?.metrics[name] ?? .nan
        }
        // The prompt steers (the lab model follows it) and the bare question does not show the concept.
        #expect(metric("prompt", "aggregate") >= 1.5)
        #expect(metric("unsteered", "concept") == 0)
        // Adding the concept's mean Delta_PS (at every position, as AxBench steers) makes the model
        // mention it on some held-out questions.
        #expect(metric("diffmean", "concept") > metric("unsteered", "concept"), "\(result.stdout)")
        #expect(metric("diffmean", "aggregate") > metric("unsteered", "aggregate"), "\(result.stdout)")

        // The markdown table has a row per method and a column for the target.
        let text = try String(contentsOfFile: markdown, encoding: .utf8)
        #expect(text.contains("concept pottery: aggregate"), "\(text)")
        for label in Self.labels {
            #expect(text.contains("| \(label) |"), "\(label) missing from:\n\(text)")
        }
        // Progress went to stderr, one line per stage.
        #expect(result.stderr.contains("concept(pottery): captured"), "\(result.stderr)")
    }

    /// The trained rows on one trait and one format, tiny: 16 triplets, one epoch, two factors, one
    /// bisection step. Checks the structure (every row, the matched-coherence points, the stacked
    /// rows, the claims computed from the rows' own numbers) and that every score is finite.
    @Test func compareTrainedMethods() throws {
        struct Full: Decodable {
            struct Target: Decodable {
                struct Row: Decodable {
                    struct Point: Decodable { let level: String; let coherence_target: Double; let factor: Double; let trait: Double; let coherence: Double }
                    let method: String
                    let headline: Double
                    let metrics: [String: Double]
                    let factor: Double?
                    let matched_coherence: [Point]?
                }
                let kind: String
                let target: String
                let rows: [Row]
                let relative_rmse: [String: Double]
                let paraphrase_relative_rmse: Double
            }
            struct Claim: Decodable {
                let left_method: String, right_method: String, target: String, score: String
                let left: Double, right: Double
                let holds: Bool
            }
            let trained: [String]
            let targets: [Target]
            let claims: [Claim]
        }
        let markdown = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-compare-\(UUID().uuidString).md").path
        defer { try? FileManager.default.removeItem(atPath: markdown) }
        let trained = ["s-psr-mse", "a-psr-mse", "s-psr-ll", "s-const-mse", "a-const-mse", "reft-r1"]
        let result = try TillerProcess.run(["lab", "compare", "--kinds", "persona,format", "--targets", "cheerful,end_with(thank you kindly)",
                                            "--train-triplets", "16", "--limit", "6", "--factors", "1,2",
                                            "--methods", (["diffmean"] + trained).joined(separator: ","), "--train-epochs", "1",
                                            "--matched-steps", "1", "--json", "--out", markdown, "--backend", "cpu"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONDecoder().decode(Full.self, from: Data(result.stdout.utf8))
        #expect(report.trained == trained)
        let persona = try #require(report.targets.first { $0.kind == "persona" })
        let format = try #require(report.targets.first { $0.kind == "format" })
        #expect(persona.rows.map(\.method) == ["unsteered", "prompt", "diffmean"] + trained)
        let stacked = ["s-psr-mse", "a-psr-mse", "s-psr-ll"].map { "prompt+" + $0 }
        #expect(format.rows.map(\.method) == ["unsteered", "prompt", "diffmean"] + trained + stacked)
        for row in persona.rows + format.rows {
            #expect(row.headline.isFinite && row.metrics.values.allSatisfy(\.isFinite), "\(row.method)")
        }
        // Every steering row of the persona target has TA@C80 and TA@Cp, each at a coherence that
        // meets its level unless no factor did (factor 0).
        for row in persona.rows.dropFirst(2) {
            let points = try #require(row.matched_coherence, "\(row.method)")
            #expect(points.map(\.level) == ["C80", "Cp"])
            for p in points {
                #expect(p.trait.isFinite && (0...2).contains(p.factor))
                #expect(p.factor == 0 || p.coherence >= p.coherence_target, "\(row.method) \(p)")
            }
        }
        // The claims are the rows' own numbers compared.
        func c80(_ method: String) -> Double? {
            persona.rows.first { $0.method == method }?.matched_coherence?.first { $0.level == "C80" }?.trait
        }
        func headline(_ method: String) -> Double? { format.rows.first { $0.method == method }?.headline }
        // 3 persona, 3 format, and A-PSR's relative RMSE against S-Const's and A-Const's on both.
        #expect(report.claims.count == 10, "\(report.claims)")
        for claim in report.claims {
            let numbers: (Double?, Double?)
            switch claim.score {
            case "relative_rmse":
                let rmse = report.targets.first { $0.target == claim.target }?.relative_rmse ?? [:]
                numbers = (rmse[claim.left_method], rmse[claim.right_method])
                #expect(claim.holds == (claim.left < claim.right), "\(claim)")
            case "trait_at_c80":
                numbers = (c80(claim.left_method), c80(claim.right_method))
                let strict = claim.left_method == "s-psr-mse" && claim.right_method == "s-const-mse"
                #expect(claim.holds == (strict ? claim.left > claim.right : claim.left >= claim.right), "\(claim)")
            default:
                numbers = (headline(claim.left_method), headline(claim.right_method))
                #expect(claim.holds == (claim.left >= claim.right), "\(claim)")
            }
            #expect(numbers.0 == claim.left && numbers.1 == claim.right, "\(claim)")
        }
        for target in report.targets {
            for method in trained { #expect(target.relative_rmse[method].map { $0 > 0 && $0.isFinite } == true, "\(target.target) \(method)") }
            #expect(target.paraphrase_relative_rmse > 0 && target.paraphrase_relative_rmse.isFinite, "\(target.target)")
        }
        let text = try String(contentsOfFile: markdown, encoding: .utf8)
        for label in ["| A-PSR(MSE) |", "| S-PSR(LL) |", "| A-Const(MSE) |", "| prompt + A-PSR(MSE) |", "TA@C80", "| holds |", "| ReFT-r1 |", "paraphrased prompt"] {
            #expect(text.contains(label), "\(label) missing from:\n\(text)")
        }
        #expect(result.stderr.contains("trained A-PSR(MSE)"), "\(result.stderr)")
        try LabCommandTests.expectOneLineError(["lab", "compare", "--methods", "diffmean,b-psr"], containing: ["--methods", "b-psr"])
    }

    @Test func evalSteersWithAFileAndSweeps() throws {
        // A steering file from a tiny capture, through the ordinary commands.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-eval-steer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let corpus = directory.appendingPathComponent("corpus").path
        #expect(try TillerProcess.run(["lab", "corpus", "--seed", "1", "--out", corpus, "--train", "5000", "--heldout", "0"]).status == 0)
        let lines = try String(contentsOfFile: corpus + "/train.jsonl", encoding: .utf8).split(separator: "\n")
            .filter { $0.contains("\"concept\": \"pottery\"") }.prefix(40)
        #expect(lines.count == 40)
        let triplets = directory.appendingPathComponent("pottery.jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: triplets, atomically: true, encoding: .utf8)
        let model = try Self.builtInModel()
        let capture = directory.appendingPathComponent("pottery.capture.safetensors").path
        let steer = directory.appendingPathComponent("pottery.diffmean.safetensors").path
        let captured = try TillerProcess.run(["capture", "--model", model, "--triplets", triplets, "--layers", "2", "--out", capture, "--backend", "cpu"])
        #expect(captured.status == 0, "\(captured.stderr)")
        let fitted = try TillerProcess.run(["fit", "--method", "diffmean", "--capture", capture, "--layer", "2", "--rows", "all",
                                            "--location", "all", "--model", model, "--out", steer, "--backend", "cpu"])
        #expect(fitted.status == 0, "\(fitted.stderr)")

        let swept = try TillerProcess.run(["lab", "eval", "--kind", "concept", "--target", "pottery", "--steer", steer,
                                           "--factors", "1,5", "--limit", "12", "--backend", "cpu"])
        #expect(swept.status == 0, "\(swept.stderr)")
        for text in ["factor sweep on the first half (6 examples)", "kept factor", "aggregate", "all (6)"] {
            #expect(swept.stdout.contains(text), "\(text) missing from:\n\(swept.stdout)")
        }
        struct Eval: Decodable {
            struct Sweep: Decodable { let factors: [Double]; let chosen_factor: Double; let selection_ids: [String] }
            let count: Int
            let target: String
            let with_prompt: Bool
            let sweep: Sweep
        }
        let json = try TillerProcess.run(["lab", "eval", "--kind", "concept", "--target", "pottery", "--steer", steer + ":2",
                                          "--with-prompt", "--factors", "0.5,1", "--limit", "12", "--json", "--backend", "cpu"])
        #expect(json.status == 0, "\(json.stderr)")
        let eval = try JSONDecoder().decode(Eval.self, from: Data(json.stdout.utf8))
        #expect(eval.count == 6 && eval.target == "pottery" && eval.with_prompt)
        #expect(eval.sweep.factors == [0.5, 1] && eval.sweep.selection_ids.count == 6)

        try LabCommandTests.expectOneLineError(["lab", "eval", "--kind", "concept", "--steer", "prompt", "--factors", "1,2"],
                                               containing: ["--factors"])
        try LabCommandTests.expectOneLineError(["lab", "eval", "--kind", "concept", "--target", "gloomy", "--steer", "prompt"],
                                               containing: ["gloomy", "concept targets"])
        try LabCommandTests.expectOneLineError(["lab", "compare", "--targets", "pottery,nothing"], containing: ["nothing"])
        try LabCommandTests.expectOneLineError(["lab", "compare", "--kinds", "persona", "--targets", "pottery"], containing: ["pottery", "--kinds"])
    }

    /// The built-in model's directory, as the commands find it.
    static func builtInModel() throws -> String {
        let result = try TillerProcess.run(["lab", "eval", "--kind", "concept", "--steer", "none", "--limit", "1", "--json", "--backend", "cpu"])
        struct Model: Decodable { let model: String }
        return try JSONDecoder().decode(Model.self, from: Data(result.stdout.utf8)).model
    }
}
