import Core
import Foundation
import Media

/// `camvid concat`: joins the parts of a sharded run into one video without re-encoding, copies the
/// source's audio and subtitles once, and joins the parts' `--json` and `--cams` shards.
///
/// Before anything is written, the parts must be complete, contiguous and consistent: each opens
/// (an MP4 part cut short has no index and does not), each says which shard it is
/// (`PartManifest`), every shard 0…N−1 is there exactly once, all were made from this source, span
/// and encoder settings with the same codec configuration, and every part has the records asked
/// for. While joining: each part starts on a keyframe, its frames come after the previous part's,
/// and each record shard holds one entry per frame of its part. Any failure is one error naming
/// the part; the outputs are written under temporary names and renamed only when complete.
public struct PartJoin {
    /// A part opened, with what it says of itself.
    struct Part {
        var path: String
        var reader: PacketReader
        var manifest: PartManifest
        /// The part's folder, against which its records' relative paths resolve.
        var folder: URL { URL(fileURLWithPath: path).deletingLastPathComponent() }
        func record(_ relative: String) -> String {
            relative.hasPrefix("/") ? relative : folder.appendingPathComponent(relative).path
        }
    }

    /// What the join wrote.
    public struct Summary: Sendable {
        /// Parts joined.
        public var parts: Int
        /// Video frames (packets) joined.
        public var frames: Int
        /// Audio and subtitle packets copied from the source.
        public var otherPackets: Int
    }

    private let parts: [Part]
    private let source: MediaInput
    private let output: MediaOutput
    private let json: String?
    private let cams: String?

    /// Opens and checks `parts` against each other and against `source`; `json` and `cams` ask for
    /// the parts' record shards joined into those files.
    public init(parts paths: [String], source: MediaInput, output: MediaOutput, json: String?, cams: String?) throws {
        guard !paths.isEmpty else { throw MediaError(file: output.location, reason: "no parts to join") }
        var opened: [Part] = []
        for path in paths {
            guard !OutputFiles.isTemporary(path) else {
                throw MediaError(file: path, reason: "is a temporary part: its shard did not complete")
            }
            let reader = try PacketReader(MediaInput(path))
            guard let manifest = PartManifest(tags: reader.metadata) else {
                throw MediaError(file: path, reason: "not a whole part of a sharded camvid run (no camvid_shard tag: cut short, or not made with --shard)")
            }
            opened.append(Part(path: path, reader: reader, manifest: manifest))
        }
        let first = opened[0]
        let count = first.manifest.shard.count
        var byIndex: [Int: Part] = [:]
        for part in opened {
            let manifest = part.manifest
            guard manifest.shard.count == count else {
                throw MediaError(file: part.path, reason: "is shard \(manifest.shard), \(first.path) is shard \(first.manifest.shard): parts of different runs")
            }
            if let twin = byIndex[manifest.shard.index] {
                throw MediaError(file: part.path, reason: "is shard \(manifest.shard), and so is \(twin.path): a part given twice")
            }
            for (what, mine, theirs) in [("source", manifest.source, first.manifest.source), ("span", manifest.span, first.manifest.span),
                                         ("encoder settings", manifest.encoder, first.manifest.encoder)] where mine != theirs {
                throw MediaError(file: part.path, reason: "was made with another \(what) (\(mine)) than \(first.path) (\(theirs))")
            }
            // Parts without a frame have no video stream (MP4 leaves an empty track out).
            if let video = part.reader.video, let reference = opened.first(where: { $0.reader.video != nil }), let theirs = reference.reader.video,
               video.configuration != theirs.configuration || video.size != theirs.size || video.codecName != theirs.codecName {
                throw MediaError(file: part.path, reason: "its video is encoded differently from \(reference.path)'s (codec, size or configuration): it cannot be joined without re-encoding")
            }
            if json != nil, manifest.json == nil { throw MediaError(file: part.path, reason: "was made without --json: there is no --json shard to join") }
            if cams != nil, manifest.cams == nil { throw MediaError(file: part.path, reason: "was made without --cams: there is no --cams shard to join") }
            byIndex[manifest.shard.index] = part
        }
        let missing = (0..<count).filter { byIndex[$0] == nil }
        guard missing.isEmpty else {
            let names = missing.map { "\($0)/\(count)" }.joined(separator: ", ")
            throw MediaError(file: output.location, reason: "shard\(missing.count > 1 ? "s" : "") \(names) missing: no part given holds \(missing.count > 1 ? "them" : "it")")
        }
        self.parts = (0..<count).map { byIndex[$0]! }
        self.source = source
        self.output = output
        self.json = json
        self.cams = cams
    }

