internal import CPcap
internal import CSiphonSupport
internal import SiphonCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads packets from a capture file (pcap or pcapng) or from standard input (`-`).
///
/// pcap files go through libpcap (`pcap_fopen_offline`, nanosecond precision), or are read in place from a memory
/// mapping when libpcap would read them as they are (`MappedPcapSource`). pcapng files go through a native
/// reader, because libpcap 1.10 refuses pcapng files whose interfaces differ in link type or snapshot length
/// (`an interface has a type 0 different from the type of the first interface`), which multi-interface lab
/// captures commonly are.
///
/// `next()` returns borrowed bytes valid until the following call. A BPF filter, when given, is compiled by
/// libpcap once per link type and applied to every packet; rejected packets are counted in `filteredOut`.
public final class CaptureReader {
    public enum Format: String, Sendable { case pcap, pcapng }

    /// The capture's name as given (`-` for standard input).
    public let name: String
    public var format: Format { sequential.format }
    /// Whether the capture is read in place from a memory mapping (`MappedPcapSource`) rather than through libpcap
    /// or the pcapng reader.
    public var readsInPlace: Bool { sequential.readsInPlace }
    /// Packets the BPF filter rejected so far.
    public var filteredOut: Int { readAhead?.filteredOut ?? sequential.filteredOut }
    /// Packets read from the file so far, filtered or not (with read-ahead: as of the block being handed out).
    public var recordsRead: Int { readAhead?.recordsRead ?? sequential.recordsRead }

    private let sequential: SequentialSource
    /// Set when a second thread reads ahead (see `init`).
    private let readAhead: ReadAhead?
    /// Whether packets come from a reader thread.
    public var readsAhead: Bool { readAhead != nil }
    /// The capture's interfaces as known so far (read without read-ahead: as of the last packet returned).
    public var interfaces: [CaptureInterface] { sequential.interfaces }
    /// The pcapng section the last packet came from (0 for pcap; read without read-ahead).
    public var section: Int { sequential.section }

    /// Opens `path` (or standard input for `-`) and compiles `filter`, a tcpdump-style BPF expression. With
    /// `readAhead`, a second thread reads and filters the capture a block of packets ahead of `next()` (only when
    /// more than one processor is online: on one, it would only add a copy), and only for regular files: a pipe or
    /// standard input may be a capture still being written, whose packets must not wait for a block to fill.
    /// Releasing the reader before the end stops that thread without waiting for it.
    /// `observer` (a file, not standard input) sees each byte of the file once, in order, as it is first read: a
    /// content hash computed while the capture is read rather than in a second pass. `mapped`: false reads a pcap
    /// file through libpcap even when it could be read in place (`MappedPcapSource`).
    public init(
        path: String, filter expression: String? = nil, readAhead configuration: ReadAheadOptions? = nil,
        observer: (any CaptureByteObserver)? = nil, mapped: Bool = true
    ) throws(CaptureError) {
        name = path
        sequential = try SequentialSource(path: path, filter: expression, observer: observer, mapped: mapped)
        if let configuration, CaptureReader.processorsOnline > 1 || configuration.evenOnOneProcessor,
           CaptureReader.isRegularFile(path) {
            let r = ReadAhead(source: sequential, configuration: configuration)
            readAhead = r.start() ? r : nil
        } else {
            readAhead = nil
        }
    }

    deinit { readAhead?.stop() }

    static var processorsOnline: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    static func isRegularFile(_ path: String) -> Bool {
        guard path != "-" else { return false }
        var s = stat()
        return stat(path, &s) == 0 && (s.st_mode & S_IFMT) == S_IFREG
    }

    /// The next packet, or `nil` at the end of the capture. Throws `CaptureError` with `.damaged(offset:)` when
    /// a record cannot be read; everything returned before that stays valid data.
    @inlinable
    public func next() throws(CaptureError) -> CapturedPacket? {
        if hasReadAhead { return try readAheadNext() }
        return try sequentialNext()
    }

    @usableFromInline var hasReadAhead: Bool { readAhead != nil }

    @usableFromInline
    func readAheadNext() throws(CaptureError) -> CapturedPacket? { try readAhead?.next() }

    @usableFromInline
    func sequentialNext() throws(CaptureError) -> CapturedPacket? { try sequential.next() }

