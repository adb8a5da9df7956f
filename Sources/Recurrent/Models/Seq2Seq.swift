/// The architecture of an encoder-decoder translator.
public struct Seq2SeqConfig: Sendable, Equatable {
    public var cell: CellKind
    public var attention: AttentionKind
    /// Word vocabularies; both hold `<pad>`, `<unk>`, `<sos>`, `<eos>` at 0…3 (`TranslationVocabulary`).
    public var source: TokenVocabulary
    public var target: TokenVocabulary
    public var embeddingSize: Int
    public var hiddenSize: Int
    /// Layers of the encoder and of the decoder.
    public var numLayers: Int
    /// A bidirectional encoder (the decoder always runs forward).
    public var bidirectional: Bool
    /// Dropout on the embedded source and target words (training only).
    public var dropout: Float

    public init(cell: CellKind, attention: AttentionKind, source: TokenVocabulary, target: TokenVocabulary,
                embeddingSize: Int, hiddenSize: Int, numLayers: Int, bidirectional: Bool, dropout: Float = 0) {
        self.cell = cell
        self.attention = attention
        self.source = source
        self.target = target
        self.embeddingSize = embeddingSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.bidirectional = bidirectional
        self.dropout = dropout
    }

    /// Width of the encoder outputs: R·H.
    public var keySize: Int { (bidirectional ? 2 : 1) * hiddenSize }
}

/// An encoder-decoder (sequence-to-sequence) translator with the layout of this PyTorch module:
///
///     class Seq2Seq(nn.Module):
///         def __init__(self, Vs, Vt, E, H, L, bi, attention, p):
///             super().__init__()
///             self.encoder_embedding = nn.Embedding(Vs, E)
///             self.encoder = nn.GRU(E, H, L, batch_first=True, bidirectional=bi)        # or nn.LSTM
///             self.decoder_embedding = nn.Embedding(Vt, E)
///             K = 2 * H if bi else H
///             self.decoder = nn.GRU(E + (K if attention == "bahdanau" else 0), H, L, batch_first=True)
///             if attention == "bahdanau": self.attention = BahdanauAttention(K, H)        # Wa, Ua, Va
///             if attention == "luong":    self.attention = LuongAttention(K, H)           # Wa (no bias)
///             if attention == "luong":    self.combine = nn.Linear(K + H, H)
///             self.out = nn.Linear(H, Vt)
///             self.drop = nn.Dropout(p)
///         def forward(self, src, src_lengths, tgt_in):           # tgt_in[:, 0] = <sos>
///             enc, h = self.encoder(pack_padded_sequence(self.drop(self.encoder_embedding(src)), src_lengths, ...))
///             enc, _ = pad_packed_sequence(enc, batch_first=True)                         # (B,S,K)
///             if bi: h = h.view(L, 2, B, H).sum(1)   # the bridge: both directions' final states added (c too)
///             for t in range(T):                     # tgt_in[:, t]: teacher token or previous argmax
///                 x = self.drop(self.decoder_embedding(tgt_in[:, t]))                     # (B,E)
///                 if bahdanau: ctx = self.attention(h[-1], enc, mask); x = cat(x, ctx)    # query h[t-1]
///                 y, h = self.decoder(x[:, None], h)
///                 if luong: ctx = self.attention(y[:, 0], enc, mask); y = tanh(self.combine(cat(ctx, y[:, 0])))
///                 logits[:, t] = self.out(y)                                              # (B,Vt)
///         # loss = F.cross_entropy(logits over real target words and the final <eos>, ignore_index on padding)
///
/// Shapes (B batch, S longest source + 1 for <eos>, T longest target + 1, E embedding, H hidden,
/// K = R·H, V target vocabulary): src (B,S) → enc (B,S,K); decoder state (L,B,H); logits (T,B,V)
/// time-major. The source gets `<eos>` appended (as in the PyTorch tutorial), so it is never empty.
public final class Seq2Seq: ParameterizedModule, @unchecked Sendable {
    public let config: Seq2SeqConfig
    public let encoderEmbedding: Embedding
    public let encoder: RecurrentLayer
    public let decoderEmbedding: Embedding
    public let decoder: RecurrentLayer
    public let attention: Attention?
    /// Luong only: tanh(combine([context; h])) feeds the output layer.
    public let combine: Linear?
    public let out: Linear

