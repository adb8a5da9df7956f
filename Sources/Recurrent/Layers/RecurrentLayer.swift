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
///
/// Shapes (B batch, T time, D input, H hidden, L layers, G gates = `kind.gateCount`):
/// x (B,T,D) → output (B,T,H) of the last layer; state hidden/cell (L,B,H);
/// weight_ih_l0 (G·H,D), weight_ih_lk (G·H,H) for k > 0, weight_hh_lk (G·H,H), bias_*_lk (G·H).
///
/// Cost: per layer one (T·B × D_in × G·H) input projection before the time loop, one
/// (B × H × G·H) product per step, and in backward one product per step (dh·W_hh) plus three after
/// the sweep (dW_ih, dW_hh, dx). Memory: see `RecurrentCache` (≈ 6·T·B·H floats per LSTM layer).
///
/// Variable-length batches (`lengths`) follow `pack_padded_sequence`: steps at or past a
/// sequence's length leave its state unchanged and output zeros, so the final state is the one at
/// its last real step.
public final class RecurrentLayer: ParameterizedModule {
    public let kind: CellKind
    public let inputSize: Int
    public let hiddenSize: Int
    public let numLayers: Int
    /// Dropout probability on the outputs of every layer but the last, training only.
    public var dropout: Float
    /// weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, weight_ih_l1, … (PyTorch's order).
    public var parameters: [Parameter]

    /// Every parameter drawn from U(−1/√H, 1/√H) in `parameters` order, as PyTorch does.
    public init(kind: CellKind, inputSize: Int, hiddenSize: Int, numLayers: Int, dropout: Float = 0, rng: inout SeededRNG) {
        precondition(inputSize > 0 && hiddenSize > 0 && numLayers > 0, "recurrent layer needs positive sizes")
        precondition(dropout >= 0 && dropout <= 1, "dropout \(dropout) outside [0, 1]")
        self.kind = kind
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.dropout = dropout
        let GH = kind.gateCount * hiddenSize
        let bound = 1 / Float(hiddenSize).squareRoot()
        func uniform(_ shape: [Int]) -> Tensor {
            var t = Tensor(shape: shape)
            for i in 0..<t.count { t.data[i] = rng.uniform(-bound, bound) }
            return t
        }
        var ps: [Parameter] = []
        for l in 0..<numLayers {
            let din = l == 0 ? inputSize : hiddenSize
            ps.append(Parameter(name: "weight_ih_l\(l)", value: uniform([GH, din])))
            ps.append(Parameter(name: "weight_hh_l\(l)", value: uniform([GH, hiddenSize])))
            ps.append(Parameter(name: "bias_ih_l\(l)", value: uniform([GH])))
            ps.append(Parameter(name: "bias_hh_l\(l)", value: uniform([GH])))
        }
        parameters = ps
    }

