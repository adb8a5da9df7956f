import CKernels
import Dispatch

/// A stack of recurrent layers over whole sequences: the counterpart of `nn.LSTM`, `nn.GRU` and
/// `nn.RNN(nonlinearity:)` with `batch_first=True`, with PyTorch's equations, gate order and names.
///
///     pre[t] = x[t]·W_ihᵀ + b_ih + h[t-1]·W_hhᵀ + b_hh
///     rnn:   h[t] = tanh(pre[t])  or  relu(pre[t])
///     lstm:  i, f, g, o = split(pre[t]);  c[t] = σ(f)⊙c[t-1] + σ(i)⊙tanh(g);  h[t] = σ(o)⊙tanh(c[t])
///     gru:   r = σ(x·W_irᵀ + b_ir + h·W_hrᵀ + b_hr);  z = σ(… z …)
///            n = tanh(x·W_inᵀ + b_in + r⊙(h[t-1]·W_hnᵀ + b_hn));  h[t] = (1−z)⊙n + z⊙h[t-1]
///
/// Layer l > 0 reads layer l−1's outputs, after dropout with probability `dropout` in training.
/// Bidirectional stacks run a second set of weights (`*_reverse`) from the last step to the first
/// and put both directions side by side: outputs (…, 2H), states indexed l·2 + direction.
///
/// Shapes (B batch, T time, D input, H hidden, L layers, G gates = `kind.gateCount`, R directions):
/// x (B,T,D) → output (B,T,R·H) of the last layer; state hidden/cell (L·R,B,H);
/// weight_ih_l0 (G·H,D), weight_ih_lk (G·H,R·H) for k > 0, weight_hh_lk (G·H,H), bias_*_lk (G·H).
///
/// Cost: per layer one (T·B × D_in × G·H) input projection before the time loop, one
/// (B × H × G·H) product per step, and in backward one product per step (dh·W_hh) plus three after
/// the sweep (dW_ih, dW_hh, dx). Run on token ids (`TokenInput`, what `CharLM` does when its
/// vocabulary is smaller than a chunk's B·T rows), layer 0's input projection, dW_ih and dx cost
/// products over the V vocabulary rows instead of the T·B rows. Memory: see `RecurrentCache`
/// (≈ 6·T·B·H floats per LSTM layer and direction, and O(B·G·H) more in a consuming backward pass);
/// an `.inference` pass over a long sequence runs in chunks of time and keeps only the outputs
/// (see `forwardInChunks`).
///
/// Threads: the batch rows are split into `Threading.count` slices that run a layer's time loop in
/// parallel (about four hand-offs per layer and direction, after which the rows are re-cut by the
/// speed each slice achieved; no synchronisation per step, see `sweep`); each slice does its own
/// per-step product on its rows on its own thread (`GEMM.multiplyPacked`, W_hh packed once per
/// pass). The products before and after the loop are threaded inside GEMM. A row's arithmetic does
/// not depend on the split, so results are bitwise identical for any thread count.
///
/// Variable-length batches (`lengths`) follow `pack_padded_sequence`: steps at or past a
/// sequence's length leave its state unchanged and output zeros, so the final state is the one at
/// its last real step (for the reverse direction: its state after time 0, having started at the
/// last real step).
public final class RecurrentLayer: ParameterizedModule, @unchecked Sendable {
    public let kind: CellKind
    public let inputSize: Int
    public let hiddenSize: Int
    public let numLayers: Int
    /// Whether every layer also runs backwards in time (`bidirectional=True`).
    public let bidirectional: Bool
    /// Dropout probability on the outputs of every layer but the last, training only.
    public var dropout: Float
    /// weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, [the same with `_reverse`], weight_ih_l1, …
    /// (PyTorch's order).
    public var parameters: [Parameter]

    /// 2 when bidirectional, else 1.
    public var directionCount: Int { bidirectional ? 2 : 1 }
    /// Features of each output step: R·H.
    public var outputSize: Int { directionCount * hiddenSize }

    /// Every parameter drawn from U(−1/√H, 1/√H) in `parameters` order, as PyTorch does.
    public init(kind: CellKind, inputSize: Int, hiddenSize: Int, numLayers: Int, dropout: Float = 0,
                bidirectional: Bool = false, rng: inout SeededRNG) {
        require(inputSize > 0 && hiddenSize > 0 && numLayers > 0, "recurrent layer needs positive sizes")
        require(dropout >= 0 && dropout <= 1, "dropout \(dropout) outside [0, 1]")
        self.kind = kind
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.bidirectional = bidirectional
        self.dropout = dropout
        let GH = kind.gateCount * hiddenSize
        let R = bidirectional ? 2 : 1
        let bound = 1 / Float(hiddenSize).squareRoot()
        func uniform(_ shape: [Int]) -> Tensor {
            var t = Tensor(shape: shape)
            for i in 0..<t.count { t.data[i] = rng.uniform(-bound, bound) }
            return t
        }
        var ps: [Parameter] = []
        for l in 0..<numLayers {
            let din = l == 0 ? inputSize : R * hiddenSize
            for r in 0..<R {
                let suffix = "_l\(l)" + (r == 1 ? "_reverse" : "")
                ps.append(Parameter(name: "weight_ih" + suffix, value: uniform([GH, din])))
                ps.append(Parameter(name: "weight_hh" + suffix, value: uniform([GH, hiddenSize])))
                ps.append(Parameter(name: "bias_ih" + suffix, value: uniform([GH])))
                ps.append(Parameter(name: "bias_hh" + suffix, value: uniform([GH])))
            }
        }
        parameters = ps
    }

    /// Runs every layer over the whole sequence.
    ///
    /// - Parameters:
    ///   - x: (B,T,D).
    ///   - state: the initial state (L·R,B,H) (and cell for LSTM); nil means zeros.
    ///   - mode: `.training` applies dropout and returns the cache; `.inference` returns nil.
    ///   - rng: draws the dropout masks (untouched when no dropout applies).
    ///   - lengths: optional per-sequence lengths (B values in 0...T); see the type's doc.
    /// - Returns: output (B,T,R·H) of the last layer (zero past each length), the final state (L·R,B,H).
    public func forward(_ x: Tensor, state: RecurrentState?, mode: ForwardMode, rng: inout SeededRNG,
                        lengths: [Int]? = nil) -> (output: Tensor, state: RecurrentState, cache: RecurrentCache?) {
        forward(x, state: state, mode: mode, rng: &rng, lengths: lengths, applyingDropout: true)
    }

