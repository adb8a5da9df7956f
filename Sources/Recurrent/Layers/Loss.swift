import Foundation

/// Training losses with their gradients, as PyTorch's `F.cross_entropy` and `F.mse_loss`
/// (reduction `mean`). Sums are taken in Double so long batches do not lose precision.
public enum Loss {
    /// Softmax cross-entropy, averaged over the targets that are not `ignoreIndex`.
    ///
    ///     loss = (1/N') Σ_{n: y[n] ≠ ignore} (logsumexp(z[n,:]) − z[n, y[n]])
    ///     dz[n,:] = (softmax(z[n,:]) − onehot(y[n])) / N'   (zero rows for ignored targets)
    ///
    /// Shapes (N rows, V classes): logits (N,V) (any leading shape whose last dimension is V and
    /// whose other dimensions multiply to N), targets N values in 0..<V or `ignoreIndex`.
    /// Edge case: when every target is ignored the loss is 0 and the gradient zero (PyTorch
    /// returns NaN), so one empty batch cannot poison a training run.
    public static func softmaxCrossEntropy(logits: Tensor, targets: [Int32], ignoreIndex: Int32 = -100) -> (loss: Float, dLogits: Tensor) {
        guard let V = logits.shape.last, V > 0 else { preconditionFailure("logits need a non-empty last dimension, got \(logits.shape)") }
        let N = logits.count / V
        precondition(targets.count == N, "\(targets.count) targets for \(N) rows of logits")
        let valid = targets.reduce(0) { $0 + ($1 == ignoreIndex ? 0 : 1) }
        var dLogits = Tensor(shape: logits.shape)
        if valid == 0 { return (0, dLogits) }
        let scale = 1 / Double(valid)
        var total = 0.0
        logits.data.withUnsafeBufferPointer { zb in
            dLogits.data.withUnsafeMutableBufferPointer { db in
                guard let zp = zb.baseAddress, let dp = db.baseAddress else { return }
                for n in 0..<N where targets[n] != ignoreIndex {
                    let y = Int(targets[n])
                    precondition(y >= 0 && y < V, "target \(y) outside 0..<\(V)")
                    let z = zp + n * V, d = dp + n * V
                    var m = z[0]
                    for v in 1..<V { m = max(m, z[v]) }
                    var sum = 0.0
                    for v in 0..<V { sum += Foundation.exp(Double(z[v] - m)) }
                    let logSum = Foundation.log(sum) + Double(m)
                    total += logSum - Double(z[y])
                    for v in 0..<V { d[v] = Float(Foundation.exp(Double(z[v]) - logSum) * scale) }
                    d[y] -= Float(scale)
                }
            }
        }
        return (Float(total * scale), dLogits)
    }

    /// Mean squared error over all elements.
    ///
    ///     loss = (1/N) Σ (p − t)²,   dp = 2(p − t)/N
    ///
    /// Shapes: prediction and target identical, N elements. An empty tensor gives loss 0.
    public static func meanSquaredError(_ prediction: Tensor, target: Tensor) -> (loss: Float, dPrediction: Tensor) {
        precondition(prediction.shape == target.shape, "prediction \(prediction.shape) and target \(target.shape) differ")
        let N = prediction.count
        var dp = Tensor(shape: prediction.shape)
        if N == 0 { return (0, dp) }
        var total = 0.0
        let scale = 2 / Float(N)
        for i in 0..<N {
            let e = prediction.data[i] - target.data[i]
            total += Double(e) * Double(e)
            dp.data[i] = scale * e
        }
        return (Float(total / Double(N)), dp)
    }
}
