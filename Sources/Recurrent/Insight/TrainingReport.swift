import Foundation

/// The training-curves report that `recurrent train --report DIR` keeps up to date: `index.html`
/// and one SVG per chart (train and validation loss against steps and against time, learning
/// rate, gradient norm, characters per second), with the samples taken at each evaluation beside
/// the curves. Every file is rewritten atomically at each evaluation, so a browser reloading the
/// page never sees half a file.
public final class TrainingReport {
    public struct StepRecord: Sendable {
        public var step: Int
        public var seconds: Double
        public var trainLoss: Double
        public var learningRate: Double
        public var gradNorm: Double
        public var charsPerSecond: Double
    }

    public struct Evaluation: Sendable {
        public var step: Int
        public var seconds: Double
        public var validationLoss: Double
        public var sample: String
    }

    public let directory: String
    public let title: String
    public private(set) var steps: [StepRecord] = []
    public private(set) var evaluations: [Evaluation] = []
    /// Charts draw at most this many points per series (bucket means beyond it).
    public var maxPoints = 1500

    /// The folder is created (one level) when missing.
    public init(directory: String, title: String) throws {
        try OutputFolder.ensure(directory, flag: "--report")
        self.directory = directory
        self.title = title
    }

    public func record(_ p: TrainingProgress) {
        steps.append(StepRecord(step: p.step, seconds: p.elapsedSeconds, trainLoss: p.stepLoss, learningRate: Double(p.learningRate),
                                gradNorm: Double(p.gradNorm), charsPerSecond: p.charsPerSecond))
    }

    /// Adds an evaluation and rewrites every file.
    public func evaluated(_ p: TrainingProgress, validationLoss: Double, sample: String) throws {
        evaluations.append(Evaluation(step: p.step, seconds: p.elapsedSeconds, validationLoss: validationLoss, sample: sample))
        try write()
    }

    /// `values` thinned to at most `maxPoints` by averaging consecutive buckets.
    func thin(_ values: [(x: Double, y: Double)]) -> [(x: Double, y: Double)] {
        guard values.count > maxPoints else { return values }
        let per = (values.count + maxPoints - 1) / maxPoints
        return stride(from: 0, to: values.count, by: per).map { i in
            let bucket = values[i..<min(i + per, values.count)]
            return (bucket.map(\.x).reduce(0, +) / Double(bucket.count), bucket.map(\.y).reduce(0, +) / Double(bucket.count))
        }
    }

    /// The charts as (file name, SVG).
    public func charts() -> [(String, String)] {
        let train = { (x: KeyPath<StepRecord, Double>) in self.thin(self.steps.map { ($0[keyPath: x], $0.trainLoss) }) }
        let stepX = \StepRecord.stepDouble, timeX = \StepRecord.seconds
        let val = { (time: Bool) in self.evaluations.map { (time ? $0.seconds : Double($0.step), $0.validationLoss) } }
        func chart(_ title: String, _ x: String, _ y: String, log: Bool = false, _ series: [ChartSeries]) -> String {
            LineChart(title: title, xLabel: x, yLabel: y, logY: log, series: series).svg()
        }
        return [
            ("loss-steps.svg", chart("Loss against steps", "step", "cross-entropy (nats/char)",
                                     [ChartSeries(name: "train (per step; bucket means when long)", points: train(stepX)),
                                      ChartSeries(name: "validation", points: val(false))])),
            ("loss-time.svg", chart("Loss against time", "seconds", "cross-entropy (nats/char)",
                                    [ChartSeries(name: "train (per step; bucket means when long)", points: train(timeX)),
                                     ChartSeries(name: "validation", points: val(true))])),
            ("learning-rate.svg", chart("Learning rate", "step", "learning rate",
                                        [ChartSeries(name: "learning rate", points: thin(steps.map { ($0.stepDouble, $0.learningRate) }))])),
            ("grad-norm.svg", chart("Gradient norm (before clipping)", "step", "global L2 norm", log: true,
                                    [ChartSeries(name: "gradient norm", points: thin(steps.map { ($0.stepDouble, $0.gradNorm) }))])),
            ("speed.svg", chart("Speed", "seconds", "characters per second",
                                [ChartSeries(name: "characters/s (mean since the start)", points: thin(steps.map { ($0.seconds, $0.charsPerSecond) }))])),
        ]
    }

    /// The HTML page, the charts inline.
    public func page() -> String {
        var body = "<h1>Training report</h1>\n<p class=\"note\">\(HTMLPage.escape(title))</p>\n"
        if let last = steps.last {
            let best = evaluations.map(\.validationLoss).min()
            body += "<p>Step \(last.step), \(String(format: "%.0f", last.seconds)) s"
            if let best { body += "; best validation loss \(String(format: "%.4f", best)) nats/char (\(String(format: "%.3f", best / log(2))) bits/char)" }
            body += "; rewritten at each evaluation.</p>\n"
        }
        body += "<div class=\"report\"><div class=\"curves\">"
        for (_, svg) in charts() { body += svg }
        body += "</div>\n<div class=\"samples\"><h2>Samples at each evaluation</h2>\n"
        for e in evaluations.reversed() {
            body += "<div class=\"sample\"><b>step \(e.step)</b> (\(String(format: "%.0f", e.seconds)) s), validation \(String(format: "%.4f", e.validationLoss))"
            body += "<pre>\(HTMLPage.escape(e.sample))</pre></div>\n"
        }
        body += "</div></div>\n"
        let css = """
        .report{display:flex;gap:1em;align-items:flex-start}.curves{flex:0 0 auto;max-width:740px}.samples{flex:1 1 300px;min-width:260px}
        .sample pre{white-space:pre-wrap;background:#f6f6f6;border:1px solid #ddd;padding:.4em;margin:.2em 0 .8em;max-height:16em;overflow:auto}
        @media (max-width:1100px){.report{flex-direction:column}}
        @media print{.report{display:block}.sample pre{max-height:none;overflow:visible}}
        """
        return HTMLPage.render(title: "Training report", body: body, css: css)
    }

    /// Writes index.html and the SVGs, each atomically.
    public func write() throws {
        let dir = URL(fileURLWithPath: directory)
        for (name, svg) in charts() {
            try AtomicFile.write(Data(("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n" + svg).utf8), to: dir.appendingPathComponent(name).path)
        }
        try HTMLPage.write(page(), to: dir.appendingPathComponent("index.html").path)
    }
}

extension TrainingReport.StepRecord {
    var stepDouble: Double { Double(step) }
}
