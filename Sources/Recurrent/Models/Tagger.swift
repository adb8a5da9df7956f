/// The architecture of a sequence tagger.
public struct TaggerConfig: Sendable, Equatable {
    public var cell: CellKind
    /// Word vocabulary (lower-cased when `lowercase`) and character vocabulary (original case).
    public var words: TokenVocabulary
    public var chars: TokenVocabulary
    public var lowercase: Bool
    /// Tag names in index order.
    public var tags: [String]
    public var wordEmbeddingSize: Int
    public var charEmbeddingSize: Int
    /// Hidden size of each direction of the character BiLSTM/BiGRU.
    public var charHiddenSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    /// Dropout on the word representations and on the sentence outputs (training only).
    public var dropout: Float

    public init(cell: CellKind, words: TokenVocabulary, chars: TokenVocabulary, lowercase: Bool, tags: [String],
                wordEmbeddingSize: Int, charEmbeddingSize: Int, charHiddenSize: Int, hiddenSize: Int, numLayers: Int, dropout: Float = 0) {
        self.cell = cell
        self.words = words
        self.chars = chars
        self.lowercase = lowercase
        self.tags = tags
        self.wordEmbeddingSize = wordEmbeddingSize
        self.charEmbeddingSize = charEmbeddingSize
        self.charHiddenSize = charHiddenSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.dropout = dropout
    }

    /// Characters of a word the character encoder reads (longer words keep their first ones).
    public static let maxWordCharacters = 32
}

/// A many-to-many tagger (one tag per word) with the layout of this PyTorch module:
///
///     class Tagger(nn.Module):
///         def __init__(self, Vw, Ew, Vc, Ec, Hc, H, L, C, p):
///             super().__init__()
///             self.embedding = nn.Embedding(Vw, Ew, padding_idx=0)
///             self.char_embedding = nn.Embedding(Vc, Ec, padding_idx=0)
///             self.char_rnn = nn.LSTM(Ec, Hc, 1, batch_first=True, bidirectional=True)   # or nn.GRU
///             self.rnn = nn.LSTM(Ew + 2 * Hc, H, L, batch_first=True, bidirectional=True,
///                                dropout=p if L > 1 else 0)
///             self.head = nn.Linear(2 * H, C)
///             self.drop = nn.Dropout(p)
///         def forward(self, words, lengths, chars, char_lengths):
///             # words (B,T); chars (N,Tc): the N distinct spellings in the batch; spelling[k]: the
///             # row of chars for the k-th real word (batch-major); the result is the same as
///             # encoding every occurrence, each spelling is just encoded once
///             ce = self.char_embedding(chars)
///             _, h = self.char_rnn(pack_padded_sequence(ce, char_lengths, batch_first=True, enforce_sorted=False))
///             h_n = h[0] if isinstance(h, tuple) else h
///             cw = torch.cat((h_n[-2], h_n[-1]), 1)                          # (N, 2·Hc)
///             x = torch.zeros(B, T, Ew + 2 * Hc)
///             x[mask] = torch.cat((self.embedding(words)[mask], cw[spelling]), 1)   # mask: t < lengths[b]
///             out, _ = self.rnn(pack_padded_sequence(self.drop(x), lengths, batch_first=True, enforce_sorted=False))
///             y, _ = pad_packed_sequence(out, batch_first=True)
///             return self.head(self.drop(y))                                  # (B,T,C)
///         # loss = F.cross_entropy(logits.view(-1, C), tags.view(-1), ignore_index=-100)
///
/// Shapes (B sentences, T longest sentence, N distinct words, Tc longest word, C tags):
/// words (B,T) → x (B,T,Ew+2Hc) → y (B,T,2H) → logits (B·T,C); loss = mean CE over the real words.
/// The character encoder gives every word, seen or not, a representation from its spelling.
public final class Tagger: ParameterizedModule, @unchecked Sendable {
    public let config: TaggerConfig
    public let embedding: Embedding
    public let charEmbedding: Embedding
    public let charRNN: RecurrentLayer
    public let rnn: RecurrentLayer
    public let head: Linear

