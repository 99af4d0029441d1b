import Foundation
import Testing
import TillerCore
import TillerCPU
import TillerModels
@testable import TillerSteering

/// `tiller analyze`'s library side: the statistics on hand-made norms, the relative RMSE at its two
/// ends (1 for doing nothing, 0 for Delta itself, through the model too), the backend reductions
/// against plain loops, and the HTML report (escaped text, inline SVG, no scripts).
@Suite(.serialized) struct AnalysisTests {
    // MARK: Statistics by hand

    @Test func statisticsOfHandMadeNorms() throws {
        let s = NormStatistics([1, 10, 1, 1, 1])
        #expect(s.count == 5 && s.mean == 2.8 && s.p10 == 1 && s.p50 == 1 && s.max == 10)
        #expect(s.maxOverMedian == 10)
        // Squares 100 + 4 * 1: the one largest row carries 100 >= 52.
        #expect(s.halfMassShare == 0.2)
        #expect(s.sumOfSquares == 104)

        let r = NormStatistics((0...10).map { Float($0) })
        #expect(r.mean == 5 && r.p50 == 5)
        #expect(abs(r.p10 - 1) < 1e-12 && abs(r.p90 - 9) < 1e-12 && abs(r.p99 - 9.9) < 1e-12)
        // Squares sum to 385; 100 + 81 = 181 < 192.5 <= 181 + 64: three rows of eleven.
        #expect(r.halfMassShare == 3.0 / 11.0)
        #expect(r.maxOverMedian == 2)

        let even = NormStatistics([2, 2, 2, 2])
        #expect(even.halfMassShare == 0.5 && even.maxOverMedian == 1)
        let odd = NormStatistics([3, 3, 3])
        #expect(odd.halfMassShare == 2.0 / 3.0)

        let zeros = NormStatistics([0, 0, 0])
        #expect(zeros.halfMassShare == nil && zeros.maxOverMedian == nil && zeros.max == 0)
        #expect(NormStatistics([Float]()) == .empty)
        // Interpolated quantiles: p10 of [0, 10] is 1.
        #expect(NormStatistics([10, 0]).p10 == 1)
    }

    @Test func layerStatisticsByRole() {
        let s = LayerStatistics(layer: 3, norms: [1, 2, 3, 4, 5], roles: [0, 0, 1, 2, 2])
        #expect(s.all.count == 5 && s.prompt.count == 3 && s.answer.count == 2 && s.lastPrompt.count == 1)
        #expect(s.prompt.mean == 2 && s.answer.mean == 4.5 && s.lastPrompt.mean == 3)
    }

    @Test func relativeRMSEEnds() {
        let delta: [Float] = [1, -2, 3, 0.5, 0, 4]
        #expect(RelativeRMSE.of(intervention: [Float](repeating: 0, count: 6), delta: delta).value == 1)
        #expect(RelativeRMSE.of(intervention: delta, delta: delta).value == 0)
        // Half of Delta leaves half of it: 0.5.
        #expect(abs(RelativeRMSE.of(intervention: delta.map { $0 / 2 }, delta: delta).value! - 0.5) < 1e-12)
        #expect(RelativeRMSE.of(intervention: [1, 1], delta: [0, 0]).value == nil)
        var byNorms = RelativeRMSE()
        byNorms.add(errorNorms: [3], deltaNorms: [4])
        byNorms.add(errorNorms: [0], deltaNorms: [3])
        #expect(byNorms.value == (9.0 / 25.0).squareRoot())
    }

    // MARK: A capture of the fixture

    static func makeCapture(_ triplets: [CaptureTriplet], layers: [Int], in directory: SteeringTempDirectory,
                            model: TransformerModel) throws -> CaptureFile {
        let path = directory.file("capture-\(UUID().uuidString).safetensors")
        try ActivationCapture(model: model, layers: layers)
            .run(triplets, to: path, model: try ModelFingerprint(directory: CaptureTests.directory("llama")), source: "test")
        return try CaptureFile(path: path)
    }

    @Test func backendReductionsEqualPlainLoops() throws {
        let model = try CaptureTests.model()
        let directory = try SteeringTempDirectory()
        defer { directory.cleanup() }
        let file = try Self.makeCapture(CaptureTests.triplets(), layers: [0, 1], in: directory, model: model)
        let analyzer = CaptureAnalyzer(capture: file, backend: model.backend)
        let analysis = try analyzer.analyze()
        let d = file.hiddenSize
        let direction = SteeringFileFixtures.values(d, seed: 5)
        let norm = direction.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        for layer in [0, 1] {
            let delta = try file.floats(layer: layer, delta: true, rows: 0..<file.rowCount)
            var plain: [Float] = []
            for r in 0..<file.rowCount {
                var sum = 0.0
                for i in 0..<d { sum += Double(delta[r * d + i]) * Double(delta[r * d + i]) }
                plain.append(Float(sum.squareRoot()))
            }
            let got = try #require(analysis.norms[layer])
            #expect(zip(got, plain).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, $1) })
            let stats = try #require(analysis.layers.first { $0.layer == layer })
            #expect(stats.all == NormStatistics(got))
            #expect(stats.residual.count == file.rowCount && stats.residual.p50 > 0)
            let projections = try analyzer.projections(layer: layer, direction: direction)
            for r in 0..<file.rowCount {
                var dot = 0.0
                for i in 0..<d { dot += Double(delta[r * d + i]) * Double(direction[i]) }
                dot /= norm
                #expect(abs(Double(projections[r]) - dot) <= 1e-4 * max(1, abs(dot)))
            }
        }
    }

