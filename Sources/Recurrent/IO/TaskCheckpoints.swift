import Foundation

/// Checkpoints of the classifier and the tagger: one safetensors file holding the `state_dict` of
/// the PyTorch module documented on `TextClassifier` / `Tagger`, and `__metadata__` with the
/// architecture, the vocabularies and the label set (JSON arrays of strings):
///
///     classifier: model = "text-classifier", cell, level (word|char), lowercase, num_layers,
///                 hidden_size, embedding_size, bidirectional, pooling, vocab, labels,
///                 ensemble (members; absent = 1)
///     tagger:     model = "tagger", cell, lowercase, num_layers, hidden_size, embedding_size,
///                 char_embedding_size, char_hidden_size, vocab, char_vocab, labels (`tag train`
///                 adds tag_column through `extra`)
///
/// Written atomically (`SafeTensors.write`): a failed run never leaves half a file.
public enum TaskCheckpoint {
    // MARK: Classifier

    public static func save(_ model: TextClassifier, to path: String, extra: [String: String] = [:]) throws {
        try save([model], to: path, extra: extra)
    }

    /// An ensemble of classifiers sharing one configuration (vocabulary, labels, architecture),
    /// whose prediction is the mean of the members' probabilities. One member is stored under the
    /// plain `state_dict` names; several as an `nn.ModuleList` named `members`
    /// (`members.0.embedding.weight`, …).
    public static func save(_ models: [TextClassifier], to path: String, extra: [String: String] = [:]) throws {
        require(!models.isEmpty && models.allSatisfy { $0.config == models[0].config },
                "saving classifiers: give at least one, all with one configuration (vocabulary, labels, architecture)")
        let meta = extra.merging(classifierMetadata(models[0].config, members: models.count)) { $1 }
        try TaskCheckpoint.writeWeights(classifierTensorNames(models), metadata: meta, to: path)
    }

    /// The architecture keys of a classifier checkpoint (also the ONNX export's metadata).
    public static func classifierMetadata(_ c: ClassifierConfig, members: Int) -> [String: String] {
        [
            "model": "text-classifier", "cell": c.cell.rawValue, "level": c.level.rawValue, "lowercase": String(c.lowercase),
            "num_layers": String(c.numLayers), "hidden_size": String(c.hiddenSize), "embedding_size": String(c.embeddingSize),
            "bidirectional": String(c.bidirectional), "pooling": c.pooling.rawValue,
            "vocab": c.vocabulary.json, "labels": jsonArray(c.labels), "ensemble": String(members),
        ]
    }

    static func classifierTensorNames(_ models: [TextClassifier]) -> [(String, Parameter)] {
        if models.count == 1 { return models[0].namedParameters }
        return models.enumerated().flatMap { k, m in m.namedParameters.map { ("members.\(k).\($0.0)", $0.1) } }
    }

    /// The first (or only) member of a classifier checkpoint.
    public static func loadClassifier(path: String) throws -> TextClassifier {
        try loadClassifiers(path: path)[0]
    }

    /// Every member of a classifier checkpoint (one unless it was trained with `--ensemble`).
    public static func loadClassifiers(path: String) throws -> [TextClassifier] {
        let file = try SafeTensors.read(path: path)
        let m = Meta(file: file, path: path, kind: "text-classifier")
        try m.expectModel()
        try m.checkSizes([["num_layers", "hidden_size", "hidden_size"], ["embedding_size", "hidden_size"], ["ensemble", "hidden_size", "hidden_size"]])
        let config = ClassifierConfig(
            cell: try m.cell(), level: try m.enumValue("level", Tokenization.init(rawValue:)), lowercase: try m.bool("lowercase"),
            vocabulary: try TokenVocabulary(json: try m.string("vocab"), source: "\(path) (metadata vocab)"),
            labels: try m.labels(), embeddingSize: try m.positive("embedding_size"), hiddenSize: try m.positive("hidden_size"),
            numLayers: try m.positive("num_layers"), bidirectional: try m.bool("bidirectional"),
            pooling: try m.enumValue("pooling", Pooling.init(rawValue:)))
        let members = file.metadata["ensemble"] == nil ? 1 : try m.positive("ensemble")
        // Each member holds V·E, E·H and C·H weights and more: checked before they are allocated.
        try checkSizes(file, path: path, [[("ensemble", members), ("vocab entries", config.vocabulary.count), ("embedding_size", config.embeddingSize)],
                                          [("ensemble", members), ("embedding_size", config.embeddingSize), ("hidden_size", config.hiddenSize)],
                                          [("ensemble", members), ("labels", config.labels.count), ("hidden_size", config.hiddenSize)]])
        var rng = SeededRNG(seed: 0)
        let models = (0..<members).map { _ in TextClassifier(config: config, rng: &rng) }
        try assign(file, to: classifierTensorNames(models), path: path)
        return models
    }

