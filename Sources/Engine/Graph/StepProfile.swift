import Foundation

/// `CAMVID_ENGINE_PROFILE=1`: wall time per operator kind over the process, printed to stderr at exit (a diagnostic).
/// `CAMVID_ENGINE_PROFILE=steps`: the minimum and median time of every step instead, in plan order.
final class StepProfile: @unchecked Sendable {
    static let enabled = ProcessInfo.processInfo.environment["CAMVID_ENGINE_PROFILE"] != nil
    static let perStep = ProcessInfo.processInfo.environment["CAMVID_ENGINE_PROFILE"] == "steps"
    static let shared: StepProfile = {
        let profile = StepProfile()
        atexit { StepProfile.shared.report() }
        return profile
    }()
    private let lock = NSLock()
    /// Samples in nanoseconds per key, and the order keys were first seen in.
    private var samples: [String: [UInt64]] = [:]
    private var keys: [String] = []

    func record(_ step: Step, since start: UInt64, backward: Bool = false) {
        let elapsed = DispatchTime.now().uptimeNanoseconds - start
        var kind = (backward ? "backward " : "") + step.op.kind
        if StepProfile.perStep { kind += " \(step.outputs.first ?? "")" }
        lock.lock()
        defer { lock.unlock() }
        if samples[kind] == nil { keys.append(kind) }
        samples[kind, default: []].append(elapsed)
    }

    func report() {
        lock.lock()
        defer { lock.unlock() }
        var lines: [String] = []
        if StepProfile.perStep {
            var minimum = 0.0, median = 0.0
            for key in keys {
                let sorted = samples[key, default: []].sorted()
                let low = Double(sorted[0]) / 1e6, middle = Double(sorted[sorted.count / 2]) / 1e6
                minimum += low
                median += middle
                lines.append("\(key): min \(String(format: "%.3f", low)) ms, median \(String(format: "%.3f", middle)) ms")
            }
            lines.append("sum of steps: min \(String(format: "%.2f", minimum)) ms, median \(String(format: "%.2f", median)) ms")
        } else {
            let totals = samples.mapValues { ($0.reduce(0, +), $0.count) }
            for (kind, total) in totals.sorted(by: { $0.value.0 > $1.value.0 }) {
                lines.append("\(kind): \(Double(total.0) / 1e6) ms over \(total.1) steps")
            }
        }
        FileHandle.standardError.write(lines.map { $0 + "\n" }.joined().data(using: .utf8)!)
    }
}
