public import SiphonCore
public import SiphonFlows
public import SiphonGeo

/// Thresholds of in-flow beaconing: a heartbeat inside one long-lived connection (what RATs such as AsyncRAT,
/// QuasarRAT or DcRat keep open to their server), judged with the same median/MAD scoring as contact series.
public struct HeartbeatConfiguration: Sendable {
    /// Silence (no payload either way) after which the next payload starts a new exchange. A ping and its answer,
    /// milliseconds apart, make one exchange; the next ping, seconds later, another.
    public var silence = 1.0
    /// Exchanges kept per flow (the most recent): enough for the median of a heartbeat, bounded for a flow of days.
    public var maximumExchanges = 64
    /// Largest dispersion of the exchanges' sizes (bytes both ways), as median absolute deviation over median, for
    /// them to be "of similar size". A heartbeat carries the same few fields each time; interactive use does not.
    public var maximumSizeDispersion = 0.25
    public init() {}
}

/// `beaconing` inside one flow: per TCP or UDP flow of a device to a non-local endpoint, the exchanges (payload
/// after at least `silence` of none, both ways counted together) are a series; periodic exchanges of similar size
/// are a heartbeat. Scored with `BeaconScore` on their start times (same minimum contacts, period and dispersion as
/// the contact series) plus the size test; raised once per device × endpoint, while the flow is still open (a live
/// capture learns of it at the sixth beat, not when the connection ends hours later).
public struct HeartbeatDetector {
    public let configuration: HeartbeatConfiguration
    public let beacons: BeaconConfiguration
    public let exemptPorts: Set<UInt16>

    /// Per flow-table slot: the flow it tracks and its current exchange (no allocation per flow). Touched only when
    /// an exchange begins (the flow table decides that on the flow's own record: `FlowTable.beganExchange`) and when
    /// the flow ends, not for every packet.
    struct Slot {
        enum State: UInt8 {
            /// One exchange so far: not decided yet.
            case first
            /// A device's flow to a non-local endpoint, off the exempt ports: its exchanges are kept.
            case followed
            /// Not a device's, an exempt port, over budget, or its pair already raised.
            case ignored
        }
        var flowID: UInt64 = 0
        var start: Int64 = 0
        /// The flow's payload bytes (both ways) before the exchange's first packet.
        var payloadBefore: UInt64 = 0
        var frame: UInt64 = 0
        var state = State.first
    }
    private var slots: [Slot] = []

    /// The completed exchanges of a followed flow: start times, sizes, first packets.
    struct Series {
        var starts: [Timestamp] = []
        var sizes: [Double] = []
        var frames: [UInt64] = []
        var total = 0
    }
    private var series: [UInt64: Series] = [:]
    /// Device × endpoint pairs already raised (one alert each: a RAT that reconnects keeps its heartbeat).
    private var raised: Set<DetectionEngine.Pair> = []
    /// Shared with the other detectors' tables (`DetectionEngine.tableBudget`).
    var budget = TableBudget()

    public init(_ c: DetectionConfiguration) {
        configuration = c.heartbeat
        beacons = c.beacons
        exemptPorts = c.noDNSExemptPorts
    }

    /// An exchange of the flow in `slot` begins at `time` (its first payload, or the first after `silence` of
    /// none: `FlowTable.beganExchange`), its first packet `frame`; `payloadBefore` is the flow's payload bytes both
    /// ways before that packet, so the exchange before it carried `payloadBefore` less what the flow had when it
    /// began. When the flow's second exchange begins, `flow` gives its record and `follows` says whether it is a
    /// device's flow to a non-local endpoint; neither is asked for otherwise. True when a followed flow's series is
    /// due to be judged (`judge`).
    public mutating func exchangeBegins(
        slot: Int32, flowID: UInt64, at time: Timestamp, payloadBefore: UInt64, frame: UInt64, flow: () -> Flow,
        follows: (Flow) -> Bool
    ) -> Bool {
        let i = Int(slot), t = time.nanoseconds
        if i >= slots.count { slots += Array(repeating: Slot(), count: max(i + 1 - slots.count, slots.count, 64)) }
        if slots[i].flowID != flowID {
            slots[i] = Slot(flowID: flowID, start: t, payloadBefore: payloadBefore, frame: frame)
            return false
        }
        if slots[i].state == .ignored { return false }
        // A new exchange: the one before it is complete.
        let done = slots[i]
        slots[i].start = t
        slots[i].payloadBefore = payloadBefore
        slots[i].frame = frame
        if done.state == .first {
            let f = flow()
            guard !exemptPorts.contains(f.serverPort), follows(f), budget.take(TableBudget.Cost.beaconSeries) else {
                slots[i].state = .ignored
                return false
            }
            slots[i].state = .followed
            series[flowID] = Series()
        }
        return append(flowID, start: done.start, size: payloadBefore &- done.payloadBefore, frame: done.frame)
    }

