import Foundation

/// ONNX export: a checkpoint as one ONNX model (opset 17) that ONNX Runtime, or any ONNX runtime
/// with opset 17, runs without this package. Char-LMs (`CharLMONNX`), conditional generators
/// (`GeneratorONNX`), sentence classifiers and their ensembles (`ClassifierONNX`), taggers
/// (`TaggerONNX`), forecasters (`ForecasterONNX`) and translators (`TranslatorONNX`);
/// docs/onnx.md describes each graph.
///
/// The recurrent layers become ONNX's `LSTM`, `GRU` and `RNN` operators (time-major), with
/// PyTorch's gate blocks reordered to ONNX's (the operators' documentation): LSTM i,f,g,o →
/// i,o,f,c; GRU r,z,n → z,r,h with `linear_before_reset = 1` (PyTorch's r ⊙ (W_hn·h + b_hn)); RNN
/// with activation Tanh or Relu. Biases become ONNX's B = [W_b, R_b]; a bidirectional layer's
/// `_reverse` weights are its second direction. Variable lengths go to the operators'
/// `sequence_lens`, which gives the results of PyTorch's `pack_padded_sequence`.
public enum ONNXExport {
    /// The opset the graphs are written for (Squeeze, Unsqueeze and ReduceSum take their axes as
    /// an input from 13 on; ReduceMax takes them as an attribute until 18).
    public static let opset = 17

    /// The checkpoint kinds `export(checkpoint:to:)` writes (the `model` metadata key).
    public static let kinds = ["char-lm", "text-classifier", "tagger", "conditional-generator", "forecaster", "seq2seq"]

    /// Reads a checkpoint of any kind in `kinds` and writes its ONNX model atomically to `path`.
    /// Returns the checkpoint's kind.
    @discardableResult
    public static func export(checkpoint: String, to path: String) throws -> String {
        let kind = try SafeTensors.metadata(path: checkpoint)["model"] ?? "char-lm"
        let model: ONNXProto.Message
        switch kind {
        case "char-lm": model = CharLMONNX.message(try CharLMCheckpoint.load(path: checkpoint))
        case "text-classifier": model = ClassifierONNX.message(try TaskCheckpoint.loadClassifiers(path: checkpoint))
        case "tagger": model = TaggerONNX.message(try TaskCheckpoint.loadTagger(path: checkpoint))
        case "conditional-generator": model = GeneratorONNX.message(try TaskCheckpoint.loadGenerator(path: checkpoint))
        case "seq2seq":
            let (translator, settings) = try TaskCheckpoint.loadSeq2Seq(path: checkpoint)
            model = TranslatorONNX.message(translator, metadata: settings.metadata)
        case "forecaster":
            let (forecaster, metadata) = try TaskCheckpoint.loadForecaster(path: checkpoint)
            model = ForecasterONNX.message(forecaster, metadata: metadata)
        default:
            throw RecurrentError("\(checkpoint): the checkpoint holds a '\(RecurrentError.shown(kind))' model; export writes \(kinds.joined(separator: ", ")) checkpoints")
        }
        try AtomicFile.write(pieces: model.allPieces, to: path)
        return kind
    }
}

/// ONNX export of a char-LM.
///
/// The graph, time-major as ONNX's recurrent operators are (T steps, B streams, L layers):
///
///     inputs   tokens int64 [T, B]; h0 float [L, B, H]; c0 float [L, B, H] (LSTM only)
///     Gather(embedding.weight, tokens)                      → [T, B, E]
///     per layer l: LSTM / GRU / RNN (one direction), initial state Gather(h0, [l])
///                  → Y [T, 1, B, H] → Squeeze(axis 1) → the next layer's input
///     MatMul(Y, head.weightᵀ) + head.bias                   → logits [T, B, V]
///     outputs  logits [T, B, V]; hn [L, B, H]; cn [L, B, H] (LSTM only)
///
/// T and B are free (`seq`, `batch`). A fresh start passes zeros for h0 (and c0); to continue a
/// text, pass the previous call's hn (and cn). The vocabulary is stored in the model's metadata
/// (`vocab`, the checkpoint's JSON array), with the architecture keys of the checkpoint.
public enum CharLMONNX {
    /// The opset the graph is written for.
    public static let opset = ONNXExport.opset

    /// The serialized ONNX model (ModelProto).
    public static func export(_ model: CharLM) -> Data { message(model).bytes }

    /// The ModelProto, as pieces (`AtomicFile.write(pieces:to:)` writes it without joining them).
    static func message(_ model: CharLM) -> ONNXProto.Message {
        let c = model.config
        return ONNXStepModel.message(cell: c.cell, vocabulary: c.vocabulary.count, embedding: c.embeddingSize, hidden: c.hiddenSize,
                                     layers: c.numLayers, parameters: model.namedParameters, condition: nil, name: "char_lm",
                                     metadata: CharLMCheckpoint.metadata(for: c))
    }

    /// Reads a char-LM checkpoint and writes its ONNX model atomically to `path`.
    public static func export(checkpoint: String, to path: String) throws {
        try AtomicFile.write(pieces: message(try CharLMCheckpoint.load(path: checkpoint)).allPieces, to: path)
    }
}

/// ONNX export of a conditional generator: the char-LM's graph (time-major, state in and out, for
/// sampling step by step) with a `condition` input whose embedding is concatenated to every
/// character's, as `ConditionalGenerator` does.
///
///     inputs   tokens int64 [T, B] (starting with <sos>, index 2); condition int64 [B];
///              h0 float [L, B, H]; c0 float [L, B, H] (LSTM only)
///     Concat(Gather(embedding.weight, tokens), Expand(Gather(condition.weight, condition)), axis 2)
///     per layer: LSTM / GRU / RNN → … → MatMul + Add       → logits [T, B, V]
///     outputs  logits [T, B, V]; hn; cn (LSTM only)
///
/// Sampling stops at `<eos>` (index 3). The vocabulary and the condition names are in the metadata.
public enum GeneratorONNX {
    /// The serialized ONNX model (ModelProto).
    public static func export(_ model: ConditionalGenerator) -> Data { message(model).bytes }

    /// The ModelProto, as pieces (`AtomicFile.write(pieces:to:)` writes it without joining them).
    static func message(_ model: ConditionalGenerator) -> ONNXProto.Message {
        let c = model.config
        return ONNXStepModel.message(cell: c.cell, vocabulary: c.vocabulary.count, embedding: c.embeddingSize, hidden: c.hiddenSize,
                                     layers: c.numLayers, parameters: model.namedParameters,
                                     condition: (count: c.conditions.count, size: c.conditionSize), name: "conditional_generator",
                                     metadata: TaskCheckpoint.generatorMetadata(c))
    }
}

