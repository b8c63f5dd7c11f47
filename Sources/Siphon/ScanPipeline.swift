@_exported public import SiphonCapture
@_exported public import SiphonCore
@_exported public import SiphonDecode
@_exported public import SiphonDetect
@_exported public import SiphonApp
@_exported public import SiphonFlows
@_exported public import SiphonGeo
@_exported public import SiphonIntel
@_exported public import SiphonReport

/// What a scan is asked to do.
public struct ScanOptions: Sendable {
    /// A tcpdump-style BPF filter applied to every packet.
    public var filter: String?
    public var flows = FlowTableConfiguration()
    public var reassembly = ReassemblyConfiguration()
    public var fragments = FragmentConfiguration()
    /// IPv4 header, TCP and UDP checksum validation (packets with bad ones are dropped, as their receiver would).
    public var checksums = ChecksumValidation.auto
    public var streams = StreamRecorder.Options()
    /// Country and ASN data for `dest_geo` (nil: none).
    public var geo: GeoDatabase?
    /// Indicators matched against each flow's responder address and names (`ioc` in flow events).
    public var intel: IndicatorSet?
    /// HTTP body bytes kept per message for the detectors (identifiers in uploads).
    public var httpBodyDepth = 4096
    /// Detector thresholds (nil: no detection, no `alert` events).
    public var detection: DetectionConfiguration? = DetectionConfiguration()
    /// The devices under test: addresses, prefixes and MAC addresses (`--device`). Empty: every host of the
    /// captured link that initiates traffic, infrastructure (gateways, routers, DHCP servers, resolvers) left out.
    public var devices: [DeviceSelector] = []
    /// Hosts never taken for devices (`--not-device`).
    public var excludedDevices: [DeviceSelector] = []
    /// Declarative rules (from the rule pack) evaluated on every ended flow of a device.
    public var rules: [Rule] = []
    /// Whether the per-device verdicts are built at the end even when no events are written (the terminal summary
    /// and the HTML report need them; `verdict` events always do).
    public var verdicts = true
    /// Open flows are judged every this much capture time (`foreign-endpoint`, `ioc-match` for flows open at least
    /// that long), so a connection held open is known before it ends; nil: flows are judged when they end only.
    public var openFlowInterval: Duration? = .seconds(60)
    /// Whether a second thread reads the capture ahead of the pipeline (a block of packets at a time; only when
    /// more than one processor is online). Events are the same either way.
    public var readAhead = false
    /// The memory ceiling (`--memory-limit`) the tables share; each limit above that is larger than its share is
    /// lowered to it (`MemoryBudget`).
    public var memory = MemoryBudget()
    /// Whether the pipeline's tables are freed when the scan returns. False for a process that exits after this
    /// scan (`siphon scan`'s last capture): its memory goes back with the process, as clang's `-disable-free`
    /// leaves it, instead of being released a flow, a string and an array at a time (on big.pcap 64 M
    /// instructions, 1.3 % of the scan). Files are closed and flushed by the exit either way.
    public var freesStateAtEnd = true
    public init() {}
}

/// One pipeline: packets in, events out as soon as they are known. Capture time is its only clock; it holds no
/// global state, so several can run in one process (one per core).
///
/// Hot path: `process(_:)` decodes into a reused `DecodedPacket`, updates the flow table, and writes the events of
/// flows that ended; nothing is allocated per packet.
public final class ScanPipeline {
    public let capture: String
    public private(set) var statistics = CaptureStatistics()
    /// Bytes sent and received and flows per host, from ended flows (at most `maximumHostTotals` hosts; later
    /// ones are counted in `hostTotalsRefused`).
    public private(set) var hosts: [IPAddress: HostTotals] = [:]
    private let maximumHostTotals: Int
    private var hostTotalsRefused: UInt64 = 0
    private let memoryLimit: Int
    public let flows: FlowTable
    public let reassembler: TCPReassembler<StreamRecorder>
    public let recorder: StreamRecorder
    public let fragments: FragmentReassembler
    /// Tunnels the capture carried (GTP-U), with their inner flows' discriminators.
    public let tunnels = TunnelTable()
    /// The GSM air interface (GSMTAP): identities, calls, SMS, USSD.
    public let cellular = CellularLayer()
    /// What the detectors' and cellular tables hold (`MemoryBudget.tables`), shared by all of them.
    private let tableBudget: TableBudget
    private let output: EventOutput?
    private let geo: GeoDatabase?
    private let intel: IndicatorSet?
    /// The detectors and the device x endpoint ledger (nil when detection is off).
    public let detection: DetectionEngine?
    /// Per device, once the capture is finished.
    public private(set) var verdicts: [DeviceVerdict] = []
    /// The link's infrastructure and declared devices, once the capture is finished.
    public private(set) var link: LinkSummary?
    private let wantVerdicts: Bool
    // Packets are counted per link type in a run-length way: pcapng files switch rarely, pcap files never.
    private var currentLinkType = LinkType(rawValue: UInt32.max)
    private var currentLinkTypeCount: UInt64 = 0
    /// Whether checksums are verified now (`auto` may turn it off after its first 1,000 judged checksums: an IPv4
    /// TCP packet counts twice, header and segment).
    private var validatingChecksums: Bool
    private var checksumsJudged: UInt64 = 0
    /// Flows created so far, as last seen (a change: the packet just handled began a flow).
    private var knownFlows: UInt64 = 0
    /// The fragment whose datagram `handle` is given (nil for a whole packet).
    private var fragmentOf: DecodedPacket?
    /// The sender of the last packet that began a flow.
    private var lastSender: (UInt64, IPAddress) = (0, IPAddress(ipv4: 0))
    /// Open flows are judged when capture time reaches this (ns; 0 until the first packet sets it).
    private var nextOpenFlowCheck: Int64 = 0
    private let openFlowInterval: Int64
    /// Whether packets name their interface (pcapng files, live captures): frame references then carry it.
    public var recordsInterfaces = false
    /// The packet being processed, as frame references name it.
    private var currentFrame = FrameRef.none
    /// Which flow each frame went to, when asked for (`siphon extract`, case files).
    public var frameLog: FrameFlowLog?

