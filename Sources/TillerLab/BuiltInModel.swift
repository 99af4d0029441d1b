import Foundation

/// Where the committed lab model (Resources/tiller-lab) can be found. Only this target can reach its
/// own resource bundle, so the places are named here; TillerEvaluation's `BuiltInModel` picks one.
public enum LabModelResource {
    /// The resource's name inside the bundle and the source tree.
    public static let name = "tiller-lab"

    /// The copy in the resource bundle SwiftPM builds beside the executable, or nil when there is no
    /// such bundle. The generated `Bundle.module` traps when its bundle is missing (a binary copied
    /// elsewhere), so it is touched only after the bundle is seen to exist.
    public static var bundled: URL? {
        let bundle = Bundle.main.bundleURL.appendingPathComponent("Tiller_TillerLab.resources")
        guard FileManager.default.fileExists(atPath: bundle.path) else { return nil }
        return Bundle.module.url(forResource: name, withExtension: nil)
    }

    /// The directory in this source tree (as compiled: useful in a checkout, meaningless elsewhere).
    public static var sourceTree: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources/\(name)")
    }
}
