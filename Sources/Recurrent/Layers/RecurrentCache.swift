/// What `RecurrentLayer.backward` reads from a `.training` forward pass.
///
/// Everything is time-major, so one step's rows are contiguous (B batch, T time, D input,
/// H hidden, L layers, G gates, R directions = 1 or 2):
///
///     input       (T,B,D)        x, transposed from (B,T,D)
///     per layer l and direction r:
///       hiddens   (T+1,B,H)      the initial state and every step's output (see `LayerCache`)
///       gates     (T,B,G·H)      post-activation gates (LSTM: σi σf tanh g σo; GRU: r z n); RNN: none
///       cells     (T+1,B,H)      LSTM only, laid out like hiddens
///       hiddenN   (T,B,H)        GRU only: W_hn h[t-1] + b_hn, needed because b_hn sits inside r⊙(·)
///     per layer l < L−1, only when R = 2 or dropout applies:
///       outputs   (T,B,R·H)      the next layer's input (directions side by side, after dropout)
///       mask      (T,B,R·H)      the dropout mask, when dropout applies
///
/// Memory in floats: T·B·D (none when run on tokens, see `TokenInput`) + R·Σ_l [(T+1)·B·H + {LSTM 4TBH + (T+1)BH, GRU 4TBH, RNN 0}]
/// + up to 2·(L−1)·T·B·R·H for the stacked outputs and masks. About 6·T·B·H per LSTM layer and
/// direction, 5·T·B·H for GRU, T·B·H for RNN. The backward pass reads the current parameter
/// values, so do not update them in between.
///
/// On top of the cache, `RecurrentLayer.backward` needs per layer: the gate gradients G·T·B·H
/// (GRU: and T·B·H for the n part of the input side's, dn; its r and z parts are the hidden
/// side's), the input gradient T·B·D_in and, for layers below the last, the stacked output
/// gradient T·B·R·H. With `consumingCache: true` (what `CharLM.trainStep` uses) the gate
/// gradients are written over the cached gates by the cell kernels (GRU's dn over hiddenN; a
/// one-direction Elman stack writes them over its output gradient instead, a time-major dOutput
/// included), and each layer's input gradient overwrites a spent buffer of its cache (LSTM's
/// cells, GRU's hiddenN, an Elman layer's hidden states), so the backward pass adds only O(B·G·H)
/// (the per-row bias sums) and the last layer's dOutput is read in place.
/// Run on tokens (`TokenInput`), layer 0 has no input gradient and the cache no input; its
/// backward adds V·G·H floats of per-token sums.
///
/// Checked on lstm512 training (2×LSTM 512, B 64, T 100, V 65, `recurrent bench --config lstm512`,
/// which runs on tokens, so no input block): cache 39.5 M floats = 151 MiB; parameters, gradients
/// and Adam's two moments 4·4.27 M floats = 65 MiB; W_hh packed for the per-step products, forward
/// and backward, 2·1.07 M floats = 8 MiB; the (B·T,V) logits and their gradient 3 MiB; the GEMM's
/// packing blocks about 5 MiB (x·W_ihᵀ's op(B) packed as one column group: 2 MiB); the folded
/// tables and per-token sums 1 MiB; the process without a model (runtime, text, tokens) 29–36 MiB:
/// 262–269 MiB predicted at the end of the forward pass, the peak (`CharLM.trainStep` runs
/// time-major end to end, so no (B,T,·) copy of the outputs or their gradients exists; dy (T·B·H)
/// is taken after the logits, when the forward pass's transients are gone). Peak RSS measured
/// 280–281 MiB under bench/side_by_side.sh's allocator settings (2026-11-29; 279 MiB before the
/// column groups, 291 MiB before the embedding was folded, 300 MiB before the time-major step,
/// 376 MiB before the consuming backward pass).
public final class RecurrentCache {
    let batch: Int
    let steps: Int
    /// Per-sequence lengths (each in 0...T), or nil when every sequence has T steps.
    let lengths: [Int]?
    /// x time-major (T,B,D); empty when layer 0 reads `tokens`.
    let input: LayerBuffer
    /// Layer 0's token ids and embedding, when the stack was run on tokens.
    let tokens: TokenInput?
    /// Index l·R + r.
    var layers: [LayerCache] = []
    /// Index l, for l < L−1: the stacked outputs (T,B,R·H) when materialised.
    var outputs: [LayerBuffer?] = []
    /// Index l, for l < L−1: the dropout mask (T,B,R·H) on layer l's outputs.
    var masks: [LayerBuffer?] = []
    /// Set by a `backward(…, consumingCache: true)`, which overwrites the gates with gradients.
    var consumed = false
    /// The layer whose forward pass made it: backward refuses another layer's cache.
    let owner: ObjectIdentifier

    init(batch: Int, steps: Int, lengths: [Int]?, input: LayerBuffer, tokens: TokenInput? = nil, owner: ObjectIdentifier) {
        self.owner = owner
        self.batch = batch
        self.steps = steps
        self.lengths = lengths
        self.input = input
        self.tokens = tokens
    }

    /// The last layer's outputs, time-major (T,B,H), of a one-direction stack (valid until a
    /// consuming backward pass).
    var lastOutputs: UnsafePointer<Float> {
        guard let lc = layers.last else { fatalError("no layer in the cache") }
        return UnsafePointer(lc.hiddens.pointer + lc.outputOffset)
    }
}

