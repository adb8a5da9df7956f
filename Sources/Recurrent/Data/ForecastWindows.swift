/// How a forecaster scales its inputs and targets.
public enum ForecastNormalization: String, CaseIterable, Sendable {
    /// z = (v − mean)/std with the mean and standard deviation of the training part of the series
    /// (stored in the checkpoint).
    case series
    /// Every window is scaled by its own inputs' mean and standard deviation; the targets of a
    /// window use the same two numbers, and forecasts are scaled back with them. Suits series whose
    /// level drifts (prices), since the model only sees shapes.
    case window
}

/// Scaling of one window: z = (v − mean)/scale, v = z·scale + mean.
public struct WindowScale: Sendable, Equatable {
    public var mean: Double
    public var scale: Double
    public init(mean: Double, scale: Double) {
        self.mean = mean
        self.scale = scale
    }

    /// Mean and population standard deviation of `values`; a constant window (a deviation of
    /// at most 1e-12 of the mean: rounding in the mean) gets scale 1 so it never divides by zero.
    /// The test is relative only, so a series in small units (amplitude 1e-9, or 1e-40) is scaled
    /// as the same series in large ones; deviations below about 1e-154, whose squares underflow,
    /// count as constant. The ONNX export's graph computes the same.
    public static func of<C: Collection>(_ values: C) -> WindowScale where C.Element == Double {
        let n = Double(max(values.count, 1))
        let mean = values.reduce(0, +) / n
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
        let std = variance.squareRoot()
        return WindowScale(mean: mean, scale: std > 1e-12 * abs(mean) ? std : 1)
    }

    public func normalize(_ v: Double) -> Float { Float((v - mean) / scale) }
    public func denormalize(_ z: Float) -> Double { Double(z) * scale + mean }
}

/// Chronological splits and sliding windows over one series.
///
/// A forecast *origin* t is the index of the first value to predict: the inputs are
/// values[t−N ..< t] (N = window) and the targets values[t ..< t+H] (H = horizon). The series is
/// cut into train | valid | test by time: the test part is the last ⌈test·n⌉ values, the
/// validation part the last ⌈valid·(n − test)⌉ values before it. An origin belongs to the part
/// that holds all its targets; its inputs may reach back into earlier parts (they are the past).
public struct SeriesSplit: Sendable, Equatable {
    public var count: Int
    /// First index of the validation part (= end of the training part).
    public var validStart: Int
    /// First index of the test part.
    public var testStart: Int

    public init(count n: Int, testFraction: Double, validFraction: Double) {
        count = n
        let test = testFraction > 0 ? Int((testFraction * Double(n)).rounded(.up)) : 0
        testStart = max(0, n - test)
        let valid = validFraction > 0 ? Int((validFraction * Double(testStart)).rounded(.up)) : 0
        validStart = max(0, testStart - valid)
    }

    /// Origins t in `part` (a range of target indices) with a full window before them and all H
    /// targets inside the part, every `stride` steps.
    public static func origins(in part: Range<Int>, window N: Int, horizon H: Int, stride: Int = 1) -> [Int] {
        let first = max(part.lowerBound, N), last = part.upperBound - H
        guard first <= last else { return [] }
        return Array(Swift.stride(from: first, through: last, by: max(1, stride)))
    }

    public var trainPart: Range<Int> { 0..<validStart }
    public var validPart: Range<Int> { validStart..<testStart }
    public var testPart: Range<Int> { testStart..<count }
}
