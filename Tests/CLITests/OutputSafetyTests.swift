import Foundation
import Testing

/// Every command that writes a file writes it the same way (`OutputFile`): an output that is an
/// input of the run or a file of the model directory is refused before any work; a failed,
/// interrupted or concurrent run never leaves a destroyed or mixed file nor a stray temporary;
/// a symlink is written through; "-" is standard input or output. Each data-loss path of the
/// hardening issue has its case here, checked on the bytes of the file that was there before.
@Suite struct OutputSafetyTests {
    typealias Steering = SteeringCommandTests
    static let labModel = SteeringCommandTests.labModel

    /// Small inputs made once: a lab corpus, 6 triplets, a capture of them at layer 1, a DiffMean
    /// steering file and its GGUF export.
    final class Inputs {
        let dir: Steering.Scratch
        let triplets: String, capture: String, steering: String, gguf: String

        init() throws {
            dir = try Steering.Scratch()
            let corpus = dir.file("corpus")
            try Steering.ok(["lab", "corpus", "--seed", "1", "--out", corpus, "--train", "40", "--heldout", "0"])
            let lines = try String(contentsOfFile: corpus + "/train.jsonl", encoding: .utf8).split(separator: "\n").prefix(6)
            triplets = dir.file("triplets.jsonl")
            try (lines.joined(separator: "\n") + "\n").write(toFile: triplets, atomically: true, encoding: .utf8)
            capture = dir.file("capture.safetensors")
            try Steering.ok(["capture", "--model", labModel, "--triplets", triplets, "--layers", "1", "--out", capture, "--backend", "cpu"])
            steering = dir.file("diffmean.safetensors")
            try Steering.ok(["fit", "--method", "diffmean", "--capture", capture, "--layer", "1", "--model", labModel,
                             "--out", steering, "--backend", "cpu"])
            gguf = dir.file("diffmean.gguf")
            try Steering.ok(["steer", "export-gguf", "--in", steering, "--out", gguf])
        }

        /// A copy of one of the inputs in `scratch` (a test that overwrote it by mistake must not
        /// break the others).
        func copy(_ path: String, to scratch: Steering.Scratch) throws -> String {
            let copy = scratch.file((path as NSString).lastPathComponent)
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            return copy
        }
    }

    static let shared = Result { try Inputs() }

