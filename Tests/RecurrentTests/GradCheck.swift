@testable import Recurrent

/// Central-difference gradient checks for the layer tests.
enum GradCheck {
    /// The worst element of |numeric − analytic| / (absTol + relTol·|analytic|) over `count`
    /// elements read and written through the closures; ≤ 1 passes. Also returns the max abs error.
    static func worst(analytic: [Float], eps: Float = 1e-2, absTol: Double = 1e-3, relTol: Double = 1e-2,
                      read: (Int) -> Float, write: (Int, Float) -> Void, loss: () -> Double) -> (ratio: Double, maxAbs: Double) {
        var ratio = 0.0, maxAbs = 0.0
        for i in 0..<analytic.count {
            let v = read(i)
            write(i, v + eps)
            let plus = loss()
            write(i, v - eps)
            let minus = loss()
            write(i, v)
            // The step actually taken in Float, so rounding of v ± eps does not bias the quotient.
            let step = Double(v + eps) - Double(v - eps)
            let numeric = (plus - minus) / step
            let diff = abs(numeric - Double(analytic[i]))
            maxAbs = max(maxAbs, diff)
            ratio = max(ratio, diff / (absTol + relTol * abs(Double(analytic[i]))))
        }
        return (ratio, maxAbs)
    }

    /// Checks every element of a parameter's value against its accumulated gradient.
    static func parameter(_ p: Parameter, eps: Float = 1e-2, loss: () -> Double) -> (ratio: Double, maxAbs: Double) {
        worst(analytic: p.grad.data, eps: eps, read: { p.value.data[$0] }, write: { p.value.data[$0] = $1 }, loss: loss)
    }

    /// Σ a·w in Double.
    static func dot(_ a: Tensor, _ w: Tensor) -> Double {
        precondition(a.count == w.count)
        var s = 0.0
        for i in 0..<a.count { s += Double(a.data[i]) * Double(w.data[i]) }
        return s
    }

    /// A tensor with entries uniform in [-scale, scale).
    static func random(_ shape: [Int], scale: Float = 1, rng: inout SeededRNG) -> Tensor {
        var t = Tensor(shape: shape)
        for i in 0..<t.count { t.data[i] = rng.uniform(-scale, scale) }
        return t
    }
}
