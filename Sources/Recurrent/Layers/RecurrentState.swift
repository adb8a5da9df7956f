/// The state a recurrent layer carries between time steps and between calls (truncated BPTT).
///
/// Shapes (L layers, B batch, H hidden): `hidden` (L,B,H); `cell` (L,B,H) for LSTM, `nil` otherwise.
/// Layer `l`'s rows are `hidden.data[l*B*H ..< (l+1)*B*H]`, as in PyTorch's `h_n` / `c_n`.
/// Bidirectional stacks hold 2L entries, index l·2 + direction (0 forward, 1 reverse).
public struct RecurrentState: Sendable, Equatable {
    /// Hidden state of every layer, (L,B,H) ((2L,B,H) when bidirectional).
    public var hidden: Tensor
    /// Cell state of every layer, shaped like `hidden`; only LSTM has one.
    public var cell: Tensor?

    public init(hidden: Tensor, cell: Tensor?) {
        self.hidden = hidden
        self.cell = cell
    }

    /// The all-zero state PyTorch uses when no initial state is given (pass `layers: 2L` when bidirectional).
    public static func zeros(kind: CellKind, layers: Int, batch: Int, hidden: Int) -> RecurrentState {
        let shape = [layers, batch, hidden]
        return RecurrentState(hidden: Tensor(shape: shape), cell: kind.hasCellState ? Tensor(shape: shape) : nil)
    }
}

extension RecurrentState {
    /// A batch of `count` rows that each hold this one-row state (B = 1): one sequence's state
    /// handed to several that continue from it.
    public func repeatingBatch(_ count: Int) -> RecurrentState {
        require(hidden.shape.count == 3 && hidden.shape[1] == 1, "repeatingBatch needs a state of batch 1, got \(hidden.shape)")
        func repeated(_ t: Tensor) -> Tensor {
            let L = t.shape[0], H = t.shape[2]
            var out = Tensor(shape: [L, count, H])
            for l in 0..<L { for b in 0..<count { out.data.replaceSubrange((l * count + b) * H ..< (l * count + b + 1) * H, with: t.data[l * H ..< (l + 1) * H]) } }
            return out
        }
        return RecurrentState(hidden: repeated(hidden), cell: cell.map(repeated))
    }
}

/// Whether a forward pass is part of training.
///
/// `.training` keeps the cache that `backward` reads and applies dropout; `.inference` does neither.
public enum ForwardMode: Sendable {
    case training
    case inference
}
