import Foundation

/// One named series of (x, y) points. Points whose y is not finite (or ≤ 0 on a log axis) break
/// the line; they are not drawn.
public struct ChartSeries: Sendable {
    public var name: String
    public var points: [(x: Double, y: Double)]
    public init(name: String, points: [(x: Double, y: Double)]) {
        self.name = name
        self.points = points
    }
}

/// The look of series number `i`: a colour from `HTMLPage.palette`, a dash pattern and a marker,
/// all three different for the first eight series, and any two of the first 32 differing in at
/// least two of the three, so the chart reads in grey or for a reader who does not tell the
/// colours apart.
struct SeriesStyle {
    static let dashes = ["", "7 4", "2 3", "10 3 2 3", "4 4", "1 4", "12 4", "6 2 2 2 2 2"]
    static let markers = ["circle", "square", "triangle", "diamond", "cross", "plus", "triangle-down", "bar"]
    let colour: String
    let dash: String
    let marker: String

    init(_ i: Int) {
        colour = HTMLPage.palette[i % HTMLPage.palette.count]
        dash = Self.dashes[(i + i / 8) % Self.dashes.count]
        marker = Self.markers[(i + 2 * (i / 8)) % Self.markers.count]
    }

    /// An SVG marker centred on (x, y).
    func markerSVG(_ x: Double, _ y: Double, size r: Double = 4) -> String {
        let p = { (v: Double) in SVG.n(v) }
        switch marker {
        case "circle": return "<circle cx=\"\(p(x))\" cy=\"\(p(y))\" r=\"\(p(r))\" fill=\"\(colour)\"/>"
        case "square": return "<rect x=\"\(p(x - r))\" y=\"\(p(y - r))\" width=\"\(p(2 * r))\" height=\"\(p(2 * r))\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\"/>"
        case "triangle": return "<path d=\"M\(p(x)) \(p(y - r))L\(p(x + r)) \(p(y + r))L\(p(x - r)) \(p(y + r))Z\" fill=\"\(colour)\"/>"
        case "triangle-down": return "<path d=\"M\(p(x)) \(p(y + r))L\(p(x + r)) \(p(y - r))L\(p(x - r)) \(p(y - r))Z\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\"/>"
        case "diamond": return "<path d=\"M\(p(x)) \(p(y - r))L\(p(x + r)) \(p(y))L\(p(x)) \(p(y + r))L\(p(x - r)) \(p(y))Z\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\"/>"
        case "cross": return "<path d=\"M\(p(x - r)) \(p(y - r))L\(p(x + r)) \(p(y + r))M\(p(x - r)) \(p(y + r))L\(p(x + r)) \(p(y - r))\" stroke=\"\(colour)\" stroke-width=\"2\"/>"
        case "plus": return "<path d=\"M\(p(x - r)) \(p(y))L\(p(x + r)) \(p(y))M\(p(x)) \(p(y - r))L\(p(x)) \(p(y + r))\" stroke=\"\(colour)\" stroke-width=\"2\"/>"
        default: return "<rect x=\"\(p(x - r))\" y=\"\(p(y - r / 2))\" width=\"\(p(2 * r))\" height=\"\(p(r))\" fill=\"\(colour)\"/>"
        }
    }
}

/// Small helpers shared by the chart writers.
enum SVG {
    /// A coordinate with at most two decimals.
    static func n(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        return r == r.rounded() ? String(Int(r)) : String(r)
    }

