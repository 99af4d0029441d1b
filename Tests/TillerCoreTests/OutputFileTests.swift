import Foundation
import Testing
@testable import TillerCore

/// `OutputFile` and `OutputPaths` on real files in a scratch directory: the target changes only
/// on commit, nothing is left behind, symlinks are written through, and an output that is an
/// input (by any name) or in the model directory is refused.
@Suite struct OutputFileTests {
    final class Scratch {
        let path: String
        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-output-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        func file(_ name: String) -> String { path + "/" + name }
        func names() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: path).sorted() }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    static func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    @Test func theTargetChangesOnlyOnCommit() throws {
        let dir = try Scratch()
        let target = dir.file("out.txt")
        try "old".write(toFile: target, atomically: false, encoding: .utf8)
        let file = try OutputFile(target)
        try file.write(Data("new".utf8))
        #expect(try Self.text(target) == "old")
        #expect(try dir.names().count == 2, "a temporary beside the target while writing")
        try file.commit()
        #expect(try Self.text(target) == "new")
        #expect(try dir.names() == ["out.txt"])
    }

    @Test func anUncommittedFileLeavesNothing() throws {
        let dir = try Scratch()
        let target = dir.file("out.txt")
        try "old".write(toFile: target, atomically: false, encoding: .utf8)
        do {
            let file = try OutputFile(target)
            try file.write(Data("half".utf8))
        }
        #expect(try Self.text(target) == "old")
        #expect(try dir.names() == ["out.txt"])
        let discarded = try OutputFile(dir.file("new.txt"))
        discarded.discard()
        #expect(try dir.names() == ["out.txt"])
        #expect(throws: TillerError.self) { try discarded.commit() }
    }

    @Test func writesAtOffsetsAndKeepsPermissions() throws {
        let dir = try Scratch()
        let target = dir.file("out.bin")
        try Data([9]).write(to: URL(fileURLWithPath: target))
        chmod(target, 0o640)
        let file = try OutputFile(target)
        try file.truncate(to: 6)
        try [UInt8](arrayLiteral: 1, 2).withUnsafeBytes { try file.write($0, at: 4) }
        try [UInt8](arrayLiteral: 7).withUnsafeBytes { try file.write($0, at: 0) }
        try file.commit()
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data([7, 0, 0, 0, 1, 2]))
        let mode = try FileManager.default.attributesOfItem(atPath: target)[.posixPermissions] as? Int
        #expect(mode == 0o640)
    }

    @Test func symlinksAreWrittenThrough() throws {
        let dir = try Scratch()
        try "old".write(toFile: dir.file("target.txt"), atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir.file("link"), withDestinationPath: "target.txt")
        try FileManager.default.createSymbolicLink(atPath: dir.file("dangling"), withDestinationPath: "created.txt")
        try OutputFile.write(Data("new".utf8), to: dir.file("link"))
        try OutputFile.write(Data("made".utf8), to: dir.file("dangling"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir.file("link")) == "target.txt")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir.file("dangling")) == "created.txt")
        #expect(try Self.text(dir.file("target.txt")) == "new")
        #expect(try Self.text(dir.file("created.txt")) == "made")
        #expect(try dir.names() == ["created.txt", "dangling", "link", "target.txt"])
    }

    @Test func unwritableDestinationsAreOneLine() throws {
        let dir = try Scratch()
        #expect(throws: TillerError.io(path: dir.path, detail: "is a directory")) { try OutputFile(dir.path) }
        #expect(throws: TillerError.io(path: dir.file("no/x"), detail: "the directory \(dir.file("no")) does not exist")) {
            try OutputFile(dir.file("no/x"))
        }
        #expect(throws: TillerError.self) { try OutputFile("-") }
        #expect(try OutputFile.destination(of: "-", allowStandardOutput: true) == .standardOutput)
        #expect(try OutputFile.destination(of: "/dev/null") == .inPlace("/dev/null"))
        #expect(try dir.names().isEmpty)
    }

    /// Concurrent writers to one path each replace it whole: the result is one of them.
    @Test func concurrentWritersDoNotMix() throws {
        let dir = try Scratch()
        let target = dir.file("out.bin")
        let payloads = (0..<8).map { Data(repeating: UInt8($0), count: 1 << 16) }
        DispatchQueue.concurrentPerform(iterations: payloads.count) { i in
            try? OutputFile.write(payloads[i], to: target)
        }
        #expect(payloads.contains(try Data(contentsOf: URL(fileURLWithPath: target))))
        #expect(try dir.names() == ["out.bin"])
    }

    @Test func anOutputThatIsAnInputIsRefused() throws {
        let dir = try Scratch()
        let input = dir.file("in.txt")
        try "input".write(toFile: input, atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir.file("link"), withDestinationPath: input)
        try FileManager.default.linkItem(atPath: input, toPath: dir.file("hard"))
        let spellings = [input, dir.path + "/../" + (dir.path as NSString).lastPathComponent + "/in.txt", dir.file("link"), dir.file("hard")]
        for out in spellings {
            #expect(throws: TillerError.io(path: out, detail: "--out is the same file as --in \(input); refusing to overwrite an input")) {
                try OutputPaths.check(out, inputs: [("--in", input)])
            }
        }
        try OutputPaths.check(dir.file("other.txt"), inputs: [("--in", input), ("--missing", dir.file("missing"))])

        let model = dir.file("model")
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        try "w".write(toFile: model + "/model.safetensors", atomically: false, encoding: .utf8)
        try FileManager.default.linkItem(atPath: model + "/model.safetensors", toPath: dir.file("weights"))
        for out in [model + "/model.safetensors", model + "/new.bin", dir.file("weights")] {
            #expect(throws: TillerError.self) { try OutputPaths.check(out, inputs: [], modelDirectory: model) }
        }
        try OutputPaths.check(dir.file("fine.bin"), inputs: [], modelDirectory: model)
    }
}
