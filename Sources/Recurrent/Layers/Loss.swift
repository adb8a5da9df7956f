import CKernels
import Foundation

/// Training losses with their gradients, as PyTorch's `F.cross_entropy` and `F.mse_loss`
/// (reduction `mean`). Per-row work is in float; sums over rows are taken in Double so long
/// batches do not lose precision.
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
        for y in targets where y != ignoreIndex {
            precondition(y >= 0 && Int(y) < V, "target \(y) outside 0..<\(V)")
        }
        let scale = 1 / Double(valid)
        // Fused C kernel (rc_softmax_xent): max, exp and sum in one vectorised pass per row, the
        // gradient in a second; float per row, the rows' losses summed in Double.
        var total = 0.0
        logits.data.withUnsafeBufferPointer { zb in
            dLogits.data.withUnsafeMutableBufferPointer { db in
                targets.withUnsafeBufferPointer { tb in
                    guard let zp = zb.baseAddress, let dp = db.baseAddress, let tp = tb.baseAddress else { return }
                    total = rc_softmax_xent(N, V, zp, tp, ignoreIndex, Float(scale), dp)
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