    public init(config: TaggerConfig, rng: inout SeededRNG) {
        self.config = config
        embedding = Embedding(count: config.words.count, dimension: config.wordEmbeddingSize, rng: &rng)
        charEmbedding = Embedding(count: config.chars.count, dimension: config.charEmbeddingSize, rng: &rng)
        for e in 0..<config.wordEmbeddingSize { embedding.weight.value.data[e] = 0 }
        for e in 0..<config.charEmbeddingSize { charEmbedding.weight.value.data[e] = 0 }
        charRNN = RecurrentLayer(kind: config.cell, inputSize: config.charEmbeddingSize, hiddenSize: config.charHiddenSize,
                                 numLayers: 1, bidirectional: true, rng: &rng)
        rnn = RecurrentLayer(kind: config.cell, inputSize: config.wordEmbeddingSize + 2 * config.charHiddenSize,
                             hiddenSize: config.hiddenSize, numLayers: config.numLayers,
                             dropout: config.numLayers > 1 ? config.dropout : 0, bidirectional: true, rng: &rng)
        head = Linear(inputSize: 2 * config.hiddenSize, outputSize: config.tags.count, rng: &rng)
    }

    public var namedParameters: [(String, Parameter)] {
        embedding.parameters.map { ("embedding." + $0.name, $0) }
            + charEmbedding.parameters.map { ("char_embedding." + $0.name, $0) }
            + charRNN.parameters.map { ("char_rnn." + $0.name, $0) }
            + rnn.parameters.map { ("rnn." + $0.name, $0) }
            + head.parameters.map { ("head." + $0.name, $0) }
    }

    public var parameters: [Parameter] { namedParameters.map { $0.1 } }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// A batch of sentences, encoded for the model.
    public struct Batch: Sendable {
        public var words: PaddedBatch
        /// The distinct spellings among the batch's words, as character indices (each is encoded once).
        public var chars: PaddedBatch
        /// For every real word, batch-major, its row in `chars`.
        public var spelling: [Int]
    }

    /// Encodes sentences (lists of words) into a batch.
    public func makeBatch(_ sentences: [[String]]) -> Batch {
        var wordSeqs: [[Int32]] = [], charSeqs: [[Int32]] = []
        var rows: [ExactString: Int] = [:]   // "café" and "cafe" + U+0301 are spelt differently
        var spelling: [Int] = []
        for s in sentences {
            wordSeqs.append(s.map { config.words.encode(config.lowercase ? $0.pythonLowercased() : $0) })
            for w in s {
                if let r = rows[ExactString(w)] { spelling.append(r); continue }
                rows[ExactString(w)] = charSeqs.count
                spelling.append(charSeqs.count)
                charSeqs.append(w.unicodeScalars.prefix(TaggerConfig.maxWordCharacters).map { config.chars.encode(String($0)) })
            }
        }
        return Batch(words: PaddedBatch(wordSeqs), chars: PaddedBatch(charSeqs), spelling: spelling)
    }

    /// Logits (B·T, C) without gradients.
    public func logits(_ batch: Batch) -> Tensor {
        var rng = SeededRNG(seed: 0)
        return forward(batch, mode: .inference, wordDropout: 0, rng: &rng).logits
    }

    /// The most likely tag index of every real word, per sentence.
    public func predict(_ batch: Batch) -> [[Int]] {
        if batch.chars.batch == 0 { return batch.words.lengths.map { _ in [] } }
        let z = logits(batch)
        let C = config.tags.count, T = batch.words.steps
        return (0..<batch.words.batch).map { b in
            (0..<batch.words.lengths[b]).map { t in
                let row = (b * T + t) * C
                var best = 0
                for c in 1..<C where z.data[row + c] > z.data[row + best] { best = c }
                return best
            }
        }
    }

    /// Targets (B·T) for `tags` (tag indices per sentence), −100 (ignored) on padding.
    public static func targets(_ tags: [[Int32]], steps T: Int) -> [Int32] {
        var out = [Int32](repeating: -100, count: tags.count * T)
        for (b, s) in tags.enumerated() { for (t, v) in s.enumerated() { out[b * T + t] = v } }
        return out
    }

    /// One forward and backward pass; accumulates gradients and returns the mean CE over real words.
    /// `wordDropout` replaces each word index by `<unk>` with that probability (so the model learns
    /// to tag from the characters when the word is unknown).
    public func trainStep(_ batch: Batch, targets: [Int32], wordDropout: Float = 0, rng: inout SeededRNG) -> Float {
        if batch.chars.batch == 0 { return 0 }
        let f = forward(batch, mode: .training, wordDropout: wordDropout, rng: &rng)
        let (loss, dz) = Loss.softmaxCrossEntropy(logits: f.logits, targets: targets)
        backward(dz, batch: batch, forward: f)
        return loss
    }

