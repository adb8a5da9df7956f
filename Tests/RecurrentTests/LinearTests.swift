import Testing
@testable import Recurrent

@Suite struct LinearTests {
    @Test func computesAffineMap() {
        var rng = SeededRNG(seed: 1)
        let l = Linear(inputSize: 2, outputSize: 3, rng: &rng)
        #expect(l.parameters.map(\.name) == ["weight", "bias"])
        l.weight.value = Tensor(shape: [3, 2], data: [1, 2, 3, 4, 5, 6])
        l.bias.value = Tensor(shape: [3], data: [0.5, -1, 0])
        let y = l.forward(Tensor(shape: [1, 2, 2], data: [1, 1, 2, -1]))
        #expect(y.shape == [1, 2, 3])
        #expect(y.data == [3.5, 6, 11, 0.5, 1, 4])
    }

    @Test func initialisationBound() {
        var rng = SeededRNG(seed: 2)
        let l = Linear(inputSize: 16, outputSize: 40, rng: &rng)
        for p in l.parameters {
            #expect(p.value.data.allSatisfy { abs($0) <= 0.25 })
            #expect(p.value.data.contains { abs($0) > 0.2 })
        }
    }

    @Test func gradientsMatchFiniteDifferences() {
        var rng = SeededRNG(seed: 3)
        let l = Linear(inputSize: 4, outputSize: 3, rng: &rng)
        var x = GradCheck.random([2, 5, 4], rng: &rng)
        let w = GradCheck.random([2, 5, 3], rng: &rng)
        func loss() -> Double { GradCheck.dot(l.forward(x), w) }
        let dx = l.backward(w, input: x)
        #expect(dx.shape == x.shape)
        let cx = GradCheck.worst(analytic: dx.data, read: { x.data[$0] }, write: { x.data[$0] = $1 }, loss: loss)
        #expect(cx.ratio <= 1, "dx max abs error \(cx.maxAbs)")
        for p in l.parameters {
            let c = GradCheck.parameter(p, loss: loss)
            #expect(c.ratio <= 1, "\(p.name) max abs error \(c.maxAbs)")
        }
    }
}
