/// Weight initialisation schemes. The raw value is the CLI / checkpoint spelling.
///
/// Fans are those of one gate block: a (G·H, D) `weight_ih` is G stacked (H, D) blocks, each with
/// fanIn = D and fanOut = H, so an LSTM's input weights get the same scale as a single (H, D) layer.
public enum Initializer: String, CaseIterable, Sendable {
    case pytorchDefault = "default"   // U(-1/sqrt(H), 1/sqrt(H)) for recurrent layers (H = hidden size)
    case xavierUniform = "xavier-uniform", xavierNormal = "xavier-normal"
    case kaimingUniform = "kaiming-uniform", kaimingNormal = "kaiming-normal"   // He, fan_in, gain sqrt(2) (relu)
    case orthogonal                   // for recurrent weights: each (H,H) gate block of weight_hh orthogonal (QR of a Gaussian matrix with sign correction, as torch.nn.init.orthogonal_), gain 1
}

/// Re-initialising recurrent layers and single tensors with an `Initializer`.
///
///     default          U(-1/sqrt(H), 1/sqrt(H))
///     xavier-uniform   U(-a, a),  a = sqrt(6 / (fanIn + fanOut))
///     xavier-normal    N(0, 2 / (fanIn + fanOut))
///     kaiming-uniform  U(-a, a),  a = sqrt(6 / fanIn)          (gain sqrt(2), torch's fan_in / relu)
///     kaiming-normal   N(0, 2 / fanIn)
///     orthogonal       Q of the QR of an N(0, 1) matrix, columns signed so diag(R) > 0;
///                      orthonormal rows when rows <= cols, orthonormal columns otherwise
///
/// Reference: https://pytorch.org/docs/stable/nn.init.html
public enum Initialization {
    /// Re-initialises a recurrent layer's parameters given as (name, Parameter) in PyTorch naming (weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}; possibly with a "_reverse" suffix).
    /// input weights get `input`, recurrent weights get `recurrent`; fan-in/fan-out per gate block (H rows each, G = kind.gateCount blocks); biases: zero unless the scheme is pytorchDefault (then U(±1/sqrt(H))); forgetBias: if non-nil and kind == .lstm, set the f-gate slice [H..<2H] of bias_ih to forgetBias and of bias_hh to 0 (so the effective forget bias equals forgetBias).
    ///
    /// Names are matched on their last dotted component, so `rnn.weight_ih_l0` works too.
    /// `bias_ih` follows the `input` scheme and `bias_hh` the `recurrent` one. Parameters with
    /// other names are left untouched. Random numbers are drawn in parameter order, one gate
    /// block after another, so a seed reproduces the same weights.
    ///
    /// - Precondition: every weight has G·H rows and every bias G·H elements.
    public static func apply(kind: CellKind, hiddenSize: Int, parameters: [Parameter], input: Initializer, recurrent: Initializer, forgetBias: Float?, rng: inout SeededRNG) {
        let H = hiddenSize, G = kind.gateCount
        require(H > 0, "hidden size must be positive, got \(H)")
        for p in parameters {
            let name = p.name.split(separator: ".").last.map(String.init) ?? p.name
            let role: (isWeight: Bool, scheme: Initializer, isInput: Bool)
            if name.hasPrefix("weight_ih") { role = (true, input, true) }
            else if name.hasPrefix("weight_hh") { role = (true, recurrent, false) }
            else if name.hasPrefix("bias_ih") { role = (false, input, true) }
            else if name.hasPrefix("bias_hh") { role = (false, recurrent, false) }
            else { continue }

            if role.isWeight {
                require(p.shape.count == 2 && p.shape[0] == G * H,
                             "\(p.name) has shape \(p.shape), expected (\(G * H), cols) for \(kind.rawValue) with H = \(H)")
                let cols = p.shape[1]
                p.value.data.withUnsafeMutableBufferPointer { w in
                    for gate in 0..<G {
                        let block = UnsafeMutableBufferPointer(rebasing: w[(gate * H * cols)..<((gate + 1) * H * cols)])
                        fillMatrix(block, rows: H, cols: cols, scheme: role.scheme, hiddenSize: H, rng: &rng)
                    }
                }
            } else {
                require(p.value.count == G * H, "\(p.name) has \(p.value.count) elements, expected \(G * H)")
                if role.scheme == .pytorchDefault {
                    let bound = 1 / Float(H).squareRoot()
                    for j in 0..<p.value.count { p.value.data[j] = rng.uniform(-bound, bound) }
                } else {
                    p.value.zero()
                }
                if let forgetBias, kind == .lstm {
                    // Gate order i, f, g, o: the forget gate is the second block.
                    for j in H..<(2 * H) { p.value.data[j] = role.isInput ? forgetBias : 0 }
                }
            }
        }
    }