    /// Runs every layer over the whole sequence.
    ///
    /// - Parameters:
    ///   - x: (B,T,D).
    ///   - state: the initial state (L,B,H) (and cell for LSTM); nil means zeros.
    ///   - mode: `.training` applies dropout and returns the cache; `.inference` returns nil.
    ///   - rng: draws the dropout masks (untouched when no dropout applies).
    ///   - lengths: optional per-sequence lengths (B values in 0...T); see the type's doc.
    /// - Returns: output (B,T,H) of the last layer (zero past each length), the final state (L,B,H).
    public func forward(_ x: Tensor, state: RecurrentState?, mode: ForwardMode, rng: inout SeededRNG,
                        lengths: [Int]? = nil) -> (output: Tensor, state: RecurrentState, cache: RecurrentCache?) {
        precondition(x.shape.count == 3 && x.shape[2] == inputSize, "recurrent layer expects x (B,T,\(inputSize)), got \(x.shape)")
        let B = x.shape[0], T = x.shape[1], D = inputSize, H = hiddenSize, L = numLayers
        if let state {
            precondition(state.hidden.shape == [L, B, H], "initial hidden state must be \([L, B, H]), got \(state.hidden.shape)")
            if kind.hasCellState {
                precondition(state.cell?.shape == [L, B, H], "LSTM initial cell state must be \([L, B, H])")
            }
        }
        if let lengths {
            precondition(lengths.count == B && lengths.allSatisfy { $0 >= 0 && $0 <= T }, "lengths must be \(B) values in 0...\(T)")
        }
        let input = LayerBuffer(T * B * D)
        x.data.withUnsafeBufferPointer { xb in
            if let xp = xb.baseAddress { Tensor.transposeBatchTime(xp, to: input.pointer, outer: B, inner: T, features: D) }
        }
        let cache = RecurrentCache(batch: B, steps: T, lengths: lengths, input: input)
        var finalHidden = Tensor(shape: [L, B, H])
        var finalCell: Tensor? = kind.hasCellState ? Tensor(shape: [L, B, H]) : nil
        // `previous` owns the buffer the next layer reads; the lifetimes are explicit because the
        // layers see raw pointers into these objects.
        var previous: LayerCache?
        for l in 0..<L {
            let lc = LayerCache(kind: kind, batch: B, steps: T, hidden: H)
            // Initial state into row 0 of hiddens / cells.
            if let h0 = state?.hidden {
                h0.data.withUnsafeBufferPointer { p in
                    if let base = p.baseAddress { lc.hiddens.pointer.update(from: base + l * B * H, count: B * H) }
                }
            }
            if let cells = lc.cells, let c0 = state?.cell {
                c0.data.withUnsafeBufferPointer { p in
                    if let base = p.baseAddress { cells.pointer.update(from: base + l * B * H, count: B * H) }
                }
            }
            withExtendedLifetime((cache, previous)) {
                let layerInput = previous?.nextInput(batch: B, hidden: H) ?? UnsafePointer(input.pointer)
                forwardLayer(l, input: layerInput, inputWidth: l == 0 ? D : H, batch: B, steps: T, lengths: lengths, cache: lc)
            }
            finalHidden.data.replaceSubrange(l * B * H ..< (l + 1) * B * H, with: lc.hiddens.array(offset: T * B * H, count: B * H))
            if let cells = lc.cells {
                finalCell?.data.replaceSubrange(l * B * H ..< (l + 1) * B * H, with: cells.array(offset: T * B * H, count: B * H))
            }
            if mode == .training && dropout > 0 && l < L - 1 {
                let mask = LayerBuffer(copying: Dropout.makeMask(count: T * B * H, p: dropout, rng: &rng))
                let dropped = LayerBuffer(T * B * H)
                let h = lc.hiddens.pointer + B * H
                for i in 0..<(T * B * H) { dropped.pointer[i] = h[i] * mask.pointer[i] }
                lc.dropoutMask = mask
                lc.dropped = dropped
            }
            if mode == .training { cache.layers.append(lc) }
            previous = lc
        }
        var output = Tensor(shape: [B, T, H])
        if let top = previous {
            output.data.withUnsafeMutableBufferPointer { ob in
                guard let op = ob.baseAddress else { return }
                Tensor.transposeBatchTime(top.hiddens.pointer + B * H, to: op, outer: T, inner: B, features: H)
                if let lengths {
                    for b in 0..<B where lengths[b] < T {
                        (op + (b * T + lengths[b]) * H).update(repeating: 0, count: (T - lengths[b]) * H)
                    }
                }
            }
        }
        return (output, RecurrentState(hidden: finalHidden, cell: finalCell), mode == .training ? cache : nil)
    }