    /// Adds a completed exchange to a followed flow's series; true when the series is due to be judged: at every
    /// exchange from the minimum to the 16th, then at every 8th (scoring sorts the series: a flow of days would
    /// otherwise pay it at every exchange).
    private mutating func append(_ flowID: UInt64, start: Int64, size: UInt64, frame: UInt64) -> Bool {
        let c = configuration, minimum = beacons.minimumContacts, budget = self.budget
        func add(_ s: inout Series) -> Bool {
            if s.starts.count >= c.maximumExchanges {
                s.starts.removeFirst()
                s.sizes.removeFirst()
                s.frames.removeFirst()
            } else if !budget.take(TableBudget.Cost.heartbeatExchange) {
                return false
            }
            s.starts.append(Timestamp(nanoseconds: start))
            s.sizes.append(Double(size))
            s.frames.append(frame)
            s.total += 1
            return s.starts.count >= minimum && (s.total <= 16 || s.total % 8 == 0)
        }
        guard series[flowID] != nil else { return false }
        return add(&series[flowID]!)
    }

    /// Scores a followed flow's exchanges; an alert when they are a heartbeat (and the pair has none yet).
    public mutating func judge(
        _ f: Flow, slot: Int32, pair: DetectionEngine.Pair, foreign: Bool, destination: GeoInfo?, into alerts: inout [Alert]
    ) {
        guard let s = series[f.id] else { return }
        // Raised already (by another flow of the pair): this one need not be followed any more.
        if raised.contains(pair) { return ignore(f.id, slot: slot) }
        let b = beacons
        guard let score = BeaconScore(times: s.starts.map(\.secondsDouble), configuration: b), score.isBeacon(b) else { return }
        let sizes = SizeScore(s.sizes)
        guard sizes.deviation <= configuration.maximumSizeDispersion * sizes.median else { return }
        guard budget.firstTime(pair, in: &raised, cost: TableBudget.Cost.raisedKey) else { return }
        ignore(f.id, slot: slot)
        let rounded = (score.medianInterval * 10).rounded() / 10
        var frames = zip(s.frames, s.starts).filter { $0.0 != 0 }.map { FrameRef(number: $0.0, timestamp: $0.1, interface: f.interface) }
        if frames.count > 64 { frames = Array(frames.prefix(32) + frames.suffix(32)) }
        let device = f.clientAddress, endpoint = f.serverAddress
        let port = f.serverPort, transport = f.key.ipProtocol == 6 ? "TCP" : "UDP"
        var alert = Alert(
            category: .beaconing, rule: "siphon.beaconing.in-flow", severity: foreign ? .medium : .low,
            text: .deferred({
                "\(device) exchanges data with \(endpoint) every \(rounded) s inside one \(transport) connection to port \(port) "
                    + "(\(score.contacts) exchanges of about \(Int(sizes.median)) bytes): a heartbeat"
            }),
            timestamp: f.end, flow: f, device: device, deviceID: pair.device, destination: destination, evidence: [
                ("kind", .string("in-flow")), ("target", .string(endpoint.description)),
                ("contacts", .int(score.contacts)), ("median_interval_s", .double(score.medianInterval)),
                ("mad_s", .double(score.deviation)), ("regular_fraction", .double(score.regularFraction)),
                ("median_exchange_bytes", .int(Int(sizes.median))), ("exchange_bytes_mad", .double(sizes.deviation)),
                ("flow_start", .time(f.start)),
                ("first_contact", .time(s.starts.min() ?? f.start)), ("last_contact", .time(s.starts.max() ?? f.end)),
            ])
        alert.frames = frames.sorted()
        alerts.append(alert)
    }

    /// The flow in `slot` ended with `payload` bytes both ways: its last exchange is complete (judged by the
    /// caller when this returns true, then `stop`ped).
    public mutating func flowEnded(slot: Int32, flowID: UInt64, payload: UInt64) -> Bool {
        let i = Int(slot)
        guard i < slots.count, slots[i].flowID == flowID else { return false }
        defer { slots[i] = Slot() }
        guard slots[i].state == .followed else { return false }
        return append(flowID, start: slots[i].start, size: payload &- slots[i].payloadBefore, frame: slots[i].frame)
    }

    /// Forgets a flow's series and gives back what it took.
    public mutating func stop(_ flowID: UInt64) {
        guard let gone = series.removeValue(forKey: flowID) else { return }
        budget.give(TableBudget.Cost.beaconSeries + gone.starts.count * TableBudget.Cost.heartbeatExchange)
    }

    /// Stops following the flow in `slot` (its series goes).
    private mutating func ignore(_ flowID: UInt64, slot: Int32) {
        stop(flowID)
        let i = Int(slot)
        if i < slots.count, slots[i].flowID == flowID { slots[i].state = .ignored }
    }
}

/// The median of exchange sizes and their median absolute deviation.
struct SizeScore {
    var median: Double
    var deviation: Double
    init(_ sizes: [Double]) {
        var s = sizes
        let m = s.isEmpty ? 0 : BeaconScore.medianInPlace(&s)
        median = m
        var d = sizes.map { abs($0 - m) }
        deviation = d.isEmpty ? 0 : BeaconScore.medianInPlace(&d)
    }
}
