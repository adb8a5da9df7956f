import Foundation

/// The pointwise part of one time step for one batch row, per cell kind: the equations of
/// `CellKind` and their derivatives. The matrix products happen in `RecurrentLayer`; these
/// functions see one row of H units (gate blocks of H, in PyTorch's order) and never allocate.
///
/// The scalar reference: plain loops over Foundation's `exp`/`tanh`. `RecurrentLayer` runs the
/// fused, vectorised C kernels of `ckernels_cells.h` (`rc_lstm_forward`, …), which have the same
/// contracts except that they add the biases themselves and handle B rows per call;
/// `CellKernelTests` checks them against these formulas on every ISA path.
enum CellMath {
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }

    // MARK: LSTM (gates i, f, g, o)

    /// In: `gates` (4H) pre-activations. Out: `gates` = σ(i), σ(f), tanh(g), σ(o);
    /// `cOut` = σ(f)⊙cPrev + σ(i)⊙tanh(g); `hOut` = σ(o)⊙tanh(cOut).
    @inline(__always)
    static func lstmForward(gates g: UnsafeMutablePointer<Float>, cPrev: UnsafePointer<Float>,
                            cOut: UnsafeMutablePointer<Float>, hOut: UnsafeMutablePointer<Float>, H: Int) {
        for j in 0..<H {
            let i = sigmoid(g[j]), f = sigmoid(g[H + j]), c = Foundation.tanh(g[2 * H + j]), o = sigmoid(g[3 * H + j])
            g[j] = i; g[H + j] = f; g[2 * H + j] = c; g[3 * H + j] = o
            let cell = f * cPrev[j] + i * c
            cOut[j] = cell
            hOut[j] = o * Foundation.tanh(cell)
        }
    }

    /// In: activated `gates` (4H), `cPrev`, `cell` (this step), `dh` (total gradient on h),
    /// `dc` (gradient on this step's cell from the future). Out: `dGates` (4H, w.r.t. the
    /// pre-activations), `dc` = gradient on cPrev.
    ///
    ///     dc = dc + dh⊙o⊙(1 − tanh²c);  di = dc⊙g⊙i(1−i);  df = dc⊙cPrev⊙f(1−f)
    ///     dg = dc⊙i⊙(1 − g²);           do = dh⊙tanh(c)⊙o(1−o);  dcPrev = dc⊙f
    @inline(__always)
    static func lstmBackward(gates g: UnsafePointer<Float>, cPrev: UnsafePointer<Float>, cell: UnsafePointer<Float>,
                             dh: UnsafePointer<Float>, dc: UnsafeMutablePointer<Float>,
                             dGates: UnsafeMutablePointer<Float>, H: Int) {
        for j in 0..<H {
            let i = g[j], f = g[H + j], c = g[2 * H + j], o = g[3 * H + j]
            let tc = Foundation.tanh(cell[j])
            let dcj = dc[j] + dh[j] * o * (1 - tc * tc)
            dGates[j] = dcj * c * i * (1 - i)
            dGates[H + j] = dcj * cPrev[j] * f * (1 - f)
            dGates[2 * H + j] = dcj * i * (1 - c * c)
            dGates[3 * H + j] = dh[j] * tc * o * (1 - o)
            dc[j] = dcj * f
        }
    }

    // MARK: Elman RNN

    /// In place on `h` (H): pre-activation → tanh or relu.
    @inline(__always)
    static func rnnForward(_ h: UnsafeMutablePointer<Float>, relu: Bool, H: Int) {
        if relu {
            for j in 0..<H { h[j] = h[j] > 0 || h[j].isNaN ? h[j] : 0 }   // NaN stays NaN, as in PyTorch
        } else {
            for j in 0..<H { h[j] = Foundation.tanh(h[j]) }
        }
    }

    /// dPre = dh ⊙ act'(pre), written with the output h: (1 − h²) for tanh, [h > 0] for relu.
    @inline(__always)
    static func rnnBackward(h: UnsafePointer<Float>, dh: UnsafePointer<Float>, dPre: UnsafeMutablePointer<Float>,
                            relu: Bool, H: Int) {
        if relu {
            for j in 0..<H { dPre[j] = h[j] <= 0 ? 0 : dh[j] }   // threshold_backward: NaN passes
        } else {
            for j in 0..<H { dPre[j] = dh[j] * (1 - h[j] * h[j]) }
        }
    }

    // MARK: GRU (gates r, z, n)

    /// In: `gates` (3H) = W_ih x + b_ih; `hh` (3H) = W_hh hPrev (no bias); `bhh` (3H).
    /// Out: `gates` = r, z, n; `hn` = W_hn hPrev + b_hn (kept for backward); `hOut` = (1−z)⊙n + z⊙hPrev.
    @inline(__always)
    static func gruForward(gates g: UnsafeMutablePointer<Float>, hh: UnsafePointer<Float>, bhh: UnsafePointer<Float>,
                           hPrev: UnsafePointer<Float>, hn: UnsafeMutablePointer<Float>,
                           hOut: UnsafeMutablePointer<Float>, H: Int) {
        for j in 0..<H {
            let r = sigmoid(g[j] + hh[j] + bhh[j])
            let z = sigmoid(g[H + j] + hh[H + j] + bhh[H + j])
            let hidden = hh[2 * H + j] + bhh[2 * H + j]
            let n = Foundation.tanh(g[2 * H + j] + r * hidden)
            g[j] = r; g[H + j] = z; g[2 * H + j] = n
            hn[j] = hidden
            hOut[j] = (1 - z) * n + z * hPrev[j]
        }
    }

    /// In: activated `gates` (3H), `hn`, `hPrev`, `dh`. Out: `dInputGates` (3H, w.r.t. W_ih x + b_ih),
    /// `dHiddenGates` (3H, w.r.t. W_hh hPrev + b_hh), `dhPrev` = the direct part dh⊙z (the caller adds
    /// dHiddenGates·W_hh).
    ///
    ///     dn = dh⊙(1−z)(1−n²);  dz = dh⊙(hPrev−n)⊙z(1−z);  dr = dn⊙hn⊙r(1−r)
    ///     dInputGates = [dr, dz, dn];  dHiddenGates = [dr, dz, dn⊙r]
    @inline(__always)
    static func gruBackward(gates g: UnsafePointer<Float>, hn: UnsafePointer<Float>, hPrev: UnsafePointer<Float>,
                            dh: UnsafePointer<Float>, dInputGates: UnsafeMutablePointer<Float>,
                            dHiddenGates: UnsafeMutablePointer<Float>, dhPrev: UnsafeMutablePointer<Float>, H: Int) {
        for j in 0..<H {
            let r = g[j], z = g[H + j], n = g[2 * H + j], d = dh[j]
            let dn = d * (1 - z) * (1 - n * n)
            let dz = d * (hPrev[j] - n) * z * (1 - z)
            let dr = dn * hn[j] * r * (1 - r)
            dInputGates[j] = dr; dInputGates[H + j] = dz; dInputGates[2 * H + j] = dn
            dHiddenGates[j] = dr; dHiddenGates[H + j] = dz; dHiddenGates[2 * H + j] = dn * r
            dhPrev[j] = d * z
        }
    }
}
