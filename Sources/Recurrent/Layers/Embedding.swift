import CKernels

/// A lookup table of learned vectors, as `nn.Embedding`.
///
///     y[n, :] = weight[indices[n], :]
///     dweight[indices[n], :] += dy[n, :]
///
/// Shapes (V vocabulary, E embedding width): weight (V,E); indices of any shape S → y (S..., E).
/// Initialised N(0,1), as PyTorch. Memory: nothing is cached; backward reads the indices again.
public final class Embedding: ParameterizedModule, @unchecked Sendable {
    public let count: Int
    public let dimension: Int
    /// `weight` (V,E).
    public let weight: Parameter

    public init(count: Int, dimension: Int, rng: inout SeededRNG) {
        require(count > 0 && dimension > 0, "embedding needs a positive count and dimension")
        self.count = count
        self.dimension = dimension
        var w = Tensor(shape: [count, dimension])
        for i in 0..<w.count { w.data[i] = rng.normal() }
        weight = Parameter(name: "weight", value: w)
    }

    public var parameters: [Parameter] { [weight] }

    /// Looks up `indices` (laid out as `shape`, `indices.count == shape` product); result `shape + [E]`.
    public func forward(_ indices: [Int32], shape: [Int]) -> Tensor {
        require(indices.count == shape.reduce(1, *), "\(indices.count) indices for shape \(shape)")
        let E = dimension
        var y = Tensor(shape: shape + [E])
        weight.value.data.withUnsafeBufferPointer { w in
            y.data.withUnsafeMutableBufferPointer { out in
                guard let wp = w.baseAddress, let op = out.baseAddress else { return }
                for (n, index) in indices.enumerated() {
                    let v = Int(index)
                    require(v >= 0 && v < count, "embedding index \(v) outside 0..<\(count)")
                    (op + n * E).update(from: wp + v * E, count: E)
                }
            }
        }
        return y
    }

    /// Looks up batch-major `indices` (B·T) into a time-major (T,B,E) buffer, as a recurrent layer
    /// reads its input: row (t, b) is weight[indices[b·T + t]].
    func forwardTimeMajor(_ indices: [Int32], batch B: Int, steps T: Int) -> LayerBuffer {
        require(indices.count == B * T, "\(indices.count) indices for \(B)×\(T)")
        let E = dimension
        let y = LayerBuffer(T * B * E, zeroed: false)
        weight.value.data.withUnsafeBufferPointer { w in
            guard let wp = w.baseAddress else { return }
            for t in 0..<T {
                for b in 0..<B {
                    let v = Int(indices[b * T + t])
                    require(v >= 0 && v < count, "embedding index \(v) outside 0..<\(count)")
                    (y.pointer + (t * B + b) * E).update(from: wp + v * E, count: E)
                }
            }
        }
        return y
    }

    /// `backward` for a time-major (T,B,E) gradient of batch-major `indices` (B·T).
    func backwardTimeMajor(_ dOutput: LayerBuffer, indices: [Int32], batch B: Int, steps T: Int) {
        let E = dimension
        require(dOutput.count >= B * T * E && indices.count == B * T, "gradient must hold \(T)×\(B)×\(E)")
        weight.grad.data.withUnsafeMutableBufferPointer { dw in
            guard let dwp = dw.baseAddress else { return }
            for b in 0..<B {
                for t in 0..<T {
                    let v = Int(indices[b * T + t])
                    require(v >= 0 && v < count, "embedding index \(v) outside 0..<\(count)")
                    rc_add_rows(1, E, dOutput.pointer + (t * B + b) * E, E, dwp + v * E)
                }
            }
        }
    }

    /// Accumulates `dOutput` (indices shape + [E]) into the rows of `weight.grad` that were looked up.
    public func backward(_ dOutput: Tensor, indices: [Int32]) {
        let E = dimension
        require(dOutput.count == indices.count * E, "gradient has \(dOutput.count) elements, expected \(indices.count)×\(E)")
        dOutput.data.withUnsafeBufferPointer { dy in
            weight.grad.data.withUnsafeMutableBufferPointer { dw in
                guard let dyp = dy.baseAddress, let dwp = dw.baseAddress else { return }
                for index in indices {
                    require(index >= 0 && Int(index) < count, "embedding index \(index) outside 0..<\(count)")
                }
                rc_scatter_add_rows(indices.count, E, dyp, E, indices, dwp, E)
            }
        }
    }
}
