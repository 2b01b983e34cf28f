import CamvidCLI
import Foundation
import Media
import MediaTestSupport
import Testing
import TestSupport

/// `scripts/install` as a user runs it: the installed tree, copied elsewhere, runs the sample clip from another
/// folder with nothing of the checkout reachable, and writes what the in-tree build writes.
@Suite struct InstallTests {
    static let subcommands = ["video", "image", "report", "layers", "tensor", "visualize", "doctor"]

    @Test func anInstalledCopyRunsAnywhereAsTheBuildDoes() throws {
        let folder = try ReferenceData.temporaryDirectory("camvid-install")
        defer { try? FileManager.default.removeItem(at: folder) }
        let prefix = folder.appendingPathComponent("prefix"), elsewhere = folder.appendingPathComponent("elsewhere")

        // Install (a release build of its own, .build-install: incremental after the first), then move the tree.
        let started = ContinuousClock.now
        let log = folder.appendingPathComponent("install.log")
        let install = try Self.run(URL(fileURLWithPath: "/bin/bash"), ["scripts/install", prefix.path], in: ReferenceData.packageRoot, log: log)
        let installLog = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        try #require(install == 0, "scripts/install failed: \(installLog.suffix(3000))")
        print("InstallTests: scripts/install took \(ContinuousClock.now - started)")
        try #require(Self.run(URL(fileURLWithPath: "/bin/cp"), ["-a", prefix.path, elsewhere.path], in: folder, log: log) == 0)
        try FileManager.default.removeItem(at: prefix)

        // A bare environment in a folder of its own: no $CAMVID_MODEL_DIR, no checkout on any path.
        let work = folder.appendingPathComponent("work")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: ReferenceData.packageFile("Samples/bigbuckbunny.mp4"), to: work.appendingPathComponent("clip.mp4"))
        let bare = ["PATH": "/usr/bin:/bin", "HOME": folder.path, "LANG": "C.UTF-8"]
        let camvid = elsewhere.appendingPathComponent("bin/camvid")
        func installed(_ arguments: [String]) throws -> CamvidProcess.Result {
            try CamvidProcess.run(camvid, arguments, environment: bare, in: work)
        }

