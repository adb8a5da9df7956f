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
public final class CharLM: ParameterizedModule {
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
        let x = embedding.forward(inputs, shape: [batch, steps])
        let (y, s, _) = rnn.forward(x, state: state, mode: .inference, rng: &rng)
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
        // The forward pass and the head in their own scope, so the embedding output, the stack's
        // output, the logits and their gradient are freed before the recurrent backward pass (the
        // peak of memory); that pass then consumes its cache (gate gradients over the gates).
        func forwardAndHead() -> (loss: Float, state: RecurrentState, cache: RecurrentCache?, dy: Tensor) {
            func stack() -> (Tensor, RecurrentState, RecurrentCache?) {
                rnn.forward(embedding.forward(inputs, shape: [batch, steps]), state: state, mode: .training, rng: &rng)
            }
            let (y, s, cache) = stack()
            var flat = (consume y).reshaped([batch * steps, config.hiddenSize])
            let z = head.forward(flat)
            let (loss, dz) = Loss.softmaxCrossEntropy(logits: z, targets: targets)
            head.backward(dz, overwritingInput: &flat)  // flat becomes dy
            return (loss, s, cache, flat.reshaped([batch, steps, config.hiddenSize]))
        }
        let (loss, s, cacheOrNil, dy) = forwardAndHead()
        guard let cache = cacheOrNil else { return (loss, s) }
        let (dx, _) = rnn.backward(dOutput: dy, dState: nil, cache: cache, consumingCache: true)
        embedding.backward(dx, indices: inputs)
        return (loss, s)
    }
}
