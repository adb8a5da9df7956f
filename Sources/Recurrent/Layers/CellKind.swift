/// The recurrent cells, with PyTorch's equations and gate order.
///
///     rnn_tanh:  h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
///     rnn_relu:  h' = relu(W_ih x + b_ih + W_hh h + b_hh)
///     lstm:      gates i,f,g,o;  c' = σ(f)⊙c + σ(i)⊙tanh(g);  h' = σ(o)⊙tanh(c')
///     gru:       gates r,z,n;    n = tanh(W_in x + b_in + σ(r)⊙(W_hn h + b_hn));  h' = (1-z)⊙n + z⊙h
///
/// The raw value is the name used in checkpoints (`cell` metadata).
public enum CellKind: String, CaseIterable, Sendable {
    case lstm
    case gru
    case rnnTanh = "rnn_tanh"
    case rnnRelu = "rnn_relu"

    /// Gate blocks stacked in weight_ih / weight_hh: 4 for LSTM (i,f,g,o), 3 for GRU (r,z,n), 1 for RNN.
    public var gateCount: Int {
        switch self {
        case .lstm: return 4
        case .gru: return 3
        case .rnnTanh, .rnnRelu: return 1
        }
    }

    /// Whether the state has a cell tensor besides the hidden one.
    public var hasCellState: Bool { self == .lstm }

    /// The CLI spelling (`lstm`, `gru`, `rnn-tanh`, `rnn-relu`).
    public var cliName: String { rawValue.replacingOccurrences(of: "_", with: "-") }

    /// Parses the CLI spelling or the checkpoint spelling.
    public init?(name: String) {
        let n = name.lowercased().replacingOccurrences(of: "-", with: "_")
        switch n {
        case "rnn": self = .rnnTanh
        default:
            guard let k = CellKind(rawValue: n) else { return nil }
            self = k
        }
    }
}
