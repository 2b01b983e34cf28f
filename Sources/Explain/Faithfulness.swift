import Core
import Foundation
import Synchronization

/// A measure of how faithful an explanation is to the network: how the target's score changes when the input is
/// perturbed according to the map (`--metrics`).
public enum FaithfulnessMetric: String, CaseIterable, Sendable {
    /// The input multiplied by the map: pytorch-grad-cam's `DropInConfidence` and torchcam's relative Average Drop.
    case drop
    /// The input multiplied by the map: whether the score rose (`IncreaseInConfidence`, torchcam's the same).
    case increase
    /// pytorch-grad-cam's ROAD: the most and least relevant pixels imputed, at each percentile, and their combination.
    case road
    /// torchcam's deletion AUC: the score as the most relevant pixels are replaced by the baseline, in steps.
    case deletion
    /// torchcam's insertion AUC: the score as the most relevant pixels are restored onto the baseline, in steps.
    case insertion
}

/// How the metrics perturb the input; the defaults are the peers'.
public struct FaithfulnessSettings: Sendable, Equatable {
    /// The metrics computed, in `FaithfulnessMetric` order.
    public var metrics: [FaithfulnessMetric]
    /// The standard deviation of ROAD's imputation noise (pytorch-grad-cam's 0.01; 0 for none).
    public var noise: Float
    /// The seed of ROAD's imputation noise: every explanation draws the same sequence.
    public var seed: UInt64
    /// ROAD's percentiles (pytorch-grad-cam's `ROADCombined` default).
    public var percentiles: [Int]
    /// The most intervals of deletion and insertion curves (torchcam's default 20).
    public var steps: Int
    /// The most perturbed inputs per network call (torchcam's default 32).
    public var batchSize: Int
    /// Threads imputing ROAD's images side by side (each image's system is solved on one); nil for every core.
    public var threads: Int?

    /// Settings for `metrics`; throws `ExplainError.invalidOption` for steps, a batch size or percentiles out of range.
    public init(metrics: [FaithfulnessMetric], noise: Float = 0.01, seed: UInt64 = 0,
                percentiles: [Int] = [10, 20, 30, 40, 50, 60, 70, 80, 90], steps: Int = 20, batchSize: Int = 32,
                threads: Int? = nil) throws {
        guard steps >= 1 else { throw ExplainError.invalidOption("deletion and insertion need at least 1 step, got \(steps)") }
        guard batchSize >= 1 else { throw ExplainError.invalidOption("the metrics' batch size must be at least 1, got \(batchSize)") }
        guard noise >= 0, noise.isFinite else { throw ExplainError.invalidOption("the imputation noise must be 0 or more, got \(noise)") }
        guard !percentiles.isEmpty, percentiles.allSatisfy({ (0...100).contains($0) }) else {
            throw ExplainError.invalidOption("ROAD's percentiles must lie in 0…100, got \(percentiles)")
        }
        self.metrics = FaithfulnessMetric.allCases.filter(metrics.contains)
        self.noise = noise
        self.seed = seed
        self.percentiles = percentiles
        self.steps = steps
        self.batchSize = batchSize
        self.threads = threads.map { max(1, $0) }
    }
}

/// One explanation's faithfulness, each value nil unless its metric was asked for. Scores are the target's
/// (for a classifier the explained class's softmax probability, as pytorch-grad-cam's
/// `ClassifierOutputSoftmaxTarget` and torchcam's `logits_fn=softmax` give it).
public struct FaithfulnessScores: Sendable, Equatable {
    /// `max(before - after, 0)` for the input multiplied by the map (pytorch-grad-cam `DropInConfidence`): lower is better.
    public var drop: Float?
    /// `relu(before - after) / (before + 1e-7)` (torchcam's Average Drop term): lower is better.
    public var relativeDrop: Float?
    /// 1 when the input multiplied by the map scores above the input, else 0 (`IncreaseInConfidence`): higher is better.
    public var increase: Float?
    /// ROAD most relevant first: the mean over the percentiles of `after - before` with the map's highest
    /// pixels imputed (`ROADMostRelevantFirstAverage`): lower (more negative) is better.
    public var roadMostRelevantFirst: Float?
    /// ROAD least relevant first (`ROADLeastRelevantFirstAverage`): higher (nearer 0) is better.
    public var roadLeastRelevantFirst: Float?
    /// `(least - most relevant first) / 2` (`ROADCombined`): higher is better.
    public var road: Float?
    /// The area under the score as the most relevant pixels are deleted: lower is better.
    public var deletion: Float?
    /// The area under the score as the most relevant pixels are inserted: higher is better.
    public var insertion: Float?

    /// No value yet.
    public init() {}

    /// The values present as (name, value), in a fixed order; the names are `--json`'s keys.
    public var named: [(name: String, value: Float)] {
        let all: [(String, Float?)] = [
            ("drop", drop), ("relative_drop", relativeDrop), ("increase", increase),
            ("road_morf", roadMostRelevantFirst), ("road_lerf", roadLeastRelevantFirst), ("road", road),
            ("deletion", deletion), ("insertion", insertion),
        ]
        return all.compactMap { name, value in value.map { (name, $0) } }
    }

