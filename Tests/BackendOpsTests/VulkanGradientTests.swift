import Testing
import TillerCore
@testable import TillerVulkan

/// The Vulkan backward ops' host side: index values the host did not upload, and run-to-run
/// determinism (the suite's comparisons with the reference see neither).
@Suite(.enabled(if: SharedVulkan.backend != nil)) struct VulkanGradientTests {
    var vulkan: VulkanBackend { SharedVulkan.backend! }

    /// Indices a device op wrote are unknown to the host: scatterAddRows downloads them for its
    /// plan and skips values outside 0 ..< N (as the shaders skip bad device-made indices).
    @Test func scatterAddRowsWithIndicesTheDeviceWrote() throws {
        let (n, d) = (5, 3)
        let indices: [Int32] = [4, 1, 9, 1, -3, 0]  // 9 and -3 only the device could have made
        var rng = caseRNG("scatterAddRows device indices")
        let gradOut = rng.uniforms(indices.count * d), initial = rng.uniforms(n * d)
        var expected = initial
        for (m, i) in indices.enumerated() where i >= 0 && Int(i) < n {
            for c in 0..<d { expected[Int(i) * d + c] += gradOut[m * d + c] }
        }
        let (result, validation) = try exclusively(vulkan) { () -> [Float] in
            let uploaded = try vulkan.tensor(ints: indices, shape: [indices.count])
            let written = try vulkan.empty([indices.count], .i32)
            try vulkan.copy(uploaded, to: written)
            #expect(vulkan.knownIndices(written) == nil)
            let dx = try vulkan.tensor(initial, shape: [n, d])
            try vulkan.scatterAddRows(try vulkan.tensor(gradOut, shape: [indices.count, d]), indices: written, into: dx)
            return try vulkan.floats(dx)
        }
        #expect(validation.isEmpty, "\(validation)")
        #expect(zip(result, expected).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) }, "\(result) vs \(expected)")
    }

    /// Sums over rows run in a fixed order: the same inputs give the same bits.
    @Test func backwardIsDeterministic() throws {
        var rng = caseRNG("vulkan backward determinism")
        let (b, t, hq, hkv, d) = (2, 37, 4, 2, 16)
        let qs = rng.uniforms(b * t * hq * d, -1, 1), ks = rng.uniforms(b * t * hkv * d, -1, 1)
        let vs = rng.uniforms(b * t * hkv * d, -1, 1), gs = rng.uniforms(b * t * hq * d, -1, 1)
        let (n, dim, heads) = (300, 40, 3)
        let h = rng.uniforms(n * dim), w = rng.uniforms(heads * dim, -0.5, 0.5), z = rng.uniforms(heads * dim)
        let index = (0..<n).map { _ in Int32(rng.int(-1..<heads)) }, alpha = rng.uniforms(n, 0.2, 2), g = rng.uniforms(n * dim)
        func run() throws -> [[Float]] {
            let (outputs, validation) = try exclusively(vulkan) { () -> [[Float]] in
                let q = try vulkan.tensor(qs, shape: [b, t, hq, d]), gradOut = try vulkan.tensor(gs, shape: [b, t, hq, d])
                let k = try vulkan.tensor(ks, shape: [b, t, hkv, d]), v = try vulkan.tensor(vs, shape: [b, t, hkv, d])
                let dq = try vulkan.empty([b, t, hq, d]), dk = try vulkan.empty([b, t, hkv, d]), dv = try vulkan.empty([b, t, hkv, d])
                try vulkan.attentionBackward(q: q, k: k, v: v, batch: SequenceBatch(lengths: [t, t - 5]),
                                             options: AttentionOptions(scale: 0.25, softcap: 5), gradOut: gradOut,
                                             gradQ: dq, gradK: dk, gradV: dv)
                let psr = PSRHeads(w: try vulkan.tensor(w, shape: [heads, dim]), bias: try vulkan.tensor([0.1, -0.1, 0.2], shape: [heads]),
                                   z: try vulkan.tensor(z, shape: [heads, dim]),
                                   activation: try vulkan.tensor(ints: [0, 1, 2], shape: [heads]))
                let gradient = try vulkan.tensor(g, shape: [n, dim])
                let grads = PSRHeadGradients(w: try vulkan.empty([heads, dim]), bias: try vulkan.empty([heads]), z: try vulkan.empty([heads, dim]))
                try vulkan.psrHeadBackward(try vulkan.tensor(h, shape: [n, dim]), heads: psr,
                                           headIndex: try vulkan.tensor(ints: index, shape: [n]),
                                           alpha: try vulkan.tensor(alpha, shape: [n]), gradLambda: nil,
                                           gradient: gradient, gradients: grads)
                return try [dq, dk, dv, gradient, grads.w, grads.bias, grads.z].map { try vulkan.floats($0) }
            }
            #expect(validation.isEmpty, "\(validation)")
            return outputs
        }
        let first = try run(), second = try run()
        for (a, b) in zip(first, second) { #expect(a.map(\.bitPattern) == b.map(\.bitPattern)) }
    }
}
