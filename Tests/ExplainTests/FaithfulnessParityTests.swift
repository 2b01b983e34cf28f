import Annotate
import Core
import Engine
import Explain
import Foundation
import Testing
import TestSupport

/// The faithfulness metrics against pytorch-grad-cam's and torchcam's own classes (`scripts/make-metric-cases`,
/// `Tests/Fixtures/Metrics`).
@Suite struct FaithfulnessParityTests {
    static let folder = ReferenceData.packageFile("Tests/Fixtures/Metrics")

    /// ROAD's imputation equals pytorch-grad-cam's `NoisyLinearImputer(noise=0)` (SciPy's direct sparse solve) on
    /// every mask shape of the fixture, down to float32 rounding.
    @Test func imputationEqualsPytorchGradCams() throws {
        let image = try NumPyFile.read(path: Self.folder.appendingPathComponent("imputation_image.npy").path)
        let keeps = try NumPyFile.read(path: Self.folder.appendingPathComponent("imputation_keep.npy").path)
        let expected = try NumPyFile.read(path: Self.folder.appendingPathComponent("imputation_expected.npy").path)
        #expect(keeps.shape[0] == 6 && expected.shape == [6] + image.shape)
        var noise = GaussianNoise(seed: 0)
        var worst: Float = 0
        for k in 0..<keeps.shape[0] {
            let removed = keeps.slice(k).storage.map { $0 < 0.5 }
            let imputed = NoisyLinearImputation.impute(image, removed: removed, noise: 0, generator: &noise)
            let reference = expected.slice(k)
            let difference = zip(imputed.storage, reference.storage).map { abs($0 - $1) }.max() ?? .infinity
            #expect(difference <= 1e-5, "mask \(k): \(difference)")
            // Kept pixels are untouched.
            for c in 0..<3 {
                for p in removed.indices where !removed[p] { #expect(imputed.storage[c * removed.count + p] == image.storage[c * removed.count + p]) }
            }
            worst = max(worst, difference)
        }
        print("FaithfulnessParityTests: imputation worst difference \(worst) over \(keeps.shape[0]) masks")
    }

    /// Every metric equals its peer's on EfficientNet-Lite0, the reference inputs and pytorch-grad-cam's maps,
    /// within 1e-3 (ROAD's noise off on both sides).
    @Test func metricsEqualThePeersOnTheReferenceCases() throws {
        guard let reference = ReferenceData.referenceOrSkip("FaithfulnessParityTests.metricsEqualThePeersOnTheReferenceCases") else { return }
        let data = try Data(contentsOf: Self.folder.appendingPathComponent("manifest.json"))
        let manifest = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try #require(manifest["metrics"] as? [[String: Any]])
        let modelFile = try #require(manifest["model"] as? String)
        let network = try Network(contentsOf: reference.appendingPathComponent(modelFile))
        let evaluator = FaithfulnessEvaluator(try FaithfulnessSettings(metrics: FaithfulnessMetric.allCases, noise: 0))
        var worst: [String: Float] = [:]
        for entry in cases {
            let input = try NumPyFile.read(path: reference.appendingPathComponent(try #require(entry["input"] as? String)).path)
            let map = Heatmap(try NumPyFile.read(path: reference.appendingPathComponent(try #require(entry["map"] as? String)).path))
            let k = try #require(entry["class"] as? Int)
            let scores = try evaluator.evaluate(input: input, map: map) { try network.classProbabilities(of: $0, classIndex: k) }
            var expected = try #require(entry["pytorch_grad_cam"] as? [String: Double])
            let torchcam = try #require(entry["torchcam"] as? [String: Double])
            for (name, value) in torchcam where name != "increase" { expected[name] = value }
            #expect(torchcam["increase"] == expected["increase"], "the peers' increase agree")
            let title = "\(entry["input"] ?? "") \(entry["layer"] ?? "") \(entry["method"] ?? "")"
            let actual = Dictionary(uniqueKeysWithValues: scores.named.map { ($0.name, $0.value) })
            #expect(Set(actual.keys) == Set(expected.keys), "\(title): \(actual.keys.sorted())")
            for (name, value) in expected {
                let ours = try #require(actual[name], "\(title): no \(name)")
                let difference = abs(ours - Float(value))
                #expect(difference <= 1e-3, "\(title) \(name): camvid \(ours), peer \(value)")
                worst[name] = max(worst[name] ?? 0, difference)
            }
            // `increase` is a step: the cases keep clear of a tie, so engine rounding cannot flip it.
            let margin = abs(try #require(entry["after_map_multiplied"] as? Double) - (try #require(entry["before"] as? Double)))
            #expect(margin > 1e-4, "\(title): increase is within \(margin) of a tie")
        }
        #expect(cases.count == 6)
        print("FaithfulnessParityTests: worst difference per metric over \(cases.count) cases: "
              + worst.keys.sorted().map { "\($0) \(worst[$0]!)" }.joined(separator: ", "))
    }
}

/// What the metrics do apart from the peers: batching, noise, option checks.
@Suite struct FaithfulnessBehaviourTests {
    /// A score that depends on every input value: the scores cannot come out right from a wrong image or batch order.
    static func score(_ batch: Tensor) -> [Float] {
        let size = batch.count / batch.shape[0]
        return (0..<batch.shape[0]).map { i in
            var sum: Double = 0
            for j in 0..<size { sum += Double(batch.storage[i * size + j]) * Double((j % 7) + 1) }
            return Float(1 / (1 + exp(-sum / Double(size))))
        }
    }

    static let input: Tensor = {
        var noise = GaussianNoise(seed: 3)
        return Tensor(shape: [3, 16, 12], storage: (0..<(3 * 16 * 12)).map { _ in noise.next() })
    }()

    static let map = Heatmap(width: 12, height: 16, values: (0..<(16 * 12)).map { i in
        let y = Float(i / 12), x = Float(i % 12)
        return max(0, 1 - ((y - 5) * (y - 5) + (x - 7) * (x - 7)) / 60)
    })!

    @Test func scoresDoNotDependOnTheBatchSize() throws {
        var batches: [Int] = []
        let small = try FaithfulnessEvaluator(FaithfulnessSettings(metrics: FaithfulnessMetric.allCases, batchSize: 5))
            .evaluate(input: Self.input, map: Self.map) { batch in
                batches.append(batch.shape[0])
                return Self.score(batch)
            }
        let large = try FaithfulnessEvaluator(FaithfulnessSettings(metrics: FaithfulnessMetric.allCases, batchSize: 100))
            .evaluate(input: Self.input, map: Self.map, score: Self.score)
        #expect(small == large)
        // 1 original + 1 multiplied + 18 ROAD + 1 baseline + 2 x 19 curve points, at most 5 at a time.
        #expect(batches.reduce(0, +) == 59 && batches.allSatisfy { $0 <= 5 })
        #expect(small.named.count == 8)
        // Given the input's own score (the explanation's forward pass), the input is not scored again.
        var scored = 0
        let before = Self.score(Tensor(shape: [1] + Self.input.shape, storage: Self.input.storage))[0]
        let given = try FaithfulnessEvaluator(FaithfulnessSettings(metrics: FaithfulnessMetric.allCases))
            .evaluate(input: Self.input, map: Self.map, before: before) { batch in
                scored += batch.shape[0]
                return Self.score(batch)
            }
        #expect(given == large && scored == 58)
    }

    @Test func onlyTheMetricsAskedForAreComputed() throws {
        var images = 0
        let scores = try FaithfulnessEvaluator(FaithfulnessSettings(metrics: [.deletion]))
            .evaluate(input: Self.input, map: Self.map) { batch in
                images += batch.shape[0]
                return Self.score(batch)
            }
        #expect(scores.named.map(\.name) == ["deletion"])
        #expect(images == 1 + 1 + 19)
    }

    /// The noise is seeded (the same seed, the same scores), and with it on the imputed values move by about its
    /// standard deviation.
    @Test func roadNoiseIsSeededAndOfItsSize() throws {
        let settings = try FaithfulnessSettings(metrics: [.road], noise: 0.5, seed: 7)
        let first = try FaithfulnessEvaluator(settings).evaluate(input: Self.input, map: Self.map, score: Self.score)
        let again = try FaithfulnessEvaluator(settings).evaluate(input: Self.input, map: Self.map, score: Self.score)
        let quiet = try FaithfulnessEvaluator(FaithfulnessSettings(metrics: [.road], noise: 0)).evaluate(input: Self.input, map: Self.map, score: Self.score)
        #expect(first == again && first != quiet)

        let removed = (0..<(16 * 12)).map { $0 % 3 != 0 }
        var noise = GaussianNoise(seed: 1), unused = GaussianNoise(seed: 1)
        let noisy = NoisyLinearImputation.impute(Self.input, removed: removed, noise: 0.5, generator: &noise)
        let exact = NoisyLinearImputation.impute(Self.input, removed: removed, noise: 0, generator: &unused)
        let moved = zip(noisy.storage, exact.storage).map { Double($0 - $1) }.filter { $0 != 0 }
        let deviation = (moved.map { $0 * $0 }.reduce(0, +) / Double(moved.count)).squareRoot()
        #expect(moved.count == 3 * removed.filter { $0 }.count)
        #expect(abs(deviation - 0.5) < 0.05, "noise deviation \(deviation)")
    }

    @Test func badSettingsAreRefused() {
        #expect(throws: ExplainError.self) { try FaithfulnessSettings(metrics: [.road], steps: 0) }
        #expect(throws: ExplainError.self) { try FaithfulnessSettings(metrics: [.road], noise: -1) }
        #expect(throws: ExplainError.self) { try FaithfulnessSettings(metrics: [.road], percentiles: [101]) }
        #expect(throws: ExplainError.self) {
            try FaithfulnessEvaluator(FaithfulnessSettings(metrics: [.drop]))
                .evaluate(input: Tensor(shape: [3, 4, 4]), map: Self.map, score: Self.score)
        }
    }
}
