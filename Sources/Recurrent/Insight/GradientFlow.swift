import Foundation

/// How far back in time a gradient survives: ‖∂loss_T/∂h_t‖ for t = T … 1.
///
/// Measured with the real `RecurrentLayer` backward pass. The gradient on every earlier state
/// comes from one batched pass: for each sequence q and each start s ∈ 0…T, a row starts from the
/// reference forward pass's state h_s (and c_s) and reads x[s+1 … T] (lengths T − s, as
/// `pack_padded_sequence`), so its final state is h_T and the gradient `backward` returns on its
/// initial state is exactly ∂loss_T/∂h_s. Cost: (T+1)·S rows of T steps, O(S·T²·H²), in passes
/// of rows that keep memory near 128 MiB.
///
/// The loss is loss_T = Σ_q u_q·h_T (u_q a random unit vector per sequence), so ‖∂loss_T/∂h_T‖ = 1
/// and every curve starts at 1. With a checkpoint it is the char-LM's cross-entropy of the
/// character after step T instead.
///
/// The sigmoid RNN, h_t = σ(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh), is not a PyTorch cell; it is
/// computed here by a plain loop (`elmanNorms`) on the weights of an `rnn_tanh` layer, only for
/// this comparison. The same loop with tanh agrees with the real layer (see the tests).
public enum GradientFlow {
    /// The recurrent weights' initialisation.
    public enum Init: String, CaseIterable, Sendable {
        /// PyTorch's U(−1/√H, 1/√H) for every weight and bias.
        case pytorchDefault = "default"
        /// weight_hh: each (H,H) gate block orthogonal (`Initializer.orthogonal`), bias_hh 0.
        case orthogonal
        /// weight_hh: each gate block `scale`·I, both biases 0 (Le, Jaitly and Hinton 2015, "IRNN").
        case identity
    }

    /// The cells compared: PyTorch's four and the diagnostic-only sigmoid RNN.
    public enum Cell: String, CaseIterable, Sendable {
        case rnnTanh = "rnn-tanh", rnnSigmoid = "rnn-sigmoid", rnnRelu = "rnn-relu", lstm, gru

        /// The layer that holds the weights (the sigmoid RNN borrows an rnn_tanh layer's).
        var kind: CellKind {
            switch self {
            case .rnnTanh, .rnnSigmoid: return .rnnTanh
            case .rnnRelu: return .rnnRelu
            case .lstm: return .lstm
            case .gru: return .gru
            }
        }
    }

    /// One measured curve.
    public struct Curve: Sendable {
        public var name: String
        /// norms[k] = mean over sequences of ‖∂loss_T/∂h_{T−k}‖, k = 0 … T−1 (t = T … 1).
        public var norms: [Double]
        /// Global L2 norm of the parameter gradients of the same loss (what clip_grad_norm_ sees).
        public var parameterGradientNorm: Double?
        /// The first step t at which the forward pass's states left Float's range (inf or NaN), if
        /// they did: the loss and every gradient through those states measure nothing.
        public var forwardOverflow: Int?

        public init(name: String, norms: [Double], parameterGradientNorm: Double? = nil, forwardOverflow: Int? = nil) {
            self.name = name
            self.norms = norms
            self.parameterGradientNorm = parameterGradientNorm
            self.forwardOverflow = forwardOverflow
        }

        /// `norms` as shown (JSON, charts): once the forward pass overflowed, every norm past t = T
        /// goes through states that are inf or nan and measures nothing, so it is nan (null), never
        /// a 0 or a number that looks measured.
        public var shownNorms: [Double] {
            guard forwardOverflow != nil else { return norms }
            return norms.enumerated().map { $0.offset == 0 ? $0.element : .nan }
        }

        /// The first step back with a positive norm: 0, except for a lower layer of a stack, whose
        /// state-carried gradient is 0 at t = T (see `measure(model:windows:)`).
        var start: Int? { norms.firstIndex { $0 > 0 && $0.isFinite } }

