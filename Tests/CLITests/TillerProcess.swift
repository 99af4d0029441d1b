import Foundation

/// Runs the built `tiller` binary the way a user or script does, and captures what it prints.
struct TillerProcess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        /// The process was killed by a signal (a trap, SIGILL/SIGTRAP) rather than exiting.
        var signalled = false
    }

    /// The binary sits beside the test bundle in the build folder (TILLER_BINARY overrides).
    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["TILLER_BINARY"] { return URL(fileURLWithPath: path) }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("tiller")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: ".build/debug/tiller")
    }

    /// `input`, when given, is the command's standard input.
    static func run(_ arguments: [String], environment extra: [String: String] = [:], input: Data? = nil) throws -> Result {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let stdin = input.map { _ in Pipe() }
        if let stdin { process.standardInput = stdin }
        try process.run()
        if let stdin, let input {
            // Small inputs only (a pipe buffer's worth): written before the outputs are read.
            stdin.fileHandleForWriting.write(input)
            try stdin.fileHandleForWriting.close()
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self),
                      signalled: process.terminationReason == .uncaughtSignal)
    }
}
