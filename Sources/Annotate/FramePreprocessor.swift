import Core

/// The per-channel normalisation of a network input: `(value / 255 - mean) / std`.
public struct InputNormalization: Sendable, Equatable {
    /// Mean of R, G, B in 0…1.
    public var mean: [Float]
    /// Standard deviation of R, G, B.
    public var std: [Float]

    /// A normalisation; nil unless both have three entries and every std is positive.
    public init?(mean: [Float], std: [Float]) {
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 > 0 }) else { return nil }
        self.mean = mean
        self.std = std
    }

    /// ImageNet's: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
    public static let imageNet = InputNormalization(unchecked: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    /// None: pixel levels / 255 (YOLO detectors').
    public static let unscaled = InputNormalization(unchecked: [0, 0, 0], std: [1, 1, 1])

    private init(unchecked mean: [Float], std: [Float]) {
        self.mean = mean
        self.std = std
    }
}

/// Turns an RGB frame into a network input `[1,3,h,w]`: the fitted region area-resampled
/// (OpenCV `INTER_AREA`, as pytorch-grad-cam's examples prepare pictures), scaled to 0…1, then
/// normalised. The padding of `pad` is 0 (the mean colour), that of `letterbox` grey 114.
///
/// The convert stage owns one: it keeps the resampling plan of each frame size.
public struct FramePreprocessor: Sendable {
    /// The network input's width and height.
    public let inputWidth: Int, inputHeight: Int
    /// How a frame is fitted.
    public let fit: FrameFit
    /// The normalisation.
    public let normalization: InputNormalization
    /// Per channel, the normalised value of each 8-bit level: `(level / 255 - mean) / std`.
    private let levels: [[Float]]
    /// Area plans by region size.
    private var plans = PlanCache<AreaResampling>()

    /// A preprocessor for a `inputWidth` x `inputHeight` network input.
    public init(inputWidth: Int, inputHeight: Int, fit: FrameFit = .squash, normalization: InputNormalization = .imageNet) {
        self.inputWidth = inputWidth
        self.inputHeight = inputHeight
        self.fit = fit
        self.normalization = normalization
        levels = (0..<3).map { c in (0..<256).map { (Float($0) / 255 - normalization.mean[c]) / normalization.std[c] } }
    }

    /// Where a frame of this size goes in the input.
    public func geometry(frameWidth: Int, frameHeight: Int) -> ModelInputGeometry {
        ModelInputGeometry(frameWidth: frameWidth, frameHeight: frameHeight,
                           inputWidth: inputWidth, inputHeight: inputHeight, fit: fit)
    }

    /// The network input for `image`, with where it went.
    public mutating func input(for image: RGBImage) -> ModelInput {
        let geometry = geometry(frameWidth: image.width, frameHeight: image.height)
        let (source, destination) = (geometry.source, geometry.destination)
        let resampled = plans.plan(width: source.width, height: source.height, toWidth: destination.width, toHeight: destination.height)
            .resample(image, region: source)
        let plane = inputWidth * inputHeight
        var output = [Float](repeating: 0, count: 3 * plane)
        if fit == .letterbox {
            for c in 0..<3 { output.replaceSubrange((c * plane)..<((c + 1) * plane), with: repeatElement(levels[c][114], count: plane)) }
        }
        resampled.pixels.withUnsafeBufferPointer { pixels in
            output.withUnsafeMutableBufferPointer { output in
                for c in 0..<3 {
                    levels[c].withUnsafeBufferPointer { level in
                        for y in 0..<destination.height {
                            let from = pixels.baseAddress! + y * destination.width * 3 + c
                            let to = output.baseAddress! + c * plane + (destination.y + y) * inputWidth + destination.x
                            for x in 0..<destination.width { to[x] = level[Int(from[x &* 3])] }
                        }
                    }
                }
            }
        }
        return ModelInput(tensor: Tensor(shape: [1, 3, inputHeight, inputWidth], storage: output), geometry: geometry)
    }
}
