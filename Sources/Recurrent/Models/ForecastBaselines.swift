/// The reference forecasts every model is compared with, and the error measures.
///
/// For an origin t (first index to predict) and step h in 0..<H:
///
///     naive persistence:  ŷ[t+h] = y[t−1]
///     seasonal naive:     ŷ[t+h] = y[t+h − S·(⌊h/S⌋ + 1)]     (the same phase one season back,
///                                                              from the last season observed)
public enum ForecastBaselines {
    public static func naive(_ values: [Double], origin t: Int, horizon H: Int) -> [Double] {
        require(t >= 1 && t <= values.count, "naive forecast needs a value before origin \(t)")
        return [Double](repeating: values[t - 1], count: H)
    }

    public static func seasonalNaive(_ values: [Double], origin t: Int, horizon H: Int, season S: Int) -> [Double] {
        require(S >= 1 && t >= S && t <= values.count, "seasonal naive needs a full season (\(S)) before origin \(t)")
        return (0..<H).map { h in values[t + h - S * (h / S + 1)] }
    }

    /// Root mean squared error and mean absolute error over every (forecast, truth) pair.
    public static func errors(_ forecasts: [[Double]], _ truths: [[Double]]) -> (rmse: Double, mae: Double, points: Int) {
        var squares = 0.0, absolutes = 0.0, n = 0
        for (f, y) in zip(forecasts, truths) {
            for (a, b) in zip(f, y) {
                squares += (a - b) * (a - b)
                absolutes += abs(a - b)
                n += 1
            }
        }
        guard n > 0 else { return (.nan, .nan, 0) }
        return ((squares / Double(n)).squareRoot(), absolutes / Double(n), n)
    }
}

/// The scores of `forecast eval`: the model and both baselines on the same origins and horizon.
public struct ForecastScores: Sendable, Equatable {
    public var rmse: Double
    public var mae: Double
    public var naiveRMSE: Double
    public var naiveMAE: Double
    public var seasonalNaiveRMSE: Double
    public var seasonalNaiveMAE: Double
    /// Scored values: origins × horizon.
    public var points: Int
    public var origins: Int

    /// Scores `model` on every origin of the test part of `values` (a rolling origin, step 1).
    /// Throws when the test part has no full window or a season does not fit before it.
    public static func evaluate(_ model: Forecaster, values: [Double], split: SeriesSplit, season: Int, source: String) throws -> ForecastScores {
        let N = model.config.window, H = model.config.horizon
        let origins = SeriesSplit.origins(in: split.testPart, window: N, horizon: H)
        guard let first = origins.first else {
            throw RecurrentError("\(source): the test part (\(split.testPart.count) of \(split.count) values) holds no origin with a window of \(N) before it and a horizon of \(H) inside it; raise --test-fraction (or train with a shorter --horizon)")
        }
        guard season >= 1, first >= season else {
            throw RecurrentError("--season \(season): needs a full season of history before the first test value (index \(first))")
        }
        let truths = origins.map { Array(values[$0..<($0 + H)]) }
        let model = ForecastBaselines.errors(model.forecast(values, origins: origins), truths)
        let naive = ForecastBaselines.errors(origins.map { ForecastBaselines.naive(values, origin: $0, horizon: H) }, truths)
        let seasonal = ForecastBaselines.errors(origins.map { ForecastBaselines.seasonalNaive(values, origin: $0, horizon: H, season: season) }, truths)
        return ForecastScores(rmse: model.rmse, mae: model.mae, naiveRMSE: naive.rmse, naiveMAE: naive.mae,
                              seasonalNaiveRMSE: seasonal.rmse, seasonalNaiveMAE: seasonal.mae, points: model.points, origins: origins.count)
    }
}
