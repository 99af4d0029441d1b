import ArgumentParser
import Foundation
import TillerCore
import TillerModels

struct Detokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the text of token ids as JSON: {\"text\": \"...\"}.",
        discussion: """
            The ids come from --ids or, without it, standard input, written as "1,2,3", "1 2 3", a \
            JSON list [1, 2, 3] or tokenize's output {"ids": [...]} (so `tiller tokenize ... | tiller \
            detokenize --model M` round-trips). Special tokens are kept unless \
            --skip-special-tokens. An id outside the vocabulary is an error, not skipped.
            """)

    @Option(help: "The model directory (tokenizer.json).")
    var model: String

    @Option(help: ArgumentHelp("The token ids (default: read from standard input).", valueName: "ids"))
    var ids: String?

    @Flag(help: "Leave special tokens (BOS, end of turn, ...) out of the text.")
    var skipSpecialTokens = false

    func run() throws {
        let tokenizer = try ModelDirectory.tokenizer(model)
        let source = ids == nil ? "standard input" : "--ids"
        let written = ids ?? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        let list = try Self.parse(written, source: source)
        for id in list where Int(id) >= tokenizer.vocabularySize || tokenizer.tokenString(id) == nil {
            throw TillerError.invalidArgument(op: "detokenize", detail: "\(source): token id \(id) is not in the vocabulary of \(model) (\(tokenizer.vocabularySize) ids)")
        }
        print(try jsonLine(["text": tokenizer.decode(list, skipSpecialTokens: skipSpecialTokens)]))
    }

    /// Ids written as "1,2,3", "1 2 3", "[1, 2, 3]" or {"ids": [...]}.
    static func parse(_ text: String, source: String) throws -> [Int32] {
        func bad(_ detail: String) -> TillerError { .invalidArgument(op: "detokenize", detail: "\(source): \(detail)") }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        var items: [String]
        if trimmed.hasPrefix("[") || trimmed.hasPrefix("{") {
            guard let value = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) else { throw bad("not valid JSON") }
            let list = (value as? [String: Any]).map { $0["ids"] } ?? value
            guard let numbers = list as? [Any] else { throw bad("expected a JSON list of ids or {\"ids\": [...]}") }
            items = []
            for item in numbers {
                // Booleans come back as NSNumbers too, of objCType "c".
                guard let n = item as? NSNumber, String(cString: n.objCType) != "c", n.doubleValue == n.doubleValue.rounded() else {
                    let shown = (item as? NSNumber).map { String(cString: $0.objCType) == "c" ? ($0.boolValue ? "true" : "false") : "\($0)" } ?? "\(item)"
                    throw bad("\(shown) is not a token id (a non-negative integer)")
                }
                items.append(n.doubleValue.magnitude < 1e15 ? String(n.int64Value) : "\(item)")
            }
        } else {
            items = trimmed.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
        }
        guard !items.isEmpty else { throw bad("no token ids") }
        return try items.map { item in
            guard let id = Int32(item), id >= 0 else { throw bad("\"\(item)\" is not a token id (a non-negative integer)") }
            return id
        }
    }
}
