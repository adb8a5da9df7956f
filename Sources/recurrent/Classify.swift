import ArgumentParser
import Foundation
import Recurrent

/// `recurrent classify train|eval|predict`: many-to-one sentence classification.
struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sentence classification (sentiment, question type, a name's language) with a (bi)LSTM/GRU.",
        subcommands: [ClassifyTrain.self, ClassifyEval.self, ClassifyPredict.self])
}

/// How labelled data files are read.
struct ClassifyDataOptions: ParsableArguments {
    @Option(help: "Data layout: auto, tsv, label-first (`label sentence` lines, as stsa.binary and TREC) or folder (<Label>.txt files, one example per line). auto: folder for a folder, tsv when the first line has a tab, else label-first.")
    var format = "auto"
    @Option(name: .customLong("text-column"), help: "TSV column with the text: a header name, or a 1-based number with --no-header (default: sentence, or 1).")
    var textColumn: String?
    @Option(name: .customLong("label-column"), help: "TSV column with the label: a header name, or a 1-based number with --no-header (default: label, or 2).")
    var labelColumn: String?
    @Flag(name: .customLong("no-header"), help: "The TSV has no header row; columns are numbers.") var noHeader = false
    @Option(help: "Text encoding of the data files: utf8 or latin1.") var encoding = "utf8"
    @Option(help: "Split one data source into train,valid,test fractions, e.g. 0.8,0.1,0.1 (stratified by label, seeded by --split-seed); the names data has no splits.")
    var split: String?
    @Option(name: .customLong("split-seed"), help: "Seed of --split (use the same value for train and eval).") var splitSeed: UInt64 = 1

    func validate() throws {
        if ClassificationFormat(rawValue: format) == nil { throw ValidationError("--format must be auto, tsv, label-first or folder, got '\(format)'") }
        _ = try parseEncoding(encoding)
        if split != nil { _ = try fractions() }
        if noHeader {
            for (flag, v) in [("--text-column", textColumn), ("--label-column", labelColumn)] {
                if let v, Int(v) == nil || (Int(v) ?? 0) < 1 { throw ValidationError("\(flag) must be a column number (1 = first) with --no-header, got '\(v)'") }
            }
        }
    }

    func fractions() throws -> [Double] {
        let parts = (split ?? "").split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3, parts.allSatisfy({ ($0 ?? -1) >= 0 }) else {
            throw ValidationError("--split must be three fractions train,valid,test such as 0.8,0.1,0.1, got '\(split ?? "")'")
        }
        let f = parts.map { $0 ?? 0 }
        guard abs(f.reduce(0, +) - 1) < 1e-6, f[0] > 0 else { throw ValidationError("--split fractions must sum to 1 with a positive training share, got '\(split ?? "")'") }
        return f
    }

    var columns: TSVColumns {
        TSVColumns(text: textColumn ?? (noHeader ? "1" : "sentence"), label: labelColumn ?? (noHeader ? "2" : "label"), hasHeader: !noHeader)
    }

    func read(_ path: String) throws -> [LabeledText] {
        try ClassificationReader.read(path: path, format: ClassificationFormat(rawValue: format) ?? .auto, columns: columns,
                                      encoding: try parseEncoding(encoding))
    }

    /// The data of `path`, or one part (0 train, 1 valid, 2 test) of it when --split is given.
    func read(_ path: String, part: Int) throws -> [LabeledText] {
        let all = try read(path)
        guard split != nil else { return all }
        let parts = ClassificationReader.split(all, fractions: try fractions(), seed: splitSeed)
        if parts[part].isEmpty {
            // The split is stratified: each label's examples are cut in the fractions, so a part
            // stays empty when every label has too few examples for it.
            let labels = Set(all.map(\.label)).count
            throw RecurrentError("\(path): the \(["train", "valid", "test"][part]) part of --split \(split ?? "") is empty (the split is made per label: \(Format.grouped(Double(all.count))) examples over \(Format.grouped(Double(labels))) labels\(labels * 2 > all.count ? "; is --label-column the right column?" : ""))")
        }
        return parts[part]
    }
}