/// The graph of a char-LM-like model run step by step: tokens (and a condition) and the initial
/// state in, logits and the final state out (see `CharLMONNX`).
enum ONNXStepModel {
    static func message(cell: CellKind, vocabulary V: Int, embedding E: Int, hidden H: Int, layers L: Int,
                        parameters: [(String, Parameter)], condition: (count: Int, size: Int)?, name: String,
                        metadata: [String: String]) -> ONNXProto.Message {
        let lstm = cell == .lstm
        let params = ONNXGraphBuilder.values(parameters)

        var g = ONNXGraphBuilder()
        g.floats("embedding.weight", [V, E], params["embedding.weight"]!.data)
        g.node("Gather", ["embedding.weight", "tokens"], ["embedded"], name: "embedding")
        var x = "embedded"
        if let condition {   // the condition's embedding beside every character's
            g.floats("condition.weight", [condition.count, condition.size], params["condition.weight"]!.data)
            g.op("Gather", ["condition.weight", "condition"], "condition_embedded")
            g.op("Unsqueeze", ["condition_embedded", g.ints("axes_0", [1], [0])], "condition_step")
            g.op("Shape", ["tokens"], "tokens_shape")
            g.op("Concat", ["tokens_shape", g.ints("condition_width", [1], [Int64(condition.size)])], "condition_shape",
                 [ONNXProto.intAttribute("axis", 0)])
            g.op("Expand", ["condition_step", "condition_shape"], "condition_every_step")
            x = g.op("Concat", ["embedded", "condition_every_step"], "inputs", [ONNXProto.intAttribute("axis", 2)])
        }
        g.ints("squeeze_axes", [1], [1])
        var finalH: [String] = [], finalC: [String] = []
        for l in 0..<L {
            let w = g.recurrentWeights(cell: cell, hidden: H, layer: l, directions: 1, prefix: "") { params["rnn." + $0]! }
            g.ints("layer_\(l)", [1], [Int64(l)])
            g.node("Gather", ["h0", "layer_\(l)"], ["h0_l\(l)"], name: "h0_l\(l)")
            var inputs = [x, w.W, w.R, w.B, "", "h0_l\(l)"]
            var outputs = ["Y_l\(l)", "hn_l\(l)"]
            if lstm {
                g.node("Gather", ["c0", "layer_\(l)"], ["c0_l\(l)"], name: "c0_l\(l)")
                inputs.append("c0_l\(l)")
                outputs.append("cn_l\(l)")
            }
            g.recurrentNode(cell: cell, hidden: H, directions: 1, inputs: inputs, outputs: outputs, name: "rnn_l\(l)")
            g.node("Squeeze", ["Y_l\(l)", "squeeze_axes"], ["out_l\(l)"], name: "squeeze_l\(l)")
            x = "out_l\(l)"
            finalH.append("hn_l\(l)")
            if lstm { finalC.append("cn_l\(l)") }
        }
        g.node("Concat", finalH, ["hn"], name: "hn", [ONNXProto.intAttribute("axis", 0)])
        if lstm { g.node("Concat", finalC, ["cn"], name: "cn", [ONNXProto.intAttribute("axis", 0)]) }
        g.linear(input: x, weight: params["head.weight"]!, bias: params["head.bias"]!, prefix: "head", output: "logits")

        let seq = ONNXProto.Dim.param("seq"), batch = ONNXProto.Dim.param("batch")
        g.input("tokens", ONNXProto.int64, [seq, batch])
        if condition != nil { g.input("condition", ONNXProto.int64, [batch]) }
        g.input("h0", ONNXProto.float, [.value(L), batch, .value(H)])
        if lstm { g.input("c0", ONNXProto.float, [.value(L), batch, .value(H)]) }
        g.output("logits", ONNXProto.float, [seq, batch, .value(V)])
        g.output("hn", ONNXProto.float, [.value(L), batch, .value(H)])
        if lstm { g.output("cn", ONNXProto.float, [.value(L), batch, .value(H)]) }
        return g.model(name: name, metadata: metadata)
    }
}

/// ONNX export of a sentence classifier, or of an ensemble (the mean of the members'
/// probabilities, as `classify predict` takes it).
///
///     inputs   tokens int64 [B, T] (padded with 0, `<pad>`); lengths int64 [B] (each ≥ 1)
///     Gather(embedding.weight, tokensᵀ)                     → [T, B, E]
///     per layer: LSTM / GRU / RNN, both directions when bidirectional, sequence_lens = lengths
///                → Y [T, R, B, H] → Transpose, Reshape       → [T, B, R·H]
///     pooling  last: the final states [R, B, H] → [B, R·H] (forward, then backward)
///              mean: the sum over each sentence's real steps / its length
///              max:  the maximum over its real steps (padding masked with −∞)
///     MatMul(pooled, head.weightᵀ) + head.bias              → logits [B, C]
///     outputs  logits [B, C] (one model only); probabilities [B, C] (softmax, or the ensemble's mean)
///
/// An ensemble's members keep their checkpoint names (`members.k.…`). The vocabulary, labels,
/// tokenisation (`level`, `lowercase`) and architecture are in the model's metadata.
public enum ClassifierONNX {
    /// The serialized ONNX model (ModelProto) of one classifier or of an ensemble sharing one
    /// configuration.
    public static func export(_ members: [TextClassifier]) -> Data { message(members).bytes }

