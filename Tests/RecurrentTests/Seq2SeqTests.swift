import Foundation
import Testing
@testable import Recurrent

@Suite struct Seq2SeqTests {
    static let sources: [[Int32]] = [[4, 5, 6], [7, 4], [5]]
    static let targets: [[Int32]] = [[4, 6, 5, 7], [5], [6, 4]]

    static func makeModel(cell: CellKind = .gru, attention: AttentionKind, bidirectional: Bool = false, layers: Int = 1,
                          dropout: Float = 0, seed: UInt64 = 3, embedding: Int = 3, hidden: Int = 4) -> Seq2Seq {
        let words = [["a", "b", "c", "d"]]
        let config = Seq2SeqConfig(cell: cell, attention: attention, source: TranslationVocabulary.make(counting: words),
                                   target: TranslationVocabulary.make(counting: words), embeddingSize: embedding, hiddenSize: hidden,
                                   numLayers: layers, bidirectional: bidirectional, dropout: dropout)
        var rng = SeededRNG(seed: seed)
        return Seq2Seq(config: config, rng: &rng)
    }

    /// Every parameter of the whole model (embeddings, encoder, bridge, attention, decoder step
    /// loop, combine, output) against central differences of the training loss.
    static func checkGradients(_ model: Seq2Seq, teacherForcing: Float) {
        func loss() -> Double {
            var rng = SeededRNG(seed: 42)
            return Double(model.forward(sources: sources, targets: targets, teacherForcing: teacherForcing, mode: .training, rng: &rng).loss)
        }
        model.zeroGrad()
        var rng = SeededRNG(seed: 42)
        _ = model.trainStep(sources: sources, targets: targets, teacherForcing: teacherForcing, rng: &rng)
        for (name, p) in model.namedParameters {
            let r = GradCheck.parameter(p, loss: loss)
            #expect(r.ratio <= 1, "\(name): max abs error \(r.maxAbs)")
        }
    }

