import ArgumentParser
import Foundation
import Recurrent

/// Options every compute-heavy command takes.
struct ComputeOptions: ParsableArguments {
    @Option(help: "Worker threads for matrix products (default: the number of CPU cores).")
    var threads: Int?

    func validate() throws {
        if let t = threads, t < 1 || t > 256 { throw ValidationError("--threads must be between 1 and 256, got \(t)") }
    }

    func apply() {
        if let t = threads { Threading.count = t }
    }
}

/// Writes text to standard output immediately (for streaming samples and progress lines).
enum Console {
    static let isTerminal = isatty(STDOUT_FILENO) != 0

    /// Writes to standard output. A reader that went away ends the process quietly, as SIGPIPE
    /// does (exit 141); any other failure (a full disk, a closed descriptor) is one error line
    /// and exit 1, never a trap.
    static func write(_ s: String) {
        guard let failure = writeAll(STDOUT_FILENO, s) else { return }
        if failure == EPIPE { exit(141) }
        fail("standard output: cannot write (\(String(cString: strerror(failure))))")
    }

    static func line(_ s: String) { write(s + "\n") }

    /// A "wrote …" report for an output file: on standard error when the output is a stream
    /// (`--onnx /dev/stdout` carries the file's bytes), on standard output otherwise.
    static func wrote(_ output: String, _ s: String) {
        if AtomicFile.isStream(output) { _ = writeAll(STDERR_FILENO, s + "\n") } else { line(s) }
    }

    static func warn(_ s: String) { _ = writeAll(STDERR_FILENO, "warning: \(s)\n") }

    /// Writes `error: message` to standard error (whatever becomes of that write) and exits.
    static func fail(_ message: String, code: Int32 = 1) -> Never {
        _ = writeAll(STDERR_FILENO, "error: \(message)\n")
        exit(code)
    }

    /// Writes every byte of `s` to `fd`; returns the errno of a failed write, nil when all went out.
    private static func writeAll(_ fd: Int32, _ s: String) -> Int32? {
        Array(s.utf8).withUnsafeBytes { AtomicFile.writeAll(fd, $0) }
    }

    /// Reads up to 64 KiB from standard input: empty at its end; a failed read (a closed
    /// descriptor, a folder) is a one-line error.
    static func readInput() throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { Foundation.read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if n >= 0 { return Array(buffer[..<n]) }
            if errno == EINTR { continue }
            throw RecurrentError("standard input: cannot read (\(String(cString: strerror(errno))))")
        }
    }

    /// Standard input to its end.
    static func readAllInput() throws -> [UInt8] {
        var all: [UInt8] = []
        while true {
            let chunk = try readInput()
            if chunk.isEmpty { return all }
            all += chunk
        }
    }
}

/// A CSV file that rows are appended to, one write per row. A missing or empty file gets the header
/// first; an existing file must start with that header (it is this kind of log), else it is refused
/// rather than added to. Every failed write is a one-line error naming `flag` and the file.
struct CSVLog {
    let path: String
    let flag: String

    init(path: String, flag: String, header: String) throws {
        self.path = path
        self.flag = flag
        if let existing = FileManager.default.contents(atPath: path), !existing.isEmpty {
            let first = existing.prefix { $0 != 10 }
            guard String(decoding: first, as: UTF8.self) == header else {
                throw RecurrentError("\(flag) \(path): the file exists and is not such a log (its first line is not '\(header)'); name another file")
            }
            if existing.last != 10 { try append("") }   // end a last row cut short
        } else {
            try append(header)
        }
    }

    func append(_ row: String) throws {
        if !FileManager.default.fileExists(atPath: path), !FileManager.default.createFile(atPath: path, contents: nil) {
            throw RecurrentError("\(flag) \(path): cannot create the file")
        }
        do {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data((row + "\n").utf8))
        } catch {
            throw RecurrentError("\(flag) \(path): cannot write the file (\(error.localizedDescription))")
        }
    }
}

