import Core

/// One stage of the pipeline: an actor owning one resource (a decoder, a converter, a network,
/// an overlay, an encoder), every job of it run on a thread of its own.
///
/// The resource never leaves the actor, so the compiler checks that only the stage's thread
/// touches it; it may block there without holding up the other stages.
actor Stage<Resource> {
    private var resource: Resource
    private let executor: ThreadExecutor

    /// The actor's jobs run on the stage's own thread.
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// A stage owning `resource`, its thread named `camvid.NAME`.
    init(_ resource: sending Resource, name: String) {
        self.resource = resource
        executor = ThreadExecutor(name: "camvid.\(name)")
    }

    deinit { executor.shutdown() }

    /// Moves items from `input` to `output` through `transform` (which may use the resource), in
    /// order, `batchSize` frames at most at a time (taking only what is already waiting beyond
    /// the first item).
    ///
    /// An upstream failure passes on behind everything already sent; a failure here stops the
    /// stages before (closing `input`) and reaches the stages after (behind what was sent).
    /// `ending` runs once on the resource before the output ends, however it ends; its failure
    /// ends the output when nothing else failed.
    func relay<In: Sendable, Out: Sendable>(
        from input: BoundedChannel<In>, to output: BoundedChannel<Out>, batchSize: Int,
        counting isFrame: @escaping @Sendable (In) -> Bool,
        ending: @Sendable (inout Resource) throws -> Void = { _ in },
        _ transform: @Sendable (inout Resource, [In]) throws -> [Out]
    ) async {
        /// Ends the output with `failure`, or with the failure of `ending`, or normally.
        func end(_ failure: Error?) {
            do {
                try ending(&resource)
            } catch {
                output.finish(throwing: failure ?? error)
                return
            }
            output.finish(throwing: failure)
        }
        while true {
            let items: [In]
            do {
                items = try await input.next(upTo: batchSize, counting: isFrame)
            } catch {
                end(error)
                return
            }
            if items.isEmpty {
                end(nil)
                return
            }
            do {
                let results: [Out]
                do {
                    results = try transform(&resource, items)
                } catch let partial as PartialResult<Out> {
                    for result in partial.completed { try await output.send(result) }
                    throw partial.failure
                }
                for result in results { try await output.send(result) }
            } catch is ChannelClosedError {
                input.close()
                try? ending(&resource)
                return
            } catch {
                input.close()
                end(error)
                return
            }
        }
    }

    /// Runs `body` on the resource.
    func use<T: Sendable>(_ body: @Sendable (inout Resource) throws -> T) rethrows -> T {
        try body(&resource)
    }
}

/// A stage's failure on a batch, with the results of the items before the fault.
struct PartialResult<Out: Sendable>: Error {
    let completed: [Out]
    let failure: Error
}
