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