/// Human-friendly numbers for progress lines.
enum Format {
    static func grouped(_ x: Double) -> String {
        guard x.isFinite, abs(x) < 1e18 else { return String(format: "%.3g", x) }
        let n = Int(x.rounded())
        let s = String(abs(n))
        var out = ""
        for (i, ch) in s.enumerated() {
            if i > 0, (s.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        if seconds >= 3.6e9 { return ">1,000,000h" }   // an ETA from --epochs 1e300 (Int would trap)
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m" }
        if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s)s"
    }

    static func fixed(_ x: Double, _ digits: Int = 4) -> String { String(format: "%.\(digits)f", x) }

    /// Four decimals, or four significant digits for a value below 0.001 (an RMSE in small units).
    static func significant(_ x: Double) -> String {
        x != 0 && abs(x) < 1e-3 ? String(format: "%.4g", x) : fixed(x)
    }
}

/// Items for a one-line message: all of them when there are at most `limit`, else the first
/// `limit` and the count ("a, b, c, … (1,000 in all)").
func listed(_ items: [String], limit: Int = 10) -> String {
    items.count <= limit ? items.joined(separator: ", ")
        : items.prefix(limit).joined(separator: ", ") + ", … (\(Format.grouped(Double(items.count))) in all)"
}

/// JSON rendering of a flat object with string keys, numbers kept exact enough for checks.
func jsonObject(_ pairs: [(String, Any)]) -> String {
    let body = pairs.map { key, value -> String in
        let v: String
        switch value {
        case let d as Double: v = d.isFinite ? String(d) : "null"
        case let f as Float: v = f.isFinite ? String(Double(f)) : "null"
        case let i as Int: v = String(i)
        case let s as String: v = "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        default: v = "\(value)"
        }
        return "\"\(key)\": \(v)"
    }
    return "{" + body.joined(separator: ", ") + "}"
}

extension OptimizerSettings {
    /// The optimiser flags shared by `train` and the task trainers (`--optimizer`, `--lr`,
    /// `--momentum`, `--nesterov`, `--weight-decay`, `--beta1`, `--beta2`, `--alpha`, `--eps`).
    /// Range checks of the same flags, with the messages `validate()` shows.
    static func checkFlags(_ name: String, lr: Float, momentum: Float, nesterov: Bool, weightDecay: Float,
                           beta1: Float, beta2: Float, alpha: Float, eps: Float) throws {
        guard let kind = Kind(rawValue: name) else { throw ValidationError("--optimizer must be sgd, rmsprop or adam, got '\(name)'") }
        if !(lr > 0) || !lr.isFinite { throw ValidationError("--lr must be a finite number greater than 0, got \(lr)") }
        if !(momentum >= 0 && momentum < 1) { throw ValidationError("--momentum must be in [0, 1), got \(momentum)") }
        if kind == .adam && momentum > 0 { throw ValidationError("--momentum applies to sgd and rmsprop, not adam (whose momentum is --beta1)") }
        if nesterov && kind != .sgd { throw ValidationError("--nesterov applies to --optimizer sgd only") }
        if nesterov && !(momentum > 0) { throw ValidationError("--nesterov needs --momentum greater than 0") }
        if !(weightDecay >= 0) { throw ValidationError("--weight-decay must be zero or more, got \(weightDecay)") }
        if !(beta1 >= 0 && beta1 < 1) { throw ValidationError("--beta1 must be in [0, 1), got \(beta1)") }
        if !(beta2 >= 0 && beta2 < 1) { throw ValidationError("--beta2 must be in [0, 1), got \(beta2)") }
        if !(alpha >= 0 && alpha < 1) { throw ValidationError("--alpha must be in [0, 1), got \(alpha)") }
        if !(eps > 0) { throw ValidationError("--eps must be greater than 0, got \(eps)") }
        // A setting of another optimizer is refused, as --momentum with adam is (a value other
        // than the default is how a given flag shows).
        if kind != .adam && (beta1 != 0.9 || beta2 != 0.999) {
            throw ValidationError("\(beta1 != 0.9 ? "--beta1" : "--beta2") applies to --optimizer adam only, not \(name)")
        }
        if kind != .rmsprop && alpha != 0.99 { throw ValidationError("--alpha applies to --optimizer rmsprop only, not \(name)") }
        if kind == .sgd && eps != 1e-8 { throw ValidationError("--eps applies to --optimizer adam and rmsprop, not sgd") }
    }

