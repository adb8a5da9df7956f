import Foundation
import Testing
@testable import Recurrent

/// The conditional generator: vocabulary, teacher forcing, gradients, generation and checkpoints.
struct GeneratorTests {
    func model(cell: CellKind = .lstm, layers: Int = 1, seed: UInt64 = 5) -> ConditionalGenerator {
        var rng = SeededRNG(seed: seed)
        let config = GeneratorConfig(cell: cell, vocabulary: GeneratorConfig.vocabulary(for: ["abc", "abd", "xyz"]),
                                     conditions: ["A", "B"], embeddingSize: 3, conditionSize: 2, hiddenSize: 4, numLayers: layers)
        return ConditionalGenerator(config: config, rng: &rng)
    }

    @Test func vocabularyAndTeacherForcing() {
        let m = model()
        #expect(Array(m.config.vocabulary.tokens.prefix(4)) == ["<pad>", "<unk>", "<sos>", "<eos>"])
        #expect(m.config.vocabulary.tokens[4] == "a" || m.config.vocabulary.tokens[4] == "b")
        let ab = m.encode("ab"), q = m.encode("q")
        #expect(q == [TokenVocabulary.unkIndex])
        let (inputs, targets) = m.teacherForcing([ab, [ab[0]]])
        #expect(inputs.steps == 3 && inputs.lengths == [3, 2])
        #expect(Array(inputs.indices[0..<3]) == [2] + ab)
        #expect(targets == ab + [3] + [ab[0], 3, -100])
        #expect(m.decode(ab + [3]) == "ab")
    }

    @Test(arguments: [CellKind.lstm, .gru])
    func gradientsMatchFiniteDifferences(cell: CellKind) {
        let m = model(cell: cell, layers: 2)
        let texts = [m.encode("abc"), m.encode("xy"), m.encode("d")]
        let conditions: [Int32] = [0, 1, 1]
        var rng = SeededRNG(seed: 0)
        m.zeroGrad()
        _ = m.trainStep(texts, conditions: conditions, rng: &rng)
        for p in m.parameters {
            let r = GradCheck.parameter(p, eps: 1e-2) { Double(m.loss(texts, conditions: conditions).loss) }
            #expect(r.ratio <= 1, "\(cell) \(p.name): ratio \(r.ratio), max abs \(r.maxAbs)")
        }
        #expect(m.embedding.weight.grad.data[0..<3].allSatisfy { $0 == 0 }, "the padding row gets no gradient")
    }

    @Test func generationStopsAndIsSeeded() throws {
        let m = model()
        let settings = SamplingSettings(temperature: 1)
        let a = try m.generate(conditionIndex: 1, prime: m.encode("x"), count: 6, maxLength: 5, settings: settings, seed: 9)
        let b = try m.generate(conditionIndex: 1, prime: m.encode("x"), count: 6, maxLength: 5, settings: settings, seed: 9)
        #expect(a == b)
        #expect(a.count == 6 && a.allSatisfy { $0.first == m.encode("x")[0] && $0.count <= 5 && !$0.contains { $0 <= 3 } })
        // The model's logits for the prime must match a full teacher-forced pass (batched stepping is exact).
        let greedy = try m.generate(conditionIndex: 0, prime: [], count: 2, maxLength: 4, settings: SamplingSettings(greedy: true), seed: 1)
        #expect(greedy[0] == greedy[1])
    }

