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

/// ArgumentParser takes a word that starts with "-" for a flag, so `--forget-bias -1` failed with
/// "Missing value", `--prime "-Ka"` too, and a sentence "- hello" given to `translate` was read as
/// the short flags -h… (printing the help). Before parsing:
/// - a negative number right after a long option, or any word after an option whose value is
///   free text (`textOptions`), is joined to it (`--forget-bias=-1`), which the parser reads as
///   the option's value;
/// - a word that starts with "-" and holds a space or tab cannot be a flag: "--" goes before it
///   (the end of options) when no flag follows it, and when one does, one error line asks for the
///   options first.
func preparedArguments(_ arguments: [String]) throws -> [String] {
    var out: [String] = []
    var i = 0
    while i < arguments.count {
        let a = arguments[i]
        if i + 1 < arguments.count, a.hasPrefix("--"), a.count > 2, !a.contains("="), arguments[i + 1] != "--",
           isNegativeNumber(arguments[i + 1]) || (textOptions.contains(a) && arguments[i + 1].hasPrefix("-")) {
            out.append(a + "=" + arguments[i + 1])
            i += 2
            continue
        }
        if !out.contains("--"), isSentence(a) {
            // With a flag after it, "--" would end the options too early: the parser would read
            // the sentence as short flags (printing the help for an h), so say what to do instead.
            guard !arguments[(i + 1)...].contains(where: { $0.hasPrefix("-") && !isSentence($0) }) else {
                throw RecurrentError("'\(a)' starts with '-' but is text: give the options before the sentences")
            }
            out.append("--")
        }
        out.append(a)
        i += 1
    }
    return out
}

/// Options whose value is free text, which may start with "-".
let textOptions: Set = ["--prime", "--condition"]

/// A word that starts with "-" but holds whitespace: text, never a flag.
func isSentence(_ s: String) -> Bool { s.hasPrefix("-") && s.contains(where: { $0 == " " || $0 == "\t" }) }

func isNegativeNumber(_ s: String) -> Bool {
    guard s.hasPrefix("-"), s.count > 1 else { return false }
    let rest = s.dropFirst().lowercased()
    return Double(rest) != nil || ["inf", "infinity", "nan"].contains(rest)
}

// A closed standard descriptor would be handed to the next open() (the output lock, a temporary
// file), and standard output would then be written into that file: each closed one is held by
// /dev/null opened the other way round, so reading or writing it still fails with EBADF.
for (fd, flags) in [(STDIN_FILENO, O_WRONLY), (STDOUT_FILENO, O_RDONLY), (STDERR_FILENO, O_RDONLY)]
    where fcntl(fd, F_GETFD) == -1 {
    let held = open("/dev/null", flags)
    if held >= 0, held != fd {
        dup2(held, fd)
        close(held)
    }
}

// Bad input gets one line on standard error and a non-zero exit, never a usage dump or a trap.
SaveGuard.install()
do {
    var command = try RecurrentCommand.parseAsRoot(try preparedArguments(Array(CommandLine.arguments.dropFirst())))
    try command.run()
} catch let error as RecurrentError {
    Console.fail(error.message)
} catch {
    let code = RecurrentCommand.exitCode(for: error)
    if code == .success {   // --help: written as every other output is, so a failed write is an error
        Console.line(RecurrentCommand.fullMessage(for: error))
        exit(0)
    }
    let message = RecurrentCommand.message(for: error)
        .split(separator: "\n").first.map(String.init) ?? "\(error)"
    Console.fail(message, code: code.rawValue == 0 ? 1 : code.rawValue)
}
