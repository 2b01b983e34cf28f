import CFFmpeg

/// How swscale resamples when the size changes.
public enum ScalingAlgorithm: String, Sendable, CaseIterable {
    /// Area averaging: the best choice for shrinking (the default for the network input).
    case area
    /// Bilinear interpolation.
    case bilinear
    /// FFmpeg's faster, less exact bilinear.
    case fastBilinear
    /// Bicubic interpolation.
    case bicubic
    /// Lanczos: sharpest, slowest.
    case lanczos
    /// Nearest neighbour.
    case point

    var flags: Int32 {
        switch self {
        case .area: SWS_AREA
        case .bilinear: SWS_BILINEAR
        case .fastBilinear: SWS_FAST_BILINEAR
        case .bicubic: SWS_BICUBIC
        case .lanczos: SWS_LANCZOS
        case .point: SWS_POINT
        }
    }
}

/// Converts pictures between pixel formats and sizes with swscale, reusing its contexts.
///
/// A context is costly to create, so one is kept per (source size and format, target size
/// and format, algorithm, colour) combination: converting every frame to full-size RGB and to
/// the network's 224x224 uses two contexts, made once.
///
/// YUV↔RGB uses the source's colour matrix and range (BT.709 for HD and BT.601 for SD when
/// the file does not say), so colours match what a player shows.
///
/// Ownership: one task at a time (swscale contexts are not thread-safe).
public final class PixelConverter: @unchecked Sendable {
    private struct Key: Hashable {
        var sourceWidth: Int32, sourceHeight: Int32, sourceFormat: Int32
        var targetWidth: Int32, targetHeight: Int32, targetFormat: Int32
        var flags: Int32, space: Int32, fullRange: Bool
    }

    private var contexts: [Key: OpaquePointer] = [:]
    private let rgbFrame: UnsafeMutablePointer<AVFrame>
    /// The file named in errors.
    private let file: String

    /// A converter; `file` names the media in error messages.
    public init(file: String = "") {
        self.file = file
        // av_frame_alloc only fails when out of memory, where nothing else can go on either.
        self.rgbFrame = av_frame_alloc()!
    }

    deinit {
        for context in contexts.values { sws_freeContext(context) }
        rgbFrame.free()
    }

