import Foundation

/// Result of scoring a text with a char-LM.
public struct CharLMEvaluation: Sendable, Equatable {
    /// Mean cross-entropy in nats per predicted character.
    public var loss: Double
    /// The number of predictions (characters − 1).
    public var characters: Int
    public var bitsPerChar: Double { loss / log(2.0) }
    public var perplexity: Double { exp(loss) }
}

extension CharLM {
    /// Mean cross-entropy of predicting every next character of `tokens` from a zero state, as one
    /// sequence (batch 1). The sequence is processed in chunks of `chunk` steps with the state
    /// carried, which is exactly one long forward pass, in bounded memory.
    public func evaluate(tokens: [Int32], chunk: Int = 2048) -> CharLMEvaluation {
        guard tokens.count >= 2 else { return CharLMEvaluation(loss: .nan, characters: 0) }
        var rng = SeededRNG(seed: 0)
        var state: RecurrentState?
        var total = 0.0
        var start = 0
        let n = tokens.count - 1
        while start < n {
            let len = min(chunk, n - start)
            let x = Array(tokens[start..<start + len])
            let y = Array(tokens[start + 1..<start + len + 1])
            let (loss, s) = self.loss(inputs: x, targets: y, batch: 1, steps: len, state: state, rng: &rng)
            total += Double(loss) * Double(len)
            state = s
            start += len
        }
        return CharLMEvaluation(loss: total / Double(n), characters: n)
    }
}

/// How the next character is chosen.
public struct SamplingSettings: Sendable, Equatable {
    /// Logits are divided by this (> 0); below 1 sharpens, above 1 flattens.
    public var temperature: Float = 1
    /// Keep only the k most likely characters (0 = all).
    public var topK: Int = 0
    /// Always take the most likely character.
    public var greedy = false
    public init(temperature: Float = 1, topK: Int = 0, greedy: Bool = false) {
        self.temperature = temperature
        self.topK = topK
        self.greedy = greedy
    }
}

/// Generates text one character at a time at batch 1, carrying the state.
///
/// Runs on a `CharLMStepper` (a packed snapshot of the model's weights taken at `init`), so
/// changes to the model after `init` are not seen. For a given seed, settings and thread count
/// the characters are deterministic (the stepper's results do not depend on the thread count).
public final class CharSampler {
    public let model: CharLM
    public var settings: SamplingSettings
    /// The inference engine (exposed for logits access and benchmarks).
    public let stepper: CharLMStepper
    private var primed = false
    private var rng: SeededRNG

    public init(model: CharLM, settings: SamplingSettings, seed: UInt64,
                precision: CharLMStepper.Precision = .float32) {
        self.model = model
        self.settings = settings
        self.rng = SeededRNG(seed: seed)
        self.stepper = CharLMStepper(model: model, precision: precision)
    }

    /// Forgets the state: the next `prime` starts from zeros.
    public func reset() {
        stepper.reset()
        primed = false
    }

    /// Feeds the priming characters (at least one) through the model.
    public func prime(_ tokens: [Int32]) {
        precondition(!tokens.isEmpty, "prime needs at least one token")
        for t in tokens { stepper.step(token: t) }
        primed = true
    }

    /// Chooses the next character from the current distribution and feeds it back.
    public func next() -> Int32 {
        precondition(primed, "prime the sampler before next()")
        let u = settings.greedy ? 0 : rng.nextFloat()
        let token = stepper.sample(settings: settings, uniform: u)
        stepper.step(token: token)
        return token
    }

    /// The probabilities of the next character under the current settings (temperature, top-k).
    public func distribution() -> [Float] { stepper.probabilities(settings: settings) }
}
