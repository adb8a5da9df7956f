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
        guard let V = logits.shape.last, V > 0 else { fatalError("logits need a non-empty last dimension, got \(logits.shape)") }
        let N = logits.count / V
        require(targets.count == N, "\(targets.count) targets for \(N) rows of logits")
        var dLogits = Tensor(shape: logits.shape)
        var loss: Float = 0
        logits.data.withUnsafeBufferPointer { zb in
            dLogits.data.withUnsafeMutableBufferPointer { db in
                guard let zp = zb.baseAddress, let dp = db.baseAddress else { return }
                loss = softmaxCrossEntropy(rows: N, classes: V, logits: zp, targets: targets, ignoreIndex: ignoreIndex, dLogits: dp)
            }
        }
        return (loss, dLogits)
    }

    /// `softmaxCrossEntropy` on raw rows: logits (N,V), targets N; writes every row of dLogits
    /// (N,V) (zero rows for ignored targets) and returns the mean loss.
    static func softmaxCrossEntropy(rows N: Int, classes V: Int, logits: UnsafePointer<Float>, targets: [Int32],
                                    ignoreIndex: Int32 = -100, dLogits: UnsafeMutablePointer<Float>) -> Float {
        guard let scale = meanScale(rows: N, classes: V, targets: targets, ignoreIndex: ignoreIndex, dLogits: dLogits)
        else { return 0 }
        let total = summedCrossEntropy(rows: N, classes: V, logits: logits, targets: targets, ignoreIndex: ignoreIndex,
                                       scale: scale, dLogits: dLogits)
        return Float(total * scale)
    }

    /// `softmaxCrossEntropy` on logits that lack a Linear layer's bias: reads every row as
    /// logits + `bias` (V) without writing it (the same rounding as a product onto bias-filled
    /// rows, so the same loss and dLogits bits) and accumulates the bias gradient, dBias += Σ rows
    /// of dLogits, in the same pass. The rows run as two halves fixed by the shape, each summing
    /// its rows in order into its own V floats, added to dBias in order: the same bits for any
    /// thread count. Saves the head a pass that fills its output with the bias and one that sums
    /// dLogits' columns.
    static func softmaxCrossEntropy(rows N: Int, classes V: Int, logits: UnsafePointer<Float>,
                                    bias: UnsafePointer<Float>, targets: [Int32], ignoreIndex: Int32 = -100,
                                    dLogits: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>) -> Float {
        guard let scale = meanScale(rows: N, classes: V, targets: targets, ignoreIndex: ignoreIndex, dLogits: dLogits)
        else { return 0 }
        let rowLoss = UnsafeMutableBufferPointer<Double>.allocate(capacity: N)
        defer { rowLoss.deallocate() }
        let halves = N * V >= 1 << 15 ? 2 : 1
        let partial = LayerBuffer(halves * V)
        targets.withUnsafeBufferPointer { tb in
            guard let tp = tb.baseAddress, let lp = rowLoss.baseAddress else { return }
            Threading.parallel(halves) { h in
                let lo = N * h / halves, hi = N * (h + 1) / halves
                rc_softmax_xent_bias_rows(hi - lo, V, logits + lo * V, bias, tp + lo, ignoreIndex, Float(scale),
                                          dLogits + lo * V, lp + lo, partial.pointer + h * V)
            }
        }
        rc_add_rows(halves, V, partial.pointer, V, dBias)
        var total = 0.0
        for n in 0..<N { total += rowLoss[n] }
        return Float(total * scale)
    }

    /// 1 / (rows with a target), after checking the targets; nil (dLogits zeroed) when every row is
    /// ignored.
    private static func meanScale(rows N: Int, classes V: Int, targets: [Int32], ignoreIndex: Int32,
                                  dLogits: UnsafeMutablePointer<Float>) -> Double? {
        require(targets.count == N, "\(targets.count) targets for \(N) rows of logits")
        let valid = targets.reduce(0) { $0 + ($1 == ignoreIndex ? 0 : 1) }
        if valid == 0 {
            dLogits.update(repeating: 0, count: N * V)
            return nil
        }
        for y in targets where y != ignoreIndex {
            require(y >= 0 && Int(y) < V, "target \(y) outside 0..<\(V)")
        }
        return 1 / Double(valid)
    }

    /// The softmax cross-entropy of raw rows: writes dLogits (N,V) (each row's gradient times
    /// `scale`) and returns the sum of the rows' losses, in Double. Targets must be checked by the
    /// caller. Fused C kernel (rc_softmax_xent_rows: max, exp and sum in one vectorised pass per
    /// row, the gradient in a second, in float); the rows are split across threads, and their
    /// losses are added in row order afterwards, so the sum is the same for any thread count.
    static func summedCrossEntropy(rows N: Int, classes V: Int, logits: UnsafePointer<Float>, targets: [Int32],
                                   ignoreIndex: Int32, scale: Double, dLogits: UnsafeMutablePointer<Float>) -> Double {
        let rowLoss = UnsafeMutableBufferPointer<Double>.allocate(capacity: N)
        defer { rowLoss.deallocate() }
        targets.withUnsafeBufferPointer { tb in
            guard let tp = tb.baseAddress, let lp = rowLoss.baseAddress else { return }
            Vector.forRanges(N, minimum: max(1, (1 << 14) / V)) { lo, hi in
                rc_softmax_xent_rows(hi - lo, V, logits + lo * V, tp + lo, ignoreIndex, Float(scale), dLogits + lo * V, lp + lo)
            }
        }
        var total = 0.0
        for n in 0..<N { total += rowLoss[n] }
        return total
    }

    /// Mean squared error over all elements.
    ///
    ///     loss = (1/N) Σ (p − t)²,   dp = 2(p − t)/N
    ///
    /// Shapes: prediction and target identical, N elements. An empty tensor gives loss 0.
    public static func meanSquaredError(_ prediction: Tensor, target: Tensor) -> (loss: Float, dPrediction: Tensor) {
        require(prediction.shape == target.shape, "prediction \(prediction.shape) and target \(target.shape) differ")
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
