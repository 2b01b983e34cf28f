import Foundation
import Engine

/// Score-CAM (Wang et al.): each channel, upsampled to the input (bilinear, `align_corners=True`)
/// and min-max scaled (`1e-8`), masks the input; the softmax over channels of the masked inputs'
/// class logits gives `w_c`.
public struct ScoreCAM: ChannelWeightedMethod {
    /// How many masked inputs go through the network at once.
    public var batchSize: Int
    /// Score-CAM scoring `batchSize` masked inputs per network call.
    public init(batchSize: Int = 16) { self.batchSize = max(batchSize, 1) }
    /// `scorecam`.
    public var name: String { "scorecam" }
    /// Gradient-free.
    public var usesGradients: Bool { false }
    /// Softmax of the masked inputs' class logits.
    public func channelWeights(_ e: LayerEvidence) throws -> [Float] {
        let a = e.activation, image = e.image
        guard a.rank == 3, image.rank == 3 else {
            throw ExplainError.badShape("scorecam: activation \(a.shape) or image \(image.shape) is not [C,h,w]")
        }
        let (h, w) = (a.shape[1], a.shape[2])
        let (colours, height, width) = (image.shape[0], image.shape[1], image.shape[2])
        let plane = height * width
        var scores: [Float] = []
        scores.reserveCapacity(e.channels)
        var start = 0
        while start < e.channels {
            let end = min(start + batchSize, e.channels)
            var batch = [Float](repeating: 0, count: (end - start) * colours * plane)
            for c in start..<end {
                let upsampled = MapResize.bilinearAlignCorners(Array(a.storage[(c * h * w)..<((c + 1) * h * w)]),
                                                               height: h, width: w, toHeight: height, toWidth: width)
                let mask = Normalization.minMaxScoreCAM(upsampled)
                let base = (c - start) * colours * plane
                for k in 0..<colours {
                    for p in 0..<plane { batch[base + k * plane + p] = image.storage[k * plane + p] * mask[p] }
                }
            }
            scores += try e.classScores(ofInputs: Tensor(shape: [end - start, colours, height, width], storage: batch))
            start = end
        }
        return Self.softmax(scores)
    }

    static func softmax(_ values: [Float]) -> [Float] {
        guard let top = values.max() else { return values }
        let exps = values.map { Double(Foundation.exp(Double($0 - top))) }
        let total = exps.reduce(0, +)
        return exps.map { Float($0 / total) }
    }
}

/// Ablation-CAM (Desai and Ramaswamy): channel `c` set to 0 (or `min(A) - 1e7` when `min(A) != 0`),
/// the network re-run downstream of the layer; `w_c = (y - y_c) / y`.
///
/// pytorch-grad-cam's `AblationLayer` re-reads `min` after each ablated copy, so when `min(A) != 0`
/// its copy `i` of a batch gets `min(A) - (i+1)·1e7`; this follows the documented rule instead
/// (identical when `min(A) == 0`, as after a ReLU or ReLU6).
public struct AblationCAM: ChannelWeightedMethod {
    /// How many ablated copies go through the network at once.
    public var batchSize: Int
    /// Ablation-CAM re-running `batchSize` ablated copies per network call.
    public init(batchSize: Int = 32) { self.batchSize = max(batchSize, 1) }
    /// `ablationcam`.
    public var name: String { "ablationcam" }
    /// Gradient-free.
    public var usesGradients: Bool { false }
    /// The relative drop of the class logit when the channel is removed.
    public func channelWeights(_ e: LayerEvidence) throws -> [Float] {
        let a = e.activation, size = e.positions
        let low = a.storage.min() ?? 0
        let ablated: Float = low == 0 ? 0 : low - 1e7
        var scores: [Float] = []
        var start = 0
        while start < e.channels {
            let end = min(start + batchSize, e.channels)
            var batch: [Float] = []
            batch.reserveCapacity((end - start) * a.count)
            for c in start..<end {
                var copy = a.storage
                for p in 0..<size { copy[c * size + p] = ablated }
                batch += copy
            }
            scores += try e.classScores(replacingActivationWith: Tensor(shape: [end - start] + a.shape, storage: batch))
            start = end
        }
        return scores.map { (e.score - $0) / e.score }
    }
}
