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
    let silence: Int64

    /// Per flow-table slot: the flow it tracks and its current exchange (no allocation per flow).
    struct Slot {
        var flowID: UInt64 = 0
        var last: Int64 = 0
        var start: Int64 = 0
        var bytes: UInt32 = 0
        var frame: UInt64 = 0
        /// 0: one exchange so far (not judged yet); 1: followed (a device's flow to a non-local endpoint);
        /// 2: not followed (not a device's, exempt port, over budget, or already raised).
        var state: UInt8 = 0
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
        silence = Int64((c.heartbeat.silence * 1e9).rounded())
    }

    /// What the engine answers when a flow's second exchange begins: whether to follow it, and for which pair.
    public typealias Eligibility = () -> DetectionEngine.Pair?

    /// A packet with `bytes` of payload in the flow in `slot`. Returns the exchange series when a new exchange has
    /// begun and the flow is followed (the caller then scores it with `judge`).
    public mutating func payload(
        slot: Int32, flowID: UInt64, bytes: Int, at time: Timestamp, frame: UInt64, eligible: Eligibility
    ) -> Bool {
        let i = Int(slot)
        if i >= slots.count { slots += Array(repeating: Slot(), count: max(i + 1 - slots.count, slots.count, 64)) }
        let t = time.nanoseconds
        let n = UInt32(truncatingIfNeeded: min(bytes, Int(UInt32.max)))
        if slots[i].flowID != flowID {
            slots[i] = Slot(flowID: flowID, last: t, start: t, bytes: n, frame: frame, state: 0)
            return false
        }
        if slots[i].state == 2 { return false }
        let gap = Timestamp.saturatingDifference(t, slots[i].last)
        if gap < silence {
            slots[i].bytes &+= n
            if t > slots[i].last { slots[i].last = t }
            return false
        }
        // A new exchange: the one before it is complete.
        let done = slots[i]
        slots[i].start = t
        slots[i].last = t
        slots[i].bytes = n
        slots[i].frame = frame
        if done.state == 0 {
            guard eligible() != nil, budget.take(TableBudget.Cost.beaconSeries) else {
                slots[i].state = 2
                return false
            }
            slots[i].state = 1
        }
        return append(flowID, start: done.start, size: done.bytes, frame: done.frame)
    }

    /// Adds a completed exchange to a followed flow's series; true when the series is long enough to judge.
    private mutating func append(_ flowID: UInt64, start: Int64, size: UInt32, frame: UInt64) -> Bool {
        let c = configuration, budget = self.budget
        func add(_ s: inout Series) -> Bool {
            if s.starts.count >= c.maximumExchanges {
                s.starts.removeFirst()
                s.sizes.removeFirst()
                s.frames.removeFirst()
            } else if !budget.take(TableBudget.Cost.beaconContact) {
                return false
            }
            s.starts.append(Timestamp(nanoseconds: start))
            s.sizes.append(Double(size))
            s.frames.append(frame)
            s.total += 1
            let n = s.starts.count
            return n >= beacons.minimumContacts && (n < c.maximumExchanges || s.total % 16 == 0)
        }
        return add(&series[flowID, default: Series()])
    }

    /// Scores a followed flow's exchanges; an alert when they are a heartbeat (and the pair has none yet).
    public mutating func judge(_ f: Flow, pair: DetectionEngine.Pair, foreign: Bool, destination: GeoInfo?, into alerts: inout [Alert]) {
        guard let s = series[f.id], !raised.contains(pair) else { return }
        let b = beacons
        guard let score = BeaconScore(times: s.starts.map(\.secondsDouble), configuration: b), score.isBeacon(b) else { return }
        let sizes = SizeScore(s.sizes)
        guard sizes.deviation <= configuration.maximumSizeDispersion * sizes.median else { return }
        guard budget.firstTime(pair, in: &raised, cost: TableBudget.Cost.beaconSeries) else { return }
        stop(f.id)
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

    /// The flow in `slot` ended: its last exchange is complete (judged by the caller when this returns true).
    public mutating func flowEnded(slot: Int32, flowID: UInt64) -> Bool {
        let i = Int(slot)
        guard i < slots.count, slots[i].flowID == flowID else { return false }
        defer { slots[i] = Slot() }
        guard slots[i].state == 1 else { return false }
        return append(flowID, start: slots[i].start, size: slots[i].bytes, frame: slots[i].frame)
    }

    /// Forgets a flow's series (ended, or raised) and gives back what it took.
    public mutating func stop(_ flowID: UInt64) {
        guard let gone = series.removeValue(forKey: flowID) else { return }
        budget.give(TableBudget.Cost.beaconSeries + gone.starts.count * TableBudget.Cost.beaconContact)
    }

    /// Marks the flow in `slot` as not followed any more.
    mutating func ignore(slot: Int32, flowID: UInt64) {
        let i = Int(slot)
        if i < slots.count, slots[i].flowID == flowID { slots[i].state = 2 }
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
