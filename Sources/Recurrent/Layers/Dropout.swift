/// Inverted dropout, as `nn.Dropout` in training mode.
///
///     mask[i] = (u[i] >= p) ? 1/(1-p) : 0,   u[i] ~ U[0,1)
///     y = x ⊙ mask,   dx = dy ⊙ mask
///
/// Shapes: any; `mask` has `x.count` elements. `p = 0` keeps everything (mask of ones, the RNG is
/// not advanced); `p >= 1` drops everything (mask of zeros), as PyTorch does.
/// Memory: the mask, one float per element.
public enum Dropout {
    /// Applies dropout with probability `p` and returns the output and the mask (0 or 1/(1-p)).
    public static func forward(_ x: Tensor, p: Float, rng: inout SeededRNG) -> (output: Tensor, mask: [Float]) {
        let mask = makeMask(count: x.count, p: p, rng: &rng)
        var y = x
        for i in 0..<y.count { y.data[i] *= mask[i] }
        return (y, mask)
    }

    /// The gradient of `forward` for the same mask: dx = dy ⊙ mask.
    public static func backward(_ dOutput: Tensor, mask: [Float]) -> Tensor {
        require(mask.count == dOutput.count, "dropout mask has \(mask.count) elements, gradient \(dOutput.count)")
        var dx = dOutput
        for i in 0..<dx.count { dx.data[i] *= mask[i] }
        return dx
    }

    /// A mask of `count` elements, each 0 with probability `p` and 1/(1-p) otherwise.
    static func makeMask(count: Int, p: Float, rng: inout SeededRNG) -> [Float] {
        require(p >= 0, "dropout probability \(p) is negative")
        if p == 0 { return [Float](repeating: 1, count: count) }
        if p >= 1 { return [Float](repeating: 0, count: count) }
        let scale = 1 / (1 - p)
        var mask = [Float](repeating: 0, count: count)
        for i in 0..<count where rng.nextFloat() >= p { mask[i] = scale }
        return mask
    }
}
