/// The sizes a resampling plan goes between: a source of `width` x `height` to a destination of
/// `toWidth` x `toHeight`, every side at least 1.
public struct ResamplingSizes: Hashable, Sendable {
    /// Source size.
    public let width: Int, height: Int
    /// Destination size.
    public let toWidth: Int, toHeight: Int

    /// The sizes of a resampling from `width` x `height` to `toWidth` x `toHeight`.
    public init(width: Int, height: Int, toWidth: Int, toHeight: Int) {
        precondition(width > 0 && height > 0 && toWidth > 0 && toHeight > 0,
                     "resampling \(width)x\(height) to \(toWidth)x\(toHeight)")
        self.width = width
        self.height = height
        self.toWidth = toWidth
        self.toHeight = toHeight
    }
}

/// A resampling worked out once for a pair of sizes, so that each use is just arithmetic.
public protocol ResamplingPlan: Sendable {
    /// The sizes the plan goes between.
    var sizes: ResamplingSizes { get }
    /// The plan for `sizes`.
    init(_ sizes: ResamplingSizes)
}

extension ResamplingPlan {
    /// The plan from `width` x `height` to `toWidth` x `toHeight`.
    public init(width: Int, height: Int, toWidth: Int, toHeight: Int) {
        self.init(ResamplingSizes(width: width, height: height, toWidth: toWidth, toHeight: toHeight))
    }

    /// Source width.
    public var width: Int { sizes.width }
    /// Source height.
    public var height: Int { sizes.height }
    /// Destination width.
    public var toWidth: Int { sizes.toWidth }
    /// Destination height.
    public var toHeight: Int { sizes.toHeight }
}

/// Resampling plans by size, made once: frames rarely change size, so a run makes each plan once
/// instead of once per frame.
public struct PlanCache<Plan: ResamplingPlan>: Sendable {
    private var plans: [ResamplingSizes: Plan] = [:]

    /// An empty cache.
    public init() {}

    /// The plan from `width` x `height` to `toWidth` x `toHeight`.
    public mutating func plan(width: Int, height: Int, toWidth: Int, toHeight: Int) -> Plan {
        let sizes = ResamplingSizes(width: width, height: height, toWidth: toWidth, toHeight: toHeight)
        if let plan = plans[sizes] { return plan }
        // A source whose frame size keeps changing must not grow the cache without bound.
        if plans.count >= 16 { plans.removeAll() }
        let plan = Plan(sizes)
        plans[sizes] = plan
        return plan
    }
}