/// One layer and direction's share of `RecurrentCache`.
///
/// `hiddens` has T+1 slots. Forward direction: slot 0 is the initial state and slot t+1 the
/// output at time t. Reverse direction: slot T is the initial state and slot t the output at
/// time t. Either way the outputs of all times are one contiguous (T,B,H) block (`outputs`), and
/// so are the states each time step reads (`previous`), which makes dW_hh one matrix product.
final class LayerCache {
    let reverse: Bool
    let slot: Int  // B·H
    let steps: Int
    let hiddens: LayerBuffer
    /// (T,B,G·H) activated gates; nil for RNN (its gate is the hidden state itself).
    let gates: LayerBuffer?
    /// (T+1,B,H) LSTM cells, slots as in `hiddens`.
    let cells: LayerBuffer?
    /// (T,B,H) GRU's W_hn h + b_hn.
    let hiddenN: LayerBuffer?

    init(kind: CellKind, batch B: Int, steps T: Int, hidden H: Int, reverse: Bool) {
        self.reverse = reverse
        slot = B * H
        steps = T
        // Every output slot is written by the forward pass (padding steps copy the state forward),
        // so only the initial slot is cleared: the zero state unless the caller copies one in.
        hiddens = LayerBuffer((T + 1) * B * H, zeroed: false)
        gates = kind == .lstm || kind == .gru ? LayerBuffer(T * B * kind.gateCount * H, zeroed: false) : nil
        cells = kind == .lstm ? LayerBuffer((T + 1) * B * H, zeroed: false) : nil
        hiddenN = kind == .gru ? LayerBuffer(T * B * H, zeroed: false) : nil
        let initial = reverse ? T * B * H : 0
        (hiddens.pointer + initial).update(repeating: 0, count: B * H)
        cells.map { ($0.pointer + initial).update(repeating: 0, count: B * H) }
    }

    /// Offset of the output block (time t at `+ t·B·H`).
    var outputOffset: Int { reverse ? 0 : slot }
    /// Offset of the block of states read at each time.
    var previousOffset: Int { reverse ? slot : 0 }
    /// Offset of the initial state.
    var initialOffset: Int { reverse ? steps * slot : 0 }
    /// Offset of the final state.
    var finalOffset: Int { reverse ? 0 : steps * slot }
}

extension RecurrentCache {
    /// Read access to what a forward pass computed, for diagnostics (`Insight`): layer `l`'s
    /// forward-direction values, time-major (B batch, T time, H hidden, G gates):
    ///
    ///     hiddens (T+1,B,H)   slot 0 the initial state, slot t+1 the output at time t
    ///     cells   (T+1,B,H)   LSTM only, slots as hiddens
    ///     gates   (T,B,G·H)   LSTM σi σf tanh g σo, GRU r z n (post-activation); nil for RNN
    ///
    /// - Precondition: the cache is not consumed and layer `l` runs forward (index l·R).
    func withTrace<Result>(layer l: Int, directions R: Int = 1,
                           _ body: (_ hiddens: UnsafeBufferPointer<Float>, _ cells: UnsafeBufferPointer<Float>?,
                                    _ gates: UnsafeBufferPointer<Float>?) -> Result) -> Result {
        require(!consumed, "the cache was consumed by a backward pass")
        let lc = layers[l * R]
        require(!lc.reverse, "traces read the forward direction")
        let T = steps
        return withExtendedLifetime(lc) {
            body(UnsafeBufferPointer(start: lc.hiddens.pointer, count: (T + 1) * lc.slot),
                 lc.cells.map { UnsafeBufferPointer(start: $0.pointer, count: (T + 1) * lc.slot) },
                 lc.gates.map { UnsafeBufferPointer(start: $0.pointer, count: $0.count) })
        }
    }
}

/// Layer 0's input given as token ids looked up in an embedding, x[t,b] = E[tokens[t·B + b]],
/// instead of as vectors. The stack then folds the embedding into layer 0's input projection:
/// forward, x·W_ihᵀ is a row of the table E·W_ihᵀ (V, G·H), one product over the vocabulary
/// instead of over all T·B rows (the same bits); backward, the gate gradients are summed per token
/// first, so dW_ih, db_ih and the embedding's gradient cost O(V) products instead of O(T·B), and
/// no (T,B,D) input or input gradient exists. Worth it when V < T·B (a character vocabulary).
struct TokenInput {
    /// Token ids, time-major (row t·B + b), each in 0..<embedding.count.
    let timeMajor: [Int32]
    /// Its weight is read in forward and backward (unchanged in between); its gradient is accumulated.
    let embedding: Embedding

    /// Transposes batch-major ids (row b·T + t) to time-major.
    init(batchMajor ids: [Int32], batch B: Int, steps T: Int, embedding: Embedding) {
        require(ids.count == B * T, "\(ids.count) indices for \(B)×\(T)")
        timeMajor = Self.timeMajor(ids, batch: B, steps: T)
        self.embedding = embedding
    }

    /// Calls `body` with a pointer to the time-major ids of `tokens`, or nil without tokens.
    static func withIDs<Result>(_ tokens: TokenInput?, _ body: (UnsafePointer<Int32>?) -> Result) -> Result {
        guard let tokens else { return body(nil) }
        return tokens.timeMajor.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    /// Ids already time-major.
    init(timeMajor ids: [Int32], embedding: Embedding) {
        timeMajor = ids
        self.embedding = embedding
    }

    /// Batch-major ids (row b·T + t) reordered time-major (row t·B + b).
    static func timeMajor(_ ids: [Int32], batch B: Int, steps T: Int) -> [Int32] {
        (0..<(T * B)).map { ids[($0 % B) * T + $0 / B] }
    }
}