    /// Byte offset just past the last record read (the start of the next one).
    public var offset: Int64 { readAhead?.offset ?? sequential.offset }

    /// With read-ahead, the annotation of the packet the next `next()` returns (`ahead` 1) or of the one after it
    /// (2), when already known (0 otherwise): a look ahead, for prefetching.
    @inlinable
    public func annotation(ahead: Int) -> UInt64 { hasReadAhead ? readAheadAnnotation(ahead) : 0 }

    @usableFromInline func readAheadAnnotation(_ ahead: Int) -> UInt64 { readAhead?.annotation(ahead: ahead) ?? 0 }

    /// Packets the capturing interfaces reported as dropped (pcapng Interface Statistics Blocks), if any said.
    public var interfaceDrops: UInt64? { readAhead != nil ? readAhead?.interfaceDrops : sequential.interfaceDrops }

    /// Packets the capturing system dropped (pcapng `isb_osdrop`, as `siphon live --write` records the kernel's
    /// drops), if any block said.
    public var kernelDrops: UInt64? { readAhead != nil ? readAhead?.kernelDrops : sequential.kernelDrops }
}

/// The capture read in the calling thread: libpcap or the pcapng reader, then the BPF filter.
final class SequentialSource {
    let format: CaptureReader.Format
    private(set) var filteredOut = 0
    private(set) var recordsRead = 0

    // Exactly one of the three is set. (Optionals rather than an enum with class payloads: extracting an enum
    // payload retained and released it on every packet.)
    private let mapped: MappedPcapSource?
    private let libpcap: LibpcapFileSource?
    private let pcapng: PcapngSource?
    private let filter: PacketFilter?
    private let hasFilter: Bool
    /// Whether the file is gzip-compressed (read through zlib), and its inflating stream (for what went wrong).
    private(set) var compressed = false
    private var gzip: UnsafeMutableRawPointer?

    /// Keeps the observer the file's stream calls alive as long as the stream.
    private let observerBox: ObserverBox?

    /// The capture's name as given.
    let name: String

