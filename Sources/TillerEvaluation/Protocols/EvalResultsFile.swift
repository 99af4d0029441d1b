import Foundation
import TillerCore

/// The results file of a run, appended to as answers are scored, so an interrupted run loses at
/// most the chunk in flight and a re-run resumes: lines already there for the same protocol and
/// model are kept and their (item, steering) pairs are not generated or judged again. A last line
/// cut short by the interruption is dropped; any other line that is not a results line, or one
/// of another protocol or model, is refused in one line (give another --out).
public final class EvalResultsFile {
    public let path: String
    /// The lines already in the file, in order.
    public internal(set) var results: [EvalResult] = []
    /// Each of `results`' line as it is in the file (without its newline), so a rewrite in
    /// canonical order keeps lines byte for byte (EvalResultsFile+CanonicalOrder.swift).
    var lineBytes: [Data] = []
    private var done: Set<String> = []
    var handle: FileHandle?

    static func key(_ id: String, _ steerKey: String) -> String { id + "\u{0}" + steerKey }

    /// `maxNewTokens` and `coherenceSource` ("judge" or "proxy") are this run's: lines made with
    /// others would mix two settings in one table, so they are refused too.
    public init(path: String, proto: EvalProtocol, model: String, maxNewTokens: Int, coherenceSource: String) throws {
        self.path = path
        let fm = FileManager.default
        if fm.fileExists(atPath: path) {
            let data = try TextFiles.contents(of: path)
            var keep = 0
            var offset = 0
            let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            for (index, raw) in lines.enumerated() {
                defer { offset += raw.count + 1 }
                let isLast = index == lines.count - 1
                if raw.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) {
                    if !isLast { keep = offset + raw.count + 1 }
                    continue
                }
                guard let object = try? JSONSerialization.jsonObject(with: Data(raw)) as? [String: Any],
                      let result = EvalResult(json: object) else {
                    // The last line without its newline is a write cut short: drop it.
                    if isLast { break }
                    throw TillerError.io(path: "\(path):\(index + 1)", detail: "not a tiller eval results line (give another --out)")
                }
                guard result.proto == proto, result.model == model else {
                    throw TillerError.io(path: "\(path):\(index + 1)",
                                         detail: "holds results of protocol \(result.proto.rawValue) on model \(result.model), not \(proto.rawValue) on \(model) (give another --out)")
                }
                if let tokens = result.extra["max_new_tokens"] as? Int, tokens != maxNewTokens {
                    throw TillerError.io(path: "\(path):\(index + 1)",
                                         detail: "holds answers of at most \(tokens) new tokens, this run asks \(maxNewTokens) (give another --out)")
                }
                if result.coherenceSource != coherenceSource {
                    throw TillerError.io(path: "\(path):\(index + 1)",
                                         detail: "holds coherence from the \(result.coherenceSource), this run's comes from the \(coherenceSource) (give another --out)")
                }
                results.append(result)
                lineBytes.append(Data(raw))
                done.insert(Self.key(result.id, result.steerKey))
                keep = isLast ? offset + raw.count : offset + raw.count + 1
            }
            if keep < data.count {
                guard let h = FileHandle(forWritingAtPath: path) else { throw TillerError.io(path: path, detail: "cannot open for writing") }
                h.truncateFile(atOffset: UInt64(keep))
                h.closeFile()
            }
            if keep > 0 && data.prefix(keep).last != UInt8(ascii: "\n") {
                try append(Data("\n".utf8))
            }
        } else {
            guard fm.createFile(atPath: path, contents: nil) else {
                throw TillerError.io(path: path, detail: "cannot create the results file")
            }
        }
    }

    public func isDone(_ request: EvalRequest) -> Bool { done.contains(Self.key(request.item.id, request.arm.key)) }

    /// Appends scored answers (each line whole, then synced).
    public func append(_ new: [EvalResult]) throws {
        let lines = try new.map { Data(try $0.line().utf8) }
        var data = Data()
        for line in lines { data += line + Data("\n".utf8) }
        try append(data)
        lineBytes += lines
        for result in new {
            results.append(result)
            done.insert(Self.key(result.id, result.steerKey))
        }
    }

    private func append(_ data: Data) throws {
        if handle == nil {
            guard let h = FileHandle(forWritingAtPath: path) else { throw TillerError.io(path: path, detail: "cannot open for writing") }
            handle = h
        }
        handle!.seekToEndOfFile()
        handle!.write(data)
        handle!.synchronizeFile()
    }
}