struct ClassifyTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a sentence classifier: embedding → (bi)LSTM/GRU → last state or pooled outputs → linear → softmax.",
        discussion: """
        The vocabulary and the label set come from --train. The model is validated on --valid every \
        epoch (or --eval-every steps); the checkpoint at --output is written atomically whenever the \
        validation accuracy improves, and training stops after --patience validations without \
        improvement. Without --valid, --split train,valid,test cuts --train (for example the names \
        folder) into seeded, stratified parts; pass the same --split and --split-seed to classify eval.
        """)

    @Option(help: "Training data: a TSV, a `label sentence` file, or a folder of <Label>.txt files.") var train: String
    @Option(help: "Validation data (same layout as --train); not needed with --split.") var valid: String?
    @Option(help: "Checkpoint to write.") var output = "classifier.safetensors"
    @Option(help: "Tokens: word (split at spaces and tabs) or char (every character).") var level = "word"
    @Option(help: "Cell: lstm or gru (also rnn-tanh, rnn-relu).") var cell = "lstm"
    @Option(help: "Recurrent layers.") var layers = 2
    @Option(help: "Hidden units per layer and direction.") var hidden = 64
    @Option(help: "Embedding width.") var embedding = 64
    @Flag(inversion: .prefixedNo, help: "Run each layer in both directions.") var bidirectional = true
    @Option(help: "Sentence vector: last (final state; forward+backward finals when bidirectional), mean or max over the outputs.") var pooling = "max"
    @Option(help: "Dropout between recurrent layers, and the default of --embedding-dropout and --output-dropout, in [0, 1).") var dropout: Float = 0.5
    @Option(name: .customLong("embedding-dropout"), help: "Dropout on the embedded tokens, in [0, 1) (default: --dropout).") var embeddingDropout: Float?
    @Option(name: .customLong("output-dropout"), help: "Dropout on the sentence vector before the output layer, in [0, 1) (default: --dropout).") var outputDropout: Float?
    @Option(name: .customLong("embedding-scale"), help: "Standard deviation of the initial embeddings (PyTorch: 1).") var embeddingScale: Float = 1
    @Option(name: .customLong("word-dropout"), help: "Probability of replacing a training token by <unk>, in [0, 1).") var wordDropout: Float = 0.1
    @Option(name: .customLong("ensemble"), help: "Train this many classifiers (seeds --seed, --seed+1, …) one after another, each with its own early stopping, and predict with the mean of their probabilities (5 members lift SST-2 test accuracy from about 0.80 to 0.83; 1 = a single model; default 5, or 1 with --resume). --steps/--epochs/--patience apply to each member; --minutes is shared equally.") var ensembleFlag: Int?
    @OptionGroup var data: ClassifyDataOptions
    @OptionGroup var training: TaskTrainingFlags

    /// Members to train: --ensemble, else 5 (1 when resuming, which continues a single model).
    var ensemble: Int { ensembleFlag ?? (training.resume == nil ? 5 : 1) }
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if Tokenization(rawValue: level) == nil { throw ValidationError("--level must be word or char, got '\(level)'") }
        if CellKind(name: cell) == nil { throw ValidationError("--cell must be lstm, gru, rnn-tanh or rnn-relu, got '\(cell)'") }
        if Pooling(rawValue: pooling) == nil { throw ValidationError("--pooling must be last, mean or max, got '\(pooling)'") }
        for (name, value) in [("--layers", layers), ("--hidden", hidden), ("--embedding", embedding)] where value < 1 {
            throw ValidationError("\(name) must be a positive integer, got \(value)")
        }
        var size = ModelSize(flags: [("--layers", layers), ("--hidden", hidden), ("--embedding", embedding)])
        size.addRecurrent(cell: cell, input: embedding, hidden: hidden, layers: layers, directions: bidirectional ? 2 : 1)
        try size.check()
        for (name, value) in [("--dropout", dropout), ("--embedding-dropout", embeddingDropout ?? 0), ("--output-dropout", outputDropout ?? 0),
                              ("--word-dropout", wordDropout)] where !(value >= 0 && value < 1) {
            throw ValidationError("\(name) must be in [0, 1), got \(value)")
        }
        if !(embeddingScale > 0) || !embeddingScale.isFinite { throw ValidationError("--embedding-scale must be positive, got \(embeddingScale)") }
        if ensemble < 1 { throw ValidationError("--ensemble must be a positive integer, got \(ensemble)") }
        if ensemble > 1 && training.resume != nil { throw ValidationError("--resume continues a single model; it cannot be combined with --ensemble \(ensemble)") }
        if valid == nil && data.split == nil { throw ValidationError("give --valid FILE, or --split train,valid,test to cut --train") }
    }

    func run() throws {
        compute.apply()
        let started = Date()
        try ensureTrainingOutput(output, inputs: [("--train", train), ("--valid", valid)], readsFolders: true, report: training.report)
        if let resume = training.resume, let members = (try? SafeTensors.metadata(path: resume))?["ensemble"], members != "1" {
            throw RecurrentError("--resume \(resume): the checkpoint is an ensemble of \(members) models; --resume continues a single-model run (--ensemble 1)")
        }
        let trainSet = try data.read(train, part: 0)
        let validSet: [LabeledText]
        if let valid { validSet = try data.read(valid) } else { validSet = try data.read(train, part: 1) }

        let tokenization = Tokenization(rawValue: level) ?? .word
        let labels = trainSet.map(\.label).exactDistinctSorted()
        let labelIndex = labels.exactIndex()
        for e in validSet where labelIndex[ExactString(e.label)] == nil {
            throw RecurrentError("\(e.origin): label '\(e.label)' does not occur in the training data (labels: \(listed(labels)))")
        }
        if labels.count < 2 { throw RecurrentError("\(train): the training data has only one label ('\(labels.first ?? "")'); a classifier needs at least two") }
        let trainTokens = trainSet.map { tokenization.tokens($0.text, lowercase: training.lowercase) }
        let vocab = TokenVocabulary(counting: trainTokens, minFrequency: training.minFreq(.classifier), maxSize: training.maxVocab)
        let config = ClassifierConfig(cell: CellKind(name: cell) ?? .lstm, level: tokenization, lowercase: training.lowercase,
                                      vocabulary: vocab, labels: labels, embeddingSize: embedding, hiddenSize: hidden,
                                      numLayers: layers, bidirectional: bidirectional, pooling: Pooling(rawValue: pooling) ?? .last,
                                      dropout: dropout, embeddingDropout: embeddingDropout, outputDropout: outputDropout)
        let trainX = trainTokens.map { vocab.encode($0) }
        let trainY = trainSet.map { Int32(labelIndex[ExactString($0.label)] ?? 0) }
        let validX = validSet.map { config.encode($0.text) }
        let validY = validSet.map { labelIndex[ExactString($0.label)] ?? 0 }
        Console.line("data: \(trainSet.count) training and \(validSet.count) validation examples")

        // Members are trained one after another, each with its own seed and early stopping; the
        // checkpoint holds the finished members and the current one's best weights.
        var finished: [TextClassifier] = []
        var saved = false
        var options = training.options(.classifier, data: DataFingerprint.of(trainX, trainY))
        options.maxSeconds = options.maxSeconds.map { $0 / Double(ensemble) }
        let settings = training.metadata(.classifier).merging(["dropout": String(dropout), "embedding_dropout": String(config.embeddingDropout),
                                                               "output_dropout": String(config.outputDropout), "word_dropout": String(wordDropout)]) { $1 }
        var memberBest: [(step: Int, accuracy: Double)] = []
        for member in 0..<ensemble {
            let memberStarted = Date()
            var rng = SeededRNG(seed: training.seed &+ UInt64(member))
            let model = TextClassifier(config: config, embeddingScale: embeddingScale, rng: &rng)
            if member == 0 {
                Console.line("model: \(config.bidirectional ? "bi" : "")\(config.cell.cliName) \(layers)×\(hidden), \(level) embedding \(embedding), vocabulary \(vocab.count), \(labels.count) labels, pooling \(pooling), \(Format.grouped(Double(model.parameterCount))) parameters\(ensemble > 1 ? " × \(ensemble) members" : ""); kernels \(GEMM.isa), \(Threading.count) thread\(Threading.count == 1 ? "" : "s")")
            }
            if ensemble > 1 { Console.line("member \(member + 1) of \(ensemble) (seed \(training.seed &+ UInt64(member)))") }
            options.seed = training.seed &+ UInt64(member)
            let trainer = TaskTrainer(parameters: model.parameters, lengths: trainX.map(\.count), options: options)
            try training.restoreIfResuming(trainer, architecture: TaskCheckpoint.classifierMetadata(config, members: 1), settings: settings, load: { _ = try TaskCheckpoint.loadClassifiers(path: $0) })
            var best: [Tensor] = []
            var bestStep = 0
            try runTaskTrainer(trainer, quiet: training.quiet, unit: "examples", output: output,
                folders: try training.monitorFolders(member: member, of: ensemble),
                title: "classify train --train \(train)\(ensemble > 1 ? ", member \(member + 1) of \(ensemble)" : "")",
                step: { batch, rng in
                    model.trainStep(PaddedBatch(batch.map { trainX[$0] }), targets: batch.map { trainY[$0] }, wordDropout: wordDropout, rng: &rng)
                },
                validate: { ClassifierEvaluation.accuracy([model], validX, validY) },
                save: { step, accuracy in
                    let extra = settings.merging(["step": String(step), "valid_accuracy": String(accuracy)]) { $1 }
                    best = model.parameters.map(\.value)
                    bestStep = step
                    try TaskCheckpoint.save(finished + [model], to: output, extra: extra)
                    saved = true
                })
            for (p, w) in zip(model.parameters, best) { p.value = w }
            finished.append(model)
            memberBest.append((bestStep, trainer.bestAccuracy ?? .nan))
            let bestText = trainer.bestAccuracy.map { "best validation accuracy \(Format.fixed($0)); " } ?? ""
            Console.line("done\(ensemble > 1 ? " (member \(member + 1))" : ""): \(trainer.step) steps in \(Format.duration(Date().timeIntervalSince(ensemble > 1 ? memberStarted : started))) (stopped by \(trainer.stopReason)); \(bestText)checkpoint \(saved ? output : "not written")")
        }
        if ensemble > 1 {
            // The checkpoint's metadata describes the ensemble it holds, not its last member.
            let accuracy = ClassifierEvaluation.accuracy(finished, validX, validY)
            try TaskCheckpoint.save(finished, to: output, extra: settings.merging([
                "step": String(memberBest.map(\.step).reduce(0, +)), "valid_accuracy": String(accuracy),
                "member_steps": memberBest.map { String($0.step) }.joined(separator: ","),
                "member_valid_accuracy": memberBest.map { String($0.accuracy) }.joined(separator: ","),
            ]) { $1 })
            Console.line("ensemble of \(ensemble): validation accuracy \(Format.fixed(accuracy)); checkpoint \(output)")
        }
    }
}

