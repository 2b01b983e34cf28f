import Annotate
import ArgumentParser
import Core
import Engine
import Explain
import Render

/// What the option groups of `video` and `image` describe, checked before any file is opened:
/// the network's preprocessing (convert stage), the explainer (explain stage) and the overlay
/// (blend stage).
struct ExplanationSetup {
    /// Prepares each frame for the network; nil for `--method none`.
    let preprocessor: FramePreprocessor?
    /// One network explainer, a grid of them, or none.
    let explaining: VideoExplainer.Explaining
    /// How explanations are drawn.
    let overlay: Overlay
    /// The network's class names.
    let labels: ClassLabels
    /// The grid's tile count (`--grid` or several `--class`), nil for a single explanation.
    let tileCount: Int?
    /// What explains the frames, for the run's summary (`gradcam at layer X`).
    let description: String

    /// Loads the network and checks the method, layers and classes.
    init(_ options: ExplanationOptions, networkThreads: Int? = nil) throws {
        let (method, classes, records) = (options.method, options.classes, options.records)
        overlay = try options.drawing.overlay()
        let methods: [ExplanationMethod]
        switch method.chosen {
        case .none:
            guard !records.needsExplanation, classes.classes.isEmpty, options.metrics.metrics == nil else {
                throw CommandError("--json, --cams, --smooth, --grid, --class and --metrics need a method (not --method none)")
            }
            try method.checkGuidedClip([])
            (preprocessor, explaining, labels, tileCount, description) = (nil, .none, ClassLabels(names: []), nil, "none")
            return
        case .explained(let chosen):
            methods = try records.gridMethods() ?? [chosen]
        }
        try method.checkGuidedClip(methods)
        let metrics = try options.metrics.settings()
        let (network, labels) = try options.model.load()
        self.labels = labels
        let task = ModelTask(network: network, labels: labels)
        preprocessor = try options.preprocessing.preprocessor(for: network, task: task)
        let tiles = try methods.flatMap { chosen in
            try classes.targets.map { target in
                do {
                    return try NetworkExplainer(network: network, method: chosen, options: method.explainerOptions(), target: target,
                                                labels: labels, threads: networkThreads, detection: options.detection.settings,
                                                metrics: metrics)
                } catch let error as ExplainError {
                    // What the model cannot do is said of its file.
                    throw FailureInFile(file: (try? options.model.url().lastPathComponent) ?? "the model", error: error)
                }
            }
        }
        let layers = tiles[0].layers.isEmpty ? "" : " at \(tiles[0].layers.joined(separator: ","))"
        // `--grid` with one method and class is still a grid, so its records have one layout whatever the list.
        if tiles.count == 1 && records.grid == nil {
            explaining = .network(tiles[0])
            tileCount = nil
            description = tiles[0].method.rawValue + layers
        } else {
            explaining = .grid(GridExplainer(tiles: tiles)!)
            tileCount = tiles.count
            description = "a grid of \(tiles.count) (\(tiles.map(\.method.rawValue).joined(separator: ", ")))"
        }
    }

    /// The explain stage's resource: the explainer, `--smooth` and the `--json` / `--cams` files
    /// (created now, at `paths` when given), followed by `extra` records.
    func explainer(_ records: RecordOptions, paths: (json: String?, cams: String?)? = nil,
                   extra: [any ExplanationRecord] = []) throws -> VideoExplainer {
        VideoExplainer(explaining, smoothing: records.smoothing,
                       records: try records.open(labels: labels, tiles: tileCount, paths: paths) + extra)
    }
}
