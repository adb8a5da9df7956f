/// What `RecurrentLayer.backward` reads from a `.training` forward pass.
///
/// Everything is time-major, so one step's rows are contiguous (B batch, T time, D input,
/// H hidden, L layers, G gates):
///
///     input      (T,B,D)      x, transposed from (B,T,D)
///     per layer l:
///       hiddens  (T+1,B,H)    h[-1] = initial state, then h[0..T-1]; h[t-1] for all t is one block
///       gates    (T,B,G·H)    post-activation gates (LSTM: σi σf tanh g σo; GRU: r z n); RNN: none
///       cells    (T+1,B,H)    LSTM only, laid out like hiddens
///       hiddenN  (T,B,H)      GRU only: W_hn h[t-1] + b_hn, needed because b_hn sits inside r⊙(·)
///       mask, dropped (T,B,H) each, l < L−1 and dropout > 0 only: the mask and the next layer's input
///
/// Memory in floats: T·B·D + Σ_l (T+1)·B·H + per layer {LSTM 4TBH + (T+1)BH, GRU 4TBH, RNN 0}
/// + 2·(L−1)·T·B·H with dropout. About 6·T·B·H per LSTM layer, 5·T·B·H per GRU layer.
/// The backward pass reads the current parameter values, so do not update them in between.
public final class RecurrentCache {
    let batch: Int
    let steps: Int
    /// Per-sequence lengths (each in 0...T), or nil when every sequence has T steps.
    let lengths: [Int]?
    /// x time-major (T,B,D).
    let input: LayerBuffer
    var layers: [LayerCache] = []

    init(batch: Int, steps: Int, lengths: [Int]?, input: LayerBuffer) {
        self.batch = batch
        self.steps = steps
        self.lengths = lengths
        self.input = input
    }
}

/// One layer's share of `RecurrentCache`.
final class LayerCache {
    /// (T+1,B,H): initial state then every step's output.
    let hiddens: LayerBuffer
    /// (T,B,G·H) activated gates; nil for RNN (its gate is the hidden state itself).
    let gates: LayerBuffer?
    /// (T+1,B,H) LSTM cells.
    let cells: LayerBuffer?
    /// (T,B,H) GRU's W_hn h + b_hn.
    let hiddenN: LayerBuffer?
    /// (T,B,H) dropout mask on this layer's output and the masked output itself (next layer's input).
    var dropoutMask: LayerBuffer?
    var dropped: LayerBuffer?

    init(kind: CellKind, batch B: Int, steps T: Int, hidden H: Int) {
        hiddens = LayerBuffer((T + 1) * B * H)
        gates = kind == .lstm || kind == .gru ? LayerBuffer(T * B * kind.gateCount * H) : nil
        cells = kind == .lstm ? LayerBuffer((T + 1) * B * H) : nil
        hiddenN = kind == .gru ? LayerBuffer(T * B * H) : nil
    }

    /// The outputs h[0..T-1] (T,B,H), or what the next layer sees after dropout.
    func nextInput(batch B: Int, hidden H: Int) -> UnsafePointer<Float> {
        if let dropped { return UnsafePointer(dropped.pointer) }
        return UnsafePointer(hiddens.pointer + B * H)
    }
}
