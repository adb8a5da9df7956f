import ArgumentParser
import Foundation
import Recurrent

/// `recurrent tag train|eval|predict`: one tag per word (part of speech) from CoNLL-U data.
struct Tag: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Part-of-speech tagging with word embeddings, a character BiLSTM per word and a sentence BiLSTM.",
        subcommands: [TagTrain.self, TagEval.self, TagPredict.self])
}

struct TagTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a tagger on CoNLL-U files.",
        discussion: """
        Each word is its embedding (lower-cased with --lowercase) joined with the final states of a \
        character BiLSTM over its spelling (original case), so words unseen in training still get \
        tags. A BiLSTM over the sentence feeds a linear layer per word; the loss is the mean \
        cross-entropy over the real words. The checkpoint is written atomically whenever the \
        validation token accuracy improves; training stops after --patience validations without one.
        """)

    @Option(help: "Training data (CoNLL-U).") var train: String
    @Option(help: "Validation data (CoNLL-U).") var valid: String
    @Option(help: "Checkpoint to write.") var output = "tagger.safetensors"
    @Option(name: .customLong("tag-column"), help: "Which tag to learn: upos or xpos.") var tagColumn = "upos"
    @Option(help: "Cell of both recurrent layers: lstm, gru, rnn-tanh or rnn-relu.") var cell = "lstm"
    @Option(help: "Sentence BiLSTM layers.") var layers = 1
    @Option(help: "Hidden units per direction of the sentence BiLSTM.") var hidden = 128
    @Option(help: "Word embedding width.") var embedding = 100
    @Option(name: .customLong("char-embedding"), help: "Character embedding width.") var charEmbedding = 32
    @Option(name: .customLong("char-hidden"), help: "Hidden units per direction of the character BiLSTM.") var charHidden = 32
    @Option(help: "Dropout on the word vectors, between layers and on the sentence outputs, in [0, 1).") var dropout: Float = 0.3
    @Option(name: .customLong("word-dropout"), help: "Probability of replacing a training word by <unk> (teaches the model to tag unknown words from their spelling).") var wordDropout: Float = 0.05
    @Option(help: "Text encoding of the data files: utf8 or latin1.") var encoding = "utf8"
    @OptionGroup var training: TaskTrainingFlags
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if TagColumn(rawValue: tagColumn) == nil { throw ValidationError("--tag-column must be upos or xpos, got '\(tagColumn)'") }
        if CellKind(name: cell) == nil { throw ValidationError("--cell must be lstm, gru, rnn-tanh or rnn-relu, got '\(cell)'") }
        for (name, value) in [("--layers", layers), ("--hidden", hidden), ("--embedding", embedding),
                              ("--char-embedding", charEmbedding), ("--char-hidden", charHidden)] where value < 1 {
            throw ValidationError("\(name) must be a positive integer, got \(value)")
        }
        var size = ModelSize(flags: [("--layers", layers), ("--hidden", hidden), ("--embedding", embedding), ("--char-embedding", charEmbedding), ("--char-hidden", charHidden)])
        size.addRecurrent(cell: cell, input: charEmbedding, hidden: charHidden, layers: 1, directions: 2)
        size.addRecurrent(cell: cell, input: Int(min(Double(embedding) + 2 * Double(charHidden), 1e15)), hidden: hidden, layers: layers, directions: 2)
        try size.check()
        if !(dropout >= 0 && dropout < 1) { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        if !(wordDropout >= 0 && wordDropout < 1) { throw ValidationError("--word-dropout must be in [0, 1), got \(wordDropout)") }
        _ = try parseEncoding(encoding)
    }

    func run() throws {
        compute.apply()
        let started = Date()
        try ensureTrainingOutput(output, inputs: [("--train", train), ("--valid", valid)], report: training.report)
        let column = TagColumn(rawValue: tagColumn) ?? .upos
        let enc = try parseEncoding(encoding)
        let trainSet = try CoNLLU.read(path: train, tagColumn: column, encoding: enc)
        let validSet = try CoNLLU.read(path: valid, tagColumn: column, encoding: enc)
        let tags = trainSet.flatMap(\.tags).exactDistinctSorted()
        let tagIndex = tags.exactIndex()
        for s in validSet {
            if let unknown = s.tags.first(where: { tagIndex[ExactString($0)] == nil }) {
                throw RecurrentError("\(s.origin): tag '\(unknown)' (sentence starting here) does not occur in the training data")
            }
        }
        let lower = training.lowercase
        let words = TokenVocabulary(counting: trainSet.map { s in s.words.map { lower ? $0.pythonLowercased() : $0 } },
                                    minFrequency: training.minFreq(.tagger), maxSize: training.maxVocab)
        let chars = TokenVocabulary(counting: trainSet.map { s in s.words.flatMap { $0.unicodeScalars.map { String($0) } } })
        let config = TaggerConfig(cell: CellKind(name: cell) ?? .lstm, words: words, chars: chars, lowercase: lower, tags: tags,
                                  wordEmbeddingSize: embedding, charEmbeddingSize: charEmbedding, charHiddenSize: charHidden,
                                  hiddenSize: hidden, numLayers: layers, dropout: dropout)
        var rng = SeededRNG(seed: training.seed)
        let model = Tagger(config: config, rng: &rng)
        let trainTags = trainSet.map { $0.tags.map { Int32(tagIndex[ExactString($0)] ?? 0) } }
        let validTags = validSet.map { $0.tags.map { tagIndex[ExactString($0)] ?? 0 } }
        let tokenCount = trainSet.reduce(0) { $0 + $1.words.count }

        Console.line("model: \(config.cell.cliName) tagger, sentence Bi\(config.cell.cliName.uppercased()) \(layers)×\(hidden), word embedding \(embedding) (vocabulary \(words.count)), char Bi\(config.cell.cliName.uppercased()) \(charHidden) over \(charEmbedding)-wide embeddings (\(chars.count) characters), \(tags.count) tags, \(Format.grouped(Double(model.parameterCount))) parameters; kernels \(GEMM.isa), \(Threading.count) thread\(Threading.count == 1 ? "" : "s")")
        Console.line("data: \(trainSet.count) training sentences (\(Format.grouped(Double(tokenCount))) words), \(validSet.count) validation sentences")

        let validBatches = BatchPlan.byLength(validSet.map(\.words.count), batchSize: 64).map { chunk in
            (model.makeBatch(chunk.map { validSet[$0].words }), chunk)
        }
        var fingerprint = DataFingerprint()
        for s in trainSet { s.words.forEach { fingerprint.add($0) }; s.tags.forEach { fingerprint.add($0) } }
        let trainer = TaskTrainer(parameters: model.parameters, lengths: trainSet.map(\.words.count), options: training.options(.tagger, data: fingerprint.hex))
        let settings = training.metadata(.tagger).merging(["tag_column": column.rawValue, "dropout": String(dropout), "word_dropout": String(wordDropout)]) { $1 }
        try training.restoreIfResuming(trainer, architecture: TaskCheckpoint.taggerMetadata(config), settings: settings, load: { _ = try TaskCheckpoint.loadTagger(path: $0) })
        var saved = false
        try runTaskTrainer(trainer, quiet: training.quiet, unit: "sentences", output: output,
            folders: try training.monitorFolders(member: 0, of: 1), title: "tag train --train \(train)",
            step: { batch, rng in
                let b = model.makeBatch(batch.map { trainSet[$0].words })
                return model.trainStep(b, targets: Tagger.targets(batch.map { trainTags[$0] }, steps: b.words.steps),
                                       wordDropout: wordDropout, rng: &rng)
            },
            validate: {
                var correct = 0, total = 0
                for (b, chunk) in validBatches {
                    for (predicted, i) in zip(model.predict(b), chunk) {
                        for (p, y) in zip(predicted, validTags[i]) { correct += p == y ? 1 : 0; total += 1 }
                    }
                }
                return Double(correct) / Double(max(total, 1))
            },
            save: { step, accuracy in
                let extra = settings.merging(["step": String(step), "valid_accuracy": String(accuracy)]) { $1 }
                try TaskCheckpoint.save(model, to: output, extra: extra)
                saved = true
            })
        let best = trainer.bestAccuracy.map { "best validation accuracy \(Format.fixed($0)); " } ?? ""
        Console.line("done: \(trainer.step) steps in \(Format.duration(Date().timeIntervalSince(started))) (stopped by \(trainer.stopReason)); \(best)checkpoint \(saved ? output : "not written")")
    }
}