    private func switchLinkType(_ linkType: LinkType) {
        if currentLinkTypeCount > 0 { statistics.linkTypes[currentLinkType.rawValue, default: 0] &+= currentLinkTypeCount }
        currentLinkType = linkType
        currentLinkTypeCount = 0
    }

    public init(capture: String, options: ScanOptions = ScanOptions(), output: EventOutput?) {
        self.capture = capture
        self.output = output
        geo = options.geo
        intel = options.intel
        wantVerdicts = options.verdicts
        openFlowInterval = options.detection == nil ? 0 : options.openFlowInterval?.nanoseconds ?? 0
        validatingChecksums = options.checksums != .off
        statistics.checksumMode = options.checksums
        detection = options.detection.map { DetectionEngine(
                configuration: $0, devices: options.devices, excluded: options.excludedDevices, rules: options.rules, geo: options.geo) }
        let budget = options.memory
        memoryLimit = budget.limit
        maximumHostTotals = budget.hostTotals
        if let detection {
            detection.maximumAlertsKept = budget.alerts
            detection.maximumLedgerPairs = budget.ledgerPairs
            detection.maximumLearnedIdentities = budget.learnedIdentities
            detection.link.maximumAddressRecords = budget.linkAddresses
            detection.intel = options.intel
        }
        tunnels.maximumTunnels = budget.tunnels
        var flowConfiguration = options.flows
        if let detection = options.detection {
            flowConfiguration.ttlLimit = detection.ttlLimit
            // In-flow beaconing's exchanges are told apart by the flow table, on the record each packet updates.
            if detection.on(.beaconing) { flowConfiguration.exchangeSilence = .nanoseconds(Int64((detection.heartbeat.silence * 1e9).rounded())) }
        }
        flowConfiguration.maximumFlows = min(flowConfiguration.maximumFlows, budget.flows)
        flows = FlowTable(configuration: flowConfiguration)
        if let detection, detection.configuration.on(.identifierLeak) {
            recorder = StreamRecorder(
                options: options.streams, flows: flows, identifiers: detection.identifierScanner,
                isDevice: { [unowned detection] in detection.isDevice($0) && !detection.isLocal($0.serverAddress) })
        } else {
            recorder = StreamRecorder(options: options.streams, flows: flows, identifiers: nil, isDevice: nil)
        }
        recorder.app.httpBodyDepth = options.httpBodyDepth
        // One budget for the detectors' and the cellular bench's own tables (`MemoryBudget.tables`).
        tableBudget = TableBudget(limit: budget.tables)
        recorder.app.tableBudget = tableBudget
        recorder.app.maximumParserBytes = budget.parsers
        cellular.tableBudget = tableBudget
        detection?.tableBudget = tableBudget
        recorder.app.names.maximumAddresses = min(recorder.app.names.maximumAddresses, budget.nameMapAddresses)
        var fragmentConfiguration = options.fragments
        fragmentConfiguration.maximumBuffered = min(fragmentConfiguration.maximumBuffered, budget.fragments)
        fragments = FragmentReassembler(configuration: fragmentConfiguration)
        var reassembly = options.reassembly
        reassembly.maximumBufferedTotal = min(reassembly.maximumBufferedTotal, budget.reassemblyBuffered)
        reassembly.retainedTotal = min(reassembly.retainedTotal, budget.reassemblyRetained)
        reassembler = TCPReassembler(configuration: reassembly, consumer: recorder)
    }

