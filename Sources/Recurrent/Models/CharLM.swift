import Foundation
/// The architecture of a character-level language model.
public struct CharLMConfig: Sendable, Equatable {
    public var cell: CellKind
    public var vocabulary: CharVocabulary
    public var embeddingSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var dropout: Float

    public init(cell: CellKind, vocabulary: CharVocabulary, embeddingSize: Int, hiddenSize: Int, numLayers: Int, dropout: Float = 0) {
        self.cell = cell
        self.vocabulary = vocabulary
        self.embeddingSize = embeddingSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.dropout = dropout
    }
}

/// A character-level language model with the layout of this PyTorch module, whose `state_dict`
/// names are the checkpoint's tensor names:
///
///     class CharLM(nn.Module):
///         def __init__(self, V, E, H, L, cell):
///             super().__init__()
///             self.embedding = nn.Embedding(V, E)
///             self.rnn = nn.LSTM(E, H, L, batch_first=True)   # or nn.GRU, or nn.RNN(nonlinearity=...)
///             self.head = nn.Linear(H, V)
///
/// Shapes (B batch, T time, V vocabulary, E embedding, H hidden, L layers): token indices (B,T)
/// → embedding (B,T,E) → rnn (B,T,H) → logits (B·T,V).
public final class CharLM: ParameterizedModule, @unchecked Sendable {
    public let config: CharLMConfig
    public let embedding: Embedding
    public let rnn: RecurrentLayer
    public let head: Linear

    /// A freshly initialised model (PyTorch's default initialisation of each module).
    public init(config: CharLMConfig, rng: inout SeededRNG) {
        self.config = config
        embedding = Embedding(count: config.vocabulary.count, dimension: config.embeddingSize, rng: &rng)
        rnn = RecurrentLayer(kind: config.cell, inputSize: config.embeddingSize, hiddenSize: config.hiddenSize,
                             numLayers: config.numLayers, dropout: config.dropout, rng: &rng)
        head = Linear(inputSize: config.hiddenSize, outputSize: config.vocabulary.count, rng: &rng)
    }

    /// The parameters under their `state_dict` names, in PyTorch's registration order.
    public var namedParameters: [(String, Parameter)] {
        embedding.parameters.map { ("embedding." + $0.name, $0) }
            + rnn.parameters.map { ("rnn." + $0.name, $0) }
            + head.parameters.map { ("head." + $0.name, $0) }
    }

    public var parameters: [Parameter] { namedParameters.map { $0.1 } }

    /// The number of scalar parameters.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// A zero state for `batch` streams.
    public func zeroState(batch: Int) -> RecurrentState {
        RecurrentState.zeros(kind: config.cell, layers: config.numLayers, batch: batch, hidden: config.hiddenSize)
    }

    /// Logits for every position: inputs (B·T, batch-major) → logits (B·T, V) and the final state.
    public func logits(inputs: [Int32], batch: Int, steps: Int, state: RecurrentState?, rng: inout SeededRNG) -> (logits: Tensor, state: RecurrentState) {
        let (x, tokens) = stackInput(inputs, batch: batch, steps: steps)
        let (y, s, _) = rnn.forward(timeMajor: x, batch: batch, steps: steps, state: state, mode: .inference, rng: &rng,
                                    tokens: tokens)
        let flat = y.reshaped([batch * steps, config.hiddenSize])
        return (head.forward(flat), s)
    }

    /// Mean cross-entropy of predicting `targets` from `inputs` (both B·T, batch-major), without gradients.
    public func loss(inputs: [Int32], targets: [Int32], batch: Int, steps: Int, state: RecurrentState?, rng: inout SeededRNG) -> (loss: Float, state: RecurrentState) {
        let (z, s) = logits(inputs: inputs, batch: batch, steps: steps, state: state, rng: &rng)
        return (Loss.softmaxCrossEntropy(logits: z, targets: targets).loss, s)
    }

