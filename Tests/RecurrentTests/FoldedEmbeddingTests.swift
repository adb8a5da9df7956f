import Foundation
import Testing
@testable import Recurrent

/// The embedding folded into layer 0's input projection (`TokenInput`) against the plain path:
/// a lookup into (T,B,E) vectors, the stack on those, and the embedding's scatter of dx.
@Suite struct FoldedEmbeddingTests {
    struct Setup {
        let embedding: Embedding
        let rnn: RecurrentLayer
        let ids: [Int32]
        let B: Int, T: Int
    }

    static func setup(_ kind: CellKind, layers: Int = 2, bidirectional: Bool = false, dropout: Float = 0,
                      V: Int = 7, E: Int = 5, H: Int = 6, B: Int = 3, T: Int = 9, seed: UInt64 = 3) -> Setup {
        var rng = SeededRNG(seed: seed)
        let embedding = Embedding(count: V, dimension: E, rng: &rng)
        let rnn = RecurrentLayer(kind: kind, inputSize: E, hiddenSize: H, numLayers: layers, dropout: dropout,
                                 bidirectional: bidirectional, rng: &rng)
        // Every token appears, some many times (B·T > V), so the per-token sums add several rows.
        let ids = (0..<(B * T)).map { Int32(($0 * 5 + $0 / 4) % V) }
        return Setup(embedding: embedding, rnn: rnn, ids: ids, B: B, T: T)
    }

    /// One forward and backward pass with a fixed dOutput and dState; returns the outputs, the
    /// final state and every gradient (the stack's, then the embedding's).
    static func run(_ s: Setup, folded: Bool, lengths: [Int]? = nil,
                    initialStateGradient: Bool = true) -> (y: [Float], state: RecurrentState, grads: [[Float]], dInitial: RecurrentState) {
        let B = s.B, T = s.T, R = s.rnn.directionCount, H = s.rnn.hiddenSize, L = s.rnn.numLayers
        for p in s.rnn.parameters + s.embedding.parameters { p.grad = Tensor(shape: p.shape) }
        var rng = SeededRNG(seed: 11)   // dropout masks: the same draws on both paths
        let tokens = folded ? TokenInput(batchMajor: s.ids, batch: B, steps: T, embedding: s.embedding) : nil
        let input = folded ? LayerBuffer(0) : s.embedding.forwardTimeMajor(s.ids, batch: B, steps: T)
        var init0 = RecurrentState.zeros(kind: s.rnn.kind, layers: L * R, batch: B, hidden: H)
        for i in 0..<init0.hidden.count { init0.hidden.data[i] = Float(i % 5) * 0.1 - 0.2 }
        let (y, state, cacheOrNil) = s.rnn.forward(timeMajor: input, batch: B, steps: T, state: init0, mode: .training,
                                                   rng: &rng, lengths: lengths, tokens: tokens)
        guard let cache = cacheOrNil else { preconditionFailure("training returns a cache") }
        var gr = SeededRNG(seed: 5)
        let dy = GradCheck.random([B, T, R * H], rng: &gr)
        let dState = RecurrentState(hidden: GradCheck.random([L * R, B, H], rng: &gr),
                                    cell: s.rnn.kind.hasCellState ? GradCheck.random([L * R, B, H], rng: &gr) : nil)
        let (dx, dInitial) = s.rnn.backwardTimeMajor(dOutput: dy, dState: dState, cache: cache, consumingCache: true,
                                                     initialStateGradient: initialStateGradient)
        if !folded { s.embedding.backwardTimeMajor(dx, indices: s.ids, batch: B, steps: T) }
        return (y.data, state, (s.rnn.parameters + s.embedding.parameters).map { $0.grad.data }, dInitial)
    }

    static let kinds: [CellKind] = [.rnnTanh, .rnnRelu, .lstm, .gru]

