import ArgumentParser
import Foundation
import Recurrent

/// `recurrent translate [run] | train | eval`: encoder-decoder translation.
struct Translate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Translation with an encoder-decoder (bi)LSTM/GRU, optional attention, teacher forcing, greedy or beam decoding.",
        subcommands: [TranslateRun.self, TranslateTrain.self, TranslateEval.self], defaultSubcommand: TranslateRun.self)
}

extension TaskDefaults {
    /// `translate train`: Adam 1e-3, batches of 32 as the PyTorch tutorial; no early stop by default.
    static let translator = TaskDefaults(batchSize: 32, lr: 1e-3, minFreq: 1, patience: 0, ema: 0)
}

/// Which pairs are read and how they are filtered and split.
struct TranslatePairOptions: ParsableArguments {
    @Option(name: .customLong("max-words"), help: "Keep pairs with at most this many words on each side, after normalisation (the tutorial's MAX_LENGTH 10 is --max-words 9).")
    var maxWords: Int?
    @Option(help: "A file of prefixes, one per line (trailing spaces count): keep pairs whose first column, normalised, starts with one of them.")
    var prefixes: String?
    @Flag(name: .customLong("tutorial-filter"), help: "The PyTorch tutorial's filter: --max-words 9 (unless given) and its English prefixes (i am, i m, he is, he s, she is, …, they re).")
    var tutorialFilter = false
    @Flag(help: "Translate the second column into the first (prefixes still apply to the first column).") var reverse = false
    @Option(help: "Text encoding of the pairs file: utf8 or latin1.") var encoding = "utf8"

    func validate() throws {
        if let m = maxWords, m < 1 { throw ValidationError("--max-words must be a positive integer, got \(m)") }
        _ = try parseEncoding(encoding)
    }

    func filter() throws -> TranslationFilter {
        var f = TranslationFilter(maxWords: maxWords ?? (tutorialFilter ? 9 : nil))
        if tutorialFilter { f.prefixes = TranslationFilter.tutorialPrefixes }
        if let prefixes {
            let lines = try TextLines.read(path: prefixes)
            let list = lines.map { $0.text.lowercased() }.filter { !$0.isEmpty }
            if list.isEmpty { throw RecurrentError("--prefixes \(prefixes): the file lists no prefixes") }
            f.prefixes += list
        }
        return f
    }
}

/// How `translate eval` and `translate run` decode.
struct TranslateDecodingOptions: ParsableArguments {
    @Option(help: "Beam width (1 = greedy).") var beam = 1
    @Option(name: .customLong("max-length"), help: "Longest translation (words).") var maxLength = 20

    func validate() throws {
        if beam < 1 { throw ValidationError("--beam must be a positive integer, got \(beam)") }
        if maxLength < 1 { throw ValidationError("--max-length must be a positive integer, got \(maxLength)") }
    }

    /// Throws when the beam is wider than the target vocabulary, past which it keeps no more
    /// distinct continuations and only costs time (quadratic in the width).
    func check(_ model: Seq2Seq) throws {
        let words = model.config.target.count
        if beam > words { throw RecurrentError("--beam \(beam): wider than the model's \(words)-word target vocabulary; use at most \(words)") }
    }
}

