import Foundation
import Testing
import CKernels
@testable import Recurrent

@Suite struct RecurrentLayerTests {
    // MARK: Parity with PyTorch

    struct Case {
        let kind: CellKind
        let layer: RecurrentLayer
        let tensors: [String: Tensor]
        let lengths: [Int]?
    }

    static func load(_ name: String) throws -> Case {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.torch(name + ".json"))))
        guard let info = json as? [String: Any], let cell = info["cell"] as? String, let kind = CellKind(name: cell),
              let D = info["input_size"] as? Int, let H = info["hidden_size"] as? Int, let L = info["num_layers"] as? Int else {
            throw RecurrentError("\(name).json: unexpected layout")
        }
        let file = try SafeTensors.read(path: Fixtures.torch(name + ".safetensors"))
        var rng = SeededRNG(seed: 1)
        let layer = RecurrentLayer(kind: kind, inputSize: D, hiddenSize: H, numLayers: L,
                                   bidirectional: info["bidirectional"] as? Bool ?? false, rng: &rng)
        #expect(layer.parameters.count == file.tensors.keys.filter { $0.hasPrefix("rnn.") && !$0.hasSuffix(".f64") }.count)
        for p in layer.parameters {
            guard let t = file.tensors["rnn." + p.name] else { throw RecurrentError("\(name): no rnn.\(p.name)") }
            #expect(t.shape == p.shape, "\(p.name)")
            p.value = t
        }
        return Case(kind: kind, layer: layer, tensors: file.tensors, lengths: info["packed_lengths"] as? [Int])
    }

    @Test(arguments: ["lstm_2layer", "gru_2layer", "rnn_tanh_2layer", "rnn_relu_1layer", "lstm_packed",
                            "lstm_bidirectional", "gru_bidirectional", "gru_packed_bidirectional"])
    func matchesPyTorch(name: String) throws {
        let c = try Self.load(name)
        func t(_ key: String) throws -> Tensor {
            guard let v = c.tensors[key] else { throw RecurrentError("\(name): no \(key)") }
            return v
        }
        let x = try t("x"), h0 = try t("h0")
        let c0 = c.kind.hasCellState ? try t("c0") : nil
        var rng = SeededRNG(seed: 7)
        let (out, state, cache) = c.layer.forward(x, state: RecurrentState(hidden: h0, cell: c0), mode: .training,
                                                  rng: &rng, lengths: c.lengths)
        var errors: [String: Float] = [:]
        errors["out"] = out.maxAbsDifference(try t("out"))
        errors["h_n"] = state.hidden.maxAbsDifference(try t("h_n"))
        var loss = GradCheck.dot(out, try t("loss_weight_out")) + GradCheck.dot(state.hidden, try t("loss_weight_h_n"))
        var dCell: Tensor?
        if let cell = state.cell {
            errors["c_n"] = cell.maxAbsDifference(try t("c_n"))
            dCell = try t("loss_weight_c_n")
            loss += GradCheck.dot(cell, try t("loss_weight_c_n"))
        }
        errors["loss"] = abs(Float(loss) - (try t("loss")).data[0])
        guard let cache else { Issue.record("no cache in training mode"); return }
        let (dx, dInitial) = c.layer.backward(dOutput: try t("loss_weight_out"),
                                              dState: RecurrentState(hidden: try t("loss_weight_h_n"), cell: dCell), cache: cache)
        errors["grad.x"] = dx.maxAbsDifference(try t("grad.x"))
        errors["grad.h0"] = dInitial.hidden.maxAbsDifference(try t("grad.h0"))
        if let dc0 = dInitial.cell { errors["grad.c0"] = dc0.maxAbsDifference(try t("grad.c0")) }
        for p in c.layer.parameters { errors["grad.rnn." + p.name] = p.grad.maxAbsDifference(try t("grad.rnn." + p.name)) }
        let worst = errors.values.max() ?? 0
        print("parity \(name): max abs error \(worst) \(errors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })")
        for (key, e) in errors { #expect(e < 1e-4, "\(name) \(key): \(e)") }
    }

    // MARK: Finite differences

    /// Checks dInput, dInitialState and every parameter of a 2-layer stack against central differences.
    func gradientCheck(kind: CellKind, dropout: Float = 0, lengths: [Int]? = nil, bidirectional: Bool = false) {
        let B = 2, T = 3, D = 3, H = 4, L = 2, R = bidirectional ? 2 : 1
        var rng = SeededRNG(seed: 42)
        let layer = RecurrentLayer(kind: kind, inputSize: D, hiddenSize: H, numLayers: L, dropout: dropout,
                                   bidirectional: bidirectional, rng: &rng)
        // Larger weights than the default init so the nonlinearities are exercised away from 0.
        for p in layer.parameters { p.value = GradCheck.random(p.shape, scale: 0.8, rng: &rng) }
        var x = GradCheck.random([B, T, D], rng: &rng)
        var h0 = GradCheck.random([L * R, B, H], scale: 0.5, rng: &rng)
        var c0: Tensor? = kind.hasCellState ? GradCheck.random([L * R, B, H], scale: 0.5, rng: &rng) : nil
        let wOut = GradCheck.random([B, T, R * H], rng: &rng)
        let wH = GradCheck.random([L * R, B, H], rng: &rng)
        let wC = GradCheck.random([L * R, B, H], rng: &rng)
        let maskSeed = rng
        func loss() -> Double {
            var r = maskSeed  // the same dropout mask every call
            let (out, state, _) = layer.forward(x, state: RecurrentState(hidden: h0, cell: c0), mode: .training, rng: &r, lengths: lengths)
            var s = GradCheck.dot(out, wOut) + GradCheck.dot(state.hidden, wH)
            if let cell = state.cell { s += GradCheck.dot(cell, wC) }
            return s
        }
        var r = maskSeed
        let (_, _, cacheOrNil) = layer.forward(x, state: RecurrentState(hidden: h0, cell: c0), mode: .training, rng: &r, lengths: lengths)
        guard let cache = cacheOrNil else { Issue.record("no cache"); return }
        layer.zeroGrad()
        let (dx, dInitial) = layer.backward(dOutput: wOut, dState: RecurrentState(hidden: wH, cell: kind.hasCellState ? wC : nil), cache: cache)
        // ReLU has a kink at 0: a smaller step makes crossing it while differencing unlikely.
        let eps: Float = kind == .rnnRelu ? 1e-3 : 1e-2
        var results: [(String, Double, Double)] = []
        let rx = GradCheck.worst(analytic: dx.data, eps: eps, read: { x.data[$0] }, write: { x.data[$0] = $1 }, loss: loss)
        results.append(("dInput", rx.ratio, rx.maxAbs))
        let rh = GradCheck.worst(analytic: dInitial.hidden.data, eps: eps, read: { h0.data[$0] }, write: { h0.data[$0] = $1 }, loss: loss)
        results.append(("dh0", rh.ratio, rh.maxAbs))
        if kind.hasCellState {
            guard let dc0 = dInitial.cell else { Issue.record("no dc0"); return }
            let rc = GradCheck.worst(analytic: dc0.data, eps: eps, read: { c0?.data[$0] ?? 0 }, write: { c0?.data[$0] = $1 }, loss: loss)
            results.append(("dc0", rc.ratio, rc.maxAbs))
        } else {
            #expect(dInitial.cell == nil)
        }
        for p in layer.parameters {
            let rp = GradCheck.parameter(p, eps: eps, loss: loss)
            results.append((p.name, rp.ratio, rp.maxAbs))
        }
        #expect(results.count == 2 + (kind.hasCellState ? 1 : 0) + 4 * L * R)
        for (name, ratio, maxAbs) in results {
            #expect(ratio <= 1, "\(kind) \(name): finite-difference mismatch, max abs error \(maxAbs)")
        }
    }

    @Test(arguments: CellKind.allCases)
    func gradientsMatchFiniteDifferences(kind: CellKind) { gradientCheck(kind: kind) }

    @Test(arguments: CellKind.allCases)
    func gradientsWithDropoutMatchFiniteDifferences(kind: CellKind) { gradientCheck(kind: kind, dropout: 0.4) }

    @Test(arguments: CellKind.allCases)
    func gradientsWithLengthsMatchFiniteDifferences(kind: CellKind) { gradientCheck(kind: kind, lengths: [3, 1]) }

    @Test(arguments: CellKind.allCases)
    func bidirectionalGradientsMatchFiniteDifferences(kind: CellKind) {
        gradientCheck(kind: kind, dropout: 0.3, lengths: [2, 3], bidirectional: true)
    }

    // MARK: Behaviour

    @Test(arguments: CellKind.allCases)
    func carriedStateEqualsOneLongForward(kind: CellKind) {
        let B = 2, T1 = 3, T2 = 2, D = 3, H = 4, L = 2
        var rng = SeededRNG(seed: 3)
        let layer = RecurrentLayer(kind: kind, inputSize: D, hiddenSize: H, numLayers: L, rng: &rng)
        let x = GradCheck.random([B, T1 + T2, D], rng: &rng)
        let s0 = RecurrentState(hidden: GradCheck.random([L, B, H], rng: &rng),
                                cell: kind.hasCellState ? GradCheck.random([L, B, H], rng: &rng) : nil)
        func slice(_ t: Tensor, _ range: Range<Int>) -> Tensor {
            var out = Tensor(shape: [B, range.count, t.shape[2]])
            let F = t.shape[2], TT = t.shape[1]
            for b in 0..<B { for (k, s) in range.enumerated() { for f in 0..<F { out.data[(b * range.count + k) * F + f] = t.data[(b * TT + s) * F + f] } } }
            return out
        }
        let full = layer.forward(x, state: s0, mode: .inference, rng: &rng)
        let first = layer.forward(slice(x, 0..<T1), state: s0, mode: .inference, rng: &rng)
        let second = layer.forward(slice(x, T1..<(T1 + T2)), state: first.state, mode: .inference, rng: &rng)
        #expect(full.cache == nil)
        #expect(slice(full.output, 0..<T1).maxAbsDifference(first.output) < 1e-6)
        #expect(slice(full.output, T1..<(T1 + T2)).maxAbsDifference(second.output) < 1e-6)
        #expect(full.state.hidden.maxAbsDifference(second.state.hidden) < 1e-6)
        if let c = full.state.cell, let c2 = second.state.cell { #expect(c.maxAbsDifference(c2) < 1e-6) }
    }

    /// Values past a sequence's length are never read (pack_padded_sequence): NaN or inf there
    /// leaves every result as with zeros, the weight gradients included (dPreᵀ·x made 0·nan).
    @Test(arguments: CellKind.allCases)
    func nonFinitePaddingIsNeverRead(kind: CellKind) {
        var rng = SeededRNG(seed: 8)
        let layer = RecurrentLayer(kind: kind, inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, rng: &rng)
        let lengths = [5, 2, 3]
        var clean = GradCheck.random([3, 5, 3], rng: &rng)
        for (b, n) in lengths.enumerated() { for t in n..<5 { for d in 0..<3 { clean.data[(b * 5 + t) * 3 + d] = 0 } } }
        var dirty = clean
        dirty.data[(1 * 5 + 4) * 3 + 0] = .nan
        dirty.data[(2 * 5 + 3) * 3 + 2] = .infinity
        let dOut = GradCheck.random([3, 5, 8], rng: &rng)
        func run(_ x: Tensor) -> (out: [Float], dx: [Float], grads: [[Float]]) {
            var r = SeededRNG(seed: 1)
            let (out, _, cache) = layer.forward(x, state: nil, mode: .training, rng: &r, lengths: lengths)
            layer.zeroGrad()
            let (dx, _) = layer.backward(dOutput: dOut, dState: nil, cache: cache!)
            return (out.data, dx.data, layer.parameters.map(\.grad.data))
        }
        let a = run(clean), b = run(dirty)
        #expect(a.out == b.out)
        #expect(a.grads == b.grads, "the weight gradients read the padding")
        #expect(a.dx == b.dx)
    }

    /// A parameter's gradient is made on first write and then written in place: a `lazy var`
    /// copied the whole gradient at every mutable access (get, then set).
    @Test func gradientIsWrittenInPlace() {
        let p = Parameter(name: "w", value: Tensor(shape: [1 << 16], data: [Float](repeating: 1, count: 1 << 16)))
        #expect(p.grad.data.allSatisfy { $0 == 0 } && p.grad.shape == [1 << 16])
        var addresses: Set<UInt> = []
        for _ in 0..<3 { p.grad.data.withUnsafeMutableBufferPointer { addresses.insert(UInt(bitPattern: $0.baseAddress)); $0[0] += 1 } }
        #expect(addresses.count == 1 && p.grad.data[0] == 3)
    }

    /// relu keeps NaN as PyTorch's does (it made NaN 0), and its gradient passes where the output
    /// is NaN (threshold_backward), so an overflowing relu RNN shows NaN rather than finite numbers.
    @Test func reluKeepsNaN() {
        var rng = SeededRNG(seed: 5)
        let layer = RecurrentLayer(kind: .rnnRelu, inputSize: 2, hiddenSize: 3, numLayers: 1, rng: &rng)
        for p in layer.parameters { p.value = GradCheck.random(p.shape, scale: 0.5, rng: &rng) }
        let x = Tensor(shape: [1, 2, 2], data: [.nan, 0.5, 0.25, -0.5])   // a NaN in the first step's input
        var r = rng
        let (out, state, cacheOrNil) = layer.forward(x, state: nil, mode: .training, rng: &r)
        #expect(out.data.allSatisfy { $0.isNaN }, "\(out.data)")   // NaN at step 0 reaches every unit, then step 1 through W_hh
        #expect(state.hidden.data.allSatisfy { $0.isNaN })
        guard let cache = cacheOrNil else { Issue.record("no cache"); return }
        layer.zeroGrad()
        let (dx, _) = layer.backward(dOutput: Tensor(shape: [1, 2, 3], data: [1, 1, 1, 1, 1, 1]), dState: nil, cache: cache)
        // Every output is NaN, so every gradient passes: dPre₁ = 1, dPre₀ = 1 + dPre₁·W_hh, dxₜ = dPreₜ·W_ih
        // (finite; the old kernel gave 0 there).
        let wih = layer.parameters[0].value.data, whh = layer.parameters[1].value.data
        let dPre1: [Float] = [1, 1, 1]
        let dPre0 = (0..<3).map { j in 1 + (0..<3).reduce(Float(0)) { $0 + dPre1[$1] * whh[$1 * 3 + j] } }
        func dxRow(_ d: [Float]) -> [Float] { (0..<2).map { k in (0..<3).reduce(Float(0)) { $0 + d[$1] * wih[$1 * 2 + k] } } }
        let expected = dxRow(dPre0) + dxRow(dPre1)
        #expect(zip(dx.data, expected).allSatisfy { abs($0 - $1) < 1e-5 }, "\(dx.data) vs \(expected)")
        #expect(layer.parameters[1].grad.data.allSatisfy { $0.isNaN })   // weight_hh_l0: Σ dPreₜᵀ·hₜ₋₁ with h₀ NaN
    }

    @Test func dropoutOnlyInTraining() {
        let D = 3, H = 4
        var rng = SeededRNG(seed: 5)
        let layer = RecurrentLayer(kind: .lstm, inputSize: D, hiddenSize: H, numLayers: 3, dropout: 0.5, rng: &rng)
        let x = GradCheck.random([2, 4, D], rng: &rng)
        var r1 = SeededRNG(seed: 1), r2 = SeededRNG(seed: 2)
        let a = layer.forward(x, state: nil, mode: .inference, rng: &r1)
        let b = layer.forward(x, state: nil, mode: .inference, rng: &r2)
        #expect(a.output == b.output)
        var fresh = SeededRNG(seed: 1)
        #expect(r1.next() == fresh.next(), "inference must not draw dropout masks")
        let trained = layer.forward(x, state: nil, mode: .training, rng: &r1)
        #expect(trained.output.maxAbsDifference(a.output) > 1e-4, "training mode applies dropout")
        layer.dropout = 0
        let plain = layer.forward(x, state: nil, mode: .training, rng: &r2)
        #expect(plain.output == a.output)
        #expect(plain.cache != nil)
    }

    @Test func backwardAccumulatesIntoGradients() {
        var rng = SeededRNG(seed: 13)
        let layer = RecurrentLayer(kind: .gru, inputSize: 2, hiddenSize: 3, numLayers: 2, rng: &rng)
        let x = GradCheck.random([2, 3, 2], rng: &rng)
        let dOut = GradCheck.random([2, 3, 3], rng: &rng)
        guard let cache = layer.forward(x, state: nil, mode: .training, rng: &rng).cache else { Issue.record("no cache"); return }
        let first = layer.backward(dOutput: dOut, dState: nil, cache: cache)
        let once = layer.parameters.map(\.grad)
        let second = layer.backward(dOutput: dOut, dState: nil, cache: cache)
        #expect(first.dInput == second.dInput && first.dInitialState == second.dInitialState)
        for (p, g) in zip(layer.parameters, once) {
            #expect(p.grad.maxAbsDifference(Tensor(shape: g.shape, data: g.data.map { 2 * $0 })) < 1e-6)
        }
        layer.zeroGrad()
        #expect(layer.parameters.allSatisfy { $0.grad.data.allSatisfy { $0 == 0 } })
    }

    @Test func zeroStateEqualsNilState() {
        var rng = SeededRNG(seed: 9)
        let layer = RecurrentLayer(kind: .lstm, inputSize: 2, hiddenSize: 3, numLayers: 2, rng: &rng)
        let x = GradCheck.random([2, 3, 2], rng: &rng)
        let a = layer.forward(x, state: nil, mode: .inference, rng: &rng)
        let b = layer.forward(x, state: .zeros(kind: .lstm, layers: 2, batch: 2, hidden: 3), mode: .inference, rng: &rng)
        #expect(a.output == b.output && a.state == b.state)
    }

    @Test func parametersFollowPyTorch() {
        var rng = SeededRNG(seed: 11)
        let layer = RecurrentLayer(kind: .gru, inputSize: 5, hiddenSize: 4, numLayers: 2, rng: &rng)
        #expect(layer.parameters.map(\.name) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                                 "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"])
        #expect(layer.parameters.map(\.shape) == [[12, 5], [12, 4], [12], [12], [12, 4], [12, 4], [12], [12]])
        let bound: Float = 0.5
        for p in layer.parameters {
            #expect(p.value.data.allSatisfy { abs($0) <= bound })
            #expect(p.value.data.contains { abs($0) > bound / 2 })
        }
    }

    // MARK: Batch slices

    /// The time loops split the batch rows into one slice per thread, re-cut between phases of
    /// steps; every row's arithmetic is the same for any split, so outputs and gradients are
    /// bitwise equal for 1, 2 and 3 threads, and for arbitrary cuts at every phase.
    @Test(arguments: CellKind.allCases)
    func threadCountDoesNotChangeResults(kind: CellKind) {
        let saved = Threading.count
        defer { Threading.count = saved }
        for (lengths, bidirectional) in [(nil, false), ([9, 3, 0, 5, 2, 8, 1], true)] as [([Int]?, Bool)] {
            let B = 7, T = 9, D = 6, H = 9, L = 2, R = bidirectional ? 2 : 1
            var rng = SeededRNG(seed: 7)
            let layer = RecurrentLayer(kind: kind, inputSize: D, hiddenSize: H, numLayers: L, bidirectional: bidirectional, rng: &rng)
            let x = GradCheck.random([B, T, D], rng: &rng)
            let h0 = GradCheck.random([L * R, B, H], scale: 0.5, rng: &rng)
            let c0: Tensor? = kind.hasCellState ? GradCheck.random([L * R, B, H], scale: 0.5, rng: &rng) : nil
            let dOut = GradCheck.random([B, T, R * H], rng: &rng)
            func run(_ threads: Int) -> [[Float]] {
                Self.results(layer, x, RecurrentState(hidden: h0, cell: c0), dOut, threads: threads, lengths: lengths)
            }
            let one = run(1)
            #expect(run(2) == one, "\(kind) lengths \(lengths != nil): 2 threads differ from 1")
            #expect(run(3) == one, "\(kind) lengths \(lengths != nil): 3 threads differ from 1")
            // Uneven cuts that change at every phase (T 9: phases of 4, 4 and 1 steps). The hook is
            // global, so tests running meanwhile get such cuts too: valid for any B ≥ parts.
            RecurrentLayer.sweepCutsForTesting = { phase, parts, B in
                let spare = B - parts
                let offsets = (1..<parts).map { (5 * phase + 3 * $0 + 1) % (spare + 1) }.sorted()
                return [0] + (1..<parts).map { $0 + offsets[$0 - 1] } + [B]
            }
            defer { RecurrentLayer.sweepCutsForTesting = nil }
            #expect(run(2) == one, "\(kind) lengths \(lengths != nil): uneven cuts on 2 threads differ")
            #expect(run(3) == one, "\(kind) lengths \(lengths != nil): uneven cuts on 3 threads differ")
        }
    }

    /// Outputs, final state, input and initial-state gradients and parameter gradients of one
    /// training forward and backward pass on `threads` threads.
    static func results(_ layer: RecurrentLayer, _ x: Tensor, _ initial: RecurrentState?, _ dOut: Tensor, threads: Int,
                        lengths: [Int]?) -> [[Float]] {
        Threading.count = threads
        var r = SeededRNG(seed: 1)
        let (out, state, cache) = layer.forward(x, state: initial, mode: .training, rng: &r, lengths: lengths)
        layer.zeroGrad()
        guard let cache else { Issue.record("no cache"); return [] }
        let (dx, dInitial) = layer.backward(dOutput: dOut, dState: nil, cache: cache)
        return [out.data, state.hidden.data, state.cell?.data ?? [], dx.data, dInitial.hidden.data,
                dInitial.cell?.data ?? []] + layer.parameters.map { $0.grad.data }
    }

    /// A slice that runs slow (1 ms per step, test hook) has its last rows stolen by the other
    /// thread for the rest of each phase; outputs and gradients stay bitwise those of one thread.
    /// The pool runs the slices one after the other while other tests hold it, so the run is
    /// repeated until a steal is seen (checking the results every time). The cases run one after
    /// another: the slow-slice hook is global, and a case that finished first used to switch it off
    /// under the others (seen once: rnn_relu saw no steal in 100 runs).
    @Test(.serialized, arguments: CellKind.allCases)
    func stolenRowsGiveTheSameResults(kind: CellKind) {
        let saved = Threading.count
        defer { Threading.count = saved }
        let B = 16, T = 12, D = 5, H = 6, L = 2
        var rng = SeededRNG(seed: 21)
        let layer = RecurrentLayer(kind: kind, inputSize: D, hiddenSize: H, numLayers: L, rng: &rng)
        let x = GradCheck.random([B, T, D], rng: &rng)
        let dOut = GradCheck.random([B, T, H], rng: &rng)
        func run(_ threads: Int) -> [[Float]] { Self.results(layer, x, nil, dOut, threads: threads, lengths: nil) }
        let one = run(1)
        let before = rc_steal_count()
        RecurrentLayer.slowSliceForTesting = 1
        defer { RecurrentLayer.slowSliceForTesting = nil }
        for _ in 0..<100 where rc_steal_count() == before {
            #expect(run(2) == one, "\(kind): 2 threads with stolen rows differ from 1")
        }
        #expect(rc_steal_count() > before, "\(kind): no rows were stolen")
    }

    /// A consuming backward pass (gate gradients over the cached gates or, for a one-direction Elman
    /// stack, over the output gradient; dx over a spent cache buffer) gives bitwise the same results
    /// as the default one, and marks the cache as used. H 130 makes G·H deeper than one K block of
    /// the products (384), so dx's product reads its left operand in two passes.
    @Test(arguments: CellKind.allCases)
    func consumingBackwardMatchesDefault(kind: CellKind) {
        for (lengths, bidirectional, dropout, H) in [(nil, false, 0, 7), ([4, 1, 0, 4, 3], true, 0.3, 7), (nil, false, 0, 130),
                                                     (nil, false, 0.3, 7), ([4, 1, 0, 4, 3], false, 0.3, 7)]
            as [([Int]?, Bool, Float, Int)] {
            let B = 5, T = 4, D = 6, L = 2, R = bidirectional ? 2 : 1
            var rng = SeededRNG(seed: 17)
            let layer = RecurrentLayer(kind: kind, inputSize: D, hiddenSize: H, numLayers: L, dropout: dropout,
                                       bidirectional: bidirectional, rng: &rng)
            let x = GradCheck.random([B, T, D], rng: &rng)
            let dOut = GradCheck.random([B, T, R * H], rng: &rng)
            let dh = GradCheck.random([L * R, B, H], rng: &rng)
            let dc: Tensor? = kind.hasCellState ? GradCheck.random([L * R, B, H], rng: &rng) : nil
            func run(_ consuming: Bool) -> [[Float]] {
                var r = SeededRNG(seed: 3)
                guard let cache = layer.forward(x, state: nil, mode: .training, rng: &r, lengths: lengths).cache else {
                    Issue.record("no cache"); return []
                }
                layer.zeroGrad()
                let (dx, d0) = layer.backward(dOutput: dOut, dState: RecurrentState(hidden: dh, cell: dc), cache: cache,
                                              consumingCache: consuming)
                #expect(cache.consumed == consuming)
                return [dx.data, d0.hidden.data, d0.cell?.data ?? []] + layer.parameters.map { $0.grad.data }
            }
            let reference = run(false)
            #expect(run(true) == reference, "\(kind) bidirectional \(bidirectional)")
            // As CharLM runs it: dOutput handed over time-major, and spent (a one-direction Elman
            // stack writes its gate gradients over it, and every dx over a spent cache buffer).
            var r = SeededRNG(seed: 3)
            guard let cache = layer.forward(x, state: nil, mode: .training, rng: &r, lengths: lengths).cache else {
                Issue.record("no cache"); continue
            }
            layer.zeroGrad()
            let timeMajor = LayerBuffer(T * B * R * H, zeroed: false)
            dOut.data.withUnsafeBufferPointer { p in
                Tensor.transposeBatchTime(p.baseAddress!, to: timeMajor.pointer, outer: B, inner: T, features: R * H)
            }
            let before = timeMajor.array(count: T * B * R * H)
            let (dxT, d0) = layer.backwardTimeMajor(dOutput: nil, dState: RecurrentState(hidden: dh, cell: dc), cache: cache,
                                                    consumingCache: true, dOutputTimeMajor: timeMajor)
            var dx = Tensor(shape: [B, T, D])
            dx.data.withUnsafeMutableBufferPointer { p in
                Tensor.transposeBatchTime(dxT.pointer, to: p.baseAddress!, outer: T, inner: B, features: D)
            }
            let spent = [dx.data, d0.hidden.data, d0.cell?.data ?? []] + layer.parameters.map { $0.grad.data }
            #expect(spent == reference, "\(kind) bidirectional \(bidirectional), time-major dOutput")
            let elman = kind == .rnnTanh || kind == .rnnRelu
            #expect((timeMajor.array(count: T * B * R * H) != before) == (elman && R == 1),
                    "\(kind): dOutputTimeMajor spent only by a one-direction Elman stack")
        }
    }

    // MARK: Inference in chunks of time

    /// An inference pass in chunks of time (what `forward` does when a layer's cache would pass
    /// `inferenceChunkFloats`) gives bitwise the one-pass outputs and final state: both directions,
    /// lengths that end inside, at and before chunk edges, an initial state, and layer 0 on tokens.
    @Test(arguments: CellKind.allCases)
    func chunkedInferenceEqualsOnePass(kind: CellKind) {
        for (lengths, bidirectional, tokens) in [(nil, false, false), ([9, 3, 0, 5, 2], true, false), (nil, true, true),
                                                  ([1, 9, 4, 6, 8], false, true)] as [([Int]?, Bool, Bool)] {
            let B = 5, T = 9, D = 6, H = 7, L = 3, R = bidirectional ? 2 : 1, V = 11
            var rng = SeededRNG(seed: 29)
            let layer = RecurrentLayer(kind: kind, inputSize: D, hiddenSize: H, numLayers: L, dropout: 0.5,
                                       bidirectional: bidirectional, rng: &rng)
            let embedding = Embedding(count: V, dimension: D, rng: &rng)
            let ids = (0..<(B * T)).map { _ in Int32(rng.uniform(0, Float(V) - 0.01)) }
            let x = GradCheck.random([B, T, D], rng: &rng)
            let initial = RecurrentState(hidden: GradCheck.random([L * R, B, H], scale: 0.5, rng: &rng),
                                         cell: kind.hasCellState ? GradCheck.random([L * R, B, H], scale: 0.5, rng: &rng) : nil)
            let input = tokens ? embedding.forwardTimeMajor(ids, batch: B, steps: T) : LayerBuffer(T * B * D, zeroed: false)
            if !tokens {
                x.data.withUnsafeBufferPointer { p in
                    Tensor.transposeBatchTime(p.baseAddress!, to: input.pointer, outer: B, inner: T, features: D)
                }
            }
            let folded = tokens ? TokenInput(batchMajor: ids, batch: B, steps: T, embedding: embedding) : nil
            var r = SeededRNG(seed: 1)
            let whole = layer.forward(timeMajor: input, batch: B, steps: T, state: initial, mode: .inference, rng: &r,
                                      lengths: lengths, tokens: folded)
            #expect(layer.chunkSteps(batch: B, steps: T) == nil, "a small pass runs in one piece")
            #expect(whole.output.data.contains { $0 != 0 })
            for chunk in [1, 2, 4, 8] {
                let parts = layer.forwardInChunks(timeMajor: input, batch: B, steps: T, chunk: chunk, state: initial,
                                                  lengths: lengths, tokens: folded)
                let label = "\(kind) chunk \(chunk) lengths \(lengths != nil) bidirectional \(bidirectional) tokens \(tokens)"
                #expect(parts.output == whole.output, "\(label): outputs")
                #expect(parts.state == whole.state, "\(label): final state")
            }
        }
    }

    /// `forward` switches to chunks once a layer and direction's cache would pass
    /// `inferenceChunkFloats`, with chunks that stay within it.
    @Test func longInferenceRunsInChunks() throws {
        var rng = SeededRNG(seed: 31)
        let layer = RecurrentLayer(kind: .lstm, inputSize: 4, hiddenSize: 64, numLayers: 1, rng: &rng)
        let perStep = 2 * 7 * 64  // B 2, (G + 3)·H
        let limit = RecurrentLayer.inferenceChunkFloats
        #expect(layer.chunkSteps(batch: 2, steps: limit / perStep) == nil)
        let chunk = try #require(layer.chunkSteps(batch: 2, steps: limit / perStep + 1))
        #expect(chunk * perStep <= limit && (chunk + 1) * perStep > limit)
        #expect(layer.chunkSteps(batch: 1, steps: 10_000_000) == limit / (7 * 64))
    }
}
