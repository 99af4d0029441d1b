import Foundation
import Testing

/// The SPIR-V embedded in Sources/TillerVulkan/Generated is compiled by scripts/compile-shaders.sh
/// and committed, so building needs no shader compiler. This test compiles every shader again
/// with the same script into a scratch folder and fails when any committed module differs, is
/// missing, or has no shader source left: someone edited a shader without recompiling.
@Suite struct ShaderFreshnessTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func committedSPIRVMatchesTheShaders() throws {
        let generated = Self.root.appendingPathComponent("Sources/TillerVulkan/Generated")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/glslangValidator") else {
            Issue.record("glslangValidator is not installed (apt-get install glslang-tools): cannot check the committed SPIR-V")
            return
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-shaders-\(getpid())")
        try? FileManager.default.removeItem(at: scratch)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [Self.root.appendingPathComponent("scripts/compile-shaders.sh").path]
        process.environment = ProcessInfo.processInfo.environment.merging(["TILLER_SHADER_OUT": scratch.path]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "scripts/compile-shaders.sh failed")

        let fresh = try Set(FileManager.default.contentsOfDirectory(atPath: scratch.path))
        let committed = try Set(FileManager.default.contentsOfDirectory(atPath: generated.path).filter { $0.hasSuffix(".swift") })
        for name in fresh.subtracting(committed).sorted() { Issue.record("\(name) is not committed: run scripts/compile-shaders.sh") }
        for name in committed.subtracting(fresh).sorted() { Issue.record("\(name) has no shader in Shaders/: delete it or run scripts/compile-shaders.sh") }
        for name in fresh.intersection(committed).sorted() {
            let a = try String(contentsOf: scratch.appendingPathComponent(name), encoding: .utf8)
            let b = try String(contentsOf: generated.appendingPathComponent(name), encoding: .utf8)
            #expect(a == b, "\(name) is stale: run scripts/compile-shaders.sh")
        }
    }
}
