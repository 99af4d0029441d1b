import Foundation
import Testing
import TillerCore
import TillerCPU
import TillerModels
@testable import TillerSteering

/// `ActivationCapture` teacher-forces several triplets per pass: the plan of passes holds every
/// triplet once and keeps its budget, and the file does not depend on how triplets were batched
/// (against a capture that runs every triplet in a pass of its own).
@Suite struct CaptureBatchingTests {
    @Test func batchesKeepOrderAndTheRowBudget() throws {
        let model = try CaptureTests.model()
        let capture = try ActivationCapture(model: model, layers: [0, 1])
        let triplets = CaptureTests.triplets() + CaptureTests.triplets()
        for budget in [1, 40, 80, 4096] {
            let plan = capture.batches(triplets, maxRows: budget)
            #expect(plan.flatMap { $0 }.sorted() == Array(triplets.indices), "every triplet once")
            for batch in plan where batch.count > 1 {
                let live = batch.map { triplets[$0] }.filter { $0.sharedLength > 0 }
                let longest = live.map { max($0.steeredSequence.count, $0.unsteeredSequence.count) }.max() ?? 0
                #expect(2 * live.count * longest <= budget, "budget \(budget): \(batch) holds \(2 * live.count * longest) padded rows")
            }
            if budget == 1 { #expect(plan.allSatisfy { $0.filter { triplets[$0].sharedLength > 0 }.count == 1 || $0.allSatisfy { triplets[$0].sharedLength == 0 } }) }
            if budget == 4096 { #expect(plan.count == 1) }
        }
        // A byte budget below one row's captured bytes puts every triplet with rows in a pass of its own.
        #expect(capture.batches(triplets, maxBytes: 1).allSatisfy { $0.filter { triplets[$0].sharedLength > 0 }.count <= 1 })
    }

    @Test func fileDoesNotDependOnBatching() throws {
        let model = try CaptureTests.model()
        let capture = try ActivationCapture(model: model, layers: [0, 1])
        let fingerprint = try ModelFingerprint(directory: CaptureTests.directory("llama"))
        let directory = try SteeringTempDirectory()
        defer { directory.cleanup() }
        // Longer triplets in a different order too, so passes mix lengths and padding.
        let triplets = CaptureTests.triplets() + CaptureTests.triplets().reversed().map {
            CaptureTriplet(steeredPrompt: $0.steeredPrompt, unsteeredPrompt: $0.unsteeredPrompt,
                           completion: $0.completion + CaptureTests.ids(9, seed: UInt64($0.completion.count)))
        }
        var files: [CaptureFile] = []
        var progress: [[(Int, Int)]] = []
        for budget in [1, 64, ActivationCapture.defaultBatchRows] {
            let path = directory.file("capture-\(budget).safetensors")
            var calls: [(Int, Int)] = []
            try capture.run(triplets, to: path, model: fingerprint, source: "t.jsonl", maxBatchRows: budget,
                            progress: { calls.append(($0, $1)) })
            files.append(try CaptureFile(path: path))
            progress.append(calls)
        }
        #expect(capture.batches(triplets, maxRows: 64).count > 1 && capture.batches(triplets, maxRows: 64).count < triplets.count)
        let alone = files[0]
        for (file, calls) in zip(files.dropFirst(), progress.dropFirst()) {
            #expect(calls.map(\.0) == progress[0].map(\.0) && calls.map(\.1) == progress[0].map(\.1), "progress per triplet")
            #expect(file.info == alone.info)
            #expect(file.tokens == alone.tokens && file.example == alone.example)
            #expect(file.position == alone.position && file.role == alone.role)
            for layer in [0, 1] {
                for delta in [false, true] {
                    let all = 0..<alone.info.rows
                    #expect(CaptureTests.close(try file.floats(layer: layer, delta: delta, rows: all),
                                               try alone.floats(layer: layer, delta: delta, rows: all)),
                            "layer \(layer) \(delta ? "delta" : "h")")
                }
            }
        }
    }
}