    static func fromFlags(_ name: String, lr: Float, momentum: Float, nesterov: Bool, weightDecay: Float,
                          beta1: Float, beta2: Float, alpha: Float, eps: Float) -> OptimizerSettings {
        var o = OptimizerSettings()
        o.kind = Kind(rawValue: name) ?? .adam
        o.learningRate = lr
        o.momentum = momentum
        o.nesterov = nesterov
        o.weightDecay = weightDecay
        o.beta1 = beta1
        o.beta2 = beta2
        o.alpha = alpha
        o.eps = eps
        return o
    }
}

/// Sizes asked for on the command line, checked before any work against this machine's memory,
/// so that a mistyped `--hidden 1000000` gets one line instead of an allocation failure.
struct ModelSize {
    /// The size flags as given, for the message.
    var flags: [(String, Int)]
    /// Parameters (weights) of the model, counted in Double (no overflow).
    var parameters = 0.0
    /// Floats kept per training step besides the parameters (activations for backward).
    var activations = 0.0

    /// Adds `layers` recurrent layers of `hidden` units over `input`-wide inputs (`directions` 2:
    /// bidirectional, whose upper layers read 2·hidden): PyTorch's weight_ih, weight_hh and biases.
    mutating func addRecurrent(cell: String, input: Int, hidden: Int, layers: Int, directions: Int = 1) {
        let g = Double(CellKind(name: cell)?.gateCount ?? 4), h = Double(hidden), d = Double(directions)
        for l in 0..<layers {
            let width = l == 0 ? Double(input) : d * h
            parameters += d * g * h * (width + h + 2)
        }
    }

    /// Throws when the weights, their gradients and Adam's two moments (16 bytes per parameter)
    /// and the activations (4 bytes each) would not fit in the machine's memory.
    func check() throws {
        let bytes = 16 * parameters + 4 * activations
        let memory = Double(ProcessInfo.processInfo.physicalMemory)
        guard bytes > memory else { return }
        func size(_ b: Double) -> String {
            b >= 1e12 ? String(format: "%.3g TB", b / 1e12) : String(format: "%.3g GB", b / 1e9)
        }
        let given = flags.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
        let activationsNote = activations > 0 ? ", and the activations a step keeps for backward" : ""
        throw ValidationError("\(given): training a model of these sizes needs about \(size(bytes)) (\(String(format: "%.3g", parameters)) parameters at 16 bytes with their gradients and Adam's moments\(activationsNote)), more than this machine's \(size(memory))")
    }
}

/// Holds SIGINT, SIGTERM and SIGHUP while files are replaced: every `AtomicFile` write (so an
/// interrupted write leaves no temporary file), and a checkpoint with its training state together
/// (so a run stopped with Ctrl-C always leaves a pair that `--resume` accepts: each file is
/// written atomically, but a signal between the two renames left a new state beside an old
/// checkpoint). A signal that arrives meanwhile, on any thread, is raised again once the outermost
/// hold ends; at any other time the handler does what the default action does.
enum SaveGuard {
    nonisolated(unsafe) static var saving: sig_atomic_t = 0
    nonisolated(unsafe) static var pending: sig_atomic_t = 0
    static let signals = [SIGINT, SIGTERM, SIGHUP]

    /// Installs the handler and makes `AtomicFile` hold the signals (once per process).
    static func install() {
        saving = 0
        pending = 0
        // A signal the parent set to be ignored stays ignored (`nohup` ignores SIGHUP, a shell's
        // background job SIGINT), as in other command-line tools.
        let ignore = unsafeBitCast(SIG_IGN, to: Int.self)
        for s in signals {
            let previous = signal(s, saveGuardHandler)
            if let previous, unsafeBitCast(previous, to: Int.self) == ignore { signal(s, SIG_IGN) }
        }
        // A reader that goes away makes writes fail with EPIPE, which `Console.write` turns into
        // exit 141 (what SIGPIPE's death reports to a shell) through exit(), so that the output
        // lock is removed; killed by SIGPIPE itself, the process would leave it behind.
        signal(SIGPIPE, SIG_IGN)
        // A parent may have started the process with them blocked (its threads' mask is
        // inherited): unblock them, so that Ctrl-C always reaches the handler.
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        AtomicFile.section = { try SaveGuard.holding($0) }
    }

