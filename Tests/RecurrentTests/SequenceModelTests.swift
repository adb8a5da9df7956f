import Foundation
import Testing
@testable import Recurrent

@Suite struct SequencePoolingTests {
    @Test(arguments: [Pooling.mean, Pooling.max])
    func poolingGradientMatchesFiniteDifferences(mode: Pooling) {
        var rng = SeededRNG(seed: 11)
        var y = GradCheck.random([3, 4, 5], rng: &rng)
        let lengths = [4, 2, 0]
        let w = GradCheck.random([3, 5], rng: &rng)
        let (pooled, argmax) = SequencePooling.forward(y, lengths: lengths, mode: mode)
        // Nothing from padding: the empty sequence pools to zeros.
        #expect(pooled.data[10..<15].allSatisfy { $0 == 0 })
        let dy = SequencePooling.backward(w, lengths: lengths, steps: 4, mode: mode, argmax: argmax)
        #expect(dy.data[(1 * 4 + 2) * 5 ..< (1 * 4 + 4) * 5].allSatisfy { $0 == 0 })
        let r = GradCheck.worst(analytic: dy.data, eps: 1e-3, read: { y.data[$0] }, write: { y.data[$0] = $1 }) {
            GradCheck.dot(SequencePooling.forward(y, lengths: lengths, mode: mode).pooled, w)
        }
        #expect(r.ratio <= 1, "max abs error \(r.maxAbs)")
    }

