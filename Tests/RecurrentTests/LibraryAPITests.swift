import Foundation
import Testing
@testable import Recurrent

/// The library as a Swift program uses it: loading weights into a layer of its own, writing
/// safetensors, and misuse that must stop with a message rather than read past a buffer.
@Suite struct LibraryAPITests {
    /// PyTorch's case for a 2-layer LSTM, less its float64 copies of the weights (`rnn.*.f64`).
    static func fixture() throws -> SafeTensorsFile {
        var file = try SafeTensors.read(path: Fixtures.torch("lstm_2layer.safetensors"))
        file.order.removeAll { $0.hasSuffix(".f64") }
        file.tensors = file.tensors.filter { !$0.key.hasSuffix(".f64") }
        return file
    }

    static func layer() -> RecurrentLayer {
        var rng = SeededRNG(seed: 3)
        return RecurrentLayer(kind: .lstm, inputSize: 5, hiddenSize: 6, numLayers: 2, rng: &rng)
    }

    @Test func aLayerLoadsATorchStateDictUnderAPrefix() throws {
        let file = try Self.fixture(), lstm = Self.layer()
        // The fixture also holds x, h0, out, grad.rnn.* …: only the names under "rnn." are the layer's.
        try lstm.load(file, prefix: "rnn.", path: "lstm_2layer.safetensors")
        let t = file.tensors
        var rng = SeededRNG(seed: 1)
        let (out, state, _) = lstm.forward(try #require(t["x"]), state: RecurrentState(hidden: try #require(t["h0"]), cell: t["c0"]),
                                           mode: .inference, rng: &rng)
        #expect(out.maxAbsDifference(try #require(t["out"])) < 1e-5)
        #expect(state.hidden.maxAbsDifference(try #require(t["h_n"])) < 1e-5)
    }

    @Test func loadingIsStrictAndAllOrNothing() throws {
        let file = try Self.fixture()
        func message(_ edit: (inout SafeTensorsFile) -> Void, prefix: String = "rnn.") -> (String?, Bool) {
            var f = file
            edit(&f)
            let lstm = Self.layer()
            let before = lstm.parameters.map(\.value)
            let error: String?
            do { try lstm.load(f, prefix: prefix, path: "m.safetensors"); error = nil } catch let e as RecurrentError { error = e.message } catch { return ("\(error)", false) }
            return (error, lstm.parameters.map(\.value) == before)
        }
        let shape = message { $0.tensors["rnn.weight_ih_l1"] = Tensor(shape: [24, 5]) }
        #expect(shape.0 == "m.safetensors: tensor rnn.weight_ih_l1 has shape [24, 5], expected [24, 6]")
        #expect(shape.1, "nothing is copied when a check fails")
        let missing = message { $0.tensors["rnn.bias_hh_l1"] = nil; $0.order.removeAll { $0 == "rnn.bias_hh_l1" } }
        #expect(missing.0 == "m.safetensors: the checkpoint lacks tensor rnn.bias_hh_l1 (shape [24])")
        let extra = message { $0.tensors["rnn.weight_hr_l0"] = Tensor(shape: [1]); $0.order.append("rnn.weight_hr_l0") }
        #expect(extra.0 == "m.safetensors: unexpected tensor rnn.weight_hr_l0 under 'rnn.' (the module's 8 tensors are named as its state_dict)")
        #expect(extra.1)
        let nan = message { $0.tensors["rnn.bias_ih_l0"]?.data[3] = .nan }
        #expect(nan.0 == "m.safetensors: tensor rnn.bias_ih_l0 holds nan or infinite values; the checkpoint is corrupt")
        // Without a prefix every tensor of the file counts, so the fixture's x is one too many.
        #expect(message({ _ in }, prefix: "").0?.hasPrefix("m.safetensors: the checkpoint lacks tensor weight_ih_l0") == true)
    }

    @Test func safetensorsRefusesToWriteWhatItCouldNotRead() throws {
        let t = Tensor(shape: [2], repeating: 1)
        func message(_ tensors: [(String, Tensor)]) -> String? {
            do { _ = try SafeTensors.encode(tensors, metadata: ["a": "b"]); return nil } catch let e as RecurrentError { return e.message } catch { return "\(error)" }
        }
        #expect(message([("w", t), ("w", t)]) == "safetensors: tensor w is given twice")
        #expect(message([("__metadata__", t)]) == "safetensors: a tensor cannot be named __metadata__ (the format reserves it)")
        var bad = t
        bad.data.append(3)
        #expect(message([("w", bad)]) == "safetensors: tensor w has shape [2] but 3 numbers")
        let good = try SafeTensors.decode(try SafeTensors.encode([("w", t), ("v", bad.reshaped([3]))], metadata: ["a": "b"]), name: "x")
        #expect(good.order == ["w", "v"] && good.metadata == ["a": "b"])
    }

