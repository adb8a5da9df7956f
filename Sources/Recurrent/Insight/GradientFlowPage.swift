import Foundation

extension GradientFlow {
    /// The curves of a char-LM checkpoint, one per layer: loss_T is the cross-entropy of the
    /// character after step T, averaged over `windows` (each T+1 tokens: T inputs and the target).
    ///
    /// For the top layer the curve is the full ‖∂loss_T/∂h_t‖. For a lower layer l it is the
    /// gradient on the state that layer l carries from step t to t+1 (what `backward` returns as
    /// the initial-state gradient), which leaves out the path from h_t^(l) into layer l+1 at the
    /// same step t; so at t = T it is 0 (not drawn on the log scale).
    public static func measure(model: CharLM, windows: [[Int32]]) -> [Curve] {
        require(!windows.isEmpty && windows.allSatisfy { $0.count == windows[0].count && $0.count >= 2 }, "windows of equal length ≥ 2")
        let S = windows.count, T = windows[0].count - 1, H = model.config.hiddenSize
        let inputs = windows.flatMap { $0.prefix(T) }
        let targets = windows.map { $0[T] }
        let x = model.embedding.forward(inputs, shape: [S, T])
        var rng = SeededRNG(seed: 0)
        let (y, _, _) = model.rnn.forward(x, state: nil, mode: .inference, rng: &rng)
        var last = Tensor(shape: [S, H])
        for q in 0..<S { for j in 0..<H { last.data[q * H + j] = y.data[(q * T + T - 1) * H + j] } }
        let z = model.head.forward(last)
        let (_, dz) = Loss.softmaxCrossEntropy(logits: z, targets: targets)
        let saved = model.head.parameters.map(\.grad)
        var dFinal = model.head.backward(dz, input: last)
        for (p, g) in zip(model.head.parameters, saved) { p.grad = g }
        for i in 0..<dFinal.count { dFinal.data[i] *= Float(S) }  // per-sequence loss, not the batch mean
        let perLayer = hiddenGradientNorms(layer: model.rnn, x: x, dFinal: dFinal)
        let pnorm = parameterGradientNorm(layer: model.rnn, x: x, dFinal: dFinal)
        let overflow = forwardOverflowStep(layer: model.rnn, x: x)
        return perLayer.enumerated().map { l, norms in
            Curve(name: "checkpoint \(model.config.cell.cliName) layer \(l + 1) of \(model.config.numLayers)", norms: norms,
                  parameterGradientNorm: l == perLayer.count - 1 ? pnorm : nil, forwardOverflow: overflow)
        }
    }

    /// The curves as JSON: `{"length": T, …meta, "curves": [{"name", "norms" (t = T … 1),
    /// "factor_per_step", "steps_to_1e-3", "steps_to_1e-6", "steps_to_overflow" (the gradient's),
    /// "forward_overflow_step" (the states'; then nothing is measured), "parameter_gradient_norm"}]}`.
    public static func json(_ curves: [Curve], meta: [(String, String)]) -> String {
        func num(_ v: Double?) -> String {
            guard let v, v.isFinite else { return "null" }
            return String(format: "%.6g", v)
        }
        func int(_ v: Int?) -> String { v.map(String.init) ?? "null" }
        var s = "{\n" + meta.map { "  \(HTMLPage.jsString($0.0)): \($0.1)," }.joined(separator: "\n") + "\n  \"curves\": [\n"
        s += curves.map { c in
            "    {\"name\": \(HTMLPage.jsString(c.name)), \"factor_per_step\": \(num(c.factorPerStep)), "
                + "\"steps_to_1e-3\": \(int(c.stepsBelow(1e-3))), \"steps_to_1e-6\": \(int(c.stepsBelow(1e-6))), "
                + "\"steps_to_overflow\": \(int(c.overflowStep)), \"forward_overflow_step\": \(int(c.forwardOverflow)), "
                + "\"parameter_gradient_norm\": \(num(c.parameterGradientNorm)),\n     \"norms\": ["
                + c.shownNorms.map { num($0) }.joined(separator: ", ") + "]}"
        }.joined(separator: ",\n")
        return s + "\n  ]\n}\n"
    }

    /// The HTML page: the curves on one log-scale chart against steps back from T, a table of the
    /// per-step factor and of how far back the gradient keeps 10⁻³ and 10⁻⁶ of its size.
    public static func page(_ curves: [Curve], description: String, clipNote: String?) -> String {
        var chart = LineChart(title: "‖∂loss_T / ∂h_t‖ against steps back in time", xLabel: "steps back from T (T − t)",
                              yLabel: "gradient norm", logY: true,
                              series: curves.map { c in ChartSeries(name: c.name, points: c.shownNorms.enumerated().map { (Double($0.offset), $0.element) }) })
        chart.width = 860
        chart.height = 480
        var zoom = chart
        zoom.title = "The same, from 1 down to 10⁻⁶ (points below are not drawn)"
        zoom.yMin = 1e-6
        var body = "<h1>Gradient flow through time</h1>\n<p class=\"note\">\(HTMLPage.escape(description))</p>\n"
        body += chart.svg() + zoom.svg()
        body += "<h2>Summary</h2>\n<table><tr><th>curve</th><th>factor per step</th><th>steps back to 10⁻³ of the first positive norm</th><th>steps back to 10⁻⁶ of the first positive norm</th><th>parameter gradient norm</th></tr>\n"
        func f(_ v: Double?, _ fmt: String = "%.3g") -> String { v.map { $0.isFinite ? String(format: fmt, $0) : "∞" } ?? "–" }
        for c in curves {
            body += "<tr><td>\(HTMLPage.escape(c.name))</td><td class=\"num\">\(f(c.factorPerStep, "%.4f"))</td>"
            let never = c.forwardOverflow.map { "– (forward overflows at t = \($0))" } ?? c.overflowStep.map { "never (overflows after \($0))" } ?? "never"
            body += "<td class=\"num\">\(c.stepsBelow(1e-3).map(String.init) ?? never)</td><td class=\"num\">\(c.stepsBelow(1e-6).map(String.init) ?? never)</td>"
            body += "<td class=\"num\">\(f(c.parameterGradientNorm))</td></tr>\n"
        }
        body += "</table>\n"
        body += "<p class=\"note\">Factor per step: (‖∂loss_T/∂h_1‖ / ‖∂loss_T/∂h_T‖)^(1/(T−1)), the mean shrink (below 1) or growth (above 1) per step back. "
        body += "Steps back to 10⁻³ and 10⁻⁶: the first step back at which the norm is below that fraction of the curve's first positive norm (normally the one at t = T). "
        body += "Unclipped fresh layers start their curves at 1, so these read straight off the charts; a clipped curve and a checkpoint's curves start at their own norms, which the charts draw as they are. "
        body += "A norm of 0 (or one under 10⁻⁴⁵, float's smallest) cannot be drawn on a log scale; the line stops there.</p>\n"
        if let clipNote { body += "<h2>Gradient clipping</h2>\n<p>\(HTMLPage.escape(clipNote))</p>\n" }
        return HTMLPage.render(title: "Gradient flow", body: body)
    }
}
