import Foundation
import TillerCore
import TillerLab

/// The lab model that ships with Tiller (Sources/TillerLab/Resources/tiller-lab), so `tiller demo`
/// and `tiller lab eval` work without downloading anything.
public enum BuiltInModel {
    /// The environment variable that points at another model directory (a freshly trained one, say).
    public static let environmentVariable = "TILLER_LAB_MODEL"

    /// The model directory: TILLER_LAB_MODEL when set (it must then hold a model: an explicit choice
    /// is never silently replaced), else the first of the resource bundle and the source tree that
    /// holds a config.json. Throws one line naming every place looked at.
    public static func locate(environment: [String: String] = ProcessInfo.processInfo.environment,
                              bundled: URL? = LabModelResource.bundled,
                              sourceTree: URL = LabModelResource.sourceTree) throws -> String {
        if let path = environment[environmentVariable], !path.isEmpty {
            guard holdsModel(path) else {
                throw TillerError.io(path: path, detail: "\(environmentVariable) names no model directory (no config.json there)")
            }
            return path
        }
        let candidates = [bundled?.path, sourceTree.path].compactMap { $0 }
        if let found = candidates.first(where: holdsModel) { return found }
        throw TillerError.io(path: "built-in lab model",
                             detail: "no config.json in \(candidates.joined(separator: " or ")); pass --model DIR or set \(environmentVariable)")
    }

    static func holdsModel(_ directory: String) -> Bool {
        FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("config.json"))
    }
}
