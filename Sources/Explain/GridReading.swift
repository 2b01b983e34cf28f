import Core

/// How a layer's output is read as channel maps on the input's grid, as pytorch-grad-cam's
/// `reshape_transform` does for transformers: the CAM methods work on `[N, C, h, w]`.
public enum GridReading: Sendable, Equatable, CustomStringConvertible {
    /// `[N, C, h, w]` as it is (convolutional networks).
    case channelsFirst
    /// `[N, h, w, C]`, channels last (torchvision's Swin, ConvNeXt blocks).
    case channelsLast
    /// `[N, T, C]` tokens: the first `leading` are not on the grid (a class token, a distillation
    /// token, register tokens); the other `height * width` are its cells, row by row.
    case tokens(leading: Int, height: Int, width: Int)

    /// The reading of a layer output of `shape` (batch first) in a network whose input is
    /// `inputHeight` x `inputWidth`, when the shape allows one: a grid is no larger than the input
    /// and has its aspect ratio (a convolution's to within the rounding of one cell a side).
    /// Channels first wins where both orders would do; tokens drop the fewest leading tokens (at
    /// most 16) that leave an exact grid of at least 2x2.
    public static func automatic(shape: [Int], inputHeight: Int, inputWidth: Int) -> GridReading? {
        func isGrid(_ height: Int, _ width: Int) -> Bool {
            height >= 1 && width >= 1 && height <= inputHeight && width <= inputWidth
                && abs(height * inputWidth - width * inputHeight) <= inputWidth + inputHeight
        }
        switch shape.count {
        case 4:
            if isGrid(shape[2], shape[3]) { return .channelsFirst }
            if isGrid(shape[1], shape[2]) { return .channelsLast }
            return nil
        case 3:
            // A grid of tokens has at least 2x2 cells (two tokens side by side are no picture).
            let count = shape[1]
            for leading in 0..<max(0, min(count - 3, 17)) {
                if let (height, width) = grid(cells: count - leading, inputHeight: inputHeight, inputWidth: inputWidth) {
                    return .tokens(leading: leading, height: height, width: width)
                }
            }
            return nil
        default:
            return nil
        }
    }

    /// The grid of `cells` cells with the input's aspect ratio, if there is one.
    static func grid(cells: Int, inputHeight: Int, inputWidth: Int) -> (height: Int, width: Int)? {
        guard cells > 0 else { return nil }
        // cells = h · w and h · W = w · H: h² = cells · H / W.
        let height = Int((Double(cells * inputHeight) / Double(inputWidth)).squareRoot().rounded())
        guard height > 0, cells % height == 0 else { return nil }
        let width = cells / height
        guard height * inputWidth == width * inputHeight, height <= inputHeight, width <= inputWidth else { return nil }
        return (height, width)
    }

    /// `nchw`, `nhwc` or `tokens:K:HxW`, as `--layer-grid` takes it.
    public var description: String {
        switch self {
        case .channelsFirst: "nchw"
        case .channelsLast: "nhwc"
        case let .tokens(leading, height, width): "tokens:\(leading):\(height)x\(width)"
        }
    }

    /// `tensor`, a batch of this layout, as `[N, C, h, w]`.
    public func grid(_ tensor: Tensor) -> Tensor {
        switch self {
        case .channelsFirst:
            return tensor
        case .channelsLast:
            let (n, height, width, channels) = (tensor.shape[0], tensor.shape[1], tensor.shape[2], tensor.shape[3])
            return Self.transposed(tensor.storage, images: n, rows: height * width, columns: channels, skip: 0,
                                   shape: [n, channels, height, width])
        case let .tokens(leading, height, width):
            let (n, count, channels) = (tensor.shape[0], tensor.shape[1], tensor.shape[2])
            return Self.transposed(tensor.storage, images: n, rows: height * width, columns: channels, skip: leading * channels,
                                   stride: count * channels, shape: [n, channels, height, width])
        }
    }