    /// Processes one captured packet. `next` and `afterNext`: the annotations `precheck` made for the two packets
    /// after this one, when the reader already has them: the flow index entry of the second and the flow record
    /// and reassembly state of the first are prefetched while this packet is handled (a two-stage software
    /// pipeline: the index entry, prefetched a packet earlier, is in cache when the record's slot is read from it).
    public func process(_ captured: CapturedPacket, next: UInt64 = 0, afterNext: UInt64 = 0) {
        if afterNext & Self.prechecked != 0 { flows.prefetchIndex(hashTag: afterNext >> 32) }
        if next & Self.prechecked != 0 {
            let slot = flows.prefetch(hashTag: next >> 32)
            if slot >= 0 { reassembler.prefetch(slot: slot) }
        }
        statistics.packets &+= 1
        statistics.wireBytes &+= UInt64(captured.originalLength)
        statistics.capturedBytes &+= UInt64(captured.bytes.count)
        if captured.isTruncated { statistics.truncatedBySnaplen &+= 1 }
        if statistics.packets == 1 { statistics.firstTimestamp = captured.timestamp }
        if statistics.lastTimestamp.map({ captured.timestamp > $0 }) ?? true { statistics.lastTimestamp = captured.timestamp }
        if captured.linkType != currentLinkType { switchLinkType(captured.linkType) }
        currentLinkTypeCount &+= 1
        currentFrame = FrameRef(
            number: captured.frame, timestamp: captured.timestamp,
            interface: recordsInterfaces ? Int32(truncatingIfNeeded: captured.interfaceID) : -1)
        reassembler.frame = currentFrame
        if captured.linkType == .gsmtapUm {
            // GSMTAP without UDP: no IP, no flow; decoded when GSMTAP parses.
            if gsmtap(captured.bytes, timestamp: captured.timestamp) {
                statistics.decoded &+= 1
            } else {
                statistics.undecodable[UndecodableReason(layer: .link, what: "not-gsmtap"), default: 0] &+= 1
            }
            return
        }

        // A local value: decoded in place (or copied once from the reader thread's side record), then lent to the
        // flow table and the checksum without copies (a value reached through a pointer or an inout parameter is
        // copied for each call that borrows it).
        var packet: DecodedPacket
        if let side = captured.side, captured.annotation & Self.prechecked != 0 {
            packet = side.load(as: DecodedPacket.self)
        } else {
            packet = DecodedPacket()
            PacketDecoder.decode(captured.bytes, linkType: captured.linkType, into: &packet)
        }
        count(packet)
        if packet.tunnel.kind != .none { packet.tunnel.discriminator = tunnelled(packet, captured) }
        if packet.network == .arp, let detection, let c = LinkDiscovery.arp(captured.bytes, packet) {
            detection.link.observe(mac: c.mac, address: c.address, at: captured.timestamp, source: .arp)
        }
        // Verdicts only from an annotation that has them (`precheck` without checksums leaves them out).
        let verdicts = Self.prechecked | Self.withChecksums
        let precomputed = captured.annotation & verdicts == verdicts ? UInt32(truncatingIfNeeded: captured.annotation) : 0
        if validatingChecksums, packet.network == .ipv4, packet.error == nil {
            // A receiver drops a datagram (or fragment) whose IPv4 header checksum is wrong before anything else.
            let status = precomputed != 0 ? ChecksumStatus(rawValue: UInt8(precomputed & 3))!
                : InternetChecksum.ipv4Header(captured.bytes, at: packet.networkOffset)
            tally(status, .ipv4)
            if status == .bad { return }
        }
        if packet.isFragment && packet.error == nil {
            frameLog?.fragment(packet, frame: captured.frame, at: captured.timestamp)
            // Fragments wait for their datagram; the rebuilt datagram goes on as one packet carrying their count.
            if let datagram = fragments.add(packet, bytes: captured.bytes, wireLength: captured.originalLength, timestamp: captured.timestamp) {
                datagram.packet.withUnsafeBytes { raw in
                    var inner = PacketDecoder.decode(raw, linkType: .raw)
                    if packet.tunnel.kind != .none && inner.tunnel.kind == .none {
                        // An inner packet's fragments, rebuilt: it stays in their tunnel.
                        inner.tunnel = packet.tunnel
                    } else if inner.tunnel.kind != .none {
                        // An outer datagram rebuilt from its fragments, carrying a tunnel: accounted now.
                        let known = tunnels.tunnels.count
                        inner.tunnel.discriminator = tunnels.record(
                            inner.tunnel, bytes: raw, wireLength: datagram.wireBytes, packets: datagram.fragments,
                            timestamp: captured.timestamp, frame: captured.frame)
                        if tunnels.tunnels.count != known { tunnelEndpoints(packet.sourceMAC, packet.destinationMAC) }
                        statistics.tunnelled &+= 1
                    }
                    inner.vlanCount = packet.vlanCount
                    inner.vlanIDs = packet.vlanIDs
                    inner.hasMACs = packet.hasMACs && inner.tunnel.kind == .none
                    inner.sourceMAC = packet.sourceMAC
                    inner.destinationMAC = packet.destinationMAC
                    // The rebuilt IPv6 header lost the extension headers of the first fragment (a routing header
                    // or Home Address option would change the checksum's addresses).
                    if inner.network == .ipv6 { inner.pseudoHeaderUncertain = true }
                    fragmentOf = packet
                    defer { fragmentOf = nil }
                    handle(inner, raw, timestamp: captured.timestamp, wireLength: datagram.wireBytes, packets: datagram.fragments)
                }
            }
            if fragments.conflictCount > writtenFragmentConflicts { writeFragmentConflicts() }
        } else {
            handle(packet, captured.bytes, timestamp: captured.timestamp, wireLength: captured.originalLength, packets: 1,
                   truncated: captured.isTruncated, precomputed: precomputed)
        }
        if !flows.ended.isEmpty { drainEndedFlows() }
        if openFlowsDue(captured.timestamp) { checkOpenFlows(at: captured.timestamp) }
    }

    /// A GSMTAP packet: its GSM messages go out as events and to the detectors. Returns whether it was GSMTAP.
    /// Never inlined: the per-packet path stays as small as it was without it.
    @discardableResult @inline(never)
    private func gsmtap(_ bytes: UnsafeRawBufferPointer, timestamp: Timestamp) -> Bool {
        let before = cellular.gsmtapPackets &+ cellular.truncated
        cellular.feed(bytes, timestamp: timestamp, frame: currentFrame)
        let events = cellular.takeEvents()
        for e in events {
            if let output { output.write(EventEncoder.cellular(e, capture: capture, geo: numberInfo)) }
            if let detection {
                detection.cellular(e, number: numberOf(e).flatMap(numberInfo))
                writeAlerts(flow: nil)
            }
        }
        return cellular.gsmtapPackets &+ cellular.truncated != before
    }

    /// The numbering plan and the home countries numbers are judged against.
    private var numbering: NumberingPlan? { NumberingPlan.embedded }
    private lazy var home: Set<String> = geo?.homeCountries ?? ["FR"]

    private func numberInfo(_ n: PhoneNumber) -> NumberInfo? {
        numbering?.classify(n.digits, international: n.isInternational, home: home)
    }

    private func numberOf(_ e: CellularEvent) -> PhoneNumber? {
        switch e.message {
        case .sms(let m, _, _): m.number
        case .callSetup(let n): n
        default: nil
        }
    }

    /// A packet that came out of a tunnel: the tunnel's accounts, and its exact discriminator for the flow key.
    /// Returns the discriminator the packet's flow key carries. Not inlined, and the packet borrowed, not inout:
    /// `process` keeps its packet in place for the common path.
    @inline(never)
    private func tunnelled(_ packet: borrowing DecodedPacket, _ captured: CapturedPacket) -> UInt32 {
        statistics.tunnelled &+= 1
        let known = tunnels.tunnels.count
        let d = tunnels.record(packet.tunnel, bytes: captured.bytes, wireLength: captured.originalLength,
                               timestamp: captured.timestamp, frame: captured.frame)
        if tunnels.tunnels.count != known { tunnelEndpoints(packet.sourceMAC, packet.destinationMAC) }
        return d
    }

