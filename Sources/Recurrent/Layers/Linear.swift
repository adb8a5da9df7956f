import CKernels

/// An affine map over the last dimension, as `nn.Linear`.
///
///     y = x·Wᵀ + b
///     dx = dy·W,   dW += dyᵀ·x,   db += Σ_rows dy
///
/// Shapes: x (..., in) → y (..., out); weight (out,in), bias (out). Both initialised
/// U(-1/√in, 1/√in), PyTorch's default. Memory: nothing is cached; backward takes the input again.
public final class Linear: ParameterizedModule, @unchecked Sendable {
    public let inputSize: Int
    public let outputSize: Int
    /// `weight` (out,in).
    public let weight: Parameter
    /// `bias` (out).
    public let bias: Parameter

    public init(inputSize: Int, outputSize: Int, rng: inout SeededRNG) {
        require(inputSize > 0 && outputSize > 0, "linear layer needs positive sizes")
        self.inputSize = inputSize
        self.outputSize = outputSize
        let bound = 1 / Float(inputSize).squareRoot()
        var w = Tensor(shape: [outputSize, inputSize])
        for i in 0..<w.count { w.data[i] = rng.uniform(-bound, bound) }
        var b = Tensor(shape: [outputSize])
        for i in 0..<b.count { b.data[i] = rng.uniform(-bound, bound) }
        weight = Parameter(name: "weight", value: w)
        bias = Parameter(name: "bias", value: b)
    }

    public var parameters: [Parameter] { [weight, bias] }

    /// (..., in) → (..., out).
    public func forward(_ x: Tensor) -> Tensor {
        require(x.shape.last == inputSize, "linear layer expects last dimension \(inputSize), got \(x.shape)")
        let rows = x.count / inputSize
        var y = Tensor(shape: Array(x.shape.dropLast()) + [outputSize])
        x.data.withUnsafeBufferPointer { xb in
            y.data.withUnsafeMutableBufferPointer { yb in
                guard let xp = xb.baseAddress, let yp = yb.baseAddress else { return }
                forward(rows: rows, input: xp, output: yp)
            }
        }
        return y
    }

    /// `forward` on raw rows: y (rows, out) = x (rows, in)·Wᵀ + b, both rows contiguous.
    /// With `addingBias` false, y = x·Wᵀ only (for a loss that adds the bias itself).
    func forward(rows: Int, input x: UnsafePointer<Float>, output y: UnsafeMutablePointer<Float>, addingBias: Bool = true) {
        let I = inputSize, O = outputSize
        weight.value.data.withUnsafeBufferPointer { wb in
            bias.value.data.withUnsafeBufferPointer { bb in
                guard let wp = wb.baseAddress, let bp = bb.baseAddress else { return }
                if addingBias {
                    Vector.forRanges(rows, minimum: max(1, (1 << 15) / max(1, O))) { lo, hi in
                        rc_fill_rows(hi - lo, O, bp, y + lo * O, O)
                    }
                }
                GEMM.multiply(transA: false, transB: true, m: rows, n: O, k: I, a: x, lda: I, b: wp, ldb: I,
                              beta: addingBias ? 1 : 0, c: y, ldc: O)
            }
        }
    }

    /// Returns dx (..., in) and accumulates the weight and bias gradients, given the forward input.
    public func backward(_ dOutput: Tensor, input: Tensor) -> Tensor {
        let I = inputSize, O = outputSize
        let rows = input.count / I
        require(input.shape.last == I && dOutput.count == rows * O, "linear backward: input \(input.shape), gradient \(dOutput.shape)")
        var dx = Tensor(shape: input.shape)
        dOutput.data.withUnsafeBufferPointer { dyb in
            input.data.withUnsafeBufferPointer { xb in
                dx.data.withUnsafeMutableBufferPointer { dxb in
                    guard let dyp = dyb.baseAddress, let xp = xb.baseAddress, let dxp = dxb.baseAddress else { return }
                    backward(rows: rows, dOutput: dyp, input: xp, dInput: dxp)
                }
            }
        }
        return dx
    }

    /// `backward` on raw rows (all contiguous): dW += dyᵀ·x, db += Σ_rows dy (skipped with
    /// `biasGradient` false, for a caller that summed it already), then dx = dy·W.
    func backward(rows: Int, dOutput dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, dInput dx: UnsafeMutablePointer<Float>,
                  biasGradient: Bool = true) {
        let I = inputSize, O = outputSize
        weight.value.data.withUnsafeBufferPointer { wb in
            weight.grad.data.withUnsafeMutableBufferPointer { dwb in
                bias.grad.data.withUnsafeMutableBufferPointer { dbb in
                    guard let wp = wb.baseAddress, let dwp = dwb.baseAddress, let dbp = dbb.baseAddress else { return }
                    GEMM.multiply(transA: true, transB: false, m: O, n: I, k: rows, a: dy, lda: O, b: x, ldb: I, beta: 1, c: dwp, ldc: I)
                    // Columns split across threads, each summing its columns over the rows in order
                    // (the same sums as one call).
                    if biasGradient {
                        let parts = rows * O >= 1 << 15 ? max(1, min(Threading.count, O / 16)) : 1
                        Threading.parallel(parts) { part in
                            let j0 = O * part / parts, w = O * (part + 1) / parts - j0
                            rc_add_rows(rows, w, dy + j0, O, dbp + j0)
                        }
                    }
                    GEMM.multiply(transA: false, transB: false, m: rows, n: I, k: O, a: dy, lda: O, b: wp, ldb: I, beta: 0, c: dx, ldc: I)
                }
            }
        }
    }
}
