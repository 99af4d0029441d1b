import ArgumentParser
import TillerEvaluation

/// --model for the lab commands: a model directory, by default the built-in lab model.
struct LabModelOption: ParsableArguments {
    @Option(help: ArgumentHelp("The model directory (default: TILLER_LAB_MODEL, else the built-in lab model).", valueName: "dir"))
    var model: String?

    /// The directory to load, failing in one line when it is missing or no built-in model is found.
    func resolve() throws -> String {
        guard let model else { return try BuiltInModel.locate() }
        try ModelDirectory.check(model)
        return model
    }
}