    /// The link hosts at a new tunnel's ends (the last tunnel recorded) are core nodes (eNodeB, SGW, SGSN, GGSN),
    /// not devices. `packet`: the captured packet, for its link addresses.
    private func tunnelEndpoints(_ sourceMAC: UInt64, _ destinationMAC: UInt64) {
        guard let detection, sourceMAC != 0, let t = tunnels.tunnels.last else { return }
        detection.link.observe(mac: sourceMAC, address: t.first, at: currentFrame.timestamp)
        detection.link.observe(mac: destinationMAC, address: t.second, at: currentFrame.timestamp)
        detection.link.mark(mac: sourceMAC, .mobileCore)
        detection.link.mark(mac: destinationMAC, .mobileCore)
    }

    /// Whether open flows are to be judged at `time` (the first packet only sets the first check).
    @inline(__always)
    private func openFlowsDue(_ time: Timestamp) -> Bool { time.nanoseconds >= nextOpenFlowCheck && openFlowInterval > 0 }

    /// Judges the flows open for at least `openFlowInterval` (`DetectionEngine.flowOpen`), then sets the next check.
    private func checkOpenFlows(at now: Timestamp) {
        defer { nextOpenFlowCheck = now.adding(nanoseconds: openFlowInterval).nanoseconds }
        guard nextOpenFlowCheck != 0, let detection else { return }
        var open: [Flow] = []
        flows.forEachActive { _, f in
            if now.nanoseconds(since: f.start) >= openFlowInterval && (f.client.packets > 0 && f.server.packets > 0) {
                open.append(f)
            }
        }
        for f in open where detection.isDevice(f) && !detection.isLocal(f.serverAddress) {
            let names = recorder.app.names.names(for: f.serverAddress, before: f.start)
            let (destination, hit) = endpoint(f.serverAddress, names: names)
            detection.flowOpen(EndedFlow(
                flow: f, sent: Int(f.client.payloadBytes), received: Int(f.server.payloadBytes), resolvedNames: names,
                names: names, destination: destination, app: "unknown", indicator: hit))
            writeAlerts(flow: f)
        }
    }

    /// An endpoint's `dest_geo` (nil when local or without data) and the indicator its address or a name matched.
    private func endpoint(_ address: IPAddress, names: [String]) -> (GeoInfo?, Indicator?) {
        let g = geo.map { $0.lookup(address) }
        let hit = intel.flatMap { set in set.match(address: address) ?? names.lazy.compactMap { set.match(domain: $0) }.first }
        return (g?.scope == .local ? nil : g, hit)
    }

    /// The checksum a transport carries (nil: none Siphon verifies).
    @inline(__always)
    static func checksumLayer(_ t: TransportKind) -> ChecksumLayer? {
        switch t {
        case .tcp: .tcp
        case .udp: .udp
        case .icmp, .icmpv6: .icmp
        default: nil
        }
    }

    /// Set in an annotation `precheck` made.
    static let prechecked: UInt64 = 0x100
    /// Set when the annotation carries checksum verdicts.
    static let withChecksums: UInt64 = 0x200

    /// The read-ahead options that go with these functions: side records of a `DecodedPacket`'s size (`precheck`
    /// writes one there), and the checksums verified unless `checksums` is `.off`.
    /// `flowHashSeed`: the pipeline's flow table's (`FlowTableConfiguration.hashSeed`), for the prefetch hint.
    public static func readAheadOptions(checksums: ChecksumValidation, flowHashSeed: UInt64) -> ReadAheadOptions {
        // The side records hold decoded packets as raw bytes: only a type without references may be.
        precondition(_isPOD(DecodedPacket.self), "DecodedPacket must stay a plain value")
        return ReadAheadOptions(
            sideBytes: MemoryLayout<DecodedPacket>.size,
            inspect: { [verify = checksums != .off] in
                ScanPipeline.precheck($0, side: $1, checksums: verify, flowHashSeed: flowHashSeed)
            })
    }

    /// The checksum verdicts of a captured packet, computed in the read-ahead thread right after the packet was
    /// copied there (its bytes still in that core's cache), so that the pipeline does not read payloads only to sum
    /// them. The annotation: `prechecked` (0x100) when the packet decoded, `withChecksums` (0x200) when the
    /// verdicts are there; bits 0-1 the IPv4 header's `ChecksumStatus`, bits 2-3 the TCP/UDP/ICMP checksum's,
    /// under the conditions `process` and `handle` apply (decoded, not a fragment, not cut by the snapshot length);
    /// bits 32-63 the flow key's hash as the flow table's index keeps it (a prefetch hint).
    /// A pure function of the packet's bytes: the same verdicts `process` would compute.
    /// With a `side` record (`MemoryLayout<DecodedPacket>.size` bytes), the decoded packet is left there for
    /// `process`, which then does not decode it again (decoding in the capture thread, as Suricata's receive
    /// threads do). Offsets in it are relative to the packet's bytes, so it stays valid for the block's copy.
    /// Without `checksums` (`--checksums off`): the decoded packet and the flow hash only.
    public static func precheck(
        _ captured: CapturedPacket, side: UnsafeMutableRawPointer? = nil, checksums: Bool = true, flowHashSeed: UInt64
    ) -> UInt64 {
        guard let side else {
            var packet = DecodedPacket()
            PacketDecoder.decode(captured.bytes, linkType: captured.linkType, into: &packet)
            return verdicts(captured, packet, checksums: checksums, flowHashSeed: flowHashSeed)
        }
        // Decoded where the pipeline will load it: a plain value (no references), so its bytes can be stored and
        // loaded as they are, and decoding there spares the copy of a 240-byte value per packet.
        let packet = side.bindMemory(to: DecodedPacket.self, capacity: 1)
        packet.initialize(to: DecodedPacket())
        PacketDecoder.decode(captured.bytes, linkType: captured.linkType, into: &packet.pointee)
        return verdicts(captured, packet.pointee, checksums: checksums, flowHashSeed: flowHashSeed)
    }