    /// The ModelProto, as pieces (`AtomicFile.write(pieces:to:)` writes it without joining them).
    static func message(_ members: [TextClassifier]) -> ONNXProto.Message {
        require(!members.isEmpty && members.allSatisfy { $0.config == members[0].config },
                "ONNX export of classifiers: give at least one, all with one configuration (vocabulary, labels, architecture)")
        let c = members[0].config
        let H = c.hiddenSize, R = c.bidirectional ? 2 : 1, C = c.labels.count
        let ensemble = members.count > 1

        var g = ONNXGraphBuilder()
        g.op("Transpose", ["tokens"], "tokens_tm", [ONNXProto.intsAttribute("perm", [1, 0])])
        g.op("Cast", ["lengths"], "sequence_lens", [ONNXProto.intAttribute("to", ONNXProto.int32)])
        if c.pooling != .last { g.stepMask(timeMajor: "tokens_tm", lengths: "lengths") }
        if c.pooling == .mean {
            g.op("Cast", ["lengths"], "lengths_float", [ONNXProto.intAttribute("to", ONNXProto.float)])
            g.op("Unsqueeze", ["lengths_float", g.ints("axes_1", [1], [1])], "lengths_column")
        }
        var probabilities: [String] = []
        for (k, member) in members.enumerated() {
            let p = ensemble ? "members.\(k)." : ""
            let params = ONNXGraphBuilder.values(member.namedParameters)
            g.floats(p + "embedding.weight", [c.vocabulary.count, c.embeddingSize], params["embedding.weight"]!.data)
            g.op("Gather", [p + "embedding.weight", "tokens_tm"], p + "embedded")
            let stack = g.lengthMaskedLayers(cell: c.cell, hidden: H, layers: c.numLayers, directions: R, prefix: p,
                                             input: p + "embedded") { params["rnn." + $0]! }
            let x = stack.output, finalH = stack.hn[c.numLayers - 1]
            let pooled: String
            switch c.pooling {
            case .last:
                let batchMajor = g.op("Transpose", [finalH], p + "hn_batch_major", [ONNXProto.intsAttribute("perm", [1, 0, 2])])
                pooled = g.op("Reshape", [batchMajor, g.ints("shape_keep_0_flatten", [2], [0, -1])], p + "pooled")
            case .mean:
                let masked = g.op("Where", ["step_mask", x, g.floats("zero", [], [0])], p + "masked")
                let sum = g.op("ReduceSum", [masked, g.ints("axes_0", [1], [0])], p + "sum", [ONNXProto.intAttribute("keepdims", 0)])
                pooled = g.op("Div", [sum, "lengths_column"], p + "pooled")
            case .max:
                let masked = g.op("Where", ["step_mask", x, g.floats("minus_infinity", [], [-.infinity])], p + "masked")
                pooled = g.op("ReduceMax", [masked], p + "pooled", [ONNXProto.intsAttribute("axes", [0]), ONNXProto.intAttribute("keepdims", 0)])
            }
            let logits = g.linear(input: pooled, weight: params["head.weight"]!, bias: params["head.bias"]!, prefix: p + "head",
                                  output: ensemble ? p + "logits" : "logits")
            probabilities.append(g.op("Softmax", [logits], ensemble ? p + "probabilities" : "probabilities", [ONNXProto.intAttribute("axis", -1)]))
        }
        if ensemble {
            g.op("Sum", probabilities, "probability_sum")
            g.op("Mul", ["probability_sum", g.floats("one_over_members", [], [1 / Float(members.count)])], "probabilities")
        }

        let seq = ONNXProto.Dim.param("seq"), batch = ONNXProto.Dim.param("batch")
        g.input("tokens", ONNXProto.int64, [batch, seq])
        g.input("lengths", ONNXProto.int64, [batch])
        if !ensemble { g.output("logits", ONNXProto.float, [batch, .value(C)]) }
        g.output("probabilities", ONNXProto.float, [batch, .value(C)])
        return g.model(name: "text_classifier", metadata: TaskCheckpoint.classifierMetadata(c, members: members.count))
    }
}

/// ONNX export of a tagger (one tag per word; the character encoder reads every word's spelling).
///
///     inputs   words int64 [B, T] (padded with 0); lengths int64 [B] (each ≥ 1);
///              chars int64 [B, T, W] (each word's characters, padded with 0);
///              char_lengths int64 [B, T] (each word's character count; 0 for padding)
///     character encoder: Flatten(chars) → [B·T, W] → Gather(char_embedding.weight, ᵀ)
///              → LSTM / GRU / RNN, both directions, sequence_lens = max(char_lengths, 1)
///              → the final states [2, B·T, Hc] → [B, T, 2·Hc] → [T, B, 2·Hc]
///     Concat(Gather(embedding.weight, wordsᵀ), characters, axis 2) → [T, B, E + 2·Hc]
///     per layer: both directions, sequence_lens = lengths → [T, B, 2·H]; steps past a length → 0
///     MatMul(·, head.weightᵀ) + head.bias, Transpose        → logits [B, T, C]
///
/// Words are looked up lower-cased when the metadata's `lowercase` is true; characters in their
/// original case, the first 32 (`TaggerConfig.maxWordCharacters`) of each word.
public enum TaggerONNX {
    /// The serialized ONNX model (ModelProto).
    public static func export(_ model: Tagger) -> Data { message(model).bytes }

    /// The ModelProto, as pieces (`AtomicFile.write(pieces:to:)` writes it without joining them).
    static func message(_ model: Tagger) -> ONNXProto.Message {
        let c = model.config
        let H = c.hiddenSize, Hc = c.charHiddenSize, C = c.tags.count
        let params = ONNXGraphBuilder.values(model.namedParameters)

        var g = ONNXGraphBuilder()
        g.op("Transpose", ["words"], "words_tm", [ONNXProto.intsAttribute("perm", [1, 0])])
        g.op("Cast", ["lengths"], "sequence_lens", [ONNXProto.intAttribute("to", ONNXProto.int32)])
        g.stepMask(timeMajor: "words_tm", lengths: "lengths")

        // The character encoder, over every position's word (padding positions read one pad).
        g.op("Flatten", ["chars"], "chars_flat", [ONNXProto.intAttribute("axis", 2)])
        g.op("Transpose", ["chars_flat"], "chars_tm", [ONNXProto.intsAttribute("perm", [1, 0])])
        g.op("Reshape", ["char_lengths", g.ints("shape_flatten", [1], [-1])], "char_lengths_flat")
        g.op("Max", ["char_lengths_flat", g.ints("one", [], [1])], "char_lengths_positive")
        g.op("Cast", ["char_lengths_positive"], "char_sequence_lens", [ONNXProto.intAttribute("to", ONNXProto.int32)])
        g.floats("char_embedding.weight", [c.chars.count, c.charEmbeddingSize], params["char_embedding.weight"]!.data)
        g.op("Gather", ["char_embedding.weight", "chars_tm"], "char_embedded")
        let cw = g.recurrentWeights(cell: c.cell, hidden: Hc, layer: 0, directions: 2, prefix: "char_") { params["char_rnn." + $0]! }
        g.recurrentNode(cell: c.cell, hidden: Hc, directions: 2, inputs: ["char_embedded", cw.W, cw.R, cw.B, "char_sequence_lens"],
                        outputs: ["", "char_hn"], name: "char_rnn")
        g.op("Transpose", ["char_hn"], "char_hn_word_major", [ONNXProto.intsAttribute("perm", [1, 0, 2])])
        g.op("Shape", ["words"], "words_shape")
        g.op("Concat", ["words_shape", g.ints("minus_one", [1], [-1])], "spelling_shape", [ONNXProto.intAttribute("axis", 0)])
        g.op("Reshape", ["char_hn_word_major", "spelling_shape"], "spellings")
        g.op("Transpose", ["spellings"], "spellings_tm", [ONNXProto.intsAttribute("perm", [1, 0, 2])])

        g.floats("embedding.weight", [c.words.count, c.wordEmbeddingSize], params["embedding.weight"]!.data)
        g.op("Gather", ["embedding.weight", "words_tm"], "word_embedded")
        g.op("Concat", ["word_embedded", "spellings_tm"], "word_features", [ONNXProto.intAttribute("axis", 2)])
        let stack = g.lengthMaskedLayers(cell: c.cell, hidden: H, layers: c.numLayers, directions: 2, prefix: "",
                                         input: "word_features") { params["rnn." + $0]! }
        g.op("Where", ["step_mask", stack.output, g.floats("zero", [], [0])], "outputs")
        g.linear(input: "outputs", weight: params["head.weight"]!, bias: params["head.bias"]!, prefix: "head", output: "logits_tm")
        g.op("Transpose", ["logits_tm"], "logits", [ONNXProto.intsAttribute("perm", [1, 0, 2])])

        let seq = ONNXProto.Dim.param("seq"), batch = ONNXProto.Dim.param("batch"), chars = ONNXProto.Dim.param("word_chars")
        g.input("words", ONNXProto.int64, [batch, seq])
        g.input("lengths", ONNXProto.int64, [batch])
        g.input("chars", ONNXProto.int64, [batch, seq, chars])
        g.input("char_lengths", ONNXProto.int64, [batch, seq])
        g.output("logits", ONNXProto.float, [batch, seq, .value(C)])
        return g.model(name: "tagger", metadata: TaskCheckpoint.taggerMetadata(c))
    }
}

