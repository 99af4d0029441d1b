import TillerCore

extension ModelConfig {
    /// The floating-point and remaining size values: a value that makes no sense (rope_theta
    /// -1 gives NaN frequencies, a zero soft-cap divides by zero) is an error naming config.json
    /// and the key, not a model that quietly computes garbage.
    func validateValues(path: String) throws {
        func fail(_ key: String, _ value: Any, _ rule: String) -> TillerError {
            .io(path: path, detail: "\(key) = \(value) must be \(rule)")
        }
        func positive(_ key: String, _ value: Double?) throws {
            if let value, !(value.isFinite && value > 0) { throw fail(key, value, "a positive number") }
        }
        try positive("rope_theta", ropeTheta)
        try positive("rope_parameters.rope_theta", ropeParameters?.ropeTheta)
        try positive("rope_local_base_freq", ropeLocalBaseFreq)
        // Gemma 3's rope_parameters nested by layer type: each set checked as the flat one is.
        let nested = (ropeParameters?.byLayerType ?? [:]).sorted { $0.key < $1.key }.map { ("rope_parameters.\($0.key)", Optional($0.value)) }
        for (name, scaling) in [("rope_scaling", ropeScaling), ("rope_parameters", ropeParameters)] + nested {
            guard let scaling else { continue }
            if name != "rope_parameters" { try positive("\(name).rope_theta", scaling.ropeTheta) }
            try positive("\(name).factor", scaling.factor)
            try positive("\(name).low_freq_factor", scaling.lowFreqFactor)
            try positive("\(name).high_freq_factor", scaling.highFreqFactor)
            try positive("\(name).original_max_position_embeddings", scaling.originalMaxPositionEmbeddings)
        }
        if let eps = rmsNormEps, !(eps.isFinite && eps >= 0) { throw fail("rms_norm_eps", eps, "a non-negative number") }
        try positive("query_pre_attn_scalar", queryPreAttnScalar)
        try positive("attn_logit_softcapping", attnLogitSoftcapping)
        try positive("final_logit_softcapping", finalLogitSoftcapping)
        if let n = maxPositionEmbeddings, n <= 0 { throw fail("max_position_embeddings", n, "positive") }
        if let n = maxWindowLayers, n < 0 { throw fail("max_window_layers", n, ">= 0") }
        if let n = slidingWindowPattern, n <= 0 { throw fail("sliding_window_pattern", n, "positive") }
        if let types = layerTypes, types.count != numHiddenLayers {
            throw TillerError.io(path: path, detail: "layer_types lists \(types.count) layers, num_hidden_layers is \(numHiddenLayers)")
        }
    }
}