    /// Fills a single (rows, cols) tensor with the scheme (fanIn = cols, fanOut = rows).
    ///
    /// A 1-D tensor of n elements counts as (n, 1); higher ranks as (shape[0], rest).
    /// `hiddenSize` is only used by `pytorchDefault`.
    public static func fill(_ tensor: inout Tensor, scheme: Initializer, hiddenSize: Int, rng: inout SeededRNG) {
        let rows = tensor.shape.first ?? 1
        let cols = rows == 0 ? 0 : tensor.count / rows
        tensor.data.withUnsafeMutableBufferPointer { w in
            fillMatrix(w, rows: rows, cols: cols, scheme: scheme, hiddenSize: hiddenSize, rng: &rng)
        }
    }

    /// Fills one row-major (rows, cols) block; fanIn = cols, fanOut = rows.
    static func fillMatrix(_ w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, scheme: Initializer, hiddenSize: Int, rng: inout SeededRNG) {
        require(w.count == rows * cols)
        if w.isEmpty { return }
        let fanIn = Float(cols), fanOut = Float(rows)
        switch scheme {
        case .pytorchDefault:
            let bound = 1 / Float(max(hiddenSize, 1)).squareRoot()
            for j in 0..<w.count { w[j] = rng.uniform(-bound, bound) }
        case .xavierUniform:
            let bound = (6 / (fanIn + fanOut)).squareRoot()
            for j in 0..<w.count { w[j] = rng.uniform(-bound, bound) }
        case .xavierNormal:
            let std = (2 / (fanIn + fanOut)).squareRoot()
            for j in 0..<w.count { w[j] = std * rng.normal() }
        case .kaimingUniform:
            let bound = (6 / fanIn).squareRoot()
            for j in 0..<w.count { w[j] = rng.uniform(-bound, bound) }
        case .kaimingNormal:
            let std = (2 / fanIn).squareRoot()
            for j in 0..<w.count { w[j] = std * rng.normal() }
        case .orthogonal:
            let q = orthogonalMatrix(rows: rows, cols: cols, rng: &rng)
            for j in 0..<w.count { w[j] = Float(q[j]) }
        }
    }

    /// A (rows, cols) row-major matrix with orthonormal rows (rows <= cols) or columns, as
    /// torch.nn.init.orthogonal_: QR of a standard normal matrix of the tall orientation, with
    /// each column of Q multiplied by the sign of R's diagonal.
    ///
    /// Uses modified Gram-Schmidt, applied twice for stability, in Double. Gram-Schmidt yields the
    /// QR factor whose R has a positive diagonal, which is exactly the sign-corrected Q.
    /// Cost O(n·m²) for an n×m tall matrix; memory n·m doubles.
    static func orthogonalMatrix(rows: Int, cols: Int, rng: inout SeededRNG) -> [Double] {
        // Draw in (rows, cols) order like torch, then work on the tall orientation (n ≥ m).
        var drawn = [Double](repeating: 0, count: rows * cols)
        for j in 0..<drawn.count { drawn[j] = Double(rng.normal()) }
        let transpose = rows < cols
        let n = transpose ? cols : rows, m = transpose ? rows : cols
        // a[c] is column c (length n) of the tall matrix.
        var a = [[Double]](repeating: [Double](repeating: 0, count: n), count: m)
        for r in 0..<rows {
            for c in 0..<cols {
                if transpose { a[r][c] = drawn[r * cols + c] } else { a[c][r] = drawn[r * cols + c] }
            }
        }
        for c in 0..<m {
            for _ in 0..<2 {
                for k in 0..<c {
                    var dot = 0.0
                    for i in 0..<n { dot += a[k][i] * a[c][i] }
                    for i in 0..<n { a[c][i] -= dot * a[k][i] }
                }
            }
            var norm = 0.0
            for i in 0..<n { norm += a[c][i] * a[c][i] }
            norm = norm.squareRoot()
            // A Gaussian matrix is rank-deficient with probability zero; guard anyway.
            if norm > 1e-300 {
                for i in 0..<n { a[c][i] /= norm }
            }
        }
        var out = [Double](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            for c in 0..<cols {
                out[r * cols + c] = transpose ? a[r][c] : a[c][r]
            }
        }
        return out
    }
}