/// ONNX export of a forecaster: the last N values of the series in, the next H values out, both in
/// the series' units and in float64 (as `recurrent forecast` scales them); the scaling the
/// checkpoint was trained with is part of the graph.
///
///     input    window double [B, N]
///     scaling  series: the training part's mean and standard deviation (the metadata's);
///              window: each window's mean and population standard deviation (1 when it is at
///              most 1e-12·|mean|, as `WindowScale.of`)
///     z = float((window − mean) / scale) → [N, B, 1]
///     direct:    the layers, then the head on the last layer's final state  → [B, H]
///     recursive: the layers over the window, then H − 1 times the head's value fed back as a
///                one-step input to every layer (states carried); the H values → [B, H]
///     output   forecast double [B, H] = double(z′) · scale + mean
///
/// The recursive loop is unrolled (H is fixed by the checkpoint); every step reads the same
/// initializers.
public enum ForecasterONNX {
    /// The serialized ONNX model (ModelProto); `metadata` (the checkpoint's, for the CLI's stored
    /// settings) goes into `metadata_props` under the architecture keys.
    public static func export(_ model: Forecaster, metadata: [String: String] = [:]) -> Data { message(model, metadata: metadata).bytes }

    /// The ModelProto, as pieces (`AtomicFile.write(pieces:to:)` writes it without joining them).
    static func message(_ model: Forecaster, metadata: [String: String] = [:]) -> ONNXProto.Message {
        let c = model.config
        let Hd = c.hiddenSize, L = c.numLayers, N = c.window, H = c.horizon
        let lstm = c.cell == .lstm
        let params = ONNXGraphBuilder.values(model.namedParameters)
        let keepDims = ONNXProto.intAttribute("keepdims", 1), overSteps = ONNXProto.intsAttribute("axes", [1])

        var g = ONNXGraphBuilder()
        switch c.normalization {
        case .series:
            g.doubles("mean", [], [c.seriesScale.mean])
            g.doubles("scale", [], [c.seriesScale.scale])
        case .window:
            g.op("ReduceMean", ["window"], "mean", [overSteps, keepDims])
            g.op("Sub", ["window", "mean"], "centred")
            g.op("Mul", ["centred", "centred"], "squares")
            g.op("ReduceMean", ["squares"], "variance", [overSteps, keepDims])
            g.op("Sqrt", ["variance"], "std")
            g.op("Abs", ["mean"], "mean_magnitude")
            g.op("Mul", ["mean_magnitude", g.doubles("rounding", [], [1e-12])], "std_floor")
            g.op("Greater", ["std", "std_floor"], "std_usable")
            g.op("Where", ["std_usable", "std", g.doubles("one_double", [], [1])], "scale")
        }
        g.op("Sub", ["window", "mean"], "offset")
        g.op("Div", ["offset", "scale"], "normalized_double")
        g.op("Cast", ["normalized_double"], "normalized", [ONNXProto.intAttribute("to", ONNXProto.float)])
        g.op("Transpose", ["normalized"], "normalized_tm", [ONNXProto.intsAttribute("perm", [1, 0])])
        var x = g.op("Unsqueeze", ["normalized_tm", g.ints("axes_2", [1], [2])], "inputs")   // [N, B, 1]
        let axis0 = g.ints("axes_0", [1], [0]), axis1 = g.ints("axes_1", [1], [1])

        // The window; then, for recursive forecasts, one step per fed-back value.
        let weights = (0..<L).map { l in g.recurrentWeights(cell: c.cell, hidden: Hd, layer: l, directions: 1, prefix: "") { params["rnn." + $0]! } }
        var h = [String](repeating: "", count: L), cc = [String](repeating: "", count: L)
        func runLayers(step: String) {
            for l in 0..<L {
                let w = weights[l], s = "_l\(l)" + step
                var inputs = [x, w.W, w.R, w.B]
                if !h[l].isEmpty { inputs += ["", h[l]] + (lstm ? [cc[l]] : []) }
                g.recurrentNode(cell: c.cell, hidden: Hd, directions: 1, inputs: inputs,
                                outputs: ["Y" + s, "hn" + s] + (lstm ? ["cn" + s] : []), name: "rnn" + s)
                h[l] = "hn" + s
                if lstm { cc[l] = "cn" + s }
                x = g.op("Squeeze", ["Y" + s, axis1], "out" + s)
            }
        }
        runLayers(step: "")
        let head = (weight: params["head.weight"]!, bias: params["head.bias"]!)
        switch c.mode {
        case .direct:
            g.op("Squeeze", [h[L - 1], axis0], "last_state")
            g.linear(input: "last_state", weight: head.weight, bias: head.bias, prefix: "head", output: "forecast_normalized")
        case .recursive:
            var values: [String] = []
            for k in 0..<H {
                let last = g.op("Squeeze", [h[L - 1], axis0], "last_state_\(k)")
                values.append(g.linear(input: last, weight: head.weight, bias: head.bias, prefix: "head", output: "value_\(k)", node: "head_\(k)"))
                if k == H - 1 { break }
                x = g.op("Unsqueeze", ["value_\(k)", axis0], "fed_back_\(k)")   // [1, B, 1]
                runLayers(step: "_step\(k + 1)")
            }
            g.op("Concat", values, "forecast_normalized", [ONNXProto.intAttribute("axis", 1)])
        }
        g.op("Cast", ["forecast_normalized"], "forecast_normalized_double", [ONNXProto.intAttribute("to", ONNXProto.double)])
        g.op("Mul", ["forecast_normalized_double", "scale"], "forecast_offset")
        g.op("Add", ["forecast_offset", "mean"], "forecast")

        let batch = ONNXProto.Dim.param("batch")
        g.input("window", ONNXProto.double, [batch, .value(N)])
        g.output("forecast", ONNXProto.double, [batch, .value(H)])
        return g.model(name: "forecaster", metadata: metadata.merging(TaskCheckpoint.forecasterMetadata(c)) { $1 })
    }
}

