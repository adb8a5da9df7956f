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
public final class CharSampler {
    public let model: CharLM
    public var settings: SamplingSettings
    private var state: RecurrentState?
    private var lastLogits: [Float] = []
    private var rng: SeededRNG

    public init(model: CharLM, settings: SamplingSettings, seed: UInt64) {
        self.model = model
        self.settings = settings
        self.rng = SeededRNG(seed: seed)
    }

    /// Forgets the state: the next `prime` starts from zeros.
    public func reset() {
        state = nil
        lastLogits = []
    }

    /// Feeds the priming characters (at least one) through the model.
    public func prime(_ tokens: [Int32]) {
        precondition(!tokens.isEmpty, "prime needs at least one token")
        let (z, s) = model.logits(inputs: tokens, batch: 1, steps: tokens.count, state: state, rng: &rng)
        let v = model.config.vocabulary.count
        lastLogits = Array(z.data[(tokens.count - 1) * v..<tokens.count * v])
        state = s
    }

    /// Chooses the next character from the current distribution and feeds it back.
    public func next() -> Int32 {
        let token = choose(lastLogits)
        prime([token])
        return token
    }

    /// The probabilities of the next character under the current settings (temperature, top-k).
    public func distribution() -> [Float] { probabilities(lastLogits) }

    func probabilities(_ logits: [Float]) -> [Float] {
        let t = max(settings.temperature, 1e-6)
        var p = logits.map { $0 / t }
        if settings.topK > 0, settings.topK < p.count {
            let kth = p.sorted(by: >)[settings.topK - 1]
            var kept = 0
            for i in 0..<p.count {
                if p[i] >= kth, kept < settings.topK { kept += 1 } else { p[i] = -.infinity }
            }
        }
        let m = p.max() ?? 0
        var sum: Float = 0
        for i in 0..<p.count { p[i] = p[i] == -.infinity ? 0 : exp(p[i] - m); sum += p[i] }
        for i in 0..<p.count { p[i] /= sum }
        return p
    }

    func choose(_ logits: [Float]) -> Int32 {
        if settings.greedy {
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            return Int32(best)
        }
        let p = probabilities(logits)
        var u = rng.nextFloat()
        for i in 0..<p.count {
            u -= p[i]
            if u < 0 { return Int32(i) }
        }
        return Int32(p.lastIndex { $0 > 0 } ?? 0)
    }
}