    /// `precheck`'s annotation of a decoded packet.
    @inline(__always)
    private static func verdicts(
        _ captured: CapturedPacket, _ packet: borrowing DecodedPacket, checksums: Bool, flowHashSeed: UInt64
    ) -> UInt64 {
        guard packet.error == nil else { return 0 }
        var out = prechecked | (checksums ? withChecksums : 0)
        if checksums, packet.network == .ipv4 {
            out |= UInt64(InternetChecksum.ipv4Header(captured.bytes, at: packet.networkOffset).rawValue)
        }
        if checksums, !packet.isFragment, !captured.isTruncated, checksumLayer(packet.transport) != nil {
            out |= UInt64(InternetChecksum.transport(captured.bytes, packet).rawValue) << 2
        }
        // Bits 32-63: the flow's hash as the flow table's index keeps it (a prefetch hint for the pipeline).
        if let (key, _) = FlowKey.of(packet) { out |= (key.fastHash(seed: flowHashSeed) >> 32) << 32 }
        return out
    }

    @inline(__always)
    private func count(_ p: DecodedPacket) {
        switch p.network {
        case .ipv4: statistics.ipv4 &+= 1
        case .ipv6: statistics.ipv6 &+= 1
        case .arp: statistics.arp &+= 1
        case .none: break
        }
        if let error = p.error {
            statistics.undecodable[error.reason, default: 0] &+= 1
            return
        }
        statistics.decoded &+= 1
        switch p.transport {
        case .tcp: statistics.tcp &+= 1
        case .udp: statistics.udp &+= 1
        case .icmp, .icmpv6: statistics.icmp &+= 1
        case .other: statistics.otherIP &+= 1
        case .fragment: statistics.fragments &+= 1
        case .none: break
        }
    }

    /// Flow accounting, then TCP reassembly or UDP datagram delivery, for one packet or rebuilt datagram.
    @inline(__always)
    private func tally(_ status: ChecksumStatus, _ layer: ChecksumLayer) {
        switch status {
        case .unchecked: return
        case .valid: statistics.checksums[layer].valid &+= 1
        case .offloaded: statistics.checksums[layer].offloaded &+= 1
        case .bad: statistics.checksums[layer].bad &+= 1
        }
        checksumsJudged &+= 1
        if checksumsJudged == 1000, statistics.checksumMode == .auto {
            if statistics.checksums.bad * 10 > checksumsJudged {
                validatingChecksums = false
                statistics.checksumDisabledAfter = statistics.packets
            }
        }
    }