/// ONNX export of a translator: the encoder, the bridge and the decoder with its attention, run
/// over a given target prefix (teacher forcing), in one graph; greedy decoding calls it with a
/// prefix one word longer each time.
///
///     inputs   source int64 [B, S] (word indices with <eos>, index 3, appended; padded with 0);
///              source_lengths int64 [B] (<eos> included); target_in int64 [B, T] (<sos>, index 2, then
///              the words so far)
///     encoder: Gather, per layer LSTM / GRU (both directions when bidirectional), sequence_lens
///              → enc [B, S, K]; bridge: each layer's two directions' final states added → [L, B, H]
///     keys     bahdanau: enc·Uaᵀ + Ua.bias; luong: enc·Waᵀ                      → [B, S, H]
///     decoder: Scan over the embedded target_in, the state [L, B, H] (and the cell state) carried;
///              one step: bahdanau: context from the query h[L−1] joins the embedding; the layers
///              (one-step LSTM / GRU nodes); luong: tanh(combine([context; y])); then out
///              attention: scores (padding −∞), Softmax over the source, context = Σ a·enc
///     output   logits float [B, T, V]: the scores of the next word after each prefix position
///
/// The source is normalised and split as `recurrent translate` does (docs/seq2seq.md).
public enum TranslatorONNX {
    /// The serialized ONNX model (ModelProto); `metadata` (the checkpoint's data settings) goes into
    /// `metadata_props` under the architecture keys.
    public static func export(_ model: Seq2Seq, metadata: [String: String] = [:]) -> Data { message(model, metadata: metadata).bytes }

    /// The ModelProto, as pieces (`AtomicFile.write(pieces:to:)` writes it without joining them).
    static func message(_ model: Seq2Seq, metadata: [String: String] = [:]) -> ONNXProto.Message {
        let c = model.config
        let H = c.hiddenSize, L = c.numLayers, E = c.embeddingSize, R = c.bidirectional ? 2 : 1
        let lstm = c.cell == .lstm
        let params = ONNXGraphBuilder.values(model.namedParameters)
        let perm = { (p: [Int64]) in ONNXProto.intsAttribute("perm", p) }

        var g = ONNXGraphBuilder()
        let axes0 = g.ints("axes_0", [1], [0]), axes1 = g.ints("axes_1", [1], [1])
        let axes2 = c.attention == .none ? "" : g.ints("axes_2", [1], [2])
        // The encoder, as the classifier's layers.
        g.op("Transpose", ["source"], "source_tm", [perm([1, 0])])
        g.op("Cast", ["source_lengths"], "sequence_lens", [ONNXProto.intAttribute("to", ONNXProto.int32)])
        g.floats("encoder_embedding.weight", [c.source.count, E], params["encoder_embedding.weight"]!.data)
        g.op("Gather", ["encoder_embedding.weight", "source_tm"], "source_embedded")
        let encoder = g.lengthMaskedLayers(cell: c.cell, hidden: H, layers: L, directions: R, prefix: "encoder_",
                                           input: "source_embedded") { params["encoder." + $0]! }
        func bridged(_ state: String) -> String {   // the bridge: a bidirectional layer's two directions added
            R == 2 ? g.op("ReduceSum", [state, axes0], "bridge_" + state, [ONNXProto.intAttribute("keepdims", 1)]) : state
        }
        g.op("Concat", encoder.hn.map(bridged), "decoder_h0", [ONNXProto.intAttribute("axis", 0)])
        if lstm { g.op("Concat", encoder.cn.map(bridged), "decoder_c0", [ONNXProto.intAttribute("axis", 0)]) }
        g.op("Transpose", [encoder.output], "memory", [perm([1, 0, 2])])   // [B, S, K]

        // The attention's keys and the source mask [B, S].
        switch c.attention {
        case .bahdanau:
            g.linear(input: "memory", weight: params["attention.Ua.weight"]!, bias: params["attention.Ua.bias"]!, prefix: "attention.Ua", output: "keys")
        case .luong:
            let wa = params["attention.Wa.weight"]!   // (H, K)
            g.floats("attention.Wa.weight_t", [wa.shape[1], wa.shape[0]], ONNXGraphBuilder.transposed(wa))
            g.op("MatMul", ["memory", "attention.Wa.weight_t"], "keys")
        case .none: break
        }
        if c.attention != .none {
            let mask = g.stepMask(timeMajor: "source_tm", lengths: "source_lengths", featureAxis: false)
            g.op("Transpose", [mask], "source_mask", [perm([1, 0])])   // [B, S]
        }

        // The decoder: one Scan step per target position.
        g.floats("decoder_embedding.weight", [c.target.count, E], params["decoder_embedding.weight"]!.data)
        g.op("Transpose", ["target_in"], "target_tm", [perm([1, 0])])
        g.op("Gather", ["decoder_embedding.weight", "target_tm"], "target_embedded")   // [T, B, E]
        let decoderWeights = (0..<L).map { l in
            g.recurrentWeights(cell: c.cell, hidden: H, layer: l, directions: 1, prefix: "decoder_") { params["decoder." + $0]! }
        }
        var step = ONNXGraphBuilder()
        let batch = ONNXProto.Dim.param("batch")
        step.input("step_h", ONNXProto.float, [.value(L), batch, .value(H)])
        if lstm { step.input("step_c", ONNXProto.float, [.value(L), batch, .value(H)]) }
        step.input("step_word", ONNXProto.float, [batch, .value(E)])
        func attend(_ query: String) -> String {   // the context [B, K] for a query [B, H]
            let scores: String
            if c.attention == .bahdanau {
                step.linear(input: query, weight: params["attention.Wa.weight"]!, bias: params["attention.Wa.bias"]!, prefix: "attention.Wa",
                            output: "step_query_projected", node: "step_attention_Wa")
                step.op("Unsqueeze", ["step_query_projected", axes1], "step_query_row")
                step.op("Add", ["keys", "step_query_row"], "step_energies_linear")
                step.op("Tanh", ["step_energies_linear"], "step_energies")
                step.linear(input: "step_energies", weight: params["attention.Va.weight"]!, bias: params["attention.Va.bias"]!, prefix: "attention.Va",
                            output: "step_scores_column", node: "step_attention_Va")
                scores = step.op("Squeeze", ["step_scores_column", axes2], "step_scores")
            } else {
                step.op("Unsqueeze", [query, axes1], "step_query_row")
                step.op("Mul", ["keys", "step_query_row"], "step_products")
                scores = step.op("ReduceSum", ["step_products", axes2], "step_scores", [ONNXProto.intAttribute("keepdims", 0)])
            }
            step.op("Where", ["source_mask", scores, g.floats("minus_infinity", [], [-.infinity])], "step_masked_scores")
            step.op("Softmax", ["step_masked_scores"], "step_weights", [ONNXProto.intAttribute("axis", -1)])
            step.op("Unsqueeze", ["step_weights", axes2], "step_weights_column")
            step.op("Mul", ["step_weights_column", "memory"], "step_weighted")
            return step.op("ReduceSum", ["step_weighted", axes1], "step_context", [ONNXProto.intAttribute("keepdims", 0)])
        }
        var input = "step_word"
        if c.attention == .bahdanau {
            step.op("Gather", ["step_h", g.ints("index_top", [], [Int64(L - 1)])], "step_query")
            let context = attend("step_query")
            input = step.op("Concat", ["step_word", context], "step_input", [ONNXProto.intAttribute("axis", 1)])
        }
        var layerInput = step.op("Unsqueeze", [input, axes0], "step_x_l0")   // [1, B, D]
        var nextH: [String] = [], nextC: [String] = []
        for l in 0..<L {
            let w = decoderWeights[l]
            step.op("Gather", ["step_h", g.ints("layer_\(l)", [1], [Int64(l)])], "step_h_l\(l)")
            var inputs = [layerInput, w.W, w.R, w.B, "", "step_h_l\(l)"]
            if lstm {
                step.op("Gather", ["step_c", "layer_\(l)"], "step_c_l\(l)")
                inputs.append("step_c_l\(l)")
            }
            step.recurrentNode(cell: c.cell, hidden: H, directions: 1, inputs: inputs,
                               outputs: ["step_Y_l\(l)", "step_hn_l\(l)"] + (lstm ? ["step_cn_l\(l)"] : []), name: "step_decoder_l\(l)")
            layerInput = step.op("Squeeze", ["step_Y_l\(l)", "axes_1"], "step_x_l\(l + 1)")
            nextH.append("step_hn_l\(l)")
            if lstm { nextC.append("step_cn_l\(l)") }
        }
        var feature = step.op("Squeeze", ["step_hn_l\(L - 1)", "axes_0"], "step_y")   // [B, H]
        if c.attention == .luong {
            let context = attend(feature)
            step.op("Concat", [context, feature], "step_joined", [ONNXProto.intAttribute("axis", 1)])
            step.linear(input: "step_joined", weight: params["combine.weight"]!, bias: params["combine.bias"]!, prefix: "combine",
                        output: "step_combined", node: "step_combine")
            feature = step.op("Tanh", ["step_combined"], "step_feature")
        }
        step.linear(input: feature, weight: params["out.weight"]!, bias: params["out.bias"]!, prefix: "out", output: "step_logits", node: "step_out")
        step.op("Concat", nextH, "step_h_next", [ONNXProto.intAttribute("axis", 0)])
        if lstm { step.op("Concat", nextC, "step_c_next", [ONNXProto.intAttribute("axis", 0)]) }
        step.output("step_h_next", ONNXProto.float, [.value(L), batch, .value(H)])
        if lstm { step.output("step_c_next", ONNXProto.float, [.value(L), batch, .value(H)]) }
        step.output("step_logits", ONNXProto.float, [batch, .value(c.target.count)])
        // The step's own weights (attention, combine, out) are its initializers; the decoder's
        // recurrent weights and the constants are the outer graph's (a subgraph reads outer names).

        let states = lstm ? ["decoder_h0", "decoder_c0"] : ["decoder_h0"]
        g.node("Scan", states + ["target_embedded"], (lstm ? ["decoder_hn", "decoder_cn"] : ["decoder_hn"]) + ["logits_tm"], name: "decoder",
               [ONNXProto.graphAttribute("body", step.graph(name: "decoder_step")), ONNXProto.intAttribute("num_scan_inputs", 1)])
        g.op("Transpose", ["logits_tm"], "logits", [perm([1, 0, 2])])

        let source = ONNXProto.Dim.param("source_steps"), target = ONNXProto.Dim.param("target_steps")
        g.input("source", ONNXProto.int64, [batch, source])
        g.input("source_lengths", ONNXProto.int64, [batch])
        g.input("target_in", ONNXProto.int64, [batch, target])
        g.output("logits", ONNXProto.float, [batch, target, .value(c.target.count)])
        return g.model(name: "translator", metadata: metadata.merging(TaskCheckpoint.seq2seqMetadata(c)) { $1 })
    }
}