struct TranslateTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a translator on source<TAB>target pairs; validates by BLEU and saves the best checkpoint.")

    @Option(help: "Pairs file: source<TAB>target per line (more columns are ignored).") var pairs: String
    @Option(help: "Checkpoint to write (safetensors).") var output: String
    @Option(help: "Validation pairs file (default: --valid-fraction of --pairs).") var valid: String?
    @Option(name: .customLong("valid-fraction"), help: "Share of the filtered pairs held out for validation when no --valid file is given.") var validFraction = 0.05
    @Option(name: .customLong("test-fraction"), help: "Share of the filtered pairs held out for `translate eval` (seeded by --split-seed).") var testFraction = 0.1
    @Option(name: .customLong("split-seed"), help: "Seed of the held-out split (stored in the checkpoint, so eval rebuilds it).") var splitSeed: UInt64 = 1
    @OptionGroup var data: TranslatePairOptions
    @Option(help: "Cell: gru or lstm (rnn-tanh, rnn-relu also work).") var cell = "gru"
    @Option(help: "Attention: none, bahdanau or luong.") var attention = "bahdanau"
    @Flag(help: "Bidirectional encoder (the decoder starts from the sum of both directions' final states).") var bidirectional = false
    @Option(help: "Layers of the encoder and of the decoder.") var layers = 1
    @Option(help: "Hidden units per layer (and direction).") var hidden = 256
    @Option(help: "Word embedding width (both sides).") var embedding = 256
    @Option(help: "Dropout on the embedded words, in [0, 1).") var dropout: Float = 0.1
    @Option(name: .customLong("teacher-forcing"), help: "Probability that the decoder reads the reference word rather than its own previous argmax, at the start of training.") var teacherForcing: Float = 1
    @Option(name: .customLong("teacher-forcing-decay"), help: "Schedule of the ratio: none, linear (to --teacher-forcing-floor at --teacher-forcing-steps) or exponential (floor + (start − floor)·0.01^(step/steps)).") var teacherForcingDecay = "none"
    @Option(name: .customLong("teacher-forcing-floor"), help: "Lowest teacher-forcing ratio of the schedule.") var teacherForcingFloor: Float = 0
    @Option(name: .customLong("teacher-forcing-steps"), help: "Steps over which the schedule falls to the floor.") var teacherForcingSteps = 5000
    @Option(name: .customLong("max-length"), help: "Longest translation when validating (words).") var maxLength = 20
    @Option(help: "Append one CSV row per validation: step, seconds, teacher_forcing, train_loss, valid_loss, valid_bleu (a new file starts with that header; an existing one must be such a log, and a resumed run adds to it).") var log: String?
    @OptionGroup var training: TaskTrainingFlags
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if CellKind(name: cell) == nil { throw ValidationError("--cell must be lstm, gru, rnn-tanh or rnn-relu, got '\(cell)'") }
        if let m = training.maxVocab, m < 5 { throw ValidationError("--max-vocab must be at least 5 for a translator (<pad>, <unk>, <sos>, <eos> and one word), got \(m)") }
        if AttentionKind(rawValue: attention) == nil { throw ValidationError("--attention must be none, bahdanau or luong, got '\(attention)'") }
        if TeacherForcing.Decay(rawValue: teacherForcingDecay) == nil {
            throw ValidationError("--teacher-forcing-decay must be none, linear or exponential, got '\(teacherForcingDecay)'")
        }
        for (name, value) in [("--layers", layers), ("--hidden", hidden), ("--embedding", embedding), ("--teacher-forcing-steps", teacherForcingSteps),
                              ("--max-length", maxLength)] where value < 1 {
            throw ValidationError("\(name) must be a positive integer, got \(value)")
        }
        var size = ModelSize(flags: [("--layers", layers), ("--hidden", hidden), ("--embedding", embedding)])
        size.addRecurrent(cell: cell, input: embedding, hidden: hidden, layers: layers, directions: bidirectional ? 2 : 1)
        size.addRecurrent(cell: cell, input: Int(min(Double(embedding) + Double(hidden), 1e15)), hidden: hidden, layers: layers)
        try size.check()
        for (name, value) in [("--teacher-forcing", teacherForcing), ("--teacher-forcing-floor", teacherForcingFloor)] where !(value >= 0 && value <= 1) {
            throw ValidationError("\(name) must be in [0, 1], got \(value)")
        }
        if !(dropout >= 0 && dropout < 1) { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        if !(testFraction >= 0 && testFraction < 1) { throw ValidationError("--test-fraction must be in [0, 1), got \(testFraction)") }
        if !(validFraction >= 0 && validFraction < 1) || (valid == nil && validFraction == 0) {
            throw ValidationError("--valid-fraction must be in (0, 1) when no --valid file is given, got \(validFraction)")
        }
        if testFraction + (valid == nil ? validFraction : 0) >= 1 { throw ValidationError("--test-fraction and --valid-fraction leave no training pairs") }
    }

    func run() throws {
        compute.apply()
        let started = Date()
        try ensureTrainingOutput(output, inputs: [("--pairs", pairs), ("--valid", valid)], report: training.report)
        if let log { try ensureWritable(log, flag: "--log", inputs: [("--pairs", pairs), ("--valid", valid), ("--output", output)]) }
        let filter = try data.filter()
        let encoding = try parseEncoding(data.encoding)
        let all = try TranslationData.read(path: pairs, filter: filter, reverse: data.reverse, encoding: encoding)
        let settings = TaskCheckpoint.TranslationDataSettings(filter: filter, reverse: data.reverse, splitSeed: splitSeed,
                                                               testFraction: testFraction, validFraction: valid == nil ? validFraction : 0)
        let split = TranslationData.split(count: all.count, testFraction: testFraction, validFraction: settings.validFraction, seed: splitSeed)
        let trainSet = split.train.map { all[$0] }
        let validSet = try valid.map { try TranslationData.read(path: $0, filter: filter, reverse: data.reverse, encoding: encoding) } ?? split.valid.map { all[$0] }
        if trainSet.isEmpty { throw RecurrentError("\(pairs): no training pairs left after holding out test and validation pairs") }
        if validSet.isEmpty { throw RecurrentError("\(pairs): no validation pairs; raise --valid-fraction or give --valid") }
        // A training batch keeps, for every target step, the attention over every source word for
        // backward (H + 4 floats each with Bahdanau's, 4 with Luong's): about B·S·T·(H + 4) floats
        // for the longest pair's batch. Refuse a pair that could not fit, before any work, rather
        // than fail to allocate.
        let perScore = attention == "bahdanau" ? hidden + 4 : attention == "luong" ? 4 : 0
        if perScore > 0, let longest = trainSet.max(by: { ($0.source.count + 1) * ($0.target.count + 1) < ($1.source.count + 1) * ($1.target.count + 1) }) {
            let origin = pairs
            let B = Double(training.batchSize(.translator)), S = Double(longest.source.count + 1), T = Double(longest.target.count + 1)
            let bytes = 4 * B * S * T * Double(perScore), memory = Double(ProcessInfo.processInfo.physicalMemory)
            if bytes > memory / 2 {
                throw RecurrentError("\(origin):\(longest.line): a pair of \(Int(S) - 1) and \(Int(T) - 1) words needs about \(String(format: "%.3g", bytes / 1e9)) GB in a batch (attention over every source word at every target step), more than half this machine's \(String(format: "%.3g", memory / 1e9)) GB; leave long pairs out with --max-words")
            }
        }

        let minFreq = training.minFreq(.translator)
        let config = Seq2SeqConfig(cell: CellKind(name: cell) ?? .gru, attention: AttentionKind(rawValue: attention) ?? .none,
                                   source: TranslationVocabulary.make(counting: trainSet.map(\.source), minFrequency: minFreq, maxSize: training.maxVocab),
                                   target: TranslationVocabulary.make(counting: trainSet.map(\.target), minFrequency: minFreq, maxSize: training.maxVocab),
                                   embeddingSize: embedding, hiddenSize: hidden, numLayers: layers, bidirectional: bidirectional, dropout: dropout)
        var rng = SeededRNG(seed: training.seed)
        let model = Seq2Seq(config: config, rng: &rng)
        let trainX = trainSet.map { config.source.encode($0.source) }, trainY = trainSet.map { config.target.encode($0.target) }
        let validX = validSet.map { config.source.encode($0.source) }, validY = validSet.map { config.target.encode($0.target) }
        // BLEU against the reference words as written, as `translate eval` scores (not their
        // encoding, whose <unk> for a word outside the vocabulary a <unk> in a hypothesis would match).
        let validReferences = validSet.map { $0.target.joined(separator: " ") }
        let schedule = TeacherForcing(start: teacherForcing, floor: teacherForcingFloor,
                                      decay: TeacherForcing.Decay(rawValue: teacherForcingDecay) ?? .none, steps: teacherForcingSteps)

        Console.line("model: \(bidirectional ? "bi" : "")\(config.cell.cliName) \(layers)×\(hidden) encoder-decoder, attention \(attention), embedding \(embedding), vocabulary \(config.source.count) source / \(config.target.count) target, \(Format.grouped(Double(model.parameterCount))) parameters; kernels \(GEMM.isa), \(Threading.count) thread\(Threading.count == 1 ? "" : "s")")
        Console.line("data: \(all.count) pairs after filtering; \(trainSet.count) training, \(validSet.count) validation, \(split.test.count) held out for test (split seed \(splitSeed))")

        let trainer = TaskTrainer(parameters: model.parameters, lengths: trainX.map(\.count), options: training.options(.translator, data: DataFingerprint.of(trainX, trainY)))
        let trainingSettings = training.metadata(.translator).merging([
            "dropout": String(dropout), "teacher_forcing": String(teacherForcing), "teacher_forcing_decay": teacherForcingDecay,
            "teacher_forcing_floor": String(teacherForcingFloor), "teacher_forcing_steps": String(teacherForcingSteps)]) { $1 }
        try training.restoreIfResuming(trainer, architecture: TaskCheckpoint.seq2seqMetadata(config), settings: trainingSettings, load: { _ = try TaskCheckpoint.loadSeq2Seq(path: $0) })
        let logFile = try log.map { try CSVLog(path: $0, flag: "--log", header: "step,seconds,teacher_forcing,train_loss,valid_loss,valid_bleu") }
        var trainLossSum = 0.0, trainLossCount = 0
        var lastValidLoss = 0.0
        var saved = false
        let trainingStarted = Date()   // the log's seconds, as the progress lines' time: training only
        try runTaskTrainer(trainer, quiet: training.quiet, unit: "pairs", output: output, metric: .bleu,
            folders: try training.monitorFolders(member: 0, of: 1), title: "translate train --pairs \(pairs)",
            step: { batch, rng in
                let loss = model.trainStep(sources: batch.map { trainX[$0] }, targets: batch.map { trainY[$0] },
                                           teacherForcing: schedule.ratio(step: trainer.step), rng: &rng)
                trainLossSum += Double(loss); trainLossCount += 1
                return loss
            },
            validate: {
                lastValidLoss = TranslationEvaluation.loss(model, validX, validY)
                let hypotheses = model.greedy(validX, maxLength: maxLength, batchSize: 64)
                let bleu = BLEU.corpus(hypotheses: hypotheses.map { config.target.sentence($0) }, references: validReferences)
                let trainLoss = trainLossCount > 0 ? trainLossSum / Double(trainLossCount) : .nan
                trainLossSum = 0; trainLossCount = 0
                try logFile?.append("\(trainer.step),\(Format.fixed(Date().timeIntervalSince(trainingStarted), 1)),\(Format.fixed(Double(schedule.ratio(step: trainer.step)), 3)),\(Format.fixed(trainLoss)),\(Format.fixed(lastValidLoss)),\(Format.fixed(bleu))")
                return bleu
            },
            note: { "  val loss \(Format.fixed(lastValidLoss))" },
            save: { step, bleu in
                let extra = trainingSettings.merging(["step": String(step), "valid_bleu": String(bleu)]) { $1 }
                try TaskCheckpoint.save(model, data: settings, to: output, extra: extra)
                saved = true
            })
        let best = trainer.bestAccuracy.map { "best validation BLEU \(Format.fixed($0, 2)); " } ?? ""
        Console.line("done: \(trainer.step) steps in \(Format.duration(Date().timeIntervalSince(started))) (stopped by \(trainer.stopReason)); \(best)checkpoint \(saved ? output : "not written")")
    }
}

