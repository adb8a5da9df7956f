/// The architecture of a sentence classifier.
public struct ClassifierConfig: Sendable, Equatable {
    public var cell: CellKind
    /// Word or character tokens.
    public var level: Tokenization
    public var lowercase: Bool
    public var vocabulary: TokenVocabulary
    /// Class names in index order.
    public var labels: [String]
    public var embeddingSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var bidirectional: Bool
    public var pooling: Pooling
    /// Dropout between recurrent layers (PyTorch's `dropout=` of `nn.LSTM`; training only).
    public var dropout: Float
    /// Dropout on the embedded tokens (training only).
    public var embeddingDropout: Float
    /// Dropout on the pooled sentence vector before the output layer (training only).
    public var outputDropout: Float

    /// `embeddingDropout` and `outputDropout` default to `dropout`.
    public init(cell: CellKind, level: Tokenization, lowercase: Bool, vocabulary: TokenVocabulary, labels: [String],
                embeddingSize: Int, hiddenSize: Int, numLayers: Int, bidirectional: Bool, pooling: Pooling, dropout: Float = 0,
                embeddingDropout: Float? = nil, outputDropout: Float? = nil) {
        self.cell = cell
        self.level = level
        self.lowercase = lowercase
        self.vocabulary = vocabulary
        self.labels = labels
        self.embeddingSize = embeddingSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.dropout = dropout
        self.embeddingDropout = embeddingDropout ?? dropout
        self.outputDropout = outputDropout ?? dropout
    }
}

extension ClassifierConfig {
    /// Token indices of a sentence under this configuration's tokenisation (unknown tokens → `<unk>`).
    public func encode(_ text: String) -> [Int32] {
        vocabulary.encode(level.tokens(text, lowercase: lowercase))
    }
}

/// A many-to-one sentence classifier with the layout of this PyTorch module (its `state_dict`
/// names are the checkpoint's tensor names):
///
///     class Classifier(nn.Module):
///         def __init__(self, V, E, H, L, C, bidirectional, pooling, p, p_emb, p_out, p_word):
///             super().__init__()
///             self.embedding = nn.Embedding(V, E, padding_idx=0)
///             self.rnn = nn.LSTM(E, H, L, batch_first=True, bidirectional=bidirectional,
///                                dropout=p if L > 1 else 0)                          # or nn.GRU
///             self.head = nn.Linear(2 * H if bidirectional else H, C)
///             self.drop_emb, self.drop_out = nn.Dropout(p_emb), nn.Dropout(p_out)
///             self.p_word, self.pooling = p_word, pooling
///         def forward(self, x, lengths):                                               # x (B,T)
///             if self.training and self.p_word > 0:   # word dropout: token → <unk> (index 1)
///                 x = x.masked_fill((torch.rand(x.shape) < self.p_word) & (x != 0), 1)
///             e = self.drop_emb(self.embedding(x))
///             packed = pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
///             out, h = self.rnn(packed)
///             h_n = h[0] if isinstance(h, tuple) else h
///             y, _ = pad_packed_sequence(out, batch_first=True)                        # (B,T,R·H)
///             if self.pooling == "last":
///                 v = torch.cat((h_n[-2], h_n[-1]), 1) if self.rnn.bidirectional else h_n[-1]
///             elif self.pooling == "mean":
///                 v = y.sum(1) / lengths[:, None]
///             else:  # max over real steps
///                 v = y.masked_fill(mask[..., None] == 0, -inf).max(1).values
///             return self.head(self.drop_out(v))                                       # logits (B,C)
///
/// Shapes (B batch, T longest length, V vocabulary, E embedding, H hidden, R directions, C classes):
/// indices (B,T) → embeddings (B,T,E) → outputs (B,T,R·H) → pooled (B,R·H) → logits (B,C).
/// Loss: mean cross-entropy over the batch. Memory: the recurrent cache (≈ 6·T·B·H floats per LSTM
/// layer and direction) plus the embeddings and dropout masks.
public final class TextClassifier: ParameterizedModule, @unchecked Sendable {
    public let config: ClassifierConfig
    public let embedding: Embedding
    public let rnn: RecurrentLayer
    public let head: Linear

    /// `embeddingScale` scales the N(0,1) initial embeddings (PyTorch's default is 1; Keras draws
    /// U(−0.05, 0.05)); small values let rare words start near zero.
    public init(config: ClassifierConfig, embeddingScale: Float = 1, rng: inout SeededRNG) {
        self.config = config
        embedding = Embedding(count: config.vocabulary.count, dimension: config.embeddingSize, rng: &rng)
        if embeddingScale != 1 { for i in 0..<embedding.weight.value.count { embedding.weight.value.data[i] *= embeddingScale } }
        // padding_idx=0: PyTorch zeroes the padding row; it never receives a gradient here either.
        for e in 0..<config.embeddingSize { embedding.weight.value.data[e] = 0 }
        rnn = RecurrentLayer(kind: config.cell, inputSize: config.embeddingSize, hiddenSize: config.hiddenSize,
                             numLayers: config.numLayers, dropout: config.numLayers > 1 ? config.dropout : 0,
                             bidirectional: config.bidirectional, rng: &rng)
        head = Linear(inputSize: rnn.outputSize, outputSize: config.labels.count, rng: &rng)
    }