    @Test func lastStateTakesForwardAndBackwardFinalsOfTheTopLayer() {
        // (L·R, B, H) = (4, 1, 2): layer 1 forward = [5,6], layer 1 reverse = [7,8].
        let h = Tensor(shape: [4, 1, 2], data: [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(SequencePooling.lastState(h, numLayers: 2, directions: 2).data == [5, 6, 7, 8])
        let d = SequencePooling.lastStateBackward(Tensor(shape: [1, 4], data: [1, 2, 3, 4]), numLayers: 2, directions: 2, hidden: 2)
        #expect(d.data == [0, 0, 0, 0, 1, 2, 3, 4])
    }
}

@Suite struct TextClassifierTests {
    /// The README's threads example, as written there (the checkpoint from a temporary file).
    @Test func readmeThreadsExample() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("recurrent-readme-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let vocab = TokenVocabulary(counting: [["a", "gripping", ",", "funny", "film", "dull", "and", "far", "too", "long"]])
        let config = ClassifierConfig(cell: .lstm, level: .word, lowercase: true, vocabulary: vocab, labels: ["0", "1"],
                                      embeddingSize: 4, hiddenSize: 4, numLayers: 2, bidirectional: true, pooling: .max, dropout: 0)
        var rng = SeededRNG(seed: 1)
        try TaskCheckpoint.save(TextClassifier(config: config, rng: &rng), to: path)
        let classifier = try TaskCheckpoint.loadClassifier(path: path)
        let sentences = ["a gripping , funny film", "dull and far too long"]
        let answers = await withTaskGroup(of: [Float].self) { group in
            for s in sentences { group.addTask { classifier.probabilities(PaddedBatch([classifier.encode(s)])).data } }
            var all: [[Float]] = []
            for await p in group { all.append(p) }
            return all
        }
        CachedMemory.release()
        #expect(answers.count == 2 && answers.allSatisfy { $0.count == 2 && abs($0.reduce(0, +) - 1) < 1e-5 })
    }

    /// The buffers a pass frees are kept for reuse until `CachedMemory.release()` hands them back.
    @Test func cachedMemoryIsReleasedOnRequest() {
        let model = Self.makeModel(pooling: .mean, bidirectional: true, layers: 2)
        _ = model.probabilities(PaddedBatch([[2, 3, 4, 5], [3, 2]]))
        #expect(CachedMemory.bytes > 0)
        #expect(CachedMemory.release() > 0)
        // Other tests may free buffers meanwhile; what this one kept is gone.
        _ = model.probabilities(PaddedBatch([[2, 3, 4, 5], [3, 2]]))
    }

    /// Models are Sendable: one classifier and one char-LM serve many tasks at once, each task
    /// getting the bits of a serial call (the compiler accepts the captures in Swift 6 mode).
    @Test func oneModelServesManyTasks() async {
        let model = Self.makeModel(pooling: .max, bidirectional: true, layers: 2)
        let vocab = CharVocabulary(text: Array("abcdefgh".unicodeScalars))
        var rng = SeededRNG(seed: 8)
        let lm = CharLM(config: CharLMConfig(cell: .gru, vocabulary: vocab, embeddingSize: 4, hiddenSize: 16, numLayers: 2), rng: &rng)
        var batches: [PaddedBatch] = []
        for k in 0..<8 {
            var rows: [[Int32]] = []
            for b in 0..<5 { rows.append((0..<(3 + (k + b) % 6)).map { i -> Int32 in Int32(2 + (i + k) % 4) }) }
            batches.append(PaddedBatch(rows))
        }
        let tokens = (0..<3000).map { Int32($0 * 5 % 8) }
        let serial = batches.map { model.probabilities($0).data }
        let serialLoss = lm.evaluate(tokens: tokens, chunk: 100)
        let results = await withTaskGroup(of: (Int, [Float], CharLMEvaluation).self) { group in
            for (k, batch) in batches.enumerated() {
                group.addTask { (k, model.probabilities(batch).data, lm.evaluate(tokens: tokens, chunk: 100)) }
            }
            var out: [(Int, [Float], CharLMEvaluation)] = []
            for await r in group { out.append(r) }
            return out
        }
        #expect(results.count == batches.count)
        for (k, p, e) in results {
            #expect(p == serial[k], "batch \(k)")
            #expect(e == serialLoss)
        }
    }

    static func makeModel(pooling: Pooling, bidirectional: Bool, cell: CellKind = .lstm, layers: Int = 1, dropout: Float = 0) -> TextClassifier {
        let vocab = TokenVocabulary(counting: [["a", "b", "c", "d"]])
        let config = ClassifierConfig(cell: cell, level: .word, lowercase: false, vocabulary: vocab, labels: ["x", "y", "z"],
                                      embeddingSize: 3, hiddenSize: 3, numLayers: layers, bidirectional: bidirectional,
                                      pooling: pooling, dropout: dropout)
        var rng = SeededRNG(seed: 5)
        return TextClassifier(config: config, rng: &rng)
    }

    @Test(arguments: [(Pooling.last, false), (.last, true), (.mean, true), (.max, true), (.max, false)])
    func gradientsMatchFiniteDifferences(pooling: Pooling, bidirectional: Bool) {
        let model = Self.makeModel(pooling: pooling, bidirectional: bidirectional, layers: 2)
        let batch = PaddedBatch([[2, 3, 4, 1], [5, 2], [3]])
        let targets: [Int32] = [0, 2, 1]
        var rng = SeededRNG(seed: 1)
        model.zeroGrad()
        _ = model.trainStep(batch, targets: targets, rng: &rng)
        for (name, p) in model.namedParameters {
            let r = GradCheck.parameter(p) { Double(Loss.softmaxCrossEntropy(logits: model.logits(batch), targets: targets).loss) }
            #expect(r.ratio <= 1, "\(name): max abs error \(r.maxAbs)")
        }
        // padding_idx: the padding row neither moves nor gets a gradient.
        #expect(model.embedding.weight.grad.data[0..<3].allSatisfy { $0 == 0 })
    }

    @Test func paddingDoesNotChangeTheResult() {
        let model = Self.makeModel(pooling: .mean, bidirectional: true)
        let alone = model.logits(PaddedBatch([[2, 3]]))
        let padded = model.logits(PaddedBatch([[2, 3], [4, 5, 2, 3, 4]]))
        #expect(Tensor(shape: [1, 3], data: Array(padded.data[0..<3])).maxAbsDifference(alone) < 1e-5)
    }

    @Test func overfitsAHandfulOfExamples() {
        let vocab = TokenVocabulary(counting: [["good", "bad", "film", "very", "not"]])
        let config = ClassifierConfig(cell: .gru, level: .word, lowercase: false, vocabulary: vocab, labels: ["neg", "pos"],
                                      embeddingSize: 8, hiddenSize: 8, numLayers: 1, bidirectional: true, pooling: .last)
        var rng = SeededRNG(seed: 2)
        let model = TextClassifier(config: config, rng: &rng)
        let texts = ["good film", "bad film", "very good film", "not good film", "very bad", "not bad film"]
        let y: [Int32] = [1, 0, 1, 0, 0, 1]
        let batch = PaddedBatch(texts.map(model.encode))
        let adam = Adam(learningRate: 0.02)
        var loss: Float = .infinity
        for _ in 0..<150 {
            model.zeroGrad()
            loss = model.trainStep(batch, targets: y, rng: &rng)
            adam.step(model.parameters)
        }
        #expect(loss < 0.05, "loss \(loss)")
    }

    @Test func checkpointRoundTrip() throws {
        let model = Self.makeModel(pooling: .max, bidirectional: true, cell: .gru)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cls-\(UUID().uuidString).safetensors").path
        try TaskCheckpoint.save(model, to: path)
        let file = try SafeTensors.read(path: path)
        #expect(file.tensors["rnn.weight_ih_l0_reverse"] != nil)
        #expect(file.tensors["head.weight"]?.shape == [3, 6])
        let back = try TaskCheckpoint.loadClassifier(path: path)
        #expect(back.config == model.config)
        let batch = PaddedBatch([[2, 3, 1]])
        #expect(back.logits(batch) == model.logits(batch))
        #expect(throws: RecurrentError.self) { _ = try TaskCheckpoint.loadTagger(path: path) }
    }
}

@Suite struct TaggerTests {
    static func makeModel(cell: CellKind = .lstm) -> Tagger {
        let words = TokenVocabulary(counting: [["the", "dog", "runs"]])
        let chars = TokenVocabulary(counting: [["t", "h", "e", "d", "o"]])
        let config = TaggerConfig(cell: cell, words: words, chars: chars, lowercase: true, tags: ["DET", "NOUN", "VERB"],
                                  wordEmbeddingSize: 3, charEmbeddingSize: 2, charHiddenSize: 2, hiddenSize: 3, numLayers: 1)
        var rng = SeededRNG(seed: 9)
        return Tagger(config: config, rng: &rng)
    }

    @Test(arguments: [CellKind.lstm, .gru])
    func gradientsMatchFiniteDifferencesThroughTheCharEncoder(cell: CellKind) {
        let model = Self.makeModel(cell: cell)
        // "dog" twice: its spelling is encoded once and receives both gradients.
        let batch = model.makeBatch([["The", "dog", "runs", "dog"], ["Hot", "x", "dog"]])
        #expect(batch.chars.batch == 5 && batch.spelling == [0, 1, 2, 1, 3, 4, 1])
        let targets = Tagger.targets([[0, 1, 2, 1], [1, 0, 1]], steps: batch.words.steps)
        var rng = SeededRNG(seed: 1)
        model.zeroGrad()
        _ = model.trainStep(batch, targets: targets, rng: &rng)
        for (name, p) in model.namedParameters {
            let r = GradCheck.parameter(p) { Double(Loss.softmaxCrossEntropy(logits: model.logits(batch), targets: targets).loss) }
            #expect(r.ratio <= 1, "\(name): max abs error \(r.maxAbs)")
        }
        #expect(model.charRNN.parameters.contains { p in p.grad.data.contains { $0 != 0 } })
    }

    @Test func lossIsTheMeanOverRealTokens() {
        let model = Self.makeModel()
        let batch = model.makeBatch([["the", "dog"], ["runs"]])
        let z = model.logits(batch)
        let targets = Tagger.targets([[0, 1], [2]], steps: 2)
        #expect(targets == [0, 1, 2, -100])
        let full = Loss.softmaxCrossEntropy(logits: z, targets: targets).loss
        var each: [Float] = []
        for (row, y) in [(0, Int32(0)), (1, 1), (2, 2)] {
            each.append(Loss.softmaxCrossEntropy(logits: Tensor(shape: [1, 3], data: Array(z.data[row * 3 ..< row * 3 + 3])), targets: [y]).loss)
        }
        #expect(abs(full - each.reduce(0, +) / 3) < 1e-5)
    }

    @Test func overfitsAFewSentences() {
        let sentences = [["the", "dog", "runs"], ["a", "cat", "sleeps"], ["the", "cat", "runs"], ["dogs", "sleep"]]
        let tags = [["DET", "NOUN", "VERB"], ["DET", "NOUN", "VERB"], ["DET", "NOUN", "VERB"], ["NOUN", "VERB"]]
        let tagSet = ["DET", "NOUN", "VERB"]
        let config = TaggerConfig(cell: .lstm, words: TokenVocabulary(counting: sentences),
                                  chars: TokenVocabulary(counting: sentences.map { $0.flatMap { $0.unicodeScalars.map { String($0) } } }),
                                  lowercase: false, tags: tagSet, wordEmbeddingSize: 6, charEmbeddingSize: 4, charHiddenSize: 4,
                                  hiddenSize: 8, numLayers: 1)
        var rng = SeededRNG(seed: 4)
        let model = Tagger(config: config, rng: &rng)
        let batch = model.makeBatch(sentences)
        let targets = Tagger.targets(tags.map { $0.map { Int32(tagSet.firstIndex(of: $0) ?? 0) } }, steps: batch.words.steps)
        let adam = Adam(learningRate: 0.02)
        var loss: Float = .infinity
        for _ in 0..<120 {
            model.zeroGrad()
            loss = model.trainStep(batch, targets: targets, rng: &rng)
            adam.step(model.parameters)
        }
        #expect(loss < 0.05, "loss \(loss)")
        // An unseen word tags through its characters without trapping.
        #expect(model.predict(model.makeBatch([["the", "zebra", "runs"]]))[0].count == 3)
    }

    @Test func checkpointRoundTrip() throws {
        let model = Self.makeModel(cell: .gru)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tag-\(UUID().uuidString).safetensors").path
        try TaskCheckpoint.save(model, to: path)
        let names = Set(try SafeTensors.read(path: path).tensors.keys)
        #expect(names.isSuperset(of: ["embedding.weight", "char_embedding.weight", "char_rnn.weight_ih_l0", "char_rnn.weight_hh_l0_reverse",
                                      "rnn.weight_ih_l0_reverse", "head.weight", "head.bias"]))
        let back = try TaskCheckpoint.loadTagger(path: path)
        #expect(back.config == model.config)
        let batch = back.makeBatch([["the", "Dog"]])
        #expect(back.logits(batch) == model.logits(batch))
    }
}

