import ArgumentParser
import Explain
import Foundation

/// `--metrics`, `--metric-noise`, `--metric-seed`, `--metric-steps`: how faithful each explanation is, shared by
/// `video`, `image`, `tensor` and `report`.
struct MetricOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Score each explanation's faithfulness, any of \(FaithfulnessMetric.allCases.map(\.rawValue).joined(separator: ",")) (comma-separated; 'all' for every one): drop (and relative_drop) and increase for the input multiplied by the map, ROAD (road_morf, road_lerf, road), deletion and insertion AUC; scored on the explained class's probability. Costs 1 (drop, increase) to 58 (all) network runs per explanation.", valueName: "m1,m2,…"))
    var metrics: String?

    @Option(help: ArgumentHelp("ROAD's imputation noise, the standard deviation added to each imputed value (pytorch-grad-cam's 0.01; 0 for none).", valueName: "std"))
    var metricNoise: Float = 0.01

    @Option(help: ArgumentHelp("Seed of ROAD's imputation noise (each explanation draws the same sequence).", valueName: "n"))
    var metricSeed: Int = 0

    @Option(help: ArgumentHelp("Deletion and insertion curves' intervals (torchcam's default 20): ceil(pixels / steps) pixels per step.", valueName: "n"))
    var metricSteps: Int = 20

    mutating func validate() throws {
        guard metricSeed >= 0 else { throw ValidationError("--metric-seed must be 0 or more, got \(metricSeed)") }
        _ = try settings(defaultMetrics: [])
    }

    /// The metrics of `--metrics`, `defaultMetrics` without it; nil when that leaves none.
    func settings(defaultMetrics: [FaithfulnessMetric] = []) throws -> FaithfulnessSettings? {
        let chosen = try metrics.map(Self.parse) ?? defaultMetrics
        guard !chosen.isEmpty else { return nil }
        do {
            return try FaithfulnessSettings(metrics: chosen, noise: metricNoise, seed: UInt64(max(metricSeed, 0)), steps: metricSteps)
        } catch let error as ExplainError {
            throw ValidationError("\(error)")
        }
    }

    /// The metrics a `--metrics` value names.
    static func parse(_ text: String) throws -> [FaithfulnessMetric] {
        if text.trimmingCharacters(in: .whitespaces).lowercased() == "all" { return FaithfulnessMetric.allCases }
        return try commaSeparated(text, option: "--metrics", kind: "metric", choices: FaithfulnessMetric.allCases.map(\.rawValue) + ["all"]) {
            FaithfulnessMetric(rawValue: $0.lowercased())
        }
    }

    /// One line of scores, `drop 0.1703 relative_drop 0.2191 …`, as `image` and `tensor` print them.
    static func line(_ scores: FaithfulnessScores) -> String {
        scores.named.map { String(format: "%@ %.4f", $0.name, $0.value) }.joined(separator: " ")
    }
}

/// The values of a comma-separated option (`--grid`, `--methods`, `--metrics`), each word read by `value`; an unknown
/// word or an empty list is an error naming `option` and, for a word, the `choices`.
func commaSeparated<Value>(_ text: String, option: String, kind: String, choices: [String], value: (String) -> Value?) throws -> [Value] {
    let words = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    let values = try words.map { word -> Value in
        guard let parsed = value(word) else {
            throw ValidationError("\(option): unknown \(kind) '\(word)'; choose among \(choices.joined(separator: ", "))")
        }
        return parsed
    }
    guard !values.isEmpty else { throw ValidationError("\(option) names no \(kind)") }
    return values
}
