import ArgumentParser
import Core
import Foundation

/// `--shard` and `--archive`: a share of a job that a scheduler runs on many machines.
struct ShardOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Explain only shard I of N (0-based: 0/4 … 3/4) and write it as a part for `camvid concat` (MP4; the video alone; --json and --cams are shards too); with --archive, only this shard of the list's files. 'auto' reads I and N from Slurm (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT or _MAX) or Kubernetes (JOB_COMPLETION_INDEX and CAMVID_SHARD_COUNT).", valueName: "I/N|auto"))
    var shard: String?

    @Flag(help: "IN is a text file listing inputs, one per line; OUT names each output with {name} (the input's file name without its extension), or is a folder (FOLDER/{name}.mp4); --json and --cams need {name} too. Outputs that exist are skipped, so a rerun resumes.")
    var archive = false

    mutating func validate() throws {
        if let shard, shard != "auto", Shard(shard) == nil {
            throw ValidationError("--shard '\(shard)' is not I/N with 0 ≤ I < N, or auto")
        }
    }

    /// The shard asked for, `auto` read from `environment`; nil without `--shard`.
    func resolve(_ environment: [String: String]) throws -> Shard? {
        guard let shard else { return nil }
        if shard != "auto" { return Shard(shard) }
        return try Self.scheduled(environment)
    }

    /// The shard a scheduler's array or indexed job gives this process.
    ///
    /// Slurm: the task's position in its array, `SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN`, of
    /// `SLURM_ARRAY_TASK_COUNT` (else `MAX − MIN + 1`), so `--array=1-8` works as well as `0-7`.
    /// Kubernetes: `JOB_COMPLETION_INDEX` of `CAMVID_SHARD_COUNT`, which the Job sets to its
    /// `completions` (Kubernetes does not pass that on).
    static func scheduled(_ environment: [String: String]) throws -> Shard {
        func number(_ name: String) throws -> Int? {
            guard let text = environment[name] else { return nil }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw CommandError("--shard auto: \(name)='\(text)' is not a number")
            }
            return value
        }
        let index: Int, count: Int
        if let task = try number("SLURM_ARRAY_TASK_ID") {
            let minimum = try number("SLURM_ARRAY_TASK_MIN") ?? 0
            guard let total = try number("SLURM_ARRAY_TASK_COUNT") ?? number("SLURM_ARRAY_TASK_MAX").map({ $0 - minimum + 1 }) else {
                throw CommandError("--shard auto: SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX")
            }
            (index, count) = (task - minimum, total)
        } else if let completion = try number("JOB_COMPLETION_INDEX") {
            guard let total = try number("CAMVID_SHARD_COUNT") else {
                throw CommandError("--shard auto: JOB_COMPLETION_INDEX is set but not CAMVID_SHARD_COUNT (set it to the Job's completions)")
            }
            (index, count) = (completion, total)
        } else {
            throw CommandError("--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm array job) nor JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) is set")
        }
        guard let shard = Shard(index: index, count: count) else {
            throw CommandError("--shard auto: task \(index) of \(count) is not a shard (a Slurm array with a step, or a wrong CAMVID_SHARD_COUNT?)")
        }
        return shard
    }
}

/// An archive (`--archive`): inputs listed in a text file, one per line, each written to an output
/// named after it.
struct Archive {
    /// The inputs, in the list's order (blank lines and lines starting with `#` left out).
    let inputs: [String]

    /// Reads the list at `path`; inputs that would be written to the same output are an error.
    init(list path: String, outputPattern: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandError("\(path): cannot read the archive's list")
        }
        inputs = String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        var seen: [String: String] = [:]
        for input in inputs {
            let output = Self.name(outputPattern, for: input)
            if let other = seen[output] { throw CommandError("\(path): \(other) and \(input) would both be written to \(output)") }
            seen[output] = input
        }
    }

    /// The input's file name without its extension.
    static func stem(_ input: String) -> String {
        URL(fileURLWithPath: input).deletingPathExtension().lastPathComponent
    }

    /// `pattern` with `{name}` replaced by `input`'s stem; a pattern without it is a folder.
    static func name(_ pattern: String, for input: String) -> String {
        let full = pattern.contains("{name}") ? pattern : URL(fileURLWithPath: pattern).appendingPathComponent("{name}.mp4").path
        return full.replacingOccurrences(of: "{name}", with: stem(input))
    }
}
