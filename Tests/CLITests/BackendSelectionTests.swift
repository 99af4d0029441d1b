import Testing

/// `--backend` as users meet it: auto falls back to the CPU with one line saying why, an explicit
/// vulkan without a driver fails with a one-line error and a non-zero status, never a crash.
@Suite struct BackendSelectionTests {
    /// A driver list that points nowhere: the loader finds no Vulkan driver, as on a machine without one.
    let noDriver = ["VK_ICD_FILENAMES": "/nonexistent/tiller-test-icd.json", "VK_DRIVER_FILES": "/nonexistent/tiller-test-icd.json"]

    @Test func infoDescribesTheMachine() throws {
        let result = try TillerProcess.run(["info", "--backend", "cpu"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("tiller "))
        #expect(result.stdout.contains("OpenBLAS kernels"))
        #expect(result.stdout.contains("backend (--backend cpu): cpu"))
    }

    @Test func autoFallsBackToTheCPUWithoutVulkan() throws {
        let result = try TillerProcess.run(["info", "--backend", "auto"], environment: noDriver)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("backend (--backend auto): cpu"))
        let notes = result.stderr.split(separator: "\n").filter { $0.hasPrefix("tiller:") }
        #expect(notes.count == 1 && notes[0].contains("using the CPU backend"), "\(result.stderr)")
    }

    @Test func explicitVulkanWithoutADriverFailsInOneLine() throws {
        let result = try TillerProcess.run(["info", "--backend", "vulkan"], environment: noDriver)
        #expect(result.status != 0)
        let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
        #expect(errors.count == 1 && errors[0].contains("vulkan"), "\(result.stderr)")
        #expect(!result.stderr.contains("crashed"))
    }

    @Test func unknownDeviceIsNamedInTheError() throws {
        let result = try TillerProcess.run(["info", "--backend", "vulkan", "--device", "no-such-gpu"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("no-such-gpu") || result.stderr.contains("vulkan"), "\(result.stderr)")
    }

    @Test func unknownBackendIsRejected() throws {
        let result = try TillerProcess.run(["info", "--backend", "quantum"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("quantum"))
    }
}