    /// The frame as packed RGB24 bytes (`width * height * 3`, rows without padding), at its
    /// own size or at `width` x `height`.
    public func rgb(
        _ frame: DecodedFrame, width: Int? = nil, height: Int? = nil, algorithm: ScalingAlgorithm = .area
    ) throws -> [UInt8] {
        let targetWidth = width ?? frame.width
        let targetHeight = height ?? frame.height
        guard targetWidth > 0, targetHeight > 0 else {
            throw MediaError(file: file, frame: frame.index, reason: "cannot scale to \(targetWidth)x\(targetHeight)")
        }
        let source = frame.frame
        let context = try context(
            sourceWidth: source.pointee.width, sourceHeight: source.pointee.height, sourceFormat: source.pointee.format,
            targetWidth: Int32(targetWidth), targetHeight: Int32(targetHeight), targetFormat: AV_PIX_FMT_RGB24.rawValue,
            algorithm: algorithm, color: frame.color, frameIndex: frame.index
        )
        let count = targetWidth * targetHeight * 3
        var failure: Int32 = 0
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var planes: [UnsafeMutablePointer<UInt8>?] = [buffer.baseAddress, nil, nil, nil]
            var strides: [Int32] = [Int32(targetWidth * 3), 0, 0, 0]
            let scaled = sws_scale(
                context, camvid_frame_data(source), camvid_frame_linesize(source), 0, source.pointee.height,
                &planes, &strides
            )
            if scaled < 0 { failure = scaled }
            initialized = count
        }
        if failure < 0 { throw MediaError(file: file, frame: frame.index, while: "cannot convert to RGB", code: failure) }
        return pixels
    }

    /// Converts packed RGB24 `pixels` (`width` x `height`) into `target`, an allocated frame
    /// whose size and format are set; the colour matrix follows `color`.
    func convert(
        rgb pixels: [UInt8], width: Int, height: Int, into target: UnsafeMutablePointer<AVFrame>,
        color: ColorDescription, algorithm: ScalingAlgorithm = .bicubic, frameIndex: Int?
    ) throws {
        guard width > 0, height > 0, pixels.count == width * height * 3 else {
            throw MediaError(file: file, frame: frameIndex, reason: "RGB picture of \(pixels.count) bytes is not \(width)x\(height)x3")
        }
        let context = try context(
            sourceWidth: Int32(width), sourceHeight: Int32(height), sourceFormat: AV_PIX_FMT_RGB24.rawValue,
            targetWidth: target.pointee.width, targetHeight: target.pointee.height, targetFormat: target.pointee.format,
            algorithm: algorithm, color: color, frameIndex: frameIndex
        )
        let code = pixels.withUnsafeBufferPointer { buffer -> Int32 in
            var planes: [UnsafePointer<UInt8>?] = [buffer.baseAddress, nil, nil, nil]
            var strides: [Int32] = [Int32(width * 3), 0, 0, 0]
            return sws_scale(
                context, &planes, &strides, 0, Int32(height),
                camvid_frame_data_mut(target), camvid_frame_linesize(target)
            )
        }
        if code < 0 { throw MediaError(file: file, frame: frameIndex, while: "cannot convert from RGB", code: code) }
    }

    private func context(
        sourceWidth: Int32, sourceHeight: Int32, sourceFormat: Int32,
        targetWidth: Int32, targetHeight: Int32, targetFormat: Int32,
        algorithm: ScalingAlgorithm, color: ColorDescription, frameIndex: Int?
    ) throws -> OpaquePointer {
        let yuvFormat = sourceFormat == AV_PIX_FMT_RGB24.rawValue ? targetFormat : sourceFormat
        let yuvWidth = sourceFormat == AV_PIX_FMT_RGB24.rawValue ? targetWidth : sourceWidth
        let yuvHeight = sourceFormat == AV_PIX_FMT_RGB24.rawValue ? targetHeight : sourceHeight
        let space = Self.colorSpace(color, width: yuvWidth, height: yuvHeight)
        let fullRange = color.range == Int32(AVCOL_RANGE_JPEG.rawValue) || Self.isJPEGFormat(yuvFormat)
        // The same size needs no resampling filter; swscale then uses its fast SIMD unscaled
        // paths, which SWS_ACCURATE_RND or SWS_FULL_CHR_H_INT would switch off (3x slower).
        let sameSize = sourceWidth == targetWidth && sourceHeight == targetHeight
        let flags = sameSize ? SWS_BILINEAR : algorithm.flags
        let key = Key(
            sourceWidth: sourceWidth, sourceHeight: sourceHeight, sourceFormat: sourceFormat,
            targetWidth: targetWidth, targetHeight: targetHeight, targetFormat: targetFormat,
            flags: flags, space: space, fullRange: fullRange
        )
        if let context = contexts[key] { return context }
        guard let context = sws_getContext(
            sourceWidth, sourceHeight, AVPixelFormat(rawValue: sourceFormat),
            targetWidth, targetHeight, AVPixelFormat(rawValue: targetFormat), flags, nil, nil, nil
        ) else {
            let from = PixelFormat(rawValue: sourceFormat), to = PixelFormat(rawValue: targetFormat)
            throw MediaError(
                file: file, frame: frameIndex,
                reason: "cannot convert \(sourceWidth)x\(sourceHeight) \(from) to \(targetWidth)x\(targetHeight) \(to)"
            )
        }
        let coefficients = sws_getCoefficients(space)
        let sourceIsRGB = sourceFormat == AV_PIX_FMT_RGB24.rawValue
        sws_setColorspaceDetails(
            context, coefficients, sourceIsRGB ? 1 : (fullRange ? 1 : 0),
            coefficients, sourceIsRGB ? (fullRange ? 1 : 0) : 1, 0, 1 << 16, 1 << 16
        )
        contexts[key] = context
        return context
    }

    /// swscale's colour-space constant for a stream: its own, else BT.709 for HD and BT.601 for SD.
    static func colorSpace(_ color: ColorDescription, width: Int32, height: Int32) -> Int32 {
        switch UInt32(bitPattern: color.space) {
        case AVCOL_SPC_BT709.rawValue: return SWS_CS_ITU709
        case AVCOL_SPC_FCC.rawValue: return SWS_CS_FCC
        case AVCOL_SPC_SMPTE240M.rawValue: return SWS_CS_SMPTE240M
        case AVCOL_SPC_BT470BG.rawValue, AVCOL_SPC_SMPTE170M.rawValue: return SWS_CS_ITU601
        case AVCOL_SPC_BT2020_NCL.rawValue, AVCOL_SPC_BT2020_CL.rawValue: return SWS_CS_BT2020
        default: return width >= 1280 || height > 576 ? SWS_CS_ITU709 : SWS_CS_ITU601
        }
    }

    private static func isJPEGFormat(_ format: Int32) -> Bool {
        [AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUVJ444P, AV_PIX_FMT_YUVJ440P, AV_PIX_FMT_YUVJ411P]
            .contains { $0.rawValue == format }
    }
}