    /// Whether a higher value of the named score is the better one (false: lower is better).
    public static func higherIsBetter(_ name: String) -> Bool {
        ["increase", "road_lerf", "road", "insertion"].contains(name)
    }
}

/// Scores explanations by perturbing the input according to the map and running the perturbed inputs of one
/// explanation through the network together.
///
/// Each metric is defined as its peer defines it: `drop` and `increase` as pytorch-grad-cam's
/// `CamMultImageConfidenceChange` family (the normalised input times the map), with torchcam's relative drop beside;
/// `road` as pytorch-grad-cam's ROAD (at percentile p, most relevant first imputes the pixels whose map value is
/// at least NumPy's p-th percentile, least relevant first those whose `1 - map` is; `NoisyLinearImputation`);
/// `deletion` and `insertion` as torchcam's `DeletionInsertionMetric` (pixels ranked by the map, highest first, ties
/// in pixel order; `ceil(H·W / steps)` of them per step; baseline 0, the normalised input's mean colour; the trapezoid
/// rule over the fraction perturbed).
public struct FaithfulnessEvaluator: Sendable {
    /// What is computed and how.
    public let settings: FaithfulnessSettings

    /// An evaluator with `settings`.
    public init(_ settings: FaithfulnessSettings) {
        self.settings = settings
    }

    /// One perturbed input.
    private enum Probe {
        case original
        case scaledByMap
        /// ROAD image `index` (most relevant first at each percentile, then least relevant first).
        case imputed(Int)
        /// The first `count` pixels by rank replaced by the baseline (deletion) or kept on it (insertion).
        case deleted(Int), inserted(Int)
        case baseline
    }

    /// The scores of `map` (`H x W`, in 0…1) explaining `input` (`[3,H,W]` or `[1,3,H,W]`, normalised).
    /// `score` gives the target's score for each image of a batch `[M,3,H,W]` (at most `settings.batchSize`);
    /// `before`, the target's score of `input` itself when the caller has it (the explanation's own forward pass),
    /// saves scoring it again.
    public func evaluate(input: Tensor, map: Heatmap, before known: Float? = nil, score: (Tensor) throws -> [Float]) throws -> FaithfulnessScores {
        let image = input.rank == 4 && input.shape[0] == 1 ? input.slice(0) : input
        guard image.rank == 3, image.shape[1] == map.height, image.shape[2] == map.width else {
            throw ExplainError.badShape("a \(map.width)x\(map.height) map cannot score an input \(input.shape)")
        }
        let wants = Set(settings.metrics)
        let plane = map.width * map.height
        var probes: [Probe] = known == nil ? [.original] : []
        if wants.contains(.drop) || wants.contains(.increase) { probes.append(.scaledByMap) }
        var imputed: [Tensor] = []
        if wants.contains(.road) {
            imputed = roadImages(image, map: map)
            probes += imputed.indices.map { .imputed($0) }
        }
        var counts: [Int] = []
        var ranks: [Int32] = []
        if wants.contains(.deletion) || wants.contains(.insertion) {
            ranks = Self.ranks(map.values)
            let step = (plane + settings.steps - 1) / settings.steps
            counts = Array(stride(from: 0, to: plane, by: step)) + [plane]
            probes.append(.baseline)
            for count in counts.dropFirst().dropLast() {
                if wants.contains(.deletion) { probes.append(.deleted(count)) }
                if wants.contains(.insertion) { probes.append(.inserted(count)) }
            }
        }

        var values: [Float] = []
        values.reserveCapacity(probes.count)
        for start in stride(from: 0, to: probes.count, by: settings.batchSize) {
            let chunk = probes[start..<min(start + settings.batchSize, probes.count)]
            var storage: [Float] = []
            storage.reserveCapacity(chunk.count * image.count)
            for probe in chunk {
                switch probe {
                case .original: storage += image.storage
                case .scaledByMap: storage += Self.scaled(image.storage, by: map.values)
                case .imputed(let index): storage += imputed[index].storage
                case .deleted(let count): storage += Self.replacing(image.storage, ranks: ranks, below: count, keepRanked: false)
                case .inserted(let count): storage += Self.replacing(image.storage, ranks: ranks, below: count, keepRanked: true)
                case .baseline: storage += [Float](repeating: 0, count: image.count)
                }
            }
            let scores = try score(Tensor(shape: [chunk.count] + image.shape, storage: storage))
            guard scores.count == chunk.count else {
                throw ExplainError.badShape("the target scored \(scores.count) of \(chunk.count) perturbed inputs")
            }
            values += scores
        }

        var result = FaithfulnessScores()
        let before = known ?? values[0]
        func value(_ wanted: (Probe) -> Bool) -> [Float] { zip(probes, values).filter { wanted($0.0) }.map(\.1) }
        if let after = value({ if case .scaledByMap = $0 { true } else { false } }).first {
            if wants.contains(.drop) {
                result.drop = max(before - after, 0)
                result.relativeDrop = max(before - after, 0) / (before + 1e-7)
            }
            if wants.contains(.increase) { result.increase = after - before > 0 ? 1 : 0 }
        }
        if wants.contains(.road) {
            let changes = value({ if case .imputed = $0 { true } else { false } }).map { $0 - before }
            let half = settings.percentiles.count
            let most = Self.mean(changes[0..<half]), least = Self.mean(changes[half...])
            result.roadMostRelevantFirst = most
            result.roadLeastRelevantFirst = least
            result.road = (least - most) / 2
        }
        if !counts.isEmpty {
            let baseline = value({ if case .baseline = $0 { true } else { false } })[0]
            let fractions = counts.map { Float($0) / Float(plane) }
            if wants.contains(.deletion) {
                let curve = [before] + value({ if case .deleted = $0 { true } else { false } }) + [baseline]
                result.deletion = Self.trapezoid(curve, fractions)
            }
            if wants.contains(.insertion) {
                let curve = [baseline] + value({ if case .inserted = $0 { true } else { false } }) + [before]
                result.insertion = Self.trapezoid(curve, fractions)
            }
        }
        return result
    }