    /// Per image, `rows x columns` values (after `skip`, images `stride` apart) transposed to
    /// `columns x rows`.
    private static func transposed(_ values: [Float], images: Int, rows: Int, columns: Int, skip: Int,
                                   stride: Int? = nil, shape: [Int]) -> Tensor {
        let stride = stride ?? rows * columns
        var out = [Float](repeating: 0, count: images * rows * columns)
        values.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for image in 0..<images {
                    let from = source.baseAddress! + image * stride + skip, to = target.baseAddress! + image * rows * columns
                    for row in 0..<rows {
                        for column in 0..<columns { to[column * rows + row] = from[row * columns + column] }
                    }
                }
            }
        }
        return Tensor(shape: shape, storage: out)
    }

    /// Copies of one image's layer output `image` (this layout without the batch dimension),
    /// copy `m` with channel `channels[m]` set to `value` everywhere: every cell of the grid and,
    /// for tokens, the leading tokens too (as pytorch-grad-cam's ablation layers replace the
    /// module's whole output).
    public func ablatedCopies(of image: Tensor, channels: ArraySlice<Int>, value: Float) -> Tensor {
        let size = image.count
        var batch = [Float](repeating: 0, count: channels.count * size)
        batch.withUnsafeMutableBufferPointer { out in
            image.storage.withUnsafeBufferPointer { source in
                for (copy, c) in channels.enumerated() {
                    let base = out.baseAddress! + copy * size
                    // Bulk copies: this runs once per channel over the whole output.
                    base.update(from: source.baseAddress!, count: size)
                    if self == .channelsFirst {
                        let plane = size / image.shape[0]
                        (base + c * plane).update(repeating: value, count: plane)
                    } else {
                        for cell in stride(from: c, to: size, by: image.shape[image.rank - 1]) { base[cell] = value }
                    }
                }
            }
        }
        return Tensor(shape: [channels.count] + image.shape, storage: batch)
    }
}

/// How target layers are read as grids: automatically, or as the user says (`--layer-grid`)
/// where the shape leaves the automatic rule undecided.
public enum GridChoice: Sendable, Equatable, CustomStringConvertible {
    /// `GridReading.automatic`.
    case automatic
    /// Always this reading.
    case fixed(GridReading)
    /// Tokens with `leading` tokens off the grid, the grid worked out from the rest and the input's aspect ratio.
    case tokens(leading: Int)

    /// Parses `--layer-grid`: `auto`, `nchw`, `nhwc`, `tokens:K` or `tokens:K:HxW`.
    public init?(argument: String) {
        let parts = argument.lowercased().split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        switch (parts.first, parts.count) {
        case ("auto", 1): self = .automatic
        case ("nchw", 1): self = .fixed(.channelsFirst)
        case ("nhwc", 1): self = .fixed(.channelsLast)
        case ("tokens", 2):
            guard let leading = Int(parts[1]), leading >= 0 else { return nil }
            self = .tokens(leading: leading)
        case ("tokens", 3):
            let sides = parts[2].split(separator: "x").compactMap { Int($0) }
            guard let leading = Int(parts[1]), leading >= 0, sides.count == 2, sides.allSatisfy({ $0 > 0 }) else { return nil }
            self = .fixed(.tokens(leading: leading, height: sides[0], width: sides[1]))
        default:
            return nil
        }
    }

    /// `auto`, or the reading as `--layer-grid` takes it.
    public var description: String {
        switch self {
        case .automatic: "auto"
        case .fixed(let reading): reading.description
        case .tokens(let leading): "tokens:\(leading)"
        }
    }

    /// The reading of target layer `layer`, an output of `shape` (batch first) in a network whose
    /// input is `inputHeight` x `inputWidth`; throws, naming the layer, when there is none.
    public func reading(for shape: [Int], inputHeight: Int, inputWidth: Int, layer: String) throws -> GridReading {
        let reading: GridReading?
        switch self {
        case .automatic:
            reading = GridReading.automatic(shape: shape, inputHeight: inputHeight, inputWidth: inputWidth)
        case .fixed(let fixed):
            switch fixed {
            case .channelsFirst, .channelsLast: reading = shape.count == 4 ? fixed : nil
            case let .tokens(leading, height, width): reading = shape.count == 3 && shape[1] == leading + height * width ? fixed : nil
            }
        case .tokens(let leading):
            reading = shape.count == 3 && shape[1] > leading
                ? GridReading.grid(cells: shape[1] - leading, inputHeight: inputHeight, inputWidth: inputWidth)
                    .map { .tokens(leading: leading, height: $0.height, width: $0.width) }
                : nil
        }
        guard let reading else {
            let how = self == .automatic ? "CAM methods need [N,C,h,w], [N,h,w,C] or tokens [N,T,C] on a grid of the input's aspect"
                : "it cannot be read as \(self)"
            throw ExplainError.badShape("target layer \(layer) has shape \(shape); \(how) (--layer-grid says how to read it)")
        }
        return reading
    }
}
