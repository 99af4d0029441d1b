import Foundation
import Testing

/// `tiller lab eval` and `tiller demo` on the built-in lab model, as users run them: prompt steering
/// must work (the trained model follows the steering text) and the bare question must not show the
/// target. Six evaluations of 12 held-out examples: a few dozen short greedy generations.
@Suite(.serialized) struct LabCommandTests {
    struct Report: Decodable {
        let count: Int
        let metrics: [String: Double]
    }

    static func eval(_ kind: String, steer: String) throws -> Report {
        let result = try TillerProcess.run(["lab", "eval", "--kind", kind, "--steer", steer, "--limit", "12", "--json",
                                            "--backend", "cpu"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
        #expect(report.count == 12)
        return report
    }

    @Test func conceptSteering() throws {
        let steered = try Self.eval("concept", steer: "prompt").metrics
        #expect(steered["aggregate", default: 0] >= 1.5, "\(steered)")
        #expect(steered["concept", default: 0] >= 1.5, "\(steered)")
        let bare = try Self.eval("concept", steer: "none").metrics
        #expect(bare["concept", default: 2] <= 0.2, "\(bare)")
    }

    @Test func personaSteering() throws {
        let steered = try Self.eval("persona", steer: "prompt").metrics
        #expect(steered["trait", default: 0] >= 70, "\(steered)")
        let bare = try Self.eval("persona", steer: "none").metrics
        #expect(bare["trait", default: 100] <= 10, "\(bare)")
    }

    @Test func formatSteering() throws {
        let steered = try Self.eval("format", steer: "prompt").metrics
        #expect(steered["pass", default: 0] >= 0.8, "\(steered)")
        let bare = try Self.eval("format", steer: "none").metrics
        #expect(bare["pass", default: 1] <= 0.2, "\(bare)")
    }

    @Test func demoPrintsTheScores() throws {
        let result = try TillerProcess.run(["demo", "--backend", "cpu"])
        #expect(result.status == 0, "\(result.stderr)")
        for text in ["unsteered", "steered", "aggregate", "trait", "pass", "summary", "DiffMean", "A-PSR(MSE)"] {
            #expect(result.stdout.contains(text), "\(text) missing from:\n\(result.stdout)")
        }
        // Every line but the model's path (as long as the checkout's) fits 100 columns.
        let wide = result.stdout.split(separator: "\n").filter { $0.count > 100 && !$0.hasPrefix("model: ") }
        #expect(wide.isEmpty, "lines wider than 100 columns: \(wide)")
    }

    // MARK: errors: one line, non-zero exit

    static func expectOneLineError(_ arguments: [String], environment: [String: String] = [:], containing words: [String],
                                   sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try TillerProcess.run(arguments, environment: environment)
        #expect(result.status != 0, sourceLocation: sourceLocation)
        let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
        #expect(errors.count == 1, "\(result.stderr)", sourceLocation: sourceLocation)
        for word in words {
            #expect(errors.first?.contains(word) == true, "\(word) not in \(result.stderr)", sourceLocation: sourceLocation)
        }
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("crashed"), sourceLocation: sourceLocation)
    }

    @Test func badInput() throws {
        let missing = "/nonexistent/tiller-lab-\(UUID().uuidString)"
        try Self.expectOneLineError(["lab", "eval", "--model", missing, "--kind", "concept", "--steer", "prompt"], containing: [missing])
        try Self.expectOneLineError(["lab", "eval", "--kind", "colour", "--steer", "prompt"], containing: ["colour"])
        try Self.expectOneLineError(["lab", "eval", "--kind", "concept", "--steer", "loudly"], containing: ["loudly"])
        try Self.expectOneLineError(["lab", "eval", "--kind", "concept", "--steer", "prompt", "--limit", "0"], containing: ["--limit"])
        try Self.expectOneLineError(["demo"], environment: ["TILLER_LAB_MODEL": missing], containing: [missing, "TILLER_LAB_MODEL"])

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-heldout-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "\n{\"id\": \"heldout-000001\", \"kind\": \"concept\"}\n".write(toFile: file, atomically: true, encoding: .utf8)
        try Self.expectOneLineError(["lab", "eval", "--kind", "concept", "--steer", "prompt", "--heldout", file],
                                    containing: ["\(file):2"])
    }
}