    /// ROAD's imputed images: most relevant first at each percentile, then least relevant first. The images are
    /// independent, so they are imputed on `settings.threads` threads, each with its own noise stream.
    private func roadImages(_ image: Tensor, map: Heatmap) -> [Tensor] {
        let inverse = map.values.map { 1 - $0 }
        let (sorted, sortedInverse) = (map.values.sorted(), inverse.sorted())
        let masks = settings.percentiles.map { Self.removed(map.values, threshold: Self.percentile(sorted, $0)) }
            + settings.percentiles.map { Self.removed(inverse, threshold: Self.percentile(sortedInverse, $0)) }
        let threads = min(masks.count, settings.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let images = Mutex([Tensor?](repeating: nil, count: masks.count))
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            // Thread t takes images t, t + threads, …: the largest systems (low percentiles) are spread out.
            for index in stride(from: thread, to: masks.count, by: threads) {
                var noise = GaussianNoise(seed: settings.seed, stream: UInt64(index))
                let imputed = NoisyLinearImputation.impute(image, removed: masks[index], noise: settings.noise, generator: &noise)
                images.withLock { $0[index] = imputed }
            }
        }
        return images.withLock { $0.map { $0! } }
    }

    /// The pixels ROAD imputes at a percentile of `relevance`: those not below its value `threshold`.
    static func removed(_ relevance: [Float], threshold: Float) -> [Bool] {
        relevance.map { !($0 < threshold) }
    }

    /// NumPy's `percentile(values, p)` of float32 `sorted` values (its default linear method, computed as NumPy
    /// does for a float32 array: the index in Double, the interpolation in Float).
    static func percentile(_ sorted: [Float], _ p: Int) -> Float {
        let last = sorted.count - 1
        let index = Double(last) * (Double(p) / 100)
        let below = min(max(Int(index.rounded(.down)), 0), last), above = min(below + 1, last)
        let gamma = index - Double(below)
        let a = sorted[below], b = sorted[above], difference = b - a
        return gamma >= 0.5 ? b - difference * Float(1 - gamma) : a + difference * Float(gamma)
    }

    /// Each pixel's rank by map value, highest first, ties in pixel order (torchcam's stable descending argsort).
    static func ranks(_ values: [Float]) -> [Int32] {
        let order = values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }
        var ranks = [Int32](repeating: 0, count: values.count)
        for (rank, pixel) in order.enumerated() { ranks[pixel] = Int32(rank) }
        return ranks
    }

    /// `image` `[C,H,W]` times `map` `[H,W]` in every channel.
    private static func scaled(_ image: [Float], by map: [Float]) -> [Float] {
        let plane = map.count
        return image.indices.map { image[$0] * map[$0 % plane] }
    }

    /// `image` with the pixels ranked below `count` (`keepRanked`: all others) set to the baseline 0 in every channel.
    private static func replacing(_ image: [Float], ranks: [Int32], below count: Int, keepRanked: Bool) -> [Float] {
        let plane = ranks.count
        var out = image
        for pixel in 0..<plane where (ranks[pixel] < count) != keepRanked {
            for c in 0..<(image.count / plane) { out[c * plane + pixel] = 0 }
        }
        return out
    }

    private static func mean(_ values: ArraySlice<Float>) -> Float {
        values.reduce(0, +) / Float(values.count)
    }

    /// `∫ y dx` by the trapezoid rule (`torch.trapezoid`).
    static func trapezoid(_ y: [Float], _ x: [Float]) -> Float {
        var sum: Float = 0
        for i in 1..<y.count { sum += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) }
        return sum / 2
    }
}
