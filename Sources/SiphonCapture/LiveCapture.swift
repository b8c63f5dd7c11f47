internal import CPcap
internal import CSiphonSupport
public import SiphonCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a live capture opens and how.
public struct LiveOptions: Sendable {
    /// Interface names, as `ip link` shows them; one handle each.
    public var interfaces: [String]
    /// A tcpdump-style filter, compiled into each handle's kernel filter (`pcap_setfilter`).
    public var filter: String?
    public var snapLength: Int32 = 262_144
    public var promiscuous = true
    /// The kernel buffer per interface in bytes (nil: libpcap's default, 2 MiB on Linux).
    public var bufferSize: Int32?
    /// Packets handed to Siphon as each arrives (one wake-up per packet at low rates), instead of in kernel blocks
    /// that are handed over when full or `blockTimeout` after their first packet (the default: far fewer wake-ups,
    /// at most that much latency).
    public var immediate = false
    /// With `immediate` off: the longest a packet waits in a kernel block before it is handed over.
    public var blockTimeout: Duration = .milliseconds(50)
    /// How long `next()` waits for a packet before handing back a tick (the consumer's chance to end idle flows,
    /// print status, and honour a stop when no packet comes).
    public var tick: Duration = .milliseconds(100)
    /// Stop after this many packets (nil: no limit).
    public var maximumPackets: UInt64?
    /// Stop once this much time has gone by since the capture began (nil: no limit).
    public var duration: Duration?
    /// Write every packet to a pcapng ring (nil: nothing written).
    public var ring: RingOptions?
    /// Watch for SIGINT and SIGTERM (and `requestStop`): the capture then drains what the kernel holds and ends.
    public var stopOnSignals = true
    public init(interfaces: [String]) { self.interfaces = interfaces }
}

/// Packets from live interfaces through libpcap, without the blocking-read hang: each handle is created with
/// `pcap_create`, a short block timeout (or immediate mode) and non-blocking, and the source waits in `poll` on the handles' file
/// descriptors and on the stop pipe, so a stop is honoured within a tick even when no packet arrives. The BPF
/// filter runs in the kernel. With several interfaces, packets are taken from each handle in turn.
///
/// A stop (SIGINT, SIGTERM, `requestStop`, `maximumPackets`, `duration`) drains every packet the handles still
/// hold, then `next()` returns nil with `isFinished` set. Drops come from `pcap_stats`.
public final class LiveCapture: PacketSource {
    private struct Handle {
        var pcap: OpaquePointer
        var name: String
        var linkType: LinkType
        var fd: Int32
        var snapLength: UInt32
        /// Nanoseconds per unit of `tv_usec` (1 with nanosecond precision, 1,000 with microseconds).
        var scale: Int64
    }

    public let options: LiveOptions
    public let name: String
    public let interfaces: [CaptureInterface]
    public private(set) var isFinished = false
    public private(set) var clock: Timestamp?
    public private(set) var packetsCaptured: UInt64 = 0
    public var filteredOut: Int { 0 }
    /// The ring the packets are written to, if any.
    public private(set) var ring: PcapngRingWriter?

    private var handles: [Handle]
    private var pollSet: [pollfd]
    /// The handle read last (taken in turn, so one busy interface does not starve another).
    private var current = 0
    /// Handles that had nothing the last time they were read since the last wait.
    private var emptyHandles = 0
    private var stopping = false
    private var tickDue = false
    /// When the stop was first seen: the drain lasts `drainTime` from there.
    private var stopAsked: Timestamp?
    /// Per handle: packets handed out, and (from the stop on) how many the kernel had kept by then, which the
    /// drain reads before it ends (`ps_recv - ps_drop`; nil when libpcap gives no statistics).
    private var handedOut: [UInt64] = []
    private var drainTargets: [UInt64]?
    /// Set when every handle was found empty, cleared by each packet handed out.
    private var drainedEmpty = false
    /// Packets the kernel had kept at the stop that the drain could not read within `drainLimit` (counted as
    /// kernel drops: they were not analysed).
    public private(set) var unreadAtStop: UInt64 = 0
    /// The longest a drain reads a backlog for.
    private static let drainLimit: Int64 = 2_000_000_000
    /// How long the drain reads after a stop: a block's timeout and a margin (immediate mode: until the handles are
    /// empty, within the same margin under steady traffic).
    private var drainTime: Int64 { (options.immediate ? 0 : options.blockTimeout.nanoseconds) + 20_000_000 }
    private var nextTick: Timestamp
    private let deadline: Timestamp?