/// An ONNX graph under construction: initializers and nodes in the order they are added.
struct ONNXGraphBuilder {
    private(set) var nodes: [ONNXProto.Message] = []
    private(set) var initializers: [ONNXProto.Message] = []
    private var initializerNames: Set<String> = []
    private var inputs: [ONNXProto.Message] = []
    private var outputs: [ONNXProto.Message] = []

    /// A float initializer (added once under its name; a constant several nodes share).
    @discardableResult
    mutating func floats(_ name: String, _ dims: [Int], _ values: [Float]) -> String {
        if initializerNames.insert(name).inserted { initializers.append(ONNXProto.floatTensor(name, dims: dims, values)) }
        return name
    }

    /// A float64 initializer (added once under its name).
    @discardableResult
    mutating func doubles(_ name: String, _ dims: [Int], _ values: [Double]) -> String {
        if initializerNames.insert(name).inserted { initializers.append(ONNXProto.doubleTensor(name, dims: dims, values)) }
        return name
    }

    /// An int64 initializer (added once under its name).
    @discardableResult
    mutating func ints(_ name: String, _ dims: [Int], _ values: [Int64]) -> String {
        if initializerNames.insert(name).inserted { initializers.append(ONNXProto.int64Tensor(name, dims: dims, values)) }
        return name
    }

