import CKernels

/// The architecture of a conditional character generator.
public struct GeneratorConfig: Sendable, Equatable {
    public var cell: CellKind
    /// `<pad>`, `<unk>`, `<sos>`, `<eos>`, then the characters.
    public var vocabulary: TokenVocabulary
    /// Condition names (for example languages) in index order.
    public var conditions: [String]
    public var embeddingSize: Int
    public var conditionSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    /// Dropout between recurrent layers (training only).
    public var dropout: Float

    public static let sos = "<sos>"
    public static let eos = "<eos>"
    public static let sosIndex: Int32 = 2
    public static let eosIndex: Int32 = 3

    public init(cell: CellKind, vocabulary: TokenVocabulary, conditions: [String], embeddingSize: Int, conditionSize: Int,
                hiddenSize: Int, numLayers: Int, dropout: Float = 0) {
        self.cell = cell
        self.vocabulary = vocabulary
        self.conditions = conditions
        self.embeddingSize = embeddingSize
        self.conditionSize = conditionSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.dropout = dropout
    }

    /// A character vocabulary for `texts`: `<pad>`, `<unk>`, `<sos>`, `<eos>`, then every Unicode
    /// scalar by falling frequency.
    public static func vocabulary(for texts: [String]) -> TokenVocabulary {
        let counted = TokenVocabulary(counting: texts.map { $0.unicodeScalars.map { String($0) } })
        let chars = counted.tokens.dropFirst(2).filter { ExactString($0) != ExactString(sos) && ExactString($0) != ExactString(eos) }
        // The reserved entries are fixed, so the initialiser cannot fail.
        return (try? TokenVocabulary(tokens: [TokenVocabulary.pad, TokenVocabulary.unk, sos, eos] + chars, source: "generator")) ?? counted
    }
}

/// A one-to-many model: a condition (a class such as a language) in, a character sequence out.
/// The condition's embedding is concatenated to every character embedding, so the condition is
/// seen at every step (as the PyTorch names-generation tutorial feeds its one-hot category at every
/// step). The layout is this PyTorch module, whose `state_dict` names the checkpoint's tensors:
///
///     class Generator(nn.Module):
///         def __init__(self, V, C, E, Ec, H, L, p):
///             super().__init__()
///             self.embedding = nn.Embedding(V, E, padding_idx=0)
///             self.condition = nn.Embedding(C, Ec)
///             self.rnn = nn.LSTM(E + Ec, H, L, batch_first=True, dropout=p if L > 1 else 0)  # or nn.GRU/nn.RNN
///             self.head = nn.Linear(H, V)
///         def forward(self, x, c, lengths, state=None):       # x (B,T) starts with <sos>; c (B,)
///             e = torch.cat((self.embedding(x), self.condition(c)[:, None, :].expand(-1, x.size(1), -1)), 2)
///             packed = pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
///             out, state = self.rnn(packed, state)
///             y, _ = pad_packed_sequence(out, batch_first=True)
///             return self.head(y), state                      # logits (B,T,V)
///         # loss = F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-100)
///         # with x = [<sos>, c1..cn] and targets = [c1..cn, <eos>]
///
/// Shapes (B batch, T longest length + 1, V vocabulary, C conditions, E, Ec embeddings, H hidden):
/// indices (B,T), conditions B → x (B,T,E+Ec) → y (B,T,H) → logits (B·T,V).
/// Generation starts from `<sos>` (and an optional prime), samples a character at every step and
/// stops at `<eos>` or after a maximum length.
public final class ConditionalGenerator: ParameterizedModule, @unchecked Sendable {
    public let config: GeneratorConfig
    public let embedding: Embedding
    public let condition: Embedding
    public let rnn: RecurrentLayer
    public let head: Linear

    public init(config: GeneratorConfig, rng: inout SeededRNG) {
        self.config = config
        embedding = Embedding(count: config.vocabulary.count, dimension: config.embeddingSize, rng: &rng)
        for e in 0..<config.embeddingSize { embedding.weight.value.data[e] = 0 }
        condition = Embedding(count: config.conditions.count, dimension: config.conditionSize, rng: &rng)
        rnn = RecurrentLayer(kind: config.cell, inputSize: config.embeddingSize + config.conditionSize, hiddenSize: config.hiddenSize,
                             numLayers: config.numLayers, dropout: config.numLayers > 1 ? config.dropout : 0, rng: &rng)
        head = Linear(inputSize: config.hiddenSize, outputSize: config.vocabulary.count, rng: &rng)
    }