        /// The mean factor per step back, from the first positive norm (normally t = T) to the
        /// last one (t = 1, unless the norms fell below Float's range to exactly 0 before it):
        /// (norm at the end / norm at the start)^(1/steps between); nil when no two positive
        /// norms bound a stretch, or when the gradient overflows.
        public var factorPerStep: Double? {
            guard forwardOverflow == nil, overflowStep == nil, let i = start,
                  let j = norms.lastIndex(where: { $0 > 0 && $0.isFinite }), j > i else { return nil }
            return pow(norms[j] / norms[i], 1 / Double(j - i))
        }

        /// The first number of steps back at which the norm is below `fraction` of the first
        /// positive norm (normally the one at t = T), before any overflow (after it the numbers
        /// are inf/NaN and then 0, which measure nothing).
        public func stepsBelow(_ fraction: Double) -> Int? {
            guard forwardOverflow == nil, let i = start else { return nil }
            return norms[i..<(overflowStep ?? norms.count)].firstIndex { $0 < fraction * norms[i] }
        }

        /// The first number of steps back at which the norm is no longer finite: an exploding
        /// gradient beyond Float's range (nil when the forward pass overflowed first: then the
        /// gradients measure nothing, see `forwardOverflow`).
        public var overflowStep: Int? {
            guard forwardOverflow == nil, let i = start else { return nil }
            return norms[i...].firstIndex { !$0.isFinite }
        }
    }

    /// What to measure for a synthetic layer.
    public struct Setup: Sendable {
        public var cell: Cell
        public var initialisation: Init
        public var hidden = 64
        public var input = 16
        public var length = 100
        public var sequences = 4
        /// The gain of `identity` (and a factor on the orthogonal blocks).
        public var scale: Float = 1
        /// LSTM only: the forget gate's bias (bias_ih's f block; bias_hh's f block set to 0), nil to keep the init's.
        public var forgetBias: Float?
        public var seed: UInt64 = 1

        public init(cell: Cell, initialisation: Init) {
            self.cell = cell
            self.initialisation = initialisation
        }

        /// "rnn-tanh, default init" style label.
        public var label: String {
            let scaleNote = (initialisation == .pytorchDefault || scale == 1) ? "" : " × \(scale)"
            let biasNote = forgetBias.map { " forget bias \($0)" } ?? ""
            return "\(cell.rawValue), \(initialisation.rawValue)\(scaleNote)\(biasNote)"
        }
    }

    /// A single-layer stack with the setup's initialisation (input weights PyTorch's default).
    public static func makeLayer(_ setup: Setup) -> RecurrentLayer {
        var rng = SeededRNG(seed: setup.seed)
        let layer = RecurrentLayer(kind: setup.cell.kind, inputSize: setup.input, hiddenSize: setup.hidden, numLayers: 1, rng: &rng)
        let H = setup.hidden, G = setup.cell.kind.gateCount
        switch setup.initialisation {
        case .pytorchDefault:
            break
        case .orthogonal:
            Initialization.apply(kind: setup.cell.kind, hiddenSize: H, parameters: layer.parameters.filter { $0.name.hasPrefix("weight_hh") || $0.name.hasPrefix("bias_hh") },
                                 input: .pytorchDefault, recurrent: .orthogonal, forgetBias: nil, rng: &rng)
            if setup.scale != 1 { for p in layer.parameters where p.name.hasPrefix("weight_hh") { for i in 0..<p.value.count { p.value.data[i] *= setup.scale } } }
        case .identity:
            for p in layer.parameters {
                if p.name.hasPrefix("weight_hh") {
                    p.value.zero()
                    for g in 0..<G { for j in 0..<H { p.value.data[(g * H + j) * H + j] = setup.scale } }
                } else if p.name.hasPrefix("bias") {
                    p.value.zero()
                }
            }
        }
        if let fb = setup.forgetBias, setup.cell == .lstm {
            for p in layer.parameters where p.name.hasPrefix("bias") {
                for j in H..<(2 * H) { p.value.data[j] = p.name.hasPrefix("bias_ih") ? fb : 0 }
            }
        }
        return layer
    }