@Suite struct AdamSubnormalTests {
    /// Embedding rows outside the batch get zero gradients for many steps; their moments must end
    /// at exactly zero, never subnormal (which made training several times slower).
    @Test func momentsOfIdleParametersFlushToZero() {
        let p = Parameter(name: "w", value: Tensor(shape: [4], data: [0.5, -0.5, 1, 2]))
        let adam = Adam(learningRate: 0.01)
        p.grad = Tensor(shape: [4], data: [1e-3, -2e-3, 3e-3, 0])
        adam.step([p])
        p.grad.zero()
        for _ in 0..<1000 { adam.step([p]) }
        for (name, t) in adam.stateTensors(for: [p]) where name.hasSuffix("exp_avg") || name.hasSuffix("exp_avg_sq") {
            #expect(t.data.allSatisfy { $0 == 0 || abs($0) >= Float.leastNormalMagnitude }, "\(name): \(t.data)")
        }
    }
}

@Suite struct WordDropoutTests {
    @Test func replacesAboutPOfTheRealTokensAndNeverPadding() {
        var rng = SeededRNG(seed: 3)
        // 20,000 real tokens (indices 2...9) and 5,000 padding entries.
        let indices: [Int32] = (0..<25_000).map { $0 % 5 == 4 ? TokenVocabulary.padIndex : Int32(2 + $0 % 8) }
        for p: Float in [0.1, 0.3] {
            let out = WordDropout.apply(indices, p: p, rng: &rng)
            var replaced = 0
            for (a, b) in zip(indices, out) {
                if a == TokenVocabulary.padIndex { #expect(b == a) } else if b != a { #expect(b == TokenVocabulary.unkIndex); replaced += 1 }
            }
            let rate = Double(replaced) / 20_000
            #expect(abs(rate - Double(p)) < 0.015, "p \(p): replaced \(rate)")
        }
        let before = rng
        #expect(WordDropout.apply(indices, p: 0, rng: &rng) == indices)
        #expect(rng.next() == { var r = before; return r.next() }())
    }

    @Test func classifierUsesItOnlyInTraining() {
        let model = TextClassifierTests.makeModel(pooling: .max, bidirectional: true)
        let batch = PaddedBatch([[2, 3, 4, 5, 2, 3], [5, 2]])
        var rng = SeededRNG(seed: 8)
        let inference = model.forward(batch, mode: .inference, wordDropout: 0.9, rng: &rng)
        #expect(inference.batch == batch)
        #expect(inference.logits == model.logits(batch))
        let training = model.forward(batch, mode: .training, wordDropout: 0.9, rng: &rng)
        #expect(training.batch.indices.filter { $0 == TokenVocabulary.unkIndex }.count >= 4)
        #expect(training.batch.lengths == batch.lengths)
    }

    @Test func gradientsStillCheckWithWordDropout() {
        let model = TextClassifierTests.makeModel(pooling: .max, bidirectional: true, layers: 2)
        let batch = PaddedBatch([[2, 3, 4, 5], [5, 2], [3]])
        let targets: [Int32] = [0, 2, 1]
        var rng = SeededRNG(seed: 4)
        model.zeroGrad()
        let f = model.forward(batch, mode: .training, wordDropout: 0.5, rng: &rng)
        #expect(f.batch != batch)
        model.backward(Loss.softmaxCrossEntropy(logits: f.logits, targets: targets).dLogits, forward: f)
        // The loss of the batch as the embedding saw it (dropped words → <unk>); <unk>'s row learns.
        for (name, p) in model.namedParameters {
            let r = GradCheck.parameter(p) { Double(Loss.softmaxCrossEntropy(logits: model.logits(f.batch), targets: targets).loss) }
            #expect(r.ratio <= 1, "\(name): max abs error \(r.maxAbs)")
        }
        let E = model.config.embeddingSize
        #expect(model.embedding.weight.grad.data[E..<(2 * E)].contains { $0 != 0 })
    }

    @Test func separateDropoutsDefaultToDropout() {
        let vocab = TokenVocabulary(counting: [["a"]])
        let c = ClassifierConfig(cell: .gru, level: .word, lowercase: false, vocabulary: vocab, labels: ["x", "y"], embeddingSize: 2,
                                 hiddenSize: 2, numLayers: 1, bidirectional: false, pooling: .mean, dropout: 0.4, outputDropout: 0.1)
        #expect(c.embeddingDropout == 0.4 && c.outputDropout == 0.1)
    }
}

/// A task trainer over one weight w = 0: plain SGD at rate 1, batches of one of three examples,
/// `steps` steps, validation every `evalEvery`; `configure` changes the rest.
func oneWeightTrainer(steps: Int, evalEvery: Int, _ configure: (inout TaskTrainingOptions) -> Void = { _ in }) -> (TaskTrainer, Parameter) {
    var o = TaskTrainingOptions()
    o.optimizer.kind = .sgd
    o.optimizer.learningRate = 1
    o.maxSteps = steps
    o.evalEvery = evalEvery
    o.batchSize = 1
    configure(&o)
    let p = Parameter(name: "w", value: Tensor(shape: [1], data: [0]))
    return (TaskTrainer(parameters: [p], lengths: [1, 1, 1], options: o), p)
}

@Suite struct DivergenceTests {
    /// A trainer over one weight whose gradient is −1 and whose loss at `badStep` is `bad`.
    func run(badStep: Int, loss bad: Float, validation: Double = 0) throws -> (Parameter, [Int]) {
        let (trainer, p) = oneWeightTrainer(steps: 5, evalEvery: 2)
        var validated: [Int] = []
        var n = 0
        try trainer.run(step: { _, _ in n += 1; p.grad.data[0] = -1; return n == badStep ? bad : 1 },
                        validate: { validation }) { event in
            if case .validation(let pr, _, _) = event { validated.append(pr.step) }
        }
        return (p, validated)
    }