    public var namedParameters: [(String, Parameter)] {
        embedding.parameters.map { ("embedding." + $0.name, $0) }
            + condition.parameters.map { ("condition." + $0.name, $0) }
            + rnn.parameters.map { ("rnn." + $0.name, $0) }
            + head.parameters.map { ("head." + $0.name, $0) }
    }

    public var parameters: [Parameter] { namedParameters.map { $0.1 } }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// The character indices of `text` (unknown characters → `<unk>`).
    public func encode(_ text: String) -> [Int32] {
        text.unicodeScalars.map { config.vocabulary.encode(String($0)) }
    }

    /// Inputs `[<sos>, c1..cn]` and targets `[c1..cn, <eos>]` (−100 on padding) for a batch of texts.
    public func teacherForcing(_ texts: [[Int32]]) -> (inputs: PaddedBatch, targets: [Int32]) {
        let inputs = PaddedBatch(texts.map { [GeneratorConfig.sosIndex] + $0 })
        var targets = [Int32](repeating: -100, count: inputs.batch * inputs.steps)
        for (b, s) in texts.enumerated() {
            for (t, v) in (s + [GeneratorConfig.eosIndex]).enumerated() { targets[b * inputs.steps + t] = v }
        }
        return (inputs, targets)
    }

    /// Mean cross-entropy per predicted character (`<eos>` included) without gradients.
    public func loss(_ texts: [[Int32]], conditions: [Int32]) -> (loss: Float, count: Int) {
        let (inputs, targets) = teacherForcing(texts)
        var rng = SeededRNG(seed: 0)
        let f = forward(inputs, conditions: conditions, state: nil, mode: .inference, rng: &rng)
        return (Loss.softmaxCrossEntropy(logits: f.logits, targets: targets).loss, targets.filter { $0 >= 0 }.count)
    }

    /// One forward and backward pass with teacher forcing; accumulates gradients and returns the
    /// mean cross-entropy per predicted character.
    public func trainStep(_ texts: [[Int32]], conditions: [Int32], rng: inout SeededRNG) -> Float {
        let (inputs, targets) = teacherForcing(texts)
        let f = forward(inputs, conditions: conditions, state: nil, mode: .training, rng: &rng)
        let (loss, dz) = Loss.softmaxCrossEntropy(logits: f.logits, targets: targets)
        backward(dz, inputs: inputs, conditions: conditions, forward: f)
        return loss
    }

    struct ForwardCache {
        var logits: Tensor
        var state: RecurrentState
        var rnnCache: RecurrentCache?
        var outputs: Tensor
    }

    func forward(_ inputs: PaddedBatch, conditions: [Int32], state: RecurrentState?, mode: ForwardMode, rng: inout SeededRNG) -> ForwardCache {
        let B = inputs.batch, T = inputs.steps, E = config.embeddingSize, Ec = config.conditionSize, D = E + Ec
        require(conditions.count == B, "\(conditions.count) conditions for a batch of \(B)")
        let e = embedding.forward(inputs.indices, shape: [B, T])
        let c = condition.forward(conditions, shape: [B])
        var x = Tensor(shape: [B, T, D])
        for b in 0..<B {
            for t in 0..<T {
                let row = (b * T + t) * D
                for j in 0..<E { x.data[row + j] = e.data[(b * T + t) * E + j] }
                for j in 0..<Ec { x.data[row + E + j] = c.data[b * Ec + j] }
            }
        }
        let (y, s, cache) = rnn.forward(x, state: state, mode: mode, rng: &rng, lengths: inputs.lengths)
        let flat = y.reshaped([B * T, config.hiddenSize])
        return ForwardCache(logits: head.forward(flat), state: s, rnnCache: cache, outputs: flat)
    }

