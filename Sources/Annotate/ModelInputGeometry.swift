import Core

/// How a frame is fitted to the network's input size (`--fit`).
public enum FrameFit: String, CaseIterable, Sendable {
    /// The whole frame resized to the input size, aspect ratio ignored (the reference cases' choice).
    case squash
    /// The largest centred region of the input's aspect ratio, resized: the borders are not seen.
    case crop
    /// The whole frame resized to fit inside the input, aspect ratio kept, the rest padded with
    /// the mean colour (zero after normalisation).
    case pad
    /// As `pad`, the padding grey 114 as ultralytics' letterbox (YOLO models' default).
    case letterbox
}

/// Where a frame goes in the network input and where the input's map goes back in the frame,
/// for one frame size, input size and fit.
public struct ModelInputGeometry: Sendable, Equatable {
    /// The frame's size.
    public let frameWidth: Int, frameHeight: Int
    /// The network input's size.
    public let inputWidth: Int, inputHeight: Int
    /// The part of the frame the network sees (all of it except for `crop`).
    public let source: PixelRect
    /// Where that part lands in the input (all of it except for `pad`).
    public let destination: PixelRect
    /// The fit.
    public let fit: FrameFit

    /// The geometry of fitting a `frameWidth` x `frameHeight` frame into the input by `fit`.
    public init(frameWidth: Int, frameHeight: Int, inputWidth: Int, inputHeight: Int, fit: FrameFit) {
        self.frameWidth = frameWidth
        self.frameHeight = frameHeight
        self.inputWidth = inputWidth
        self.inputHeight = inputHeight
        self.fit = fit
        let whole = PixelRect(x: 0, y: 0, width: frameWidth, height: frameHeight)
        let input = PixelRect(x: 0, y: 0, width: inputWidth, height: inputHeight)
        switch fit {
        case .squash:
            source = whole
            destination = input
        case .crop:
            // Compare aspect ratios in integers: W/H > w/h  ⇔  W·h > w·H.
            if frameWidth * inputHeight > inputWidth * frameHeight {
                let width = max(1, min(frameWidth, Int((Double(frameHeight * inputWidth) / Double(inputHeight)).rounded())))
                source = PixelRect(x: (frameWidth - width) / 2, y: 0, width: width, height: frameHeight)
            } else {
                let height = max(1, min(frameHeight, Int((Double(frameWidth * inputHeight) / Double(inputWidth)).rounded())))
                source = PixelRect(x: 0, y: (frameHeight - height) / 2, width: frameWidth, height: height)
            }
            destination = input
        case .pad, .letterbox:
            let scale = min(Double(inputWidth) / Double(frameWidth), Double(inputHeight) / Double(frameHeight))
            let width = max(1, min(inputWidth, Int((Double(frameWidth) * scale).rounded())))
            let height = max(1, min(inputHeight, Int((Double(frameHeight) * scale).rounded())))
            source = whole
            destination = PixelRect(x: (inputWidth - width) / 2, y: (inputHeight - height) / 2, width: width, height: height)
        }
    }

    /// A point of the network input (in input pixels, edges at whole numbers) as a point of the frame.
    public func framePoint(x: Double, y: Double) -> (x: Double, y: Double) {
        switch fit {
        case .squash:
            return (x * Double(frameWidth) / Double(inputWidth), y * Double(frameHeight) / Double(inputHeight))
        case .crop:
            return (Double(source.x) + x * Double(source.width) / Double(inputWidth),
                    Double(source.y) + y * Double(source.height) / Double(inputHeight))
        case .pad, .letterbox:
            return ((x - Double(destination.x)) * Double(frameWidth) / Double(destination.width),
                    (y - Double(destination.y)) * Double(frameHeight) / Double(destination.height))
        }
    }

    /// A map over the network input (`inputWidth` x `inputHeight`) as a map over the whole
    /// frame: unchanged for `squash`; the padding cut off for `pad`; for `crop` placed on the
    /// region seen, at the same scale, with 0 over the borders the network did not see.
    /// Nil for a map of another size.
    public func frameMap(_ heatmap: Heatmap) -> Heatmap? {
        guard heatmap.width == inputWidth, heatmap.height == inputHeight else { return nil }
        let map = heatmap.values
        switch fit {
        case .squash:
            return heatmap
        case .pad, .letterbox:
            var values = [Float](repeating: 0, count: destination.width * destination.height)
            for y in 0..<destination.height {
                let from = (destination.y + y) * inputWidth + destination.x
                values.replaceSubrange(y * destination.width..<(y + 1) * destination.width,
                                       with: map[from..<(from + destination.width)])
            }
            return Heatmap(width: destination.width, height: destination.height, values: values)
        case .crop:
            // Map cells per frame pixel, from the side that was cut to fit exactly.
            let scale = Double(inputWidth) / Double(source.width)
            let width = max(inputWidth, Int((Double(frameWidth) * scale).rounded()))
            let height = max(inputHeight, Int((Double(frameHeight) * scale).rounded()))
            let left = min(width - inputWidth, Int((Double(source.x) * scale).rounded()))
            let top = min(height - inputHeight, Int((Double(source.y) * scale).rounded()))
            var values = [Float](repeating: 0, count: width * height)
            for y in 0..<inputHeight {
                let to = (top + y) * width + left
                values.replaceSubrange(to..<(to + inputWidth), with: map[(y * inputWidth)..<((y + 1) * inputWidth)])
            }
            return Heatmap(width: width, height: height, values: values)
        }
    }
}