    /// One forward and backward pass (truncated BPTT: the gradient stops at the incoming `state`).
    /// Accumulates into every parameter's `.grad`; returns the mean loss and the final state,
    /// which the caller carries into the next chunk.
    public func trainStep(inputs: [Int32], targets: [Int32], batch: Int, steps: Int, state: RecurrentState?, rng: inout SeededRNG) -> (loss: Float, state: RecurrentState) {
        // Time-major throughout (row t·B + b): the embedding is looked up straight into the stack's
        // input, the head reads the last layer's cached outputs and writes dy in the layout the
        // backward pass reads, and the embedding gradient is scattered from the time-major dx. So
        // no (B,T,·) copy of the input, the outputs, dy or dx exists (4·T·B·H floats less traffic,
        // and T·B·H floats less at the peak of memory, reached at the end of the forward pass).
        let B = batch, T = steps, H = config.hiddenSize, V = head.outputSize
        let (x, tokens) = stackInput(inputs, batch: B, steps: T)
        let (_, s, cacheOrNil) = rnn.forward(timeMajor: x, batch: B, steps: T, state: state, mode: .training, rng: &rng,
                                             batchMajorOutput: false, tokens: tokens)
        guard let cache = cacheOrNil else { fatalError("a training forward pass returns its cache") }
        let timeMajorTargets = TokenInput.timeMajor(targets, batch: B, steps: T)
        let h = cache.lastOutputs
        // The head on the (T·B, H) outputs, then dy (time-major, as the stack's backward reads it).
        // z and dz from the buffer pool, not zeroed: the head writes every logit, the loss every
        // row of dz. The loss adds the head's bias to each row of logits and sums its gradient,
        // in the pass it makes over them anyway.
        let z = LayerBuffer(T * B * V, zeroed: false), dz = LayerBuffer(T * B * V, zeroed: false)
        head.forward(rows: T * B, input: h, output: z.pointer, addingBias: false)
        let loss = head.bias.value.data.withUnsafeBufferPointer { b in
            head.bias.grad.data.withUnsafeMutableBufferPointer { db in
                Loss.softmaxCrossEntropy(rows: T * B, classes: V, logits: z.pointer, bias: b.baseAddress!,
                                         targets: timeMajorTargets, dLogits: dz.pointer, dBias: db.baseAddress!)
            }
        }
        let dy = LayerBuffer(T * B * H, zeroed: false)
        head.backward(rows: T * B, dOutput: dz.pointer, input: h, dInput: dy.pointer, biasGradient: false)
        let (dx, _) = rnn.backwardTimeMajor(dOutput: nil, dState: nil, cache: cache, consumingCache: true, dOutputTimeMajor: dy,
                                           initialStateGradient: false)
        if tokens == nil { embedding.backwardTimeMajor(dx, indices: inputs, batch: B, steps: T) }
        return (loss, s)
    }

    /// Whether the embedding is folded into the first layer's input projection (see `TokenInput`):
    /// when the vocabulary is smaller than the B·T rows of a chunk, as for characters. Off switch
    /// for comparisons: RECURRENT_NO_FOLD=1 in the environment.
    public static func folds(vocabulary V: Int, rows: Int) -> Bool { V < rows && !foldingDisabled }
    private static let foldingDisabled = ProcessInfo.processInfo.environment["RECURRENT_NO_FOLD"] == "1"

    /// The stack's input for batch-major `inputs`: token ids to fold, or the looked-up (T,B,E) vectors.
    private func stackInput(_ inputs: [Int32], batch B: Int, steps T: Int) -> (LayerBuffer, TokenInput?) {
        if Self.folds(vocabulary: embedding.count, rows: B * T) {
            return (LayerBuffer(0), TokenInput(batchMajor: inputs, batch: B, steps: T, embedding: embedding))
        }
        return (embedding.forwardTimeMajor(inputs, batch: B, steps: T), nil)
    }
}