    @Test(arguments: [Float.nan, -Float.nan, Float.infinity])
    func aNonFiniteLossStopsBeforeTheOptimizerStep(bad: Float) throws {
        let (p, validated) = try run(badStep: 99, loss: 1)
        #expect(p.value.data == [5] && validated == [2, 4, 5])
        do {
            _ = try run(badStep: 3, loss: bad)
            Issue.record("expected an error")
        } catch let e as RecurrentError {
            #expect(e.message.hasPrefix("training diverged at step 3: the training loss is \(bad.isNaN ? "nan" : "inf")"), "\(e.message)")
        }
    }

    @Test func aNonFiniteValidationScoreStopsTheRun() throws {
        #expect(throws: RecurrentError.self) { try run(badStep: 99, loss: 1, validation: .nan) }
        #expect(throws: RecurrentError.self) { try run(badStep: 99, loss: 1, validation: -.infinity) }
    }

    @Test func aNonFiniteGradientStopsTheRun() throws {
        var o = TaskTrainingOptions()
        o.maxSteps = 3
        o.batchSize = 1
        let p = Parameter(name: "w", value: Tensor(shape: [1], data: [2]))
        let trainer = TaskTrainer(parameters: [p], lengths: [1], options: o)
        do {
            try trainer.run(step: { _, _ in p.grad.data[0] = .nan; return 1 }, validate: { 0 }) { _ in }
            Issue.record("expected an error")
        } catch let e as RecurrentError {
            #expect(e.message.hasPrefix("training diverged at step 1: the gradient norm is nan"), "\(e.message)")
        }
        #expect(p.value.data == [2])
    }
}

@Suite struct ResumeDataTests {
    @Test func aResumedRunOnOtherDataIsRefused() throws {
        func trainer(_ data: String) -> TaskTrainer {
            var o = TaskTrainingOptions()
            o.maxSteps = 2
            o.batchSize = 1
            o.dataFingerprint = data
            return TaskTrainer(parameters: [Parameter(name: "w", value: Tensor(shape: [1], data: [0]))], lengths: [1, 2], options: o)
        }
        let a = DataFingerprint.of([[Int32(1), 2], [3]], [Int32(0), 1])
        #expect(a != DataFingerprint.of([[Int32(1)], [2, 3]], [Int32(0), 1]))
        #expect(a != DataFingerprint.of([[Int32(1), 2], [3]], [Int32(1), 0]))
        #expect(a == DataFingerprint.of([[Int32(1), 2], [3]], [Int32(0), 1]))
        let first = trainer(a)
        try first.run(step: { _, _ in 1 }, validate: { 0 }) { _ in }
        let (tensors, meta) = first.trainingState()
        let saved = SafeTensorsFile(tensors: Dictionary(uniqueKeysWithValues: tensors), metadata: meta, order: tensors.map(\.0))
        try trainer(a).restore(from: saved, name: "s")
        let other = DataFingerprint.of([[Int32(1), 2], [3]], [Int32(1), 0])
        #expect(throws: RecurrentError.self) { try trainer(other).restore(from: saved, name: "s") }
    }
}

@Suite struct DecayAfterTests {
    /// char-rnn decays at the end of epoch e (1-based) when e >= learning_rate_decay_after.
    @Test func decayWaitsTheGivenEpochsAsCharRNN() throws {
        #expect((0..<5).map { LearningRateSchedule.decayEpoch($0, after: 0) } == [0, 1, 2, 3, 4])
        #expect((0..<5).map { LearningRateSchedule.decayEpoch($0, after: 1) } == [0, 1, 2, 3, 4])
        #expect((0..<5).map { LearningRateSchedule.decayEpoch($0, after: 2) } == [0, 0, 1, 2, 3])
        var o = TaskTrainingOptions()
        o.optimizer.learningRate = 1
        o.schedule = .exponential(gamma: 0.5)
        o.decayAfterEpochs = 2
        o.maxSteps = 8
        o.batchSize = 1
        let trainer = TaskTrainer(parameters: [Parameter(name: "w", value: Tensor(shape: [1], data: [0]))], lengths: [1, 1], options: o)
        var rates: [Float] = []
        try trainer.run(step: { _, _ in 1 }, validate: { 0 }) { event in
            if case .progress(let p) = event { rates.append(p.learningRate) }
        }
        #expect(rates == [1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25])
    }
}

@Suite struct PlateauTests {
    /// The rate of every step, with a validation after each step scoring `scores` in turn.
    func rates(_ scores: [Double], patience: Int, lr: Float = 1) throws -> [Float] {
        var o = TaskTrainingOptions()
        o.optimizer.learningRate = lr
        o.maxSteps = scores.count
        o.evalEvery = 1
        o.batchSize = 1
        o.plateauFactor = 0.5
        o.plateauPatience = patience
        let p = Parameter(name: "w", value: Tensor(shape: [1], data: [0]))
        let trainer = TaskTrainer(parameters: [p], lengths: scores.map { _ in 1 }, options: o)
        var rates: [Float] = []
        var v = 0
        try trainer.run(step: { _, _ in 0 }, validate: { v += 1; return scores[v - 1] }) { event in
            if case .progress(let pr) = event { rates.append(pr.learningRate) }
        }
        return rates
    }

