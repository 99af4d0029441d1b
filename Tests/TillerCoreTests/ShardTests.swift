import Foundation
import Testing
@testable import TillerCore

/// `Shard` (the split, the names, the job array's environment) and the streaming `SHA256` the
/// manifests record, against coreutils' sha256sum.
@Suite struct ShardTests {
    @Test func everyLineLandsInExactlyOneShardInInputOrder() throws {
        for count in [1, 3, 4, 7] {
            for total in [0, 1, 5, 12, 29] {
                let shards = try (0..<count).map { try Shard(index: $0, count: count) }
                var seen = [Int](repeating: 0, count: total)
                for shard in shards {
                    let lines = shard.lines(total: total)
                    #expect(lines == lines.sorted())
                    #expect(lines.count == Shard.lineCount(shard: shard.index, of: count, total: total))
                    for line in lines {
                        #expect(shard.owns(line))
                        seen[line] += 1
                    }
                    #expect(shard.select(Array(0..<total)) == lines)
                }
                #expect(seen.allSatisfy { $0 == 1 }, "count \(count), total \(total)")
            }
        }
    }

    @Test func parsingRefusesWhatIsNotAShard() throws {
        #expect(try Shard(parsing: "3/4") == Shard(index: 3, count: 4))
        for bad in ["4/4", "-1/4", "0/0", "1", "a/b", "1/2/3", ""] {
            #expect(throws: TillerError.self) { try Shard(parsing: bad) }
        }
        do {
            _ = try Shard(parsing: "5/4")
        } catch {
            #expect("\(error)".contains("--shard") && "\(error)".contains("0-3"), "\(error)")
        }
    }

    @Test func outputNamesCarryTheShardBeforeTheExtension() throws {
        let shard = try Shard(index: 3, count: 4)
        #expect(shard.outputPath("out.jsonl") == "out.shard-0003-of-0004.jsonl")
        #expect(shard.outputPath("/data/run.1/cap.safetensors") == "/data/run.1/cap.shard-0003-of-0004.safetensors")
        #expect(shard.outputPath("results") == "results.shard-0003-of-0004")
        #expect(shard.outputPath(".hidden") == ".hidden.shard-0003-of-0004")
        #expect(try Shard(index: 12, count: 12345).label == "shard-00012-of-12345")
    }

    @Test func theJobArrayEnvironmentGivesTheShard() throws {
        #expect(try Shard.fromEnvironment([:]) == nil)
        let slurm = try #require(try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0"]))
        #expect(slurm.shard == (try Shard(index: 2, count: 4)) && slurm.source.contains("SLURM_ARRAY_TASK_ID=2"))
        // --array=1-8: tasks 1..8 are shards 0..7 of 8.
        let oneBased = try #require(try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "8"]))
        #expect(oneBased.shard == (try Shard(index: 0, count: 8)))
        // --array=0-6:2: tasks 0, 2, 4, 6 are shards 0..3 of 4.
        let stepped = try #require(try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "6",
                                                             "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_COUNT": "4"]))
        #expect(stepped.shard == (try Shard(index: 2, count: 4)))
        // One task of a larger array re-submitted: the stated total wins, and without one it is refused.
        let resubmitted = try #require(try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_MAX": "2",
                                                                 "SLURM_ARRAY_TASK_COUNT": "1", "TILLER_SHARD_COUNT": "4"]))
        #expect(resubmitted.shard == (try Shard(index: 2, count: 4)) && resubmitted.source.contains("TILLER_SHARD_COUNT=4"))
        let indexed = try #require(try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "1", "TILLER_SHARD_COUNT": "3"]))
        #expect(indexed.shard == (try Shard(index: 1, count: 3)) && indexed.source.contains("JOB_COMPLETION_INDEX=1"))
        for (environment, named) in [(["JOB_COMPLETION_INDEX": "1"], "TILLER_SHARD_COUNT"),
                                     (["JOB_COMPLETION_INDEX": "3", "TILLER_SHARD_COUNT": "3"], "JOB_COMPLETION_INDEX"),
                                     (["SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "3"], "SLURM_ARRAY_TASK_ID"),
                                     (["SLURM_ARRAY_TASK_ID": "1"], "SLURM_ARRAY_TASK_COUNT"),
                                     (["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_COUNT": "1"], "TILLER_SHARD_COUNT"),
                                     (["SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"], "--shard")] {
            do {
                _ = try Shard.fromEnvironment(environment)
                Issue.record("\(environment) was accepted")
            } catch {
                #expect("\(error)".contains(named) && !"\(error)".contains("\n"), "\(error)")
            }
        }
    }

    /// Pieces of every size across the 64-byte blocks, against sha256sum.
    @Test func streamingSHA256MatchesSHA256Sum() throws {
        let tool = ["/usr/bin/sha256sum", "/bin/sha256sum"].first { FileManager.default.isExecutableFile(atPath: $0) }
        #expect(SHA256.hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        guard let tool else { return }
        var generator = SystemRandomNumberGenerator()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-sha-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        for size in [0, 55, 56, 63, 64, 65, 1000, 100_003] {
            let data = Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) })
            try data.write(to: URL(fileURLWithPath: path))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = [path]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let expected = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64)
            process.waitUntilExit()
            var hasher = SHA256()
            var offset = 0, piece = 1
            while offset < size {
                let end = min(size, offset + piece)
                hasher.update(data.subdata(in: offset..<end))
                offset = end
                piece = piece * 3 + 1
            }
            #expect(hasher.finishHex() == String(expected), "size \(size)")
            #expect(try SHA256.hex(file: path) == String(expected), "size \(size)")
        }
    }
}
