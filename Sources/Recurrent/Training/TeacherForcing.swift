import Foundation

/// The teacher-forcing ratio over training (`--teacher-forcing*` flags).
///
///     none:         r(s) = start
///     linear:       r(s) = start + (floor − start)·min(1, s/steps)
///     exponential:  r(s) = floor + (start − floor)·0.01^(s/steps)   (1% of the gap left at `steps`)
/// The floor never raises the ratio above `start`.
public struct TeacherForcing: Sendable, Equatable {
    public enum Decay: String, CaseIterable, Sendable { case none, linear, exponential }
    public var start: Float
    public var floor: Float
    public var decay: Decay
    public var steps: Int

    public init(start: Float, floor: Float = 0, decay: Decay = .none, steps: Int = 5000) {
        self.start = start
        self.floor = floor
        self.decay = decay
        self.steps = steps
    }

    /// The ratio at training step `step` (0-based count of steps taken).
    public func ratio(step: Int) -> Float {
        let low = min(floor, start), x = Float(step) / Float(max(steps, 1))
        switch decay {
        case .none: return start
        case .linear: return start + (low - start) * min(1, x)
        case .exponential: return low + (start - low) * Float(pow(0.01, Double(x)))
        }
    }
}
