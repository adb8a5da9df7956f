import Foundation
import Testing
@testable import Recurrent

/// A parameter with the given weights and gradient.
private func param(_ name: String, _ w: [Float], grad g: [Float]) -> Parameter {
    let p = Parameter(name: name, value: Tensor(shape: [w.count], data: w))
    p.grad = Tensor(shape: [g.count], data: g)
    return p
}

private func expectClose(_ a: [Float], _ b: [Double], tol: Double = 1e-6, _ label: String = "") {
    #expect(a.count == b.count, "\(label)")
    for (x, y) in zip(a, b) {
        #expect(abs(Double(x) - y) <= tol * max(1, abs(y)), "\(label): \(x) vs \(y)")
    }
}

@Suite struct OptimizerTests {
    // MARK: PyTorch fixture

    @Test func adamMatchesTorchOverThreeSteps() throws {
        let f = try SafeTensors.read(path: Fixtures.torch("adam_and_clip.safetensors"))
        let t = f.tensors
        let w0 = try #require(t["w0"]), w3 = try #require(t["w3"])
        let grads = try [t["g0"], t["g1"], t["g2"]].map { try #require($0) }
        let p = Parameter(name: "w", value: w0)
        // Hyperparameters from adam_and_clip.json.
        let adam = Adam(learningRate: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8)
        for g in grads {
            p.grad = g
            adam.step([p])
        }
        let err = p.value.maxAbsDifference(w3)
        print("adam_and_clip: Adam w3 max abs error \(err)")
        #expect(err <= 1e-6)
    }

    /// The vectorised update (C, every ISA path, split over threads for large tensors) against the
    /// scalar formula in Swift, element for element and bit for bit: both branches of lerp,
    /// weight decay, and moments that flush to zero.
    @Test(arguments: [(Float(0.9), Float(0)), (0.3, 0.01)])
    func adamIsTheScalarFormulaBitForBit(beta1: Float, weightDecay: Float) {
        var rng = SeededRNG(seed: 9)
        // Every 7th gradient 0: those moments decay towards subnormal values and are flushed.
        let grads = (0..<3).map { _ in (0..<70_001).map { $0 % 7 == 0 ? Float(0) : rng.uniform(-1, 1) * 1e-3 } }
        expectScalarAdam(grads: grads, beta1: beta1, eps: 1e-8, weightDecay: weightDecay, flushing: true)
    }

    /// With eps 0 (or any eps too small to hide √FLT_MIN), subnormal moments are kept as PyTorch
    /// keeps them: a gradient of 1e-20 (second moment about 1e-43) moves a weight by about lr, where
    /// a flushed moment divided by zero and sent it to −inf.
    @Test(arguments: [Float(0), 1e-30])
    func adamKeepsSubnormalMomentsWhenEpsIsTiny(eps: Float) {
        #expect(!Adam.flushes(eps: eps, bc2Sqrt: 0.0316))
        #expect(Adam.flushes(eps: 1e-8, bc2Sqrt: 0.0316))
        var rng = SeededRNG(seed: 10)
        let grads = (0..<3).map { _ in (0..<1001).map { _ in (rng.uniform(0, 1) < 0.5 ? -1 : 1) * rng.uniform(0.5, 2) * 1e-20 } }
        let w = expectScalarAdam(grads: grads, beta1: 0.9, eps: eps, weightDecay: 0, flushing: false)
        #expect(w.allSatisfy { $0.isFinite })
        let p = param("w", [-0.183186], grad: [1e-20])
        Adam(learningRate: 0.01, eps: eps).step([p])
        #expect(abs(p.value.data[0] - -0.193211) < 1e-5, "torch: -0.193211, got \(p.value.data[0])")
    }

    /// Runs `Adam` over one tensor of `grads[0].count` weights for `grads.count` steps and expects
    /// bitwise the scalar formula, flushing moments below FLT_MIN or not; returns the weights.
    @discardableResult
    func expectScalarAdam(grads: [[Float]], beta1: Float, eps: Float, weightDecay: Float, flushing: Bool) -> [Float] {
        let n = grads[0].count
        var rng = SeededRNG(seed: 9)
        let w0 = (0..<n).map { _ in rng.uniform(-1, 1) }
        let beta2: Float = 0.999, lr: Float = 0.01
        var w = w0, m = [Float](repeating: 0, count: n), v = [Float](repeating: 0, count: n)
        let p = Parameter(name: "w", value: Tensor(shape: [n], data: w0))
        let adam = Adam(learningRate: lr, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
        for (step, g) in grads.enumerated() {
            p.grad = Tensor(shape: [n], data: g)
            adam.step([p])
            let t = Double(step + 1), b1 = decimalValue(beta1), b2 = decimalValue(beta2)
            let stepSize = Float(decimalValue(lr) / (1 - pow(b1, t)))
            let bc2 = Float((1 - pow(b2, t)).squareRoot()), w1 = Float(1 - b1), w2 = Float(1 - b2)
            for j in 0..<n {
                var gj = g[j]
                if weightDecay != 0 { gj = gj + weightDecay * w[j] }
                m[j] = lerp(m[j], gj, w1)
                v[j] = v[j] * beta2 + w2 * gj * gj
                if flushing && abs(m[j]) < Float.leastNormalMagnitude { m[j] = 0 }
                if flushing && v[j] < Float.leastNormalMagnitude { v[j] = 0 }
                w[j] = w[j] + (-stepSize) * m[j] / (v[j].squareRoot() / bc2 + eps)
            }
        }
        let mismatches = (0..<n).filter { p.value.data[$0].bitPattern != w[$0].bitPattern }.count
        #expect(mismatches == 0, "\(mismatches) of \(n) weights differ from the scalar formula (eps \(eps))")
        #expect(p.value.data != w0)
        return p.value.data
    }

    // MARK: SGD closed forms

    @Test func sgdPlainStep() {
        let p = param("w", [1, -2, 0.5], grad: [0.5, 1, -4])
        SGD(learningRate: 0.1).step([p])
        expectClose(p.value.data, [0.95, -2.1, 0.9])
        #expect(p.grad.data == [0.5, 1, -4], "step must not zero the gradient")
    }

    @Test func sgdWeightDecay() {
        let p = param("w", [1, -2], grad: [0.5, 1])
        SGD(learningRate: 0.1, weightDecay: 0.01).step([p])
        expectClose(p.value.data, [1 - 0.1 * (0.5 + 0.01), -2 - 0.1 * (1 - 0.02)])
    }

    @Test func sgdMomentumAndDampening() {
        // First step: buf = g (no dampening on the first step, as PyTorch); second: buf = mu*buf + (1-d)*g2.
        let g1: [Double] = [0.5, -1], g2: [Double] = [2, 3]
        for dampening in [0.0, 0.5] {
            let p = param("w", [1, 1], grad: g1.map(Float.init))
            let sgd = SGD(learningRate: 0.1, momentum: 0.9, dampening: Float(dampening))
            sgd.step([p])
            expectClose(p.value.data, [1 - 0.1 * 0.5, 1 + 0.1], "step 1")
            p.grad = Tensor(shape: [2], data: g2.map(Float.init))
            sgd.step([p])
            let buf = (0..<2).map { (i: Int) -> Double in 0.9 * g1[i] + (1 - dampening) * g2[i] }
            expectClose(p.value.data, (0..<2).map { (i: Int) -> Double in 1 - 0.1 * g1[i] - 0.1 * buf[i] }, "step 2, dampening \(dampening)")
        }
    }

    @Test func sgdNesterov() {
        let g1: [Double] = [0.5, -1], g2: [Double] = [2, 3]
        let p = param("w", [1, 1], grad: g1.map(Float.init))
        let sgd = SGD(learningRate: 0.1, momentum: 0.9, nesterov: true)
        sgd.step([p])
        let w1 = (0..<2).map { (i: Int) -> Double in 1 - 0.1 * (g1[i] + 0.9 * g1[i]) }
        expectClose(p.value.data, w1, "step 1")
        p.grad = Tensor(shape: [2], data: g2.map(Float.init))
        sgd.step([p])
        let buf = (0..<2).map { (i: Int) -> Double in 0.9 * g1[i] + g2[i] }
        expectClose(p.value.data, (0..<2).map { (i: Int) -> Double in w1[i] - 0.1 * (g2[i] + 0.9 * buf[i]) }, "step 2")
    }

    // MARK: RMSprop closed forms

    @Test func rmspropPlainStep() {
        let g: [Double] = [0.5, -2, 1e-3]
        let p = param("w", [1, 1, 1], grad: g.map(Float.init))
        RMSprop(learningRate: 0.01, alpha: 0.99, eps: 1e-8).step([p])
        let expected = g.map { 1 - 0.01 * $0 / ((0.01 * $0 * $0).squareRoot() + 1e-8) }
        expectClose(p.value.data, expected)
        // sqrt(1 - alpha) = 0.1, so the first step is about 10·lr·sign(g).
        #expect(abs(p.value.data[1] - 1.1) < 1e-5)
    }

    @Test func rmspropCentered() {
        let g1: [Double] = [0.5, -2], g2: [Double] = [1, 1]
        let p = param("w", [0, 0], grad: g1.map(Float.init))
        let opt = RMSprop(learningRate: 0.01, alpha: 0.9, eps: 1e-8, centered: true)
        opt.step([p])
        var v = g1.map { 0.1 * $0 * $0 }, a = g1.map { 0.1 * $0 }
        var w = (0..<2).map { (i: Int) -> Double in -0.01 * g1[i] / ((v[i] - a[i] * a[i]).squareRoot() + 1e-8) }
        expectClose(p.value.data, w, tol: 1e-5, "step 1")
        p.grad = Tensor(shape: [2], data: g2.map(Float.init))
        opt.step([p])
        v = (0..<2).map { (i: Int) -> Double in 0.9 * v[i] + 0.1 * g2[i] * g2[i] }
        a = (0..<2).map { (i: Int) -> Double in 0.9 * a[i] + 0.1 * g2[i] }
        w = (0..<2).map { (i: Int) -> Double in w[i] - 0.01 * g2[i] / ((v[i] - a[i] * a[i]).squareRoot() + 1e-8) }
        expectClose(p.value.data, w, tol: 1e-5, "step 2")
    }

    @Test func rmspropMomentumAndWeightDecay() {
        let w0: [Double] = [1, -1], g1: [Double] = [0.5, -2], g2: [Double] = [1, 1]
        let p = param("w", w0.map(Float.init), grad: g1.map(Float.init))
        let opt = RMSprop(learningRate: 0.01, alpha: 0.99, eps: 1e-8, weightDecay: 0.1, momentum: 0.5)
        opt.step([p])
        var gd = (0..<2).map { (i: Int) -> Double in g1[i] + 0.1 * w0[i] }
        var v = gd.map { 0.01 * $0 * $0 }
        var buf = (0..<2).map { (i: Int) -> Double in gd[i] / (v[i].squareRoot() + 1e-8) }
        var w = (0..<2).map { (i: Int) -> Double in w0[i] - 0.01 * buf[i] }
        expectClose(p.value.data, w, tol: 1e-5, "step 1")
        p.grad = Tensor(shape: [2], data: g2.map(Float.init))
        opt.step([p])
        gd = (0..<2).map { (i: Int) -> Double in g2[i] + 0.1 * w[i] }
        v = (0..<2).map { (i: Int) -> Double in 0.99 * v[i] + 0.01 * gd[i] * gd[i] }
        buf = (0..<2).map { (i: Int) -> Double in 0.5 * buf[i] + gd[i] / (v[i].squareRoot() + 1e-8) }
        w = (0..<2).map { (i: Int) -> Double in w[i] - 0.01 * buf[i] }
        expectClose(p.value.data, w, tol: 1e-5, "step 2")
    }

    // MARK: Adam closed forms

    @Test func adamFirstStepIsLearningRateTimesSign() {
        let p = param("w", [1, 1, 1, 1], grad: [3, -0.02, 1e-4, -50])
        Adam(learningRate: 0.01).step([p])
        expectClose(p.value.data, [0.99, 1.01, 0.99, 1.01], tol: 1e-5)
    }

    /// One step over many tensors (one parallel job over all their elements, shares crossing the
    /// tensors' edges) gives each tensor the bits of a step over it alone.
    @Test func adamOverManyTensorsIsEachAlone() {
        var rng = SeededRNG(seed: 21)
        let sizes = [3, 70_001, 17, 40_000, 1, 65_536]
        func make() -> [Parameter] {
            var r = SeededRNG(seed: 4)
            return sizes.enumerated().map { i, n in param("p\(i)", (0..<n).map { _ in r.uniform(-1, 1) }, grad: [Float](repeating: 0, count: n)) }
        }
        let together = make(), alone = make()
        let adam = Adam(learningRate: 0.01), each = sizes.map { _ in Adam(learningRate: 0.01) }
        for _ in 0..<2 {
            for (i, n) in sizes.enumerated() {
                let g = Tensor(shape: [n], data: (0..<n).map { _ in rng.uniform(-1, 1) })
                together[i].grad = g
                alone[i].grad = g
            }
            adam.step(together)
            for (i, p) in alone.enumerated() { each[i].step([p]) }
        }
        for i in sizes.indices { #expect(together[i].value.data == alone[i].value.data, "tensor \(i)") }
    }

    /// A parameter listed twice is updated twice within the step, both times with its count.
    @Test func adamUpdatesAParameterListedTwiceTwice() {
        let p = param("w", [1, 1], grad: [3, -0.5])
        Adam(learningRate: 0.01).step([p, p])
        // Second update at t = 1: m = 0.19·g, v = 0.001999·g², so the step is lr·1.9/√1.999.
        let moved = 0.01 * (1 + 1.9 / 1.999.squareRoot())
        expectClose(p.value.data, [1 - moved, 1 + moved], tol: 1e-5)
    }

    @Test func adamWeightDecayIsL2() {
        // g' = g + wd·w, so with g = 0 the first step follows sign(w).
        let p = param("w", [2, -3], grad: [0, 0])
        Adam(learningRate: 0.1, weightDecay: 0.5).step([p])
        expectClose(p.value.data, [1.9, -2.9], tol: 1e-5)
    }

    @Test func adamSecondStepClosedForm() {
        let g1: [Double] = [1, -2], g2: [Double] = [-0.5, 0.25]
        let p = param("w", [0, 0], grad: g1.map(Float.init))
        let adam = Adam(learningRate: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8)
        adam.step([p])
        p.grad = Tensor(shape: [2], data: g2.map(Float.init))
        adam.step([p])
        let expected = (0..<2).map { i -> Double in
            let step1 = 0.01 * g1[i] / (abs(g1[i]) + 1e-8)
            let m = 0.9 * 0.1 * g1[i] + 0.1 * g2[i]
            let v = 0.999 * 0.001 * g1[i] * g1[i] + 0.001 * g2[i] * g2[i]
            let mHat = m / (1 - 0.81), vHat = v / (1 - 0.999 * 0.999)
            return -step1 - 0.01 * mHat / (vHat.squareRoot() + 1e-8)
        }
        expectClose(p.value.data, expected, tol: 1e-6)
    }

    // MARK: Convergence with the optimizer passed in

    /// Minimises the least-squares loss ½·mean((A·w - b)²) on a fixed, mildly ill-conditioned
    /// problem whose minimum is 0, using exactly the optimizer given. Returns the final loss and
    /// the weights after every step.
    private func leastSquares(_ optimizer: any Optimizer, steps: Int) -> (loss: Float, trajectory: [[Float]]) {
        let n = 12, d = 4
        var rng = SeededRNG(seed: 7)
        var a = [Float](repeating: 0, count: n * d)
        for i in 0..<n { for j in 0..<d { a[i * d + j] = rng.normal() * Float(j + 1) / 2 } }
        let target: [Float] = [0.5, -1, 2, 0.25]
        let b = (0..<n).map { i in (0..<d).reduce(Float(0)) { $0 + a[i * d + $1] * target[$1] } }
        let w = Parameter(name: "w", value: Tensor(shape: [d]))

        func lossAndGrad() -> Float {
            w.grad.zero()
            var loss: Float = 0
            for i in 0..<n {
                var r = -b[i]
                for j in 0..<d { r += a[i * d + j] * w.value.data[j] }
                loss += 0.5 * r * r / Float(n)
                for j in 0..<d { w.grad.data[j] += r * a[i * d + j] / Float(n) }
            }
            return loss
        }
        var trajectory: [[Float]] = []
        for _ in 0..<steps {
            _ = lossAndGrad()
            optimizer.step([w])
            trajectory.append(w.value.data)
        }
        return (lossAndGrad(), trajectory)
    }

    @Test func sgdMomentumConverges() {
        let start = leastSquares(SGD(learningRate: 0.05, momentum: 0.9), steps: 0).loss
        let (loss, _) = leastSquares(SGD(learningRate: 0.05, momentum: 0.9), steps: 400)
        #expect(start > 1)
        #expect(loss < 1e-6, "SGD+momentum final loss \(loss)")
    }

    @Test func rmspropConverges() {
        let opt = RMSprop(learningRate: 0.01)
        let (loss, _) = leastSquares(opt, steps: 800)
        #expect(loss < 1e-3, "RMSprop final loss \(loss)")
    }

    @Test func adamConverges() {
        let (loss, _) = leastSquares(Adam(learningRate: 0.05), steps: 800)
        #expect(loss < 1e-6, "Adam final loss \(loss)")
    }

    @Test func optimizersFollowDifferentTrajectories() {
        let runs: [(String, any Optimizer)] = [
            ("sgd", SGD(learningRate: 0.05)),
            ("sgd-momentum", SGD(learningRate: 0.05, momentum: 0.9)),
            ("sgd-nesterov", SGD(learningRate: 0.05, momentum: 0.9, nesterov: true)),
            ("rmsprop", RMSprop(learningRate: 0.05)),
            ("rmsprop-centered", RMSprop(learningRate: 0.05, centered: true)),
            ("adam", Adam(learningRate: 0.05)),
        ]
        let paths = runs.map { ($0.0, leastSquares($0.1, steps: 5).trajectory) }
        for i in 0..<paths.count {
            for j in (i + 1)..<paths.count {
                let a = paths[i].1.joined(), b = paths[j].1.joined()
                let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
                #expect(diff > 1e-3, "\(paths[i].0) and \(paths[j].0) took the same path")
            }
        }
    }

    @Test func hyperparametersReadAsTheirDecimals() {
        #expect(decimalValue(0.9) == 0.9)
        #expect(decimalValue(0.999) == 0.999)
        #expect(decimalValue(1e-8) == 1e-8)
        #expect(Float(1 - decimalValue(0.99)) == Float(0.01))
    }

    @Test func learningRateCanBeChangedBetweenSteps() {
        let p = param("w", [0], grad: [1])
        let sgd = SGD(learningRate: 0.1)
        sgd.step([p])
        sgd.learningRate = 0.01
        sgd.step([p])
        expectClose(p.value.data, [-0.11])
    }

    // MARK: Resumable state

    /// Makes two parameters and a deterministic gradient that depends on the weights.
    private func model() -> [Parameter] {
        [Parameter(name: "weight", value: Tensor(shape: [2, 3], data: [0.1, -0.2, 0.3, 0.4, -0.5, 0.6])),
         Parameter(name: "bias", value: Tensor(shape: [3], data: [1, 0, -1]))]
    }

    private func setGrads(_ ps: [Parameter]) {
        for p in ps {
            for j in 0..<p.value.count {
                let w = p.value.data[j]
                p.grad.data[j] = 2 * (w - 0.3) + Float(sin(Double(j) + Double(w) * 3))
            }
        }
    }

    private func roundTrip(_ make: () -> any Optimizer, slots: [String]) throws {
        let a = model(), optA = make()
        for _ in 0..<2 { setGrads(a); optA.step(a) }
        let saved = optA.stateTensors(for: a)
        let names = saved.map(\.0)
        #expect(names.contains("optim.step"))
        for slot in slots { #expect(names.contains("optim.0.\(slot)") && names.contains("optim.1.\(slot)"), "\(slot) in \(names)") }
        #expect(saved.first { $0.0 == "optim.step" }?.1.data == [2])

        // A fresh model and optimizer, restored from the saved weights and state.
        let b = model(), optB = make()
        for (p, q) in zip(b, a) { p.value = q.value }
        try optB.loadState(Dictionary(uniqueKeysWithValues: saved), for: b)
        setGrads(a); optA.step(a)
        setGrads(b); optB.step(b)
        for (p, q) in zip(a, b) { #expect(p.value == q.value, "\(p.name) differs after resuming") }

        // Without the state the next step differs (so the test above is not vacuous).
        let c = model(), optC = make()
        for (p, q) in zip(c, a) { p.value = q.value }
        setGrads(c); optC.step(c)
        setGrads(a); optA.step(a)
        #expect(zip(a, c).contains { $0.value != $1.value })
    }

    @Test func sgdStateRoundTrip() throws {
        try roundTrip({ SGD(learningRate: 0.1, momentum: 0.9, dampening: 0.1) }, slots: ["momentum_buffer"])
    }

    @Test func rmspropStateRoundTrip() throws {
        try roundTrip({ RMSprop(learningRate: 0.01, weightDecay: 0.01, momentum: 0.5, centered: true) },
                      slots: ["square_avg", "grad_avg", "momentum_buffer"])
    }

    @Test func adamStateRoundTrip() throws {
        try roundTrip({ Adam(learningRate: 0.01, weightDecay: 0.001) }, slots: ["exp_avg", "exp_avg_sq"])
    }

    @Test func loadStateRejectsMissingOrMisshapedTensors() throws {
        let ps = model()
        let adam = Adam()
        setGrads(ps); adam.step(ps)
        let good = Dictionary(uniqueKeysWithValues: adam.stateTensors(for: ps))

        var noStep = good; noStep["optim.step"] = nil
        #expect(throws: RecurrentError("optimizer state: missing optim.step")) { try Adam().loadState(noStep, for: ps) }

        var missing = good; missing["optim.1.exp_avg_sq"] = nil
        #expect(throws: RecurrentError("optimizer state: missing optim.1.exp_avg_sq (for bias, shape [3])")) {
            try Adam().loadState(missing, for: ps)
        }

        var misshaped = good; misshaped["optim.0.exp_avg"] = Tensor(shape: [6])
        #expect(throws: RecurrentError("optimizer state: optim.0.exp_avg has shape [6] but weight has shape [2, 3]")) {
            try Adam().loadState(misshaped, for: ps)
        }

        #expect(throws: RecurrentError.self) { try Adam().loadState(good, for: [ps[0]]) }
        var badStep = good; badStep["optim.step"] = Tensor(shape: [1], data: [-1])
        #expect(throws: RecurrentError.self) { try Adam().loadState(badStep, for: ps) }

        // A fresh optimizer's state (step 0, no buffers) loads anywhere.
        let fresh = Dictionary(uniqueKeysWithValues: SGD(learningRate: 1, momentum: 0.9).stateTensors(for: ps))
        #expect(fresh.keys.sorted() == ["optim.step"])
        try SGD(learningRate: 1, momentum: 0.9).loadState(fresh, for: ps)
    }

    /// Models with more tensors than are held at once (3,000 layers crashed the stack before).
    @Test func thousandsOfTensorsAreClippedAndUpdatedLikeAFew() {
        let n = 2 * GradientClipping.heldAtOnce + 37
        func make() -> [Parameter] {
            (0..<n).map { i in
                let p = Parameter(name: "p\(i)", value: Tensor(shape: [2], data: [Float(i), -1]))
                p.grad.data = [Float(i % 7) - 3, 0.5]
                return p
            }
        }
        let many = make()
        let expected = (0..<n).reduce(0.0) { $0 + pow(Double($1 % 7) - 3, 2) + 0.25 }.squareRoot()
        #expect(abs(Double(GradientClipping.globalNorm(many)) - expected) < 1e-4 * expected)
        Adam(learningRate: 0.1).step(many)
        // Each tensor alone gives the same update.
        let single = make()
        for p in single { Adam(learningRate: 0.1).step([p]) }
        #expect(zip(many, single).allSatisfy { $0.value.data == $1.value.data })
        #expect(many[300].value.data[1] != -1)
    }
}