    static func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// The names in a directory that are Tiller temporaries.
    static func temporaries(_ dir: Steering.Scratch) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tiller-") }
    }

    /// Runs the command expecting a one-line error holding `words`, and that `file` keeps its bytes.
    static func refused(_ arguments: [String], keeps file: String, containing words: [String],
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try bytes(file)
        try Steering.fails(arguments, containing: words, sourceLocation: sourceLocation)
        #expect(try bytes(file) == before, "\(file) was changed by tiller \(arguments.joined(separator: " "))", sourceLocation: sourceLocation)
    }

    static func promptLines(_ count: Int) -> String {
        (0..<count).map { "{\"prompt\": \"the story number \($0) begins\"}" }.joined(separator: "\n") + "\n"
    }

    /// A process of the built binary, for the tests that need its stdin, to run two at once or to signal it.
    static func start(_ arguments: [String], stdin: String? = nil, executable: URL = TillerProcess.binary) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        if let stdin { process.standardInput = FileHandle(forReadingAtPath: stdin) }
        try process.run()
        return (process, out, err)
    }

    static func finish(_ started: (Process, Pipe, Pipe)) -> TillerProcess.Result {
        let (process, out, err) = started
        // stderr is read on another thread so neither pipe can fill and block the child.
        final class Box: @unchecked Sendable { var data = Data() }
        let stderr = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { stderr.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return TillerProcess.Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                                    stderr: String(decoding: stderr.data, as: UTF8.self))
    }

    // MARK: An output that is an input

    @Test func outputEqualToAnInputIsRefused() throws {
        let inputs = try Self.shared.get()
        let dir = try Steering.Scratch()
        let prompts = dir.file("prompts.jsonl")
        try Self.promptLines(2).write(toFile: prompts, atomically: true, encoding: .utf8)
        let triplets = try inputs.copy(inputs.triplets, to: dir), capture = try inputs.copy(inputs.capture, to: dir)
        let steering = try inputs.copy(inputs.steering, to: dir), gguf = try inputs.copy(inputs.gguf, to: dir)
        let model = Self.labModel

        try Self.refused(["generate", "--model", model, "--prompts", prompts, "--out", prompts], keeps: prompts,
                         containing: [prompts, "--out", "--prompts"])
        // The same file by another name: a relative path, a symlink, a hard link.
        let relative = dir.path + "/./../" + (dir.path as NSString).lastPathComponent + "/prompts.jsonl"
        try Self.refused(["generate", "--model", model, "--prompts", prompts, "--out", relative], keeps: prompts, containing: ["--prompts"])
        let link = dir.file("link.jsonl"), hard = dir.file("hard.jsonl")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "prompts.jsonl")
        try FileManager.default.linkItem(atPath: prompts, toPath: hard)
        try Self.refused(["generate", "--model", model, "--prompts", prompts, "--out", link], keeps: prompts, containing: ["--prompts"])
        try Self.refused(["generate", "--model", model, "--prompts", prompts, "--out", hard], keeps: prompts, containing: ["--prompts"])
        try Self.refused(["generate", "--model", model, "--prompts", prompts, "--steer", steering, "--out", steering], keeps: steering,
                         containing: ["--steer", steering])

        try Self.refused(["fit", "--method", "diffmean", "--capture", capture, "--layer", "1", "--model", model, "--out", capture],
                         keeps: capture, containing: [capture, "--capture"])
        try Self.refused(["analyze", "--capture", capture, "--out", capture], keeps: capture, containing: [capture, "--capture"])
        try Self.refused(["analyze", "--capture", capture, "--steer", steering, "--out", steering], keeps: steering, containing: ["--steer"])
        try Self.refused(["capture", "--model", model, "--triplets", triplets, "--layers", "1", "--out", triplets], keeps: triplets,
                         containing: [triplets, "--triplets"])
        try Self.refused(["steer", "export-gguf", "--in", steering, "--out", steering], keeps: steering, containing: [steering, "--in"])
        try Self.refused(["steer", "import-gguf", "--in", gguf, "--model", model, "--out", gguf], keeps: gguf, containing: [gguf, "--in"])
        #expect(try Self.temporaries(dir).isEmpty)
    }

    @Test func outputInsideTheModelDirectoryIsRefused() throws {
        let model = try ModelCommandTests.ModelDir()
        let dir = try Steering.Scratch()
        let checkpoint = model.file("model.safetensors")
        try Self.refused(["logits", "--model", model.path, "--ids", "1,2", "--out", checkpoint], keeps: checkpoint,
                         containing: [checkpoint, "model directory"])
        // A new file in the model directory, a symlink into it and a hard link to its checkpoint.
        try Steering.fails(["logits", "--model", model.path, "--ids", "1,2", "--out", model.file("new.safetensors")],
                           containing: ["model directory"])
        #expect(!FileManager.default.fileExists(atPath: model.file("new.safetensors")))
        let link = dir.file("link.safetensors"), hard = dir.file("hard.safetensors")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: checkpoint)
        try FileManager.default.linkItem(atPath: checkpoint, toPath: hard)
        try Self.refused(["logits", "--model", model.path, "--ids", "1,2", "--out", link], keeps: checkpoint, containing: ["model directory"])
        try Self.refused(["logits", "--model", model.path, "--ids", "1,2", "--out", hard], keeps: checkpoint, containing: ["model directory"])
        let prompts = dir.file("prompts.jsonl")
        try "{\"ids\": [1, 2]}\n".write(toFile: prompts, atomically: true, encoding: .utf8)
        try Self.refused(["generate", "--model", model.path, "--prompts", prompts, "--out", model.file("tokenizer.json")],
                         keeps: model.file("tokenizer.json"), containing: ["model directory"])
    }

    // MARK: Failed and interrupted runs

    /// A write that fails half-way (the file size limit is hit after the first lines) leaves the
    /// previous output as it was and no temporary.
    @Test func failedRunKeepsThePreviousOutput() throws {
        let dir = try Steering.Scratch()
        let prompts = dir.file("prompts.jsonl"), out = dir.file("out.jsonl")
        try Self.promptLines(20).write(toFile: prompts, atomically: true, encoding: .utf8)
        try "the previous output\n".write(toFile: out, atomically: true, encoding: .utf8)
        let before = try Self.bytes(out)
        // 512 bytes at most per file; SIGXFSZ ignored so the write fails with EFBIG instead of killing.
        let command = "ulimit -f 1; trap '' XFSZ; exec \"$0\" \"$@\""
        let result = Self.finish(try Self.start(["-c", command, TillerProcess.binary.path, "generate", "--model", Self.labModel,
                                                 "--prompts", prompts, "--out", out, "--max-new-tokens", "16", "--backend", "cpu"],
                                                executable: URL(fileURLWithPath: "/bin/sh")))
        ModelCommandTests.expectOneLineError(result, containing: [out, "cannot write"])
        #expect(try Self.bytes(out) == before)
        #expect(try Self.temporaries(dir).isEmpty)
    }

    /// SIGTERM while `generate` writes: the previous output is intact and no temporary is left.
    @Test func interruptedGenerateKeepsThePreviousOutput() throws {
        let dir = try Steering.Scratch()
        let prompts = dir.file("prompts.jsonl"), out = dir.file("out.jsonl")
        try Self.promptLines(256).write(toFile: prompts, atomically: true, encoding: .utf8)
        try "the previous output\n".write(toFile: out, atomically: true, encoding: .utf8)
        let before = try Self.bytes(out)
        let started = try Self.start(["generate", "--model", Self.labModel, "--prompts", prompts, "--out", out,
                                      "--max-new-tokens", "200", "--backend", "cpu"])
        // Signal once the run is writing: its temporary exists (at most 30 s).
        let deadline = Date().addingTimeInterval(30)
        while try Self.temporaries(dir).isEmpty, started.0.isRunning, Date() < deadline { usleep(20_000) }
        #expect(started.0.isRunning, "generate finished before it could be interrupted")
        usleep(300_000)
        kill(started.0.processIdentifier, SIGTERM)
        let result = Self.finish(started)
        #expect(started.0.terminationReason == .uncaughtSignal && result.status == SIGTERM, "\(result.stderr)")
        #expect(try Self.bytes(out) == before)
        #expect(try Self.temporaries(dir).isEmpty)
    }

    // MARK: Symlinks, directories and "-"

    @Test func symlinkedOutputWritesItsTarget() throws {
        let dir = try Steering.Scratch()
        let prompts = dir.file("prompts.jsonl"), plain = dir.file("plain.jsonl")
        try Self.promptLines(3).write(toFile: prompts, atomically: true, encoding: .utf8)
        let flags = ["--max-new-tokens", "4", "--backend", "cpu"]
        try Steering.ok(["generate", "--model", Self.labModel, "--prompts", prompts, "--out", plain] + flags)
        // An existing target and a dangling link (the target is created).
        for target in ["existing.jsonl", "missing.jsonl"] {
            if target == "existing.jsonl" { try "old\n".write(toFile: dir.file(target), atomically: true, encoding: .utf8) }
            let link = dir.file("link-" + target)
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
            try Steering.ok(["generate", "--model", Self.labModel, "--prompts", prompts, "--out", link] + flags)
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target, "the link is kept")
            #expect(try Self.bytes(dir.file(target)) == Self.bytes(plain))
        }
        #expect(try Self.temporaries(dir).isEmpty)
    }

    @Test func outputThatIsADirectoryIsOneLine() throws {
        let inputs = try Self.shared.get()
        let dir = try Steering.Scratch()
        let prompts = dir.file("prompts.jsonl"), target = dir.file("out")
        try Self.promptLines(1).write(toFile: prompts, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        for arguments in [["generate", "--model", Self.labModel, "--prompts", prompts, "--out", target],
                          ["logits", "--model", Self.labModel, "--ids", "1,2", "--out", target],
                          ["capture", "--model", Self.labModel, "--triplets", inputs.triplets, "--layers", "1", "--out", target],
                          ["fit", "--method", "diffmean", "--capture", inputs.capture, "--layer", "1", "--model", Self.labModel, "--out", target],
                          ["analyze", "--capture", inputs.capture, "--out", target],
                          ["steer", "export-gguf", "--in", inputs.steering, "--out", target]] {
            let result = try TillerProcess.run(arguments)
            ModelCommandTests.expectOneLineError(result, containing: ["\(target): is a directory"])
            #expect(!result.stderr.contains("NSCocoaErrorDomain"))
        }
        try Steering.fails(["generate", "--model", Self.labModel, "--prompts", prompts, "--out", dir.file("no/such/out.jsonl")],
                           containing: [dir.file("no/such/out.jsonl"), "does not exist"])
    }

    /// `--prompts -` reads stdin and `--out -` writes the lines to stdout: the same bytes as files.
    @Test func dashIsStandardInputAndOutput() throws {
        let dir = try Steering.Scratch()
        let prompts = dir.file("prompts.jsonl"), out = dir.file("out.jsonl")
        try Self.promptLines(3).write(toFile: prompts, atomically: true, encoding: .utf8)
        let flags = ["--max-new-tokens", "4", "--backend", "cpu"]
        try Steering.ok(["generate", "--model", Self.labModel, "--prompts", prompts, "--out", out] + flags)
        let streamed = Self.finish(try Self.start(["generate", "--model", Self.labModel, "--prompts", "-", "--out", "-"] + flags, stdin: prompts))
        #expect(streamed.status == 0, "\(streamed.stderr)")
        #expect(Data(streamed.stdout.utf8) == (try Self.bytes(out)))
        // A symlink to a device or pipe (/dev/stdout) is written in place, not replaced by a file.
        let device = Self.finish(try Self.start(["generate", "--model", Self.labModel, "--prompts", prompts, "--out", "/dev/stdout"] + flags))
        #expect(device.status == 0, "\(device.stderr)")
        #expect(Data(device.stdout.utf8) == (try Self.bytes(out)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["out.jsonl", "prompts.jsonl"])

        // capture --triplets - gives the capture of the file (its tensors; the header records "-").
        let inputs = try Self.shared.get()
        let fromStdin = dir.file("stdin.safetensors")
        let captured = Self.finish(try Self.start(["capture", "--model", Self.labModel, "--triplets", "-", "--layers", "1",
                                                   "--out", fromStdin, "--backend", "cpu"], stdin: inputs.triplets))
        #expect(captured.status == 0, "\(captured.stderr)")
        let a = try Steering.Safetensors(fromStdin), b = try Steering.Safetensors(inputs.capture)
        for name in ["tokens", "role", "layers.1.h", "layers.1.delta"] { #expect(try a.raw(name) == b.raw(name), "\(name)") }
        // A binary output does not go to stdout.
        try Steering.fails(["logits", "--model", Self.labModel, "--ids", "1,2", "--out", "-"], containing: ["standard output"])
    }

    // MARK: Concurrent runs

    /// Two captures to one --out at once (one of layer 1, one of layer 2): both succeed, and the
    /// file is exactly one of them, byte for byte, with no temporary left.
    @Test func concurrentCapturesDoNotMix() throws {
        let inputs = try Self.shared.get()
        let dir = try Steering.Scratch()
        func arguments(_ layer: String, _ out: String) -> [String] {
            ["capture", "--model", Self.labModel, "--triplets", inputs.triplets, "--layers", layer, "--out", out, "--backend", "cpu"]
        }
        try Steering.ok(arguments("1", dir.file("one.safetensors")))
        try Steering.ok(arguments("2", dir.file("two.safetensors")))
        let shared = dir.file("shared.safetensors")
        let first = try Self.start(arguments("1", shared)), second = try Self.start(arguments("2", shared))
        let results = [Self.finish(first), Self.finish(second)]
        for result in results { #expect(result.status == 0, "\(result.stderr)") }
        let final = try Self.bytes(shared)
        #expect(try final == Self.bytes(dir.file("one.safetensors")) || final == Self.bytes(dir.file("two.safetensors")),
                "the file is neither run's output")
        #expect(try Self.temporaries(dir).isEmpty)
    }
}
