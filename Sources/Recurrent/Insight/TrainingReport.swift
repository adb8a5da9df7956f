import Foundation

/// The training-curves report that `recurrent train --report DIR` keeps up to date: `index.html`
/// and one SVG per chart (train and validation loss, learning rate, gradient norm, characters per
/// second, each against steps and against time; the page switches between the two), with the
/// samples taken at each evaluation beside the curves. Every file is rewritten atomically at each evaluation, so a browser reloading the
/// page never sees half a file. The numbers behind the page are kept in `history.json`, so a run
/// resumed into the same folder continues the curves instead of starting them again.
///
/// The task trainers (`classify train`, `tag train`, …, with `--report`) keep the same page with
/// their own `Labels`: their loss, their examples per second, and their validation score (accuracy,
/// BLEU, RMSE or loss) on a chart of its own when it is not the loss.
public final class TrainingReport {
    /// What the page calls its numbers.
    public struct Labels: Sendable {
        /// The loss chart's y axis, e.g. "cross-entropy (nats/char)".
        public var loss: String
        /// What the speed chart counts per second, e.g. "characters".
        public var unit: String
        /// The validation score's name, e.g. "validation loss" or "validation accuracy".
        public var validation: String
        /// Whether the validation score is the loss (drawn on the loss chart, with its value in
        /// bits as well); otherwise it gets its own chart.
        public var validationIsLoss: Bool
        /// Whether a higher validation score is better (accuracy, BLEU).
        public var higherIsBetter: Bool

        public init(loss: String, unit: String, validation: String, validationIsLoss: Bool, higherIsBetter: Bool) {
            self.loss = loss
            self.unit = unit
            self.validation = validation
            self.validationIsLoss = validationIsLoss
            self.higherIsBetter = higherIsBetter
        }

        /// `recurrent train`'s: cross-entropy in nats per character, validated by the loss.
        public static let charLM = Labels(loss: "cross-entropy (nats/char)", unit: "characters", validation: "validation loss",
                                          validationIsLoss: true, higherIsBetter: false)
    }

    public struct StepRecord: Sendable {
        public var step: Int
        public var seconds: Double
        public var trainLoss: Double
        public var learningRate: Double
        public var gradNorm: Double
        /// Units (`Labels.unit`) per second, the mean since the start.
        public var charsPerSecond: Double
    }

    public struct Evaluation: Sendable {
        public var step: Int
        public var seconds: Double
        /// The validation score (`Labels.validation`; the loss for a char-LM).
        public var validation: Double
        public var sample: String
        @available(*, deprecated, renamed: "validation")
        public var validationLoss: Double { validation }
    }

    public let directory: String
    public let title: String
    public let labels: Labels
    public private(set) var steps: [StepRecord] = []
    public private(set) var evaluations: [Evaluation] = []
    /// Charts draw at most this many points per series (bucket means beyond it).
    public var maxPoints = 1500

    /// Seconds of the earlier run(s) a resumed run continues from (added to its elapsed time).
    public private(set) var secondsBefore = 0.0

    static let historyFile = "history.json"

    /// The folder is created (one level) when missing, and `history.json` written at once, so a
    /// folder that cannot be written fails before training starts. With `resumingAt`, the history
    /// of the run being resumed (`history.json`, when the folder has one) is kept up to and
    /// including that step; later records, which the resumed run repeats, are dropped.
    public init(directory: String, title: String, labels: Labels = .charLM, resumingAt resumedStep: Int? = nil) throws {
        try OutputFolder.ensure(directory, flag: "--report")
        self.directory = directory
        self.title = title
        self.labels = labels
        if let resumedStep { try loadHistory(upTo: resumedStep) }
        do { try writeHistory() } catch { throw RecurrentError("--report \(directory): \(error)") }
    }

    public func record(_ p: TrainingProgress) {
        record(step: p.step, seconds: p.elapsedSeconds, trainLoss: p.stepLoss, learningRate: Double(p.learningRate),
               gradNorm: Double(p.gradNorm), perSecond: p.charsPerSecond)
    }

    /// One training step; `seconds` since this run started (a resumed run's earlier time is added).
    public func record(step: Int, seconds: Double, trainLoss: Double, learningRate: Double, gradNorm: Double, perSecond: Double) {
        steps.append(StepRecord(step: step, seconds: secondsBefore + seconds, trainLoss: trainLoss, learningRate: learningRate,
                                gradNorm: gradNorm, charsPerSecond: perSecond))
    }

