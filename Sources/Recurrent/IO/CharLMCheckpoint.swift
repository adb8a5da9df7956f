import Foundation

/// The char-LM checkpoint: one safetensors file, float32 tensors under the `state_dict` names of
/// the PyTorch module documented on `CharLM`, and `__metadata__` with `model` = `char-lm`,
/// `cell`, `num_layers`, `hidden_size`, `embedding_size` and `vocab` (a JSON array of the
/// characters in index order). Such a file loads into that module with `load_state_dict`.
///
/// Training state for `--resume` (optimizer moments, step, epoch, carried hidden state) lives in a
/// second file beside it, `<checkpoint>.training.safetensors`, so the checkpoint itself stays a pure
/// `state_dict`. Both carry the same `run_id`/`step` metadata so a stale pair is detected.
public enum CharLMCheckpoint {
    /// The metadata that describes the architecture.
    public static func metadata(for config: CharLMConfig) -> [String: String] {
        [
            "model": "char-lm",
            "cell": config.cell.rawValue,
            "num_layers": String(config.numLayers),
            "hidden_size": String(config.hiddenSize),
            "embedding_size": String(config.embeddingSize),
            "vocab": config.vocabulary.json,
        ]
    }

    /// Writes the model atomically; `extra` metadata is added (never overriding the architecture keys).
    public static func save(_ model: CharLM, to path: String, extra: [String: String] = [:]) throws {
        try AtomicFile.write(try encode(model, extra: extra, path: path), to: path)
    }

    /// The bytes `save` writes (for writing them together with other files); refuses a model whose
    /// weights are not all finite, naming `path`.
    public static func encode(_ model: CharLM, extra: [String: String] = [:], path: String) throws -> Data {
        var meta = extra
        for (k, v) in metadata(for: model.config) { meta[k] = v }
        return try TaskCheckpoint.encodeWeights(model.namedParameters, metadata: meta, path: path)
    }

    /// Reads the architecture from a checkpoint's metadata.
    public static func config(from file: SafeTensorsFile, path: String) throws -> CharLMConfig {
        let meta = file.metadata
        if let model = meta["model"], model != "char-lm" {
            throw RecurrentError("\(path): the checkpoint holds a '\(RecurrentError.shown(model))' model, expected a char-lm checkpoint")
        }
        guard let cellName = meta["cell"] else { throw RecurrentError("\(path): metadata lacks 'cell' (expected a char-lm checkpoint)") }
        guard let cell = CellKind(name: cellName) else {
            throw RecurrentError("\(path): metadata cell '\(RecurrentError.shown(cellName))' is not one of lstm, gru, rnn_tanh, rnn_relu")
        }
        func positive(_ key: String) throws -> Int {
            guard let s = meta[key] else { throw RecurrentError("\(path): metadata lacks '\(key)' (expected a char-lm checkpoint)") }
            guard let v = Int(s.trimmingCharacters(in: .whitespaces)), v > 0 else {
                throw RecurrentError("\(path): metadata \(key) is '\(RecurrentError.shown(s))', expected a positive integer")
            }
            return v
        }
        let layers = try positive("num_layers")
        let hidden = try positive("hidden_size")
        let embeddingSize = try positive("embedding_size")
        try TaskCheckpoint.checkSizes(file, path: path, [[("num_layers", layers), ("hidden_size", hidden), ("hidden_size", hidden)],
                                                         [("embedding_size", embeddingSize), ("hidden_size", hidden)]])
        guard let vocabJSON = meta["vocab"] else { throw RecurrentError("\(path): metadata lacks 'vocab' (expected a char-lm checkpoint)") }
        let vocab = try CharVocabulary(json: vocabJSON, source: "\(path) (metadata vocab)")
        // The embedding and the head hold V·E and V·H weights: checked before a model is allocated.
        try TaskCheckpoint.checkSizes(file, path: path, [[("vocab entries", vocab.count), ("embedding_size", embeddingSize)],
                                                         [("vocab entries", vocab.count), ("hidden_size", hidden)]])
        return CharLMConfig(cell: cell, vocabulary: vocab, embeddingSize: embeddingSize, hiddenSize: hidden, numLayers: layers)
    }

    /// Copies the file's tensors into `model`, with the checks of a strict `load_state_dict`
    /// (see `TaskCheckpoint.assign`).
    /// The file's architecture (cell, sizes, vocabulary) must be the model's: a checkpoint of
    /// another cell or vocabulary with the same shapes would load into it and give wrong results.
    public static func assign(_ file: SafeTensorsFile, to model: CharLM, path: String) throws {
        let stored = try config(from: file, path: path)
        let mine = model.config
        guard stored.cell == mine.cell, stored.vocabulary == mine.vocabulary, stored.embeddingSize == mine.embeddingSize,
              stored.hiddenSize == mine.hiddenSize, stored.numLayers == mine.numLayers else {
            throw RecurrentError("\(path): the checkpoint is a \(stored.cell.rawValue) \(stored.numLayers)×\(stored.hiddenSize) char-LM with \(stored.vocabulary.count) characters, not this model's \(mine.cell.rawValue) \(mine.numLayers)×\(mine.hiddenSize) with \(mine.vocabulary.count)\(stored.vocabulary.count == mine.vocabulary.count ? " (another vocabulary)" : "")")
        }
        try TaskCheckpoint.assign(file, to: model.namedParameters, path: path)
    }

    /// Loads a model from a checkpoint file.
    public static func load(path: String, dropout: Float = 0) throws -> CharLM {
        let file = try SafeTensors.read(path: path)
        var config = try self.config(from: file, path: path)
        config.dropout = dropout
        var rng = SeededRNG(seed: 0)
        let model = CharLM(config: config, rng: &rng)
        try assign(file, to: model, path: path)
        return model
    }

    /// The path of the training-state file that goes with a checkpoint.
    public static func trainingStatePath(for checkpoint: String) -> String { checkpoint + ".training.safetensors" }
}
