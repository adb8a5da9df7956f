import ArgumentParser
import Foundation
import Recurrent

/// `recurrent generate [sample]|train`: one-to-many generation of character sequences for a condition.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One-to-many generation: a condition (for example a language) in, character sequences (for example names) out.",
        subcommands: [GenerateSample.self, GenerateTrain.self], defaultSubcommand: GenerateSample.self)
}

extension TaskDefaults {
    /// `generate train`.
    static let generator = TaskDefaults(batchSize: 32, lr: 2e-3, minFreq: 1, patience: 4, ema: 0)
}

struct GenerateTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a conditional character generator: [char embedding ; condition embedding] → LSTM/GRU → linear → softmax.",
        discussion: """
        --data is a folder of <Condition>.txt files (one example per line, as the names data) or a \
        TSV of `condition<TAB>text` lines (no header). A seeded, stratified --valid-fraction of the \
        examples is held out; the model is validated by its mean cross-entropy per character there \
        every epoch (or --eval-every steps) and the checkpoint at --output is written atomically \
        whenever that loss improves. Training uses teacher forcing: input <sos> c1..cn, target c1..cn <eos>.
        """)

    @Option(help: "Training data: a folder of <Condition>.txt files or a `condition<TAB>text` TSV.") var data: String
    @Option(help: "Checkpoint to write.") var output = "generator.safetensors"
    @Option(help: "Cell: lstm or gru (also rnn-tanh, rnn-relu).") var cell = "lstm"
    @Option(help: "Recurrent layers.") var layers = 1
    @Option(help: "Hidden units per layer.") var hidden = 128
    @Option(help: "Character embedding width.") var embedding = 32
    @Option(name: .customLong("condition-size"), help: "Condition embedding width.") var conditionSize = 16
    @Option(help: "Dropout between recurrent layers, in [0, 1).") var dropout: Float = 0
    @Option(name: .customLong("valid-fraction"), help: "Share of the examples held out for validation (seeded by --split-seed, stratified by condition).") var validFraction = 0.1
    @Option(name: .customLong("split-seed"), help: "Seed of the validation split.") var splitSeed: UInt64 = 1
    @Option(help: "Text encoding of the data files: utf8 or latin1.") var encoding = "utf8"
    @OptionGroup var training: TaskTrainingFlags
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if CellKind(name: cell) == nil { throw ValidationError("--cell must be lstm, gru, rnn-tanh or rnn-relu, got '\(cell)'") }
        try training.rejectVocabularyFlags(["--min-freq": training.minFreqFlag != nil, "--max-vocab": training.maxVocab != nil], tool: "generate train (its vocabulary is every character of the data)")
        for (name, value) in [("--layers", layers), ("--hidden", hidden), ("--embedding", embedding), ("--condition-size", conditionSize)] where value < 1 {
            throw ValidationError("\(name) must be a positive integer, got \(value)")
        }
        var size = ModelSize(flags: [("--layers", layers), ("--hidden", hidden), ("--embedding", embedding), ("--condition-size", conditionSize)])
        size.addRecurrent(cell: cell, input: Int(min(Double(embedding) + Double(conditionSize), 1e15)), hidden: hidden, layers: layers)
        try size.check()
        if !(dropout >= 0 && dropout < 1) { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        if !(validFraction > 0 && validFraction < 1) { throw ValidationError("--valid-fraction must be in (0, 1), got \(validFraction)") }
        _ = try parseEncoding(encoding)
    }

    func run() throws {
        compute.apply()
        let started = Date()
        try ensureTrainingOutput(output, inputs: [("--data", data)], readsFolders: true, report: training.report)
        let all = try GeneratorData.read(data, encoding: try parseEncoding(encoding), lowercase: training.lowercase)
        let parts = ClassificationReader.split(all, fractions: [1 - validFraction, validFraction], seed: splitSeed)
        let (trainSet, validSet) = (parts[0], parts[1])
        if trainSet.isEmpty || validSet.isEmpty {
            throw RecurrentError("\(data): \(all.count) examples are too few to hold out --valid-fraction \(validFraction) for validation (the fraction is taken per condition, rounded; raise it, or give conditions more examples)")
        }
        let conditions = all.map(\.label).exactDistinctSorted()
        let conditionIndex = conditions.exactIndex()
        let config = GeneratorConfig(cell: CellKind(name: cell) ?? .lstm, vocabulary: GeneratorConfig.vocabulary(for: trainSet.map(\.text)),
                                     conditions: conditions, embeddingSize: embedding, conditionSize: conditionSize,
                                     hiddenSize: hidden, numLayers: layers, dropout: dropout)
        var rng = SeededRNG(seed: training.seed)
        let model = ConditionalGenerator(config: config, rng: &rng)
        let trainX = trainSet.map { model.encode($0.text) }, trainC = trainSet.map { Int32(conditionIndex[ExactString($0.label)] ?? 0) }
        let validX = validSet.map { model.encode($0.text) }, validC = validSet.map { Int32(conditionIndex[ExactString($0.label)] ?? 0) }

        Console.line("model: \(config.cell.cliName) \(layers)×\(hidden), char embedding \(embedding), condition embedding \(conditionSize), vocabulary \(config.vocabulary.count), \(conditions.count) conditions, \(Format.grouped(Double(model.parameterCount))) parameters; kernels \(GEMM.isa), \(Threading.count) thread\(Threading.count == 1 ? "" : "s")")
        Console.line("data: \(trainSet.count) training and \(validSet.count) validation examples")

        let trainer = TaskTrainer(parameters: model.parameters, lengths: trainX.map(\.count), options: training.options(.generator, data: DataFingerprint.of(trainX, trainC)))
        let settings = training.metadata(.generator).merging(["dropout": String(dropout)]) { $1 }
        try training.restoreIfResuming(trainer, architecture: TaskCheckpoint.generatorMetadata(config), settings: settings, load: { _ = try TaskCheckpoint.loadGenerator(path: $0) })
        var saved = false
        try runTaskTrainer(trainer, quiet: training.quiet, unit: "examples", output: output, metric: .loss,
            folders: try training.monitorFolders(member: 0, of: 1), title: "generate train --data \(data)",
            step: { batch, rng in model.trainStep(batch.map { trainX[$0] }, conditions: batch.map { trainC[$0] }, rng: &rng) },
            validate: { -GeneratorData.meanLoss(model, validX, validC) },
            save: { step, score in
                let extra = settings.merging(["step": String(step), "valid_loss": String(-score)]) { $1 }
                try TaskCheckpoint.save(model, to: output, extra: extra)
                saved = true
            })
        let best = trainer.bestAccuracy.map { "best validation loss \(Format.fixed(-$0)) nats/char; " } ?? ""
        Console.line("done: \(trainer.step) steps in \(Format.duration(Date().timeIntervalSince(started))) (stopped by \(trainer.stopReason)); \(best)checkpoint \(saved ? output : "not written")")
    }
}

