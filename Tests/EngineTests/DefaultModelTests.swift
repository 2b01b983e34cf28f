import Engine
import Foundation
import Testing
import TestSupport

/// Where the bundled model is looked for: `$CAMVID_MODEL_DIR`, `<bin>/../share/camvid`, the bundle beside the executable.
@Suite struct DefaultModelTests {
    @Test func looksBesideTheExecutableInOrder() {
        let places = DefaultModel.places(environment: [:], executable: URL(fileURLWithPath: "/opt/tool/bin/camvid"))
        #expect(places.map(\.kind) == [.installed, .bundle])
        #expect(places.map(\.directory.path) == ["/opt/tool/share/camvid", "/opt/tool/bin/camvid_Engine.resources/Resources"])
    }

    @Test func theEnvironmentVariableIsTheOnlyPlaceWhenSet() throws {
        let places = DefaultModel.places(environment: ["CAMVID_MODEL_DIR": "/nowhere/models"],
                                         executable: URL(fileURLWithPath: "/opt/tool/bin/camvid"))
        #expect(places.map(\.kind) == [.environment])
        let error = try #require(throws: EngineError.self) { try DefaultModel.location(in: places) }
        #expect(error.description.contains("/nowhere/models ($CAMVID_MODEL_DIR)"), "\(error)")
        // Empty counts as unset.
        #expect(DefaultModel.places(environment: ["CAMVID_MODEL_DIR": ""], executable: URL(fileURLWithPath: "/b/camvid")).count == 2)
    }

    @Test func aMissingModelNamesEveryPlaceInOneLine() throws {
        let places = DefaultModel.places(environment: [:], executable: URL(fileURLWithPath: "/opt/tool/bin/camvid"))
        let error = try #require(throws: EngineError.self) { try DefaultModel.location(in: places) }
        #expect(!error.description.contains("\n"))
        #expect(error.description.contains("/opt/tool/share/camvid (installed beside the executable)"), "\(error)")
        #expect(error.description.contains("/opt/tool/bin/camvid_Engine.resources/Resources"), "\(error)")
    }

    @Test func theInstalledFolderComesBeforeTheBundle() throws {
        let prefix = try ReferenceData.temporaryDirectory("camvid-model-places")
        defer { try? FileManager.default.removeItem(at: prefix) }
        let share = prefix.appendingPathComponent("share/camvid"), bundle = prefix.appendingPathComponent("bin/camvid_Engine.resources/Resources")
        for folder in [share, bundle] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data("onnx".utf8).write(to: folder.appendingPathComponent(DefaultModel.fileName))
        }
        let places = DefaultModel.places(environment: [:], executable: prefix.appendingPathComponent("bin/camvid"))
        #expect(try DefaultModel.location(in: places).kind == .installed)
        try FileManager.default.removeItem(at: share)
        #expect(try DefaultModel.location(in: places).kind == .bundle)
    }

    /// The test runner sits beside SwiftPM's resource bundle, as `swift run`'s camvid does.
    @Test func testsFindTheBundleBesideTheirRunner() throws {
        let place = try DefaultModel.location()
        #expect(place.kind == .bundle || place.kind == .environment)
        #expect(DefaultModel.url == place.modelFile)
        #expect(FileManager.default.fileExists(atPath: place.classNamesFile.path))
    }
}