    /// Adds an evaluation and rewrites every file.
    public func evaluated(_ p: TrainingProgress, validationLoss: Double, sample: String) throws {
        try evaluated(step: p.step, seconds: p.elapsedSeconds, validation: validationLoss, sample: sample)
    }

    /// Adds an evaluation (`validation`: the score `labels` names; `sample`: text shown beside the
    /// curves, or empty) and rewrites every file.
    public func evaluated(step: Int, seconds: Double, validation: Double, sample: String = "") throws {
        evaluations.append(Evaluation(step: step, seconds: secondsBefore + seconds, validation: validation, sample: sample))
        try write()
    }

    /// `history.json`: `{"steps": [[step, seconds, train loss, learning rate, gradient norm, chars/s], …],
    /// "evaluations": [{"step", "seconds", "validation", "sample"}, …]}`, non-finite numbers as null.
    func historyJSON() -> String {
        func num(_ v: Double) -> String { v.isFinite ? String(v) : "null" }
        let rows = steps.map { "[\($0.step),\(num($0.seconds)),\(num($0.trainLoss)),\(num($0.learningRate)),\(num($0.gradNorm)),\(num($0.charsPerSecond))]" }
        let evals = evaluations.map {
            "{\"step\":\($0.step),\"seconds\":\(num($0.seconds)),\"validation\":\(num($0.validation)),\"sample\":\(HTMLPage.jsString($0.sample))}"
        }
        return "{\"steps\":[\n" + rows.joined(separator: ",\n") + "],\n\"evaluations\":[\n" + evals.joined(separator: ",\n") + "]}\n"
    }

    func writeHistory() throws {
        try AtomicFile.write(Data(historyJSON().utf8), to: URL(fileURLWithPath: directory).appendingPathComponent(Self.historyFile).path)
    }