    /// Random inputs x (S,T,D) ~ N(0, 1) and unit directions u (S,H), from the setup's seed.
    static func probes(sequences S: Int, length T: Int, input D: Int, hidden H: Int, seed: UInt64) -> (x: Tensor, u: Tensor) {
        var rng = SeededRNG(seed: seed &+ 0x9e37)
        var x = Tensor(shape: [S, T, D])
        for i in 0..<x.count { x.data[i] = rng.normal() }
        var u = Tensor(shape: [S, H])
        for q in 0..<S {
            var n: Float = 0
            for j in 0..<H { let v = rng.normal(); u.data[q * H + j] = v; n += v * v }
            for j in 0..<H { u.data[q * H + j] /= n.squareRoot() }
        }
        return (x, u)
    }

    /// Measures one synthetic setup (and the parameter-gradient norm of the same loss).
    public static func measure(_ setup: Setup) -> Curve {
        let layer = makeLayer(setup)
        let (x, u) = probes(sequences: setup.sequences, length: setup.length, input: setup.input, hidden: setup.hidden, seed: setup.seed)
        let norms: [Double]
        if setup.cell == .rnnSigmoid {
            norms = elmanNorms(layer: layer, x: x, dFinal: u, activation: .sigmoid)
        } else {
            norms = hiddenGradientNorms(layer: layer, x: x, dFinal: u)[0]
        }
        return Curve(name: setup.label, norms: norms,
                     parameterGradientNorm: setup.cell == .rnnSigmoid ? nil : parameterGradientNorm(layer: layer, x: x, dFinal: u),
                     forwardOverflow: setup.cell == .rnnSigmoid ? nil : forwardOverflowStep(layer: layer, x: x))
    }

    /// The first step s (1 … T) after which a state of `layer`'s forward pass over `x` from zeros
    /// is not finite (it left Float's range), or nil when every state is finite.
    public static func forwardOverflowStep(layer: RecurrentLayer, x: Tensor) -> Int? {
        let S = x.shape[0], T = x.shape[1], H = layer.hiddenSize
        var rng = SeededRNG(seed: 0)
        let (_, _, cacheOrNil) = layer.forward(x, state: nil, mode: .training, rng: &rng, applyingDropout: false)
        guard let cache = cacheOrNil, T > 0 else { return nil }
        var first: Int?
        for l in 0..<layer.numLayers {
            cache.withTrace(layer: l) { hiddens, cells, _ in
                for s in 1...T where s < (first ?? T + 1) {
                    let r = s * S * H ..< (s + 1) * S * H
                    if hiddens[r].contains(where: { !$0.isFinite }) || (cells?[r].contains { !$0.isFinite } ?? false) {
                        first = s
                        break
                    }
                }
            }
        }
        return first
    }

    /// ‖∂loss/∂h_t^(l)‖ for every layer l of `layer` (unidirectional), where ∂loss/∂h_T of the top
    /// layer is `dFinal` (S,H) and the run starts from zeros. For a layer below the top, h_t^(l) is
    /// taken as the state layer l carries into step t + 1, so its gradient comes through that step
    /// and the later ones (the layer above reads h_t^(l) at time t too; that path is not counted),
    /// which is what h_t^(l) would receive as the initial state of a run over steps t + 1 … T.
    ///
    /// One forward and one backward pass over the S sequences (in groups of about 256 MiB), which
    /// record the gradient carried into every step (`backwardTimeMajor(hiddenGradients:)`): time
    /// linear in T, memory linear in T for one sequence. (Until 2026-12-01 each t ran its own pass
    /// over steps t + 1 … T, quadratic in T.)
    ///
    /// - Returns: [l][k] = mean over the S sequences of ‖∂loss/∂h_{T−k}^(l)‖, k = 0 … T−1.
    ///
    /// Runs `backward`, so it writes the layer's gradients (and puts them back before it returns):
    /// like training, it needs the layer to itself. Dropout is not applied and `dropout` not touched.
    public static func hiddenGradientNorms(layer: RecurrentLayer, x: Tensor, dFinal: Tensor) -> [[Double]] {
        hiddenGradientNorms(layer: layer, x: x, dFinal: dFinal, floatsPerGroup: 64 << 20)
    }