    /// Without the initial state's gradient (what `CharLM.trainStep` asks for) the last step's
    /// product through W_hh is skipped: every weight gradient keeps its bits, on tokens and on
    /// vectors, with and without lengths, one and two directions; the initial state's gradient
    /// comes back as zeros.
    @Test(arguments: kinds)
    func droppingTheInitialStateGradientKeepsTheRest(kind: CellKind) {
        for (bidirectional, lengths) in [(false, nil), (true, nil), (false, [9, 4, 7]), (true, [3, 9, 9])] as [(Bool, [Int]?)] {
            for folded in [false, true] {
                let s = Self.setup(kind, bidirectional: bidirectional)
                let full = Self.run(s, folded: folded, lengths: lengths)
                let dropped = Self.run(s, folded: folded, lengths: lengths, initialStateGradient: false)
                #expect(full.grads == dropped.grads, "\(kind) bidirectional \(bidirectional) lengths \(lengths ?? []) folded \(folded)")
                #expect(full.dInitial.hidden.data.contains { $0 != 0 })
                #expect(dropped.dInitial.hidden.data.allSatisfy { $0 == 0 })
                #expect(dropped.dInitial.cell?.data.allSatisfy { $0 == 0 } ?? true)
            }
        }
    }

    @Test(arguments: kinds)
    func foldedForwardGivesTheSameBits(kind: CellKind) {
        let s = Self.setup(kind)
        let plain = Self.run(s, folded: false), folded = Self.run(s, folded: true)
        #expect(plain.y == folded.y)
        #expect(plain.state == folded.state)
        #expect(plain.y.contains { $0 != 0 })
    }

    @Test(arguments: kinds)
    func foldedBackwardMatchesTheLookup(kind: CellKind) {
        let s = Self.setup(kind)
        let plain = Self.run(s, folded: false), folded = Self.run(s, folded: true)
        let names = s.rnn.parameters.map(\.name) + ["embedding.weight"]
        for (i, name) in names.enumerated() {
            let a = plain.grads[i], b = folded.grads[i]
            let scale = a.map { abs($0) }.max() ?? 0
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            #expect(scale > 0, "\(name) has a gradient")
            #expect(worst <= 2e-6 * max(1, scale), "\(kind) \(name): folded and plain gradients differ by \(worst)")
        }
    }

    /// B·T ≥ 1024 rows: the per-token sums run over two fixed halves of the rows (GRU's n part from
    /// dn apart). Against the lookup, and the same bits on one thread as on two.
    @Test(arguments: [CellKind.rnnTanh, .gru])
    func foldedBackwardInHalvesMatchesTheLookup(kind: CellKind) {
        let s = Self.setup(kind, layers: 1, V: 9, E: 4, H: 5, B: 16, T: 70)
        let plain = Self.run(s, folded: false), folded = Self.run(s, folded: true)
        for (a, b) in zip(plain.grads, folded.grads) {
            let scale = a.map { abs($0) }.max() ?? 0
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            #expect(scale > 0 && worst <= 2e-6 * max(1, scale), "\(kind): folded and plain gradients differ by \(worst)")
        }
        let saved = Threading.count
        defer { Threading.count = saved }
        Threading.count = 1
        let one = Self.run(s, folded: true)
        Threading.count = 2
        let two = Self.run(s, folded: true)
        #expect(one.grads == two.grads && one.grads == folded.grads)
    }

