import Foundation
import Testing
import TillerCore

/// JSON Lines read line by line with a line-size limit, and the nearest-key suggestion for unknown keys.
@Suite struct InputReadingTests {
    final class Scratch {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-lines-\(UUID().uuidString)").path
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    func lines(_ path: String, limit: Int = JSONLinesReader.defaultMaxLineBytes) throws -> [String] {
        var got: [String] = []
        try JSONLinesReader.forEachLine(path: path, maxLineBytes: limit) { number, bytes in
            #expect(number == got.count + 1)
            got.append(String(decoding: bytes, as: UTF8.self))
        }
        return got
    }

    /// Lines across the 1 MiB chunks come back whole, as splitting the file's bytes gives them.
    @Test func linesAcrossChunksAreWhole() throws {
        let file = Scratch()
        var random = SplitMix64(seed: 3)
        let expected = (0..<9).map { i in String(repeating: String(UnicodeScalar(UInt8(97 + i))), count: Int(random.next() % 900_000)) }
        for text in [expected.joined(separator: "\n"), expected.joined(separator: "\n") + "\n"] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: file.path))
            let reference = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let got = try lines(file.path)
            #expect(got == (reference.last == "" ? Array(reference.dropLast()) : reference))
        }
    }

    @Test func aLineOverTheLimitIsRefusedNamingTheLine() throws {
        let file = Scratch()
        try Data(("{\"a\": 1}\n" + String(repeating: "x", count: 100) + "\n{}\n").utf8).write(to: URL(fileURLWithPath: file.path))
        #expect(try lines(file.path, limit: 100).count == 3)
        #expect(throws: TillerError.io(path: "\(file.path):2", detail: "line longer than 99 bytes (--max-line-bytes)")) {
            try lines(file.path, limit: 99)
        }
        // 17 MiB on one line, over the 16 MiB default: refused, and before the rest is read.
        let huge = String(repeating: "y", count: 17 << 20)
        try Data(("{}\n" + huge + "\n").utf8).write(to: URL(fileURLWithPath: file.path))
        var seen = 0
        #expect(throws: TillerError.io(path: "\(file.path):2", detail: "line longer than 16 MiB (--max-line-bytes)")) {
            try JSONLinesReader.forEachLine(path: file.path) { _, _ in seen += 1 }
        }
        #expect(seen == 1)
        #expect(throws: TillerError.io(path: "\(file.path):2", detail: "line longer than 16 MiB (--max-line-bytes)")) {
            try TextFiles.jsonObjectLines(path: file.path, expecting: "x")
        }
    }

    @Test func missingFileAndDirectoryAreNamed() {
        #expect(throws: TillerError.io(path: "/nonexistent/x.jsonl", detail: "no such file")) { try lines("/nonexistent/x.jsonl") }
        let tmp = FileManager.default.temporaryDirectory.path
        #expect(throws: TillerError.io(path: tmp, detail: "no such file")) { try lines(tmp) }
    }

    /// Restricted Damerau-Levenshtein by its recursive definition.
    static func reference(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var best = min(reference(Array(a.dropLast()), b) + 1, reference(a, Array(b.dropLast())) + 1,
                       reference(Array(a.dropLast()), Array(b.dropLast())) + (a.last == b.last ? 0 : 1))
        if a.count > 1, b.count > 1, a[a.count - 1] == b[b.count - 2], a[a.count - 2] == b[b.count - 1] {
            best = min(best, reference(Array(a.dropLast(2)), Array(b.dropLast(2))) + 1)
        }
        return best
    }

    @Test func editDistanceMatchesTheDefinition() {
        var random = SplitMix64(seed: 9)
        for _ in 0..<300 {
            let a = (0..<Int(random.next() % 6)).map { _ in Character(UnicodeScalar(UInt8(97 + random.next() % 3))) }
            let b = (0..<Int(random.next() % 6)).map { _ in Character(UnicodeScalar(UInt8(97 + random.next() % 3))) }
            #expect(KeySuggestion.editDistance(String(a), String(b)) == Self.reference(a, b), "\(String(a)) \(String(b))")
        }
    }

    @Test func unknownKeysSuggestTheNearest() {
        let known = ["prompt", "messages", "ids", "seed", "steer", "alpha", "location", "system_length"]
        #expect(KeySuggestion.unknownKey(in: ["steeer": 1, "prompt": 2], known: known) == "unknown key \"steeer\" (did you mean \"steer\"?)")
        #expect(KeySuggestion.unknownKey(in: ["alhpa": 1], known: known) == "unknown key \"alhpa\" (did you mean \"alpha\"?)")
        #expect(KeySuggestion.unknownKey(in: ["Prompt": 1], known: known) == "unknown key \"Prompt\" (did you mean \"prompt\"?)")
        #expect(KeySuggestion.unknownKey(in: ["temperature": 1], known: known) == "unknown key \"temperature\" (known keys: \"prompt\", \"messages\", \"ids\", \"seed\", \"steer\", \"alpha\", \"location\", \"system_length\")")
        #expect(KeySuggestion.unknownKey(in: ["prompt": 1, "seed": 2], known: known) == nil)
    }
}