/// Batched prediction and the usual scores.
enum ClassifierEvaluation {
    /// The predicted class index of every sequence, in batches of 64.
    static func predict(_ models: [TextClassifier], _ sequences: [[Int32]]) -> [Int] {
        probabilities(models, sequences).map { p in p.indices.max { p[$0] < p[$1] } ?? 0 }
    }

    /// The mean of the members' softmax probabilities, per sequence.
    static func probabilities(_ models: [TextClassifier], _ sequences: [[Int32]]) -> [[Float]] {
        let C = models[0].config.labels.count
        var out = [[Float]](repeating: [Float](repeating: 0, count: C), count: sequences.count)
        let share = 1 / Float(models.count)
        for chunk in BatchPlan.byLength(sequences.map(\.count), batchSize: 64) {
            let batch = PaddedBatch(chunk.map { sequences[$0] })
            for model in models {
                let p = model.probabilities(batch)
                for (b, i) in chunk.enumerated() { for c in 0..<C { out[i][c] += share * p.data[b * C + c] } }
            }
        }
        return out
    }

    static func accuracy(_ models: [TextClassifier], _ sequences: [[Int32]], _ truth: [Int]) -> Double {
        Double(zip(predict(models, sequences), truth).filter { $0.0 == $0.1 }.count) / Double(max(truth.count, 1))
    }
}