        let version = try installed(["--version"])
        #expect(version.status == 0)
        // As scripts/install names it: git's HEAD, or unknown without git or a repository.
        let git = URL(fileURLWithPath: "/usr/bin/git")
        let head = FileManager.default.isExecutableFile(atPath: git.path)
            ? try CamvidProcess.run(git, ["-C", ReferenceData.packageRoot.path, "rev-parse", "--short=12", "HEAD"]) : nil
        let commit = head?.status == 0 ? head?.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) ?? "" : "unknown"
        #expect(version.standardOutput.hasPrefix("camvid \(BuildInfo.version) (commit \(commit)"), "\(version.standardOutput)")

        let doctor = try installed(["doctor"])
        #expect(doctor.status == 0, "\(doctor.standardError)")
        let installedModel = elsewhere.appendingPathComponent("share/camvid/efficientnet_lite0.onnx").path
        #expect(doctor.standardOutput.contains("model: \(installedModel) (installed beside the executable)"), "\(doctor.standardOutput)")
        #expect(doctor.standardOutput.contains("Swift runtime: linked statically into the executable"), "\(doctor.standardOutput)")
        let ldd = try CamvidProcess.run(URL(fileURLWithPath: "/usr/bin/ldd"), [camvid.path])
        #expect(ldd.status == 0)
        #expect(!ldd.standardOutput.contains("libswift") && !ldd.standardOutput.contains("libFoundation")
                && !ldd.standardOutput.contains("libdispatch"), "\(ldd.standardOutput)")

        // The same clip through the copied binary and the in-tree one. One frame per network call, so that both runs
        // batch alike (batches depend on timing, and a batch's kernels may round differently).
        func arguments(_ name: String) -> [String] {
            ["clip.mp4", "\(name).mp4", "--duration", "1", "--batch-size", "1", "--cams", "\(name).npy", "--json", "\(name).jsonl"]
        }
        let copied = try installed(arguments("installed"))
        #expect(copied.status == 0, "\(copied.standardError)")
        let inTree = try CamvidProcess.run(try #require(CamvidProcess.executable), arguments("in-tree"), in: work)
        #expect(inTree.status == 0, "\(inTree.standardError)")
        let (installedFrames, inTreeFrames) = (try Self.decode(work.appendingPathComponent("installed.mp4")),
                                               try Self.decode(work.appendingPathComponent("in-tree.mp4")))
        #expect(installedFrames.count >= 20)
        #expect(installedFrames.map(\.pts) == inTreeFrames.map(\.pts))
        #expect(installedFrames.map(\.pixels) == inTreeFrames.map(\.pixels), "the decoded frames differ")
        for record in ["npy", "jsonl"] {
            let (one, other) = (try Data(contentsOf: work.appendingPathComponent("installed.\(record)")),
                                try Data(contentsOf: work.appendingPathComponent("in-tree.\(record)")))
            #expect(!one.isEmpty && one == other, "the --\(record == "npy" ? "cams" : "json") files differ")
        }

        // Without its share folder the copy finds no model anywhere, the checkout's bundle included.
        try FileManager.default.moveItem(at: elsewhere.appendingPathComponent("share/camvid"), to: folder.appendingPathComponent("hidden"))
        let missing = try installed(["layers"])
        #expect(missing.status == 1)
        #expect(missing.errorLines.count == 1, "\(missing.standardError)")
        #expect(missing.standardError.contains("\(elsewhere.path)/share/camvid (installed beside the executable)")
                && missing.standardError.contains("\(elsewhere.path)/bin/camvid_Engine.resources/Resources"), "\(missing.standardError)")

        try Self.checkCompletions(in: elsewhere)
        try Self.checkManual(elsewhere.appendingPathComponent("share/man/man1/camvid.1"), folder: folder)
    }

    /// The three completion scripts exist, name every subcommand, and bash parses its own.
    static func checkCompletions(in prefix: URL) throws {
        for path in ["share/bash-completion/completions/camvid", "share/zsh/site-functions/_camvid", "share/fish/vendor_completions.d/camvid.fish"] {
            let text = try String(contentsOf: prefix.appendingPathComponent(path), encoding: .utf8)
            #expect(!text.isEmpty, "\(path) is empty")
            for subcommand in subcommands {
                #expect(text.contains(subcommand), "\(path) does not complete '\(subcommand)'")
            }
        }
        let bash = try CamvidProcess.run(URL(fileURLWithPath: "/bin/bash"), ["-n", prefix.appendingPathComponent("share/bash-completion/completions/camvid").path])
        #expect(bash.status == 0, "\(bash.standardError)")
    }

    /// The manual page documents every subcommand, and `man -l` renders it.
    static func checkManual(_ page: URL, folder: URL) throws {
        let text = try String(contentsOf: page, encoding: .utf8)
        #expect(text.contains(".Dt CAMVID 1"))
        for subcommand in subcommands {
            #expect(text.contains(".It Em \(subcommand)"), "the manual page has no section for '\(subcommand)'")
        }
        let man = URL(fileURLWithPath: "/usr/bin/man")
        guard FileManager.default.isExecutableFile(atPath: man.path) else {
            print("SKIPPED InstallTests man -l: man is not installed (scripts/install-deps installs man-db)")
            return
        }
        let rendered = try CamvidProcess.run(man, ["-l", page.path],
                                             environment: ["PATH": "/usr/bin:/bin", "HOME": folder.path, "MANPAGER": "cat", "MANWIDTH": "100"])
        #expect(rendered.status == 0, "\(rendered.standardError)")
        #expect(rendered.standardOutput.contains("CAMVID(1)") && rendered.standardOutput.contains("doctor"), "\(rendered.standardOutput.prefix(500))")
    }

    /// Each video frame of `file`: its pts and RGB pixels.
    static func decode(_ file: URL) throws -> [(pts: Int64, pixels: [UInt8])] {
        _ = PatternClips.quiet
        let decoder = try FrameDecoder(MediaInput(file.path))
        let converter = PixelConverter()
        var frames: [(pts: Int64, pixels: [UInt8])] = []
        while let item = try decoder.next() {
            guard case .frame(let frame) = item else { continue }
            frames.append((frame.timing.pts, try converter.rgb(frame)))
        }
        return frames
    }

    /// Runs `executable arguments…` in `folder` with both output streams into `log`; its exit status.
    static func run(_ executable: URL, _ arguments: [String], in folder: URL, log: URL) throws -> Int32 {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        defer { try? output.close() }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = folder
        process.standardInput = FileHandle.nullDevice
        (process.standardOutput, process.standardError) = (output, output)
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