    public init(config c: Seq2SeqConfig, rng: inout SeededRNG) {
        require(TranslationVocabulary.isValid(c.source) && TranslationVocabulary.isValid(c.target),
                "Seq2Seq: both vocabularies must start with <pad>, <unk>, <sos>, <eos> and hold a word (TranslationVocabulary.make)")
        config = c
        let H = c.hiddenSize, K = c.keySize
        encoderEmbedding = Embedding(count: c.source.count, dimension: c.embeddingSize, rng: &rng)
        encoder = RecurrentLayer(kind: c.cell, inputSize: c.embeddingSize, hiddenSize: H, numLayers: c.numLayers,
                                 bidirectional: c.bidirectional, rng: &rng)
        decoderEmbedding = Embedding(count: c.target.count, dimension: c.embeddingSize, rng: &rng)
        decoder = RecurrentLayer(kind: c.cell, inputSize: c.embeddingSize + (c.attention == .bahdanau ? K : 0), hiddenSize: H,
                                 numLayers: c.numLayers, rng: &rng)
        attention = c.attention == .none ? nil : Attention(kind: c.attention, keySize: K, querySize: H, rng: &rng)
        combine = c.attention == .luong ? Linear(inputSize: K + H, outputSize: H, rng: &rng) : nil
        out = Linear(inputSize: H, outputSize: c.target.count, rng: &rng)
    }

    public var namedParameters: [(String, Parameter)] {
        var named = encoderEmbedding.parameters.map { ("encoder_embedding." + $0.name, $0) }
            + encoder.parameters.map { ("encoder." + $0.name, $0) }
            + decoderEmbedding.parameters.map { ("decoder_embedding." + $0.name, $0) }
            + decoder.parameters.map { ("decoder." + $0.name, $0) }
        if let attention { named += attention.namedParameters.map { ("attention." + $0.0, $0.1) } }
        if let combine { named += combine.parameters.map { ("combine." + $0.name, $0) } }
        return named + out.parameters.map { ("out." + $0.name, $0) }
    }

    public var parameters: [Parameter] { namedParameters.map { $0.1 } }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    // MARK: Encoder

    /// What the decoder reads from the encoder, and what backward needs.
    struct Encoded {
        var source: PaddedBatch
        /// Encoder outputs (B,S,K) and, with attention, their keys.
        var memory: AttentionMemory
        /// The decoder's initial state (L,B,H), after the bridge.
        var state: RecurrentState
        var cache: RecurrentCache?
        var dropMask: [Float]?
    }

    /// Source sentences (word indices without `<eos>`) as a padded batch with `<eos>` appended.
    public static func sourceBatch(_ sources: [[Int32]]) -> PaddedBatch {
        PaddedBatch(sources.map { $0 + [TranslationVocabulary.eosIndex] })
    }

    func encode(_ source: PaddedBatch, mode: ForwardMode, rng: inout SeededRNG) -> Encoded {
        let B = source.batch, S = source.steps
        var x = encoderEmbedding.forward(source.indices, shape: [B, S])
        var mask: [Float]?
        if mode == .training && config.dropout > 0 { (x, mask) = Dropout.forward(x, p: config.dropout, rng: &rng) }
        let (y, finalState, cache) = encoder.forward(x, state: nil, mode: mode, rng: &rng, lengths: source.lengths)
        let memory = attention?.memory(values: y, lengths: source.lengths)
            ?? AttentionMemory(values: y, keys: Tensor(shape: [0]), lengths: source.lengths)
        return Encoded(source: source, memory: memory, state: Bridge.forward(finalState, bidirectional: config.bidirectional),
                       cache: cache, dropMask: mask)
    }

    // MARK: One decoder step

    /// What one decoder step keeps for backward.
    struct Step {
        var tokens: [Int32]
        var dropMask: [Float]?
        var rnnCache: RecurrentCache?
        var attention: AttentionStep?
        /// Luong: the combine layer's input [context; h] (B,K+H) and output tanh(·) (B,H).
        var combineInput: Tensor?
        /// What `out` reads (B,H).
        var feature: Tensor
    }