    /// Opens every interface; throws `cannotCapture` naming the interface and saying why (missing, down,
    /// permission denied) before any packet is read.
    public init(options: LiveOptions) throws(CaptureError) {
        self.options = options
        name = options.interfaces.joined(separator: ",")
        guard !options.interfaces.isEmpty else { throw CaptureError(.cannotCapture, capture: "live", message: "no interface given") }
        var opened: [Handle] = []
        do throws(CaptureError) {
            for interface in options.interfaces { opened.append(try Self.open(interface, options)) }
        } catch {
            for h in opened { pcap_close(h.pcap) }
            throw error
        }
        handles = opened
        handedOut = [UInt64](repeating: 0, count: opened.count)
        interfaces = opened.map { CaptureInterface(name: $0.name, linkType: $0.linkType, snapLength: $0.snapLength) }
        if options.stopOnSignals {
            siphon_reset_stop()
            _ = siphon_install_stop_handlers()
        }
        pollSet = opened.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        let stopFD = siphon_stop_fd()
        if stopFD >= 0 { pollSet.append(pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)) }
        let start = Self.now()
        nextTick = start + options.tick
        deadline = options.duration.map { start + $0 }
        if let ringOptions = options.ring {
            do throws(CaptureError) {
                let writer = try PcapngRingWriter(options: ringOptions, interfaces: interfaces)
                ring = writer
            } catch {
                for h in handles { pcap_close(h.pcap) }
                handles = []  // deinit runs too: nothing left to close twice
                throw error
            }
            // A file closed on rotation carries the drop counts as they stand then (cumulative, as pcapng says).
            ring?.dropCounts = { [weak self] in self?.dropsByInterface ?? [] }
        }
    }

    deinit { for h in handles { pcap_close(h.pcap) } }

    private static func open(_ interface: String, _ options: LiveOptions) throws(CaptureError) -> Handle {
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        func fail(_ message: String) -> CaptureError { CaptureError(.cannotCapture, capture: interface, message: message) }
        guard let pcap = pcap_create(interface, &errbuf) else {
            throw fail(errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        pcap_set_snaplen(pcap, options.snapLength)
        pcap_set_promisc(pcap, options.promiscuous ? 1 : 0)
        pcap_set_immediate_mode(pcap, options.immediate ? 1 : 0)
        pcap_set_timeout(pcap, Int32(max(1, options.blockTimeout.nanoseconds / 1_000_000)))
        if let size = options.bufferSize { pcap_set_buffer_size(pcap, size) }
        // Nanosecond timestamps where the kernel gives them (microseconds otherwise; libpcap scales them).
        if pcap_set_tstamp_precision(pcap, Int32(PCAP_TSTAMP_PRECISION_NANO)) != 0 {
            pcap_set_tstamp_precision(pcap, Int32(PCAP_TSTAMP_PRECISION_MICRO))
        }
        let rc = pcap_activate(pcap)
        if rc < 0 {
            let detail = String(cString: pcap_geterr(pcap))
            pcap_close(pcap)
            switch rc {
            case PCAP_ERROR_NO_SUCH_DEVICE:
                throw fail("no such interface" + (detail.isEmpty ? "" : " (\(detail))"))
            case PCAP_ERROR_PERM_DENIED, PCAP_ERROR_PROMISC_PERM_DENIED:
                throw fail("permission denied: run as root, or give siphon CAP_NET_RAW and CAP_NET_ADMIN (setcap cap_net_raw,cap_net_admin=eip)")
            case PCAP_ERROR_IFACE_NOT_UP:
                throw fail("interface is down (ip link set \(interface) up)")
            default:
                throw fail(detail.isEmpty ? String(cString: pcap_statustostr(rc)) : detail)
            }
        }
        // libpcap on Linux opens a down interface without complaint and then never delivers: say so now.
        if !Self.isUp(interface) {
            pcap_close(pcap)
            throw fail("interface is down (ip link set \(interface) up)")
        }
        if pcap_setnonblock(pcap, 1, &errbuf) != 0 {
            let message = errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            pcap_close(pcap)
            throw fail(message)
        }
        let linkType = LinkType(dlt: pcap_datalink(pcap))
        if let expression = options.filter {
            var program = bpf_program()
            if pcap_compile(pcap, &program, expression, 1, PCAP_NETMASK_UNKNOWN) != 0 {
                let message = String(cString: pcap_geterr(pcap))
                pcap_close(pcap)
                throw CaptureError(.badFilter, capture: interface, message: "\(expression): \(message)")
            }
            let set = pcap_setfilter(pcap, &program)
            pcap_freecode(&program)
            if set != 0 {
                let message = String(cString: pcap_geterr(pcap))
                pcap_close(pcap)
                throw CaptureError(.badFilter, capture: interface, message: "\(expression): \(message)")
            }
        }
        let fd = pcap_get_selectable_fd(pcap)
        guard fd >= 0 else {
            pcap_close(pcap)
            throw fail("libpcap gives no descriptor to wait on")
        }
        let scale: Int64 = pcap_get_tstamp_precision(pcap) == Int32(PCAP_TSTAMP_PRECISION_NANO) ? 1 : 1000
        return Handle(pcap: pcap, name: interface, linkType: linkType, fd: fd, snapLength: UInt32(pcap_snapshot(pcap)), scale: scale)
    }

    /// Whether the interface is administratively up (SIOCGIFFLAGS); true when it cannot be asked.
    static func isUp(_ interface: String) -> Bool {
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard s >= 0 else { return true }
        defer { close(s) }
        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { raw in
            let bytes = Array(interface.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
        }
        guard ioctl(s, UInt(SIOCGIFFLAGS), &request) == 0 else { return true }
        return Int32(request.ifr_ifru.ifru_flags) & Int32(IFF_UP) != 0
    }

    /// The wall clock, as the kernel stamps packets.
    static func now() -> Timestamp {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Timestamp(seconds: Int64(t.tv_sec), nanoseconds: Int64(t.tv_nsec))
    }

    /// Asks the capture to end: what the handles hold is still handed out.
    public func requestStop() { stopping = true }

    /// Whether a stop was asked (signal, `requestStop`, a limit reached).
    public var isStopping: Bool { stopping || siphon_stop_signal() != 0 }

    public func annotation(ahead: Int) -> UInt64 { 0 }

    public func next() throws(CaptureError) -> CapturedPacket? {
        if isFinished { return nil }
        while true {
            if let limit = options.maximumPackets, packetsCaptured >= limit { return end() }
            if isStopping {
                // The drain: every packet the kernel had kept when the stop came is read (blocks not handed over
                // yet are retired at most `blockTimeout` after their first packet), packets after it are not, and
                // the drain ends in at most `drainLimit` even under a backlog (what it left is counted).
                let now = Self.now()
                if stopAsked == nil {
                    stopAsked = now
                    let kept = handles.map { h -> UInt64? in
                        var s = pcap_stat()
                        return pcap_stats(h.pcap, &s) == 0 ? UInt64(s.ps_recv) &- UInt64(s.ps_drop) : nil
                    }
                    drainTargets = kept.contains { $0 == nil } ? nil : kept.map { $0! }
                }
                let elapsed = now.nanoseconds - stopAsked!.nanoseconds
                // Every handle found empty after the last block had time to retire: nothing is left (libpcap's
                // count may include packets it filtered in user space, which never come out).
                if drainedEmpty && elapsed > drainTime { return end() }
                if let targets = drainTargets {
                    if zip(handedOut, targets).allSatisfy({ $0 >= $1 }) { return end() }
                    if elapsed > Self.drainLimit {
                        unreadAtStop = zip(handedOut, targets).reduce(0) { $0 + ($1.1 > $1.0 ? $1.1 - $1.0 : 0) }
                        return end()
                    }
                } else if elapsed > drainTime {
                    return end()
                }
            }
            if tickDue {
                tickDue = false
                return tick(at: Self.now())
            }
            // One read from each handle in turn; a handle with nothing counts toward a wait.
            while emptyHandles < handles.count {
                let i = current
                var header: UnsafeMutablePointer<pcap_pkthdr>?
                var data: UnsafePointer<UInt8>?
                let rc = pcap_next_ex(handles[i].pcap, &header, &data)
                if rc == 1, let h = header?.pointee, let data {
                    emptyHandles = 0
                    let packet = CapturedPacket(
                        bytes: UnsafeRawBufferPointer(start: data, count: Int(h.caplen)),
                        timestamp: Timestamp(seconds: Int64(h.ts.tv_sec), nanoseconds: Int64(h.ts.tv_usec) * handles[i].scale),
                        linkType: handles[i].linkType, originalLength: Int(h.len), interfaceID: i,
                        frame: UInt64(packetsCaptured + 1))
                    packetsCaptured += 1
                    handedOut[i] &+= 1
                    drainedEmpty = false
                    // Under steady traffic the handles never run dry: the tick still comes, every 64 packets checked.
                    if packetsCaptured & 63 == 0, Self.now() >= nextTick { tickDue = true }
                    try ring?.write(packet, interface: i)
                    if handles.count > 1 { current = (i + 1) % handles.count }
                    return packet
                }
                if rc < 0 && rc != -2 {
                    let message = String(cString: pcap_geterr(handles[i].pcap))
                    stopping = true
                    throw CaptureError(.cannotCapture, capture: handles[i].name, message: message)
                }
                emptyHandles += 1
                current = (i + 1) % handles.count
            }
            // Nothing waiting in any handle.
            drainedEmpty = true
            if isStopping && options.immediate { return end() }
            let now = Self.now()
            if now >= nextTick { return tick(at: now) }
            if let deadline, now >= deadline { stopping = true }
            var wait = Int32(clamping: (nextTick.nanoseconds - now.nanoseconds + 999_999) / 1_000_000)
            if isStopping { wait = min(wait, 5) }
            if let deadline { wait = min(wait, Int32(clamping: max(0, (deadline.nanoseconds - now.nanoseconds + 999_999) / 1_000_000))) }
            for k in pollSet.indices { pollSet[k].revents = 0 }
            let ready = poll(&pollSet, nfds_t(pollSet.count), max(0, wait))
            if ready > 0, pollSet.count > handles.count, pollSet[handles.count].revents != 0 {
                var sink = [UInt8](repeating: 0, count: 16)
                _ = read(pollSet[handles.count].fd, &sink, sink.count)
            }
            emptyHandles = 0
        }
    }

    /// A tick: `next()` returns nil with the clock moved on (the duration checked, the ring flushed). The clock
    /// stays a block timeout behind the wall clock: the kernel may still hold a block of packets that old, and
    /// flows must not end before them.
    private func tick(at now: Timestamp) -> CapturedPacket? {
        if let deadline, now >= deadline { stopping = true }
        nextTick = now + options.tick
        clock = options.immediate ? now : Timestamp(nanoseconds: now.nanoseconds - options.blockTimeout.nanoseconds)
        ring?.flush()
        return nil
    }

    /// The stop: every packet held has been handed out.
    private func end() -> CapturedPacket? {
        stopping = true
        isFinished = true
        clock = Self.now()
        return nil
    }

    /// Per interface: kernel drops (`ps_drop`) and interface drops (`ps_ifdrop`) so far.
    public var dropsByInterface: [(kernel: UInt64?, interface: UInt64?)] {
        handles.map { h in
            var s = pcap_stat()
            guard pcap_stats(h.pcap, &s) == 0 else { return (nil, nil) }
            return (UInt64(s.ps_drop), UInt64(s.ps_ifdrop))
        }
    }

    /// Kernel drops, plus packets the kernel had kept at the stop that the drain could not read in time.
    public var kernelDrops: UInt64? {
        let d = dropsByInterface.compactMap(\.kernel)
        return d.isEmpty ? nil : d.reduce(0, +) + unreadAtStop
    }

    public var interfaceDrops: UInt64? {
        let d = dropsByInterface.compactMap(\.interface)
        return d.isEmpty ? nil : d.reduce(0, +)
    }

    /// Closes the ring's last file with the drop counts; call once the capture is finished.
    public func closeRing() throws(CaptureError) {
        guard let ring else { return }
        try ring.close(at: clock ?? Self.now())
    }
}