    /// `mapped`: read a plain pcap file in place from a memory mapping when it can be (`MappedPcapSource`);
    /// false always goes through libpcap.
    init(path: String, filter expression: String?, observer: (any CaptureByteObserver)? = nil, mapped allowMapping: Bool = true) throws(CaptureError) {
        name = path
        if allowMapping, let m = MappedPcapSource.open(path: path, observer: observer) {
            filter = try expression.map { e throws(CaptureError) in try PacketFilter(expression: e, capture: path) }
            hasFilter = filter != nil
            mapped = m
            format = .pcap
            libpcap = nil
            pcapng = nil
            observerBox = nil
            return
        }
        mapped = nil
        let isStdin = path == "-"
        let box = isStdin ? nil : observer.map(ObserverBox.init)
        observerBox = box
        let opened: UnsafeMutablePointer<FILE>?
        if isStdin {
            opened = siphon_stdin()
        } else if let box {
            opened = siphon_observed_fopen(path, ObserverBox.thunk, Unmanaged.passUnretained(box).toOpaque())
        } else {
            opened = fopen(path, "rb")
        }
        guard var file = opened else {
            throw CaptureError(.cannotOpen, capture: path, message: String(cString: strerror(errno)))
        }
        // 1 MiB reads instead of stdio's 4 KiB: 256 times fewer read(2) calls (a 1 GB capture made 262,000 of them).
        // glibc ignores the size when given no buffer, so the buffer is ours, kept by the source until it closes.
        let ioBuffer = isStdin ? nil : StdioBuffer(size: 1 << 20)
        if let ioBuffer { setvbuf(file, ioBuffer.pointer, _IOFBF, ioBuffer.size) }
        var magic = [UInt8](repeating: 0, count: 4)
        var got = fread(&magic, 1, 4, file)
        // gzip (capture.pcap.gz): the capture is what it inflates to; offsets in errors count inflated bytes.
        if got >= 2 && magic[0] == 0x1F && magic[1] == 0x8B {
            var source = file
            if fseek(file, 0, SEEK_SET) != 0 {
                // A pipe: the bytes already read go in front of it (standard input itself stays open).
                guard let prefixed = siphon_prefixed_stream(file, magic, got, isStdin ? 0 : 1) else {
                    if !isStdin { fclose(file) }
                    throw CaptureError(.cannotOpen, capture: path, message: "out of memory")
                }
                source = prefixed
            }
            var handle: UnsafeMutableRawPointer?
            guard let inflated = siphon_gzip_stream(source, isStdin && source == file ? 0 : 1, &handle) else {
                if !(isStdin && source == file) { fclose(source) }
                throw CaptureError(.cannotOpen, capture: path, message: "out of memory")
            }
            file = inflated
            compressed = true
            gzip = handle
            got = fread(&magic, 1, 4, file)
            if got < 4, let problem = siphon_gzip_problem(handle) {
                fclose(file)
                throw CaptureError(.badFormat, capture: path, message: String(cString: problem))
            }
        }
        // Standard input stays open; a file, or the decompressing stream in front of standard input, closes.
        let owned = !isStdin || compressed
        if got == 0 && ferror(file) != 0 {
            let message = String(cString: strerror(errno))
            if owned { fclose(file) }
            throw CaptureError(.cannotOpen, capture: path, message: message)
        }
        if got < 4 {
            if owned { fclose(file) }
            throw CaptureError(.badFormat, capture: path, message: "file is \(got) bytes long, too short for a capture header")
        }
        if magic == [0x0A, 0x0D, 0x0D, 0x0A] {
            format = .pcapng
            libpcap = nil
            pcapng = try PcapngSource(file: file, closeOnDeinit: owned, name: path, magic: magic, ioBuffer: ioBuffer)
        } else {
            format = .pcap
            // Read the whole file header: checked here so that every libpcap version gives the same errors.
            var header = magic + [UInt8](repeating: 0, count: 20)
            let more = header.withUnsafeMutableBytes { fread($0.baseAddress! + 4, 1, 20, file) }
            header.removeLast(20 - more)
            if let problem = SequentialSource.checkPcapHeader(header) {
                if owned { fclose(file) }
                throw CaptureError(.badFormat, capture: path, message: problem)
            }
            // libpcap must see the header again: rewind a file, or replay the bytes in front of a pipe.
            var stream = file
            if fseek(file, 0, SEEK_SET) != 0 {
                guard let prefixed = siphon_prefixed_stream(file, header, header.count, owned ? 1 : 0) else {
                    if owned { fclose(file) }
                    throw CaptureError(.cannotOpen, capture: path, message: "out of memory")
                }
                stream = prefixed
            }
            pcapng = nil
            libpcap = try LibpcapFileSource(file: stream, name: path, magic: magic, ioBuffer: ioBuffer)
        }
        filter = try expression.map { e throws(CaptureError) in try PacketFilter(expression: e, capture: path) }
        hasFilter = filter != nil
    }

    /// Checks a classic pcap file header as libpcap 1.11 does (libpcap 1.10 lets some of these through or words
    /// them differently). Returns the problem, or nil when libpcap may read it. Unknown magics are left to libpcap.
    static func checkPcapHeader(_ h: [UInt8]) -> String? {
        let magic = UInt32(h[0]) << 24 | UInt32(h[1]) << 16 | UInt32(h[2]) << 8 | UInt32(h[3])
        let bigEndian: Bool
        switch magic {
        case 0xA1B2_C3D4, 0xA1B2_3C4D, 0xA1B2_CD34: bigEndian = true
        case 0xD4C3_B2A1, 0x4D3C_B2A1, 0x34CD_B2A1: bigEndian = false
        default: return nil
        }
        guard h.count == 24 else {
            return "truncated dump file; tried to read 24 file header bytes, only got \(h.count)"
        }
        func u16(_ o: Int) -> UInt32 { bigEndian ? UInt32(h[o]) << 8 | UInt32(h[o + 1]) : UInt32(h[o + 1]) << 8 | UInt32(h[o]) }
        func u32(_ o: Int) -> UInt32 { bigEndian ? u16(o) << 16 | u16(o + 2) : u16(o + 2) << 16 | u16(o) }
        let major = u16(4)
        let minor = u16(6)
        if !(major == 2 && minor <= 4) && !(major == 543 && minor == 0) {
            return "unsupported pcap savefile version \(major).\(minor)"
        }
        let reserved = u32(20) & 0x03FF_0000
        if reserved != 0 {
            let hex = String(reserved, radix: 16)
            return "savefile linktype reserved field not zero (0x" + String(repeating: "0", count: 8 - hex.count) + hex + ")"
        }
        return nil
    }