    @inline(__always)
    private func handle(
        _ packet: DecodedPacket, _ bytes: UnsafeRawBufferPointer, timestamp: Timestamp, wireLength: Int, packets: Int,
        truncated: Bool = false, precomputed: UInt32 = 0
    ) {
        var checksum = ChecksumStatus.unchecked
        // A frame cut by the snapshot length is not judged (lengths taken from the capture, as with segmentation
        // offload's zero IP length, would sum a part of the segment).
        if validatingChecksums, !truncated, packet.error == nil, let layer = Self.checksumLayer(packet.transport) {
            checksum = precomputed != 0 ? ChecksumStatus(rawValue: UInt8(precomputed >> 2 & 3))!
                : InternetChecksum.transport(bytes, packet)
            tally(checksum, layer)
        }
        guard let (slot, fromInitiator) = flows.process(
            packet, timestamp: timestamp, wireLength: wireLength, packets: packets, checksum: checksum, frame: currentFrame)
        else { return }
        if let frameLog {
            let flow = flows.flowID(at: slot)
            if let fragment = fragmentOf { frameLog.datagram(of: fragment, flow: flow) } else { frameLog.record(frame: currentFrame.number, flow: flow) }
        }
        // A flow's first packet tells which MAC address its sender uses (the rest of the link's picture comes from
        // ARP, NDP, DHCP and ended flows).
        if flows.createdCount != knownFlows {
            knownFlows = flows.createdCount
            if packet.tunnel.kind != .none { tunnels.flowStarted(discriminator: packet.tunnel.discriminator) }
            // The same sender as the last new flow's (a device opening connection after connection): known already.
            if packet.hasMACs, let detection, packet.sourceMAC != lastSender.0 || packet.source != lastSender.1 {
                lastSender = (packet.sourceMAC, packet.source)
                detection.link.observe(mac: packet.sourceMAC, address: packet.source, at: timestamp)
            }
        }
        if packet.transport == .icmpv6, checksum != .bad, let detection, let c = LinkDiscovery.ndp(bytes, packet) {
            detection.link.observe(mac: c.mac, address: c.address, at: timestamp, source: .ndp)
            if c.router { detection.link.mark(mac: c.mac, .router) }
        }
        if packet.transport == .icmp && packet.icmpType == 8 || packet.transport == .icmpv6 && packet.icmpType == 128,
           checksum != .bad, packet.payloadCaptured > 4, let detection {
            // Echo data after the identifier and sequence number: the ICMP tunnel detector's. The flow as seen from
            // the requester (an echo flow may have begun with a reply the capture caught first).
            let data = UnsafeRawBufferPointer(rebasing: bytes[(packet.payloadOffset + 4)..<(packet.payloadOffset + packet.payloadCaptured)])
            var flow = flows.flow(at: slot)
            if !fromInitiator { flow.initiatorIsA.toggle() }
            detection.echoRequest(data, flow: flow, timestamp: timestamp)
            if detection.hasNewAlerts { writeAlerts(flow: flow) }
        }
        guard packet.transport == .tcp || packet.transport == .udp, checksum != .bad else { return }
        recorder.now = timestamp
        defer { if !recorder.app.events.isEmpty { writeAppEvents() } }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[packet.payloadOffset..<(packet.payloadOffset + packet.payloadCaptured)])
        if packet.transport == .udp, packet.destinationPort == GSMTAPHeader.port || packet.sourcePort == GSMTAPHeader.port {
            // The base station and the host it reports to are the lab's radio network, not devices.
            if gsmtap(payload, timestamp: timestamp), packet.hasMACs, let detection {
                detection.link.mark(mac: packet.sourceMAC, .mobileCore)
                detection.link.mark(mac: packet.destinationMAC, .mobileCore)
            }
        }
        let flowID = flows.flowID(at: slot)
        if flows.beganExchange, let detection {
            let f = flows.flow(at: slot)
            if detection.exchangeBegins(
                slot: slot, flowID: flowID, at: timestamp,
                payloadBefore: (f.aToB.payloadBytes &+ f.bToA.payloadBytes) &- UInt64(packet.payloadLength),
                frame: currentFrame.number, flow: { f })
            { writeAlerts(flow: f) }
        }
        if packet.transport == .udp {
            recorder.datagram(payload, slot: slot, direction: fromInitiator ? 0 : 1, timestamp: timestamp, frame: currentFrame)
        } else {
            reassembler.segment(
                slot: slot, flowID: flowID, direction: fromInitiator ? 0 : 1,
                sequence: packet.tcp.sequence, flags: packet.tcp.flags.rawValue, acknowledgment: packet.tcp.acknowledgment,
                payload: payload, missing: packet.payloadLength - packet.payloadCaptured, timestamp: timestamp)
            if !recorder.conflicts.isEmpty { writeConflicts() }
        }
        if !recorder.identifierHits.isEmpty { writeIdentifierHits() }
    }

    private func writeIdentifierHits() {
        guard let detection else { return }
        for hit in recorder.identifierHits {
            let flow = flows.flow(at: hit.slot)
            guard flow.id == hit.flowID else { continue }
            detection.contextFrames = hit.frames
            defer { detection.contextFrames = [] }
            detection.identifiersFound(hit.matches, flow: flow, location: hit.location, timestamp: hit.timestamp)
            writeAlerts(flow: flow)
        }
        recorder.identifierHits.removeAll(keepingCapacity: true)
    }

    private var writtenFragmentConflicts: UInt64 = 0

    private func writeFragmentConflicts() {
        for c in fragments.takeConflicts() {
            output?.write(EventEncoder.fragmentAnomaly(c, capture: capture))
            if let detection {
                let g = geo.map { $0.lookup(c.destination) }
                detection.contextFrames = currentFrame.isNone ? [] : [currentFrame]
                defer { detection.contextFrames = [] }
                detection.fragmentConflict(c, destination: g?.scope == .local ? nil : g)
                writeAlerts(flow: nil)
            }
        }
        writtenFragmentConflicts = fragments.conflictCount
    }

    private func writeAppEvents() {
        // Taken out of the application layer and read in place: a `for e in` loop copied each event (retaining
        // its strings and arrays) and destroyed the copy.
        swap(&appEvents, &recorder.app.events)
        defer { appEvents.removeAll(keepingCapacity: true) }
        appEvents.withUnsafeBufferPointer { events in
            for i in events.indices {
                let flow = endedFlow(events[i].flowID) ?? flows.flow(at: events[i].slot)
                guard flow.id == events[i].flowID else { continue }
                if let output { output.write(EventEncoder.application(events[i], flow: flow, communityID: communityID(of: flow), capture: capture)) }
                if let detection {
                    let frame = events[i].frame
                    detection.contextFrame = !frame.isNone ? frame : flow.lastFrame != 0 ? flow.lastFrameRef : .none
                    defer { detection.contextFrame = .none }
                    detection.transaction(events[i].transaction, flow: flow, direction: events[i].direction, timestamp: events[i].timestamp)
                    writeAlerts(flow: flow)
                }
            }
        }
    }

    /// The application layer's events while `writeAppEvents` writes them (its buffer kept between calls).
    private var appEvents: [AppEvent] = []

    /// Community IDs of live flows that had events (a SHA-1 each: computed once per flow, not per event).
    private var communityIDs: [UInt64: String] = [:]

    private func communityID(of f: Flow) -> String {
        if let id = communityIDs[f.id] { return id }
        let id = f.communityID
        communityIDs[f.id] = id
        return id
    }

    /// An ended flow still waiting in the table's `ended` list (its app events come out before its flow event).
    private func endedFlow(_ id: UInt64) -> Flow? {
        flows.ended.last { $0.id == id }
    }

    private func writeConflicts() {
        for c in recorder.takeConflicts() {
            let flow = flows.flow(at: c.slot)
            output?.write(EventEncoder.overlapAnomaly(c, flow: flow, policy: reassembler.configuration.policy, capture: capture))
            if let detection {
                let g = geo.map { $0.lookup(flow.serverAddress) }
                detection.contextFrames = c.frames
                defer { detection.contextFrames = [] }
                detection.overlapConflict(
                    c, flow: flow, policy: reassembler.configuration.policy.rawValue,
                    destination: g?.scope == .local ? nil : g, timestamp: c.timestamp)
                writeAlerts(flow: flow)
            }
        }
    }

    /// Writes the alerts raised since the last call; the flow's Community ID (a SHA-1) is computed only when an
    /// alert is written.
    private func writeAlerts(flow: Flow?, communityID known: String? = nil) {
        guard let detection else { return }
        let new = detection.takeNewAlerts()
        guard !new.isEmpty, let output else { return }
        let id = known ?? flow.map { communityID(of: $0) }
        for a in new { output.write(EventEncoder.alert(a, communityID: id, capture: capture)) }
    }

    /// What the memory budgets refused, once the capture is finished (the verdicts' coverage names them).
    private func memoryEvictions() -> MemoryEvictions {
        var m = MemoryEvictions()
        m.limit = memoryLimit
        m.fragmentDatagrams = fragments.budgetDrops
        m.dnsAddresses = UInt64(recorder.app.names.droppedAddresses)
        m.hostTotals = hostTotalsRefused
        m.tunnelPackets = tunnels.packetsBeyondLimit
        if let detection {
            m.ledgerFlowsNotJudged = detection.ledgerFlowsNotJudged
            m.learnedIdentities = detection.learnedIdentitiesRefused
            m.linkAddresses = detection.link.addressRecordsRefused
            m.alertsNotKept = detection.alertsNotKept
        }
        m.tableEntries = tableBudget.refused
        m.flowsNotParsed = recorder.app.flowsNotParsed
        return m
    }

    private func addHostTotals(_ address: IPAddress, bytes: UInt64) {
        if hosts.count >= maximumHostTotals, hosts[address] == nil {
            hostTotalsRefused &+= 1
            return
        }
        hosts[address, default: HostTotals()].add(bytes: bytes)
    }

    private func drainEndedFlows() {
        for (f, slot) in zip(flows.ended, flows.endedSlots) {
            let figures: (StreamFigures, StreamFigures)? =
                f.key.ipProtocol == 6 ? reassembler.finish(slot: slot, flowID: f.id) : nil
            if !recorder.conflicts.isEmpty { writeConflicts() }
            let summary = recorder.app.endFlow(slot: slot, flowID: f.id, timestamp: f.end)
            if !recorder.app.events.isEmpty { writeAppEvents() }
            let dnsNames = recorder.app.names.names(for: f.serverAddress, before: f.start)
            var names = dnsNames
            for n in summary.names where !names.contains(n) { names.append(n) }
            let hashes = recorder.finish(slot: slot)
            addHostTotals(f.key.a, bytes: f.aToB.bytes &+ f.bToA.bytes)
            addHostTotals(f.key.b, bytes: f.aToB.bytes &+ f.bToA.bytes)
            // The Community ID (a SHA-1) only when events are written.
            let cached = communityIDs.removeValue(forKey: f.id)
            let id = output == nil ? "" : cached ?? f.communityID
            let (dest, hit) = endpoint(f.serverAddress, names: names)
            frameLog?.flows[f.id] = FrameFlowLog.FlowFacts(
                client: f.clientAddress, server: f.serverAddress, clientPort: f.clientPort, serverPort: f.serverPort,
                ipProtocol: f.key.ipProtocol, clientMAC: f.clientMAC, vlanTCI: f.outer8021QTCI)
            output?.write(EventEncoder.flow(
                f, app: summary.app.rawValue, names: names, streams: figures, hashes: hashes, communityID: id,
                destination: dest, indicator: hit, tunnel: f.key.tunnel != 0 ? tunnels.tunnel(discriminator: f.key.tunnel) : nil,
                capture: capture))
            if let detection {
                detection.flowClosing(slot: slot, flow: f)
                let sent = figures.map { Int($0.0.delivered) } ?? Int(f.client.payloadBytes)
                let received = figures.map { Int($0.1.delivered) } ?? Int(f.server.payloadBytes)
                detection.flowEnded(EndedFlow(
                    flow: f, sent: sent, received: received, resolvedNames: dnsNames, names: names, destination: dest,
                    app: summary.app.rawValue, midstream: figures.map { $0.0.midstream || $0.1.midstream } ?? false, indicator: hit))
                writeAlerts(flow: nil, communityID: id)
            }
        }
        flows.releaseEnded()
    }

    /// Capture time has reached `time` with no packet (a live source's tick): flows idle past their timeout end
    /// and their events and alerts come out, incomplete fragmented datagrams past theirs are dropped, and the
    /// output is flushed. Files never need it: their packets carry time forward.
    public func advance(to time: Timestamp) {
        flows.advance(to: time)
        fragments.expire(now: time)
        if !flows.ended.isEmpty { drainEndedFlows() }
        if openFlowsDue(time) { checkOpenFlows(at: time) }
        output?.flush()
    }

    /// Records the error that stopped reading (the data before it stays processed).
    public func record(error: CaptureError) {
        statistics.error = error.description
        statistics.errorOffset = error.offset
    }

    /// Ends every flow (open ones as `open-at-end`), writes their events and the `stats` event.
    @discardableResult
    public func finish(interfaceDrops: UInt64? = nil, kernelDrops: UInt64? = nil, filteredOut: Int = 0) -> CaptureStatistics {
        switchLinkType(LinkType(rawValue: UInt32.max))
        statistics.interfaceDrops = interfaceDrops
        statistics.kernelDrops = kernelDrops
        fragments.finish()
        // In batches, so that ending a million live flows does not copy them all at once.
        while flows.activeCount > 0 {
            flows.finish(atMost: 4_096)
            drainEndedFlows()
        }
        if let output { for t in tunnels.tunnels { output.write(EventEncoder.tunnel(t, capture: capture)) } }
        statistics.tunnels = UInt64(tunnels.tunnels.count)
        statistics.tunnelDiscriminatorClashes = tunnels.discriminatorClashes
        cellular.finish()
        statistics.gsmtapPackets = cellular.gsmtapPackets
        statistics.gsmMessages = cellular.messages
        statistics.gsmMalformed = cellular.malformed
        statistics.gsmtapOther = cellular.notGSM
        statistics.lapdmRetransmissions = UInt64(cellular.lapdmRetransmissions)
        statistics.lapdmTruncated = UInt64(cellular.lapdmTruncated)
        statistics.gsmtapTruncated = cellular.truncated
        statistics.smsIncomplete = UInt64(cellular.incompleteConcatenations)
        // The figures first: verdicts say whether the capture was complete.
        statistics.flows = flows.createdCount
        statistics.flowsEvicted = flows.evictions
        statistics.filteredOut = UInt64(filteredOut)
        statistics.reassembledBytes = reassembler.deliveredBytes
        statistics.gaps = reassembler.gapCount
        statistics.gapBytes = reassembler.gapBytes
        statistics.overlapBytes = reassembler.overlapBytes
        statistics.overlapConflicts = reassembler.conflictCount
        statistics.budgetGapBytes = reassembler.budgetGapBytes
        statistics.peakBufferedBytes = UInt64(reassembler.peakBufferedBytes)
        statistics.unverifiedRetransmittedBytes = reassembler.unverifiedBytes
        statistics.peakRetainedBytes = UInt64(reassembler.peakRetainedBytes)
        statistics.unreportedConflictRanges = reassembler.unreportedConflictRanges
        statistics.extractionError = recorder.extractionError
        statistics.dnsMessages = recorder.app.dnsMessages
        statistics.dnsErrors = recorder.app.dnsErrors
        statistics.datagramsReassembled = fragments.reassembled
        statistics.fragmentsDropped = fragments.droppedFragments
        statistics.fragmentBytesDropped = fragments.droppedBytes
        statistics.fragmentConflicts = fragments.conflictCount
        if let detection {
            detection.finish()
            // Taken even with no output: the alerts get their frames.
            let last = detection.takeNewAlerts()
            if let output {
                for a in last { output.write(EventEncoder.alert(a, communityID: a.flow.communityID, capture: capture)) }
            }
        }
        statistics.memory = memoryEvictions()
        if let detection, wantVerdicts || output != nil {
            var all = detection.verdicts()
            // The same for every device (8,800 instructions: worked out once, not per verdict).
            let incomplete = statistics.incompleteness
            for i in all.indices {
                if let mac = all[i].mac, let label = recorder.app.devices[mac] {
                    all[i].hostname = label.hostname
                    all[i].vendorClass = label.vendorClass
                }
                all[i].incomplete = incomplete
                output?.write(EventEncoder.verdict(all[i], timestamp: statistics.lastTimestamp ?? .zero, capture: capture))
            }
            verdicts = all
            link = detection.linkSummary()
        }
        output?.write(EventEncoder.stats(statistics, capture: capture))
        output?.flush()
        return statistics
    }
}

