import Foundation
import Testing

/// Issue 15's acceptance test on a real Slurm (docs/cluster.md): a one-node cluster on loopback
/// (`SlurmCluster`) runs a 4-task array of `tiller generate --steer` on the lab model, each task
/// taking its shard from SLURM_ARRAY_TASK_ID; `tiller merge` must give the bytes of the unsharded
/// run. Then one task is killed mid-run (scancel while its output is being written), which must
/// leave no complete-looking shard; the whole array re-submitted skips the three complete shards,
/// redoes the killed one, and the merge is again the unsharded bytes. Where Slurm cannot start
/// (not installed, not root, no daemons), the test is skipped with a one-line reason, printed so
/// CI's log shows it.
@Suite(.serialized) struct SlurmArrayTests {
    @Test func arrayOfGenerateTasksMergesIntoTheUnshardedRunAndSurvivesAKilledTask() throws {
        let cluster: SlurmCluster
        do {
            cluster = try SlurmCluster.start()
        } catch let unavailable as SlurmCluster.Unavailable {
            print("SlurmArrayTests: skipped: Slurm cannot start here: \(unavailable)")
            try Test.cancel("Slurm cannot start here: \(unavailable)")
        }
        defer { cluster.stop() }
        let setup = try ShardCommandTests.shared.get()
        let work = try SteeringCommandTests.Scratch()
        let whole = work.file("whole.jsonl"), out = work.file("gen.jsonl"), merged = work.file("merged.jsonl")
        let binary = TillerProcess.binary.path
        // 3 prompts per task, one at a time: long enough (a few tenths of a second) to be killed mid-run.
        let arguments = ShardCommandTests.generate(setup, out: out, ["--batch-size", "1"])
        try ShardCommandTests.run(ShardCommandTests.generate(setup, out: whole, ["--batch-size", "1"]))
        let script = "exec " + ([binary] + arguments).map(Self.quoted).joined(separator: " ")
        let shards = (0..<4).map { work.file("gen.shard-000\($0)-of-0004.jsonl") }

        let first = try cluster.submit(script, array: "0-3")
        try cluster.wait(first, timeout: 120)
        let logs = cluster.logs(first)
        for (s, shard) in shards.enumerated() {
            #expect(FileManager.default.fileExists(atPath: shard + ".shard.json"), "shard \(s) did not finish: \(logs)")
        }
        #expect(logs.contains("shard 2/4 (from SLURM_ARRAY_TASK_ID=2, SLURM_ARRAY_TASK_COUNT=4)"), "\(logs)")
        try ShardCommandTests.run(["merge"] + shards + ["--out", merged])
        #expect(try ShardCommandTests.bytes(merged) == ShardCommandTests.bytes(whole), "the merged array differs from the unsharded run")

        // Task 2 again, killed while it writes: its old output is removed first (a task that never
        // finished), and the kill comes as soon as its temporary output file appears.
        for suffix in ["", ".shard.json"] { try FileManager.default.removeItem(atPath: shards[2] + suffix) }
        // Re-submitted alone (--array=2 is an array of one task), the task needs the stated total.
        let single = "export TILLER_SHARD_COUNT=4\n" + script
        var killed = false
        for _ in 0..<3 where !killed {
            let job = try cluster.submit(single, array: "2")
            let cancelled = try Self.killWhileWriting(cluster, job: job, directory: work.path, prefix: ".gen.shard-0002-of-0004.jsonl.tiller-",
                                                      commandLine: "\u{0}--out\u{0}\(out)\u{0}")
            try cluster.wait(job, timeout: 60)
            // A kill that came after the task had finished did not kill it mid-run.
            killed = cancelled && !FileManager.default.fileExists(atPath: shards[2] + ".shard.json")
            if !killed {
                // It finished before the kill: start over.
                for suffix in ["", ".shard.json"] { try? FileManager.default.removeItem(atPath: shards[2] + suffix) }
            }
        }
        #expect(killed, "task 2 finished three times before it could be killed")
        #expect(!FileManager.default.fileExists(atPath: shards[2]) && !FileManager.default.fileExists(atPath: shards[2] + ".shard.json"),
                "the killed task left a complete-looking shard")
        try SteeringCommandTests.fails(["merge"] + shards + ["--out", merged], containing: ["gen.shard-0002-of-0004.jsonl", "no shard manifest"])

        // The whole array re-submitted: three tasks skip, task 2 redoes its shard.
        let again = try cluster.submit(script, array: "0-3")
        try cluster.wait(again, timeout: 120)
        let rerun = cluster.logs(again)
        #expect(rerun.components(separatedBy: "already complete").count - 1 == 3, "\(rerun)")
        #expect(rerun.contains("shard 2/4 complete"), "\(rerun)")
        try FileManager.default.removeItem(atPath: merged)
        try ShardCommandTests.run(["merge"] + shards + ["--out", merged])
        #expect(try ShardCommandTests.bytes(merged) == ShardCommandTests.bytes(whole), "the merge after the re-run differs from the unsharded run")
    }

    /// Polls `directory` for the task's temporary output (`prefix`...); the moment it appears the
    /// task's tiller (the process whose command line holds `commandLine`) is stopped, so it
    /// cannot finish while the cancel travels, and the job is cancelled (scancel: SIGCONT and
    /// SIGTERM, then SIGKILL after KillWait). False when the job left the queue first.
    static func killWhileWriting(_ cluster: SlurmCluster, job: String, directory: String, prefix: String, commandLine: String) throws -> Bool {
        let deadline = Date().addingTimeInterval(60)
        var polls = 0
        while Date() < deadline {
            let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            if names.contains(where: { $0.hasPrefix(prefix) }) {
                for pid in taskProcesses(commandLine) { kill(pid, SIGSTOP) }
                return (try? cluster.output("scancel", [job])) != nil
            }
            polls += 1
            // squeue is slower than a directory listing: ask it now and then.
            if polls % 50 == 0, try !cluster.isActive(job) { return false }
            usleep(2_000)
        }
        return false
    }

    /// The processes whose NUL-separated command line contains `text`.
    static func taskProcesses(_ text: String) -> [pid_t] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { name -> pid_t? in
            guard let pid = pid_t(name), pid != getpid(),
                  let data = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") else { return nil }
            return String(decoding: data, as: UTF8.self).contains(text) ? pid : nil
        }
    }

    static func quoted(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