    /// Tick label: short, plain for ordinary magnitudes, scientific otherwise.
    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e5 || a < 1e-3 { return String(format: "%.0e", v) }
        if a >= 100 || v == v.rounded() { return String(format: "%.0f", v) }
        if a >= 1 { return String(format: "%.1f", v) }
        return String(format: "%.3g", v)
    }

    /// The opening `<svg>` tag (class "chart", labelled with the title), a white background and the
    /// title in bold at (titleX, titleY).
    static func open(width: Double, height: Double, title: String, titleX: Double, titleY: Double) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 \(n(width)) \(n(height))\" width=\"\(n(width))\" height=\"\(n(height))\" role=\"img\" aria-label=\"\(HTMLPage.escape(title))\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n"
            + "<text x=\"\(n(titleX))\" y=\"\(n(titleY))\" font-weight=\"bold\">\(HTMLPage.escape(title))</text>\n"
    }

    /// Label of the log-axis tick 10^e: plain for 0.001 … 10⁴, "1e-7" style otherwise.
    static func logLabel(_ e: Double) -> String {
        let v = pow(10, e)
        if e >= -3 && e <= 4 { return SVG.label((v * 1000).rounded() / 1000) }
        return e == e.rounded() ? "1e\(Int(e))" : String(format: "%.0e", v)
    }

    /// A polyline's points (in x order) reduced to the first, lowest, highest and last point of
    /// each `column` (in x order): drawn at that resolution, the same picture with at most four
    /// vertices per column (a 4-million-point forecast history made a 64 MB SVG).
    static func perColumn(_ points: [(x: Double, y: Double)], column: (Double) -> Int) -> [(x: Double, y: Double)] {
        var out: [(x: Double, y: Double)] = []
        var i = 0
        while i < points.count {
            let c = column(points[i].x)
            var j = i, low = i, high = i
            while j < points.count && column(points[j].x) == c {
                if points[j].y < points[low].y { low = j }
                if points[j].y > points[high].y { high = j }
                j += 1
            }
            for k in Set([i, low, high, j - 1]).sorted() { out.append(points[k]) }
            i = j
        }
        return out
    }

    /// About `count` round tick values covering [lo, hi]; just lo when the span is below what a
    /// Double can step through (say 0.002 … 0.002 + 1 ulp), where adding the step would not move.
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard hi > lo, lo.isFinite, hi.isFinite, hi - lo > 1e-12 * max(abs(lo), abs(hi)) else { return [lo] }
        let raw = (hi - lo) / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var out: [Double] = []
        var t = ceil(lo / step) * step
        while t <= hi + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }
}