    @Test func replayOfNothingIsOneAndOfDeltaIsZero() throws {
        let model = try CaptureTests.model()
        let directory = try SteeringTempDirectory()
        defer { directory.cleanup() }
        let d = model.hiddenSize

        // Doing nothing: a constant head of zeros, on every layer: 1.0 at each captured layer.
        let triplets = CaptureTests.triplets()
        let file = try Self.makeCapture(triplets, layers: [0, 1], in: directory, model: model)
        let analyzer = CaptureAnalyzer(capture: file, backend: model.backend)
        let analysis = try analyzer.analyze()
        let nothing = Intervention(method: "zero", heads: [0: .constant([Float](repeating: 0, count: d))])
        let replay = try analyzer.replay(nothing, name: "zero", model: model, unsteeredPrompts: triplets.map(\.unsteeredPrompt),
                                         systemLengths: triplets.map { _ in 0 }, norms: analysis.norms)
        for layer in replay.layers {
            let value = try #require(layer.relativeRMSE)
            #expect(abs(value - 1) < 1e-3, "layer \(layer.layer): \(value)")
        }
        // A constant head's lambda (1 wherever it acts) is not recorded for the report.
        #expect(replay.lambdas.isEmpty)

        // Delta itself: one shared row, a constant head at layer 0 equal to that row's delta.
        let one = [CaptureTriplet(steeredPrompt: [40, 41, 7], unsteeredPrompt: [50, 7], completion: [])]
        let single = try Self.makeCapture(one, layers: [0], in: directory, model: model)
        #expect(single.rowCount == 1)
        let deltaRow = try single.floats(layer: 0, delta: true, rows: 0..<1)
        let exact = Intervention(method: "delta", heads: [0: .constant(deltaRow)])
        let singleAnalyzer = CaptureAnalyzer(capture: single, backend: model.backend)
        let norms = try singleAnalyzer.analyze().norms
        let matched = try singleAnalyzer.replay(exact, name: "delta", model: model, unsteeredPrompts: [[50, 7]],
                                                systemLengths: [0], norms: norms)
        let value = try #require(matched.layers[0].relativeRMSE)
        #expect(value < 1e-3, "\(value)")
        // Its projection on its own direction carries all of Delta.
        #expect(abs((matched.layers[0].projection?.explainedShare ?? 0) - 1) < 1e-4)

        // A prompt that does not match the capture is refused.
        #expect(throws: TillerError.self) {
            try singleAnalyzer.replay(exact, name: "delta", model: model, unsteeredPrompts: [[50, 8]], systemLengths: [0], norms: norms)
        }
    }

    // MARK: The report

    @Test func reportEscapesTextAndHasSVG() throws {
        let model = try CaptureTests.model()
        let directory = try SteeringTempDirectory()
        defer { directory.cleanup() }
        let triplets = CaptureTests.triplets()
        let file = try Self.makeCapture(triplets, layers: [0, 1], in: directory, model: model)
        let analyzer = CaptureAnalyzer(capture: file, backend: model.backend)
        var analysis = try analyzer.analyze()
        let d = model.hiddenSize
        let psr = Intervention(method: "psr", heads: [1: SteeringFileFixtures.head(.relu, size: d, seed: 9)], location: .answerOnly)
        analysis.replays.append(try analyzer.replay(psr, name: "dir/<psr>.safetensors", model: model,
                                                    unsteeredPrompts: triplets.map(\.unsteeredPrompt), systemLengths: triplets.map { _ in 0 },
                                                    norms: analysis.norms))
        // answer_only: lambda_t at the last prompt token and the answer, none before.
        let lambdas = try #require(analysis.replays[0].lambdas[1])
        for r in 0..<file.rowCount {
            #expect(lambdas[r].isNaN == (file.role[r] == CaptureRole.prompt.rawValue))
            #expect(lambdas[r].isNaN || lambdas[r] >= 0)
        }
        // With no head below layer 1, the stream the head sees is the capture's h: lambda = relu(w . h + b).
        let head = psr.heads[1]!
        let h1 = try file.floats(layer: 1, delta: false, rows: 0..<file.rowCount)
        for r in 0..<file.rowCount where !lambdas[r].isNaN {
            var dot = Double(head.bias)
            for i in 0..<d { dot += Double(head.w[i]) * Double(h1[r * d + i]) }
            #expect(abs(Double(lambdas[r]) - max(0, dot)) <= 1e-3 * max(1, abs(dot)), "row \(r)")
        }
        let report = CaptureReport(analysis: analysis, capture: file, tokenText: { "<b>&\"\($0)\"\n" }, examples: [0, 1, 3, 4],
                                   colorLayer: 1, captions: [0: "x' = <script>alert('hi')</script>"])
        let html = report.html()
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<svg"))
        #expect(html.contains("&lt;b&gt;&amp;&quot;"))
        #expect(!html.contains("<b>&"))
        #expect(!html.contains("<script"))
        #expect(html.contains("&lt;script&gt;alert(&#39;hi&#39;)&lt;/script&gt;"))
        #expect(html.contains("&lt;psr&gt;.safetensors"))
        // lambda_t of the PSR head is shown (its own token section), and nothing is loaded from elsewhere.
        #expect(html.contains("&lambda;<sub>t</sub> of"))
        #expect(!html.contains("src=") && !html.contains("href=") && !html.contains("@import"))
        #expect(ReportHTML.escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;")

        let table = analysis.table
        #expect(table.contains("max/med") && table.contains("half-mass"))
        let json = try analysis.json()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect((object["layers"] as? [Any])?.count == 2)
        #expect((object["steering"] as? [Any])?.count == 1)
    }
}
