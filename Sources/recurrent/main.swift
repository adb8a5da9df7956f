import ArgumentParser
import Foundation
import Recurrent

/// The `recurrent` command: a thin root that dispatches to one subcommand per file.
struct RecurrentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recurrent",
        abstract: "Train, run and inspect recurrent neural networks (RNN, LSTM, GRU) on the CPU.",
        subcommands: [Train.self, Sample.self, Eval.self, Demo.self, Bench.self, Classify.self, Tag.self,
                      Translate.self, Generate.self, Forecast.self, Gradients.self, Visualize.self, Export.self])
}

// Bad input gets one line on standard error and a non-zero exit, never a usage dump or a trap.
do {
    var command = try RecurrentCommand.parseAsRoot()
    try command.run()
} catch let error as RecurrentError {
    FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
    exit(1)
} catch {
    let code = RecurrentCommand.exitCode(for: error)
    if code == .success {
        RecurrentCommand.exit(withError: error)  // --help, --version
    }
    let message = RecurrentCommand.message(for: error)
        .split(separator: "\n").first.map(String.init) ?? "\(error)"
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    exit(code.rawValue == 0 ? 1 : code.rawValue)
}