    /// Backpropagates through the whole stack, accumulating (+=) into every parameter's `grad`.
    ///
    /// - Parameters:
    ///   - dOutput: gradient on the output (B,T,H); nil means zeros. Entries past a length are ignored.
    ///   - dState: gradient on the final state (L,B,H); nil means zeros.
    ///   - cache: from the `.training` forward pass of this layer, with the parameters unchanged since.
    /// - Returns: dInput (B,T,D) and the gradient on the initial state (L,B,H).
    public func backward(dOutput: Tensor?, dState: RecurrentState?, cache: RecurrentCache) -> (dInput: Tensor, dInitialState: RecurrentState) {
        let B = cache.batch, T = cache.steps, D = inputSize, H = hiddenSize, L = numLayers
        precondition(cache.layers.count == L, "the cache does not come from a training forward pass of this layer")
        if let dOutput { precondition(dOutput.shape == [B, T, H], "dOutput must be \([B, T, H]), got \(dOutput.shape)") }
        if let dState {
            precondition(dState.hidden.shape == [L, B, H], "dState.hidden must be \([L, B, H]), got \(dState.hidden.shape)")
            if let cell = dState.cell { precondition(cell.shape == [L, B, H], "dState.cell must be \([L, B, H])") }
        }
        // Gradient on the current layer's outputs, time-major (T,B,H).
        var dOut = LayerBuffer(T * B * H)
        if let dOutput {
            dOutput.data.withUnsafeBufferPointer { p in
                if let base = p.baseAddress { Tensor.transposeBatchTime(base, to: dOut.pointer, outer: B, inner: T, features: H) }
            }
        }
        var dInitialHidden = Tensor(shape: [L, B, H])
        var dInitialCell: Tensor? = kind.hasCellState ? Tensor(shape: [L, B, H]) : nil
        var dInput = Tensor(shape: [B, T, D])
        let dhNext = LayerBuffer(B * H)
        let dcNext = LayerBuffer(B * H)
        for l in (0..<L).reversed() {
            let lc = cache.layers[l]
            let din = l == 0 ? D : H
            let input = l == 0 ? UnsafePointer(cache.input.pointer) : cache.layers[l - 1].nextInput(batch: B, hidden: H)
            dhNext.pointer.update(repeating: 0, count: B * H)
            dcNext.pointer.update(repeating: 0, count: B * H)
            dState?.hidden.data.withUnsafeBufferPointer { p in
                if let base = p.baseAddress { dhNext.pointer.update(from: base + l * B * H, count: B * H) }
            }
            dState?.cell?.data.withUnsafeBufferPointer { p in
                if let base = p.baseAddress { dcNext.pointer.update(from: base + l * B * H, count: B * H) }
            }
            let dIn = LayerBuffer(T * B * din)
            withExtendedLifetime((dOut, dIn, dhNext, dcNext)) {
                backwardLayer(l, cache: lc, input: input, inputWidth: din, batch: B, steps: T, lengths: cache.lengths,
                              dOut: UnsafePointer(dOut.pointer), dhNext: dhNext.pointer, dcNext: dcNext.pointer, dInput: dIn.pointer)
            }
            dInitialHidden.data.replaceSubrange(l * B * H ..< (l + 1) * B * H, with: dhNext.array(count: B * H))
            if kind.hasCellState {
                dInitialCell?.data.replaceSubrange(l * B * H ..< (l + 1) * B * H, with: dcNext.array(count: B * H))
            }
            if l > 0 {
                if let mask = cache.layers[l - 1].dropoutMask {
                    for i in 0..<(T * B * H) { dIn.pointer[i] *= mask.pointer[i] }
                }
                dOut = dIn
            } else {
                dInput.data.withUnsafeMutableBufferPointer { p in
                    if let base = p.baseAddress { Tensor.transposeBatchTime(dIn.pointer, to: base, outer: T, inner: B, features: D) }
                }
            }
        }
        return (dInput, RecurrentState(hidden: dInitialHidden, cell: dInitialCell))
    }

    // MARK: One layer