    @Test func learnsConditionSpecificNames() throws {
        // Two conditions with one name each: after training, greedy generation reproduces each.
        var rng = SeededRNG(seed: 7)
        let config = GeneratorConfig(cell: .gru, vocabulary: GeneratorConfig.vocabulary(for: ["anna", "bob"]), conditions: ["A", "B"],
                                     embeddingSize: 8, conditionSize: 4, hiddenSize: 16, numLayers: 1)
        let m = ConditionalGenerator(config: config, rng: &rng)
        let texts = [m.encode("anna"), m.encode("bob")]
        let optimizer = Adam(learningRate: 0.05)
        for _ in 0..<120 {
            m.zeroGrad()
            _ = m.trainStep(texts, conditions: [0, 1], rng: &rng)
            optimizer.step(m.parameters)
        }
        let greedy = SamplingSettings(greedy: true)
        #expect(m.decode(try m.generate(conditionIndex: 0, prime: [], count: 1, maxLength: 10, settings: greedy, seed: 1)[0]) == "anna")
        #expect(m.decode(try m.generate(conditionIndex: 1, prime: [], count: 1, maxLength: 10, settings: greedy, seed: 1)[0]) == "bob")
    }

    /// <pad>, <unk> and <sos> are never drawn, even when most likely; only <eos> or the length ends a sequence.
    /// `generate` feeds a shared prime once and repeats its final state for every sequence: the
    /// same state and logits, bit for bit, as feeding it to each row of a batch (what it did before,
    /// at count × prime length in memory).
    @Test(arguments: [CellKind.lstm, .gru])
    func primeFedOnceEqualsPrimeFedToEveryRow(cell: CellKind) throws {
        let m = model(cell: cell, layers: 2)
        let input = [GeneratorConfig.sosIndex] + m.encode("abcabd")
        var rng = SeededRNG(seed: 1)
        let one = m.forward(PaddedBatch([input]), conditions: [1], state: nil, mode: .inference, rng: &rng)
        let all = m.forward(PaddedBatch([[Int32]](repeating: input, count: 5)), conditions: [Int32](repeating: 1, count: 5),
                            state: nil, mode: .inference, rng: &rng)
        #expect(one.state.repeatingBatch(5) == all.state)
        let rowLength = one.logits.count
        for b in 0..<5 { #expect(Array(all.logits.data[(b * rowLength)..<((b + 1) * rowLength)]) == one.logits.data) }
        let primed = try m.generate(conditionIndex: 1, prime: m.encode("ab"), count: 7, maxLength: 12, settings: SamplingSettings(), seed: 3)
        #expect(primed.count == 7 && primed.allSatisfy { Array($0.prefix(2)) == m.encode("ab") && $0.count <= 12 })
        #expect(Set(primed).count > 1, "the sequences draw their own characters after the prime")
    }

    @Test func reservedEntriesAreNeverDrawn() throws {
        var rng = SeededRNG(seed: 3)
        let config = GeneratorConfig(cell: .lstm, vocabulary: GeneratorConfig.vocabulary(for: ["ab"]), conditions: ["A"],
                                     embeddingSize: 4, conditionSize: 2, hiddenSize: 8, numLayers: 1)
        let m = ConditionalGenerator(config: config, rng: &rng)
        m.head.bias.value.data[1] = 1000     // <unk>
        m.head.bias.value.data[2] = 900      // <sos>
        m.head.bias.value.data[3] = -1000    // <eos>
        for settings in [SamplingSettings(greedy: true), SamplingSettings(temperature: 1, topK: 2)] {
            let out = try m.generate(conditionIndex: 0, prime: [], count: 3, maxLength: 6, settings: settings, seed: 5)
            #expect(out.allSatisfy { $0.count == 6 && $0.allSatisfy { $0 > GeneratorConfig.eosIndex } }, "\(out)")
        }
    }

    @Test func checkpointRoundTrip() throws {
        let m = model(cell: .gru)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gen-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TaskCheckpoint.save(m, to: path)
        let loaded = try TaskCheckpoint.loadGenerator(path: path)
        #expect(loaded.config == m.config)
        let texts = [m.encode("abd")]
        #expect(loaded.loss(texts, conditions: [1]).loss == m.loss(texts, conditions: [1]).loss)
        let names = Set(try SafeTensors.read(path: path).tensors.keys)
        #expect(names.isSuperset(of: ["embedding.weight", "condition.weight", "rnn.weight_ih_l0", "head.weight", "head.bias"]))
    }
}