    public var namedParameters: [(String, Parameter)] {
        embedding.parameters.map { ("embedding." + $0.name, $0) }
            + rnn.parameters.map { ("rnn." + $0.name, $0) }
            + head.parameters.map { ("head." + $0.name, $0) }
    }

    public var parameters: [Parameter] { namedParameters.map { $0.1 } }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Token indices of a sentence (unknown tokens → `<unk>`).
    public func encode(_ text: String) -> [Int32] { config.encode(text) }

    /// Logits (B,C) without gradients (no dropout).
    public func logits(_ batch: PaddedBatch) -> Tensor {
        var rng = SeededRNG(seed: 0)
        return forward(batch, mode: .inference, wordDropout: 0, rng: &rng).logits
    }

    /// Softmax probabilities (B,C).
    public func probabilities(_ batch: PaddedBatch) -> Tensor {
        var p = logits(batch)
        let C = config.labels.count
        for b in 0..<batch.batch {
            var m = -Float.infinity
            for c in 0..<C { m = Swift.max(m, p.data[b * C + c]) }
            var s: Float = 0
            for c in 0..<C { p.data[b * C + c] = expf(p.data[b * C + c] - m); s += p.data[b * C + c] }
            for c in 0..<C { p.data[b * C + c] /= s }
        }
        return p
    }

    /// One forward and backward pass on a batch with `targets` (B class indices); accumulates into
    /// every parameter's `.grad` and returns the mean cross-entropy.
    /// `wordDropout` replaces each token by `<unk>` with that probability (see `WordDropout`).
    public func trainStep(_ batch: PaddedBatch, targets: [Int32], wordDropout: Float = 0, rng: inout SeededRNG) -> Float {
        let f = forward(batch, mode: .training, wordDropout: wordDropout, rng: &rng)
        let (loss, dz) = Loss.softmaxCrossEntropy(logits: f.logits, targets: targets)
        backward(dz, forward: f)
        return loss
    }

    struct ForwardCache {
        var logits: Tensor
        /// The batch as fed to the embedding (after word dropout).
        var batch: PaddedBatch
        var embeddingMask: [Float]?
        var rnnCache: RecurrentCache?
        var argmax: [Int32]
        var pooledInput: Tensor
        var pooledMask: [Float]?
    }

    func forward(_ input: PaddedBatch, mode: ForwardMode, wordDropout: Float, rng: inout SeededRNG) -> ForwardCache {
        let B = input.batch, T = input.steps
        let train = mode == .training
        var batch = input
        if train && wordDropout > 0 { batch.indices = WordDropout.apply(input.indices, p: wordDropout, rng: &rng) }
        var x = embedding.forward(batch.indices, shape: [B, T])
        var embeddingMask: [Float]?
        if train && config.embeddingDropout > 0 { (x, embeddingMask) = Dropout.forward(x, p: config.embeddingDropout, rng: &rng) }
        let (y, state, cache) = rnn.forward(x, state: nil, mode: mode, rng: &rng, lengths: batch.lengths)
        var pooled: Tensor
        var argmax: [Int32] = []
        if config.pooling == .last {
            pooled = SequencePooling.lastState(state.hidden, numLayers: config.numLayers, directions: rnn.directionCount)
        } else {
            (pooled, argmax) = SequencePooling.forward(y, lengths: batch.lengths, mode: config.pooling)
        }
        var pooledMask: [Float]?
        if train && config.outputDropout > 0 { (pooled, pooledMask) = Dropout.forward(pooled, p: config.outputDropout, rng: &rng) }
        let z = head.forward(pooled)
        return ForwardCache(logits: z, batch: batch, embeddingMask: embeddingMask, rnnCache: cache, argmax: argmax, pooledInput: pooled, pooledMask: pooledMask)
    }

    func backward(_ dLogits: Tensor, forward f: ForwardCache) {
        guard let cache = f.rnnCache else { return }
        let batch = f.batch
        var dPooled = head.backward(dLogits, input: f.pooledInput)
        if let m = f.pooledMask { dPooled = Dropout.backward(dPooled, mask: m) }
        var dx: Tensor
        if config.pooling == .last {
            let dh = SequencePooling.lastStateBackward(dPooled, numLayers: config.numLayers, directions: rnn.directionCount, hidden: config.hiddenSize)
            dx = rnn.backward(dOutput: nil, dState: RecurrentState(hidden: dh, cell: nil), cache: cache).dInput
        } else {
            let dy = SequencePooling.backward(dPooled, lengths: batch.lengths, steps: batch.steps, mode: config.pooling, argmax: f.argmax)
            dx = rnn.backward(dOutput: dy, dState: nil, cache: cache).dInput
        }
        if let m = f.embeddingMask { dx = Dropout.backward(dx, mask: m) }
        embedding.backward(dx, indices: batch.indices)
        // padding_idx: the padding row stays fixed.
        for e in 0..<config.embeddingSize { embedding.weight.grad.data[e] = 0 }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
