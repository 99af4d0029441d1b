import Foundation
import Testing

/// The official `openai` Python client against `tiller serve` (scripts/serve/openai_client_check.py):
/// chat and completions, streamed and not, steering through extra_body, an unknown steering
/// name and a wrong key; every text equal to `tiller generate --batch-invariant` of the same
/// request. The client lives in .venv-openai (scripts/install-deps.sh); without it the test is
/// skipped with a note.
@Suite struct ServeOpenAIClientTests {
    static let python = SteeringCommandTests.repository.appendingPathComponent(".venv-openai/bin/python").path
    static let script = SteeringCommandTests.repository.appendingPathComponent("scripts/serve/openai_client_check.py").path

    static let clientAvailable: Bool = {
        guard FileManager.default.isExecutableFile(atPath: python) else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", "import openai"]
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    @Test(.enabled(if: clientAvailable, "the openai Python client is not installed in .venv-openai (run scripts/install-deps.sh)"))
    func theOpenAIClientGetsWhatGenerateGives() throws {
        let scratch = try SteeringCommandTests.Scratch()
        let vector = scratch.file("loud.gguf")
        try ServeCommandTests.writeVector(vector)
        let server = try ServeProcess(["--model", ServeCommandTests.lab, "--api-key", "sekret", "--steer-file", "loud=\(vector)"])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = [Self.script, "http://127.0.0.1:\(server.port)/v1", "sekret", "loud"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "\(String(decoding: stderr, as: UTF8.self))")
        let got = try #require(try JSONSerialization.jsonObject(with: stdout) as? [String: Any])
        #expect(server.terminate() == 0)

        // The same requests through generate, each alone.
        func generate(_ line: [String: Any], _ flags: [String]) throws -> String {
            let input = scratch.file("in-\(UUID().uuidString).jsonl"), output = scratch.file("out-\(UUID().uuidString).jsonl")
            try ModelCommandTests.write([String(decoding: try JSONSerialization.data(withJSONObject: line), as: UTF8.self)], to: input)
            try SteeringCommandTests.ok(["generate", "--model", ServeCommandTests.lab, "--prompts", input, "--out", output,
                                         "--batch-invariant", "--backend", "cpu", "--max-new-tokens", "10",
                                         "--steer-file", "loud=\(vector)"] + flags)
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [String: Any]
            return try #require(json?["completion"] as? String)
        }
        let question: [[String: String]] = [["role": "user", "content": "what is pottery?"]]
        let chat = try generate(["messages": question, "seed": 5], [])
        let steered = try generate(["messages": question, "seed": 5, "steer": [["file": "loud", "alpha": 10]]], [])
        let completion = try generate(["prompt": "what is clay?", "seed": 9], ["--temperature", "0.8"])
        #expect(got["models"] as? [String] == ["tiller-lab"])
        #expect(got["chat"] as? String == chat && got["chat_stream"] as? String == chat, "\(got) vs \(chat)")
        #expect(got["chat_finish_reason"] as? String == "length")
        #expect(got["chat_completion_tokens"] as? Int == 10 && got["chat_stream_completion_tokens"] as? Int == 10)
        #expect(steered != chat, "the steering changes nothing: the test would not see it dropped")
        #expect(got["chat_steered"] as? String == steered && got["chat_steered_stream"] as? String == steered, "\(got) vs \(steered)")
        #expect(got["completion"] as? String == completion && got["completion_stream"] as? String == completion, "\(got) vs \(completion)")
        #expect(got["unknown_steering"] as? String == "steering[0].name")
        #expect(got["wrong_key"] as? Int == 401)
    }
}