    mutating func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String, _ attributes: [ONNXProto.Message] = []) {
        nodes.append(ONNXProto.node(op, inputs: inputs, outputs: outputs, name: name, attributes: attributes))
    }

    /// A node with one output, named after it; returns the output.
    @discardableResult
    mutating func op(_ op: String, _ inputs: [String], _ output: String, _ attributes: [ONNXProto.Message] = []) -> String {
        node(op, inputs, [output], name: output, attributes)
        return output
    }

    mutating func input(_ name: String, _ type: Int64, _ dims: [ONNXProto.Dim]) {
        inputs.append(ONNXProto.valueInfo(name, elemType: type, dims: dims))
    }

    mutating func output(_ name: String, _ type: Int64, _ dims: [ONNXProto.Dim]) {
        outputs.append(ONNXProto.valueInfo(name, elemType: type, dims: dims))
    }

    /// Layer `l`'s weights (both directions when `directions` is 2) as ONNX's W [R, G·H, in],
    /// R [R, G·H, H] and B [R, 2·G·H], in ONNX's gate order. `tensor` maps PyTorch's parameter
    /// name (`weight_ih_l0`, `bias_hh_l0_reverse`, …) to its value.
    mutating func recurrentWeights(cell: CellKind, hidden H: Int, layer l: Int, directions: Int, prefix: String,
                                   _ tensor: (String) -> Tensor) -> (W: String, R: String, B: String) {
        let G = cell.gateCount
        let order: [Int]   // ONNX's gate blocks as indices of PyTorch's
        switch cell {
        case .lstm: order = [0, 3, 1, 2]
        case .gru: order = [1, 0, 2]
        case .rnnTanh, .rnnRelu: order = [0]
        }
        func reorderRows(_ t: Tensor) -> [Float] {   // (G·H, K) or (G·H,) with PyTorch's blocks → ONNX's
            let k = t.count / (G * H)
            var out: [Float] = []
            out.reserveCapacity(t.count)
            for b in order { out.append(contentsOf: t.data[(b * H * k)..<((b + 1) * H * k)]) }
            return out
        }
        var w: [Float] = [], r: [Float] = [], b: [Float] = []
        var inputSize = 0
        for d in 0..<directions {
            let suffix = "_l\(l)" + (d == 1 ? "_reverse" : "")
            let wih = tensor("weight_ih" + suffix)
            inputSize = wih.shape[1]
            w += reorderRows(wih)
            r += reorderRows(tensor("weight_hh" + suffix))
            b += reorderRows(tensor("bias_ih" + suffix)) + reorderRows(tensor("bias_hh" + suffix))
        }
        let names = (W: prefix + "W_l\(l)", R: prefix + "R_l\(l)", B: prefix + "B_l\(l)")
        floats(names.W, [directions, G * H, inputSize], w)
        floats(names.R, [directions, G * H, H], r)
        floats(names.B, [directions, 2 * G * H], b)
        return names
    }

    /// An ONNX LSTM / GRU / RNN node: `forward` or `bidirectional`.
    mutating func recurrentNode(cell: CellKind, hidden H: Int, directions: Int, inputs: [String], outputs: [String], name: String) {
        var attributes = [ONNXProto.intAttribute("hidden_size", Int64(H))]
        let op: String
        switch cell {
        case .lstm: op = "LSTM"
        case .gru:
            op = "GRU"
            attributes.append(ONNXProto.intAttribute("linear_before_reset", 1))
        case .rnnTanh, .rnnRelu:
            op = "RNN"
            attributes.append(ONNXProto.stringsAttribute("activations", Array(repeating: cell == .rnnTanh ? "Tanh" : "Relu", count: directions)))
        }
        if directions == 2 { attributes.append(ONNXProto.stringAttribute("direction", "bidirectional")) }
        node(op, inputs, outputs, name: name, attributes)
    }

    /// A recurrent node's Y [T, R, B, H] as the next layer's input [T, B, R·H] (forward, then backward).
    mutating func directionsToFeatures(_ y: String, output: String) -> String {
        let t = op("Transpose", [y], output + "_transposed", [ONNXProto.intsAttribute("perm", [0, 2, 1, 3])])
        return op("Reshape", [t, ints("shape_keep_0_1_flatten", [3], [0, 0, -1])], output)
    }

    /// `step_mask` bool [T, B, 1] (`step_mask_2d` [T, B] without `featureAxis`): step t of stream b
    /// is real (t < lengths[b]); from a time-major [T, B] input and int64 lengths [B]. Returns its name.
    @discardableResult
    mutating func stepMask(timeMajor: String, lengths: String, featureAxis: Bool = true) -> String {
        op("Shape", [timeMajor], "steps_shape")
        op("Gather", ["steps_shape", ints("index_0", [], [0])], "step_count")
        op("Range", [ints("zero_int", [], [0]), "step_count", ints("one", [], [1])], "steps")
        op("Unsqueeze", ["steps", ints("axes_1", [1], [1])], "steps_column")
        let mask = op("Less", ["steps_column", lengths], "step_mask_2d")
        return featureAxis ? op("Unsqueeze", [mask, ints("axes_2", [1], [2])], "step_mask") : mask
    }

    /// `layers` recurrent layers over a time-major input with `sequence_lens` (the results of
    /// `pack_padded_sequence`), both directions in one node when `directions` is 2. Names start
    /// with `prefix`; `parameter` maps PyTorch's names (`weight_ih_l0`, …) to values. Returns the
    /// last layer's outputs [T, B, R·H] and every layer's final states [R, B, H] (cn: LSTM only).
    mutating func lengthMaskedLayers(cell: CellKind, hidden H: Int, layers: Int, directions: Int, prefix: String, input: String,
                                     _ parameter: (String) -> Tensor) -> (output: String, hn: [String], cn: [String]) {
        var x = input, hn: [String] = [], cn: [String] = []
        for l in 0..<layers {
            let w = recurrentWeights(cell: cell, hidden: H, layer: l, directions: directions, prefix: prefix, parameter)
            let states = [prefix + "hn_l\(l)"] + (cell == .lstm ? [prefix + "cn_l\(l)"] : [])
            recurrentNode(cell: cell, hidden: H, directions: directions, inputs: [x, w.W, w.R, w.B, "sequence_lens"],
                          outputs: [prefix + "Y_l\(l)"] + states, name: prefix + "rnn_l\(l)")
            x = directionsToFeatures(prefix + "Y_l\(l)", output: prefix + "out_l\(l)")
            hn.append(states[0])
            if cell == .lstm { cn.append(states[1]) }
        }
        return (x, hn, cn)
    }

    /// Parameter values by their `state_dict` names.
    static func values(_ named: [(String, Parameter)]) -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: named.map { ($0.0, $0.1.value) })
    }

    /// A (rows, columns) matrix's values as (columns, rows).
    static func transposed(_ m: Tensor) -> [Float] {
        let rows = m.shape[0], columns = m.shape[1]
        var t = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows { for c in 0..<columns { t[c * rows + r] = m.data[r * columns + c] } }
        return t
    }

    /// MatMul by the transposed weight (out, in) → (in, out), stored as `<prefix>.weight_t`, then Add
    /// the bias. `node` names the two nodes (default `prefix`; one name per use of shared weights).
    @discardableResult
    mutating func linear(input: String, weight: Tensor, bias: Tensor, prefix: String, output: String, node name: String? = nil) -> String {
        let outSize = weight.shape[0], inSize = weight.shape[1]
        floats(prefix + ".weight_t", [inSize, outSize], Self.transposed(weight))
        floats(prefix + ".bias", [outSize], bias.data)
        let n = name ?? prefix
        node("MatMul", [input, prefix + ".weight_t"], [n + "_mm"], name: n + "_matmul")
        node("Add", [n + "_mm", prefix + ".bias"], [output], name: n + "_bias")
        return output
    }

    /// The GraphProto.
    func graph(name: String) -> ONNXProto.Message {
        var graph = ONNXProto.Message()
        for n in nodes { graph.message(1, n) }
        graph.string(2, name)
        for t in initializers { graph.message(5, t) }
        for i in inputs { graph.message(11, i) }
        for o in outputs { graph.message(12, o) }
        return graph
    }

    /// The ModelProto: this graph, opset 17, and `metadata` as `metadata_props`.
    func model(name: String, metadata: [String: String]) -> ONNXProto.Message {
        let graph = graph(name: name)
        var m = ONNXProto.Message()
        m.int(1, 8)                                // ir_version
        m.string(2, "recurrent")                   // producer_name
        m.message(7, graph)
        var opsetID = ONNXProto.Message()
        opsetID.string(1, "")
        opsetID.int(2, Int64(ONNXExport.opset))
        m.message(8, opsetID)
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) {
            var entry = ONNXProto.Message()
            entry.string(1, k)
            entry.string(2, v)
            m.message(14, entry)                   // metadata_props
        }
        return m
    }
}

