import Core
import Foundation
import Media

/// The files a run writes under temporary names beside their final ones (`.part.partial.mp4`),
/// renamed only when the run is complete, the video last, so an output that exists is whole and a
/// retried run simply writes it again: one shard of a sharded run (`--shard I/N`: its part of the
/// video and its `--json` / `--cams` shards) or one input of an archive.
public struct OutputFiles: Sendable {
    /// Which shard, for a part of a sharded run.
    public let shard: Shard?
    /// The video's final path (MP4 for a shard's part).
    public let video: String
    /// The final path of its `--json` shard, if any.
    public let json: String?
    /// The final path of its `--cams` shard, if any.
    public let cams: String?

    /// The files of a run, of `shard` when given; throws unless the records are files and a shard's
    /// part is an MP4 file (its index, written last, shows the part is whole).
    public init(shard: Shard?, video: String, json: String?, cams: String?) throws {
        let ext = URL(fileURLWithPath: video).pathExtension.lowercased()
        guard shard == nil || ["mp4", "mov", "m4v"].contains(ext) else {
            throw MediaError(file: video, reason: "a shard's part must be an MP4 file (.mp4, .mov): its index, written last, shows the part is whole")
        }
        if json == "-" { throw MediaError(file: "-", reason: "--json must be a file here, to be renamed when the run is complete") }
        self.shard = shard
        self.video = video
        self.json = json
        self.cams = cams
    }

    /// Where `path` is written until its run is complete: `dir/.name.partial.ext`, hidden from the
    /// `part-*.mp4` a join is given, and with the extension that chooses the container.
    public static func temporary(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension
        let stem = url.deletingPathExtension().lastPathComponent
        let name = ext.isEmpty ? ".\(stem).partial" : ".\(stem).partial.\(ext)"
        return url.deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// Whether `path` is a temporary name (a run that did not complete left it).
    public static func isTemporary(_ path: String) -> Bool {
        let name = URL(fileURLWithPath: path).lastPathComponent
        return name.hasPrefix(".") && name.contains(".partial")
    }

    /// The tags that make a shard's part describe itself (see `PartManifest`), for a run from `decoder`.
    public func manifest(shard: Shard, decoder: FrameDecoder, span: TimeSpan, encoder: EncoderSettings) -> PartManifest {
        let folder = URL(fileURLWithPath: video).deletingLastPathComponent()
        return PartManifest(shard: shard, source: PartManifest.fingerprint(decoder), span: PartManifest.text(of: span),
                            encoder: "\(encoder.codecNames.joined(separator: "|")) crf=\(encoder.crf) preset=\(encoder.preset)",
                            json: json.map { Self.relative($0, to: folder) }, cams: cams.map { Self.relative($0, to: folder) })
    }

    /// `path` relative to `folder` when it lies inside it (parts and records move together), else absolute.
    static func relative(_ path: String, to folder: URL) -> String {
        let file = URL(fileURLWithPath: path).standardizedFileURL.path
        let base = folder.standardizedFileURL.path
        let prefix = base.hasSuffix("/") ? base : base + "/"
        return file.hasPrefix(prefix) ? String(file.dropFirst(prefix.count)) : file
    }

    /// Renames the records, then the video, from their temporary names to their final ones.
    public func commit() throws {
        for path in [json, cams].compactMap({ $0 }) + [video] {
            try Self.rename(Self.temporary(path), to: path)
        }
    }

    /// Moves `from` over `to` (atomically on one file system).
    static func rename(_ from: String, to: String) throws {
        guard Foundation.rename(from, to) == 0 else {
            throw MediaError(file: to, reason: "cannot rename \(from) to it: \(String(cString: strerror(errno)))")
        }
    }
}

/// What a part of a sharded run says of itself, in its container's tags: which shard of how many,
/// the source it was made from (size and video stream), the span, the encoder's settings, and its
/// `--json` / `--cams` shards (relative to the part's folder). `camvid concat` checks them.
public struct PartManifest: Sendable, Equatable {
    /// Which shard.
    public var shard: Shard
    /// The source, as `fingerprint` describes it.
    public var source: String
    /// The span of the source that was sharded (`start,duration`, `-` for open ends).
    public var span: String
    /// The encoder and its settings.
    public var encoder: String
    /// The `--json` shard, relative to the part's folder (or absolute).
    public var json: String?
    /// The `--cams` shard, likewise.
    public var cams: String?

    private static let prefix = "camvid_"

    /// A manifest from its fields.
    public init(shard: Shard, source: String, span: String, encoder: String, json: String?, cams: String?) {
        self.shard = shard
        self.source = source
        self.span = span
        self.encoder = encoder
        self.json = json
        self.cams = cams
    }

    /// The manifest in a part's tags; nil when they have none (not a part of a sharded run).
    public init?(tags: [String: String]) {
        guard let shardText = tags[Self.prefix + "shard"], let shard = Shard(shardText),
              let source = tags[Self.prefix + "source"], let span = tags[Self.prefix + "span"],
              let encoder = tags[Self.prefix + "encoder"] else { return nil }
        self.init(shard: shard, source: source, span: span, encoder: encoder,
                  json: tags[Self.prefix + "json"], cams: tags[Self.prefix + "cams"])
    }

    /// The container tags.
    public var tags: [String: String] {
        var tags = [Self.prefix + "shard": shard.description, Self.prefix + "source": source,
                    Self.prefix + "span": span, Self.prefix + "encoder": encoder]
        tags[Self.prefix + "json"] = json
        tags[Self.prefix + "cams"] = cams
        return tags
    }

    /// The source as the parts and the join see it: its size in bytes and its video stream.
    public static func fingerprint(_ decoder: FrameDecoder) -> String {
        let video = decoder.video
        return "\(decoder.inputSize.map(String.init) ?? "?") bytes, \(video.codecName) \(video.width)x\(video.height), "
            + "time base \(video.timeBase), \(video.frameCountEstimate.map(String.init) ?? "?") frames"
    }

    /// `start,duration` in seconds (shortest round-tripping text), `-` for an open end.
    public static func text(of span: TimeSpan) -> String {
        "\(span.start.map { "\($0)" } ?? "-"),\(span.duration.map { "\($0)" } ?? "-")"
    }

    /// The span `text(of:)` wrote; nil for anything else.
    public static func span(_ text: String) -> TimeSpan? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 else { return nil }
        func value(_ part: String) -> Double?? { part == "-" ? .some(nil) : Double(part).map { .some($0) } }
        guard let start = value(parts[0]), let duration = value(parts[1]) else { return nil }
        return TimeSpan(start: start, duration: duration)
    }
}