/// Reading generator data and scoring it.
enum GeneratorData {
    /// A folder of `<Condition>.txt` files, or a `condition<TAB>text` TSV without a header.
    static func read(_ path: String, encoding: TextEncoding, lowercase: Bool) throws -> [LabeledText] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw RecurrentError("\(path): no such file or folder") }
        var examples = try ClassificationReader.read(path: path, format: isDir.boolValue ? .folder : .tsv,
                                                    columns: TSVColumns(text: "2", label: "1", hasHeader: false), encoding: encoding)
        for i in examples.indices {
            examples[i].text = examples[i].text.strippingSpacesAndTabs()
            if lowercase { examples[i].text = examples[i].text.pythonLowercased() }
            if examples[i].text.isEmpty { throw RecurrentError("\(examples[i].origin): the text is empty") }
        }
        return examples
    }

    /// Mean cross-entropy per predicted character over all examples, in batches of 64.
    static func meanLoss(_ model: ConditionalGenerator, _ texts: [[Int32]], _ conditions: [Int32]) -> Double {
        var total = 0.0, count = 0
        for chunk in BatchPlan.byLength(texts.map(\.count), batchSize: 64) {
            let (loss, n) = model.loss(chunk.map { texts[$0] }, conditions: chunk.map { conditions[$0] })
            total += Double(loss) * Double(n)
            count += n
        }
        return count > 0 ? total / Double(count) : .nan
    }
}

