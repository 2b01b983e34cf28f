import ArgumentParser
import Core
import Engine
import Explain
import Foundation
import Media

/// The command-line words shared by `image`, `tensor` and `visualize`: method names, class
/// targets, layer lists, channel triples, and the one-line failure report.
enum ExplainArguments {
    /// The method called `name` (its command-line name, or pytorch-grad-cam's spelling such as `gradcampp`).
    static func method(_ name: String) throws -> ExplanationMethod {
        let key = name.lowercased()
        if let method = ExplanationMethod(rawValue: key) { return method }
        let aliases: [String: ExplanationMethod] = [
            "gradcampp": .gradcamPlusPlus, "gradcamplusplus": .gradcamPlusPlus,
            "gradcam_elementwise": .gradcamElementwise, "guided_backprop": .guidedBackprop,
            "guidedbp": .guidedBackprop, "guided_gradcam": .guidedGradcam,
        ]
        if let method = aliases[key] { return method }
        throw CommandError("unknown method '\(name)'; choose one of \(ExplanationMethod.allCases.map(\.rawValue).joined(separator: ", "))")
    }

    /// `--guided-clip` changes only the guided methods, so asking for it without one is a mistake worth saying.
    static func checkGuidedClip(_ guidedClip: Bool, methods: [ExplanationMethod]) throws {
        guard guidedClip, !methods.contains(where: { $0 == .guidedBackprop || $0 == .guidedGradcam }) else { return }
        let chosen = methods.isEmpty ? "none" : methods.map(\.rawValue).joined(separator: ", ")
        throw CommandError("--guided-clip applies to guided-backprop and guided-gradcam, not \(chosen)")
    }

    /// `T[,T...]` as tensor names; nil for nil.
    static func layers(_ argument: String?) throws -> [String]? {
        guard let argument else { return nil }
        let names = argument.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty, !names.contains(where: \.isEmpty) else {
            throw CommandError("--layer '\(argument)' is not a comma-separated list of tensor names")
        }
        return names
    }

    /// Checks that every named layer is a tensor of `network`, naming the first that is not.
    static func checkLayers(_ layers: [String]?, in network: Network, model: String) throws {
        guard let layers else { return }
        let known = Set(network.layers.map(\.name))
        for layer in layers where !known.contains(layer) {
            throw CommandError("\(model): no tensor named '\(layer)' (see `camvid layers`)")
        }
    }

    /// Three comma-separated numbers (R, G, B) for `--mean` / `--std`.
    static func triple(_ argument: String, option: String, positive: Bool) throws -> [Float] {
        let values = argument.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count == 3, values.allSatisfy({ $0.isFinite && (!positive || $0 > 0) }) else {
            throw CommandError("\(option) '\(argument)' is not three comma-separated \(positive ? "positive " : "")numbers (R,G,B)")
        }
        return values
    }

    /// The model file given, or the bundled EfficientNet-Lite0.
    static func modelURL(_ path: String?) -> URL {
        path.map { URL(fileURLWithPath: $0) } ?? DefaultModel.url
    }

    /// The ImageNet class names.
    static var labels: ClassLabels { ClassLabels(names: ImageNetClasses.names) }

    /// A class index from `top1`-less words: an index in range or an ImageNet label (unique prefix).
    static func classIndex(_ argument: String, classes: Int = 1000) throws -> Int {
        switch ClassTarget(argument: argument) {
        case .top1:
            throw CommandError("--class top1 needs a picture; give a class index or label")
        case let .index(index):
            guard index >= 0, index < classes else { throw ExplainError.classIndexOutOfRange(index, classes: classes) }
            return index
        case let .label(label):
            return try labels.index(of: label)
        }
    }

    /// Runs `body`; any error becomes one line `camvid: MESSAGE` on standard error and exit status 1.
    ///
    /// Messages from Media, Engine and the `.npy` reader already name their file or ONNX node;
    /// others get `context` (the file the command was working on, when there is one) in front.
    static func reporting<T>(context: String?, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ExitCode {
            throw error
        } catch {
            let text = "\(error)"
            let namesItsFile = error is CommandError || error is MediaError || error is EngineError || error is NumPyFile.FormatError
            let named = namesItsFile || context.map { text.contains($0) } != false ? text : "\(context ?? ""): \(text)"
            FileHandle.standardError.write(Data("camvid: \(named.replacingOccurrences(of: "\n", with: " "))\n".utf8))
            throw ExitCode.failure
        }
    }
}

/// A command-line mistake found while running a command, said in one sentence.
struct CommandError: Error, CustomStringConvertible {
    /// The sentence.
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