    @inline(__always)
    func next() throws(CaptureError) -> CapturedPacket? {
        while true {
            guard let packet = try nextRecord() else { return nil }
            if !hasFilter { return packet }
            if try accepts(packet) { return packet }
        }
    }

    @inline(__always)
    private func nextRecord() throws(CaptureError) -> CapturedPacket? {
        var packet: CapturedPacket?
        // Optional chaining on the stored references (no `if let` copy): no retain/release per packet.
        do {
            if mapped != nil {
                packet = try mapped?.next()
            } else if libpcap != nil {
                packet = try libpcap?.next()
            } else {
                packet = try pcapng?.next()
            }
        } catch {
            throw compressed ? gzipWorded(error) : error
        }
        if packet != nil {
            recordsRead += 1
            packet!.frame = UInt64(recordsRead)
        } else if compressed, let problem = siphon_gzip_problem(gzip) {
            // Every record read, but the compressed data was cut or damaged after them (its trailer, its CRC).
            throw CaptureError(.damaged(offset: offset), capture: name, message: String(cString: problem) + " (offset in the decompressed capture)")
        }
        return packet
    }

    private func accepts(_ packet: CapturedPacket) throws(CaptureError) -> Bool {
        guard let filter else { return true }
        if try filter.matches(packet) { return true }
        filteredOut += 1
        return false
    }

    /// Byte offset just past the last record read (the start of the next one).
    var offset: Int64 { mapped?.offset ?? libpcap?.offset ?? pcapng?.offset ?? 0 }

    var readsInPlace: Bool { mapped != nil }
    /// Where a file read in place is mapped (nil otherwise).
    var mappingBase: UnsafeRawPointer? { mapped?.base }

    /// A damaged compressed capture: zlib's reason when the damage is in the compressed data, and where the
    /// offset counts.
    @inline(never)
    private func gzipWorded(_ error: CaptureError) -> CaptureError {
        var e = error
        if let problem = siphon_gzip_problem(gzip) { e.message = String(cString: problem) + "; capture reading stopped there: " + e.message }
        e.message += " (offset in the decompressed capture)"
        return e
    }

    /// The pcapng section being read (interface IDs start again in each); 0 for pcap.
    var section: Int { max(0, pcapng?.section ?? 0) }

    /// The capture's interfaces as known so far: a pcap file's one, a pcapng section's Interface Description Blocks.
    var interfaces: [CaptureInterface] {
        if let mapped { return [CaptureInterface(name: "interface 0", linkType: mapped.linkType, snapLength: mapped.snapLength)] }
        if let libpcap { return [CaptureInterface(name: "interface 0", linkType: libpcap.linkType, snapLength: libpcap.snapLength)] }
        return pcapng?.interfaceList ?? []
    }

    /// Packets the capturing interfaces reported as dropped (pcapng Interface Statistics Blocks), if any said.
    var interfaceDrops: UInt64? { pcapng?.reportedDrops }

    /// Packets the capturing system dropped (pcapng `isb_osdrop`), if any said.
    var kernelDrops: UInt64? { pcapng?.reportedSystemDrops }
}

/// Sees each byte of a capture file once, in order, as the reader first reads it.
public protocol CaptureByteObserver: AnyObject {
    func observe(_ bytes: UnsafeRawBufferPointer)
}

/// The observer behind the C stream's context pointer.
final class ObserverBox {
    let observer: any CaptureByteObserver
    init(_ observer: any CaptureByteObserver) { self.observer = observer }

    static let thunk: @convention(c) (UnsafeMutableRawPointer?, UnsafeRawPointer?, Int) -> Void = { context, bytes, count in
        guard let context else { return }
        Unmanaged<ObserverBox>.fromOpaque(context).takeUnretainedValue().observer.observe(UnsafeRawBufferPointer(start: bytes, count: count))
    }
}

/// A pcap file read by libpcap.
final class LibpcapFileSource {
    private let handle: OpaquePointer
    private let name: String
    let linkType: LinkType
    let snapLength: UInt32
    private let recordHeaderLength: Int64
    /// Computed rather than asked of `ftell`, so that it also works on pipes.
    private(set) var offset: Int64 = 24

    /// The stdio buffer of the file libpcap reads (freed after `pcap_close`, when this source goes).
    private let ioBuffer: StdioBuffer?