struct ClassifyEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Accuracy, macro-F1 and the confusion matrix of a classifier on labelled data (and each member's accuracy for an ensemble).")

    @Option(help: "Classifier checkpoint from classify train.") var checkpoint: String
    @Option(help: "Labelled data (same layouts as classify train).") var data: String
    @Option(help: "With --split: which part to score, train, valid or test (default test).") var part: String?
    @Flag(help: "Print one JSON object: accuracy, macro_f1, examples, labels, confusion (rows = true label), and member_accuracy for an ensemble.") var json = false
    @OptionGroup var dataOptions: ClassifyDataOptions
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if let part {
            if !["train", "valid", "test"].contains(part) { throw ValidationError("--part must be train, valid or test, got '\(part)'") }
            if dataOptions.split == nil { throw ValidationError("--part \(part) needs --split: without it the whole of --data is scored") }
        }
    }

    func run() throws {
        compute.apply()
        let models = try TaskCheckpoint.loadClassifiers(path: checkpoint)
        let model = models[0]
        let examples = try dataOptions.read(data, part: ["train", "valid", "test"].firstIndex(of: part ?? "test") ?? 2)
        let labels = model.config.labels
        let labelIndex = labels.exactIndex()
        var truth: [Int] = []
        for e in examples {
            guard let y = labelIndex[ExactString(e.label)] else {
                throw RecurrentError("\(e.origin): label '\(e.label)' is not one the model knows (\(listed(labels)))")
            }
            truth.append(y)
        }
        let encoded = examples.map { model.encode($0.text) }
        let predictions = ClassifierEvaluation.predict(models, encoded)
        let memberAccuracies = models.count > 1 ? models.map { ClassifierEvaluation.accuracy([$0], encoded, truth) } : []
        let C = labels.count
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: C), count: C)
        for (y, p) in zip(truth, predictions) { confusion[y][p] += 1 }
        let correct = (0..<C).reduce(0) { $0 + confusion[$1][$1] }
        let accuracy = Double(correct) / Double(examples.count)
        // Macro-F1 over the labels that occur in the data or the predictions (as scikit-learn).
        var f1s: [Double] = []
        for c in 0..<C {
            let tp = Double(confusion[c][c])
            let predicted = Double((0..<C).reduce(0) { $0 + confusion[$1][c] })
            let actual = Double(confusion[c].reduce(0, +))
            if predicted == 0 && actual == 0 { continue }
            f1s.append(tp == 0 ? 0 : 2 * tp / (predicted + actual))
        }
        let macroF1 = f1s.isEmpty ? 0 : f1s.reduce(0, +) / Double(f1s.count)
        if json {
            let rows = confusion.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" }.joined(separator: ", ")
            let members = memberAccuracies.isEmpty ? "" : ", \"member_accuracy\": [\(memberAccuracies.map { String($0) }.joined(separator: ", "))]"
            Console.line("{\"accuracy\": \(accuracy), \"macro_f1\": \(macroF1), \"examples\": \(examples.count), \"labels\": [\(labels.map(jsonString).joined(separator: ", "))], \"confusion\": [\(rows)]\(members)}")
            return
        }
        Console.line("accuracy \(Format.fixed(accuracy)) (\(correct)/\(examples.count))  macro-F1 \(Format.fixed(macroF1))")
        if !memberAccuracies.isEmpty {
            Console.line("ensemble of \(models.count); each member alone: \(memberAccuracies.map { Format.fixed($0) }.joined(separator: ", "))")
        }
        // A table is read by eye: past 30 labels (10,000 made 700 MB of text) it is left to --json.
        guard labels.count <= 30 else {
            Console.line("confusion matrix: \(Format.grouped(Double(labels.count))) labels, too many to print as a table; --json gives it")
            return
        }
        Console.line("confusion matrix (rows: true label, columns: predicted):")
        let width = max(6, labels.map(\.count).max() ?? 0, String(examples.count).count + 1)
        func pad(_ s: String) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        Console.line(pad("") + " " + labels.map(pad).joined(separator: " "))
        for (c, row) in confusion.enumerated() { Console.line(pad(labels[c]) + " " + row.map { pad(String($0)) }.joined(separator: " ")) }
    }
}

struct ClassifyPredict: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Classify sentences, one per line, from a file or standard input; prints `label<TAB>probability` per line (a blank line for a blank line).")

    @Option(help: "Classifier checkpoint from classify train.") var checkpoint: String
    @OptionGroup var input: PredictInput
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        compute.apply()
        let models = try TaskCheckpoint.loadClassifiers(path: checkpoint)
        let model = models[0]
        try input.forEachChunk { lines in
            // A blank line has no text to classify: it stays a blank line, so the output lines up with the input.
            let texts = lines.indices.filter { !ClassificationReader.isBlank(lines[$0].text) }
            let probabilities = ClassifierEvaluation.probabilities(models, texts.map { model.encode(lines[$0].text) })
            var out = [String](repeating: "", count: lines.count)
            for (i, p) in zip(texts, probabilities) {
                let best = p.indices.max { p[$0] < p[$1] } ?? 0
                out[i] = "\(model.config.labels[best])\t\(Format.fixed(Double(p[best])))"
            }
            Console.write(out.map { $0 + "\n" }.joined())
        }
    }
}
