import Foundation

/// The one error type the library throws for bad input: a single line that names the file or
/// flag and says what was expected. The CLI prints `error: <message>` and exits non-zero.
public struct RecurrentError: LocalizedError, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    /// The message, so that `error.localizedDescription` shows it too.
    public var errorDescription: String? { message }
}

extension RecurrentError {
    /// Sampling from logits that hold NaN (or +inf): the model's state overflowed on its input.
    public static let nonFiniteLogits = RecurrentError("the model's next-character scores are not finite (nan or inf): its state overflows on this input, so there is no distribution to sample from")
}

extension RecurrentError {
    /// A value from a file as an error line shows it: control characters escaped (`\r`, `\u{0}`),
    /// and at most `limit` characters, so a line stays one readable line whatever the input.
    public static func shown(_ value: String, limit: Int = 60) -> String {
        var out = ""
        var count = 0
        for scalar in value.unicodeScalars {
            if count >= limit { return out + "… (\(value.unicodeScalars.count) characters)" }
            switch scalar {
            case "\\": out += "\\\\"
            case "\r": out += "\\r"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                let category = scalar.properties.generalCategory
                if category == .control || category == .format || category == .lineSeparator || category == .paragraphSeparator {
                    out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
            count += 1
        }
        return out
    }

    /// Items from a file, each `shown`, at most `limit` of them.
    public static func shownList(_ items: [String], limit: Int = 10) -> String {
        let limit = max(limit, 1)
        let head = items.prefix(limit).map { shown($0, limit: 40) }.joined(separator: ", ")
        return items.count <= limit ? head : head + ", … (\(items.count) in all)"
    }
}

/// A check of the caller's use of the API (a programmer error, not bad input): `precondition`'s
/// behaviour, but its message is kept in optimised builds (`-O` drops a precondition's text, so a
/// release build said only "precondition failure").
@inline(__always)
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "a requirement of the API failed",
             file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError(message(), file: file, line: line) }
}
