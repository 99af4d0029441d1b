import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The check every command with an output makes before any work: the output must be writable
/// (`OutputFile.destination`) and must not be one of the run's inputs or a file of the model
/// directory, however it is spelt (relative paths, symlinks, hard links), since writing it would
/// destroy what the run reads.
public enum OutputPaths {
    /// Fails in one line naming the flag and both paths. `inputs` are (flag, path) pairs; paths
    /// that do not exist (or are "-", standard input) cannot be overwritten and are skipped.
    public static func check(_ out: String, flag: String = "--out", inputs: [(flag: String, path: String)],
                             modelDirectory: String? = nil, allowStandardOutput: Bool = false) throws {
        let destination = try OutputFile.destination(of: out, allowStandardOutput: allowStandardOutput)
        let target: String
        switch destination {
        case .standardOutput: return
        case .inPlace(let path): target = resolved(path) ?? path
        case .replace(let path, _): target = path
        }
        var outInfo = stat()
        let outExists = stat(out, &outInfo) == 0
        for input in inputs where input.path != "-" && !input.path.isEmpty {
            var info = stat()
            guard stat(input.path, &info) == 0 else { continue }
            if (outExists && info.st_dev == outInfo.st_dev && info.st_ino == outInfo.st_ino) || resolved(input.path) == target {
                throw TillerError.io(path: out, detail: "\(flag) is the same file as \(input.flag) \(input.path); refusing to overwrite an input")
            }
        }
        guard let modelDirectory, let root = resolved(modelDirectory) else { return }
        var inside = target.hasPrefix(root == "/" ? "/" : root + "/")
        if !inside, outExists, let names = try? FileManager.default.contentsOfDirectory(atPath: modelDirectory) {
            // A hard link to a model file elsewhere is the model file too.
            inside = names.contains { name in
                var info = stat()
                return stat(modelDirectory + "/" + name, &info) == 0 && info.st_dev == outInfo.st_dev && info.st_ino == outInfo.st_ino
            }
        }
        if inside {
            throw TillerError.io(path: out, detail: "\(flag) is inside the model directory \(modelDirectory); refusing to overwrite the model")
        }
    }

    /// The absolute path with every symlink resolved, or nil when it does not exist.
    static func resolved(_ path: String) -> String? {
        guard let real = realpath(path, nil) else { return nil }
        defer { free(real) }
        return String(cString: real)
    }
}