struct GenerateSample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate sequences for a condition, one per line (the default subcommand: `recurrent generate --checkpoint M --condition Russian`).")

    @Option(help: "Generator checkpoint from generate train.") var checkpoint: String
    @Option(help: "The condition (one of the checkpoint's classes, for example a language).") var condition: String
    @Option(help: "Characters every sequence starts with (printed as part of it).") var prime: String?
    @Option(help: "How many sequences to generate.") var count = 10
    @Option(help: "Softmax temperature (> 0): below 1 is more conservative, above 1 more varied.") var temperature: Float = 0.8
    @Option(name: .customLong("top-k"), help: "Sample only among the k most likely characters (0 = all).") var topK = 0
    @Flag(help: "Take the most likely character at every step (every sequence is then the same).") var greedy = false
    @Option(name: .customLong("max-length"), help: "Stop a sequence after this many characters when <eos> has not come.") var maxLength = 30
    @Option(help: "Random seed.") var seed: UInt64 = 123
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be a positive integer, got \(count)") }
        if !(temperature > 0) || !temperature.isFinite { throw ValidationError("--temperature must be a finite number greater than 0, got \(temperature)") }
        if topK < 0 { throw ValidationError("--top-k must be zero (off) or positive, got \(topK)") }
        if maxLength < 1 { throw ValidationError("--max-length must be a positive integer, got \(maxLength)") }
    }

    func run() throws {
        compute.apply()
        let model = try TaskCheckpoint.loadGenerator(path: checkpoint)
        // Conditions are stored trimmed, as training read them.
        guard let index = model.config.conditions.exactIndex()[ExactString(condition.trimmingCharacters(in: .whitespaces))] else {
            throw RecurrentError("--condition '\(condition)' is not one the model knows (\(model.config.conditions.joined(separator: ", ")))")
        }
        let primeIndices = model.encode(prime ?? "")
        if let p = prime, let bad = p.unicodeScalars.first(where: { !model.config.vocabulary.contains(String($0)) }) {
            throw RecurrentError("--prime '\(p)': the character '\(bad)' never occurs in the training data")
        }
        if primeIndices.count >= maxLength {
            let shown = (prime ?? "").count > 40 ? String((prime ?? "").prefix(40)) + "…" : (prime ?? "")
            throw RecurrentError("--prime '\(shown)' has \(primeIndices.count) characters, \(primeIndices.count > maxLength ? "more than" : "as many as") --max-length \(maxLength) allows (the prime counts); raise --max-length")
        }
        // One batch per `Self.chunk` sequences, printed as it is done: memory stays bounded for any
        // --count. The first chunk uses --seed itself, so up to `chunk` sequences match one batch.
        for first in stride(from: 0, to: count, by: Self.chunk) {
            let chunkSeed = first == 0 ? seed : seed ^ (UInt64(first / Self.chunk) &* 0x9E37_79B9_7F4A_7C15)
            let out = try model.generate(conditionIndex: index, prime: primeIndices, count: min(Self.chunk, count - first),
                                     maxLength: maxLength,
                                     settings: SamplingSettings(temperature: temperature, topK: topK, greedy: greedy), seed: chunkSeed)
            Console.write(out.map { model.decode($0) + "\n" }.joined())
        }
    }

    /// Sequences generated in one batch.
    static let chunk = 1000
}