    /// Bidirectional, variable lengths and dropout between the layers: the fold only touches layer
    /// 0's input side, the rest must not notice.
    @Test(arguments: [CellKind.lstm, .gru])
    func foldedBidirectionalPackedWithDropoutMatches(kind: CellKind) {
        let s = Self.setup(kind, bidirectional: true, dropout: 0.3, B: 4, T: 8)
        let lengths = [8, 3, 5, 0]
        let plain = Self.run(s, folded: false, lengths: lengths), folded = Self.run(s, folded: true, lengths: lengths)
        #expect(plain.y == folded.y)
        #expect(plain.state == folded.state)
        for (a, b) in zip(plain.grads, folded.grads) {
            let scale = a.map { abs($0) }.max() ?? 0
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 2e-6 * max(1, scale))
        }
    }

    /// The folded gradients of the embedding and of weight_ih_l0 / bias_ih_l0 against central
    /// differences of the loss Σ dy·y + Σ dState·state (Double sums).
    @Test(arguments: kinds)
    func foldedGradientsMatchFiniteDifferences(kind: CellKind) {
        let s = Self.setup(kind, layers: 1, V: 5, E: 3, H: 4, B: 2, T: 6)
        let (B, T, H) = (s.B, s.T, s.rnn.hiddenSize)
        var gr = SeededRNG(seed: 5)
        let dy = GradCheck.random([B, T, H], rng: &gr)
        let dh = GradCheck.random([1, B, H], rng: &gr)
        func loss() -> Double {
            var rng = SeededRNG(seed: 1)
            let tokens = TokenInput(batchMajor: s.ids, batch: B, steps: T, embedding: s.embedding)
            let (y, state, _) = s.rnn.forward(timeMajor: LayerBuffer(0), batch: B, steps: T, state: nil, mode: .inference,
                                              rng: &rng, tokens: tokens)
            return GradCheck.dot(y, dy) + GradCheck.dot(state.hidden, dh)
        }
        for p in s.rnn.parameters + s.embedding.parameters { p.grad = Tensor(shape: p.shape) }
        var rng = SeededRNG(seed: 1)
        let tokens = TokenInput(batchMajor: s.ids, batch: B, steps: T, embedding: s.embedding)
        let (_, _, cacheOrNil) = s.rnn.forward(timeMajor: LayerBuffer(0), batch: B, steps: T, state: nil, mode: .training,
                                               rng: &rng, tokens: tokens)
        guard let cache = cacheOrNil else { preconditionFailure("training returns a cache") }
        _ = s.rnn.backwardTimeMajor(dOutput: dy, dState: RecurrentState(hidden: dh, cell: nil), cache: cache)
        for p in [s.embedding.weight, s.rnn.parameters[0], s.rnn.parameters[2]] {
            let check = GradCheck.parameter(p, eps: 1e-2, loss: loss)
            #expect(check.ratio <= 1, "\(kind) \(p.name): worst ratio \(check.ratio), max abs \(check.maxAbs)")
        }
    }

    /// A stack of one-direction layers with dropout between them, trained as `recurrent train` does
    /// (consuming the cache): the dropout mask is applied to the input gradient only (it was
    /// applied over the whole spent buffer the gradient sat in, LSTM's T + 1 cell slots, reading
    /// B·H floats past the mask's end: `recurrent train --dropout 0.2` crashed). The gradients
    /// themselves: `RecurrentLayerTests.consumingBackwardMatchesDefault`.
    @Test(arguments: [CellKind.lstm, .gru, .rnnTanh])
    func charLMWithDropoutTrains(kind: CellKind) {
        let vocab = CharVocabulary(text: Array("abcdefghijklmnopqrstuvwxyz .,;!?\n".unicodeScalars))
        var rng = SeededRNG(seed: 42)
        let m = CharLM(config: CharLMConfig(cell: kind, vocabulary: vocab, embeddingSize: 32, hiddenSize: 128, numLayers: 3,
                                            dropout: 0.2), rng: &rng)
        let B = 32, T = 50, V = Int32(vocab.count)
        let x = (0..<(B * T)).map { Int32(($0 * 7 + $0 / 11) % Int(V)) }, y = x.map { ($0 + 1) % V }
        var losses: [Float] = []
        let adam = Adam(learningRate: 0.01)
        for _ in 0..<3 {
            m.zeroGrad()
            losses.append(m.trainStep(inputs: x, targets: y, batch: B, steps: T, state: nil, rng: &rng).loss)
            #expect(m.parameters.allSatisfy { $0.grad.data.allSatisfy(\.isFinite) })
            adam.step(m.parameters)
        }
        #expect(losses.allSatisfy(\.isFinite) && losses[2] < losses[0], "\(kind): \(losses)")
    }

    @Test func charLMFoldsWhenTheVocabularyIsSmallerThanTheChunk() {
        #expect(CharLM.folds(vocabulary: 65, rows: 5000) == (ProcessInfo.processInfo.environment["RECURRENT_NO_FOLD"] != "1"))
        #expect(!CharLM.folds(vocabulary: 65, rows: 65))
        #expect(!CharLM.folds(vocabulary: 10_000, rows: 5000))
    }
}
