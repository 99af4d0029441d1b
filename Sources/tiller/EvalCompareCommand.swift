import ArgumentParser
import Foundation
import TillerCore
import TillerEvaluation

/// `tiller eval compare`: placeholder until the matched-coherence comparison lands.
struct EvalCompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare steering files and the prompt on one protocol at matched coherence (the paper's table).")

    @OptionGroup var options: EvalOptions

    func run() throws {
        throw TillerError.invalidArgument(op: "eval compare", detail: "not built yet")
    }
}