    // MARK: Tagger

    public static func save(_ model: Tagger, to path: String, extra: [String: String] = [:]) throws {
        let meta = extra.merging(taggerMetadata(model.config)) { $1 }
        try TaskCheckpoint.writeWeights(model.namedParameters, metadata: meta, to: path)
    }

    /// The architecture keys of a tagger checkpoint (also the ONNX export's metadata).
    public static func taggerMetadata(_ c: TaggerConfig) -> [String: String] {
        [
            "model": "tagger", "cell": c.cell.rawValue, "lowercase": String(c.lowercase),
            "num_layers": String(c.numLayers), "hidden_size": String(c.hiddenSize), "embedding_size": String(c.wordEmbeddingSize),
            "char_embedding_size": String(c.charEmbeddingSize), "char_hidden_size": String(c.charHiddenSize),
            "vocab": c.words.json, "char_vocab": c.chars.json, "labels": jsonArray(c.tags),
        ]
    }

    public static func loadTagger(path: String) throws -> Tagger {
        let file = try SafeTensors.read(path: path)
        let m = Meta(file: file, path: path, kind: "tagger")
        try m.expectModel()
        try m.checkSizes([["num_layers", "hidden_size", "hidden_size"], ["embedding_size", "hidden_size"],
                          ["char_hidden_size", "char_hidden_size"], ["char_embedding_size", "char_hidden_size"]])
        let config = TaggerConfig(
            cell: try m.cell(),
            words: try TokenVocabulary(json: try m.string("vocab"), source: "\(path) (metadata vocab)"),
            chars: try TokenVocabulary(json: try m.string("char_vocab"), source: "\(path) (metadata char_vocab)"),
            lowercase: try m.bool("lowercase"), tags: try m.labels(),
            wordEmbeddingSize: try m.positive("embedding_size"), charEmbeddingSize: try m.positive("char_embedding_size"),
            charHiddenSize: try m.positive("char_hidden_size"), hiddenSize: try m.positive("hidden_size"),
            numLayers: try m.positive("num_layers"))
        try checkSizes(file, path: path, [[("vocab entries", config.words.count), ("embedding_size", config.wordEmbeddingSize)],
                                          [("char_vocab entries", config.chars.count), ("char_embedding_size", config.charEmbeddingSize)],
                                          [("labels", config.tags.count), ("hidden_size", config.hiddenSize)]])
        var rng = SeededRNG(seed: 0)
        let model = Tagger(config: config, rng: &rng)
        try assign(file, to: model.namedParameters, path: path)
        return model
    }

    // MARK: Shared

    /// Writes the tensors of `named` with the `architecture` metadata over `extra` (the
    /// architecture keys win), atomically.
    static func write(_ named: [(String, Parameter)], architecture: [String: String], extra: [String: String], to path: String) throws {
        try writeWeights(named, metadata: extra.merging(architecture) { $1 }, to: path)
    }

    /// Writes a model's weights; refuses weights that are not all finite (a diverged model),
    /// which no loader would take back, and leaves the file as it was.
    static func writeWeights(_ named: [(String, Parameter)], metadata: [String: String], to path: String) throws {
        try AtomicFile.write(try encodeWeights(named, metadata: metadata, path: path), to: path)
    }

    /// The safetensors bytes of `writeWeights`, with its refusal (`path` names the file in it).
    static func encodeWeights(_ named: [(String, Parameter)], metadata: [String: String], path: String) throws -> Data {
        for (name, p) in named where !p.value.data.allSatisfy(\.isFinite) {
            throw RecurrentError("\(path): not written: the model's \(name) holds nan or infinite values (training diverged; try a lower --lr or --clip)")
        }
        return try SafeTensors.encode(named.map { ($0.0, $0.1.value) }, metadata: metadata)
    }

