import Foundation

/// Statistics behind the activation pages: correlations of units with properties of the text, and
/// gate saturation.
public enum InsightStatistics {
    /// Pearson's correlation r of two equally long series; 0 when either is constant (or empty).
    ///
    ///     r = Σ(x−x̄)(y−ȳ) / sqrt(Σ(x−x̄)² · Σ(y−ȳ)²)       accumulated in Double
    public static func pearson(_ x: [Float], _ y: [Float]) -> Double {
        require(x.count == y.count, "pearson needs equally long series, got \(x.count) and \(y.count)")
        let n = Double(x.count)
        guard n > 1 else { return 0 }
        var sx = 0.0, sy = 0.0
        for i in 0..<x.count { sx += Double(x[i]); sy += Double(y[i]) }
        let mx = sx / n, my = sy / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in 0..<x.count {
            let dx = Double(x[i]) - mx, dy = Double(y[i]) - my
            sxy += dx * dy; sxx += dx * dx; syy += dy * dy
        }
        guard sxx > 0, syy > 0 else { return 0 }
        return sxy / (sxx * syy).squareRoot()
    }

    /// Fractions of `values` left-saturated (< `low`) and right-saturated (> `high`), as in
    /// Karpathy, Johnson and Fei-Fei (2015), where a gate is saturated below 0.1 or above 0.9.
    public static func saturation(_ values: UnsafeBufferPointer<Float>, stride: Int = 1, low: Float = 0.1,
                                  high: Float = 0.9) -> (left: Double, right: Double) {
        var l = 0, r = 0, n = 0
        var i = 0
        while i < values.count {
            let v = values[i]
            if v < low { l += 1 } else if v > high { r += 1 }
            n += 1
            i += stride
        }
        guard n > 0 else { return (0, 0) }
        return (Double(l) / Double(n), Double(r) / Double(n))
    }

    /// Array convenience for `saturation(_:stride:low:high:)`.
    public static func saturation(_ values: [Float], low: Float = 0.1, high: Float = 0.9) -> (left: Double, right: Double) {
        values.withUnsafeBufferPointer { saturation($0, low: low, high: high) }
    }
}

/// Simple properties of a text, one value per character, that interpretable units are known to
/// track (Karpathy, Johnson and Fei-Fei 2015): the value at position t describes the text up to
/// and including character t, which is what the hidden state after reading character t can know.
public enum TextProperty: String, CaseIterable, Sendable {
    /// 1 between an opening and a closing `"` (the quote characters themselves count as inside).
    case insideQuotes = "inside quotes"
    /// Open ( [ { not yet closed, never below 0.
    case bracketDepth = "bracket depth"
    /// Characters since the last newline (0 at the newline itself).
    case positionInLine = "position in line"
    /// 1 on a letter or digit that follows a non-letter/digit (or starts the text).
    case wordStart = "start of a word"
    /// 1 on a, e, i, o, u (either case).
    case vowel = "vowel"

    /// The property's value at every character.
    public func values(_ text: [Unicode.Scalar]) -> [Float] {
        var out = [Float](repeating: 0, count: text.count)
        var inside = false, depth = 0, column = 0
        var previousIsWord = false
        for (t, c) in text.enumerated() {
            switch self {
            case .insideQuotes:
                if c == "\"" { out[t] = 1; inside.toggle() } else { out[t] = inside ? 1 : 0 }
            case .bracketDepth:
                if "([{".unicodeScalars.contains(c) { depth += 1 }
                if ")]}".unicodeScalars.contains(c) { depth = max(0, depth - 1) }
                out[t] = Float(depth)
            case .positionInLine:
                column = c == "\n" ? 0 : column + 1
                out[t] = Float(column)
            case .wordStart:
                let isWord = c.properties.isAlphabetic || ("0"..."9").contains(c)
                out[t] = isWord && !previousIsWord ? 1 : 0
                previousIsWord = isWord
            case .vowel:
                out[t] = "aeiouAEIOU".unicodeScalars.contains(c) ? 1 : 0
            }
        }
        return out
    }
}
