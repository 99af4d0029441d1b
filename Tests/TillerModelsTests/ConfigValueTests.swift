import Foundation
import Testing
import TillerCore
import TillerModels

/// config.json values that make no sense, and weights for more layers than the config says, are
/// one-line errors naming config.json and the key.
extension ModelLoadingErrorTests {
    @Test func nonsenseValuesNameTheKey() throws {
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("rope_theta", { $0["rope_theta"] = -1 }),
            ("rope_theta", { $0["rope_theta"] = 0 }),
            ("rope_parameters.rope_theta", { c in
                var p = c["rope_parameters"] as! [String: Any]; p["rope_theta"] = -1; c["rope_parameters"] = p }),
            ("rope_parameters.factor", { c in
                var p = c["rope_parameters"] as! [String: Any]; p["factor"] = 0; c["rope_parameters"] = p }),
            ("rms_norm_eps", { $0["rms_norm_eps"] = -1e-5 }),
            ("max_position_embeddings", { $0["max_position_embeddings"] = 0 }),
            ("hidden_size", { $0["hidden_size"] = -64 }),
            ("layer_types", { $0["layer_types"] = ["full_attention"] }),
        ]
        for (key, edit) in cases {
            let message = loadError(try model(editing: edit))
            #expect(message.contains("config.json") && message.contains(key) && !message.contains("\n"), "\(key): \(message)")
        }
        // The unedited fixture loads.
        #expect(loadError(try model { _ in }) == "loaded")
    }

    @Test func weightsForMoreLayersThanTheConfigAreRefused() throws {
        let message = loadError(try model { $0["num_hidden_layers"] = 1 })
        #expect(message.contains("config.json") && message.contains("num_hidden_layers = 1") && message.contains("2 layers"), "\(message)")
    }
}
