import Foundation
import Testing

/// Loads pages in a real headless Chromium and reads back what the page wrote into its DOM:
/// `data-ready` (set when rendering finished), `data-error` (set by window.onerror), `data-charts`
/// (charts on the page, and how many are empty), and
/// `data-load-ms` (the interactive pages' own measurement of their load).
///
/// The browser tests skip only when `RECURRENT_BROWSER_TESTS` is unset AND no Chromium is
/// installed; `.ci/run` installs Chromium and sets the variable, so a missing browser fails there.
enum Browser {
    /// chromium (Debian), chromium-browser or google-chrome from PATH.
    static let executable: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for dir in path.split(separator: ":") {
                let candidate = "\(dir)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return nil
    }()

    static var required: Bool { ProcessInfo.processInfo.environment["RECURRENT_BROWSER_TESTS"] != nil }
    /// Run the browser tests: required by the environment, or possible here.
    static var enabled: Bool { required || executable != nil }

    struct Page {
        var dom: String
        var stderr: String
        var seconds: Double
        /// The value of attribute `name` on <html>, if any.
        func attribute(_ name: String) -> String? {
            guard let html = dom.range(of: "<html") , let end = dom[html.upperBound...].firstIndex(of: ">") else { return nil }
            let tag = dom[html.upperBound..<end]
            guard let r = tag.range(of: " \(name)=\"") else { return nil }
            let rest = tag[r.upperBound...]
            return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
        }
        var ready: String? { attribute("data-ready") }
        var error: String? { attribute("data-error") }
        /// Console messages Chromium logged as errors from the page ("Uncaught …").
        var consoleErrors: [String] {
            stderr.split(separator: "\n").map(String.init).filter { $0.contains("CONSOLE") && ($0.contains("Uncaught") || $0.contains("Error")) }
        }
    }

    enum Failure: Error, CustomStringConvertible {
        case missing, timedOut(String)
        var description: String {
            switch self {
            case .missing: return "RECURRENT_BROWSER_TESTS is set but no chromium is on PATH (apt-get install -y chromium)"
            case .timedOut(let page): return "chromium did not finish \(page) within 60 s"
            }
        }
    }

    static func run(_ args: [String]) throws -> (stdout: String, stderr: String, seconds: Double) {
        guard let exe = executable else { throw Failure.missing }
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("recurrent-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        // --no-sandbox: CI runs as root; --disable-dev-shm-usage: containers give /dev/shm only 64 MB.
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
                       "--user-data-dir=\(profile.path)", "--enable-logging=stderr", "--v=0"] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        let start = Date()
        try p.run()
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data(), errData = Data()
        group.enter(); DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter(); DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        if group.wait(timeout: .now() + 60) == .timedOut {
            p.terminate()
            throw Failure.timedOut(args.last ?? "")
        }
        p.waitUntilExit()
        return (String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self), Date().timeIntervalSince(start))
    }

    /// The DOM of `path` after its scripts ran (`--virtual-time-budget` lets timers fire).
    static func load(_ path: String, fragment: String? = nil, budgetMs: Int = 3000) throws -> Page {
        let url = URL(fileURLWithPath: path).absoluteString + (fragment.map { "#" + $0 } ?? "")
        let r = try run(["--virtual-time-budget=\(budgetMs)", "--dump-dom", url])
        return Page(dom: r.stdout, stderr: r.stderr, seconds: r.seconds)
    }

    /// A PNG screenshot of `path`; returns its size in bytes (0 when none was written).
    static func screenshot(_ path: String, to png: String, width: Int = 1100, height: Int = 1400) throws -> Int {
        _ = try run(["--screenshot=\(png)", "--window-size=\(width),\(height)", "--virtual-time-budget=2000",
                     URL(fileURLWithPath: path).absoluteString])
        return ((try? FileManager.default.attributesOfItem(atPath: png))?[.size] as? Int) ?? 0
    }

    /// Checks a page the way every Insight page promises: loaded, no script error, charts with data.
    static func expectRendered(_ page: Page, minimumPoints: Int = 1, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(page.error == nil, "\(name): script error \(page.error ?? "")", sourceLocation: sourceLocation)
        #expect(page.consoleErrors.isEmpty, "\(name): console errors \(page.consoleErrors)", sourceLocation: sourceLocation)
        let ready = page.ready ?? ""
        let points = Int(ready.split(separator: " ").first ?? "") ?? 0
        #expect(points >= minimumPoints, "\(name): data-ready is '\(ready)', expected at least \(minimumPoints)", sourceLocation: sourceLocation)
        let charts = page.attribute("data-charts") ?? ""
        #expect(charts.hasSuffix(" charts, 0 empty"), "\(name): data-charts is '\(charts)', expected every chart to have data", sourceLocation: sourceLocation)
    }
}
