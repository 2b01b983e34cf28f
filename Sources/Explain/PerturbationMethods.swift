import Core
import Foundation

/// Score-CAM (Wang et al.): each channel, upsampled to the input (bilinear, `align_corners=True`)
/// and min-max scaled (`1e-8`), masks the input; the softmax over channels of the masked inputs'
/// class logits gives `w_c`.
public struct ScoreCAM: ProbingMethod {
    /// How many masked inputs go through the network at once.
    public var batchSize: Int
    /// Score-CAM scoring `batchSize` masked inputs per network call.
    public init(batchSize: Int = 16) { self.batchSize = max(batchSize, 1) }
    /// `scorecam`.
    public var name: String { "scorecam" }
    /// Softmax of the masked inputs' class logits.
    ///
    /// Channels with the same mask (above all the channels that are 0 everywhere, whose mask is 0) give the
    /// same masked input bit for bit: each distinct masked input goes through the network once.
    public func channelWeights(_ e: LayerEvidence) throws -> [Float] {
        let a = e.activation, image = e.image
        guard a.rank == 3, image.rank == 3 else {
            throw ExplainError.badShape("scorecam: activation \(a.shape) or image \(image.shape) is not [C,h,w]")
        }
        let (h, w) = (a.shape[1], a.shape[2])
        let (colours, height, width) = (image.shape[0], image.shape[1], image.shape[2])
        let masks = ScoreCAMMasks(activation: a, height: height, width: width)
        let plane = height * width, inputSize = colours * plane
        // distinct[c]: the index of channel c's masked input among the distinct ones.
        var distinct = [Int](repeating: 0, count: e.channels)
        var representatives: [Int] = []
        var byHash: [Int: [Int]] = [:]
        var zeroMask: Int?
        var scores: [Float] = []
        scores.reserveCapacity(e.channels)
        var batch = [Float](repeating: 0, count: batchSize * inputSize)
        var pending = 0
        var mask = [Float](repeating: 0, count: plane), other = [Float](repeating: 0, count: plane)
        func flush() throws {
            guard pending > 0 else { return }
            let inputs = Tensor(shape: [pending, colours, height, width], storage: Array(batch[0..<(pending * inputSize)]))
            scores += try e.classScores(ofInputs: inputs)
            pending = 0
        }
        for c in 0..<e.channels {
            // Bilinear interpolation of zeros is exactly 0, and so is (0 - 0) / (0 + 1e-8).
            let isZero = !a.storage[(c * h * w)..<((c + 1) * h * w)].contains { $0 != 0 }
            if isZero, let zeroMask {
                distinct[c] = zeroMask
                continue
            }
            masks.mask(c, into: &mask)
            var hasher = Hasher()
            mask.withUnsafeBytes { hasher.combine(bytes: $0) }
            let key = hasher.finalize()
            if let candidates = byHash[key], let same = candidates.first(where: { r in
                masks.mask(representatives[r], into: &other)
                return Self.identical(mask, other)
            }) {
                distinct[c] = same
                continue
            }
            let index = representatives.count
            representatives.append(c)
            byHash[key, default: []].append(index)
            if isZero { zeroMask = index }
            distinct[c] = index
            batch.withUnsafeMutableBufferPointer { out in
                image.storage.withUnsafeBufferPointer { pixels in
                    let base = pending * inputSize
                    for k in 0..<colours {
                        for p in 0..<plane { out[base + k * plane + p] = pixels[k * plane + p] * mask[p] }
                    }
                }
            }
            pending += 1
            if pending == batchSize { try flush() }
        }
        try flush()
        return softmax(distinct.map { scores[$0] })
    }

    /// Bitwise equality (so -0 and 0 differ, and a NaN equals itself): equal bits make equal inputs.
    static func identical(_ x: [Float], _ y: [Float]) -> Bool {
        x.withUnsafeBytes { a in y.withUnsafeBytes { b in a.elementsEqual(b) } }
    }

}

/// Ablation-CAM (Desai and Ramaswamy): channel `c` set to 0 (or `min(A) - 1e7` when `min(A) != 0`),
/// the network re-run downstream of the layer; `w_c = (y - y_c) / y`.
///
/// pytorch-grad-cam's `AblationLayer` re-reads `min` after each ablated copy, so when `min(A) != 0`
/// its copy `i` of a batch gets `min(A) - (i+1)·1e7`; this follows the documented rule instead
/// (identical when `min(A) == 0`, as after a ReLU or ReLU6). Channels that are 0 everywhere contribute
/// nothing to the map whatever their weight, so they are not re-run and get weight 0.
public struct AblationCAM: ProbingMethod {
    /// How many ablated copies go through the network at once.
    public var batchSize: Int
    /// Ablation-CAM re-running `batchSize` ablated copies per network call.
    public init(batchSize: Int = 32) { self.batchSize = max(batchSize, 1) }
    /// `ablationcam`.
    public var name: String { "ablationcam" }
    /// The relative drop of the class logit when the channel is removed.
    public func channelWeights(_ e: LayerEvidence) throws -> [Float] {
        let a = e.activation.storage, size = e.positions
        // The whole output's minimum (a transformer's leading tokens included), as pytorch-grad-cam's ablation layers take it.
        let low = e.layerOutput.storage.min() ?? 0
        let ablated: Float = low == 0 ? 0 : low - 1e7
        // A channel that is 0 everywhere adds w_c · 0 to the map whatever w_c is: it needs no re-run.
        let probed = (0..<e.channels).filter { c in
            ablated != 0 || a[(c * size)..<((c + 1) * size)].contains { $0 != 0 }
        }
        var weights = [Float](repeating: 0, count: e.channels)
        let scores = try e.classScores(ablating: probed, to: ablated, batchSize: batchSize)
        for (c, score) in zip(probed, scores) { weights[c] = (e.score - score) / e.score }
        return weights
    }
}

/// Score-CAM's masks: each channel upsampled (bilinear, `align_corners=True`) and min-max scaled (`1e-8`).
struct ScoreCAMMasks {
    let activation: Tensor
    let upsampling: BilinearResampling

    init(activation: Tensor, height: Int, width: Int) {
        self.activation = activation
        upsampling = BilinearResampling(width: activation.shape[2], height: activation.shape[1], toWidth: width, toHeight: height,
                                        convention: .alignCorners)
    }

    /// Channel `c`'s mask `[height·width]`, the same numbers as `Normalization.minMaxScoreCAM` of
    /// the upsampled channel, written into `mask`.
    func mask(_ c: Int, into mask: inout [Float]) {
        let (h, w) = (activation.shape[1], activation.shape[2])
        let start = c * h * w
        let upsampled = upsampling.resample(Array(activation.storage[start..<(start + h * w)]))
        var low = upsampled[0], high = upsampled[0]
        for v in upsampled {
            low = min(low, v)
            high = max(high, v)
        }
        let range = high - low + 1e-8
        for p in 0..<mask.count { mask[p] = (upsampled[p] - low) / range }
    }
}
