import CKernels
import Foundation
import Testing
@testable import Recurrent

@Suite struct ClippingTests {
    @Test func clipNormMatchesTorch() throws {
        let t = try SafeTensors.read(path: Fixtures.torch("adam_and_clip.safetensors")).tensors
        let a = Parameter(name: "a", value: try #require(t["clip.grad_a"]))
        let b = Parameter(name: "b", value: try #require(t["clip.grad_b"]))
        a.grad = a.value
        b.grad = b.value
        let total = GradientClipping.clipNorm([a, b], maxNorm: 1.5)   // max_norm from adam_and_clip.json
        let expectedTotal = try #require(t["clip.total_norm"]?.data.first)
        let errA = a.grad.maxAbsDifference(try #require(t["clip.after_a"]))
        let errB = b.grad.maxAbsDifference(try #require(t["clip.after_b"]))
        print("adam_and_clip: total norm error \(abs(total - expectedTotal)), after_a \(errA), after_b \(errB)")
        #expect(expectedTotal > 1.5, "the fixture should actually clip")
        #expect(abs(total - expectedTotal) <= 1e-6)
        #expect(errA <= 1e-6)
        #expect(errB <= 1e-6)
    }

    /// With enough elements the parameters' sums are shared out across threads; each tensor's sum
    /// is still taken whole and the norms combined in order: bit for bit the serial formula for
    /// 1, 2 and 3 threads, and the clipped gradients equal too (one tensor has no elements).
    @Test func globalNormAndClippingDoNotDependOnThreads() {
        let saved = Threading.count
        defer { Threading.count = saved }
        let rng = SeededRNG(seed: 49)
        let sizes = [70_001, 3, 0, 40_000, 17, 100_003, 1]
        func makeParameters() -> [Parameter] {
            var r = rng
            return sizes.enumerated().map { i, n in
                let p = Parameter(name: "p\(i)", value: Tensor(shape: [n]))
                p.grad = Tensor(shape: [n], data: (0..<n).map { _ in r.uniform(-1, 1) })
                return p
            }
        }
        var serialNormSquares = 0.0
        for p in makeParameters() {
            let norm = Float(rc_sum_squares(p.grad.count, p.grad.data).squareRoot())
            serialNormSquares += Double(norm) * Double(norm)
        }
        let serial = Float(serialNormSquares.squareRoot())
        var clipped: [[Float]]?
        for threads in [1, 2, 3] {
            Threading.count = threads
            let params = makeParameters()
            let norm = GradientClipping.globalNorm(params)
            #expect(norm.bitPattern == serial.bitPattern, "\(threads) threads: \(norm) vs \(serial)")
            #expect(GradientClipping.clipNorm(params, maxNorm: 1) == norm)
            let grads = params.map { $0.grad.data }
            if let clipped { #expect(grads == clipped, "\(threads) threads: clipped gradients differ") } else { clipped = grads }
        }
    }

    @Test func clipNormLeavesSmallGradientsAlone() {
        let p = Parameter(name: "p", value: Tensor(shape: [2]))
        p.grad = Tensor(shape: [2], data: [0.3, 0.4])
        let total = GradientClipping.clipNorm([p], maxNorm: 1)
        #expect(abs(total - 0.5) < 1e-7)
        #expect(p.grad.data == [0.3, 0.4])
    }

    @Test func clipNormScalesToMaxNorm() {
        let p = Parameter(name: "p", value: Tensor(shape: [1]))
        let q = Parameter(name: "q", value: Tensor(shape: [1]))
        p.grad = Tensor(shape: [1], data: [3])
        q.grad = Tensor(shape: [1], data: [-4])
        #expect(GradientClipping.globalNorm([p, q]) == 5)
        #expect(GradientClipping.clipNorm([p, q], maxNorm: 1) == 5)
        #expect(abs(p.grad.data[0] - 0.6) < 1e-6 && abs(q.grad.data[0] + 0.8) < 1e-6)
        #expect(abs(GradientClipping.globalNorm([p, q]) - 1) < 1e-6)
    }

    @Test func clipNormOfZeroGradientsIsZero() {
        let p = Parameter(name: "p", value: Tensor(shape: [3]))
        #expect(GradientClipping.clipNorm([p], maxNorm: 1) == 0)
        #expect(p.grad.data == [0, 0, 0])
        #expect(GradientClipping.globalNorm([]) == 0)
    }

    @Test func clipValueClamps() {
        let p = Parameter(name: "p", value: Tensor(shape: [5]))
        p.grad = Tensor(shape: [5], data: [-3, -1, 0.5, 1, 2])
        GradientClipping.clipValue([p], value: 1)
        #expect(p.grad.data == [-1, -1, 0.5, 1, 1])
        #expect(p.value.data == [0, 0, 0, 0, 0])
    }
}

@Suite struct LearningRateScheduleTests {
    @Test func constant() {
        #expect(LearningRateSchedule.constant.rate(base: 0.1, epoch: 0) == 0.1)
        #expect(LearningRateSchedule.constant.rate(base: 0.1, epoch: 50) == 0.1)
    }

    @Test func stepDecay() {
        let s = LearningRateSchedule.step(every: 2, gamma: 0.5)
        let rates = (0..<6).map { s.rate(base: 1, epoch: $0) }
        #expect(rates == [1, 1, 0.5, 0.5, 0.25, 0.25])
        #expect(abs(LearningRateSchedule.step(every: 3, gamma: 0.1).rate(base: 0.2, epoch: 7) - 0.002) < 1e-9)
    }

    @Test func exponentialDecay() {
        let s = LearningRateSchedule.exponential(gamma: 0.9)
        #expect(s.rate(base: 2, epoch: 0) == 2)
        #expect(abs(s.rate(base: 2, epoch: 3) - 1.458) < 1e-6)
        #expect(abs(s.rate(base: 1, epoch: 10) - Float(pow(0.9, 10.0))) < 1e-6)
    }

    /// The float32 rates of torch's ExponentialLR(0.97) and StepLR(3, 0.9) from lr 2e-3, stepped
    /// epoch by epoch (torch 2.15): the decimal gamma, not the Float one, so no drift over epochs.
    @Test func ratesMatchTorchOverHundredsOfEpochs() {
        let exponential = LearningRateSchedule.exponential(gamma: 0.97)
        #expect(exponential.rate(base: 2e-3, epoch: 1) == Float(0.0019399999999999999))
        #expect(exponential.rate(base: 2e-3, epoch: 100) == Float(9.510501585081127e-05))
        #expect(exponential.rate(base: 2e-3, epoch: 337) == Float(6.967940658208705e-08))
        #expect(LearningRateSchedule.step(every: 3, gamma: 0.9).rate(base: 2e-3, epoch: 400) == Float(1.641662020883609e-09))
    }

    @Test func edgeCases() {
        #expect(LearningRateSchedule.step(every: 0, gamma: 0.5).rate(base: 1, epoch: 10) == 1)
        #expect(LearningRateSchedule.exponential(gamma: 0.5).rate(base: 1, epoch: -3) == 1)
        #expect(LearningRateSchedule.step(every: 2, gamma: 0.5) != .exponential(gamma: 0.5))
    }
}