/// The few ONNX protobuf messages the exporter writes, encoded by hand (field numbers from
/// onnx.proto): varints, little-endian floats and length-delimited fields, nothing else.
enum ONNXProto {
    static let float: Int64 = 1   // TensorProto.DataType
    static let int32: Int64 = 6
    static let int64: Int64 = 7
    static let double: Int64 = 11

    /// An encoded message, kept as pieces written one after the other: a large value (a tensor's
    /// raw data, a nested message holding one) is kept as the pieces it already is rather than
    /// copied into its parent, so a model of N weight bytes is built in about N bytes, not one
    /// copy per level of nesting, and written to its file piece by piece.
    struct Message {
        /// Values of at least this many bytes stay pieces of their own.
        static let pieceBytes = 1 << 16

        private var pieces: [Data] = []
        private var tail = Data()   // small fields not yet a piece
        /// The encoded length in bytes.
        private(set) var count = 0

        /// The encoded bytes, piece by piece.
        var allPieces: [Data] { tail.isEmpty ? pieces : pieces + [tail] }

        /// The encoded bytes in one buffer.
        var bytes: Data {
            if pieces.isEmpty { return tail }
            var d = Data(capacity: count)
            for p in allPieces { d.append(p) }
            return d
        }

        private mutating func appendPiece(_ d: Data) {
            if !tail.isEmpty { pieces.append(tail); tail = Data() }
            pieces.append(d)
        }

        mutating func varint(_ v: UInt64) {
            var v = v
            while v >= 0x80 {
                tail.append(UInt8(v & 0x7f) | 0x80)
                v >>= 7
                count += 1
            }
            tail.append(UInt8(v))
            count += 1
        }
        mutating func key(_ field: Int, _ wire: UInt64) { varint(UInt64(field) << 3 | wire) }
        mutating func int(_ field: Int, _ v: Int64) {
            key(field, 0)
            varint(UInt64(bitPattern: v))
        }
        mutating func lengthDelimited(_ field: Int, _ d: Data) {
            key(field, 2)
            varint(UInt64(d.count))
            if d.count >= Self.pieceBytes { appendPiece(d) } else { tail.append(d) }
            count += d.count
        }
        mutating func string(_ field: Int, _ s: String) { lengthDelimited(field, Data(s.utf8)) }
        mutating func message(_ field: Int, _ m: Message) {
            key(field, 2)
            varint(UInt64(m.count))
            if m.pieces.isEmpty { tail.append(m.tail) } else { for p in m.allPieces { appendPiece(p) } }
            count += m.count
        }
        mutating func packedInts(_ field: Int, _ values: [Int64]) {
            var inner = Message()
            for v in values { inner.varint(UInt64(bitPattern: v)) }
            message(field, inner)
        }
    }

    enum Dim {
        case value(Int)
        case param(String)
    }

    static func floatTensor(_ name: String, dims: [Int], _ values: [Float]) -> Message {
        tensor(name, dims: dims, type: float, raw: littleEndian(values) { $0.map(\.bitPattern) }, count: values.count)
    }

    static func doubleTensor(_ name: String, dims: [Int], _ values: [Double]) -> Message {
        tensor(name, dims: dims, type: double, raw: littleEndian(values) { $0.map(\.bitPattern) }, count: values.count)
    }

    static func int64Tensor(_ name: String, dims: [Int], _ values: [Int64]) -> Message {
        tensor(name, dims: dims, type: int64, raw: littleEndian(values) { $0 }, count: values.count)
    }

    /// The values' bytes, little-endian as ONNX's raw_data is (`bits`: their bit patterns).
    private static func littleEndian<T, B: FixedWidthInteger>(_ values: [T], bits: ([T]) -> [B]) -> Data {
        #if _endian(little)
        return values.withUnsafeBytes { Data($0) }
        #else
        return bits(values).map(\.littleEndian).withUnsafeBytes { Data($0) }
        #endif
    }

    /// A TensorProto with its values in raw_data (little-endian, as ONNX requires).
    private static func tensor(_ name: String, dims: [Int], type: Int64, raw: Data, count: Int) -> Message {
        require(count == dims.reduce(1, *))
        var t = Message()
        if !dims.isEmpty { t.packedInts(1, dims.map(Int64.init)) }   // a scalar has no dims
        t.int(2, type)
        t.string(8, name)
        t.lengthDelimited(9, raw)
        return t
    }

    /// An AttributeProto: its name, the value field(s) `value` writes, and its AttributeType.
    private static func attribute(_ name: String, type: Int64, _ value: (inout Message) -> Void) -> Message {
        var a = Message()
        a.string(1, name)
        value(&a)
        a.int(20, type)
        return a
    }

    static func intAttribute(_ name: String, _ v: Int64) -> Message { attribute(name, type: 2) { $0.int(3, v) } }   // INT

    static func intsAttribute(_ name: String, _ values: [Int64]) -> Message {   // INTS
        attribute(name, type: 7) { a in for v in values { a.int(8, v) } }
    }

    static func stringAttribute(_ name: String, _ value: String) -> Message { attribute(name, type: 3) { $0.string(4, value) } }   // STRING

    static func graphAttribute(_ name: String, _ graph: Message) -> Message { attribute(name, type: 5) { $0.message(6, graph) } }   // GRAPH

    static func stringsAttribute(_ name: String, _ values: [String]) -> Message {   // STRINGS
        attribute(name, type: 8) { a in for s in values { a.string(9, s) } }
    }

    static func node(_ op: String, inputs: [String], outputs: [String], name: String, attributes: [Message] = []) -> Message {
        var n = Message()
        for i in inputs { n.string(1, i) }
        for o in outputs { n.string(2, o) }
        n.string(3, name)
        n.string(4, op)
        for a in attributes { n.message(5, a) }
        return n
    }

    static func valueInfo(_ name: String, elemType: Int64, dims: [Dim]) -> Message {
        var shape = Message()
        for d in dims {
            var dim = Message()
            switch d {
            case .value(let v): dim.int(1, Int64(v))
            case .param(let p): dim.string(2, p)
            }
            shape.message(1, dim)
        }
        var tensorType = Message()
        tensorType.int(1, elemType)
        tensorType.message(2, shape)
        var type = Message()
        type.message(1, tensorType)
        var info = Message()
        info.string(1, name)
        info.message(2, type)
        return info
    }
}
