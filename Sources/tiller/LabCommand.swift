import ArgumentParser
import TillerCore
import TillerLab

/// `tiller lab ...`: the steering lab (docs/lab.md).
struct Lab: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The steering lab: a generated chat language with exact judges.",
        subcommands: [LabCorpusCommand.self, LabEvalCommand.self, LabCompareCommand.self])
}

struct LabCorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corpus",
        abstract: "Write the lab corpus: DIR/train.jsonl, DIR/heldout.jsonl and DIR/world.json.",
        discussion: "The same seed and counts give the same bytes. The held-out split does not depend on --train.")

    @Option(help: "The seed of the splits and the examples.")
    var seed: UInt64

    @Option(help: "The output directory (created if missing).")
    var out: String

    @Option(help: "Train examples.")
    var train = LabCorpus.defaultTrainCount

    @Option(help: "Held-out examples.")
    var heldout = LabCorpus.defaultHeldOutCount

    func validate() throws {
        try NumericOptions.check("--train", train, 0...LabCorpus.maximumCount)
        try NumericOptions.check("--heldout", heldout, 0...LabCorpus.maximumCount)
    }

    func run() throws {
        let corpus = try LabCorpus(seed: seed, trainCount: train, heldoutCount: heldout)
        let files = try corpus.write(to: out)
        print("tiller lab corpus: seed \(seed): \(corpus.train.count) train (\(files.trainBytes) bytes), "
              + "\(corpus.heldout.count) held-out (\(files.heldoutBytes) bytes); held out \(corpus.splits.heldOutConceptPairs.count) "
              + "concept pairs, \(corpus.splits.heldOutPersonaPairs.count) persona pairs, templates "
              + "\(QuestionTemplate.heldOutIDs.joined(separator: " ")) -> \(out)")
    }
}