    /// `forward`; with `applyingDropout` false a training pass (cache and all) applies no dropout,
    /// without writing `dropout`, so the layer stays shared with other threads (the insight tools).
    func forward(_ x: Tensor, state: RecurrentState?, mode: ForwardMode, rng: inout SeededRNG,
                 lengths: [Int]? = nil, applyingDropout: Bool) -> (output: Tensor, state: RecurrentState, cache: RecurrentCache?) {
        require(x.shape.count == 3 && x.shape[2] == inputSize, "recurrent layer expects x (B,T,\(inputSize)), got \(x.shape)")
        let B = x.shape[0], T = x.shape[1], D = inputSize
        let input = LayerBuffer(T * B * D, zeroed: false)
        x.data.withUnsafeBufferPointer { xb in
            if let xp = xb.baseAddress { Tensor.transposeBatchTime(xp, to: input.pointer, outer: B, inner: T, features: D) }
        }
        // Steps past a sequence's length are never read, as pack_padded_sequence never reads
        // them; but the weight gradient dPreᵀ·x runs over every row, where 0·nan would be nan.
        // So the copy's padding is zeroed.
        if let lengths, lengths.count == B, D > 0 {
            for (b, n) in lengths.enumerated() where n < T {
                for t in max(n, 0)..<T { (input.pointer + (t * B + b) * D).update(repeating: 0, count: D) }
            }
        }
        return forward(timeMajor: input, batch: B, steps: T, state: state, mode: mode, rng: &rng, lengths: lengths,
                       applyingDropout: applyingDropout)
    }

    /// `forward` with x already time-major (T,B,D) in `input`, which the cache keeps (no copy).
    /// With `batchMajorOutput` false the returned output is empty: a training caller then reads the
    /// last layer's (T,B,H) outputs from the cache (`lastOutputs`), without a copy.
    ///
    /// With `tokens`, layer 0 reads token ids through an embedding instead of `input` (which is then
    /// ignored, and may be empty): see `TokenInput`.
    func forward(timeMajor input: LayerBuffer, batch B: Int, steps T: Int, state: RecurrentState?, mode: ForwardMode,
                 rng: inout SeededRNG, lengths: [Int]? = nil, batchMajorOutput: Bool = true,
                 tokens: TokenInput? = nil, applyingDropout: Bool = true) -> (output: Tensor, state: RecurrentState, cache: RecurrentCache?) {
        let D = inputSize, H = hiddenSize, L = numLayers, R = directionCount
        let stateShape = [L * R, B, H]
        if let tokens {
            require(tokens.embedding.dimension == D, "the embedding width \(tokens.embedding.dimension) is not the input size \(D)")
            require(tokens.timeMajor.count == T * B, "\(tokens.timeMajor.count) tokens for \(T)·\(B)")
            let V = tokens.embedding.count
            require(tokens.timeMajor.allSatisfy { $0 >= 0 && Int($0) < V }, "token ids must lie in 0..<\(V)")
        } else {
            require(input.count == T * B * D, "time-major input must hold \(T)·\(B)·\(D) floats")
        }
        if let state {
            require(state.hidden.shape == stateShape, "initial hidden state must be \(stateShape), got \(state.hidden.shape)")
            if kind.hasCellState {
                require(state.cell?.shape == stateShape, "LSTM initial cell state must be \(stateShape)")
            }
        }
        if let lengths {
            require(lengths.count == B && lengths.allSatisfy { $0 >= 0 && $0 <= T }, "lengths must be \(B) values in 0...\(T)")
        }
        if mode == .inference, batchMajorOutput, let chunk = chunkSteps(batch: B, steps: T) {
            let (output, final) = forwardInChunks(timeMajor: input, batch: B, steps: T, chunk: chunk, state: state,
                                                  lengths: lengths, tokens: tokens)
            return (output, final, nil)
        }
        let cache = RecurrentCache(batch: B, steps: T, lengths: lengths, input: input, tokens: tokens, owner: ObjectIdentifier(self))
        var finalHidden = Tensor(shape: stateShape)
        var finalCell: Tensor? = kind.hasCellState ? Tensor(shape: stateShape) : nil
        // The previous layer's directions and stacked output own what the next layer reads; the
        // lifetimes are explicit because the layers see raw pointers into these objects.
        var previous: [LayerCache] = []
        var previousOutput: LayerBuffer?
        for l in 0..<L {
            var level: [LayerCache] = []
            for r in 0..<R {
                let lc = LayerCache(kind: kind, batch: B, steps: T, hidden: H, reverse: r == 1)
                let index = l * R + r
                // Initial state into its slot of hiddens / cells.
                state?.hidden.data.withUnsafeBufferPointer { p in
                    if let base = p.baseAddress { (lc.hiddens.pointer + lc.initialOffset).update(from: base + index * B * H, count: B * H) }
                }
                if let cells = lc.cells {
                    state?.cell?.data.withUnsafeBufferPointer { p in
                        if let base = p.baseAddress { (cells.pointer + lc.initialOffset).update(from: base + index * B * H, count: B * H) }
                    }
                }
                withExtendedLifetime((cache, previous, previousOutput)) {
                    let layerInput = l == 0 ? UnsafePointer(input.pointer)
                        : Self.stackedInput(previous, previousOutput, batch: B, hidden: H)
                    forwardLayer(index, input: layerInput, inputWidth: l == 0 ? D : R * H, batch: B, steps: T,
                                 lengths: lengths, tokens: l == 0 ? tokens : nil, cache: lc)
                }
                finalHidden.data.replaceSubrange(index * B * H ..< (index + 1) * B * H,
                                                 with: lc.hiddens.array(offset: lc.finalOffset, count: B * H))
                if let cells = lc.cells {
                    finalCell?.data.replaceSubrange(index * B * H ..< (index + 1) * B * H,
                                                    with: cells.array(offset: lc.finalOffset, count: B * H))
                }
                level.append(lc)
            }
            // Stack the directions and apply dropout, unless the next layer can read h directly.
            var output: LayerBuffer?
            var mask: LayerBuffer?
            let applyDropout = mode == .training && applyingDropout && dropout > 0 && l < L - 1
            if l < L - 1 && (R > 1 || applyDropout) {
                let stacked = Self.stack(level, batch: B, steps: T, hidden: H)
                if applyDropout {
                    let m = LayerBuffer(copying: Dropout.makeMask(count: stacked.count, p: dropout, rng: &rng))
                    for i in 0..<stacked.count { stacked.pointer[i] *= m.pointer[i] }
                    mask = m
                }
                output = stacked
            }
            if mode == .training {
                cache.layers += level
                if l < L - 1 { cache.outputs.append(output); cache.masks.append(mask) }
            }
            previous = level
            previousOutput = output
        }
        if !batchMajorOutput {
            require(mode == .training && R == 1 && lengths == nil, "time-major outputs: training, one direction, full lengths")
            return (Tensor(shape: [0]), RecurrentState(hidden: finalHidden, cell: finalCell), cache)
        }
        // The last layer's directions, side by side, batch-major; zeros past each length.
        var out = Tensor(shape: [B, T, R * H])
        out.data.withUnsafeMutableBufferPointer { ob in
            guard let op = ob.baseAddress else { return }
            for (r, lc) in previous.enumerated() {
                let h = lc.hiddens.pointer + lc.outputOffset
                for t in 0..<T { for b in 0..<B { (op + (b * T + t) * R * H + r * H).update(from: h + (t * B + b) * H, count: H) } }
            }
            if let lengths {
                for b in 0..<B where lengths[b] < T {
                    (op + (b * T + lengths[b]) * R * H).update(repeating: 0, count: (T - lengths[b]) * R * H)
                }
            }
        }
        return (out, RecurrentState(hidden: finalHidden, cell: finalCell), mode == .training ? cache : nil)
    }

