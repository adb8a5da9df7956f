import Foundation

/// A scatter plot on the unit square (both axes 0…1), markers only, with a legend; used for the
/// gate-saturation plots of Karpathy, Johnson and Fei-Fei (2015).
public struct ScatterChart: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [ChartSeries]
    public var size = 340.0

    public init(title: String, xLabel: String, yLabel: String, series: [ChartSeries]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    public func svg() -> String {
        let left = 52.0, top = 30.0, plot = size - left - 16
        let totalH = top + plot + 44 + 18 * Double(series.count)
        func px(_ x: Double) -> Double { left + x * plot }
        func py(_ y: Double) -> Double { top + (1 - y) * plot }
        var s = SVG.open(width: size, height: totalH, title: title, titleX: left, titleY: 18)
        for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
            s += "<line class=\"grid\" x1=\"\(SVG.n(px(0)))\" x2=\"\(SVG.n(px(1)))\" y1=\"\(SVG.n(py(t)))\" y2=\"\(SVG.n(py(t)))\"/>"
            s += "<line class=\"grid\" x1=\"\(SVG.n(px(t)))\" x2=\"\(SVG.n(px(t)))\" y1=\"\(SVG.n(py(0)))\" y2=\"\(SVG.n(py(1)))\"/>"
            s += "<text x=\"\(SVG.n(left - 5))\" y=\"\(SVG.n(py(t) + 4))\" text-anchor=\"end\">\(SVG.label(t))</text>"
            s += "<text x=\"\(SVG.n(px(t)))\" y=\"\(SVG.n(py(0) + 15))\" text-anchor=\"middle\">\(SVG.label(t))</text>\n"
        }
        // The diagonal x + y = 1: points on it are always saturated one way or the other.
        s += "<line x1=\"\(SVG.n(px(0)))\" y1=\"\(SVG.n(py(1)))\" x2=\"\(SVG.n(px(1)))\" y2=\"\(SVG.n(py(0)))\" stroke=\"#999\" stroke-dasharray=\"3 3\"/>\n"
        s += "<path class=\"axis\" fill=\"none\" d=\"M\(SVG.n(px(0))) \(SVG.n(py(1)))V\(SVG.n(py(0)))H\(SVG.n(px(1)))\"/>\n"
        s += "<text x=\"\(SVG.n(px(0.5)))\" y=\"\(SVG.n(py(0) + 32))\" text-anchor=\"middle\">\(HTMLPage.escape(xLabel))</text>\n"
        s += "<text transform=\"translate(14 \(SVG.n(py(0.5)))) rotate(-90)\" text-anchor=\"middle\">\(HTMLPage.escape(yLabel))</text>\n"
        for (i, ser) in series.enumerated() {
            let style = SeriesStyle(i)
            let pts = ser.points.filter { $0.x.isFinite && $0.y.isFinite }
            s += "<g data-n=\"\(pts.count)\" opacity=\"0.8\"><title>\(HTMLPage.escape(ser.name))</title>"
            for p in pts { s += style.markerSVG(px(p.x), py(p.y), size: 3.5) }
            s += "</g>\n"
            let ly = py(0) + 52 + 18 * Double(i)
            s += style.markerSVG(left + 8, ly - 4)
            s += "<text x=\"\(SVG.n(left + 20))\" y=\"\(SVG.n(ly))\">\(HTMLPage.escape(ser.name))</text>\n"
        }
        return s + "</svg>\n"
    }
}
