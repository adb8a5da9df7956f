import Foundation

/// A self-contained SVG line chart of a forecast: history (solid grey), truth (solid blue, thicker)
/// and forecast (dashed orange, with dots), so the lines differ by pattern and weight as well as
/// colour. Axes with tick labels, a legend and a title; no scripts, fonts or external files.
public enum ForecastPlot {
    /// One line: points (x index, y value); `nil` y values break the line.
    public struct Line: Sendable {
        public var label: String
        public var points: [(x: Int, y: Double)]
        public init(label: String, points: [(x: Int, y: Double)]) {
            self.label = label
            self.points = points
        }
    }

    /// - Parameters:
    ///   - xLabels: a text per x index (dates); empty strings fall back to the index.
    public static func svg(title: String, history: Line, truth: Line, forecast: Line, xLabels: [String],
                           width: Int = 960, height: Int = 440) -> String {
        let left = 70.0, right = 40.0, top = 40.0, bottom = 60.0
        let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
        let all = history.points + truth.points + forecast.points
        let xs = all.map(\.x), ys = all.map(\.y)
        let x0 = Double(xs.min() ?? 0), x1 = Double(max((xs.max() ?? 1), (xs.min() ?? 0) + 1))
        var y0 = ys.min() ?? 0, y1 = ys.max() ?? 1
        if y1 - y0 < 1e-12 { y0 -= 1; y1 += 1 }
        let pad = (y1 - y0) * 0.05
        y0 -= pad; y1 += pad
        func px(_ x: Int) -> Double { left + (Double(x) - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotH }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<title>\(esc(title))</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(f(left))\" y=\"24\" font-size=\"15\">\(esc(title))</text>\n"
        // Axes and ticks.
        s += "<g stroke=\"black\" stroke-width=\"1\"><line x1=\"\(f(left))\" y1=\"\(f(top + plotH))\" x2=\"\(f(left + plotW))\" y2=\"\(f(top + plotH))\"/>"
        s += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + plotH))\"/></g>\n"
        for yv in niceTicks(y0, y1, count: 6) {
            let y = py(yv)
            s += "<line x1=\"\(f(left - 4))\" y1=\"\(f(y))\" x2=\"\(f(left + plotW))\" y2=\"\(f(y))\" stroke=\"#dddddd\"/>"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(esc(label(yv)))</text>\n"
        }
        let lo = Int(x0), hi = Int(x1)
        for k in 0...6 {
            let xi = lo + (hi - lo) * k / 6
            let x = px(xi)
            let text = label(x: xi, xLabels)
            s += "<line x1=\"\(f(x))\" y1=\"\(f(top + plotH))\" x2=\"\(f(x))\" y2=\"\(f(top + plotH + 4))\" stroke=\"black\"/>"
            s += "<text x=\"\(f(x))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(esc(text))</text>\n"
        }
        // Lines: style = (colour, width, dash).
        let styles = [("#777777", 1.2, ""), ("#1f5fbf", 2.0, ""), ("#e06000", 1.8, " stroke-dasharray=\"6 4\"")]
        for (line, style) in zip([history, truth, forecast], styles) where !line.points.isEmpty {
            // More points than half-pixel columns: each column's first, lowest, highest and last.
            let points = line.points.map { (x: Double($0.x), y: $0.y) }
            let kept = points.count > Int(2 * plotW) ? SVG.perColumn(points) { Int((2 * px(Int($0))).rounded(.down)) } : points
            let path = kept.enumerated().map { i, p in (i == 0 ? "M" : "L") + f(px(Int(p.x))) + "," + f(py(p.y)) }.joined(separator: " ")
            s += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(style.0)\" stroke-width=\"\(style.1)\"\(style.2)><title>\(esc(line.label))</title></path>\n"
        }
        if forecast.points.count <= 200 {
            for p in forecast.points { s += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"2\" fill=\"#e06000\"/>" }
            s += "\n"
        }
        // Legend.
        var lx = left + 10
        let ly = Double(height) - 18
        for (line, style) in zip([history, truth, forecast], styles) {
            s += "<line x1=\"\(f(lx))\" y1=\"\(f(ly))\" x2=\"\(f(lx + 30))\" y2=\"\(f(ly))\" stroke=\"\(style.0)\" stroke-width=\"\(style.1)\"\(style.2)/>"
            s += "<text x=\"\(f(lx + 36))\" y=\"\(f(ly + 4))\">\(esc(line.label))</text>\n"
            lx += 50 + Double(line.label.count) * 7
        }
        s += "</svg>\n"
        return s
    }

    /// The label of x index `i`: its text, or past the labelled range "last+k" (k steps after the
    /// last label), or the index itself when there are no labels.
    static func label(x i: Int, _ xLabels: [String]) -> String {
        if i < xLabels.count, !xLabels[i].isEmpty { return xLabels[i] }
        if i >= xLabels.count, let last = xLabels.last, !last.isEmpty { return "\(last)+\(i - xLabels.count + 1)" }
        return String(i)
    }

    /// About `count` round tick values covering [lo, hi].
    static func niceTicks(_ lo: Double, _ hi: Double, count: Int) -> [Double] {
        let raw = (hi - lo) / Double(max(count - 1, 1))
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var v = ceil(lo / step) * step
        var out: [Double] = []
        while v <= hi + 1e-9 * step { out.append(v); v += step }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e9 { return String(Int(v)) }
        return String(format: abs(v) >= 100 ? "%.0f" : "%.2f", v)
    }
}