    /// `floatsPerGroup` sets the size of the groups of sequences (tests).
    static func hiddenGradientNorms(layer: RecurrentLayer, x: Tensor, dFinal: Tensor, floatsPerGroup: Int) -> [[Double]] {
        require(!layer.bidirectional, "gradient flow is measured on unidirectional stacks")
        let S = x.shape[0], T = x.shape[1], H = layer.hiddenSize, L = layer.numLayers
        require(dFinal.shape == [S, H], "dFinal must be (\(S),\(H))")
        var out = [[Double]](repeating: [Double](repeating: 0, count: T), count: L)
        guard T > 0 else { return out }
        var rng = SeededRNG(seed: 0)
        let saved = layer.parameters.map(\.grad)
        defer { for (p, g) in zip(layer.parameters, saved) { p.grad = g } }
        func norm(_ p: UnsafePointer<Float>) -> Double {
            var sum = 0.0
            for j in 0..<H { let v = Double(p[j]); sum += v * v }
            return sum.squareRoot()
        }
        // The sequences in groups whose cache, gradients and records (about T·(8·H·L + D) floats a
        // sequence) stay near 256 MiB; one sequence at least. Each sequence's figures do not depend
        // on its group, and they are added in sequence order either way.
        let D = x.shape[2]
        let group = max(1, min(S, floatsPerGroup / max(1, T * (8 * H * L + D))))
        for q0 in stride(from: 0, to: S, by: group) {
            let n = min(group, S - q0)
            let xs = Tensor(shape: [n, T, D], data: Array(x.data[(q0 * T * D)..<((q0 + n) * T * D)]))
            let (_, _, cacheOrNil) = layer.forward(xs, state: nil, mode: .training, rng: &rng, applyingDropout: false)
            guard let cache = cacheOrNil else { fatalError("training forward returns a cache") }
            var dState = RecurrentState.zeros(kind: layer.kind, layers: L, batch: n, hidden: H)
            for i in 0..<(n * H) { dState.hidden.data[(L - 1) * n * H + i] = dFinal.data[q0 * H + i] }
            let records = (0..<L).map { _ in LayerBuffer(T * n * H, zeroed: false) }
            withExtendedLifetime(records) {
                _ = layer.backwardTimeMajor(dOutput: nil, dState: dState, cache: cache, hiddenGradients: records.map(\.pointer))
            }
            for l in 0..<L {
                for q in 0..<n {
                    // k = 0: the state after all T steps gets dFinal (top layer) or nothing.
                    if l == L - 1 { out[l][0] += dFinal.data.withUnsafeBufferPointer { norm($0.baseAddress! + (q0 + q) * H) } / Double(S) }
                    // The state after s steps is the one step s reads: slot s.
                    for s in 1..<T { out[l][T - s] += norm(records[l].pointer + (s * n + q) * H) / Double(S) }
                }
            }
        }
        return out
    }

    /// The global gradient norm of the parameters for the loss whose ∂/∂h_T (top layer) is `dFinal`.
    /// Leaves the parameters' `grad` as it found them, but writes them meanwhile: like training, it
    /// needs the layer to itself. Dropout is not applied and `dropout` not touched.
    public static func parameterGradientNorm(layer: RecurrentLayer, x: Tensor, dFinal: Tensor) -> Double {
        let S = x.shape[0], H = layer.hiddenSize, L = layer.numLayers
        var rng = SeededRNG(seed: 0)
        let saved = layer.parameters.map(\.grad)
        layer.zeroGrad()
        let (_, _, cacheOrNil) = layer.forward(x, state: nil, mode: .training, rng: &rng, applyingDropout: false)
        guard let cache = cacheOrNil else { fatalError("training forward returns a cache") }
        var dState = RecurrentState.zeros(kind: layer.kind, layers: L, batch: S, hidden: H)
        for i in 0..<(S * H) { dState.hidden.data[(L - 1) * S * H + i] = dFinal.data[i] }
        _ = layer.backward(dOutput: nil, dState: dState, cache: cache)
        let norm = Double(GradientClipping.globalNorm(layer.parameters))
        for (p, g) in zip(layer.parameters, saved) { p.grad = g }
        return norm
    }
}
