/// The trainers' guard against a run that has blown up. Once the loss, the gradient norm or the
/// validation score is inf or nan, the next optimizer step would write nan into every weight and
/// every later checkpoint would be useless, so training stops with this error before that step
/// (char-rnn likewise aborts when its loss explodes). The checkpoint on disk stays the last one
/// saved with a finite score.
public enum Divergence {
    /// Throws when a step's loss or its gradients' global norm (before clipping) is not finite.
    public static func checkStep(_ step: Int, loss: Double, gradientNorm: Float) throws {
        if loss.isFinite && gradientNorm.isFinite { return }
        let what = loss.isFinite ? "the gradient norm is \(shown(Double(gradientNorm)))" : "the training loss is \(shown(loss))"
        throw RecurrentError("training diverged at step \(step): \(what); lower --lr or clip the gradients (--clip, --clip-value). The checkpoint already saved, if any, is from before")
    }

    /// "nan" for any nan (Swift prints a negative one as "-nan"), "inf" or "-inf" otherwise.
    static func shown(_ v: Double) -> String { v.isNaN ? "nan" : v > 0 ? "inf" : "-inf" }

    /// Throws when a validation score (`name`: "loss", "accuracy", …) is not finite.
    public static func checkValidation(_ step: Int, _ name: String, _ value: Double) throws {
        if value.isFinite { return }
        throw RecurrentError("training diverged at step \(step): the validation \(name) is \(shown(value)); lower --lr or clip the gradients (--clip, --clip-value). The checkpoint already saved, if any, is from before")
    }
}
