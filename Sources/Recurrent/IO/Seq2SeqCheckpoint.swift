/// Translator checkpoints: one safetensors file with the `state_dict` of the PyTorch module
/// documented on `Seq2Seq` (encoder_embedding.weight, encoder.weight_ih_l0, …, out.bias) and
/// `__metadata__`:
///
///     model = "seq2seq", cell, attention (none|bahdanau|luong), num_layers, hidden_size,
///     embedding_size, bidirectional, source_vocab, target_vocab (JSON arrays, <pad> <unk> <sos> <eos> first),
///     and the data settings that rebuild the held-out split: max_words, prefixes (JSON array),
///     reverse, split_seed, test_fraction, valid_fraction
///
/// Written atomically (`SafeTensors.write`).
extension TaskCheckpoint {
    /// How the training pairs were chosen and split (so `translate eval` can rebuild the test part).
    public struct TranslationDataSettings: Sendable, Equatable {
        public var filter: TranslationFilter
        public var reverse: Bool
        public var splitSeed: UInt64
        public var testFraction: Double
        public var validFraction: Double

        public init(filter: TranslationFilter, reverse: Bool, splitSeed: UInt64, testFraction: Double, validFraction: Double) {
            self.filter = filter
            self.reverse = reverse
            self.splitSeed = splitSeed
            self.testFraction = testFraction
            self.validFraction = validFraction
        }

        var metadata: [String: String] {
            ["max_words": filter.maxWords.map(String.init) ?? "none", "prefixes": jsonArray(filter.prefixes), "reverse": String(reverse),
             "split_seed": String(splitSeed), "test_fraction": String(testFraction), "valid_fraction": String(validFraction)]
        }
    }

    public static func save(_ model: Seq2Seq, data: TranslationDataSettings, to path: String, extra: [String: String] = [:]) throws {
        // What loadSeq2Seq accepts, so that no file is written that cannot be read back.
        let (test, valid) = (data.testFraction, data.validFraction)
        guard test >= 0, test < 1, valid >= 0, valid < 1, test + valid < 1 else {
            throw RecurrentError("\(path): test fraction \(test) and validation fraction \(valid) must each be in [0, 1) and leave training pairs; not saved")
        }
        var meta = extra
        for (k, v) in seq2seqMetadata(model.config) { meta[k] = v }
        for (k, v) in data.metadata { meta[k] = v }
        try TaskCheckpoint.writeWeights(model.namedParameters, metadata: meta, to: path)
    }

    /// The architecture keys of a translator checkpoint (also the ONNX export's metadata).
    public static func seq2seqMetadata(_ c: Seq2SeqConfig) -> [String: String] {
        [
            "model": "seq2seq", "cell": c.cell.rawValue, "attention": c.attention.rawValue, "num_layers": String(c.numLayers),
            "hidden_size": String(c.hiddenSize), "embedding_size": String(c.embeddingSize), "bidirectional": String(c.bidirectional),
            "source_vocab": c.source.json, "target_vocab": c.target.json,
        ]
    }

    public static func loadSeq2Seq(path: String) throws -> (model: Seq2Seq, data: TranslationDataSettings) {
        let file = try SafeTensors.read(path: path)
        let m = Meta(file: file, path: path, kind: "seq2seq")
        try m.expectModel()
        try m.checkSizes([["num_layers", "hidden_size", "hidden_size"], ["embedding_size", "hidden_size"]])
        var vocabularies: [TokenVocabulary] = []
        for key in ["source_vocab", "target_vocab"] {
            let v = try TokenVocabulary(json: try m.string(key), source: "\(path) (metadata \(key))")
            guard TranslationVocabulary.isValid(v) else { throw RecurrentError("\(path): metadata \(key) must start with <pad>, <unk>, <sos>, <eos>") }
            vocabularies.append(v)
        }
        let config = Seq2SeqConfig(cell: try m.cell(), attention: try m.enumValue("attention", AttentionKind.init(rawValue:)),
                                   source: vocabularies[0], target: vocabularies[1], embeddingSize: try m.positive("embedding_size"),
                                   hiddenSize: try m.positive("hidden_size"), numLayers: try m.positive("num_layers"),
                                   bidirectional: try m.bool("bidirectional"))
        try checkSizes(file, path: path, [[("source_vocab entries", config.source.count), ("embedding_size", config.embeddingSize)],
                                          [("target_vocab entries", config.target.count), ("embedding_size", config.embeddingSize)],
                                          [("target_vocab entries", config.target.count), ("hidden_size", config.hiddenSize)]])
        var rng = SeededRNG(seed: 0)
        let model = Seq2Seq(config: config, rng: &rng)
        try assign(file, to: model.namedParameters, path: path)
        // The data keys only tell `translate eval` how training cut the pairs; a file written
        // elsewhere (PyTorch) may leave them out: then no filter, split seed 1, 10% test, 5% valid
        // (`translate train`'s defaults).
        let meta = file.metadata
        let filter = TranslationFilter(maxWords: meta["max_words"].flatMap { Int($0) },
                                       prefixes: try meta["prefixes"].map { try parseJSONStringArray($0, source: "\(path) (metadata prefixes)") } ?? [])
        guard let seed = UInt64(meta["split_seed"] ?? "1"), let test = Double(meta["test_fraction"] ?? "0.1"),
              let valid = Double(meta["valid_fraction"] ?? "0.05") else {
            throw RecurrentError("\(path): metadata split_seed, test_fraction or valid_fraction is not a number")
        }
        // As translate train's flags allow: each in [0, 1), together leaving training pairs.
        guard test >= 0, test < 1, valid >= 0, valid < 1, test + valid < 1 else {
            throw RecurrentError("\(path): metadata test_fraction \(meta["test_fraction"] ?? "") and valid_fraction \(meta["valid_fraction"] ?? "") must each be in [0, 1) and leave training pairs")
        }
        return (model, TranslationDataSettings(filter: filter, reverse: meta["reverse"] == nil ? false : try m.bool("reverse"), splitSeed: seed,
                                               testFraction: test, validFraction: valid))
    }
}
