/// Variable-length sequences padded into one batch, for `RecurrentLayer.forward(lengths:)`.
///
/// Shapes (B batch, T = the longest length, at least 1): `indices` (B,T) batch-major, padded
/// with `TokenVocabulary.padIndex`; `lengths` B values in 0...T.
public struct PaddedBatch: Sendable, Equatable {
    public var indices: [Int32]
    public var lengths: [Int]
    public var batch: Int
    public var steps: Int

    public init(_ sequences: [[Int32]], pad: Int32 = TokenVocabulary.padIndex) {
        batch = sequences.count
        steps = max(1, sequences.map(\.count).max() ?? 1)
        lengths = sequences.map(\.count)
        indices = [Int32](repeating: pad, count: batch * steps)
        for (b, s) in sequences.enumerated() {
            for (t, v) in s.enumerated() { indices[b * steps + t] = v }
        }
    }
}

/// The order in which examples are visited in each epoch.
///
/// Shuffled with the seed, then grouped into pools of `poolBatches` batches; each pool is sorted
/// by length and cut into batches, and the batches are shuffled again. Sorting inside a pool keeps
/// padding low (similar lengths share a batch) while every epoch still sees different batches.
/// `poolBatches = 1` gives a plain shuffle.
public enum BatchPlan {
    public static func batches(lengths: [Int], batchSize: Int, poolBatches: Int = 20, rng: inout SeededRNG) -> [[Int]] {
        require(batchSize > 0, "BatchPlan.batches: batchSize must be at least 1, got \(batchSize)")
        var order = Array(lengths.indices)
        order.shuffle(using: &rng)
        var out: [[Int]] = []
        let pool = batchSize * max(1, poolBatches)
        var start = 0
        while start < order.count {
            var chunk = Array(order[start..<min(order.count, start + pool)])
            if poolBatches > 1 { chunk.sort { lengths[$0] < lengths[$1] } }
            var s = 0
            while s < chunk.count {
                out.append(Array(chunk[s..<min(chunk.count, s + batchSize)]))
                s += batchSize
            }
            start += pool
        }
        out.shuffle(using: &rng)
        return out
    }

    /// Batches of examples of similar length, shortest first (for evaluation: every example once,
    /// little padding). Results must be put back by index.
    ///
    /// A batch holds at most `batchSize` examples and, beyond its first, at most `maxSteps` padded
    /// steps in all (examples × the longest's length): long examples go in smaller batches, and one
    /// longer than `maxSteps / 2` alone, so that one very long line among short ones does not pad
    /// them all to its length (a 55,000-word line and 63 short ones took 5.4 GB in `classify
    /// predict`, against 0.45 GB for the line alone). The default, 64 × 256, leaves batches of 64
    /// examples of up to 256 steps as they were.
    public static func byLength(_ lengths: [Int], batchSize: Int, maxSteps: Int = 64 * 256) -> [[Int]] {
        let order = lengths.indices.sorted { lengths[$0] != lengths[$1] ? lengths[$0] < lengths[$1] : $0 < $1 }
        var batches: [[Int]] = [], current: [Int] = []
        for i in order {
            // Ascending lengths: the candidate is the longest of the batch it would join.
            if !current.isEmpty && (current.count == batchSize || (current.count + 1) * lengths[i] > maxSteps) {
                batches.append(current)
                current = []
            }
            current.append(i)
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }

    /// Consecutive batches in the given order (for evaluation).
    public static func sequential(count: Int, batchSize: Int) -> [[Int]] {
        stride(from: 0, to: count, by: batchSize).map { Array($0..<min(count, $0 + batchSize)) }
    }
}