    /// See `Meta.checkSizes`; `products` hold (metadata key, value) factors.
    static func checkSizes(_ file: SafeTensorsFile, path: String, _ products: [[(String, Int)]]) throws {
        let weights = Double(file.tensors.values.reduce(0) { $0 + $1.count })
        for factors in products {
            let product = factors.reduce(1.0) { $0 * Double($1.1) }
            guard product <= weights else {
                // Each key once, a repeated one as a power: "num_layers 4, hidden_size 16²".
                var seen: [(String, Int, Int)] = []
                for (key, value) in factors {
                    if let i = seen.firstIndex(where: { $0.0 == key }) { seen[i].2 += 1 } else { seen.append((key, value, 1)) }
                }
                let given = seen.map { "\($0.0) \($0.1)\($0.2 == 2 ? "²" : $0.2 == 3 ? "³" : "")" }.joined(separator: ", ")
                throw RecurrentError("\(path): metadata \(given) imply at least \(String(format: "%.3g", product)) weights, more than the \(Int(weights)) weights the file holds; the checkpoint is corrupt")
            }
        }
    }

    /// Copies the file's tensors into the parameters, as PyTorch's strict `load_state_dict`
    /// checks them: each name present with its shape, and no other tensor. Every value must also
    /// be finite (a nan weight makes every output nan). Nothing is copied when a check fails.
    /// With `within`, only the file's tensors whose names start with it must be the parameters'.
    static func assign(_ file: SafeTensorsFile, to named: [(String, Parameter)], path: String, within: String = "") throws {
        var values: [Tensor] = []
        for (name, p) in named {
            guard let t = file.tensors[name] else { throw RecurrentError("\(path): the checkpoint lacks tensor \(name) (shape \(p.shape))") }
            guard t.shape == p.shape else { throw RecurrentError("\(path): tensor \(name) has shape \(t.shape), expected \(p.shape)") }
            guard t.data.allSatisfy(\.isFinite) else { throw RecurrentError("\(path): tensor \(name) holds nan or infinite values; the checkpoint is corrupt") }
            values.append(t)
        }
        let expected = Set(named.map(\.0))
        if let extra = file.order.first(where: { $0.hasPrefix(within) && !expected.contains($0) }) {
            throw RecurrentError(within.isEmpty ? "\(path): unexpected tensor \(extra) (the model's \(named.count) tensors are named as its state_dict); the checkpoint is of another model"
                                 : "\(path): unexpected tensor \(extra) under '\(within)' (the module's \(named.count) tensors are named as its state_dict)")
        }
        for ((_, p), t) in zip(named, values) { p.value = t }
    }

    /// Typed access to checkpoint metadata with one-line errors.
    struct Meta {
        let file: SafeTensorsFile
        let path: String
        let kind: String

        func expectModel() throws {
            let model = file.metadata["model"] ?? "unknown"
            guard model == kind else { throw RecurrentError("\(path): the checkpoint holds a '\(RecurrentError.shown(model))' model, expected a \(kind) checkpoint") }
        }
        func string(_ key: String) throws -> String {
            guard let s = file.metadata[key] else { throw RecurrentError("\(path): metadata lacks '\(key)' (expected a \(kind) checkpoint)") }
            return s
        }
        func positive(_ key: String) throws -> Int {
            let s = try string(key)
            guard let v = Int(s), v > 0 else { throw RecurrentError("\(path): metadata \(key) is '\(RecurrentError.shown(s))', expected a positive integer") }
            return v
        }
        /// Throws unless every product of metadata sizes (each the element count of some weight
        /// matrix of the model: num_layers·hidden_size², embedding_size·hidden_size, …) is at most
        /// the number of weights the file holds, so that corrupt sizes get this line before the
        /// model is allocated from them.
        func checkSizes(_ products: [[String]]) throws {
            try TaskCheckpoint.checkSizes(file, path: path, products.map { keys in keys.map { ($0, file.metadata[$0].flatMap { Int($0) } ?? 0) } })
        }
        func bool(_ key: String) throws -> Bool {
            let s = try string(key)
            guard let v = Bool(s) else { throw RecurrentError("\(path): metadata \(key) is '\(RecurrentError.shown(s))', expected true or false") }
            return v
        }
        func cell() throws -> CellKind {
            let s = try string("cell")
            guard let c = CellKind(name: s) else { throw RecurrentError("\(path): metadata cell '\(RecurrentError.shown(s))' is not one of lstm, gru, rnn_tanh, rnn_relu") }
            return c
        }
        func enumValue<T>(_ key: String, _ make: (String) -> T?) throws -> T {
            let s = try string(key)
            guard let v = make(s) else { throw RecurrentError("\(path): metadata \(key) has the unknown value '\(RecurrentError.shown(s))'") }
            return v
        }
        func labels() throws -> [String] {
            let labels = try parseJSONStringArray(try string("labels"), source: "\(path) (metadata labels)")
            guard !labels.isEmpty, labels.exactlyDistinct() else { throw RecurrentError("\(path): metadata labels must be distinct and not empty") }
            return labels
        }
    }
}