    /// Backpropagates through the whole stack, accumulating (+=) into every parameter's `grad`.
    ///
    /// - Parameters:
    ///   - dOutput: gradient on the output (B,T,R·H); nil means zeros. Entries past a length are ignored.
    ///   - dState: gradient on the final state (L·R,B,H); nil means zeros.
    ///   - cache: from the `.training` forward pass of this layer, with the parameters unchanged since.
    ///   - consumingCache: lets the pass write the gate gradients over the cached gates (LSTM, GRU),
    ///     which saves G·T·B·H floats per layer and direction of peak memory; the cache can then not
    ///     be used again (a second `backward` with it stops with a precondition failure).
    /// - Returns: dInput (B,T,D) and the gradient on the initial state (L·R,B,H).
    public func backward(dOutput: Tensor?, dState: RecurrentState?, cache: RecurrentCache,
                         consumingCache: Bool = false) -> (dInput: Tensor, dInitialState: RecurrentState) {
        require(cache.tokens == nil, "a stack run on tokens sends its input gradient to the embedding: use backwardTimeMajor")
        let (dIn, dInitial) = backwardTimeMajor(dOutput: dOutput, dState: dState, cache: cache, consumingCache: consumingCache)
        let B = cache.batch, T = cache.steps, D = inputSize
        var dInput = Tensor(shape: [B, T, D])
        dInput.data.withUnsafeMutableBufferPointer { p in
            if let base = p.baseAddress { Tensor.transposeBatchTime(dIn.pointer, to: base, outer: T, inner: B, features: D) }
        }
        return (dInput, dInitial)
    }

    /// `backward` with the input gradient left time-major (T,B,D), as the layer computes it.
    /// `dOutputTimeMajor` (T,B,R·H), if given, replaces `dOutput`; with `consumingCache` it is spent
    /// too (a one-direction Elman stack writes its gate gradients over it). For a cache run on tokens the
    /// returned input gradient is empty: it was accumulated into the embedding's gradient. Without
    /// `initialStateGradient` (a caller that drops it, as truncated BPTT does) the gradient on the
    /// initial state is not computed (the last step's product through W_hh is skipped) and comes
    /// back as zeros.
    ///
    /// With `hiddenGradients` (one (T,B,H) time-major block per layer and direction, index l·R + r;
    /// diagnostics), slot t of layer l's block receives the gradient on the hidden state that step t
    /// reads (h after t steps; for the reverse direction, after T − 1 − t) through step t and the
    /// steps after it, without what it receives as the output of the step before (from the layer
    /// above or dOutput): what that state would receive as the initial state of a run over steps
    /// t … T − 1 (`GradientFlow`).
    func backwardTimeMajor(dOutput: Tensor?, dState: RecurrentState?, cache: RecurrentCache,
                           consumingCache: Bool = false, dOutputTimeMajor: LayerBuffer? = nil,
                           initialStateGradient: Bool = true,
                           hiddenGradients: [UnsafeMutablePointer<Float>]? = nil) -> (dInput: LayerBuffer, dInitialState: RecurrentState) {
        let B = cache.batch, T = cache.steps, D = inputSize, H = hiddenSize, L = numLayers, R = directionCount
        let stateShape = [L * R, B, H]
        require(cache.owner == ObjectIdentifier(self) && cache.layers.count == L * R,
                     "the cache does not come from a training forward pass of this layer")
        require(hiddenGradients.map { $0.count == L * R } ?? true, "one hidden-gradient block per layer and direction")
        require(!cache.consumed, "this cache was already used by a consuming backward pass")
        if consumingCache { cache.consumed = true }
        if let dOutput { require(dOutput.shape == [B, T, R * H], "dOutput must be \([B, T, R * H]), got \(dOutput.shape)") }
        if let dState {
            require(dState.hidden.shape == stateShape, "dState.hidden must be \(stateShape), got \(dState.hidden.shape)")
            if let cell = dState.cell { require(cell.shape == stateShape, "dState.cell must be \(stateShape)") }
        }
        // Gradient on the current layer's stacked outputs, time-major (T,B,R·H). The last layer reads
        // dOutput (B,T,R·H) in place instead (nil: zeros).
        var dOut: LayerBuffer? = dOutputTimeMajor ?? (dOutput == nil ? LayerBuffer(T * B * R * H) : nil)
        require(dOutputTimeMajor.map { $0.count >= T * B * R * H } ?? true, "time-major dOutput must hold \(T)·\(B)·\(R * H) floats")
        var dInitialHidden = Tensor(shape: stateShape)
        var dInitialCell: Tensor? = kind.hasCellState ? Tensor(shape: stateShape) : nil
        var dInput = LayerBuffer(0)
        let dhNext = LayerBuffer(B * H)
        let dcNext = LayerBuffer(B * H)
        for l in (0..<L).reversed() {
            let din = l == 0 ? D : R * H
            // r = 0 overwrites it. A consuming pass writes it over a buffer of direction 0's cache
            // that is spent once that direction's sweep and weight gradients are done (dx is the
            // last product of the layer): LSTM's cells, a GRU or Elman layer's hidden states (the
            // layer above, which reads them as its input, ran before; not GRU's W_hn·h + b_hn, where
            // dn lives, which dx's second product reads). Lines that were just read, instead of a
            // fresh buffer's fetched only to be overwritten.
            let spent = consumingCache ? (cache.layers[l * R].cells ?? cache.layers[l * R].hiddens) : nil
            // Layer 0 over tokens sends its input gradient straight to the embedding (no dx).
            let tokens = l == 0 ? cache.tokens : nil
            let dIn = tokens != nil ? LayerBuffer(0)
                : spent.flatMap { $0.count >= T * B * din ? $0 : nil } ?? LayerBuffer(T * B * din, zeroed: false)
            for r in 0..<R {
                let index = l * R + r
                dhNext.pointer.update(repeating: 0, count: B * H)
                dcNext.pointer.update(repeating: 0, count: B * H)
                dState?.hidden.data.withUnsafeBufferPointer { p in
                    if let base = p.baseAddress { dhNext.pointer.update(from: base + index * B * H, count: B * H) }
                }
                dState?.cell?.data.withUnsafeBufferPointer { p in
                    if let base = p.baseAddress { dcNext.pointer.update(from: base + index * B * H, count: B * H) }
                }
                // An Elman layer's gate gradients (G·H = H wide) go over its output gradient when that
                // buffer is the pass's own, (T,B,H) contiguous as R = 1 makes it (the layer above's dx,
                // zeros, or a consumed dOutputTimeMajor):
                // each row is read once, at its step, so no T·B·H buffer is filled and no cold line of
                // one is fetched just to be overwritten.
                let dPreInDOut = (kind == .rnnTanh || kind == .rnnRelu) && R == 1 && dOut != nil
                    && (l < L - 1 || dOutputTimeMajor == nil || consumingCache)
                func run(_ up: UnsafePointer<Float>, step: Int, row: Int) {
                    withExtendedLifetime((dOut, dIn, dhNext, dcNext)) {
                        let input = l == 0 ? UnsafePointer(cache.input.pointer)
                            : Self.stackedInput(Array(cache.layers[(l - 1) * R ..< l * R]), cache.outputs[l - 1], batch: B, hidden: H)
                        backwardLayer(index, cache: cache.layers[index], input: input, inputWidth: din, batch: B, steps: T,
                                      lengths: cache.lengths, dOut: up + r * H, dOutStep: step, dOutRow: row,
                                      dhNext: dhNext.pointer, dcNext: dcNext.pointer, dInput: dIn.pointer, accumulate: r > 0,
                                      inPlace: consumingCache, dPreInDOut: dPreInDOut, tokens: tokens,
                                      initialStateGradient: initialStateGradient, recordHidden: hiddenGradients?[index])
                    }
                }
                if let dOut {
                    run(dOut.pointer, step: B * R * H, row: R * H)
                } else if let dOutput {
                    // Batch-major: time t row b at (b·T + t)·R·H.
                    dOutput.data.withUnsafeBufferPointer { p in
                        if let base = p.baseAddress { run(base, step: R * H, row: T * R * H) }
                        else { let empty = LayerBuffer(1); run(empty.pointer, step: 0, row: 0) }
                    }
                }
                guard initialStateGradient else { continue }
                dInitialHidden.data.replaceSubrange(index * B * H ..< (index + 1) * B * H, with: dhNext.array(count: B * H))
                if kind.hasCellState {
                    dInitialCell?.data.replaceSubrange(index * B * H ..< (index + 1) * B * H, with: dcNext.array(count: B * H))
                }
            }
            if l > 0 {
                if let mask = cache.masks[l - 1] {
                    // dIn may be a longer spent buffer of the cache (LSTM's T + 1 cell slots): only
                    // its first T·B·din floats are the gradient, as many as the mask holds.
                    for i in 0..<(T * B * din) { dIn.pointer[i] *= mask.pointer[i] }
                }
                dOut = dIn
            } else {
                dInput = dIn
            }
        }
        return (dInput, RecurrentState(hidden: dInitialHidden, cell: dInitialCell))
    }

