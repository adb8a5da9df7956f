/// Word dropout: during training each real token index is replaced by `<unk>` with probability
/// `p` (padding stays padding), so the `<unk>` embedding is trained and the model does not lean
/// on any single word. Used by `TextClassifier` and `Tagger`; never applied in inference.
///
///     x[i] = (x[i] != <pad> && u[i] < p) ? <unk> : x[i],   u[i] ~ U[0,1)
///
/// The embedding gradient then flows into the `<unk>` row for the replaced positions.
public enum WordDropout {
    /// The indices with dropped words replaced; `p = 0` returns them unchanged without advancing the RNG.
    public static func apply(_ indices: [Int32], p: Float, rng: inout SeededRNG) -> [Int32] {
        require(p >= 0 && p < 1, "word dropout probability \(p) outside [0, 1)")
        guard p > 0 else { return indices }
        var out = indices
        for i in 0..<out.count where out[i] != TokenVocabulary.padIndex && rng.nextFloat() < p {
            out[i] = TokenVocabulary.unkIndex
        }
        return out
    }
}
