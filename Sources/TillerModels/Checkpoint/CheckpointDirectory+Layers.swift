import TillerCore

extension CheckpointDirectory {
    /// Refuses weights for more layers than config.json's num_hidden_layers (fewer already fail
    /// at the first missing tensor): the extra layers would be skipped silently, giving another
    /// model than the checkpoint holds.
    func checkLayerCount(_ count: Int, configPath: String) throws {
        let prefix = textModelPrefix() + "layers."
        var layers = 0
        for name in tensorNames where name.hasPrefix(prefix) {
            if let index = Int(name.dropFirst(prefix.count).prefix { $0 != "." }) { layers = max(layers, index + 1) }
        }
        guard layers <= count else {
            throw TillerError.io(path: configPath,
                                 detail: "num_hidden_layers = \(count), but the weights hold \(layers) layers (\(prefix)0 to \(prefix)\(layers - 1))")
        }
    }
}