    /// A checkpoint with the model keys only (as one written from PyTorch) loads, its data cut
    /// taken as `translate train`'s defaults.
    @Test func aCheckpointWithoutDataKeysLoads() throws {
        let model = Self.makeModel(attention: .bahdanau)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("s2s-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SafeTensors.write(model.namedParameters.map { ($0.0, $0.1.value) }, metadata: TaskCheckpoint.seq2seqMetadata(model.config), to: path)
        let (loaded, data) = try TaskCheckpoint.loadSeq2Seq(path: path)
        #expect(data == TaskCheckpoint.TranslationDataSettings(filter: TranslationFilter(maxWords: nil, prefixes: []), reverse: false,
                                                               splitSeed: 1, testFraction: 0.1, validFraction: 0.05))
        #expect(loaded.translate([["a", "b"]], maxLength: 5) == model.translate([["a", "b"]], maxLength: 5))
    }

    @Test(arguments: [(CellKind.gru, AttentionKind.none, false), (.gru, .bahdanau, false), (.gru, .luong, false),
                      (.lstm, .bahdanau, true), (.lstm, .luong, true), (.lstm, .none, true), (.gru, .luong, true)])
    func gradientsMatchFiniteDifferences(cell: CellKind, attention: AttentionKind, bidirectional: Bool) {
        Self.checkGradients(Self.makeModel(cell: cell, attention: attention, bidirectional: bidirectional), teacherForcing: 1)
    }

    @Test func gradientsMatchWithTwoLayersDropoutAndFreeRunning() {
        // The same seed draws the same dropout masks and teacher-forcing decisions in every evaluation.
        Self.checkGradients(Self.makeModel(cell: .lstm, attention: .bahdanau, bidirectional: true, layers: 2, dropout: 0.2), teacherForcing: 0.5)
        Self.checkGradients(Self.makeModel(cell: .gru, attention: .luong, layers: 2), teacherForcing: 0)
    }

    @Test func attentionGradientsMatchFiniteDifferences() {
        for kind in [AttentionKind.bahdanau, .luong] {
            var rng = SeededRNG(seed: 9)
            let attention = Attention(kind: kind, keySize: 5, querySize: 4, rng: &rng)
            var values = GradCheck.random([2, 3, 5], rng: &rng)
            for k in 0..<5 { values.data[(1 * 3 + 2) * 5 + k] = 0 }  // padding of row 1 (length 2)
            var query = GradCheck.random([2, 4], rng: &rng)
            let lengths = [3, 2]
            let w = GradCheck.random([2, 5], rng: &rng)
            func loss() -> Double {
                let m = attention.memory(values: values, lengths: lengths)
                return GradCheck.dot(attention.forward(query: query, memory: m).context, w)
            }
            attention.zeroGrad()
            let m = attention.memory(values: values, lengths: lengths)
            let (context, step) = attention.forward(query: query, memory: m)
            #expect(step.weights.data[5] == 0, "padding gets no weight")
            #expect(abs(step.weights.data[3] + step.weights.data[4] - 1) < 1e-6)
            #expect(context.shape == [2, 5])
            var dKeys = Tensor(shape: m.keys.shape), dValues = Tensor(shape: values.shape)
            let dq = attention.backward(dContext: w, step: step, memory: m, dKeys: &dKeys, dValues: &dValues)
            attention.memoryBackward(dKeys: dKeys, memory: m, dValues: &dValues)
            let rq = GradCheck.worst(analytic: dq.data, eps: 1e-2, read: { query.data[$0] }, write: { query.data[$0] = $1 }, loss: loss)
            #expect(rq.ratio <= 1, "\(kind) dQuery: \(rq.maxAbs)")
            let rv = GradCheck.worst(analytic: dValues.data, eps: 1e-2, read: { values.data[$0] }, write: { values.data[$0] = $1 }, loss: loss)
            #expect(rv.ratio <= 1, "\(kind) dValues: \(rv.maxAbs)")
            for (name, p) in attention.namedParameters {
                let r = GradCheck.parameter(p, loss: loss)
                #expect(r.ratio <= 1, "\(kind) \(name): \(r.maxAbs)")
            }
        }
    }

    @Test func bridgeSumsDirectionsAndCopiesTheGradient() {
        // (L·R, B, H) = (4, 1, 2) → (2, 1, 2)
        let s = RecurrentState(hidden: Tensor(shape: [4, 1, 2], data: [1, 2, 3, 4, 5, 6, 7, 8]), cell: nil)
        #expect(Bridge.forward(s, bidirectional: true).hidden.data == [4, 6, 12, 14])
        let d = Bridge.backward(RecurrentState(hidden: Tensor(shape: [2, 1, 2], data: [1, 2, 3, 4]), cell: nil), bidirectional: true)
        #expect(d.hidden.data == [1, 2, 1, 2, 3, 4, 3, 4])
        #expect(Bridge.forward(s, bidirectional: false) == s)
    }

    /// A model trained a little on a copy task, so that decoding has real preferences.
    static func trainedCopyModel(attention: AttentionKind) -> Seq2Seq {
        let model = makeModel(cell: .gru, attention: attention, seed: 7, embedding: 8, hidden: 16)
        var options = OptimizerSettings()
        options.learningRate = 0.03
        let optimizer = options.make()
        var rng = SeededRNG(seed: 1)
        let data: [[Int32]] = [[4, 5, 6], [5, 4], [6, 6, 4], [7, 5], [4, 7, 6, 5], [6]]
        for _ in 0..<100 {
            model.zeroGrad()
            _ = model.trainStep(sources: data, targets: data, teacherForcing: 1, rng: &rng)
            optimizer.step(model.parameters)
        }
        return model
    }

    @Test func trainingLearnsToCopyAndBeamOneIsGreedy() {
        let model = Self.trainedCopyModel(attention: .luong)
        let data: [[Int32]] = [[4, 5, 6], [5, 4], [6, 6, 4], [7, 5], [4, 7, 6, 5], [6]]
        #expect(model.loss(sources: data, targets: data) < 0.3)
        let greedy = model.greedy(data, maxLength: 8)
        #expect(greedy == data)
        for (i, s) in data.enumerated() {
            #expect(model.beamSearch(s, beam: 1, maxLength: 8) == greedy[i])
            #expect(model.beamSearch(s, beam: 3, maxLength: 8).count <= 8)
        }
        // Padding in a batch does not change a sentence's translation.
        #expect(model.greedy([data[4]], maxLength: 8) == [greedy[4]])
    }

    @Test func teacherForcingSchedules() {
        #expect(TeacherForcing(start: 0.7).ratio(step: 10_000) == 0.7)
        let linear = TeacherForcing(start: 1, floor: 0.2, decay: .linear, steps: 100)
        #expect(linear.ratio(step: 0) == 1 && abs(linear.ratio(step: 50) - 0.6) < 1e-6 && abs(linear.ratio(step: 500) - 0.2) < 1e-6)
        let exponential = TeacherForcing(start: 1, floor: 0, decay: .exponential, steps: 100)
        #expect(abs(exponential.ratio(step: 50) - 0.1) < 1e-6 && abs(exponential.ratio(step: 100) - 0.01) < 1e-6)
        // A floor above the start never raises the ratio.
        #expect(TeacherForcing(start: 0.3, floor: 0.8, decay: .linear, steps: 10).ratio(step: 20) == 0.3)
    }

    @Test func topIndicesKeepsTheLargestWithLowIndicesOnTies() {
        #expect(Seq2Seq.topIndices([0.1, 0.5, 0.3, 0.5, -1], 3) == [1, 3, 2])
        #expect(Seq2Seq.topIndices([2, 2, 2], 2) == [0, 1])
        #expect(Seq2Seq.topIndices([1], 4) == [0])
    }

    @Test func beamOneIsGreedyOnAnUntrainedModelToo() {
        let model = Self.makeModel(attention: .bahdanau, bidirectional: true, seed: 11)
        let greedy = model.greedy(Self.sources, maxLength: 6)
        for (i, s) in Self.sources.enumerated() { #expect(model.beamSearch(s, beam: 1, maxLength: 6) == greedy[i]) }
    }

    @Test func decodingNeverEmitsPadOrSos() {
        // An output bias that ranks <sos> and <pad> first, as an undertrained model can.
        let model = Self.makeModel(attention: .bahdanau, seed: 3)
        model.out.bias.value.data[Int(TranslationVocabulary.sosIndex)] = 50
        model.out.bias.value.data[Int(TranslationVocabulary.padIndex)] = 40
        let special: Set<Int32> = [TranslationVocabulary.padIndex, TranslationVocabulary.sosIndex]
        for y in model.greedy(Self.sources, maxLength: 5) { #expect(y.allSatisfy { !special.contains($0) }) }
        for s in Self.sources {
            for k in [1, 3, model.config.target.count] {
                let y = model.beamSearch(s, beam: k, maxLength: 5)
                #expect(y.allSatisfy { !special.contains($0) })
            }
        }
    }
}