    // MARK: Stacking layers

    /// What a layer reads from the one below: its stacked output if materialised, else the single
    /// direction's output block (T,B,H).
    private static func stackedInput(_ level: [LayerCache], _ stacked: LayerBuffer?, batch B: Int, hidden H: Int) -> UnsafePointer<Float> {
        if let stacked { return UnsafePointer(stacked.pointer) }
        guard let only = level.first else { fatalError("no layer below") }
        return UnsafePointer(only.hiddens.pointer + only.outputOffset)
    }

    /// The directions' outputs side by side: (T,B,R·H).
    private static func stack(_ level: [LayerCache], batch B: Int, steps T: Int, hidden H: Int) -> LayerBuffer {
        let R = level.count
        let out = LayerBuffer(T * B * R * H, zeroed: false)
        for (r, lc) in level.enumerated() {
            let h = lc.hiddens.pointer + lc.outputOffset
            for row in 0..<(T * B) { (out.pointer + row * R * H + r * H).update(from: h + row * H, count: H) }
        }
        return out
    }

    // MARK: One layer and direction

    /// Batch slices that sweep time in parallel: one per thread, at most one per row.
    static func sliceCount(batch B: Int) -> Int { max(1, min(Threading.count, B)) }

    /// Test hook: when set, every phase of `sweep` cuts the rows with this function of (phase,
    /// parts, B) instead of by the measured speeds, which must not change any result.
    nonisolated(unsafe) static var sweepCutsForTesting: ((Int, Int, Int) -> [Int])?
    /// Test hook: the slice with this index waits 1 ms before each step of its own rows and the
    /// others before their first step only (so that each gets a thread of its own); the others
    /// then run out of work first and steal from it.
    nonisolated(unsafe) static var slowSliceForTesting: Int?

