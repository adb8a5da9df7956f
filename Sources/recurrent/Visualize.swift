import ArgumentParser
import Foundation
import Recurrent

struct Visualize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "placeholder")
    func run() throws {}
}