/// Scans one capture file from start to end.
public enum CaptureScanner {
    /// The packet loop over any source, apart so that the source and the pipeline are borrowed for it (no retain
    /// per packet; specialised for each concrete source). When a live source has no packet for a tick, capture time
    /// moves to its clock (`advance(to:)`) and `idle` runs (status lines, alerts on a terminal, stop checks).
    public static func feed<Source: PacketSource>(
        _ pipeline: ScanPipeline, from source: Source, idle: (ScanPipeline) -> Void = { _ in }
    ) throws(CaptureError) {
        while true {
            while let packet = try source.next() {
                pipeline.process(packet, next: source.annotation(ahead: 1), afterNext: source.annotation(ahead: 2))
            }
            if source.isFinished { return }
            if let clock = source.clock { pipeline.advance(to: clock) }
            idle(pipeline)
        }
    }

    public struct Result {
        public var statistics: CaptureStatistics
        public var hosts: [IPAddress: HostTotals]
        /// The error that stopped the scan: nil when the whole capture was read.
        public var error: CaptureError?
        /// Every alert raised, in the order it was written.
        public var alerts: [Alert] = []
        /// Per device, worst first.
        public var verdicts: [DeviceVerdict] = []
        /// The link's infrastructure and declared devices.
        public var link: LinkSummary?
        /// `pcap` or `pcapng` (nil when the capture could not be opened).
        public var format: String?