    init(file: UnsafeMutablePointer<FILE>, name: String, magic: [UInt8], ioBuffer: StdioBuffer? = nil) throws(CaptureError) {
        self.name = name
        self.ioBuffer = ioBuffer
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let handle = pcap_fopen_offline_with_tstamp_precision(file, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errbuf) else {
            fclose(file)
            throw CaptureError(.badFormat, capture: name, message: errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        self.handle = handle
        linkType = LinkType(dlt: pcap_datalink(handle))
        snapLength = UInt32(clamping: pcap_snapshot(handle))
        // Kuznetsov's "modified" pcap format (0xa1b2cd34) has 24-byte record headers.
        let modified = magic == [0xA1, 0xB2, 0xCD, 0x34] || magic == [0x34, 0xCD, 0xB2, 0xA1]
        recordHeaderLength = modified ? 24 : 16
    }

    deinit { pcap_close(handle) }

    @inline(__always)
    func next() throws(CaptureError) -> CapturedPacket? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        let rc = pcap_next_ex(handle, &header, &data)
        if rc == 1, let h = header?.pointee, let data {
            offset += recordHeaderLength + Int64(h.caplen)
            // A record cut to the snapshot length may have been longer in the file (libpcap skipped the rest): where
            // the stream is then is the next record's offset (a file's; on a pipe the count above stands).
            if h.caplen == snapLength, let file = pcap_file(handle) {
                let at = ftello(file)
                if at > 0 { offset = Int64(at) }
            }
            return CapturedPacket(
                bytes: UnsafeRawBufferPointer(start: data, count: Int(h.caplen)),
                timestamp: Timestamp(seconds: Int64(h.ts.tv_sec), nanoseconds: Int64(h.ts.tv_usec)),
                linkType: linkType,
                originalLength: Int(h.len))
        }
        if rc == -2 { return nil }
        throw CaptureError(.damaged(offset: offset), capture: name, message: String(cString: pcap_geterr(handle)))
    }
}

/// A BPF filter compiled by libpcap for each link type it meets, matched with `pcap_offline_filter`.
final class PacketFilter {
    let expression: String
    let capture: String
    private var programs: [UInt32: UnsafeMutablePointer<bpf_program>] = [:]

    init(expression: String, capture: String) throws(CaptureError) {
        self.expression = expression
        self.capture = capture
        // Compile once for Ethernet up front so that a syntax error is reported before any packet is read.
        _ = try program(for: .ethernet)
    }

    deinit {
        for program in programs.values {
            pcap_freecode(program)
            program.deallocate()
        }
    }

    private func program(for linkType: LinkType) throws(CaptureError) -> UnsafeMutablePointer<bpf_program> {
        if let program = programs[linkType.rawValue] { return program }
        let dlt: Int32 = linkType == .raw ? 12 : Int32(bitPattern: linkType.rawValue)
        guard let dead = pcap_open_dead(dlt, 262_144) else {
            throw CaptureError(.badFilter, capture: capture, message: "libpcap cannot compile for link type \(linkType)")
        }
        defer { pcap_close(dead) }
        let program = UnsafeMutablePointer<bpf_program>.allocate(capacity: 1)
        program.initialize(to: bpf_program())
        if pcap_compile(dead, program, expression, 1, PCAP_NETMASK_UNKNOWN) != 0 {
            let message = String(cString: pcap_geterr(dead))
            program.deallocate()
            throw CaptureError(.badFilter, capture: capture, message: "\(expression): \(message)")
        }
        programs[linkType.rawValue] = program
        return program
    }

    func matches(_ packet: CapturedPacket) throws(CaptureError) -> Bool {
        let program = try program(for: packet.linkType)
        var header = pcap_pkthdr()
        header.caplen = UInt32(packet.bytes.count)
        header.len = UInt32(packet.originalLength)
        guard let base = packet.bytes.baseAddress else { return false }
        return pcap_offline_filter(program, &header, base.assumingMemoryBound(to: UInt8.self)) != 0
    }
}

/// A stdio buffer that must outlive its FILE (`setvbuf` with no buffer keeps glibc's default size).
final class StdioBuffer {
    let size: Int
    let pointer: UnsafeMutablePointer<CChar>
    init(size: Int) {
        self.size = size
        pointer = .allocate(capacity: size)
    }
    deinit { pointer.deallocate() }
}
