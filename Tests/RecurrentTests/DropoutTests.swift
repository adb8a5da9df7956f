import Testing
@testable import Recurrent

@Suite struct DropoutTests {
    @Test func maskIsInvertedAndReproducible() {
        let x = Tensor(shape: [1000], repeating: 2)
        var r1 = SeededRNG(seed: 4), r2 = SeededRNG(seed: 4)
        let (y, mask) = Dropout.forward(x, p: 0.25, rng: &r1)
        #expect(mask == Dropout.forward(x, p: 0.25, rng: &r2).mask)
        #expect(mask.allSatisfy { $0 == 0 || abs($0 - 4.0 / 3.0) < 1e-6 })
        let kept = mask.filter { $0 != 0 }.count
        #expect(kept > 700 && kept < 800)
        for i in 0..<x.count { #expect(y.data[i] == 2 * mask[i]) }
    }

    @Test func zeroProbabilityIsIdentity() {
        var rng = SeededRNG(seed: 5)
        let x = Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        let before = rng
        let (y, mask) = Dropout.forward(x, p: 0, rng: &rng)
        #expect(y == x && mask.allSatisfy { $0 == 1 })
        var a = before
        #expect(a.next() == rng.next(), "p = 0 draws nothing")
        #expect(Dropout.forward(x, p: 1, rng: &rng).output == Tensor(shape: [2, 3]))
    }

    @Test func gradientMatchesFiniteDifferencesWithFixedMask() {
        var rng = SeededRNG(seed: 6)
        var x = GradCheck.random([3, 4], rng: &rng)
        let w = GradCheck.random([3, 4], rng: &rng)
        let (_, mask) = Dropout.forward(x, p: 0.5, rng: &rng)
        let dx = Dropout.backward(w, mask: mask)
        let c = GradCheck.worst(analytic: dx.data, read: { x.data[$0] }, write: { x.data[$0] = $1 }, loss: {
            var out = x
            for i in 0..<out.count { out.data[i] *= mask[i] }
            return GradCheck.dot(out, w)
        })
        #expect(c.ratio <= 1, "max abs error \(c.maxAbs)")
    }
}