    /// The rates `torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode, factor=0.5, patience=p)`
    /// gave (torch 2.15, `scheduler.step(score)` after each step, the rate read before it): the
    /// rate falls once more than `patience` validations in a row were not better, and a score must
    /// beat the best by a relative 1e-4 to count as better.
    @Test func ratesFollowReduceLROnPlateau() throws {
        let flat = [Double](repeating: 0.8, count: 6)
        #expect(try rates(flat, patience: 1) == [1, 1, 1, 0.5, 0.5, 0.25])
        #expect(try rates(flat, patience: 2) == [1, 1, 1, 1, 0.5, 0.5])
        #expect(try rates(flat, patience: 0) == [1, 1, 0.5, 0.25, 0.125, 0.0625])
        // Gains below the threshold are not improvements.
        #expect(try rates([0.8, 0.80001, 0.80002, 0.80003, 0.80004, 0.80005], patience: 1) == [1, 1, 1, 0.5, 0.5, 0.25])
        #expect(try rates([0.5, 0.4, 0.4, 0.6, 0.6, 0.6, 0.60001, 0.7], patience: 1) == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25])
        // A negated loss (what forecast and generate validate with) behaves as mode="min" on the loss.
        let losses = [2.0, 1.9999, 1.99985, 1.5, 1.49995, 1.4999, 1.4998]
        #expect(try rates(losses.map { -$0 }, patience: 1) == [1, 1, 1, 0.5, 0.5, 0.5, 0.25])
        // A cut that would change the rate by no more than torch's eps (1e-8) is skipped.
        #expect(try rates(flat, patience: 0, lr: 1e-8) == [Float](repeating: 1e-8, count: 6))
        #expect(try rates(flat, patience: 0, lr: 4e-8) == [4e-8, 4e-8, 2e-8, 2e-8, 2e-8, 2e-8])
    }
}

@Suite struct WeightAveragingTests {
    @Test func validatesTheAverageAndTrainsOnTheRawWeights() throws {
        let (trainer, p) = oneWeightTrainer(steps: 12, evalEvery: 4) { o in
            o.clipNorm = 0
            o.emaDecay = 0.5
        }
        var seen: [Float] = []
        // Gradient −1: the raw weight after step s is s.
        try trainer.run(step: { _, _ in p.grad.data[0] = -1; return 0 }, validate: { seen.append(p.value.data[0]); return Double(seen.count) }) { _ in }
        var average: Float = 0
        var expected: [Float] = []
        for s in 1...12 {
            let d = min(0.5, Float(1 + s) / Float(10 + s))
            average = d * average + (1 - d) * Float(s)
            if s % 4 == 0 { expected.append(average) }
        }
        #expect(seen.count == 3)
        for (a, b) in zip(seen, expected) { #expect(abs(a - b) < 1e-5, "\(seen) vs \(expected)") }
        #expect(seen[2] < 12)
        #expect(p.value.data[0] == 12)
    }
}

@Suite struct EmbeddingScaleTests {
    @Test func scalesOnlyTheInitialEmbeddings() {
        let vocab = TokenVocabulary(counting: [["a", "b"]])
        let config = ClassifierConfig(cell: .gru, level: .word, lowercase: false, vocabulary: vocab, labels: ["x", "y"], embeddingSize: 3,
                                      hiddenSize: 2, numLayers: 1, bidirectional: false, pooling: .max)
        var r1 = SeededRNG(seed: 6), r2 = SeededRNG(seed: 6)
        let a = TextClassifier(config: config, rng: &r1), b = TextClassifier(config: config, embeddingScale: 0.1, rng: &r2)
        for (x, y) in zip(a.embedding.weight.value.data, b.embedding.weight.value.data) { #expect(abs(x * 0.1 - y) < 1e-7) }
        #expect(a.head.weight.value == b.head.weight.value)
    }
}
