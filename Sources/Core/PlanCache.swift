/// Resampling plans by size, made once: frames rarely change size, so a run makes each plan once
/// instead of once per frame.
public struct PlanCache<Plan: Sendable>: Sendable {
    private struct Sizes: Hashable {
        var width: Int, height: Int, toWidth: Int, toHeight: Int
    }

    private var plans: [Sizes: Plan] = [:]
    private let make: @Sendable (_ width: Int, _ height: Int, _ toWidth: Int, _ toHeight: Int) -> Plan

    /// A cache making missing plans with `make`.
    public init(_ make: @escaping @Sendable (_ width: Int, _ height: Int, _ toWidth: Int, _ toHeight: Int) -> Plan) {
        self.make = make
    }

    /// The plan from `width` x `height` to `toWidth` x `toHeight`.
    public mutating func plan(width: Int, height: Int, toWidth: Int, toHeight: Int) -> Plan {
        let sizes = Sizes(width: width, height: height, toWidth: toWidth, toHeight: toHeight)
        if let plan = plans[sizes] { return plan }
        // A source whose frame size keeps changing must not grow the cache without bound.
        if plans.count >= 16 { plans.removeAll() }
        let plan = make(width, height, toWidth, toHeight)
        plans[sizes] = plan
        return plan
    }
}

extension PlanCache where Plan == BilinearResampling {
    /// Half-pixel bilinear plans (OpenCV INTER_LINEAR).
    public static var bilinear: PlanCache { PlanCache { BilinearResampling(width: $0, height: $1, toWidth: $2, toHeight: $3) } }
}

extension PlanCache where Plan == AreaResampling {
    /// Area plans (OpenCV INTER_AREA).
    public static var area: PlanCache { PlanCache { AreaResampling(width: $0, height: $1, toWidth: $2, toHeight: $3) } }
}
