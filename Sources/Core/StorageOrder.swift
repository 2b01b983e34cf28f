/// How a 4-D tensor `[N, C, H, W]` lays its elements out in memory; its logical shape stays `[N, C, H, W]` in every
/// order, and each image is one contiguous run of `C * H * W` elements.
public enum StorageOrder: Hashable, Sendable {
    /// NCHW (row-major): what every tensor of another rank uses, and what callers of the engine read.
    case channelsFirst
    /// NHWC.
    case channelsLast
    /// oneDNN's nChw8c: channels in blocks of 8, each block stored NHWC-like (`C` must be a multiple of 8).
    case channelBlocks8

    /// Where element (`channel`, `pixel`) of one image with `channels` planes of `pixels` pixels lies in this order.
    @inline(__always)
    package func offset(channel: Int, pixel: Int, channels: Int, pixels: Int) -> Int {
        switch self {
        case .channelsFirst: return channel * pixels + pixel
        case .channelsLast: return pixel * channels + channel
        case .channelBlocks8: return (channel >> 3) * pixels * 8 + pixel * 8 + channel & 7
        }
    }
}

extension Tensor {
    /// The same logical values stored in `order` (this tensor itself when it is already, or is not 4-D).
    public func reordered(to order: StorageOrder) -> Tensor {
        if self.order == order || rank != 4 { return self }
        return reordered(to: order, reusing: [Float](unsafeUninitializedCapacity: count) { _, n in n = count })
    }

    /// `reordered(to:)` written into `buffer` (`count` elements, whatever they hold, handed over), for callers that reuse
    /// memory.
    package func reordered(to order: StorageOrder, reusing buffer: consuming [Float]) -> Tensor {
        precondition(rank == 4 && buffer.count == count, "reordering \(shape) into \(buffer.count) elements")
        let (images, channels, pixels) = (shape[0], shape[1], shape[2] * shape[3])
        var out = consume buffer
        storage.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { destination in
                let (x, y) = (source.baseAddress!, destination.baseAddress!)
                switch (self.order, order) {
                case (.channelsFirst, .channelsLast):
                    StorageOrder.transpose(x, into: y, images: images, rows: channels, columns: pixels)
                case (.channelsLast, .channelsFirst):
                    StorageOrder.transpose(x, into: y, images: images, rows: pixels, columns: channels)
                case (let plain, .channelBlocks8):
                    StorageOrder.blocks(x, into: y, plain: plain, toBlocks: true, images: images, channels: channels, pixels: pixels)
                case (.channelBlocks8, let plain):
                    StorageOrder.blocks(x, into: y, plain: plain, toBlocks: false, images: images, channels: channels, pixels: pixels)
                default:
                    y.update(from: x, count: count)
                }
            }
        }
        return Tensor(shape: shape, storage: out, order: order)
    }
}

extension StorageOrder {
    /// Per image, `y[j][i] = x[i][j]` for a `rows` x `columns` matrix, in tiles small enough that the rows read and
    /// the rows written stay in the first-level cache (a plain loop writes each column across the whole image).
    fileprivate static func transpose(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, images: Int, rows: Int, columns: Int) {
        let tile = 32
        for image in 0..<images {
            let (source, destination) = (x + image * rows * columns, y + image * rows * columns)
            for row0 in stride(from: 0, to: rows, by: tile) {
                let rowEnd = min(row0 + tile, rows)
                for column0 in stride(from: 0, to: columns, by: tile) {
                    let columnEnd = min(column0 + tile, columns)
                    for row in row0..<rowEnd {
                        for column in column0..<columnEnd { destination[column * rows + row] = source[row * columns + column] }
                    }
                }
            }
        }
    }

    /// Between 8-channel blocks and the plain order `plain`: into blocks when `toBlocks`, else out of them. Both
    /// directions walk the blocked side sequentially; lane `l` of block `b` at pixel `p` is channel `8b + l`.
    fileprivate static func blocks(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, plain: StorageOrder, toBlocks: Bool,
                               images: Int, channels: Int, pixels: Int) {
        precondition(channels % 8 == 0, "8-channel blocks of \(channels) channels")
        // Strides of a channel and of a pixel within one image in the plain order.
        let channelStride = plain.offset(channel: 1, pixel: 0, channels: channels, pixels: pixels)
        let pixelStride = plain.offset(channel: 0, pixel: 1, channels: channels, pixels: pixels)
        for image in 0..<images {
            let base = image * channels * pixels
            var blocked = base
            for group in 0..<(channels / 8) {
                for pixel in 0..<pixels {
                    let plainBase = base + group * 8 * channelStride + pixel * pixelStride
                    for lane in 0..<8 {
                        if toBlocks {
                            y[blocked + lane] = x[plainBase + lane * channelStride]
                        } else {
                            y[plainBase + lane * channelStride] = x[blocked + lane]
                        }
                    }
                    blocked += 8
                }
            }
        }
    }
}