/// Batched scoring shared by `translate train` and `translate eval`.
enum TranslationEvaluation {
    /// Mean teacher-forced cross-entropy over all target words (+ <eos>), in batches of 64.
    static func loss(_ model: Seq2Seq, _ sources: [[Int32]], _ targets: [[Int32]]) -> Double {
        var sum = 0.0, words = 0
        // Batched by the longer side, so that one long target does not pad the decoder of 63 short pairs.
        for chunk in BatchPlan.byLength(zip(sources, targets).map { max($0.count, $1.count + 1) }, batchSize: 64) {
            let n = chunk.reduce(0) { $0 + targets[$1].count + 1 }
            sum += Double(model.loss(sources: chunk.map { sources[$0] }, targets: chunk.map { targets[$0] })) * Double(n)
            words += n
        }
        return words > 0 ? sum / Double(words) : .nan
    }
}

extension TokenVocabulary {
    /// Word indices back to a space-separated sentence.
    func sentence(_ indices: [Int32]) -> String { indices.map { tokens[Int($0)] }.joined(separator: " ") }
}

struct TranslateEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Corpus BLEU-4 (sacreBLEU's 13a tokenisation and brevity penalty) of a translator on a pairs file.")

    @Option(help: "Translator checkpoint from translate train.") var checkpoint: String
    @Option(help: "Pairs file (source<TAB>target).") var pairs: String
    @Option(help: "Which pairs to score: test (the held-out part of the training split, rebuilt from the checkpoint's filter and split seed), valid, train, or all (every pair of the file, unfiltered).")
    var part = "test"
    @OptionGroup var decoding: TranslateDecodingOptions
    @Option(help: "Text encoding of the pairs file: utf8 or latin1.") var encoding = "utf8"
    @Option(help: "Also write source<TAB>reference<TAB>hypothesis lines to this file.") var dump: String?
    @Flag(help: "Print one JSON object: bleu (0–100), pairs, beam, part.") var json = false
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if !["test", "valid", "train", "all"].contains(part) { throw ValidationError("--part must be test, valid, train or all, got '\(part)'") }
        _ = try parseEncoding(encoding)
    }

    func run() throws {
        compute.apply()
        let (model, settings) = try TaskCheckpoint.loadSeq2Seq(path: checkpoint)
        if let dump { try ensureWritable(dump, flag: "--dump", inputs: [("--checkpoint", checkpoint), ("--pairs", pairs)]) }
        let enc = try parseEncoding(encoding)
        var selected: [TranslationPair]
        if part == "all" {
            selected = try TranslationData.read(path: pairs, reverse: settings.reverse, encoding: enc)
        } else {
            let all = try TranslationData.read(path: pairs, filter: settings.filter, reverse: settings.reverse, encoding: enc)
            let split = TranslationData.split(count: all.count, testFraction: settings.testFraction, validFraction: settings.validFraction,
                                              seed: settings.splitSeed)
            selected = (part == "test" ? split.test : part == "valid" ? split.valid : split.train).map { all[$0] }
        }
        if selected.isEmpty { throw RecurrentError("\(pairs): the \(part) part is empty (the checkpoint's split has no such pairs)") }
        try decoding.check(model)
        let beam = decoding.beam
        let hypotheses = model.translate(selected.map(\.source), beam: beam, maxLength: decoding.maxLength).map { $0.joined(separator: " ") }
        let references = selected.map { $0.target.joined(separator: " ") }
        let bleu = BLEU.corpus(hypotheses: hypotheses, references: references)
        if let dump {
            let text = zip(selected, hypotheses).map { "\($0.source.joined(separator: " "))\t\($0.target.joined(separator: " "))\t\($1)\n" }.joined()
            try AtomicFile.write(Data(text.utf8), to: dump)
        }
        if json {
            Console.line(jsonObject([("bleu", bleu), ("pairs", selected.count), ("beam", beam), ("part", part)]))
        } else {
            Console.line("BLEU \(Format.fixed(bleu, 2)) on \(selected.count) pairs (\(part), \(beam == 1 ? "greedy" : "beam \(beam)"))")
        }
    }
}