    /// Runs a time loop's rows in parallel: `body(b0, n, steps, poll)` sweeps rows [b0, b0 + n) over
    /// the loop's steps `steps` (0 is the loop's first step, in its own direction), calling
    /// `n = poll(n, s)` at the start of each step s and sweeping only the first n rows from then on.
    ///
    /// One slice of rows per thread (`sliceCount`), near-equal at first. The steps run in about
    /// four phases (of at least 4 steps); after each, the rows are cut again in proportion to the
    /// rows per second each slice achieved (half the way from the last cut, on multiples of 4
    /// rows), since the cores of a shared host run at different speeds from one moment to the next
    /// and a fixed cut leaves the faster one waiting. Within a phase, a slice that is done early
    /// steals instead of waiting (`rc_steal_take`): the slice with the most work left gives up the
    /// last half of its rows at its next step (`poll`), and the thief sweeps them to the end of the
    /// phase. The recurrence of different rows is independent and a row's arithmetic does not
    /// depend on its slice (the per-step products' sums do not depend on M), so results are the
    /// same for any cut, steal and thread count.
    ///
    /// Measured 2026-11-29, two threads, against one fixed cut for the whole loop: a C harness of
    /// one layer's loop ran equal or up to 17% faster (GRU H 256 B 50 T 100), 6–7% faster (LSTM
    /// H 128 B 50 T 50) and within ±1.5% (LSTM H 512 B 64 T 100); whole training steps, alternated
    /// in one process, within ±1% on six configs, lstm128 once 5% faster. Stealing, against
    /// waiting at the ends of phases (whole steps alternated in one process, 12–20 pairs, on a busy
    /// host): gru256 −4.1%, −2.8%, −7.2%; lstm256 −3.9%; rnn256 +1.3%, −4.6%, −0.8%; lstm512
    /// +2.3%, −5.3%, −0.5%; eval512 +3.8%, −3.6%, +0.3%, −4.8%; lstm128 −0.2%. Four phases
    /// against eight (2026-11-30, release binaries alternated, 10 pairs, chars/s): rnn256 ×1.012,
    /// ×1.014; gru256 ×1.010, ×1.004; lstm128 ×1.007; lstm512 ×0.999 (each phase ends in a
    /// hand-off; stealing already evens out a phase). Two phases against four: rnn256 ×0.997,
    /// gru256 ×0.999.
    static func sweep(batch B: Int, steps T: Int,
                      _ body: (_ b0: Int, _ n: Int, _ steps: Range<Int>, _ poll: (_ n: Int, _ step: Int) -> Int) -> Void) {
        let parts = sliceCount(batch: B)
        guard parts > 1, T > 0, let steal = rc_steal_create(Int32(parts)) else { body(0, B, 0..<T) { n, _ in n }; return }
        defer { rc_steal_destroy(steal) }
        let phase = max(4, (T + 3) / 4), quantum = B / parts >= 8 ? 4 : 1
        var cuts = (0...parts).map { B * $0 / parts }
        // Per slice and phase: row-steps swept and nanoseconds busy (stolen rows included).
        let rowSteps = UnsafeMutableBufferPointer<Int>.allocate(capacity: parts)
        let nanoseconds = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: parts)
        defer { rowSteps.deallocate(); nanoseconds.deallocate() }
        var s0 = 0, index = 0
        while s0 < T {
            let steps = s0..<min(T, s0 + phase)
            if let testCuts = sweepCutsForTesting { cuts = testCuts(index, parts, B) }
            let slices = cuts
            let slow = slowSliceForTesting
            Threading.parallel(parts) { part in
                var swept = 0
                var busy: UInt64 = 0
                func run(_ b0: Int, _ n: Int, _ range: Range<Int>, own: Bool) {
                    let start = DispatchTime.now().uptimeNanoseconds
                    rc_steal_begin(steal, Int32(part))
                    body(b0, n, range) { n, s in
                        if own, let slow, part == slow || s == range.lowerBound {
                            let until = DispatchTime.now().uptimeNanoseconds + 1_000_000
                            while DispatchTime.now().uptimeNanoseconds < until {}
                        }
                        let keep = rc_steal_poll(steal, Int32(part), b0, n, s, range.upperBound, quantum)
                        swept += keep
                        return keep
                    }
                    rc_steal_end(steal, Int32(part))
                    busy += DispatchTime.now().uptimeNanoseconds - start
                }
                run(slices[part], slices[part + 1] - slices[part], steps, own: true)
                var b0 = 0, n = 0, from = 0, end = 0
                while rc_steal_take(steal, Int32(part), quantum, &b0, &n, &from, &end) != 0 { run(b0, n, from..<end, own: false) }
                rowSteps[part] = max(1, swept)
                nanoseconds[part] = max(1, busy)
            }
            s0 = steps.upperBound
            index += 1
            // Rows per nanosecond of each slice; the new cut moves halfway toward equal times, on
            // multiples of 4 rows (a cut at a ragged row count costs a thin, slow row tile).
            let rates = (0..<parts).map { Double(rowSteps[$0]) / Double(steps.count) / Double(nanoseconds[$0]) }
            let total = rates.reduce(0, +)
            guard total > 0 else { continue }
            var edge = 0.0
            for p in 0..<(parts - 1) {
                edge += 0.5 * Double(slices[p + 1] - slices[p]) + 0.5 * Double(B) * rates[p] / total
                let cut = abs(edge - Double(slices[p + 1])) < Double(quantum) / 2 ? slices[p + 1]
                    : Int((edge / Double(quantum)).rounded()) * quantum
                cuts[p + 1] = min(max(cut, cuts[p] + 1), B - (parts - 1 - p))
            }
        }
    }

    /// Calls `body` with the weight_ih, weight_hh, bias_ih, bias_hh of parameter set `index` (l·R + r).
    private func withWeights<Result>(_ index: Int, _ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>) -> Result) -> Result {
        parameters[4 * index].value.data.withUnsafeBufferPointer { wih in
            parameters[4 * index + 1].value.data.withUnsafeBufferPointer { whh in
                parameters[4 * index + 2].value.data.withUnsafeBufferPointer { bih in
                    parameters[4 * index + 3].value.data.withUnsafeBufferPointer { bhh in
                        guard let a = wih.baseAddress, let b = whh.baseAddress, let c = bih.baseAddress, let d = bhh.baseAddress else {
                            fatalError("empty recurrent weights")
                        }
                        return body(a, b, c, d)
                    }
                }
            }
        }
    }

    /// Fills `lc` (whose initial slots already hold the initial state) for parameter set `index`.
    /// `input` is (T,B,D_in) time-major. The reverse direction visits t = T−1 … 0.
    ///
    /// Per step: one product h[t-1]·W_hhᵀ into a scratch block, then one fused pointwise kernel over
    /// the B rows (`rc_lstm_forward_x`, `rc_gru_forward_x`, `rc_rnn_forward_x`) that adds it to the
    /// step's input projection and the biases. With `lengths`, the kernel runs on the active rows
    /// only and the others copy their state forward.
    func forwardLayer(_ index: Int, input: UnsafePointer<Float>, inputWidth din: Int, batch B: Int, steps T: Int,
                              lengths: [Int]?, tokens: TokenInput?, cache lc: LayerCache) {
        let H = hiddenSize, GH = kind.gateCount * H
        // h[t-1] for time t is previous + t·B·H, h[t] is outputs + t·B·H (see LayerCache).
        let previous = lc.hiddens.pointer + lc.previousOffset, outputs = lc.hiddens.pointer + lc.outputOffset
        /// Rows of step t that advance: all of them, or (with lengths) those with t < length.
        func active(_ t: Int, _ b: Int) -> Bool { lengths.map { t < $0[b] } ?? true }
        withWeights(index) { wih, whh, bih, bhh in
            // b_ih + b_hh, for the cells whose biases simply add up (RNN, LSTM).
            let bias = LayerBuffer(GH)
            for j in 0..<GH { bias.pointer[j] = bih[j] + bhh[j] }
            // W_hhᵀ (H, G·H) packed once per call in the micro-kernel's panel layout: the per-step
            // product h[t-1]·W_hhᵀ then streams contiguous panels instead of repacking W_hh at
            // every step (same sums as an unpacked product).
            let whhT = LayerBuffer(GEMM.packedCount(k: H, n: GH), zeroed: false)
            GEMM.pack(transB: true, k: H, n: GH, b: whh, ldb: H, into: whhT.pointer)
            // The recurrence of different batch rows is independent: the rows are split into
            // slices that sweep the steps in parallel (`sweep`: a few phases, no synchronisation
            // per step), each with its own serial per-step product. A row's arithmetic does not
            // depend on its slice, so results are the same for any split.
            //
            // The per-step product goes to a scratch block (row b at b·G·H), never reading the input
            // projection back; the cell kernel adds the two: (x + h[t-1]·W_hhᵀ) + bias. x is the
            // projection stored in the gates (outputs for RNN) or, on tokens, row P[token] of the
            // folded table (see projectInput), so a folded layer never copies P's rows out.
            let scratch = LayerBuffer(B * GH, zeroed: false)
            let gates = lc.gates?.pointer, cells = lc.cells?.pointer, hiddenN = lc.hiddenN?.pointer
            let projection: UnsafeMutablePointer<Float>
            switch kind {
            case .rnnTanh, .rnnRelu: projection = outputs
            case .lstm, .gru:
                guard let gates else { fatalError("gate cache") }
                projection = gates
            }
            let table = Self.projectInput(rows: T * B, width: GH, input: input, inputWidth: din, tokens: tokens, weight: wih,
                                          into: projection)
            let x = table.map { UnsafePointer($0.pointer) }
            TokenInput.withIDs(tokens) { ids in
                RecurrentLayer.sweep(batch: B, steps: T) { b0, rows, steps, poll in
                    let hh = scratch.pointer + b0 * GH
                    var n = rows
                    for s in steps {
                        n = poll(n, s)
                        let t = lc.reverse ? T - 1 - s : s
                        let row = t * B + b0
                        let hPrev = previous + row * H, h = outputs + row * H
                        let rows = ids.map { $0 + row }
                        // LSTM and GRU over a projected input: the step's projection rows (the cell
                        // reads them next, from L3) asked for while the product runs.
                        let ahead = x == nil && kind != .rnnTanh && kind != .rnnRelu ? gates.map { UnsafeRawPointer($0 + row * GH) } : nil
                        GEMM.multiplyPacked(m: n, n: GH, k: H, a: hPrev, lda: H, packed: whhT.pointer, beta: 0, c: hh, ldc: GH,
                                            prefetching: ahead, bytes: n * GH * MemoryLayout<Float>.stride)
                        // The rows that advance: all, or (with lengths) one at a time; the others copy their state.
                        func step(_ b: Int, _ m: Int) {
                            let r = rows.map { $0 + b }
                            switch kind {
                            case .rnnTanh, .rnnRelu:
                                rc_rnn_forward_x(m, H, x, r, hh + b * GH, bias.pointer, h + b * H, kind == .rnnRelu ? 1 : 0)
                            case .lstm:
                                guard let gates, let cells else { fatalError("LSTM cache") }
                                rc_lstm_forward_x(m, H, x, r, hh + b * GH, bias.pointer, cells + lc.previousOffset + (row + b) * H,
                                                  gates + (row + b) * GH, cells + lc.outputOffset + (row + b) * H, h + b * H)
                            case .gru:
                                guard let gates, let hiddenN else { fatalError("GRU cache") }
                                rc_gru_forward_x(m, H, x, r, hh + b * GH, bih, bhh, hPrev + b * H, gates + (row + b) * GH,
                                                 hiddenN + (row + b) * H, h + b * H)
                            }
                        }
                        guard lengths != nil else { step(0, n); continue }
                        for b in 0..<n {
                            if active(t, b0 + b) { step(b, 1); continue }
                            (h + b * H).update(from: hPrev + b * H, count: H)
                            if let cells {
                                (cells + lc.outputOffset + (row + b) * H).update(from: cells + lc.previousOffset + (row + b) * H, count: H)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The input projection of all steps at once: `into` (rows, width) = x·W_ihᵀ, with x the
    /// (rows, D) `input`; or, with `tokens`, the product taken once over the vocabulary,
    /// P = E·W_ihᵀ (V, width), returned instead: row t·B + b's projection is P[token], which the
    /// cell kernels read in place (`into` is not written). Each element is the same sum over D in
    /// the same order either way (the GEMM's sums do not depend on M), so both give the same bits;
    /// the folded one costs V rows instead of T·B.
    private static func projectInput(rows: Int, width: Int, input: UnsafePointer<Float>, inputWidth din: Int,
                                     tokens: TokenInput?, weight wih: UnsafePointer<Float>,
                                     into c: UnsafeMutablePointer<Float>) -> LayerBuffer? {
        guard let tokens else {
            GEMM.multiply(transA: false, transB: true, m: rows, n: width, k: din, a: input, lda: din, b: wih, ldb: din,
                          beta: 0, c: c, ldc: width)
            return nil
        }
        let V = tokens.embedding.count
        let table = LayerBuffer(V * width, zeroed: false)
        tokens.embedding.weight.value.data.withUnsafeBufferPointer { e in
            guard let ep = e.baseAddress else { fatalError("empty embedding") }
            GEMM.multiply(transA: false, transB: true, m: V, n: width, k: din, a: ep, lda: din, b: wih, ldb: din,
                          beta: 0, c: table.pointer, ldc: width)
        }
        return table
    }

    /// Backward of a folded input projection (see `projectInput`): the gate gradients of all rows
    /// are first summed per token, S[v] = Σ_{rows with token v} dPre[row] (V, G·H), then
    /// dW_ih += Sᵀ·E, rowSum += Σ_v S[v] (the bias gradient) and dE += S·W_ih, which are the same
    /// sums as dPreᵀ·x, Σ rows and the embedding's scatter of dPre·W_ih, grouped by token.
    /// With `tail`, dPre's columns from `tail.from` on are read from `tail.base` (row stride `tail.ld`)
    /// instead (GRU's dn).
    private static func foldedInputBackward(rows: Int, width GH: Int, dPre: UnsafePointer<Float>,
                                            tail: (from: Int, base: UnsafePointer<Float>, ld: Int)?, tokens: TokenInput,
                                            weight wih: UnsafePointer<Float>, dWeight dwih: UnsafeMutablePointer<Float>,
                                            rowSum: UnsafeMutablePointer<Float>) {
        let V = tokens.embedding.count, E = tokens.embedding.dimension
        // The rows in two halves (fixed by the shape, not by the thread count), each summed in
        // row order into its own (V, G·H) block, the second then added to the first: the same sums
        // for any thread count. Halves of whole rows read each dPre row contiguously, where a split
        // by columns read half of every row on each thread: C harness, 5000 rows of 256 floats from
        // L3, 150 µs a thread by columns against 211 µs for all the rows on one.
        let halves = rows >= 1024 ? 2 : 1
        let sums = LayerBuffer(halves * V * GH)
        tokens.timeMajor.withUnsafeBufferPointer { ids in
            Threading.parallel(halves) { part in
                let r0 = rows * part / halves, r1 = rows * (part + 1) / halves
                let out = sums.pointer + part * V * GH, id = ids.baseAddress.map { $0 + r0 }
                let split = tail?.from ?? GH
                rc_scatter_add_rows(r1 - r0, split, dPre + r0 * GH, GH, id, out, GH)
                if let tail, split < GH {
                    rc_scatter_add_rows(r1 - r0, GH - split, tail.base + r0 * tail.ld, tail.ld, id, out + split, GH)
                }
            }
        }
        if halves == 2 { rc_add_rows(1, V * GH, sums.pointer + V * GH, V * GH, sums.pointer) }
        rc_add_rows(V, GH, sums.pointer, GH, rowSum)
        tokens.embedding.weight.value.data.withUnsafeBufferPointer { e in
            guard let ep = e.baseAddress else { fatalError("empty embedding") }
            GEMM.multiply(transA: true, transB: false, m: GH, n: E, k: V, a: sums.pointer, lda: GH, b: ep, ldb: E,
                          beta: 1, c: dwih, ldc: E)
        }
        tokens.embedding.weight.grad.data.withUnsafeMutableBufferPointer { de in
            guard let dep = de.baseAddress else { fatalError("empty embedding") }
            GEMM.multiply(transA: false, transB: false, m: V, n: E, k: GH, a: sums.pointer, lda: GH, b: wih, ldb: E,
                          beta: 1, c: dep, ldc: E)
        }
    }

    /// Backward through parameter set `index`, sweeping time opposite to its forward pass.
    ///
    /// In: `dOut` gradient on the outputs, time t batch row b at `dOut + t·dOutStep + b·dOutRow`;
    /// `dhNext`/`dcNext` (B,H) gradient on the final state. Out: `dhNext`/`dcNext` hold the gradient
    /// on the initial state (without `initialStateGradient`, dhNext holds no meaningful value: the
    /// last step's product through W_hh is skipped); `dInput` (T,B,D_in) gets (or, with
    /// `accumulate`, adds) the gradient on the input; the parameter gradients are accumulated.
    ///
    ///     for t = T-1 … 0:  dh = dOut[t] + dhNext;  cell backward → dPre[t];  dhNext = direct + dPre_hh[t]·W_hh
    ///     then  dW_ih += dPreᵀ·x,  dW_hh += dPre_hhᵀ·h[t-1],  db += Σ rows,  dx (+)= dPre·W_ih
    private func backwardLayer(_ index: Int, cache lc: LayerCache, input: UnsafePointer<Float>, inputWidth din: Int,
                               batch B: Int, steps T: Int, lengths: [Int]?, dOut: UnsafePointer<Float>, dOutStep: Int, dOutRow: Int,
                               dhNext: UnsafeMutablePointer<Float>, dcNext: UnsafeMutablePointer<Float>,
                               dInput: UnsafeMutablePointer<Float>, accumulate: Bool, inPlace: Bool, dPreInDOut: Bool,
                               tokens: TokenInput?, initialStateGradient: Bool = true,
                               recordHidden: UnsafeMutablePointer<Float>? = nil) {
        let H = hiddenSize, GH = kind.gateCount * H
        let previous = lc.hiddens.pointer + lc.previousOffset, outputs = lc.hiddens.pointer + lc.outputOffset
        // Gradients w.r.t. the input-side and hidden-side pre-activations; they differ only for GRU.
        // With `inPlace` (LSTM, GRU), the cell kernels write dPre over the cached gates of the step
        // (each unit reads its gates before writing; no later step reads them). Saves a (T,B,G·H)
        // buffer; the cache is spent afterwards.
        // With `dPreInDOut` (RNN, G·H = H, dOut contiguous (T,B,H) and spent after this sweep) dPre is
        // written over dOut instead: the cell kernel reads each element before writing it.
        let overwrite = inPlace && lc.gates != nil
        let dPreOwned = overwrite || dPreInDOut ? nil : LayerBuffer(T * B * GH, zeroed: false)
        guard let dPreBase = dPreOwned?.pointer ?? (dPreInDOut ? UnsafeMutablePointer(mutating: dOut) : lc.gates?.pointer)
        else { fatalError("no dPre storage") }
        // GRU: dPre holds the hidden-side gradients [dr, dz, dn⊙r] in the sweep (what the per-step
        // product and dW_hh read); the input side's [dr, dz, dn] shares r and z with them, so only
        // its n part dn (T,B,H) is stored apart: over the cached W_hn·h + b_hn when consuming (the
        // cell reads each element first), else in its own buffer. dW_ih's n rows and dx's n part are
        // then products over dn where it is (on tokens the folded backward reads it there too).
        let dnOwned = kind == .gru && !overwrite ? LayerBuffer(T * B * H, zeroed: false) : nil
        let dnBase = kind == .gru ? dnOwned?.pointer ?? lc.hiddenN?.pointer : nil
        // Per-row running sums of dPre (not needed on tokens for RNN and LSTM: the folded backward
        // sums per token) and, for GRU off tokens, of dn over the steps, added while each step's rows
        // are hot; the bias gradients are then sums of B rows instead of a pass over T·B rows. Row
        // b's steps are added in the loop's order, then the rows in order, the same for any slicing
        // and threads.
        let rowSums = tokens == nil || kind == .gru ? LayerBuffer(B * GH) : nil
        let rowSumsN = kind == .gru && tokens == nil ? LayerBuffer(B * H) : nil
        // RNN and LSTM: h[t−1] reaches the step only through the gates, so the cell kernels only
        // read dhNext and the per-step product writes dPre·W_hh over it (beta 0: no C tile read
        // back, no zeros stored by the cells). GRU's cell writes the direct part z⊙dh, which the
        // product adds to.
        let gatesOnly = kind != .gru
        withWeights(index) { wih, whh, _, _ in
            // W_hh (G·H, H) packed once for the per-step products dPre_hh[t]·W_hh.
            let whhPacked = LayerBuffer(GEMM.packedCount(k: GH, n: H), zeroed: false)
            GEMM.pack(transB: false, k: GH, n: H, b: whh, ldb: H, into: whhPacked.pointer)
            // Row slices sweep in parallel, as in forwardLayer: rows [b0, b0 + n) of the phase's steps.
            RecurrentLayer.sweep(batch: B, steps: T) { b0, rows, steps, poll in
                var n = rows
                for s in steps {
                    n = poll(n, s)
                    let t = lc.reverse ? s : T - 1 - s
                    let dp = dPreBase + t * B * GH
                    let dn = dnBase.map { $0 + t * B * H }
                    // 1. The fused cell backward over rows [r0, r0 + m): dh = dOut[t] + dhNext, then
                    //    dPre[t] and the direct part of dh[t-1] (into dhNext), dc[t-1] (into dcNext).
                    func cellBackward(_ r0: Int, _ m: Int) {
                        let row = t * B + r0
                        let up = dOut + t * dOutStep + r0 * dOutRow
                        switch kind {
                        case .rnnTanh, .rnnRelu:
                            // With the per-row sums added in the same pass (below for LSTM).
                            if let rowSums {
                                rc_rnn_backward_sums(m, H, outputs + row * H, up, dOutRow, dhNext + r0 * H, dp + r0 * GH,
                                                     kind == .rnnRelu ? 1 : 0, rowSums.pointer + r0 * GH)
                            } else {
                                rc_rnn_backward(m, H, outputs + row * H, up, dOutRow, dhNext + r0 * H, dp + r0 * GH,
                                                kind == .rnnRelu ? 1 : 0)
                            }
                        case .lstm:
                            guard let gates = lc.gates?.pointer, let cells = lc.cells?.pointer else { fatalError("LSTM cache") }
                            rc_lstm_backward(m, H, gates + row * GH, cells + lc.previousOffset + row * H,
                                             cells + lc.outputOffset + row * H, up, dOutRow, dhNext + r0 * H,
                                             dcNext + r0 * H, dp + r0 * GH)
                        case .gru:
                            guard let gates = lc.gates?.pointer, let hiddenN = lc.hiddenN?.pointer, let dn
                            else { fatalError("GRU cache") }
                            // With the per-row bias sums added in the same pass (below for the others).
                            if let rowSums {
                                rc_gru_backward_sums(m, H, gates + row * GH, hiddenN + row * H, previous + row * H, up,
                                                     dOutRow, dhNext + r0 * H, dp + r0 * GH, dn + r0 * H,
                                                     rowSums.pointer + r0 * GH, rowSumsN.map { $0.pointer + r0 * H })
                            } else {
                                rc_gru_backward(m, H, gates + row * GH, hiddenN + row * H, previous + row * H, up, dOutRow,
                                                dhNext + r0 * H, dp + r0 * GH, dn + r0 * H)
                            }
                        }
                    }
                    if let lengths {
                        for b in b0..<(b0 + n) {
                            if t < lengths[b] {
                                cellBackward(b, 1)
                                // The product adds into this row below (beta 1, for the padding rows).
                                if gatesOnly { (dhNext + b * H).update(repeating: 0, count: H) }
                                continue
                            }
                            // Padding step: the state passed through unchanged, so dh and dc pass through too.
                            (dp + b * GH).update(repeating: 0, count: GH)
                            dn.map { ($0 + b * H).update(repeating: 0, count: H) }
                        }
                    } else {
                        cellBackward(b0, n)
                    }
                    if kind == .lstm, let rowSums { rc_add_rows(1, n * GH, dp + b0 * GH, n * GH, rowSums.pointer + b0 * GH) }
                    // 2. Through the recurrent product: dh[t-1] += dPre_hh[t]·W_hh   (n,G·H)·(G·H,H); for
                    //    RNN and LSTM (no direct part) written over dh[t], which the cells have read.
                    //    At the loop's last step dh[t-1] is the initial state's gradient: skipped when
                    //    the caller drops it.
                    if s == T - 1 && !initialStateGradient { continue }
                    GEMM.multiplyPacked(m: n, n: H, k: GH, a: dp + b0 * GH, lda: GH, packed: whhPacked.pointer,
                                        beta: gatesOnly && lengths == nil ? 0 : 1, c: dhNext + b0 * H, ldc: H)
                    recordHidden.map { ($0 + (t * B + b0) * H).update(from: dhNext + b0 * H, count: n * H) }
                }
            }
            // 3. All steps at once: the weight and bias gradients and dx.
            parameters[4 * index].grad.data.withUnsafeMutableBufferPointer { dWih in
                parameters[4 * index + 1].grad.data.withUnsafeMutableBufferPointer { dWhh in
                    parameters[4 * index + 2].grad.data.withUnsafeMutableBufferPointer { dBih in
                        parameters[4 * index + 3].grad.data.withUnsafeMutableBufferPointer { dBhh in
                            guard let dwih = dWih.baseAddress, let dwhh = dWhh.baseAddress,
                                  let dbih = dBih.baseAddress, let dbhh = dBhh.baseAddress else { fatalError("empty gradients") }
                            // Σ rows of dPre: db_ih, and db_hh too for RNN and LSTM (the same sum, taken once);
                            // for GRU db_hh, whose r and z parts are db_ih's too.
                            let biasSum = LayerBuffer(GH)
                            if let dnBase, let rowSums {
                                // GRU. Off tokens with D_in = H, the r and z rows of dW_ih and dW_hh
                                // share dPre's r and z columns: one pair product packs them once for
                                // both; then the n rows, from dn⊙r (dPre's n columns) and dn.
                                let pairs = tokens == nil && din == H
                                if pairs {
                                    GEMM.multiplyPair(transA: true, m: 2 * H, n: H, k: T * B, a: dPreBase, lda: GH,
                                                      b1: input, ldb1: din, b2: previous, ldb2: H, beta: 1,
                                                      c1: dwih, ldc1: din, c2: dwhh, ldc2: H)
                                    GEMM.multiply(transA: true, transB: false, m: H, n: H, k: T * B, a: dPreBase + 2 * H, lda: GH,
                                                  b: previous, ldb: H, beta: 1, c: dwhh + 2 * H * H, ldc: H)
                                } else {
                                    GEMM.multiply(transA: true, transB: false, m: GH, n: H, k: T * B, a: dPreBase, lda: GH,
                                                  b: previous, ldb: H, beta: 1, c: dwhh, ldc: H)
                                }
                                rc_add_rows(B, GH, rowSums.pointer, GH, biasSum.pointer)
                                rc_add_rows(1, GH, biasSum.pointer, GH, dbhh)
                                if let tokens {
                                    let inputSum = LayerBuffer(GH)
                                    let tail: (from: Int, base: UnsafePointer<Float>, ld: Int)
                                    tail = (from: 2 * H, base: UnsafePointer(dnBase), ld: H)
                                    Self.foldedInputBackward(rows: T * B, width: GH, dPre: dPreBase, tail: tail,
                                                             tokens: tokens, weight: wih, dWeight: dwih, rowSum: inputSum.pointer)
                                    rc_add_rows(1, GH, inputSum.pointer, GH, dbih)
                                } else {
                                    // The input side's rows: r and z from dPre (unless the pair did
                                    // them), n from dn where it is.
                                    if !pairs {
                                        GEMM.multiply(transA: true, transB: false, m: 2 * H, n: din, k: T * B, a: dPreBase, lda: GH,
                                                      b: input, ldb: din, beta: 1, c: dwih, ldc: din)
                                    }
                                    GEMM.multiply(transA: true, transB: false, m: H, n: din, k: T * B, a: dnBase, lda: H,
                                                  b: input, ldb: din, beta: 1, c: dwih + 2 * H * din, ldc: din)
                                    rc_add_rows(1, 2 * H, biasSum.pointer, GH, dbih)
                                    if let rowSumsN { rc_add_rows(B, H, rowSumsN.pointer, H, dbih + 2 * H) }
                                }
                                return
                            }
                            // dW_ih and dW_hh share dPreᵀ (RNN and LSTM layers above the first):
                            // one pair product packs it once for both, with the bits of two products.
                            let pairs = tokens == nil && din == H
                            if let tokens {
                                Self.foldedInputBackward(rows: T * B, width: GH, dPre: dPreBase, tail: nil, tokens: tokens,
                                                         weight: wih, dWeight: dwih, rowSum: biasSum.pointer)
                            } else {
                                if pairs {
                                    GEMM.multiplyPair(transA: true, m: GH, n: H, k: T * B, a: dPreBase, lda: GH,
                                                      b1: input, ldb1: din, b2: previous, ldb2: H, beta: 1,
                                                      c1: dwih, ldc1: din, c2: dwhh, ldc2: H)
                                } else {
                                    GEMM.multiply(transA: true, transB: false, m: GH, n: din, k: T * B, a: dPreBase, lda: GH,
                                                  b: input, ldb: din, beta: 1, c: dwih, ldc: din)
                                }
                                if let rowSums { rc_add_rows(B, GH, rowSums.pointer, GH, biasSum.pointer) }
                            }
                            rc_add_rows(1, GH, biasSum.pointer, GH, dbih)
                            if !pairs {
                                GEMM.multiply(transA: true, transB: false, m: GH, n: H, k: T * B, a: dPreBase, lda: GH,
                                              b: previous, ldb: H, beta: 1, c: dwhh, ldc: H)
                            }
                            rc_add_rows(1, GH, biasSum.pointer, GH, dbhh)
                        }
                    }
                }
            }
            if tokens == nil, kind == .gru, let dnBase {
                // dx = [dr, dz]·W_ih[r, z] + dn·W_in: dPre's n columns hold dn⊙r (the hidden side's).
                GEMM.multiply(transA: false, transB: false, m: T * B, n: din, k: 2 * H, a: dPreBase, lda: GH, b: wih, ldb: din,
                              beta: accumulate ? 1 : 0, c: dInput, ldc: din)
                GEMM.multiply(transA: false, transB: false, m: T * B, n: din, k: H, a: dnBase, lda: H, b: wih + 2 * H * din,
                              ldb: din, beta: 1, c: dInput, ldc: din)
            } else if tokens == nil {
                GEMM.multiply(transA: false, transB: false, m: T * B, n: din, k: GH, a: dPreBase, lda: GH, b: wih, ldb: din,
                              beta: accumulate ? 1 : 0, c: dInput, ldc: din)
            }
        }
    }
}