    func backward(_ dLogits: Tensor, inputs: PaddedBatch, conditions: [Int32], forward f: ForwardCache) {
        guard let cache = f.rnnCache else { return }
        let B = inputs.batch, T = inputs.steps, E = config.embeddingSize, Ec = config.conditionSize, D = E + Ec
        let dy = head.backward(dLogits, input: f.outputs).reshaped([B, T, config.hiddenSize])
        let dx = rnn.backward(dOutput: dy, dState: nil, cache: cache).dInput
        var de = Tensor(shape: [B, T, E])
        var dc = Tensor(shape: [B, Ec])
        for b in 0..<B {
            for t in 0..<T {
                let row = (b * T + t) * D
                for j in 0..<E { de.data[(b * T + t) * E + j] = dx.data[row + j] }
                for j in 0..<Ec { dc.data[b * Ec + j] += dx.data[row + E + j] }
            }
        }
        embedding.backward(de, indices: inputs.indices)
        condition.backward(dc, indices: conditions)
        for j in 0..<E { embedding.weight.grad.data[j] = 0 }
    }

    /// Samples `count` sequences for condition index `conditionIndex`, all at once (batch = count).
    /// Each starts with `prime` (character indices, echoed in the result) and ends at `<eos>` or
    /// after `maxLength` characters in all. Deterministic for a given seed. Throws as
    /// `CharLMStepper.sample` does (NaN or all −inf logits, a temperature not above 0).
    public func generate(conditionIndex: Int, prime: [Int32], count: Int, maxLength: Int, settings: SamplingSettings,
                         seed: UInt64) throws -> [[Int32]] {
        require(conditionIndex >= 0 && conditionIndex < config.conditions.count, "condition \(conditionIndex) out of range")
        guard count > 0 else { return [] }
        guard settings.greedy || settings.temperature > 0 else {
            throw RecurrentError("sampling temperature must be above 0, got \(settings.temperature)")
        }
        var rng = SeededRNG(seed: seed)
        let V = config.vocabulary.count
        let conditions = [Int32](repeating: Int32(conditionIndex), count: count)
        var out = [[Int32]](repeating: prime, count: count)
        var done = [Bool](repeating: prime.count >= maxLength, count: count)
        // Feed <sos> + prime in one pass, once (every sequence shares them: the rows of a batch are
        // independent, so each row of a batch of `count` would give the same bits); its final state
        // is repeated for every sequence. Then one step per character for the whole batch.
        var f = forward(PaddedBatch([[GeneratorConfig.sosIndex] + prime]), conditions: [Int32(conditionIndex)],
                        state: nil, mode: .inference, rng: &rng)
        f.state = f.state.repeatingBatch(count)
        var shared = true  // f.logits holds one sequence's rows, the same for all
        var lastRow = prime.count  // the step whose logits predict the next character
        var scratch = [Float](repeating: 0, count: 2 * V)
        var row = [Float](repeating: 0, count: V)
        while done.contains(false) {
            var next = [Int32](repeating: TokenVocabulary.padIndex, count: count)
            let T = f.logits.count / ((shared ? 1 : count) * V)
            for b in 0..<count where !done[b] {
                let u = rng.nextFloat()
                // <pad>, <unk> and <sos> are never drawn (their logits set to −∞, as `Seq2Seq`'s
                // decoding does); the sequence ends at <eos>.
                let base = ((shared ? 0 : b) * T + lastRow) * V
                for v in 0..<V { row[v] = v < Int(GeneratorConfig.eosIndex) ? -.infinity : f.logits.data[base + v] }
                let token = row.withUnsafeBufferPointer { zb in
                    scratch.withUnsafeMutableBufferPointer { sb -> Int32 in
                        guard let z = zb.baseAddress, let s = sb.baseAddress else { return GeneratorConfig.eosIndex }
                        return Int32(rc_sample_logits(z, Int32(V), settings.temperature,
                                                      Int32(clamping: settings.topK), settings.greedy ? 1 : 0, u, s))
                    }
                }
                guard token >= 0 else { throw RecurrentError.nonFiniteLogits }
                if token == GeneratorConfig.eosIndex { done[b] = true; continue }
                out[b].append(token)
                next[b] = token
                if out[b].count >= maxLength { done[b] = true }
            }
            if !done.contains(false) { break }
            f = forward(PaddedBatch(next.map { [$0] }), conditions: conditions, state: f.state, mode: .inference, rng: &rng)
            lastRow = 0
            shared = false
        }
        return out
    }

    /// The text of character indices (reserved entries are dropped).
    public func decode(_ indices: [Int32]) -> String {
        indices.filter { $0 > GeneratorConfig.eosIndex && Int($0) < config.vocabulary.count }
            .map { config.vocabulary.tokens[Int($0)] }.joined()
    }
}