struct TagEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Token accuracy of a tagger on a CoNLL-U file, overall and on words unseen in training.")

    @Option(help: "Tagger checkpoint from tag train.") var checkpoint: String
    @Option(help: "Data to score (CoNLL-U).") var data: String
    @Option(name: .customLong("tag-column"), help: "Tag column to score: upos or xpos (default: the one the model was trained on).") var tagColumn: String?
    @Option(help: "Text encoding of the data file: utf8 or latin1.") var encoding = "utf8"
    @Flag(help: "Print one JSON object: accuracy, tokens, unseen_accuracy (null when no word is unseen), unseen_tokens.") var json = false
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if let t = tagColumn, TagColumn(rawValue: t) == nil { throw ValidationError("--tag-column must be upos or xpos, got '\(t)'") }
        _ = try parseEncoding(encoding)
    }

    func run() throws {
        compute.apply()
        let model = try TaskCheckpoint.loadTagger(path: checkpoint)
        let stored = try SafeTensors.metadata(path: checkpoint)["tag_column"]
        let column = TagColumn(rawValue: tagColumn ?? stored ?? "upos") ?? .upos
        let sentences = try CoNLLU.read(path: data, tagColumn: column, encoding: try parseEncoding(encoding))
        let tagIndex = model.config.tags.exactIndex()
        var truth: [[Int]] = []
        for s in sentences {
            var row: [Int] = []
            for tag in s.tags {
                guard let y = tagIndex[ExactString(tag)] else {
                    let hint = stored.map { $0 != column.rawValue ? "; the model was trained on \($0) tags, and --tag-column asks for \(column.rawValue)" : "" } ?? ""
                    throw RecurrentError("\(s.origin): tag '\(tag)' (sentence starting here) is not one the model knows\(hint)")
                }
                row.append(y)
            }
            truth.append(row)
        }
        var correct = 0, total = 0, unseenCorrect = 0, unseen = 0
        for chunk in BatchPlan.byLength(sentences.map(\.words.count), batchSize: 64) {
            let predicted = model.predict(model.makeBatch(chunk.map { sentences[$0].words }))
            for (p, i) in zip(predicted, chunk) {
                for (t, word) in sentences[i].words.enumerated() {
                    let ok = p[t] == truth[i][t]
                    correct += ok ? 1 : 0
                    total += 1
                    if !model.config.words.contains(model.config.lowercase ? word.pythonLowercased() : word) {
                        unseen += 1
                        unseenCorrect += ok ? 1 : 0
                    }
                }
            }
        }
        let accuracy = Double(correct) / Double(max(total, 1))
        let unseenAccuracy = unseen > 0 ? Double(unseenCorrect) / Double(unseen) : .nan   // no unseen word: null, n/a
        if json {
            Console.line(jsonObject([("accuracy", accuracy), ("tokens", total), ("unseen_accuracy", unseenAccuracy), ("unseen_tokens", unseen)]))
        } else {
            Console.line("accuracy \(Format.fixed(accuracy)) (\(correct)/\(total) tokens, \(sentences.count) sentences)")
            Console.line("unseen words: accuracy \(unseen > 0 ? Format.fixed(unseenAccuracy) : "n/a") (\(unseenCorrect)/\(unseen) tokens not in the training vocabulary)")
        }
    }
}

struct TagPredict: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Tag plain text: one sentence per line, words split at spaces and tabs; prints `word/TAG` for every word.")

    @Option(help: "Tagger checkpoint from tag train.") var checkpoint: String
    @OptionGroup var input: PredictInput
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        compute.apply()
        let model = try TaskCheckpoint.loadTagger(path: checkpoint)
        try input.forEachChunk { lines in
            let sentences = lines.map { Tokenization.word.tokens($0.text, lowercase: false) }
            var tagged = [String](repeating: "", count: sentences.count)
            for chunk in BatchPlan.byLength(sentences.map(\.count), batchSize: 64) {
                let predicted = model.predict(model.makeBatch(chunk.map { sentences[$0] }))
                for (p, i) in zip(predicted, chunk) {
                    tagged[i] = zip(sentences[i], p).map { "\($0)/\(model.config.tags[$1])" }.joined(separator: " ")
                }
            }
            Console.write(tagged.map { $0 + "\n" }.joined())
        }
    }
}