    /// Joins the video, the source's other streams, and the records; renames each output into place when complete.
    public func run() throws -> Summary {
        let manifest = parts[0].manifest
        guard let span = PartManifest.span(manifest.span) else {
            throw MediaError(file: parts[0].path, reason: "its span tag '\(manifest.span)' cannot be read")
        }
        let other = try FrameDecoder(source, span: span, settings: DecoderSettings(deliversVideo: false))
        guard PartManifest.fingerprint(other) == manifest.source else {
            throw MediaError(file: source.location, reason: "is not the source of the parts (it is \(PartManifest.fingerprint(other)), they were made from \(manifest.source))")
        }
        let temporary = OutputFiles.temporary(output.location)
        var partial = output
        partial.location = temporary
        var done = false
        defer { if !done { try? FileManager.default.removeItem(atPath: temporary) } }
        guard let video = parts.lazy.compactMap(\.reader.video).first else {
            throw MediaError(file: output.location, reason: "none of the parts holds a frame")
        }
        let muxer = try Muxer(output: partial, copying: video, source: other.source)
        let origin = other.source.timeOrigin
        var frameCounts: [Int] = []
        var otherPackets = 0
        var waiting = try Self.nextPacket(of: other)
        var previousEnd: (pts: Int64, timeBase: Rational, part: String)?
        var lastTimeBase = video.timeBase
        var written = 0
        for part in parts {
            var frames = 0
            var lastPts: Int64?
            while let packet = try part.reader.next() {
                if frames == 0 {
                    guard packet.isKeyframe else { throw MediaError(file: part.path, reason: "does not start on a keyframe: it cannot be joined") }
                    if let previousEnd, let pts = packet.pts, Self.compare(pts, packet.timeBase, previousEnd.pts, previousEnd.timeBase) <= 0 {
                        throw MediaError(file: part.path, reason: "its first frame is not after the last frame of \(previousEnd.part): the parts overlap")
                    }
                }
                // The source's packets up to this frame's decoding time go first, so the muxer interleaves as it reads.
                let time = packet.timeBase.seconds(packet.dts ?? packet.pts ?? 0)
                while let next = waiting, next.timeBase.seconds(next.dts ?? next.pts ?? 0) - origin <= time {
                    try muxer.write(next)
                    otherPackets += 1
                    waiting = try Self.nextPacket(of: other)
                }
                try muxer.writeVideo(packet, frame: written)
                if let pts = packet.pts { lastPts = max(lastPts ?? pts, pts) }
                lastTimeBase = packet.timeBase
                frames += 1
                written += 1
            }
            if let lastPts { previousEnd = (lastPts, lastTimeBase, part.path) }
            frameCounts.append(frames)
        }
        while let next = waiting {
            try muxer.write(next)
            otherPackets += 1
            waiting = try Self.nextPacket(of: other)
        }
        try muxer.finish()
        if let json { try joinJSON(into: json, frameCounts: frameCounts) }
        if let cams { try joinCams(into: cams, frameCounts: frameCounts) }
        try OutputFiles.rename(temporary, to: output.location)
        done = true
        return Summary(parts: parts.count, frames: written, otherPackets: otherPackets)
    }

    /// The source's next audio or subtitle packet (its decoder delivers nothing else here).
    private static func nextPacket(of decoder: FrameDecoder) throws -> StreamPacket? {
        while let item = try decoder.next() {
            if case .packet(let packet) = item { return packet }
        }
        return nil
    }

    /// `a` in `aBase` against `b` in `bBase`: negative, zero or positive (exact).
    private static func compare(_ a: Int64, _ aBase: Rational, _ b: Int64, _ bBase: Rational) -> Int {
        let left = a.multipliedFullWidth(by: Int64(aBase.numerator) * Int64(bBase.denominator))
        let right = b.multipliedFullWidth(by: Int64(bBase.numerator) * Int64(aBase.denominator))
        return left == right ? 0 : ((left.high, left.low) < (right.high, right.low) ? -1 : 1)
    }

