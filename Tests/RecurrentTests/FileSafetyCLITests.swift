import Foundation
import Testing
@testable import Recurrent

/// Outputs that are links, devices or someone else's files; standard streams that fail; logs that
/// are appended to. Each failure is one error line and a non-zero exit, never a trap.
@Suite(.serialized) struct FileSafetyCLITests {
    static let checkpoint = Fixtures.torch("charlm_lstm.checkpoint.safetensors")

    /// Runs the binary with the given descriptors for standard input and output (stderr is read).
    static func run(_ args: [String], stdin: FileHandle, stdout: FileHandle) throws -> CLI.Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = args
        let err = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        p.standardError = err
        try p.run()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CLI.Result(status: p.terminationStatus, stdout: "", stderr: String(decoding: errData, as: UTF8.self))
    }

    @Test func aFullStandardOutputIsOneErrorLine() throws {
        guard let full = FileHandle(forWritingAtPath: "/dev/full") else { return }   // no /dev/full (macOS)
        let r = try Self.run(["sample", "--checkpoint", Self.checkpoint, "--length", "200", "--seed", "1"],
                             stdin: FileHandle.nullDevice, stdout: full)
        expectCleanError(r, mentions: "standard output")
        #expect(r.status == 1)
    }

    @Test func helpToAFullStandardOutputIsOneErrorLine() throws {
        guard let full = FileHandle(forWritingAtPath: "/dev/full") else { return }   // no /dev/full (macOS)
        for args in [["--help"], ["sample", "--help"], ["translate", "train", "-h"]] {
            let r = try Self.run(args, stdin: FileHandle.nullDevice, stdout: full)
            expectCleanError(r, mentions: "standard output")
            #expect(r.status == 1, "\(args)")
        }
        let ok = try CLI.run(["sample", "--help"])
        #expect(ok.status == 0 && ok.stdout.contains("USAGE: recurrent sample") && ok.stderr.isEmpty, "\(ok)")
    }

    /// A folder with a small text to train on, the checkpoint path and its lock file's path.
    static func lockFolder() throws -> (dir: URL, text: String, model: String, lock: String) {
        let dir = CLI.tempDir()
        let text = dir.appendingPathComponent("text.txt").path
        try String(repeating: "the cat sat on the mat\n", count: 80).write(toFile: text, atomically: true, encoding: .utf8)
        return (dir, text, dir.appendingPathComponent("m.safetensors").path, dir.appendingPathComponent(".m.safetensors.lock").path)
    }

    /// A model small enough to train in a moment.
    static let small = ["--hidden", "8", "--embedding", "4", "--layers", "1", "--batch-size", "2", "--seq-len", "8", "--threads", "1"]

    @Test func aSecondTrainingRunIntoOneOutputIsRefused() throws {
        let (dir, text, model, lock) = try Self.lockFolder()
        let small = Self.small
        let alias = dir.appendingPathComponent("alias.safetensors").path
        try FileManager.default.createSymbolicLink(atPath: alias, withDestinationPath: "m.safetensors")
        let first = Process()
        first.executableURL = URL(fileURLWithPath: CLI.binary)
        first.arguments = ["train", "--data", text, "--output", model, "--steps", "100000000", "--eval-every", "50"] + small
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        defer { if first.isRunning { first.terminate(); first.waitUntilExit() } }
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: lock), Date() < deadline { usleep(20_000) }
        #expect(FileManager.default.fileExists(atPath: lock), "the running training holds \(lock)")
        for output in [model, alias] {
            let second = try CLI.run(["train", "--data", text, "--output", output, "--steps", "5"] + small)
            expectCleanError(second, mentions: "another training run is writing it")
        }
        let tagger = try CLI.run(["tag", "train", "--train", text, "--valid", text, "--output", model])
        expectCleanError(tagger, mentions: "another training run")
        first.terminate()
        first.waitUntilExit()
        #expect(!FileManager.default.fileExists(atPath: lock), "SIGTERM removes the lock file")
        let after = try CLI.run(["train", "--data", text, "--output", model, "--steps", "5"] + small)
        #expect(after.status == 0, "\(after.stderr)")
        #expect(!FileManager.default.fileExists(atPath: lock), "a finished run removes the lock file")
        // A lock file left by a killed run holds no lock: the next run takes it over.
        #expect(FileManager.default.createFile(atPath: lock, contents: nil))
        let again = try CLI.run(["train", "--data", text, "--output", model, "--steps", "5"] + small)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(!FileManager.default.fileExists(atPath: lock))
    }

    @Test func anIgnoredSIGHUPStaysIgnoredAsUnderNohup() throws {
        let (_, text, model, lock) = try Self.lockFolder()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "trap '' HUP; exec \"$0\" \"$@\"", CLI.binary, "train", "--data", text, "--output", model,
                       "--steps", "100000000", "--quiet"] + Self.small
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: lock), Date() < deadline { usleep(20_000) }
        kill(p.processIdentifier, SIGHUP)
        usleep(300_000)
        #expect(p.isRunning, "SIGHUP ended a run that was started with it ignored")
        p.terminate()
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGTERM)
        #expect(!FileManager.default.fileExists(atPath: lock))
    }

    @Test func theOutputLockIsNeverAnotherFile() throws {
        let (dir, text, model, lock) = try Self.lockFolder()
        let small = Self.small
        func names() throws -> Set<String> { Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)) }
        // A symbolic link at the lock's name is refused, not followed (it would create its target).
        let victim = dir.appendingPathComponent("victim").path
        try FileManager.default.createSymbolicLink(atPath: lock, withDestinationPath: victim)
        expectCleanError(try CLI.run(["train", "--data", text, "--output", model, "--steps", "3"] + small), mentions: "is a symbolic link")
        #expect(!FileManager.default.fileExists(atPath: victim))
        try FileManager.default.removeItem(atPath: lock)
        // A FIFO there is refused at once, not waited on for a writer.
        #expect(mkfifo(lock, 0o644) == 0)
        let waiting = Process()
        waiting.executableURL = URL(fileURLWithPath: CLI.binary)
        waiting.arguments = ["train", "--data", text, "--output", model, "--steps", "3"] + small
        let errors = Pipe()
        waiting.standardOutput = FileHandle.nullDevice
        waiting.standardError = errors
        try waiting.run()
        let deadline = Date().addingTimeInterval(30)
        while waiting.isRunning && Date() < deadline { usleep(20_000) }
        if waiting.isRunning { kill(waiting.processIdentifier, SIGKILL) }
        waiting.waitUntilExit()
        let said = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(waiting.terminationStatus == 1 && said.contains("is not a regular file"), "\(said)")
        try FileManager.default.removeItem(atPath: lock)
        // A training output must be a regular file: a stream would get a checkpoint at every
        // better validation, and a training state beside /dev/stdout would be a new file in /dev.
        expectCleanError(try CLI.run(["train", "--data", text, "--output", "/dev/stdout", "--steps", "3"] + small), mentions: "name a regular file")
        // An output named like a lock file would replace another run's lock.
        expectCleanError(try CLI.run(["train", "--data", text, "--output", lock, "--steps", "3"] + small), mentions: "lock files of training runs")
        #expect(try names() == ["text.txt"])
        // With standard output closed, open() must not hand its number to the lock file.
        let closed = try CLI.run(["-c", "exec \"$0\" \"$@\" >&-", CLI.binary, "train", "--data", text, "--output", model, "--steps", "3"] + small, executable: "/bin/sh")
        expectCleanError(closed, mentions: "standard output: cannot write")
        #expect(try names() == ["text.txt"])
        // Nor may a closed standard output be reached through a link to /dev/stdout.
        let link = dir.appendingPathComponent("out.onnx").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/dev/stdout")
        let viaLink = try CLI.run(["-c", "exec \"$0\" \"$@\" >&-", CLI.binary, "export", "--checkpoint", Self.checkpoint, "--onnx", link], executable: "/bin/sh")
        expectCleanError(viaLink, mentions: "Bad file descriptor")
        try FileManager.default.removeItem(atPath: link)
        // A reader that goes away (exit 141) still removes the lock.
        let piped = try CLI.run(["-c", "\"$0\" \"$@\" | head -n 1 > /dev/null; exit ${PIPESTATUS[0]}", CLI.binary, "train", "--data", text,
                                 "--output", model, "--steps", "100000000"] + small, executable: "/bin/bash")
        #expect(piped.status == 141, "\(piped)")
        #expect(!FileManager.default.fileExists(atPath: lock))
        // A read-only checkpoint is refused before training, not after it.
        try Data("old".utf8).write(to: URL(fileURLWithPath: model))
        #expect(chmod(model, 0o444) == 0)
        let ro = try CLI.run(["train", "--data", text, "--output", model, "--steps", "3"] + small)
        expectCleanError(ro, mentions: "the file is read-only")
        #expect(!ro.stderr.contains("step"), "refused before the first step")
    }

    @Test func anUnreadableStandardInputIsOneErrorLine() throws {
        let dir = CLI.tempDir()
        let data = try TranslateCLITests().write(dir, "pairs.tsv", TranslateCLITests.pairs)
        let model = dir.appendingPathComponent("m.safetensors").path
        let t = try CLI.run(["translate", "train", "--pairs", data, "--output", model, "--steps", "4", "--eval-every", "2"] + TranslateCLITests.tinyModel)
        #expect(t.status == 0, "\(t.stderr)")
        // A folder as standard input: open succeeds, read fails (EISDIR).
        guard let folder = FileHandle(forReadingAtPath: dir.path) else { Issue.record("cannot open \(dir.path)"); return }
        let r = try Self.run(["translate", "--checkpoint", model], stdin: folder, stdout: FileHandle.nullDevice)
        expectCleanError(r, mentions: "standard input")
    }

    @Test func aReadOnlyOutputIsRefusedEvenForRoot() throws {
        let dir = CLI.tempDir()
        let target = dir.appendingPathComponent("ro.onnx").path
        try Data("old".utf8).write(to: URL(fileURLWithPath: target))
        #expect(chmod(target, 0o444) == 0)
        let r = try CLI.run(["export", "--checkpoint", Self.checkpoint, "--onnx", target])
        expectCleanError(r, mentions: "read-only")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data("old".utf8))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0 != "ro.onnx" }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test func exportWritesThroughALinkAndKeepsTheFilesMode() throws {
        let dir = CLI.tempDir()
        let target = dir.appendingPathComponent("target.onnx").path
        let link = dir.appendingPathComponent("link.onnx").path
        try Data("old".utf8).write(to: URL(fileURLWithPath: target))
        #expect(chmod(target, 0o640) == 0)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "target.onnx")
        let r = try CLI.run(["export", "--checkpoint", Self.checkpoint, "--onnx", link])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "target.onnx")
        let written = try Data(contentsOf: URL(fileURLWithPath: target))
        #expect(written.count > 1000)
        #expect(r.stdout.contains("\(Int((Double(written.count) / 1024).rounded())) KiB"), "the size of the file, not the link's: \(r.stdout)")
        let mode = (try FileManager.default.attributesOfItem(atPath: target)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o640)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty)
    }

    /// A write removes the temporary files of the same target that a killed process left (its PID
    /// gone), and leaves those of a process still running.
    @Test func staleTemporaryFilesAreRemoved() throws {
        let dir = CLI.tempDir()
        let done = Process()
        done.executableURL = URL(fileURLWithPath: "/bin/sh")
        done.arguments = ["-c", "exit 0"]
        try done.run()
        done.waitUntilExit()
        let stale = dir.appendingPathComponent(".m.onnx.tmp-\(done.processIdentifier)-12345").path
        let live = dir.appendingPathComponent(".m.onnx.tmp-\(getpid())-678").path
        let other = dir.appendingPathComponent(".n.onnx.tmp-\(done.processIdentifier)-9").path
        for p in [stale, live, other] { try Data("x".utf8).write(to: URL(fileURLWithPath: p)) }
        let r = try CLI.run(["export", "--checkpoint", Self.checkpoint, "--onnx", dir.appendingPathComponent("m.onnx").path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(FileManager.default.fileExists(atPath: live) && FileManager.default.fileExists(atPath: other))
    }

    @Test func aDeviceIsWrittenToNotReplaced() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { return }
        let r = try CLI.run(["export", "--checkpoint", Self.checkpoint, "--onnx", "/dev/full"])
        expectCleanError(r, mentions: "/dev/full")
        var info = stat()
        #expect(stat("/dev/full", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR)
        let ok = try CLI.run(["export", "--checkpoint", Self.checkpoint, "--onnx", "/dev/null"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(stat("/dev/null", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR)
    }

    /// /dev/stdout is the descriptor already open (a pipe, or a file opened for appending by the
    /// shell): the bytes go there and the "wrote" line to standard error. A relative link reached
    /// through a linked folder is followed from the folder it is in, as the kernel follows it.
    @Test func streamsAndLinksAsTheKernelSeesThem() throws {
        let dir = CLI.tempDir()
        let out = dir.appendingPathComponent("out.bin")
        try Data("hello\n".utf8).write(to: out)
        guard let appending = FileHandle(forUpdatingAtPath: out.path) else { Issue.record("cannot open \(out.path)"); return }
        try appending.seekToEnd()
        let r = try Self.run(["export", "--checkpoint", Self.checkpoint, "--onnx", "/dev/stdout"], stdin: FileHandle.nullDevice, stdout: appending)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.hasPrefix("wrote /dev/stdout: char-lm"), "\(r.stderr)")
        let expected = try Data(contentsOf: URL(fileURLWithPath: Self.exported(in: dir)))
        #expect(try Data(contentsOf: out) == Data("hello\n".utf8) + expected)

        let fm = FileManager.default
        for sub in ["A/C", "B", "C"] { try fm.createDirectory(at: dir.appendingPathComponent(sub), withIntermediateDirectories: true) }
        try fm.createSymbolicLink(atPath: dir.appendingPathComponent("A/dirlink").path, withDestinationPath: "../B")
        try fm.createSymbolicLink(atPath: dir.appendingPathComponent("B/rel").path, withDestinationPath: "../C/target.onnx")
        let l = try CLI.run(["export", "--checkpoint", Self.checkpoint, "--onnx", dir.appendingPathComponent("A/dirlink/rel").path])
        #expect(l.status == 0, "\(l.stderr)")
        #expect(try Data(contentsOf: dir.appendingPathComponent("C/target.onnx")) == expected)
        #expect(try fm.contentsOfDirectory(atPath: dir.appendingPathComponent("A/C").path).isEmpty)
    }

    /// The ONNX file `export` writes for the fixture, at a plain path in `dir`.
    static func exported(in dir: URL) throws -> String {
        let path = dir.appendingPathComponent("plain.onnx").path
        _ = try CLI.run(["export", "--checkpoint", checkpoint, "--onnx", path])
        return path
    }

    /// A FIFO with no reader blocks the write, as `cat > fifo` would; Ctrl-C still ends it.
    @Test func aBlockedFIFOWriteStillEndsOnSIGINT() throws {
        let dir = CLI.tempDir()
        let fifo = dir.appendingPathComponent("f").path
        guard mkfifo(fifo, 0o644) == 0 else { Issue.record("mkfifo failed"); return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["export", "--checkpoint", Self.checkpoint, "--onnx", fifo]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        Thread.sleep(forTimeInterval: 0.5)
        p.interrupt()
        let deadline = Date().addingTimeInterval(5)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let ended = !p.isRunning
        if !ended { kill(p.processIdentifier, SIGKILL) }
        #expect(ended, "SIGINT did not end a write blocked on a FIFO")
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGINT)
    }

    @Test func translateLogAppendsAcrossAResumeAndRefusesAnotherFile() throws {
        let dir = CLI.tempDir()
        let data = try TranslateCLITests().write(dir, "pairs.tsv", TranslateCLITests.pairs)
        let model = dir.appendingPathComponent("m.safetensors").path
        let log = dir.appendingPathComponent("log.csv").path
        let base = ["translate", "train", "--pairs", data, "--output", model, "--eval-every", "2", "--log", log] + TranslateCLITests.tinyModel
        #expect(try CLI.run(base + ["--steps", "4"]).status == 0)
        let resumed = try CLI.run(base + ["--steps", "8", "--resume", model])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let rows = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(rows.first == "step,seconds,teacher_forcing,train_loss,valid_loss,valid_bleu")
        #expect(rows.dropFirst().map { $0.split(separator: ",")[0] } == ["2", "4", "6", "8"])

        let notes = try TranslateCLITests().write(dir, "notes.txt", "my notes\n")
        let refused = try CLI.run(["translate", "train", "--pairs", data, "--output", dir.appendingPathComponent("n.safetensors").path,
                                   "--steps", "2", "--log", notes] + TranslateCLITests.tinyModel)
        expectCleanError(refused, mentions: "--log")
        #expect(try String(contentsOfFile: notes, encoding: .utf8) == "my notes\n")
    }

    /// A run stopped after writing its checkpoint but before its training state: resume goes on
    /// from the state, and only a model better than the checkpoint's replaces it.
    @Test func resumeKeepsACheckpointNewerThanItsState() throws {
        let dir = CLI.tempDir()
        let folder = dir.appendingPathComponent("names")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        _ = try TranslateCLITests().write(folder, "Alpha.txt", "anna\nanita\nannie\nana\nanja\nanke\nanouk\nantje\nanny\nangela\n")
        _ = try TranslateCLITests().write(folder, "Beta.txt", "bob\nbert\nbodo\nboris\nbruno\nbernd\nbenno\nbjorn\nbasti\nbela\n")
        let model = dir.appendingPathComponent("g.safetensors").path
        let state = model + ".training.safetensors"
        let base = ["generate", "train", "--data", folder.path, "--output", model, "--hidden", "8", "--embedding", "4",
                    "--condition-size", "2", "--batch-size", "4", "--eval-every", "2", "--lr", "0.02", "--threads", "1", "--quiet"]
        #expect(try CLI.run(base + ["--steps", "2"]).status == 0)
        let early = dir.appendingPathComponent("early.safetensors").path
        try FileManager.default.copyItem(atPath: state, toPath: early)
        #expect(try CLI.run(base + ["--steps", "12", "--resume", model]).status == 0)
        let later = try SafeTensors.metadata(path: model)
        let laterStep = Int(later["step"] ?? "") ?? 0
        let laterLoss = Double(later["valid_loss"] ?? "") ?? .nan
        #expect(laterStep > 2, "the loss did not improve after step 2: \(later)")
        // The state from step 2 beside the checkpoint from a later step, as a kill between the two writes leaves them.
        try FileManager.default.removeItem(atPath: state)
        try FileManager.default.copyItem(atPath: early, toPath: state)
        let r = try CLI.run(base + ["--steps", "4", "--resume", model])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("the checkpoint is from step \(laterStep), its training state from step 2"), "\(r.stderr)")
        // Steps 2–4 score worse than the checkpoint's later step, so it stays.
        let after = try SafeTensors.metadata(path: model)
        #expect(after["step"] == String(laterStep) && Double(after["valid_loss"] ?? "") == laterLoss, "\(after)")
    }

    /// A char-LM whose weights went to infinity is not saved: the previous checkpoint and its
    /// training state stay as they were, a pair that resumes.
    @Test func divergedWeightsAreNotSaved() throws {
        let dir = CLI.tempDir()
        let out = dir.appendingPathComponent("m.safetensors").path
        let text = Fixtures.torch("charlm_lstm.txt")
        let base = ["train", "--data", text, "--hidden", "8", "--embedding", "4", "--layers", "1", "--batch-size", "2",
                    "--seq-len", "8", "--val-fraction", "0", "--optimizer", "sgd", "--threads", "1", "--quiet", "--output", out]
        #expect(try CLI.run(base + ["--steps", "2"]).status == 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: out))
        let stateBefore = try Data(contentsOf: URL(fileURLWithPath: out + ".training.safetensors"))
        // The step's loss is finite, but weight decay 1e30 at rate 1e30 sends every weight past
        // Float's range; with no validation split the run saves at its end.
        let r = try CLI.run(base + ["--steps", "3", "--resume", out, "--lr", "1e30", "--weight-decay", "1e30"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("nan") || r.stderr.contains("inf") || r.stderr.contains("diverged"), "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == before)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + ".training.safetensors")) == stateBefore)
    }

    /// clip_grad_norm_ clamps its coefficient at 1: a norm limit so large that the coefficient
    /// overflows leaves the gradients as they are (it multiplied them by infinity).
    @Test func aHugeClipLimitLeavesTheGradientsAlone() throws {
        let p = Parameter(name: "w", value: Tensor(shape: [3], data: [1, 2, 3]))
        p.grad = Tensor(shape: [3], data: [0.5, -1, 1e-3])
        let norm = GradientClipping.clipNorm([p], maxNorm: 3.4e38)
        #expect(abs(norm - Float((0.25 + 1 + 1e-6).squareRoot())) < 1e-6)
        #expect(p.grad.data == [0.5, -1, 1e-3])
        GradientClipping.clipNorm([p], maxNorm: .infinity)
        #expect(p.grad.data == [0.5, -1, 1e-3])
        p.grad = Tensor(shape: [3], data: [.nan, 1, 1])
        GradientClipping.clipNorm([p], maxNorm: 1)
        #expect(p.grad.data.allSatisfy { $0.isNaN })   // as PyTorch: a nan norm makes every gradient nan
    }

    /// A regular file under /dev (tmpfs at /dev/shm) is written atomically like any other: only
    /// descriptor paths (/dev/stdout, /dev/fd/N) and devices or FIFOs are written as they are.
    @Test func aRegularFileUnderDevIsWrittenAtomically() throws {
        guard FileManager.default.fileExists(atPath: "/dev/shm") else { return }
        let path = "/dev/shm/recurrent-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).bin"
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(!AtomicFile.isStream(path) && AtomicFile.isStream("/dev/stdout") && AtomicFile.isStream("/dev/null"))
        try AtomicFile.write(Data("a much longer old content".utf8), to: path)
        try AtomicFile.write(Data("NEW".utf8), to: path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data("NEW".utf8))
    }

    /// Library checks that turn misuse into an error instead of a trap or wrong numbers.
    @Test func libraryRefusesMismatchedInputs() throws {
        var rng = SeededRNG(seed: 2)
        let vocab = CharVocabulary(text: Array("abc".unicodeScalars))
        let model = CharLM(config: CharLMConfig(cell: .rnnTanh, vocabulary: vocab, embeddingSize: 2, hiddenSize: 3, numLayers: 1), rng: &rng)
        var options = CharLMTrainingOptions()
        options.batchSize = 1
        options.seqLen = 2
        #expect(throws: RecurrentError.self) {
            _ = try CharLMTrainer(model: model, trainTokens: [0, 1, 2, 7, 1, 0], validationTokens: [], options: options, source: "t")
        }
        // A checkpoint of another cell and vocabulary with the same shapes is not assigned.
        let other = CharLM(config: CharLMConfig(cell: .rnnRelu, vocabulary: CharVocabulary(text: Array("xyz".unicodeScalars)),
                                                embeddingSize: 2, hiddenSize: 3, numLayers: 1), rng: &rng)
        let path = CLI.tempDir().appendingPathComponent("o.safetensors").path
        try CharLMCheckpoint.save(other, to: path)
        #expect(throws: RecurrentError.self) { try CharLMCheckpoint.assign(try SafeTensors.read(path: path), to: model, path: path) }
        // keepBest ignores NaN.
        let trainer = TaskTrainer(parameters: model.parameters, lengths: [3], options: TaskTrainingOptions())
        trainer.keepBest(atLeast: .nan)
        #expect(trainer.bestAccuracy == nil)
        trainer.keepBest(atLeast: 0.5)
        trainer.keepBest(atLeast: .nan)
        #expect(trainer.bestAccuracy == 0.5)
    }
}