    /// Runs the decoder one step for `tokens` (B) from `state`; returns logits (B,V), the new state
    /// and the step's cache.
    func decoderStep(_ tokens: [Int32], state: RecurrentState, memory: AttentionMemory, mode: ForwardMode,
                     rng: inout SeededRNG) -> (logits: Tensor, state: RecurrentState, step: Step) {
        let B = tokens.count, H = config.hiddenSize, K = config.keySize
        var x = decoderEmbedding.forward(tokens, shape: [B])
        var mask: [Float]?
        if mode == .training && config.dropout > 0 { (x, mask) = Dropout.forward(x, p: config.dropout, rng: &rng) }
        var attentionStep: AttentionStep?
        if config.attention == .bahdanau, let attention {
            // The query is the top layer's state before this step.
            let (context, a) = attention.forward(query: Bridge.topLayer(state.hidden), memory: memory)
            attentionStep = a
            x = Bridge.concatenate(x, context)
        }
        let din = x.shape[1]
        let (y, next, cache) = decoder.forward(x.reshaped([B, 1, din]), state: state, mode: mode, rng: &rng)
        var feature = y.reshaped([B, H])
        var combineInput: Tensor?
        if config.attention == .luong, let attention, let combine {
            let (context, a) = attention.forward(query: feature, memory: memory)
            attentionStep = a
            let joined = Bridge.concatenate(context, feature)
            require(joined.shape == [B, K + H])
            feature = combine.forward(joined)
            feature.data.withUnsafeMutableBufferPointer { p in if let base = p.baseAddress { Vector.tanh(base, count: p.count) } }
            combineInput = joined
        }
        let logits = out.forward(feature)
        return (logits, next, Step(tokens: tokens, dropMask: mask, rnnCache: cache, attention: attentionStep,
                                   combineInput: combineInput, feature: feature))
    }

    // MARK: Training

    /// One forward and backward pass over a batch; accumulates gradients and returns the mean
    /// cross-entropy over the real target words and each sentence's final `<eos>`.
    ///
    /// At every step after the first, one draw of `rng` decides for the whole batch whether the
    /// decoder reads the reference word (teacher forcing, probability `teacherForcing`) or its own
    /// previous argmax (free running). The draw happens at every step whatever the ratio.
    public func trainStep(sources: [[Int32]], targets: [[Int32]], teacherForcing: Float, rng: inout SeededRNG) -> Float {
        let f = forward(sources: sources, targets: targets, teacherForcing: teacherForcing, mode: .training, rng: &rng)
        backward(f)
        return f.loss
    }

    /// The mean teacher-forced cross-entropy of a batch, without gradients.
    public func loss(sources: [[Int32]], targets: [[Int32]]) -> Float {
        var rng = SeededRNG(seed: 0)
        return forward(sources: sources, targets: targets, teacherForcing: 1, mode: .inference, rng: &rng).loss
    }

    struct Forward {
        var encoded: Encoded
        var steps: [Step]
        var loss: Float
        var dLogits: Tensor
        var features: Tensor
    }

    /// Decoder targets (T·B) time-major: word t, then `<eos>` at t = length, ignored (−100) after.
    static func targetRows(_ targets: [[Int32]], steps T: Int) -> [Int32] {
        let B = targets.count
        var rows = [Int32](repeating: -100, count: T * B)
        for (b, y) in targets.enumerated() {
            for (t, v) in y.enumerated() { rows[t * B + b] = v }
            rows[y.count * B + b] = TranslationVocabulary.eosIndex
        }
        return rows
    }

    func forward(sources: [[Int32]], targets: [[Int32]], teacherForcing: Float, mode: ForwardMode, rng: inout SeededRNG) -> Forward {
        require(sources.count == targets.count && !sources.isEmpty, "one target per source, at least one pair")
        let B = sources.count, T = (targets.map(\.count).max() ?? 0) + 1, V = config.target.count, H = config.hiddenSize
        let encoded = encode(Self.sourceBatch(sources), mode: mode, rng: &rng)
        var state = encoded.state
        var tokens = [Int32](repeating: TranslationVocabulary.sosIndex, count: B)
        var logits = Tensor(shape: [T * B, V])
        var features = Tensor(shape: [T * B, H])
        var steps: [Step] = []
        for t in 0..<T {
            if t > 0 {
                let teacher = rng.nextFloat() < teacherForcing
                for b in 0..<B {
                    if teacher {
                        tokens[b] = t - 1 < targets[b].count ? targets[b][t - 1] : TranslationVocabulary.padIndex
                    } else {
                        tokens[b] = Self.argmax(logits.data, row: (t - 1) * B + b, width: V)
                    }
                }
            }
            let (z, next, step) = decoderStep(tokens, state: state, memory: encoded.memory, mode: mode, rng: &rng)
            logits.data.replaceSubrange(t * B * V ..< (t + 1) * B * V, with: z.data)
            features.data.replaceSubrange(t * B * H ..< (t + 1) * B * H, with: step.feature.data)
            steps.append(step)
            state = next
        }
        let (loss, dLogits) = Loss.softmaxCrossEntropy(logits: logits, targets: Self.targetRows(targets, steps: T))
        return Forward(encoded: encoded, steps: steps, loss: loss, dLogits: dLogits, features: features)
    }