struct TranslateRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Translate sentences given as arguments, or one per line from standard input (the default subcommand: `recurrent translate --checkpoint M \"i am cold .\"`).")

    @Option(help: "Translator checkpoint from translate train.") var checkpoint: String
    @OptionGroup var decoding: TranslateDecodingOptions
    @Argument(help: "Sentences to translate (default: standard input, one per line).") var text: [String] = []
    @Option(help: "Text encoding of standard input: utf8 or latin1.") var encoding = "utf8"
    @OptionGroup var compute: ComputeOptions

    func validate() throws { _ = try parseEncoding(encoding) }

    func run() throws {
        compute.apply()
        let (model, _) = try TaskCheckpoint.loadSeq2Seq(path: checkpoint)
        try decoding.check(model)
        func translate(_ sentences: [String]) {
            let words = sentences.map(TranslationData.words)
            // Blank lines of standard input stay blank lines of the output, so lines keep lining up.
            let filled = words.indices.filter { !words[$0].isEmpty }
            let translated = model.translate(filled.map { words[$0] }, beam: decoding.beam, maxLength: decoding.maxLength)
            var out = [String](repeating: "", count: words.count)
            for (i, t) in zip(filled, translated) { out[i] = t.joined(separator: " ") }
            Console.write(out.map { $0 + "\n" }.joined())
        }
        if text.isEmpty {
            // Standard input is translated as it arrives, so a pipe's output follows its input.
            try forEachInputChunk(nil, encoding: try parseEncoding(encoding), chunk: 64) { lines in translate(lines.map(\.text)) }
            return
        }
        if let empty = text.firstIndex(where: { TranslationData.words($0).isEmpty }) {
            throw RecurrentError("sentence \(empty + 1) given to translate has no words (only letters and . ! ? are kept, lower-cased); give words to translate")
        }
        translate(text)
    }
}
