import Foundation
import Testing
import TillerCore
@testable import TillerEvaluation

/// Where the built-in lab model is looked for, and what is said when it is nowhere.
@Suite struct BuiltInModelTests {
    /// A scratch directory, with a config.json when `model` is true; removed when the object goes away.
    final class Directory {
        let url: URL
        var path: String { url.path }

        init(model: Bool) throws {
            url = FileManager.default.temporaryDirectory.appendingPathComponent("tiller-builtin-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            if model { try "{}".write(to: url.appendingPathComponent("config.json"), atomically: true, encoding: .utf8) }
        }

        deinit { try? FileManager.default.removeItem(at: url) }
    }

    @Test func theEnvironmentComesFirst() throws {
        let chosen = try Directory(model: true), bundled = try Directory(model: true), source = try Directory(model: true)
        #expect(try BuiltInModel.locate(environment: ["TILLER_LAB_MODEL": chosen.path], bundled: bundled.url, sourceTree: source.url)
                == chosen.path)
    }

    /// A directory named explicitly is never silently replaced by another.
    @Test func anEnvironmentWithoutAModelFails() throws {
        let empty = try Directory(model: false), source = try Directory(model: true)
        #expect(throws: TillerError.io(path: empty.path, detail: "TILLER_LAB_MODEL names no model directory (no config.json there)")) {
            try BuiltInModel.locate(environment: ["TILLER_LAB_MODEL": empty.path], bundled: nil, sourceTree: source.url)
        }
    }

    @Test func theBundleBeforeTheSourceTree() throws {
        let bundled = try Directory(model: true), source = try Directory(model: true), placeholder = try Directory(model: false)
        #expect(try BuiltInModel.locate(environment: [:], bundled: bundled.url, sourceTree: source.url) == bundled.path)
        #expect(try BuiltInModel.locate(environment: [:], bundled: nil, sourceTree: source.url) == source.path)
        // A bundle holding only the placeholder card (no config.json) is passed over.
        #expect(try BuiltInModel.locate(environment: ["TILLER_LAB_MODEL": ""], bundled: placeholder.url, sourceTree: source.url) == source.path)
    }

    @Test func nowhereIsOneLineNamingEveryPlace() throws {
        let bundled = try Directory(model: false), source = try Directory(model: false)
        do {
            _ = try BuiltInModel.locate(environment: [:], bundled: bundled.url, sourceTree: source.url)
            Issue.record("found a model in empty directories")
        } catch {
            let text = String(describing: error)
            #expect(text.contains(bundled.path) && text.contains(source.path), "\(text)")
            #expect(text.contains("--model") && text.contains("TILLER_LAB_MODEL"), "\(text)")
            #expect(!text.contains("\n"))
        }
    }
}
