/// The glue between the encoder and the decoder: the bridge from the encoder's final state to the
/// decoder's initial state, and row-wise concatenation of (B,·) matrices.
///
/// Bridge (bidirectional encoder): the decoder's layer l starts from the sum of the encoder's two
/// directions of layer l (hidden and, for LSTM, cell), as `h.view(L, 2, B, H).sum(1)`; its
/// backward hands the same gradient to both directions. A unidirectional encoder's state passes
/// through unchanged. The sum adds no parameters and keeps the decoder's width H.
enum Bridge {
    /// (L·R,B,H) → (L,B,H).
    static func forward(_ state: RecurrentState, bidirectional: Bool) -> RecurrentState {
        guard bidirectional else { return state }
        func sum(_ t: Tensor) -> Tensor {
            let L = t.shape[0] / 2, B = t.shape[1], H = t.shape[2], n = B * H
            var out = Tensor(shape: [L, B, H])
            for l in 0..<L {
                for i in 0..<n { out.data[l * n + i] = t.data[2 * l * n + i] + t.data[(2 * l + 1) * n + i] }
            }
            return out
        }
        return RecurrentState(hidden: sum(state.hidden), cell: state.cell.map(sum))
    }

    /// The gradient of `forward`: (L,B,H) → (L·R,B,H).
    static func backward(_ dState: RecurrentState, bidirectional: Bool) -> RecurrentState {
        guard bidirectional else { return dState }
        func copy(_ t: Tensor) -> Tensor {
            let L = t.shape[0], B = t.shape[1], H = t.shape[2], n = B * H
            var out = Tensor(shape: [2 * L, B, H])
            for l in 0..<L {
                let layer = t.data[l * n ..< (l + 1) * n]
                out.data.replaceSubrange(2 * l * n ..< (2 * l + 1) * n, with: layer)
                out.data.replaceSubrange((2 * l + 1) * n ..< (2 * l + 2) * n, with: layer)
            }
            return out
        }
        return RecurrentState(hidden: copy(dState.hidden), cell: dState.cell.map(copy))
    }

    /// The last layer's rows of a state (L,B,H) → (B,H).
    static func topLayer(_ hidden: Tensor) -> Tensor {
        let L = hidden.shape[0], n = hidden.shape[1] * hidden.shape[2]
        return Tensor(shape: [hidden.shape[1], hidden.shape[2]], data: Array(hidden.data[(L - 1) * n ..< L * n]))
    }

    /// Adds `d` (B,H) to the last layer's rows of `hidden` (L,B,H).
    static func addTopLayer(_ d: Tensor, into hidden: inout Tensor) {
        let L = hidden.shape[0], n = d.count
        require(n == hidden.shape[1] * hidden.shape[2])
        for i in 0..<n { hidden.data[(L - 1) * n + i] += d.data[i] }
    }

    /// [a, b] row by row: (B,P), (B,Q) → (B,P+Q).
    static func concatenate(_ a: Tensor, _ b: Tensor) -> Tensor {
        let B = a.shape[0], P = a.shape[1], Q = b.shape[1]
        var out = Tensor(shape: [B, P + Q])
        for r in 0..<B {
            out.data.replaceSubrange(r * (P + Q) ..< r * (P + Q) + P, with: a.data[r * P ..< (r + 1) * P])
            out.data.replaceSubrange(r * (P + Q) + P ..< (r + 1) * (P + Q), with: b.data[r * Q ..< (r + 1) * Q])
        }
        return out
    }

    /// The inverse of `concatenate`: (B,P+Q) → (B,P), (B,Q).
    static func split(_ x: Tensor, first P: Int) -> (Tensor, Tensor) {
        let B = x.shape[0], W = x.shape[1], Q = W - P
        var a = Tensor(shape: [B, P]), b = Tensor(shape: [B, Q])
        for r in 0..<B {
            a.data.replaceSubrange(r * P ..< (r + 1) * P, with: x.data[r * W ..< r * W + P])
            b.data.replaceSubrange(r * Q ..< (r + 1) * Q, with: x.data[r * W + P ..< (r + 1) * W])
        }
        return (a, b)
    }
}