    /// From another module (as this test is), changing a parameter in place reaches its storage:
    /// a `didSet` check had made every such change copy the whole tensor first.
    @Test func aParameterChangesInPlaceFromAnotherModule() {
        let p = Parameter(name: "w", value: Tensor(shape: [1000, 100], repeating: 1))
        let before = p.value.data.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        let during = p.value.data.withUnsafeMutableBufferPointer { b -> UInt in b[0] = 2; return UInt(bitPattern: b.baseAddress) }
        p.value.data[1] = 3
        let after = p.value.data.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        #expect(before == during && during == after, "no copy")
        #expect(p.value.data[0] == 2 && p.value.data[1] == 3 && p.value.data[2] == 1)
    }

    @Test func trainingEventsAreSendable() {
        // Compiles only when they are (a program forwards them to its UI's actor in a Task).
        func sendable<T: Sendable>(_: T.Type) -> String { "\(T.self)" }
        #expect(sendable(TrainingEvent.self) == "TrainingEvent" && sendable(TaskTrainingEvent.self) == "TaskTrainingEvent")
    }

    @Test func insightToolsLeaveASharedModelsDropoutAlone() async throws {
        var rng = SeededRNG(seed: 2)
        let text = Array("the cat sat on the mat, the dog sat on the log. ".unicodeScalars)
        let vocabulary = CharVocabulary(text: text)
        let lm = CharLM(config: CharLMConfig(cell: .lstm, vocabulary: vocabulary, embeddingSize: 8, hiddenSize: 16, numLayers: 2,
                                             dropout: 0.5), rng: &rng)
        let tokens = try vocabulary.encode(text, source: "text")
        let alone = ActivationAnalysis.run(model: lm, tokens: tokens, text: text, storedUnits: 2, chunk: 16)
        // Overlapping calls each saved the dropout another had set to 0, and one put that 0 back.
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { _ = ActivationAnalysis.run(model: lm, tokens: tokens, text: text, storedUnits: 2, chunk: 16) } }
        }
        #expect(lm.rnn.dropout == 0.5)
        let again = ActivationAnalysis.run(model: lm, tokens: tokens, text: text, storedUnits: 2, chunk: 7)
        #expect(again.series.count == alone.series.count && again.page(title: "t") == alone.page(title: "t"),
                "no dropout in the analysis, whatever the chunk")
        let x = Tensor(shape: [2, 5, 8], repeating: 0.3), d = Tensor(shape: [2, 16], repeating: 0.1)
        _ = GradientFlow.hiddenGradientNorms(layer: lm.rnn, x: x, dFinal: d)
        _ = GradientFlow.parameterGradientNorm(layer: lm.rnn, x: x, dFinal: d)
        #expect(GradientFlow.forwardOverflowStep(layer: lm.rnn, x: x) == nil && lm.rnn.dropout == 0.5)
    }

    @Test func checkpointsThatCouldNotBeReadBackAreNotWritten() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("recurrent-api-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SeededRNG(seed: 1)
        let words = TranslationVocabulary.make(counting: [["i", "am"]])
        let m = Seq2Seq(config: Seq2SeqConfig(cell: .gru, attention: .none, source: words, target: words, embeddingSize: 4, hiddenSize: 4,
                                              numLayers: 1, bidirectional: false), rng: &rng)
        let path = dir.appendingPathComponent("t.safetensors").path
        let noTraining = TaskCheckpoint.TranslationDataSettings(filter: TranslationFilter(), reverse: false, splitSeed: 1, testFraction: 0.5, validFraction: 0.5)
        #expect(throws: RecurrentError.self) { try TaskCheckpoint.save(m, data: noTraining, to: path) }
        #expect(!FileManager.default.fileExists(atPath: path))
        var settings = noTraining
        settings.validFraction = 0.25
        try TaskCheckpoint.save(m, data: settings, to: path)
        #expect(try TaskCheckpoint.loadSeq2Seq(path: path).data == settings)
        // Window normalisation never reads the series' scale, so a 0 there saves and loads.
        let f = Forecaster(config: ForecasterConfig(cell: .gru, hiddenSize: 3, numLayers: 1, window: 4, horizon: 2, mode: .direct,
                                                    normalization: .window, seriesScale: WindowScale(mean: 0, scale: 0)), rng: &rng)
        let fp = dir.appendingPathComponent("f.safetensors").path
        try TaskCheckpoint.save(f, to: fp)
        #expect(try TaskCheckpoint.loadForecaster(path: fp).model.config.normalization == .window)
        let series = Forecaster(config: ForecasterConfig(cell: .gru, hiddenSize: 3, numLayers: 1, window: 4, horizon: 2, mode: .direct,
                                                         normalization: .series, seriesScale: WindowScale(mean: 0, scale: 0)), rng: &rng)
        let sp = dir.appendingPathComponent("s.safetensors").path
        #expect(throws: RecurrentError.self) { try TaskCheckpoint.save(series, to: sp) }
        #expect(!FileManager.default.fileExists(atPath: sp))
    }

    @Test func aFinishedTaskTrainerDoesNotValidateAgain() throws {
        let p = Parameter(name: "w", value: Tensor(shape: [1], repeating: 1))
        var options = TaskTrainingOptions()
        options.maxSteps = 2
        options.patience = 2
        let trainer = TaskTrainer(parameters: [p], lengths: [3, 2], options: options)
        var validations = 0
        for _ in 0..<3 {
            try trainer.run(step: { _, _ in p.grad.data[0] = 1; return 0.5 }, validate: { 0.5 }, onEvent: { if case .validation = $0 { validations += 1 } })
        }
        #expect(trainer.step == 2 && validations == 2 && trainer.stopReason == "steps")
    }

    // MARK: Misuse stops the program with its message (exit tests: each runs in a child process)

    static func stderr(_ result: ExitTest.Result?) -> String { String(decoding: result?.standardErrorContent ?? [], as: UTF8.self) }

    @Test func aParameterKeepsItsShape() async {
        let shape = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            LibraryAPITests.layer().parameters[0].value = Tensor(shape: [24, 4])
        }
        #expect(Self.stderr(shape).contains("parameter weight_ih_l0: a value of shape [24, 4] with 96 numbers, expected shape [24, 5] (120 numbers)"))
        let count = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            LibraryAPITests.layer().parameters[1].value.data.removeLast()
        }
        #expect(Self.stderr(count).contains("parameter weight_hh_l0: a value of shape [24, 6] with 143 numbers"))
    }

    static func stepper(_ cell: CellKind, layers: Int) -> CharLMStepper {
        var rng = SeededRNG(seed: 1)
        return CharLMStepper(model: CharLM(config: CharLMConfig(cell: cell, vocabulary: CharVocabulary(text: Array("ab".unicodeScalars)),
                                                                embeddingSize: 2, hiddenSize: 4, numLayers: layers), rng: &rng))
    }

    @Test func theStepperStateMustHaveTheModelsShape() async {
        let cell = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            LibraryAPITests.stepper(.lstm, layers: 2).state = RecurrentState(hidden: Tensor(shape: [2, 1, 4]), cell: Tensor(shape: [1, 1, 4]))
        }
        #expect(Self.stderr(cell).contains("the stepper's LSTM cell state must be (2,1,4), got [1, 1, 4]"))
        let swapped = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            LibraryAPITests.stepper(.gru, layers: 2).state = RecurrentState(hidden: Tensor(shape: [1, 2, 4]), cell: nil)
        }
        #expect(Self.stderr(swapped).contains("the stepper's hidden state must be (2,1,4), got [1, 2, 4]"))
        let uniform = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let stepper = LibraryAPITests.stepper(.gru, layers: 1)
            stepper.step(token: 0)
            _ = try? stepper.sample(settings: SamplingSettings(), uniform: 1)
        }
        #expect(Self.stderr(uniform).contains("sample(uniform:) takes a number in [0, 1), got 1.0"))
        // A state of the right shape is taken whole, cell included.
        let s = LibraryAPITests.stepper(.lstm, layers: 2)
        s.state = RecurrentState(hidden: Tensor(shape: [2, 1, 4], repeating: 0.5), cell: Tensor(shape: [2, 1, 4], repeating: -0.25))
        #expect(s.state.hidden.data.allSatisfy { $0 == 0.5 } && s.state.cell?.data.allSatisfy { $0 == -0.25 } == true)
    }

    @Test func libraryArgumentsArePyTorchsOrStopWithAMessage() async {
        let adam = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) { _ = Adam(beta1: 1) }
        #expect(Self.stderr(adam).contains("Adam: invalid beta parameter at index 0: 1.0"))
        let every = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var o = TaskTrainingOptions()
            o.evalEvery = 0
            _ = TaskTrainer(parameters: [], lengths: [1], options: o)
        }
        #expect(Self.stderr(every).contains("TaskTrainingOptions.evalEvery must be at least 1"))
        let origin = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var rng = SeededRNG(seed: 1)
            let f = Forecaster(config: ForecasterConfig(cell: .gru, hiddenSize: 3, numLayers: 1, window: 5, horizon: 2, mode: .direct,
                                                        normalization: .window, seriesScale: WindowScale(mean: 0, scale: 1)), rng: &rng)
            _ = f.forecast((0..<20).map(Double.init), origins: [3])
        }
        #expect(Self.stderr(origin).contains("Forecaster.forecast: origin 3 needs the window's 5 values before it"))
        let split = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = ClassificationReader.split([], fractions: [0.5, 0.2], seed: 1)
        }
        #expect(Self.stderr(split).contains("fractions must be zero or more and sum to 1"))
    }
}