    static func argmax(_ z: [Float], row: Int, width V: Int) -> Int32 {
        var best = 0
        let base = row * V
        for v in 1..<V where z[base + v] > z[base + best] { best = v }
        return Int32(best)
    }

    /// Backward through the output layer (one product for all steps), the decoder steps in
    /// reverse (attention, combine, one-step recurrent backward carrying dState), the bridge, the
    /// key projection and the encoder.
    func backward(_ f: Forward) {
        guard let encoderCache = f.encoded.cache else { return }
        let T = f.steps.count, B = f.encoded.source.batch, S = f.encoded.source.steps
        let E = config.embeddingSize, H = config.hiddenSize, K = config.keySize
        let dFeatures = out.backward(f.dLogits, input: f.features)  // (T·B, H)
        var dValues = Tensor(shape: [B, S, K])
        var dKeys = Tensor(shape: f.encoded.memory.keys.shape)
        var dState: RecurrentState?
        var dEmbedded = Tensor(shape: [T, B, E])
        var allTokens: [Int32] = []
        allTokens.reserveCapacity(T * B)
        for step in f.steps { allTokens += step.tokens }
        for t in (0..<T).reversed() {
            let step = f.steps[t]
            guard let cache = step.rnnCache else { return }
            var dh = Tensor(shape: [B, H], data: Array(dFeatures.data[t * B * H ..< (t + 1) * B * H]))
            if let combine, let attention, let joined = step.combineInput, let a = step.attention {
                var dPre = dh
                for i in 0..<dPre.count { let y = step.feature.data[i]; dPre.data[i] *= 1 - y * y }
                let dJoined = combine.backward(dPre, input: joined)
                let (dContext, dY) = Bridge.split(dJoined, first: K)
                dh = dY
                let dq = attention.backward(dContext: dContext, step: a, memory: f.encoded.memory, dKeys: &dKeys, dValues: &dValues)
                for i in 0..<dh.count { dh.data[i] += dq.data[i] }
            }
            let (dx, dInitial) = decoder.backward(dOutput: dh.reshaped([B, 1, H]), dState: dState, cache: cache, consumingCache: true)
            var dStatePrevious = dInitial
            var dEmb = dx.reshaped([B, dx.count / B])
            if config.attention == .bahdanau, let attention, let a = step.attention {
                let (de, dContext) = Bridge.split(dEmb, first: E)
                dEmb = de
                let dq = attention.backward(dContext: dContext, step: a, memory: f.encoded.memory, dKeys: &dKeys, dValues: &dValues)
                Bridge.addTopLayer(dq, into: &dStatePrevious.hidden)
            }
            if let m = step.dropMask { dEmb = Dropout.backward(dEmb, mask: m) }
            dEmbedded.data.replaceSubrange(t * B * E ..< (t + 1) * B * E, with: dEmb.data)
            dState = dStatePrevious
        }
        decoderEmbedding.backward(dEmbedded, indices: allTokens)
        if let attention { attention.memoryBackward(dKeys: dKeys, memory: f.encoded.memory, dValues: &dValues) }
        let dEncoderState = dState.map { Bridge.backward($0, bidirectional: config.bidirectional) }
        var dx = encoder.backward(dOutput: dValues, dState: dEncoderState, cache: encoderCache, consumingCache: true).dInput
        if let m = f.encoded.dropMask { dx = Dropout.backward(dx, mask: m) }
        encoderEmbedding.backward(dx, indices: f.encoded.source.indices)
    }
}
