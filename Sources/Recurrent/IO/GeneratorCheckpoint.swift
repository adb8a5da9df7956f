/// Checkpoints of the conditional generator: the `state_dict` of the module documented on
/// `ConditionalGenerator` and `__metadata__` with model = "conditional-generator", cell,
/// num_layers, hidden_size, embedding_size, condition_size, vocab (JSON array: `<pad>`, `<unk>`,
/// `<sos>`, `<eos>`, characters) and conditions (JSON array). Written atomically.
extension TaskCheckpoint {
    public static func save(_ model: ConditionalGenerator, to path: String, extra: [String: String] = [:]) throws {
        try write(model.namedParameters, architecture: generatorMetadata(model.config), extra: extra, to: path)
    }

    /// The architecture keys of a generator checkpoint (also the ONNX export's metadata).
    public static func generatorMetadata(_ c: GeneratorConfig) -> [String: String] {
        [
            "model": "conditional-generator", "cell": c.cell.rawValue, "num_layers": String(c.numLayers),
            "hidden_size": String(c.hiddenSize), "embedding_size": String(c.embeddingSize),
            "condition_size": String(c.conditionSize), "vocab": c.vocabulary.json, "conditions": jsonArray(c.conditions),
        ]
    }

    public static func loadGenerator(path: String) throws -> ConditionalGenerator {
        let file = try SafeTensors.read(path: path)
        let m = Meta(file: file, path: path, kind: "conditional-generator")
        try m.expectModel()
        try m.checkSizes([["num_layers", "hidden_size", "hidden_size"], ["embedding_size", "hidden_size"], ["condition_size", "hidden_size"]])
        let vocabulary = try TokenVocabulary(json: try m.string("vocab"), source: "\(path) (metadata vocab)")
        guard vocabulary.count > 4, vocabulary.tokens[2] == GeneratorConfig.sos, vocabulary.tokens[3] == GeneratorConfig.eos else {
            throw RecurrentError("\(path): metadata vocab must start with <pad>, <unk>, <sos>, <eos> and hold characters")
        }
        let conditions = try parseJSONStringArray(try m.string("conditions"), source: "\(path) (metadata conditions)")
        guard !conditions.isEmpty, conditions.exactlyDistinct() else {
            throw RecurrentError("\(path): metadata conditions must be distinct and not empty")
        }
        let config = GeneratorConfig(cell: try m.cell(), vocabulary: vocabulary, conditions: conditions,
                                     embeddingSize: try m.positive("embedding_size"), conditionSize: try m.positive("condition_size"),
                                     hiddenSize: try m.positive("hidden_size"), numLayers: try m.positive("num_layers"))
        try checkSizes(file, path: path, [[("vocab entries", vocabulary.count), ("embedding_size", config.embeddingSize)],
                                          [("vocab entries", vocabulary.count), ("hidden_size", config.hiddenSize)],
                                          [("conditions", conditions.count), ("condition_size", config.conditionSize)]])
        var rng = SeededRNG(seed: 0)
        let model = ConditionalGenerator(config: config, rng: &rng)
        try assign(file, to: model.namedParameters, path: path)
        return model
    }
}