    /// Runs `body` with the signals held (holds may nest).
    static func holding(_ body: () throws -> Void) rethrows {
        saving += 1
        defer {
            saving -= 1
            if saving == 0, pending != 0 {
                let s = pending
                OutputLock.removeFileIfOurs()
                signal(s, SIG_DFL)
                raise(s)
            }
        }
        try body()
    }
}

/// The signal handler of `SaveGuard` (async-signal-safe: it reads and writes two flags and calls
/// signal and raise).
private func saveGuardHandler(_ sig: Int32) {
    if SaveGuard.saving != 0 {
        SaveGuard.pending = sig
    } else {
        OutputLock.removeFileIfOurs()
        signal(sig, SIG_DFL)
        raise(sig)
    }
}

/// One training run per output. Two runs writing one checkpoint would replace each other's files
/// (and training states) at every validation, so a training command holds an advisory lock
/// (`flock`) on `.NAME.lock` beside its output (symbolic links to the output resolved, so two
/// names of one file share it) for as long as it runs; a second run into the same output is
/// refused with one error line. The lock file is removed at exit and on SIGINT, SIGTERM and
/// SIGHUP; one left by a killed run holds no lock and is taken over. The lock file itself must be
/// a regular file (a symbolic link there is refused, not followed), and an output may not be
/// named like one.
enum OutputLock {
    nonisolated(unsafe) private static var held: (fd: Int32, path: UnsafeMutablePointer<CChar>, dev: dev_t, ino: ino_t)?

    /// Takes the lock for `output` (a training command's `--output`, a regular file) or throws.
    static func hold(_ output: String, flag: String = "--output") throws {
        if held != nil { return }
        let target = URL(fileURLWithPath: AtomicFile.resolvingLinks(output))
        let name = target.lastPathComponent
        if name.hasPrefix("."), name.hasSuffix(".lock"), name.count >= ".x.lock".count {
            throw RecurrentError("\(flag) \(output): names of the form .NAME.lock are the lock files of training runs; name the output otherwise")
        }
        let lock = target.deletingLastPathComponent().appendingPathComponent("." + name + ".lock").path
        // Signals held from the open until the lock is recorded, so that one arriving in between
        // still finds the file to remove.
        try SaveGuard.holding {
            while true {
                // Without following a link, and without waiting for a writer if a FIFO is there.
                // Read-write where it may (NFS needs it for an exclusive flock), else read-only,
                // which is enough locally and lets a user take over a lock file left by another.
                let flags = O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
                var fd = open(lock, O_RDWR | flags, 0o644)
                if fd < 0 && errno == EACCES { fd = open(lock, O_RDONLY | flags, 0o644) }
                guard fd >= 0 else {
                    let failure = errno
                    var info = stat()
                    if lstat(lock, &info) == 0, info.st_mode & S_IFMT == S_IFLNK {
                        throw RecurrentError("\(flag) \(output): its lock file \(lock) is a symbolic link; remove it (the tool does not follow it)")
                    }
                    throw RecurrentError("\(flag) \(output): cannot open its lock file \(lock) (\(String(cString: strerror(failure))))")
                }
                var mine = stat()
                guard fstat(fd, &mine) == 0, mine.st_mode & S_IFMT == S_IFREG else {
                    close(fd)
                    throw RecurrentError("\(flag) \(output): its lock file \(lock) is not a regular file; remove it")
                }
                if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                    let failure = errno
                    close(fd)
                    if failure == EWOULDBLOCK {
                        throw RecurrentError("\(flag) \(output): another training run is writing it (it holds \(lock)); wait for that run to end, or name another output")
                    }
                    throw RecurrentError("\(flag) \(output): cannot lock \(lock) (\(String(cString: strerror(failure))))")
                }
                // The run that held it may have removed the file between our open and our lock: the
                // lock counts only on the file that is there now.
                var there = stat()
                if lstat(lock, &there) == 0, mine.st_dev == there.st_dev, mine.st_ino == there.st_ino {
                    held = (fd, strdup(lock), mine.st_dev, mine.st_ino)
                    atexit { OutputLock.release() }
                    return
                }
                close(fd)
            }
        }
    }

    /// Removes the lock file, then lets go of the lock (at exit).
    static func release() {
        guard let h = held else { return }
        removeFileIfOurs()
        held = nil
        close(h.fd)
        free(h.path)
    }

    /// Removes the lock file if it is still ours (async-signal-safe: lstat and unlink), at exit and
    /// from the signal handler just before the process ends (the lock itself goes with the process).
    static func removeFileIfOurs() {
        guard let h = held else { return }
        var there = stat()
        if lstat(h.path, &there) == 0, there.st_dev == h.dev, there.st_ino == h.ino { unlink(h.path) }
    }
}