    /// Calls `body` with layer l's weight_ih, weight_hh, bias_ih, bias_hh.
    private func withWeights<R>(_ l: Int, _ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>) -> R) -> R {
        parameters[4 * l].value.data.withUnsafeBufferPointer { wih in
            parameters[4 * l + 1].value.data.withUnsafeBufferPointer { whh in
                parameters[4 * l + 2].value.data.withUnsafeBufferPointer { bih in
                    parameters[4 * l + 3].value.data.withUnsafeBufferPointer { bhh in
                        guard let a = wih.baseAddress, let b = whh.baseAddress, let c = bih.baseAddress, let d = bhh.baseAddress else {
                            preconditionFailure("empty recurrent weights")
                        }
                        return body(a, b, c, d)
                    }
                }
            }
        }
    }

    /// Fills `cache` (whose hiddens[0] / cells[0] already hold the initial state) for layer l.
    /// `input` is (T,B,D_in) time-major.
    private func forwardLayer(_ l: Int, input: UnsafePointer<Float>, inputWidth din: Int, batch B: Int, steps T: Int,
                              lengths: [Int]?, cache lc: LayerCache) {
        let H = hiddenSize, GH = kind.gateCount * H
        let hiddens = lc.hiddens.pointer
        withWeights(l) { wih, whh, bih, bhh in
            switch kind {
            case .rnnTanh, .rnnRelu:
                // Pre-activations straight into h[0..T-1]: (T·B, H) = x·W_ihᵀ + b_ih + b_hh.
                let pre = hiddens + B * H
                for r in 0..<(T * B) { for j in 0..<H { pre[r * H + j] = bih[j] + bhh[j] } }
                GEMM.multiply(transA: false, transB: true, m: T * B, n: H, k: din, a: input, lda: din, b: wih, ldb: din,
                              beta: 1, c: pre, ldc: H)
                let relu = kind == .rnnRelu
                for t in 0..<T {
                    let hPrev = hiddens + t * B * H, h = hPrev + B * H
                    GEMM.multiply(transA: false, transB: true, m: B, n: H, k: H, a: hPrev, lda: H, b: whh, ldb: H,
                                  beta: 1, c: h, ldc: H)
                    for b in 0..<B {
                        if let lengths, t >= lengths[b] {
                            (h + b * H).update(from: hPrev + b * H, count: H)
                        } else {
                            CellMath.rnnForward(h + b * H, relu: relu, H: H)
                        }
                    }
                }
            case .lstm:
                guard let gates = lc.gates?.pointer, let cells = lc.cells?.pointer else { preconditionFailure("LSTM cache") }
                for r in 0..<(T * B) { for j in 0..<GH { gates[r * GH + j] = bih[j] + bhh[j] } }
                GEMM.multiply(transA: false, transB: true, m: T * B, n: GH, k: din, a: input, lda: din, b: wih, ldb: din,
                              beta: 1, c: gates, ldc: GH)
                for t in 0..<T {
                    let hPrev = hiddens + t * B * H, h = hPrev + B * H
                    let cPrev = cells + t * B * H, c = cPrev + B * H
                    let g = gates + t * B * GH
                    GEMM.multiply(transA: false, transB: true, m: B, n: GH, k: H, a: hPrev, lda: H, b: whh, ldb: H,
                                  beta: 1, c: g, ldc: GH)
                    for b in 0..<B {
                        if let lengths, t >= lengths[b] {
                            (h + b * H).update(from: hPrev + b * H, count: H)
                            (c + b * H).update(from: cPrev + b * H, count: H)
                        } else {
                            CellMath.lstmForward(gates: g + b * GH, cPrev: cPrev + b * H, cOut: c + b * H, hOut: h + b * H, H: H)
                        }
                    }
                }
            case .gru:
                guard let gates = lc.gates?.pointer, let hiddenN = lc.hiddenN?.pointer else { preconditionFailure("GRU cache") }
                for r in 0..<(T * B) { (gates + r * GH).update(from: bih, count: GH) }
                GEMM.multiply(transA: false, transB: true, m: T * B, n: GH, k: din, a: input, lda: din, b: wih, ldb: din,
                              beta: 1, c: gates, ldc: GH)
                let hh = LayerBuffer(B * GH)  // W_hh h[t-1], reused every step
                for t in 0..<T {
                    let hPrev = hiddens + t * B * H, h = hPrev + B * H
                    let g = gates + t * B * GH, hn = hiddenN + t * B * H
                    GEMM.multiply(transA: false, transB: true, m: B, n: GH, k: H, a: hPrev, lda: H, b: whh, ldb: H,
                                  beta: 0, c: hh.pointer, ldc: GH)
                    for b in 0..<B {
                        if let lengths, t >= lengths[b] {
                            (h + b * H).update(from: hPrev + b * H, count: H)
                        } else {
                            CellMath.gruForward(gates: g + b * GH, hh: hh.pointer + b * GH, bhh: bhh, hPrev: hPrev + b * H,
                                                hn: hn + b * H, hOut: h + b * H, H: H)
                        }
                    }
                }
            }
        }
    }

    /// Backward through layer l.
    ///
    /// In: `dOut` (T,B,H) gradient on the outputs, `dhNext`/`dcNext` (B,H) gradient on the final
    /// state. Out: `dhNext`/`dcNext` hold the gradient on the initial state, `dInput` (T,B,D_in)
    /// the gradient on the input; the parameter gradients are accumulated.
    ///
    ///     for t = T-1 … 0:  dh = dOut[t] + dhNext;  cell backward → dPre[t];  dhNext = direct + dPre_hh[t]·W_hh
    ///     then  dW_ih += dPreᵀ·x,  dW_hh += dPre_hhᵀ·h[-1..T-2],  db += Σ rows,  dx = dPre·W_ih
    private func backwardLayer(_ l: Int, cache lc: LayerCache, input: UnsafePointer<Float>, inputWidth din: Int,
                               batch B: Int, steps T: Int, lengths: [Int]?, dOut: UnsafePointer<Float>,
                               dhNext: UnsafeMutablePointer<Float>, dcNext: UnsafeMutablePointer<Float>,
                               dInput: UnsafeMutablePointer<Float>) {
        let H = hiddenSize, GH = kind.gateCount * H
        let hiddens = lc.hiddens.pointer
        // Gradients w.r.t. the input-side and hidden-side pre-activations; they differ only for GRU.
        let dPre = LayerBuffer(T * B * GH)
        let dPreHidden = kind == .gru ? LayerBuffer(T * B * GH) : dPre
        let dh = LayerBuffer(H)
        withWeights(l) { wih, whh, _, _ in
            for t in (0..<T).reversed() {
                let dp = dPre.pointer + t * B * GH, dph = dPreHidden.pointer + t * B * GH
                // 1. Per row: total dh, the cell's backward, the direct part of dh[t-1].
                for b in 0..<B {
                    let dhRow = dhNext + b * H
                    if let lengths, t >= lengths[b] {
                        // Padding step: state passed through unchanged, so dh and dc pass through too.
                        (dp + b * GH).update(repeating: 0, count: GH)
                        if kind == .gru { (dph + b * GH).update(repeating: 0, count: GH) }
                        continue
                    }
                    let up = dOut + (t * B + b) * H
                    for j in 0..<H { dh.pointer[j] = up[j] + dhRow[j] }
                    switch kind {
                    case .rnnTanh, .rnnRelu:
                        CellMath.rnnBackward(h: hiddens + (t + 1) * B * H + b * H, dh: dh.pointer, dPre: dp + b * GH,
                                             relu: kind == .rnnRelu, H: H)
                        dhRow.update(repeating: 0, count: H)
                    case .lstm:
                        guard let gates = lc.gates?.pointer, let cells = lc.cells?.pointer else { preconditionFailure("LSTM cache") }
                        CellMath.lstmBackward(gates: gates + (t * B + b) * GH, cPrev: cells + (t * B + b) * H,
                                              cell: cells + ((t + 1) * B + b) * H, dh: dh.pointer, dc: dcNext + b * H,
                                              dGates: dp + b * GH, H: H)
                        dhRow.update(repeating: 0, count: H)
                    case .gru:
                        guard let gates = lc.gates?.pointer, let hiddenN = lc.hiddenN?.pointer else { preconditionFailure("GRU cache") }
                        CellMath.gruBackward(gates: gates + (t * B + b) * GH, hn: hiddenN + (t * B + b) * H,
                                             hPrev: hiddens + (t * B + b) * H, dh: dh.pointer, dInputGates: dp + b * GH,
                                             dHiddenGates: dph + b * GH, dhPrev: dhRow, H: H)
                    }
                }
                // 2. Through the recurrent product: dh[t-1] += dPre_hh[t]·W_hh   (B,G·H)·(G·H,H).
                GEMM.multiply(transA: false, transB: false, m: B, n: H, k: GH, a: dph, lda: GH, b: whh, ldb: H,
                              beta: 1, c: dhNext, ldc: H)
            }
            // 3. All steps at once: the weight and bias gradients and dx.
            parameters[4 * l].grad.data.withUnsafeMutableBufferPointer { dWih in
                parameters[4 * l + 1].grad.data.withUnsafeMutableBufferPointer { dWhh in
                    parameters[4 * l + 2].grad.data.withUnsafeMutableBufferPointer { dBih in
                        parameters[4 * l + 3].grad.data.withUnsafeMutableBufferPointer { dBhh in
                            guard let dwih = dWih.baseAddress, let dwhh = dWhh.baseAddress,
                                  let dbih = dBih.baseAddress, let dbhh = dBhh.baseAddress else { preconditionFailure("empty gradients") }
                            GEMM.multiply(transA: true, transB: false, m: GH, n: din, k: T * B, a: dPre.pointer, lda: GH,
                                          b: input, ldb: din, beta: 1, c: dwih, ldc: din)
                            GEMM.multiply(transA: true, transB: false, m: GH, n: H, k: T * B, a: dPreHidden.pointer, lda: GH,
                                          b: hiddens, ldb: H, beta: 1, c: dwhh, ldc: H)
                            for r in 0..<(T * B) {
                                let a = dPre.pointer + r * GH, h = dPreHidden.pointer + r * GH
                                for j in 0..<GH { dbih[j] += a[j]; dbhh[j] += h[j] }
                            }
                        }
                    }
                }
            }
            GEMM.multiply(transA: false, transB: false, m: T * B, n: din, k: GH, a: dPre.pointer, lda: GH, b: wih, ldb: din,
                          beta: 0, c: dInput, ldc: din)
        }
    }
}
