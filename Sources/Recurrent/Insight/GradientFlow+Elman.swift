import Foundation

extension GradientFlow {
    /// The activation of the plain-loop Elman RNN.
    public enum Activation: Sendable { case tanh, sigmoid }

    /// ‖∂loss/∂h_t‖ of an Elman RNN with `activation`, on the weights of a one-layer RNN `layer`,
    /// by a plain loop (a reference, and the only way to get the sigmoid RNN):
    ///
    ///     forward   h_t = act(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)
    ///     backward  dh_T = dFinal;  dpre_t = dh_t ⊙ act'(h_t);  dh_{t−1} = W_hhᵀ dpre_t
    ///
    /// - Returns: k = 0 … T−1, mean over the S sequences, as `hiddenGradientNorms`.
    public static func elmanNorms(layer: RecurrentLayer, x: Tensor, dFinal: Tensor, activation: Activation) -> [Double] {
        require(layer.kind.gateCount == 1 && layer.numLayers == 1, "elmanNorms reads a one-layer RNN's weights")
        let S = x.shape[0], T = x.shape[1], D = x.shape[2], H = layer.hiddenSize
        let wih = layer.parameters[0].value.data, whh = layer.parameters[1].value.data
        let bias = zip(layer.parameters[2].value.data, layer.parameters[3].value.data).map { Double($0) + Double($1) }
        var out = [Double](repeating: 0, count: T)
        for q in 0..<S {
            var h = [[Double]](repeating: [Double](repeating: 0, count: H), count: T + 1)
            for t in 1...T {
                for j in 0..<H {
                    var pre = bias[j]
                    for d in 0..<D { pre += Double(wih[j * D + d]) * Double(x.data[(q * T + t - 1) * D + d]) }
                    for i in 0..<H { pre += Double(whh[j * H + i]) * h[t - 1][i] }
                    h[t][j] = activation == .tanh ? Foundation.tanh(pre) : 1 / (1 + Foundation.exp(-pre))
                }
            }
            var dh = (0..<H).map { Double(dFinal.data[q * H + $0]) }
            var dpre = [Double](repeating: 0, count: H)
            for k in 0..<T {
                let t = T - k
                var n2 = 0.0
                for j in 0..<H { n2 += dh[j] * dh[j] }
                out[k] += n2.squareRoot() / Double(S)
                for j in 0..<H {
                    let v = h[t][j]
                    let slope = activation == .tanh ? 1 - v * v : v * (1 - v)
                    dpre[j] = dh[j] * slope
                }
                for i in 0..<H {
                    var sum = 0.0
                    for j in 0..<H { sum += Double(whh[j * H + i]) * dpre[j] }
                    dh[i] = sum
                }
            }
        }
        return out
    }
}
