import Foundation
import TillerCore
import TillerModels
import TillerSteering

/// The steering files a server offers, by name, each read once at start-up and checked against
/// the model. A request names them; it can never make the server open a path.
public final class SteeringCatalog {
    public let interventions: [Intervention]
    /// Name -> index into `interventions`.
    public let index: [String: Int]

    /// - Parameters:
    ///   - named: --steer-file NAME=PATH pairs.
    ///   - directories: --steer-dir folders: every *.safetensors and *.gguf file in them, named
    ///     by its file name without the extension.
    public init(modelDirectory: String, named: [(name: String, path: String)], directories: [String]) throws {
        var entries = named
        for directory in directories {
            let files: [String]
            do { files = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
                throw TillerError.io(path: directory, detail: "cannot list the steering directory (\(ErrorReason.file(error, path: directory)))")
            }
            for file in files.sorted() where file.hasSuffix(".safetensors") || file.lowercased().hasSuffix(".gguf") {
                let name = (file as NSString).deletingPathExtension
                entries.append((name, (directory as NSString).appendingPathComponent(file)))
            }
        }
        var interventions: [Intervention] = [], index: [String: Int] = [:]
        let fingerprint = entries.isEmpty ? nil : try ModelFingerprint(directory: modelDirectory)
        for (name, path) in entries {
            guard index[name] == nil else {
                throw TillerError.invalidArgument(op: "serve", detail: "the steering name \"\(name)\" is given twice (\(path))")
            }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw TillerError.io(path: path, detail: "no such steering file (\(name))")
            }
            if path.lowercased().hasSuffix(".gguf") {
                interventions.append(try ControlVector.read(path: path).intervention(for: fingerprint!, path: path))
            } else {
                interventions.append(try SteeringFile.load(path: path, for: fingerprint!))
            }
            index[name] = interventions.count - 1
        }
        self.interventions = interventions
        self.index = index
    }

    public var names: [String] { index.keys.sorted() }

    /// A request's steering as the hook takes it; an unknown name is a 400 naming it.
    func steering(_ entries: [CompletionRequest.Steer], systemLength: Int) throws -> SequenceSteering {
        let applications = try entries.enumerated().map { i, entry -> SteeringApplication in
            guard let intervention = index[entry.name] else {
                let known = names.isEmpty ? "this server has no steering files" : "known: " + names.joined(separator: ", ")
                throw APIError.field("steering[\(i)].name", "no steering file is called \"\(entry.name)\" (\(known))")
            }
            return SteeringApplication(intervention: intervention, alpha: entry.alpha, location: entry.location)
        }
        return SequenceSteering(applications, systemLength: systemLength)
    }
}
