/// char-rnn / torch-rnn batching for truncated backpropagation through time.
///
/// The token array is cut into B contiguous streams; batch i takes the next T steps of every
/// stream, so the hidden state at the end of batch i is the right starting state for batch i+1.
/// Targets are the inputs shifted by one character.
///
///     n = (tokens.count - 1) / (B*T) * (B*T)            // tokens used as inputs
///     stream b: inputs  tokens[b*n/B     ..< (b+1)*n/B]
///               targets tokens[b*n/B + 1 ..< (b+1)*n/B + 1]
///     batch i:  columns i*T ..< (i+1)*T of every stream
///
/// This is exactly PyTorch's `data[:n].view(B, -1)[:, i*T:(i+1)*T]` for the inputs and
/// `data[1:n+1].view(B, -1)[:, i*T:(i+1)*T]` for the targets. The tail that does not fill a
/// whole batch is dropped.
///
/// Memory: keeps the n+1 tokens it uses.
public struct CharStreams: Sendable {
    /// B: the number of parallel streams.
    public let batchSize: Int
    /// T: steps per batch.
    public let seqLen: Int
    /// tokens[0 ... n].
    private let tokens: [Int32]
    /// n / B: the length of each stream.
    private let streamLength: Int

    /// Throws "SOURCE: N characters is too short for batches of B streams × T steps (--batch-size ×
    /// --seq-len; needs at least B*T+1)" when `tokens.count < B*T + 1`, and an error when B or T is not positive.
    public init(tokens: [Int32], batchSize: Int, seqLen: Int, source: String) throws {
        guard batchSize > 0, seqLen > 0 else {
            throw RecurrentError("\(source): --batch-size (\(batchSize)) and --seq-len (\(seqLen)) must both be at least 1")
        }
        let (perBatch, overflow) = batchSize.multipliedReportingOverflow(by: seqLen)
        guard !overflow, perBatch < Int.max, tokens.count >= perBatch + 1 else {
            let needed = overflow || perBatch == Int.max ? "more than \(Int.max)" : "\(perBatch + 1)"
            throw RecurrentError("\(source): \(tokens.count) characters is too short for batches of \(batchSize) streams × \(seqLen) steps (--batch-size × --seq-len; needs at least \(needed))")
        }
        let n = (tokens.count - 1) / perBatch * perBatch
        self.batchSize = batchSize
        self.seqLen = seqLen
        self.tokens = Array(tokens[0...n])
        self.streamLength = n / batchSize
    }

    /// The number of batches in one pass over the text: n / (B*T), at least 1.
    public var batchesPerEpoch: Int { streamLength / seqLen }

    /// Inputs and targets of batch `i` (0 ..< batchesPerEpoch), each B*T values laid out
    /// batch-major: element b*T + t is step t of stream b.
    public func batch(_ i: Int) -> (inputs: [Int32], targets: [Int32]) {
        require(i >= 0 && i < batchesPerEpoch, "batch \(i) out of range 0..<\(batchesPerEpoch)")
        let B = batchSize, T = seqLen
        var inputs = [Int32](repeating: 0, count: B * T)
        var targets = [Int32](repeating: 0, count: B * T)
        for b in 0..<B {
            let start = b * streamLength + i * T
            for t in 0..<T {
                inputs[b * T + t] = tokens[start + t]
                targets[b * T + t] = tokens[start + t + 1]
            }
        }
        return (inputs, targets)
    }
}

/// Splits tokens into a training part and a validation part made of the last `fraction` of the
/// text: validation has `Int(Double(count) * fraction)` tokens (rounded down), training the rest.
/// `fraction` is meant to lie in [0, 1) and is clamped to [0, 1]; validation is empty when it is 0.
public func splitTrainValidation(_ tokens: [Int32], fraction: Double) -> (train: [Int32], validation: [Int32]) {
    let f = fraction.isNaN ? 0 : min(max(fraction, 0), 1)
    let v = min(Int(Double(tokens.count) * f), tokens.count)
    let cut = tokens.count - v
    return (Array(tokens[0..<cut]), Array(tokens[cut...]))
}
