import ArgumentParser
import Foundation
import TillerCore
import TillerEvaluation

/// `tiller demo`: the lab tour on the built-in model (README's first command runs it).
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Steer the built-in lab model with prompts and score its answers: a short tour.",
        discussion: """
            Six held-out lab questions (two per kind: concept, persona, format; the steering text once \
            in the system message, once before the question) are answered greedily without and with \
            their steering prompt, and the exact judges score both answers against the steering target. \
            Then activation steering for one persona (cheerful): DiffMean and a local PSR head are \
            fitted from a capture of its train triplets and an A-PSR head is trained through the frozen \
            model on them; each keeps the factor that scores best on a few held-out questions, and one \
            more held-out question is answered with the prompt and with each (the full comparison: \
            tiller lab compare).
            """)

    @OptionGroup var modelOption: LabModelOption

    @OptionGroup var backendOptions: BackendOptions

    func run() throws {
        let started = DispatchTime.now().uptimeNanoseconds
        let directory = try modelOption.resolve()
        let seed = HeldOutExamples.cardSeed(modelDirectory: directory) ?? HeldOutExamples.defaultSeed
        let heldout = try HeldOutExamples.corpus(seed: seed)
        let examples = DemoTour.select(heldout)
        let backend = try backendOptions.make()
        let evaluation = try LabEvaluation.load(directory: directory, backend: backend)
        let bar = ProgressBar(enabled: ProgressBar.stderrIsTerminal)
        let tour = try DemoTour.run(examples, evaluation: evaluation, progress: { bar.update($0) })
        bar.close(tour.generation)
        let methods = try DemoMethods.run(heldout: heldout, seed: seed, evaluation: evaluation, progress: { bar.update($0) })
        bar.close(methods.generation)

        print("""
            Tiller lab demo: a small Llama trained on the lab's generated chat language answers held-out
            questions as asked and with a steering prompt; exact judges score both answers against the
            steering target (held-out split of corpus seed \(seed)).
            """)
        // The model's path can be long: it gets its own line (the tour fits 100 columns).
        print("model: \(directory)\n")
        print(tour.text())
        print("")
        print(methods.text().joined(separator: "\n"))
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        print(String(format: "\n%d answers, %d new tokens, %.1f s in all on %@. More: tiller lab eval --help",
                     2 * tour.items.count + methods.generation.finishedRequests,
                     tour.generation.generatedTokens + methods.generation.generatedTokens, seconds, backend.name))
    }
}
