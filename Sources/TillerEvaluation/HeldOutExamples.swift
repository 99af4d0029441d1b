import Foundation
import TillerCore
import TillerLab

/// Where the held-out examples of an evaluation come from, and how a subset is picked.
public enum HeldOutExamples {
    /// The seed of the corpus a model was trained on when its card does not say.
    public static let defaultSeed: UInt64 = 1

    /// The held-out split of the corpus for `seed`, generated in memory. Always the default split size,
    /// whatever is asked for later: the kinds are shuffled over the whole split, so its size decides
    /// which examples come first, and this keeps them the lines of the default heldout.jsonl.
    public static func corpus(seed: UInt64) throws -> [LabExample] {
        try LabCorpus(seed: seed, trainCount: 0, heldoutCount: LabCorpus.defaultHeldOutCount).heldout
    }

    /// The examples of a corpus file (heldout.jsonl or any corpus JSON Lines file); blank lines are
    /// skipped. Throws one line naming the file and the line that does not parse.
    public static func file(_ path: String) throws -> [LabExample] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw TillerError.io(path: path, detail: "no such file")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TillerError.io(path: path, detail: "cannot read (\(error.localizedDescription))")
        }
        var examples: [LabExample] = []
        for (index, raw) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            guard let line = String(data: Data(raw), encoding: .utf8) else {
                throw TillerError.io(path: "\(path):\(index + 1)", detail: "not valid UTF-8")
            }
            if line.allSatisfy(\.isWhitespace) { continue }
            do {
                examples.append(try LabExample(jsonLine: line))
            } catch let TillerError.invalidArgument(_, detail) {
                throw TillerError.io(path: "\(path):\(index + 1)", detail: detail)
            }
        }
        return examples
    }

    /// The first `limit` examples of `kind`, in the given order: the same list every time.
    public static func select(_ examples: [LabExample], kind: LabKind, limit: Int) -> [LabExample] {
        Array(examples.lazy.filter { $0.kind == kind }.prefix(max(limit, 0)))
    }

    /// The corpus seed recorded in a model card (README.md's "- corpus seed: N" line, written by
    /// scripts/lab/train_lab_model.py), or nil when the card is missing or does not say.
    public static func cardSeed(modelDirectory: String) -> UInt64? {
        let card = (modelDirectory as NSString).appendingPathComponent("README.md")
        guard let text = try? String(contentsOfFile: card, encoding: .utf8) else { return nil }
        let marker = "corpus seed:"
        for line in text.split(separator: "\n") {
            guard let range = line.range(of: marker) else { continue }
            let digits = line[range.upperBound...].drop(while: { $0 == " " }).prefix(while: \.isNumber)
            if let seed = UInt64(digits) { return seed }
        }
        return nil
    }
}