    /// Reads `history.json` (if any) and keeps what happened up to `step`.
    func loadHistory(upTo step: Int) throws {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(Self.historyFile).path
        guard let data = FileManager.default.contents(atPath: path) else { return }
        func num(_ v: Any?) -> Double { (v as? NSNumber)?.doubleValue ?? .nan }
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let rows = obj["steps"] as? [[Any]], let evals = obj["evaluations"] as? [[String: Any]] else {
            throw RecurrentError("--report \(directory): \(path) is not a report history; remove it, or report into another folder")
        }
        steps = rows.compactMap { r in
            guard r.count == 6, let s = (r[0] as? NSNumber)?.intValue, s <= step else { return nil }
            return StepRecord(step: s, seconds: num(r[1]), trainLoss: num(r[2]), learningRate: num(r[3]), gradNorm: num(r[4]), charsPerSecond: num(r[5]))
        }
        evaluations = evals.compactMap { e in
            guard let s = (e["step"] as? NSNumber)?.intValue, s <= step else { return nil }
            return Evaluation(step: s, seconds: num(e["seconds"]), validation: num(e["validation"]), sample: e["sample"] as? String ?? "")
        }
        secondsBefore = max(steps.last.map(\.seconds) ?? 0, evaluations.last.map(\.seconds) ?? 0)
        if !secondsBefore.isFinite { secondsBefore = 0 }
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

    /// The charts as (file name, SVG): every metric against steps (`*-steps.svg`) and against
    /// seconds (`*-time.svg`).
    public func charts() -> [(String, String)] {
        struct Metric { var file: String; var title: String; var y: String; var log = false; var series: [(String, KeyPath<StepRecord, Double>)] }
        var metrics = [
            Metric(file: "loss", title: "Loss", y: labels.loss, series: [("train (per step; bucket means when long)", \.trainLoss)]),
            Metric(file: "learning-rate", title: "Learning rate", y: "learning rate", series: [("learning rate", \.learningRate)]),
            Metric(file: "grad-norm", title: "Gradient norm (before clipping)", y: "global L2 norm", log: true, series: [("gradient norm", \.gradNorm)]),
            Metric(file: "speed", title: "Speed", y: "\(labels.unit) per second", series: [("\(labels.unit)/s (mean since the start)", \.charsPerSecond)]),
        ]
        // A score that is not the loss: a chart of its own, the evaluations only.
        if !labels.validationIsLoss {
            let name = labels.validation.prefix(1).uppercased() + labels.validation.dropFirst()
            metrics.insert(Metric(file: "validation", title: name, y: labels.validation, series: []), at: 1)
        }
        var out: [(String, String)] = []
        for m in metrics {
            for byTime in [false, true] {
                let x: KeyPath<StepRecord, Double> = byTime ? \.seconds : \.stepDouble
                var series = m.series.map { name, y in ChartSeries(name: name, points: thin(steps.map { ($0[keyPath: x], $0[keyPath: y]) })) }
                if m.file == (labels.validationIsLoss ? "loss" : "validation") {
                    series.append(ChartSeries(name: "validation", points: evaluations.map { (byTime ? $0.seconds : Double($0.step), $0.validation) }))
                }
                let chart = LineChart(title: "\(m.title) against \(byTime ? "time" : "steps")", xLabel: byTime ? "seconds" : "step",
                                      yLabel: m.y, logY: m.log, series: series)
                out.append(("\(m.file)-\(byTime ? "time" : "steps").svg", chart.svg()))
            }
        }
        return out
    }

    /// The HTML page, the charts inline.
    public func page() -> String {
        var body = "<h1>Training report</h1>\n<p class=\"note\">\(HTMLPage.escape(title))</p>\n"
        if let last = steps.last {
            let scores = evaluations.map(\.validation).filter(\.isFinite)
            let best = labels.higherIsBetter ? scores.max() : scores.min()
            body += "<p>Step \(last.step), \(String(format: "%.0f", last.seconds)) s"
            if let best, labels.validationIsLoss, labels.unit == "characters" {
                body += "; best validation loss \(String(format: "%.4f", best)) nats/char (\(String(format: "%.3f", best / log(2))) bits/char)"
            } else if let best {
                body += "; best \(HTMLPage.escape(labels.validation)) \(Self.format(best))"
            }
            body += "; rewritten at each evaluation.</p>\n"
        }
        body += "<p class=\"noprint\">x axis: <label><input type=\"radio\" name=\"x\" value=\"steps\" checked> steps</label> "
        body += "<label><input type=\"radio\" name=\"x\" value=\"time\"> time</label></p>\n"
        body += "<div class=\"report\"><div class=\"curves\">"
        for (name, svg) in charts() { body += "<div class=\"\(name.hasSuffix("-time.svg") ? "by-time" : "by-steps")\">\(svg)</div>" }
        if evaluations.contains(where: { !$0.sample.isEmpty }) {
            body += "</div>\n<div class=\"samples\"><h2>Samples at each evaluation</h2>\n"
            for e in evaluations.reversed() {
                body += "<div class=\"sample\"><b>step \(e.step)</b> (\(String(format: "%.0f", e.seconds)) s), validation \(Self.format(e.validation))"
                body += "<pre>\(HTMLPage.escape(e.sample))</pre></div>\n"
            }
        } else {
            body += "</div>\n<div class=\"samples\"><h2>Validations</h2>\n<table><tr><th>step</th><th>seconds</th><th>\(HTMLPage.escape(labels.validation))</th></tr>\n"
            for e in evaluations.reversed() {
                body += "<tr><td>\(e.step)</td><td>\(String(format: "%.0f", e.seconds))</td><td>\(Self.format(e.validation))</td></tr>\n"
            }
            body += "</table>\n"
        }
        body += "</div></div>\n"
        let css = """
        .report{display:flex;gap:1em;align-items:flex-start}.curves{flex:0 0 auto;max-width:740px}.samples{flex:1 1 300px;min-width:260px}
        .sample pre{white-space:pre-wrap;background:#f6f6f6;border:1px solid #ddd;padding:.4em;margin:.2em 0 .8em;max-height:16em;overflow:auto}
        @media (max-width:1100px){.report{flex-direction:column}}
        .by-time{display:none}body.time .by-time{display:block}body.time .by-steps{display:none}
        @media print{.report{display:block}.sample pre{max-height:none;overflow:visible}}
        """
        let script = "document.querySelectorAll('input[name=x]').forEach(function(r){r.onchange=function(){document.body.classList.toggle('time',r.value==='time'&&r.checked);};});"
        return HTMLPage.render(title: "Training report", body: body, script: script, css: css)
    }

    /// Four decimals, or four significant digits below 0.001 (an RMSE in small units).
    static func format(_ v: Double) -> String { v != 0 && abs(v) < 1e-3 ? String(format: "%.4g", v) : String(format: "%.4f", v) }

    /// Writes index.html, the SVGs and history.json, each atomically.
    public func write() throws {
        let dir = URL(fileURLWithPath: directory)
        try writeHistory()
        for (name, svg) in charts() {
            try AtomicFile.write(Data(("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n" + svg).utf8), to: dir.appendingPathComponent(name).path)
        }
        try HTMLPage.write(page(), to: dir.appendingPathComponent("index.html").path)
    }
}

extension TrainingReport.StepRecord {
    var stepDouble: Double { Double(step) }
}
