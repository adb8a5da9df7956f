import Foundation

/// Learning-rate decay by epoch, in closed form (PyTorch's schedulers update the rate
/// multiplicatively each epoch; the closed forms below are what they compute). As PyTorch, the
/// rate is computed in Double from the decimal values typed in (`decimalValue`: 0.97, not the
/// Float 0.97000003), and only the result is rounded to Float; from the Float gamma the rate drifted
/// from ExponentialLR's by 3e-6 (relative) at epoch 100 and 1e-5 at epoch 337.
///
/// The trainer sets `optimizer.learningRate = schedule.rate(base: lr, epoch: e)` at the start of
/// epoch `e` (0-based), so epoch 0 always trains at the base rate.
public enum LearningRateSchedule: Sendable, Equatable {
    case constant
    case step(every: Int, gamma: Float)     // StepLR: lr = base * gamma^(floor(epoch / every))
    case exponential(gamma: Float)          // ExponentialLR: lr = base * gamma^epoch

    /// The epoch to pass to `rate` in the 0-based `epoch` when decay waits `after` epochs, as
    /// char-rnn's learning_rate_decay_after: the first `max(after, 1)` epochs train at the base
    /// rate and the one after them is decayed once (after 0 and 1 both decay from the second).
    public static func decayEpoch(_ epoch: Int, after: Int) -> Int { max(0, epoch - max(after, 1) + 1) }

    /// The rate for the 0-based `epoch`. Negative epochs count as 0; `every <= 0` never decays.
    public func rate(base: Float, epoch: Int) -> Float {
        let e = max(epoch, 0)
        switch self {
        case .constant:
            return base
        case let .step(every, gamma):
            guard every > 0 else { return base }
            return Float(decimalValue(base) * pow(decimalValue(gamma), Double(e / every)))
        case let .exponential(gamma):
            return Float(decimalValue(base) * pow(decimalValue(gamma), Double(e)))
        }
    }
}
