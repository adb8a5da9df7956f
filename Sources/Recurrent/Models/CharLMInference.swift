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
        let evaluator = CharLMEvaluator(model: self, chunk: chunk)
        evaluator.feed(tokens)
        return evaluator.finish()
    }
}

/// `CharLM.evaluate` fed a piece at a time, for texts read in pieces (`recurrent eval` on a file of
/// any size): the same chunks of `chunk` steps from the start of the text, the state carried, so
/// the same loss, bit for bit, as one call on the whole text.
public final class CharLMEvaluator {
    let model: CharLM
    let chunk: Int
    private var pending: [Int32] = []
    private var state: RecurrentState?
    private var total = 0.0
    private var scored = 0
    private var rng = SeededRNG(seed: 0)

    public init(model: CharLM, chunk: Int = 2048) {
        require(chunk > 0, "chunk must be positive")
        self.model = model
        self.chunk = chunk
    }

    /// Adds the next tokens of the text; scores every full chunk they complete.
    public func feed(_ tokens: [Int32]) {
        pending += tokens
        var start = 0
        while pending.count - start > chunk {
            score(start, chunk)
            start += chunk
        }
        if start > 0 { pending.removeFirst(start) }
    }

    /// Scores what is left and returns the mean over every next character fed (NaN for fewer than 2).
    public func finish() -> CharLMEvaluation {
        if pending.count >= 2 { score(0, pending.count - 1) }
        pending = Array(pending.suffix(1))
        return scored == 0 ? CharLMEvaluation(loss: .nan, characters: 0) : CharLMEvaluation(loss: total / Double(scored), characters: scored)
    }

    /// Characters scored so far.
    public var characters: Int { scored }

    private func score(_ start: Int, _ len: Int) {
        let x = Array(pending[start..<start + len])
        let y = Array(pending[start + 1..<start + len + 1])
        let (loss, s) = model.loss(inputs: x, targets: y, batch: 1, steps: len, state: state, rng: &rng)
        total += Double(loss) * Double(len)
        scored += len
        state = s
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
        require(!tokens.isEmpty, "prime needs at least one token")
        for t in tokens { stepper.step(token: t) }
        primed = true
    }

    /// Chooses the next character from the current distribution and feeds it back. Throws as
    /// `CharLMStepper.sample` does (NaN or all −inf logits, a temperature not above 0).
    public func next() throws -> Int32 {
        require(primed, "prime the sampler before next()")
        let u = settings.greedy ? 0 : rng.nextFloat()
        let token = try stepper.sample(settings: settings, uniform: u)
        stepper.step(token: token)
        return token
    }

    /// The probabilities of the next character under the current settings (temperature, top-k).
    public func distribution() -> [Float] { stepper.probabilities(settings: settings) }
}
