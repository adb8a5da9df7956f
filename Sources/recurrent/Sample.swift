import ArgumentParser
import Foundation
import Recurrent

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text from a char-LM, printing it as it is generated.")

    @Option(help: "The char-LM checkpoint (.safetensors).")
    var checkpoint: String

    @Option(help: "Characters to generate after the prime.")
    var length = 2000

    @Option(help: "Softmax temperature (> 0): below 1 is more conservative, above 1 more varied.")
    var temperature: Float = 1.0

    @Option(name: .customLong("top-k"), help: "Sample only among the k most likely characters (0 = all).")
    var topK = 0

    @Option(help: "Text to feed the model before sampling (printed first). Default: a newline if the vocabulary has one.")
    var prime: String?

    @Flag(help: "Take the most likely character at every step instead of sampling.")
    var greedy = false

    @Option(help: "Random seed.")
    var seed: UInt64 = 123

    @Flag(help: "Round the weights to bfloat16 for sampling (half the memory traffic; loss within ~0.01 nats/char).")
    var bf16 = false

    @Flag(help: "Sample with int8 weights (per-row scales) and int8 layer inputs (per-step scales): a quarter of the memory traffic, exact integer sums (AVX-512 VNNI where the CPU has it).")
    var int8 = false

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if length < 0 { throw ValidationError("--length must be zero or more, got \(length)") }
        if !(temperature > 0) || !temperature.isFinite { throw ValidationError("--temperature must be a finite number greater than 0, got \(temperature)") }
        if topK < 0 { throw ValidationError("--top-k must be zero (off) or positive, got \(topK)") }
        if bf16 && int8 { throw ValidationError("--bf16 and --int8 are exclusive") }
        if let p = prime, p.isEmpty { throw ValidationError("--prime must not be empty (omit it to start from a newline)") }
    }

    func run() throws {
        compute.apply()
        let model = try CharLMCheckpoint.load(path: checkpoint)
        let vocab = model.config.vocabulary
        let primeTokens: [Int32]
        var echo = ""
        if let p = prime {
            primeTokens = try vocab.encode(Array(p.unicodeScalars), source: "--prime")
            echo = p
        } else if let nl = vocab.index(of: "\n") {
            primeTokens = [nl]
        } else {
            var rng = SeededRNG(seed: seed)
            let t = Int32(Int(rng.next() % UInt64(vocab.count)))
            primeTokens = [t]
            echo = vocab.decode([t])
        }
        let sampler = CharSampler(model: model, settings: SamplingSettings(temperature: temperature, topK: topK, greedy: greedy), seed: seed,
                                  precision: bf16 ? .bfloat16 : (int8 ? .int8 : .float32))
        sampler.prime(primeTokens)
        Console.write(echo)
        var pending = ""
        for _ in 0..<length {
            let token: Int32
            do { token = try sampler.next() } catch {
                Console.write(pending + "\n")   // the characters drawn before the scores overflowed
                throw error
            }
            pending += vocab.decode([token])
            if pending.utf8.count >= 64 || pending.last == "\n" {
                Console.write(pending)
                pending = ""
            }
        }
        Console.write(pending + "\n")
    }
}
