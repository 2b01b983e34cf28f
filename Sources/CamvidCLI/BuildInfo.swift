import CBuildInfo

/// What `camvid --version` and `camvid doctor` say of this build.
public enum BuildInfo {
    /// camvid's version.
    public static let version = "0.1.0"

    /// The git commit the binary was built from (with `-dirty` when the tree had changes), nil when the build
    /// recorded none: `scripts/install` records it, a plain `swift build` does not (SwiftPM has no define from git).
    public static let commit: String? = {
        let commit = String(cString: camvid_build_commit())
        return commit.isEmpty ? nil : commit
    }()

    /// `camvid 0.1.0 (commit 1a2b3c4d5e6f)`, or `camvid 0.1.0 (commit unknown)`.
    public static var versionLine: String { "camvid \(version) (commit \(commit ?? "unknown"))" }
}
