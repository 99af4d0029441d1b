import Foundation
import TillerCore

/// llama.cpp's figures for the model suite on the same GGUF file, written by
/// Benchmarks/TillerBench/compare_llamacpp.py on the same machine (llama-cpp-python's C API,
/// 2 threads, the same workloads and token ids). `variants` is keyed by tiller-bench's variant
/// name, each measured at the matching precision: native on the file as given, f32 on an
/// LLAMA_FTYPE_ALL_F32 copy, bf16 on an F16 copy (llama.cpp's 16-bit CPU type).
struct LlamaCppReference: Codable {
    struct Figures: Codable {
        /// "as given", "F32", "F16"...: what llama.cpp ran for this variant.
        var type: String
        var file: String
        var prefill_tok_s: Double?
        var decode_tok_s: Double?
        var batch_tok_s: Double?
        var load_seconds: Double?
        var peak_rss_mib: Double?
        var rss_before_load_mib: Double?
    }

    var model: String
    var threads: Int?
    var variants: [String: Figures]

    /// The reference file, checked against the model tiller-bench runs: a native comparison on
    /// another file would be a silent wrong answer.
    static func load(_ path: String, model: String) throws -> LlamaCppReference {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TillerError.io(path: path, detail: "cannot read --llamacpp: \(error.localizedDescription)")
        }
        let reference: LlamaCppReference
        do { reference = try JSONDecoder().decode(LlamaCppReference.self, from: data) } catch {
            throw TillerError.io(path: path, detail: "--llamacpp is not compare_llamacpp.py's JSON: \(error)")
        }
        func resolved(_ p: String) -> String {
            URL(fileURLWithPath: (p as NSString).expandingTildeInPath).resolvingSymlinksInPath().path
        }
        guard resolved(reference.model) == resolved(model) else {
            throw TillerError.io(path: path, detail: "--llamacpp was measured on \(reference.model), not on --model \(model)")
        }
        return reference
    }

    /// The name a row shows for llama.cpp's side of a variant: "llama.cpp Q4_1 file", "llama.cpp F32".
    func label(_ variant: String) -> String? {
        guard let figures = variants[variant] else { return nil }
        return figures.type == "as given" ? "llama.cpp same file" : "llama.cpp \(figures.type)"
    }
}