    /// The parts' `--json` shards, one line per frame, renumbered from each part's first frame.
    private func joinJSON(into path: String, frameCounts: [Int]) throws {
        let temporary = OutputFiles.temporary(path)
        guard FileManager.default.createFile(atPath: temporary, contents: nil), let out = FileHandle(forWritingAtPath: temporary) else {
            throw RecordError(path: path, frame: nil, reason: "cannot create the file")
        }
        defer { try? out.close() }
        var offset = 0
        for (part, frames) in zip(parts, frameCounts) {
            let shard = part.record(part.manifest.json!)
            guard let data = FileManager.default.contents(atPath: shard) else {
                throw RecordError(path: shard, frame: nil, reason: "cannot read the --json shard of \(part.path)")
            }
            let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
            guard lines.count == frames else {
                throw RecordError(path: shard, frame: nil, reason: "has \(lines.count) lines for the \(frames) frames of \(part.path): cut short or from another run")
            }
            var text = ""
            for (local, line) in lines.enumerated() {
                guard let renumbered = ExplanationLog.renumbered(String(line), from: local, to: offset + local) else {
                    throw RecordError(path: shard, frame: local, reason: "line \(local + 1) is not frame \(local) of the shard")
                }
                text += renumbered + "\n"
            }
            try out.write(contentsOf: Data(text.utf8))
            offset += frames
        }
        try out.close()
        try OutputFiles.rename(temporary, to: path)
    }

    /// The parts' `--cams` shards as one array: their maps in order, the header counting them all.
    private func joinCams(into path: String, frameCounts: [Int]) throws {
        var shapes: [(file: String, shape: [Int], offset: Int)] = []
        for (part, frames) in zip(parts, frameCounts) {
            let shard = part.record(part.manifest.cams!)
            guard let handle = FileHandle(forReadingAtPath: shard) else {
                throw RecordError(path: shard, frame: nil, reason: "cannot read the --cams shard of \(part.path)")
            }
            let head = [UInt8](try handle.read(upToCount: 4096) ?? Data())
            try handle.close()
            let (shape, dtype, offset) = try NumPyFile.header(of: head)
            guard dtype == "<f4", shape.first == frames else {
                throw RecordError(path: shard, frame: nil, reason: "holds \(shape.first ?? 0) maps for the \(frames) frames of \(part.path): cut short or from another run")
            }
            shapes.append((shard, shape, offset))
        }
        // Empty parts' arrays have 0x0 maps; the others must agree on the map's shape.
        let mapShapes = Set(shapes.filter { $0.shape[0] > 0 }.map { Array($0.shape.dropFirst()) })
        guard mapShapes.count <= 1 else {
            throw RecordError(path: path, frame: nil, reason: "the --cams shards hold maps of different shapes: \(mapShapes.map { "\($0)" }.sorted().joined(separator: ", "))")
        }
        let mapShape = mapShapes.first ?? Array(shapes[0].shape.dropFirst())
        let total = frameCounts.reduce(0, +)
        let temporary = OutputFiles.temporary(path)
        guard FileManager.default.createFile(atPath: temporary, contents: nil), let out = FileHandle(forWritingAtPath: temporary) else {
            throw RecordError(path: path, frame: nil, reason: "cannot create the file")
        }
        defer { try? out.close() }
        try out.write(contentsOf: NumPyFile.header(shape: [total] + mapShape, length: HeatmapArrayFile.headerLength))
        let bytesPerMap = mapShape.reduce(4, *)
        for shard in shapes where shard.shape[0] > 0 {
            guard let input = FileHandle(forReadingAtPath: shard.file) else {
                throw RecordError(path: shard.file, frame: nil, reason: "cannot read the file")
            }
            defer { try? input.close() }
            try input.seek(toOffset: UInt64(shard.offset))
            var remaining = shard.shape[0] * bytesPerMap
            while remaining > 0 {
                let chunk = try input.read(upToCount: min(remaining, 1 << 22)) ?? Data()
                guard !chunk.isEmpty else {
                    throw RecordError(path: shard.file, frame: nil, reason: "ends before its \(shard.shape[0]) maps: cut short")
                }
                try out.write(contentsOf: chunk)
                remaining -= chunk.count
            }
        }
        try out.close()
        try OutputFiles.rename(temporary, to: path)
    }
}
