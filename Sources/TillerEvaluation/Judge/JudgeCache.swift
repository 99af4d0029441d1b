import Foundation
import TillerCore

/// The judge's answers on disk, keyed by (judge model, prompt): a JSON Lines file of
/// {"model", "prompt", "answers"} appended to as answers come in, so a re-run, or a run
/// resumed after an interruption, asks nothing twice. A line cut short by an interruption is
/// ignored (and the answers re-asked).
public final class JudgeCache {
    public let path: String
    private var entries: [String: [String]] = [:]
    private let lock = NSLock()
    private var handle: FileHandle?

    public init(path: String) throws {
        self.path = path
        if FileManager.default.fileExists(atPath: path) {
            let data = try TextFiles.contents(of: path)
            for raw in data.split(separator: UInt8(ascii: "\n")) {
                guard let object = try? JSONSerialization.jsonObject(with: Data(raw)) as? [String: Any],
                      let model = object["model"] as? String, let prompt = object["prompt"] as? String,
                      let answers = object["answers"] as? [String] else { continue }
                entries[Self.key(model, prompt)] = answers
            }
        } else {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw TillerError.io(path: path, detail: "cannot create the judge cache")
            }
        }
    }

    public var count: Int { lock.withLock { entries.count } }

    static func key(_ model: String, _ prompt: String) -> String { model + "\u{0}" + prompt }

    public func answers(model: String, prompt: String) -> [String]? {
        lock.withLock { entries[Self.key(model, prompt)] }
    }

    public func store(model: String, prompt: String, answers: [String]) throws {
        let line = try JSONSerialization.data(withJSONObject: ["model": model, "prompt": prompt, "answers": answers],
                                              options: [.sortedKeys]) + Data("\n".utf8)
        try lock.withLock {
            entries[Self.key(model, prompt)] = answers
            if handle == nil {
                guard let opened = FileHandle(forWritingAtPath: path) else {
                    throw TillerError.io(path: path, detail: "cannot open the judge cache for writing")
                }
                handle = opened
            }
            // A previous run cut short may have left a partial line: start on a fresh one.
            let end = handle!.seekToEndOfFile()
            if end > 0, let reader = FileHandle(forReadingAtPath: path) {
                reader.seek(toFileOffset: end - 1)
                if reader.readData(ofLength: 1) != Data("\n".utf8) { handle!.write(Data("\n".utf8)) }
                reader.closeFile()
            }
            handle!.write(line)
        }
    }
}
