import Foundation
import Testing
import TillerCore
import TillerCPU
import TillerModels
@testable import TillerSteering

/// `tiller capture`'s library side on the tiny Llama fixture: the delta rows equal two separate
/// forward passes aligned by hand, the file reads back with the documented names, dtypes and shapes,
/// the size announced before the run is the file's size, and bad input lines are one-line errors
/// naming the file and line.
@Suite(.serialized) struct CaptureTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models")
    static func directory(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    static func model(_ backend: Backend = CPUBackend()) throws -> TransformerModel {
        try TransformerModel.load(directory: directory("llama"), backend: backend)
    }

    /// Token ids in 3..<200 (no special tokens of the fixture).
    static func ids(_ count: Int, seed: UInt64) -> [Int32] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in Int32(3 + random.next() % 197) }
    }

    /// Triplets whose prompts share a known tail: x' = A + tail, x = B + tail (A and B end in
    /// different tokens), so the captured rows are exactly tail + y'.
    static func triplets() -> [CaptureTriplet] {
        (0..<3).map { k in
            let tail = ids(2 + k, seed: 100 + UInt64(k))
            var a = ids(7 + 2 * k, seed: 200 + UInt64(k)), b = ids(4 + k, seed: 300 + UInt64(k))
            a[a.count - 1] = 201
            b[b.count - 1] = 202
            return CaptureTriplet(steeredPrompt: a + tail, unsteeredPrompt: b + tail, completion: ids(5 + k, seed: 400 + UInt64(k)))
        } + [
            // A triplet sharing nothing at the end (no rows) and one whose x is all shared.
            CaptureTriplet(steeredPrompt: [10, 11, 12], unsteeredPrompt: [13, 14], completion: []),
            CaptureTriplet(steeredPrompt: [20, 21, 22, 23], unsteeredPrompt: [22, 23], completion: [30, 31]),
        ]
    }

    /// Downloads the residual after every block of a single-sequence pass.
    final class Recorder: ResidualStreamHook {
        var residuals: [Int: [Float]] = [:]
        func afterBlock(_ layer: Int, residual: Tensor, step: ForwardStep, backend: Backend) throws {
            residuals[layer] = try backend.floats(residual)
        }
    }

    static func residuals(_ model: TransformerModel, _ sequence: [Int32]) throws -> [Int: [Float]] {
        let cache = try model.makeCache(batchSize: 1, capacity: sequence.count)
        let recorder = Recorder()
        _ = try model.forward([sequence], cache: cache, logits: .last, hook: recorder)
        return recorder.residuals
    }

    /// Equal to float rounding: every entry within 1e-5 of the largest magnitude of `want`.
    static func close(_ got: [Float], _ want: [Float]) -> Bool {
        let scale = want.map(abs).max() ?? 0
        return got.count == want.count && zip(got, want).allSatisfy { abs($0 - $1) <= 1e-5 * scale }
    }

    // MARK: Alignment

    @Test func sharedSuffixAndRoles() {
        let t = Self.triplets()
        #expect(t[0].sharedLength == 2 + 5)
        #expect(t[0].rowPositions == (t[0].unsteeredPrompt.count - 2)..<(t[0].unsteeredPrompt.count + 5))
        #expect(t[0].role(at: t[0].unsteeredPrompt.count - 2) == .prompt)
        #expect(t[0].role(at: t[0].unsteeredPrompt.count - 1) == .lastPrompt)
        #expect(t[0].role(at: t[0].unsteeredPrompt.count) == .answer)
        #expect(t[3].sharedLength == 0 && t[3].rowPositions.isEmpty)
        #expect(t[4].sharedLength == 4 && t[4].rowPositions == 0..<4 && t[4].steeredOffset == 2)
    }

    // MARK: Delta against two separate passes

    @Test func deltaRowsEqualTwoSeparatePasses() throws {
        let model = try Self.model()
        let capture = try ActivationCapture(model: model, layers: [1, 0])
        #expect(capture.layers == [0, 1])
        for triplet in Self.triplets() {
            let rows = try capture.capture(triplet)
            let positions = Array(triplet.rowPositions)
            #expect(rows.positions == positions.map { Int32($0) })
            #expect(rows.tokens == positions.map { triplet.unsteeredSequence[$0] })
            guard !positions.isEmpty else { continue }
            let steered = try Self.residuals(model, triplet.steeredSequence)
            let unsteered = try Self.residuals(model, triplet.unsteeredSequence)
            let d = model.hiddenSize
            for (k, layer) in capture.layers.enumerated() {
                var wantH: [Float] = [], wantDelta: [Float] = []
                for p in positions {
                    let s = p + triplet.steeredOffset
                    let hu = Array(unsteered[layer]![(p * d)..<((p + 1) * d)])
                    let hs = Array(steered[layer]![(s * d)..<((s + 1) * d)])
                    wantH += hu
                    wantDelta += zip(hs, hu).map { $0 - $1 }
                }
                let scale = wantH.map(abs).max()!
                let hError = zip(rows.h[k], wantH).map { abs($0 - $1) }.max()!
                let deltaError = zip(rows.delta[k], wantDelta).map { abs($0 - $1) }.max()!
                #expect(hError <= 1e-4 * scale, "layer \(layer): h differs by \(hError)")
                #expect(deltaError <= 1e-4 * scale, "layer \(layer): delta differs by \(deltaError)")
                #expect(wantDelta.map(abs).max()! > 1e-3, "the steering prefix changes the shared rows")
            }
        }
    }

    // MARK: The file

    @Test func fileReadsBackWithFixedNamesAndShapes() throws {
        let model = try Self.model()
        let directory = try SteeringTempDirectory()
        defer { directory.cleanup() }
        let path = directory.file("capture.safetensors")
        let triplets = Self.triplets()
        let capture = try ActivationCapture(model: model, layers: [0, 1])
        let fingerprint = try ModelFingerprint(directory: Self.directory("llama"))
        var announced: CaptureLayout?
        var progress: [(Int, Int)] = []
        try capture.run(triplets, to: path, model: fingerprint, source: "triplets.jsonl",
                        starting: { layout in
                            announced = layout
                            #expect(!FileManager.default.fileExists(atPath: path), "announced before anything is written")
                        },
                        progress: { progress.append(($0, $1)) })
        let layout = try #require(announced)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        #expect(layout.fileSize == size)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["capture.safetensors"], "no temporary left")
        let n = triplets.reduce(0) { $0 + $1.sharedLength }
        #expect(progress.map(\.0) == Array(1...triplets.count))
        #expect(progress.last?.1 == n)

        // Independently of CaptureFile: the raw safetensors names, dtypes, shapes and metadata.
        let raw = try SafetensorsFile(path: path)
        let d = model.hiddenSize
        #expect(Set(raw.tensorNames) == ["tokens", "example", "position", "role",
                                         "layers.0.h", "layers.0.delta", "layers.1.h", "layers.1.delta"])
        for name in ["tokens", "example", "position", "role"] {
            #expect(raw.entries[name]?.dtype == .i32 && raw.entries[name]?.shape == [n])
        }
        for name in ["layers.0.h", "layers.0.delta", "layers.1.h", "layers.1.delta"] {
            #expect(raw.entries[name]?.dtype == .f32 && raw.entries[name]?.shape == [n, d])
        }
        let json = try #require(raw.metadata["tiller.capture"])
        let meta = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(meta["version"] as? Int == 1)
        #expect(meta["layers"] as? [Int] == [0, 1])
        #expect(meta["hidden_size"] as? Int == d)
        #expect(meta["rows"] as? Int == n)
        #expect(meta["triplets"] as? Int == triplets.count)
        #expect(meta["source"] as? String == "triplets.jsonl")
        let modelMeta = try #require(meta["model"] as? [String: Any])
        #expect(modelMeta["weights_header_hash"] as? String == fingerprint.weightsHeaderHash)
        #expect(modelMeta["hidden_size"] as? Int == d && modelMeta["layer_count"] as? Int == 2)

        // Through CaptureFile: the per-row tensors and the rows of each triplet.
        let file = try CaptureFile(path: path)
        #expect(file.info.model == fingerprint)
        var expectedTokens: [Int32] = [], expectedExample: [Int32] = [], expectedPosition: [Int32] = [], expectedRole: [Int32] = []
        for (e, t) in triplets.enumerated() {
            for p in t.rowPositions {
                expectedTokens.append(t.unsteeredSequence[p])
                expectedExample.append(Int32(e))
                expectedPosition.append(Int32(p))
                expectedRole.append(t.role(at: p).rawValue)
            }
        }
        #expect(file.tokens == expectedTokens)
        #expect(file.example == expectedExample)
        #expect(file.position == expectedPosition)
        #expect(file.role == expectedRole)
        #expect(file.exampleRows[3].isEmpty)
        // Each triplet's rows equal a capture of it alone (to rounding: the file's triplets were
        // teacher-forced in one batch, and sgemm's rounding depends on the number of rows).
        for (e, t) in triplets.enumerated() where t.sharedLength > 0 {
            let alone = try capture.capture(t)
            for (k, layer) in [0, 1].enumerated() {
                #expect(Self.close(try file.floats(layer: layer, delta: true, rows: file.exampleRows[e]), alone.delta[k]))
                #expect(Self.close(try file.floats(layer: layer, delta: false, rows: file.exampleRows[e]), alone.h[k]))
            }
        }
    }

    @Test func layoutSizeIsHeaderPlusData() throws {
        let fingerprint = SteeringFileFixtures.synthetic(hiddenSize: 8, layerCount: 3)
        let layout = try CaptureLayout(info: CaptureInfo(layers: [0, 2], hiddenSize: 8, rows: 5, triplets: 2, model: fingerprint, source: "a \"b\".jsonl"))
        #expect(layout.header.count % 8 == 0)
        #expect(layout.fileSize == layout.header.count + 4 * 5 * 4 + 2 * 2 * 5 * 8 * 4)
        #expect(layout.offsets["tokens"] == layout.header.count)
        #expect(layout.offsets["layers.2.delta"] == layout.fileSize - 5 * 8 * 4)
        let info = try CaptureInfo(json: layout.info.json, path: "x")
        #expect(info == layout.info)
    }

    @Test func refusesLayersTheModelLacks() throws {
        let model = try Self.model()
        #expect(throws: TillerError.self) { try ActivationCapture(model: model, layers: [2]) }
        #expect(throws: TillerError.self) { try ActivationCapture(model: model, layers: [0, 0]) }
        let capture = try ActivationCapture(model: model, layers: [0])
        #expect(throws: TillerError.self) { try capture.check(CaptureTriplet(steeredPrompt: [300], unsteeredPrompt: [1], completion: [])) }
    }

    @Test func notACaptureFileIsAnError() throws {
        let directory = try SteeringTempDirectory()
        defer { directory.cleanup() }
        let path = directory.file("other.safetensors")
        try SafetensorsWriter.write([.init(name: "x", shape: [1], values: [1])], to: path)
        do {
            _ = try CaptureFile(path: path)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains(path) && "\(error)".contains("not a Tiller capture file"))
        }
    }

    // MARK: Input lines

    @Test func parsesTripletAndLabLines() throws {
        let text = """
            {"steered": "a b", "unsteered": [{"role": "user", "content": "q"}], "completion": "y"}

            {"steered": [5, 6, 7], "unsteered": [6, 7], "completion": [8, 9]}
            {"steered": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}], "unsteered": "q"}
            {"id": "x", "kind": "persona", "messages": [{"role": "system", "content": "be gloomy."}, {"role": "user", "content": "q?"}, {"role": "assistant", "content": "sadly, a."}], "unsteered_messages": [{"role": "user", "content": "q?"}, {"role": "assistant", "content": "a."}]}
            """
        let lines = try CaptureInput.parse(Data(text.utf8), path: "t.jsonl")
        #expect(lines.count == 4)
        #expect(lines[0].number == 1 && lines[0].steered == .text("a b") && lines[0].completion == .text("y"))
        #expect(lines[0].unsteered == .messages([ChatMessage(role: "user", content: "q")]))
        #expect(lines[1].number == 3 && lines[1].steered == .ids([5, 6, 7]) && lines[1].completion == .ids([8, 9]))
        #expect(lines[2].completion == nil)
        #expect(lines[3].steered == .messages([ChatMessage(role: "system", content: "be gloomy."), ChatMessage(role: "user", content: "q?")]))
        #expect(lines[3].unsteered == .messages([ChatMessage(role: "user", content: "q?")]))
        #expect(lines[3].completion == .text("sadly, a."))
    }

    @Test(arguments: [
        ("{\"steered\": \"a\"}", "missing \"unsteered\""),
        ("not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ("{\"steered\": 3, \"unsteered\": \"a\"}", "\"steered\" must be"),
        ("{\"steered\": [1, -2], \"unsteered\": \"a\"}", "non-negative integer"),
        ("{\"steered\": \"a\", \"unsteered\": \"b\", \"completion\": 4}", "\"completion\" must be"),
        ("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}], \"unsteered_messages\": [{\"role\": \"user\", \"content\": \"q\"}]}", "must end with the assistant"),
    ])
    func badLinesNameFileAndLine(line: String, message: String) {
        let data = Data(("{\"steered\": \"a\", \"unsteered\": \"b\"}\n" + line + "\n").utf8)
        do {
            _ = try CaptureInput.parse(data, path: "in.jsonl")
            Issue.record("expected an error for \(line)")
        } catch {
            let text = "\(error)"
            #expect(text.hasPrefix("in.jsonl:2: "), "\(text)")
            #expect(text.contains(message), "\(text)")
            #expect(!text.contains("\n"))
        }
    }
}