        public init(
            statistics: CaptureStatistics, hosts: [IPAddress: HostTotals], error: CaptureError? = nil, alerts: [Alert] = [],
            verdicts: [DeviceVerdict] = [], link: LinkSummary? = nil, format: String? = nil
        ) {
            self.statistics = statistics
            self.hosts = hosts
            self.error = error
            self.alerts = alerts
            self.verdicts = verdicts
            self.link = link
            self.format = format
        }
    }

    /// Reads `path` (or `-`), runs a pipeline over it, and writes its events to `output`. A capture that cannot be
    /// opened yields an error and no events; one damaged midway yields every event decoded before the damage.
    /// `observer` sees every byte of the file once as it is read (a content hash without a second pass).
    public static func scan(
        path: String, options: ScanOptions = ScanOptions(), output: EventOutput?, observer: (any CaptureByteObserver)? = nil,
        frameLog: FrameFlowLog? = nil
    ) -> Result {
        let reader: CaptureReader
        do {
            // Checksums are verified in the reader thread (the pipeline still decides which verdicts count).
            let readAhead = options.readAhead ? ScanPipeline.readAheadOptions(checksums: options.checksums, flowHashSeed: options.flows.hashSeed) : nil
            reader = try CaptureReader(path: path, filter: options.filter, readAhead: readAhead, observer: observer)
        } catch {
            return Result(statistics: CaptureStatistics(), hosts: [:], error: error)
        }
        let pipeline = ScanPipeline(capture: path, options: options, output: output)
        pipeline.recordsInterfaces = reader.format == .pcapng
        pipeline.frameLog = frameLog
        var failure: CaptureError?
        do {
            try feed(pipeline, from: reader)
        } catch {
            failure = error
            pipeline.record(error: error)
        }
        let stats = pipeline.finish(interfaceDrops: reader.interfaceDrops, kernelDrops: reader.kernelDrops, filteredOut: reader.filteredOut)
        // Left to the process's exit (the result's tables share their storage with the pipeline's).
        if !options.freesStateAtEnd { _ = Unmanaged.passRetained(pipeline) }
        return Result(
            statistics: stats, hosts: pipeline.hosts, error: failure, alerts: pipeline.detection?.raised ?? [],
            verdicts: pipeline.verdicts, link: pipeline.link, format: reader.format.rawValue)
    }
}