    struct ForwardCache {
        var logits: Tensor
        var wordIndices: [Int32]
        var charCache: RecurrentCache?
        var inputMask: [Float]?
        var rnnCache: RecurrentCache?
        var outputs: Tensor
        var outputMask: [Float]?
    }

    func forward(_ batch: Batch, mode: ForwardMode, wordDropout: Float, rng: inout SeededRNG) -> ForwardCache {
        let B = batch.words.batch, T = batch.words.steps, N = batch.chars.batch, Tc = batch.chars.steps
        let Ew = config.wordEmbeddingSize, Hc = config.charHiddenSize, D = Ew + 2 * Hc, H = config.hiddenSize
        let p = config.dropout, train = mode == .training
        let wordIndices = train ? WordDropout.apply(batch.words.indices, p: wordDropout, rng: &rng) : batch.words.indices
        let we = embedding.forward(wordIndices, shape: [B, T])
        let ce = charEmbedding.forward(batch.chars.indices, shape: [N, Tc])
        let (_, cs, charCache) = charRNN.forward(ce, state: nil, mode: mode, rng: &rng, lengths: batch.chars.lengths)
        let cw = SequencePooling.lastState(cs.hidden, numLayers: 1, directions: 2)  // (N, 2Hc)
        var x = Tensor(shape: [B, T, D])
        var n = 0
        for b in 0..<B {
            for t in 0..<batch.words.lengths[b] {
                let row = (b * T + t) * D
                for e in 0..<Ew { x.data[row + e] = we.data[(b * T + t) * Ew + e] }
                let r = batch.spelling[n]
                for e in 0..<(2 * Hc) { x.data[row + Ew + e] = cw.data[r * 2 * Hc + e] }
                n += 1
            }
        }
        var inputMask: [Float]?
        if train && p > 0 { (x, inputMask) = Dropout.forward(x, p: p, rng: &rng) }
        var (y, _, cache) = rnn.forward(x, state: nil, mode: mode, rng: &rng, lengths: batch.words.lengths)
        var outputMask: [Float]?
        if train && p > 0 { (y, outputMask) = Dropout.forward(y, p: p, rng: &rng) }
        let flat = y.reshaped([B * T, 2 * H])
        return ForwardCache(logits: head.forward(flat), wordIndices: wordIndices, charCache: charCache, inputMask: inputMask,
                            rnnCache: cache, outputs: flat, outputMask: outputMask)
    }

    func backward(_ dLogits: Tensor, batch: Batch, forward f: ForwardCache) {
        guard let cache = f.rnnCache, let charCache = f.charCache else { return }
        let B = batch.words.batch, T = batch.words.steps, N = batch.chars.batch
        let Ew = config.wordEmbeddingSize, Hc = config.charHiddenSize, D = Ew + 2 * Hc, H = config.hiddenSize
        var dy = head.backward(dLogits, input: f.outputs).reshaped([B, T, 2 * H])
        if let m = f.outputMask { dy = Dropout.backward(dy, mask: m) }
        var dx = rnn.backward(dOutput: dy, dState: nil, cache: cache).dInput
        if let m = f.inputMask { dx = Dropout.backward(dx, mask: m) }
        var dWe = Tensor(shape: [B, T, Ew])
        var dCw = Tensor(shape: [N, 2 * Hc])
        var n = 0
        for b in 0..<B {
            for t in 0..<batch.words.lengths[b] {
                let row = (b * T + t) * D
                for e in 0..<Ew { dWe.data[(b * T + t) * Ew + e] = dx.data[row + e] }
                let r = batch.spelling[n]
                for e in 0..<(2 * Hc) { dCw.data[r * 2 * Hc + e] += dx.data[row + Ew + e] }
                n += 1
            }
        }
        embedding.backward(dWe, indices: f.wordIndices)
        let dh = SequencePooling.lastStateBackward(dCw, numLayers: 1, directions: 2, hidden: Hc)
        let dce = charRNN.backward(dOutput: nil, dState: RecurrentState(hidden: dh, cell: nil), cache: charCache).dInput
        charEmbedding.backward(dce, indices: batch.chars.indices)
        for e in 0..<Ew { embedding.weight.grad.data[e] = 0 }
        for e in 0..<config.charEmbeddingSize { charEmbedding.weight.grad.data[e] = 0 }
    }
}
