import Core
import Foundation
import Testing
import Engine
import TestSupport

/// Several `Network`s sharing the process-wide oneDNN backend, with batch sizes changing between them.
@Suite struct NetworkLifetimeTests {
    /// `count` distinct 224x224 images, so that a mixed-up batch row shows in the logits.
    static func images(_ count: Int) -> Tensor {
        let size = 3 * 224 * 224
        var storage = [Float](repeating: 0, count: count * size)
        for n in 0..<count {
            for i in 0..<size { storage[n * size + i] = sin(Float(i % 997) * 0.01 + Float(n)) * 0.5 }
        }
        return Tensor(shape: [count, 3, 224, 224], storage: storage)
    }

    static func row(_ t: Tensor, _ n: Int) -> [Float] {
        let width = t.storage.count / t.shape[0]
        return Array(t.storage[n * width..<(n + 1) * width])
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        a.count == b.count ? zip(a, b).map { abs($0 - $1) }.max() ?? 0 : .infinity
    }

    final class Outcome<T>: @unchecked Sendable {
        var result: Result<T, any Error>?
    }

    /// `body` run on a thread of its own, as concurrent callers (Swift Testing, pipelines) reach the shared backend.
    static func onNewThread<T>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let outcome = Outcome<T>(), done = DispatchSemaphore(value: 0)
        let thread = Thread {
            outcome.result = Result { try body() }
            done.signal()
        }
        thread.start()
        done.wait()
        return try #require(outcome.result).get()
    }

    /// The logits of `input` from a network that lives only for this call, on a new thread.
    static func logits(_ url: URL, _ input: Tensor) throws -> Tensor {
        try onNewThread { try Network(contentsOf: url).forward(input).logits }
    }

    /// The gradient of every image's logit 0 with respect to the input, from a network that lives only for this call.
    static func inputGradient(_ url: URL, _ input: Tensor) throws -> Tensor {
        try onNewThread {
            let network = try Network(contentsOf: url)
            let pass = try network.forward(input)
            var seed = Tensor(shape: pass.logits.shape)
            for n in 0..<input.shape[0] { seed.storage[n * pass.logits.shape[1]] = 1 }
            return try #require(try network.backward(pass, seed: seed, to: [network.inputName])[network.inputName])
        }
    }

    /// Backward passes (oneDNN backward-data convolutions) in batches of 2 in two networks, one after the other.
    @Test func batchedBackwardAcrossNetworksMatchesSingleImages() throws {
        guard let reference = ReferenceData.referenceOrSkip("NetworkLifetimeTests.batchedBackwardAcrossNetworksMatchesSingleImages") else {
            return
        }
        let url = reference.appendingPathComponent("models/resnet18.onnx")
        let images = Self.images(2)
        let expected = try (0..<2).map { try Self.inputGradient(url, Tensor(shape: [1, 3, 224, 224], storage: Self.row(images, $0))) }
        let scale = expected.map { $0.storage.map(abs).max() ?? 0 }.max() ?? 0
        #expect(scale > 0)
        for network in ["first", "second"] {
            let batched = try Self.inputGradient(url, images)
            for n in 0..<2 {
                let difference = Self.maxDifference(Self.row(batched, n), expected[n].storage)
                #expect(difference <= 1e-3 * scale, "\(network) network, image \(n): \(difference) of \(scale)")
            }
        }
    }

    @Test func batchedForwardsAcrossNetworksMatchSingleImages() throws {
        guard let reference = ReferenceData.referenceOrSkip("NetworkLifetimeTests.batchedForwardsAcrossNetworksMatchSingleImages") else {
            return
        }
        let url = reference.appendingPathComponent("models/resnet18.onnx")
        let images = Self.images(3)
        let two = Tensor(shape: [2, 3, 224, 224], storage: Array(images.storage[0..<2 * 3 * 224 * 224]))
        // Per-image logits from batch-1 passes, before any batched pass has run in this test.
        let expected = try (0..<3).map { try Self.logits(url, Tensor(shape: [1, 3, 224, 224], storage: Self.row(images, $0))).storage }
        // A batched pass in a network that is then freed, followed by batched passes in new networks.
        let firstBatch = try Self.logits(url, two)
        for n in 0..<2 { #expect(Self.maxDifference(Self.row(firstBatch, n), expected[n]) < 1e-3, "first network, image \(n)") }
        let secondBatch = try Self.logits(url, two)
        for n in 0..<2 { #expect(Self.maxDifference(Self.row(secondBatch, n), expected[n]) < 1e-3, "second network, image \(n)") }
        // One network kept alive across batch sizes 2, 1 and 3.
        let network = try Network(contentsOf: url)
        let again = try network.forward(two).logits
        for n in 0..<2 { #expect(Self.maxDifference(Self.row(again, n), expected[n]) < 1e-3, "batch 2, image \(n)") }
        let single = try network.forward(Tensor(shape: [1, 3, 224, 224], storage: Self.row(images, 2))).logits
        #expect(Self.maxDifference(single.storage, expected[2]) < 1e-3, "batch 1")
        let three = try network.forward(images).logits
        for n in 0..<3 { #expect(Self.maxDifference(Self.row(three, n), expected[n]) < 1e-3, "batch 3, image \(n)") }
    }
}
