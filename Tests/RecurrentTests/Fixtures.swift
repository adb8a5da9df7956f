import Foundation

/// Paths to the shared reference material beside the project root (`../shared`).
enum Fixtures {
    static let root: String = {
        // Tests/RecurrentTests/Fixtures.swift -> project root
        let here = URL(fileURLWithPath: #filePath)
        let project = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return project.deletingLastPathComponent().appendingPathComponent("shared").path
    }()

    static func torch(_ name: String) -> String { root + "/fixtures/torch/" + name }
    static func data(_ name: String) -> String { root + "/data/" + name }
}