/// A line chart as standalone SVG: axes with ticks, optional log-scale y, one polyline per series
/// with markers at up to 12 points, and a legend. Each series' group carries `data-n` (its
/// number of drawn points), which `HTMLPage` counts into the `data-ready` marker.
public struct LineChart: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var logY = false
    /// Draw the x axis from high to low (for "steps back in time").
    public var reverseX = false
    public var series: [ChartSeries]
    /// Points below this are not drawn (a zoomed view of a log axis); nil draws everything.
    public var yMin: Double?
    public var width = 720.0
    public var height = 400.0

    public init(title: String, xLabel: String, yLabel: String, logY: Bool = false, series: [ChartSeries]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.logY = logY
        self.series = series
    }

    /// The drawable points of a series (finite; positive on a log axis).
    func drawable(_ s: ChartSeries) -> [(x: Double, y: Double)] {
        s.points.filter(isDrawable)
    }

    func isDrawable(_ p: (x: Double, y: Double)) -> Bool {
        p.x.isFinite && p.y.isFinite && (!logY || p.y > 0) && p.y >= (yMin ?? -.infinity)
    }

    public func svg() -> String {
        let left = 70.0, right = 20.0, top = 34.0
        let plotW = width - left - right, plotH = height - top - 48
        let totalH = height + 18 * Double(series.count) + 12
        let all = series.flatMap(drawable)
        var xlo = all.map(\.x).min() ?? 0, xhi = all.map(\.x).max() ?? 1
        if xhi <= xlo { xhi = xlo + 1 }
        var ylo: Double, yhi: Double
        var yTicks: [Double]
        if logY {
            let ly = all.map { log10($0.y) }
            ylo = floor((ly.min() ?? -1) + 1e-6); yhi = ceil((ly.max() ?? 1) - 1e-6)
            if yhi <= ylo { yhi = ylo + 1 }
            let span = Int(yhi - ylo)
            let every = [1, 2, 5, 10, 20, 50, 100, 200, 500].first { span <= 8 * $0 } ?? 1000
            let first = Int((ylo / Double(every)).rounded(.up)) * every
            yTicks = stride(from: first, through: Int(yhi), by: every).map(Double.init)
            if span <= 2 {  // few decades: also 2× and 5× each power of ten
                yTicks = (Int(ylo)..<Int(yhi)).flatMap { e in [1.0, 2, 5].map { log10($0) + Double(e) } } + [yhi]
            }
        } else {
            ylo = all.map(\.y).min() ?? 0; yhi = all.map(\.y).max() ?? 1
            if yhi - ylo <= 1e-9 * max(abs(ylo), abs(yhi)) {  // constant, or equal but for rounding
                let d = ylo != 0 ? abs(ylo) * 0.1 : 1  // a constant series: a band around it
                yhi = ylo + d; ylo -= d
            }
            let pad = (yhi - ylo) * 0.05
            ylo -= pad; yhi += pad
            yTicks = SVG.ticks(ylo, yhi)
        }
        let xTicks = SVG.ticks(xlo, xhi)
        if reverseX { swap(&xlo, &xhi) }
        func px(_ x: Double) -> Double { left + (x - xlo) / (xhi - xlo) * plotW }
        func py(_ y: Double) -> Double {
            let v = logY ? log10(y) : y
            return top + (1 - (v - ylo) / (yhi - ylo)) * plotH
        }
        var s = SVG.open(width: width, height: totalH, title: title, titleX: left, titleY: 20)
        for t in yTicks {
            let y = py(logY ? pow(10, t) : t)
            s += "<line class=\"grid\" x1=\"\(SVG.n(left))\" x2=\"\(SVG.n(left + plotW))\" y1=\"\(SVG.n(y))\" y2=\"\(SVG.n(y))\"/>"
            let text = logY ? SVG.logLabel(t) : SVG.label(t)
            s += "<text x=\"\(SVG.n(left - 6))\" y=\"\(SVG.n(y + 4))\" text-anchor=\"end\">\(text)</text>\n"
        }
        for t in xTicks {
            let x = px(t)
            s += "<line class=\"grid\" x1=\"\(SVG.n(x))\" x2=\"\(SVG.n(x))\" y1=\"\(SVG.n(top))\" y2=\"\(SVG.n(top + plotH))\"/>"
            s += "<text x=\"\(SVG.n(x))\" y=\"\(SVG.n(top + plotH + 16))\" text-anchor=\"middle\">\(SVG.label(t))</text>\n"
        }
        s += "<path class=\"axis\" fill=\"none\" d=\"M\(SVG.n(left)) \(SVG.n(top))V\(SVG.n(top + plotH))H\(SVG.n(left + plotW))\"/>\n"
        s += "<text x=\"\(SVG.n(left + plotW / 2))\" y=\"\(SVG.n(top + plotH + 34))\" text-anchor=\"middle\">\(HTMLPage.escape(xLabel))</text>\n"
        s += "<text transform=\"translate(16 \(SVG.n(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(HTMLPage.escape(yLabel + (logY ? " (log scale)" : "")))</text>\n"
        for (i, ser) in series.enumerated() {
            let style = SeriesStyle(i)
            let pts = drawable(ser)
            s += "<g data-n=\"\(pts.count)\"><title>\(HTMLPage.escape(ser.name))</title>"
            // One polyline per run of consecutive drawable points; a series with more points than
            // the plot has half-pixel columns is drawn per column (`SVG.perColumn`).
            let decimate = pts.count > Int(2 * plotW)
            var run: [(x: Double, y: Double)] = []
            func flush() {
                let kept = decimate ? SVG.perColumn(run) { Int((2 * px($0)).rounded(.down)) } : run
                if kept.count > 1 {
                    let list = kept.map { "\(SVG.n(px($0.x))),\(SVG.n(py($0.y)))" }.joined(separator: " ")
                    s += "<polyline fill=\"none\" stroke=\"\(style.colour)\" stroke-width=\"2\"" + (style.dash.isEmpty ? "" : " stroke-dasharray=\"\(style.dash)\"") + " points=\"\(list)\"/>"
                }
                run = []
            }
            for p in ser.points {
                if isDrawable(p) { run.append(p) } else { flush() }
            }
            flush()
            let every = max(1, pts.count / 12)
            for (k, p) in pts.enumerated() where k % every == 0 || pts.count == 1 { s += style.markerSVG(px(p.x), py(p.y)) }
            s += "</g>\n"
            // Legend entry.
            let ly = top + plotH + 52 + 18 * Double(i)
            s += "<line x1=\"\(SVG.n(left))\" x2=\"\(SVG.n(left + 36))\" y1=\"\(SVG.n(ly))\" y2=\"\(SVG.n(ly))\" stroke=\"\(style.colour)\" stroke-width=\"2\"" + (style.dash.isEmpty ? "" : " stroke-dasharray=\"\(style.dash)\"") + "/>"
            s += style.markerSVG(left + 18, ly)
            s += "<text x=\"\(SVG.n(left + 44))\" y=\"\(SVG.n(ly + 4))\">\(HTMLPage.escape(ser.name))</text>\n"
        }
        return s + "</svg>\n"
    }
}
