import Testing
@testable import Recurrent

@Suite struct EmbeddingTests {
    @Test func looksUpRows() {
        var rng = SeededRNG(seed: 1)
        let e = Embedding(count: 5, dimension: 3, rng: &rng)
        #expect(e.parameters.map(\.name) == ["weight"] && e.weight.shape == [5, 3])
        let y = e.forward([4, 0, 4, 2], shape: [2, 2])
        #expect(y.shape == [2, 2, 3])
        for (n, v) in [4, 0, 4, 2].enumerated() {
            #expect(Array(y.data[n * 3 ..< n * 3 + 3]) == Array(e.weight.value.data[v * 3 ..< v * 3 + 3]))
        }
    }

    @Test func initialisationIsStandardNormal() {
        var rng = SeededRNG(seed: 2)
        let e = Embedding(count: 100, dimension: 50, rng: &rng)
        let d = e.weight.value.data
        let mean = d.reduce(0, +) / Float(d.count)
        let variance = d.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(d.count)
        #expect(abs(mean) < 0.05 && abs(variance - 1) < 0.05)
    }

    @Test func gradientMatchesFiniteDifferences() {
        var rng = SeededRNG(seed: 3)
        let e = Embedding(count: 4, dimension: 3, rng: &rng)
        let indices: [Int32] = [1, 3, 1, 0, 1]  // repeated index: gradients must add up
        let w = GradCheck.random([5, 3], rng: &rng)
        e.backward(w, indices: indices)
        e.backward(w, indices: indices)  // accumulates
        let check = GradCheck.worst(analytic: e.weight.grad.data.map { $0 / 2 }, read: { e.weight.value.data[$0] },
                                    write: { e.weight.value.data[$0] = $1 },
                                    loss: { GradCheck.dot(e.forward(indices, shape: [5]), w) })
        #expect(check.ratio <= 1, "max abs error \(check.maxAbs)")
        #expect(e.weight.grad.data[6 ..< 9].allSatisfy { $0 == 0 }, "row 2 was never looked up")
    }
}
