public import SiphonCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where and how `siphon live --write` keeps the raw capture.
public struct RingOptions: Sendable {
    /// The folder the files go to (created if missing).
    public var directory: String
    /// A new file once the current one holds this many bytes (nil: no size limit).
    public var fileBytes: Int?
    /// A new file once the current one spans this much capture time (nil: no time limit).
    public var fileDuration: Duration?
    /// Files kept: the oldest is removed when a new one would make more (nil: all are kept).
    public var files: Int?
    /// File names: `PREFIX-YYYYMMDDTHHMMSSZ-NNNN.pcapng`.
    public var prefix = "siphon"
    public init(directory: String) { self.directory = directory }
}

/// One capturing interface as a pcapng Interface Description Block names it.
public struct CaptureInterface: Sendable, Equatable {
    public var name: String
    public var linkType: LinkType
    public var snapLength: UInt32
    public init(name: String, linkType: LinkType, snapLength: UInt32) {
        self.name = name
        self.linkType = linkType
        self.snapLength = snapLength
    }
}

/// Writes packets as pcapng files (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html) in a ring:
/// each file is a whole section (Section Header Block, one Interface Description Block per interface with its
/// name, link type, snapshot length and nanosecond resolution, Enhanced Packet Blocks), closed with one Interface
/// Statistics Block per interface carrying the drops known then. A file is flushed at every `flush()`, so what
/// was captured can be read while the capture goes on. Every written file is one `siphon scan` reads.
public final class PcapngRingWriter {
    public let options: RingOptions
    public let interfaces: [CaptureInterface]
    /// The files of the ring still on disk, oldest first.
    public private(set) var files: [String] = []
    /// Every file written, in order (removed ones too).
    public private(set) var written: [String] = []
    public private(set) var packetsWritten: UInt64 = 0
    private var file: UnsafeMutablePointer<FILE>?
    private var fileBytes = 0
    private var fileStart: Timestamp?
    private var sequence = 0
    private var block: [UInt8] = []
    private let application: String
    /// Whether this writer made the folder (a caller handing it to another user must not give away an existing one).
    public private(set) var createdDirectory = false
    /// The drop counts per interface as they stand, written into a file's statistics blocks when it is closed (on
    /// rotation and at `close`, unless `close` is given counts; nil: none).
    public var dropCounts: (() -> [(kernel: UInt64?, interface: UInt64?)])?

    /// Creates the folder if needed; the first file is opened with the first packet (or at `close` when none came).
    public init(options: RingOptions, interfaces: [CaptureInterface], application: String = "Siphon") throws(CaptureError) {
        self.options = options
        self.interfaces = interfaces
        self.application = application
        if mkdir(options.directory, 0o755) == 0 {
            createdDirectory = true
        } else if errno != EEXIST {
            throw CaptureError(.cannotWrite, capture: options.directory, message: String(cString: strerror(errno)))
        }
        var s = stat()
        guard stat(options.directory, &s) == 0, s.st_mode & S_IFMT == S_IFDIR else {
            throw CaptureError(.cannotWrite, capture: options.directory, message: "not a directory")
        }
        block.reserveCapacity(1 << 16)
    }

    deinit { if let file { fclose(file) } }

    /// Appends one packet from interface `interface` (an index into `interfaces`), starting a new file first when
    /// the current one is full by size or by time.
    public func write(_ packet: CapturedPacket, interface: Int) throws(CaptureError) {
        if file == nil {
            try open(at: packet.timestamp)
        } else if let limit = options.fileBytes, fileBytes >= limit {
            try rotate(at: packet.timestamp, drops: dropCounts?() ?? [])
        } else if let span = options.fileDuration, let start = fileStart,
                  packet.timestamp.nanoseconds(since: start) >= span.nanoseconds {
            try rotate(at: packet.timestamp, drops: dropCounts?() ?? [])
        }
        block.removeAll(keepingCapacity: true)
        PcapngBlocks.packet(packet, interface: interface, into: &block)
        try emit()
        packetsWritten += 1
    }

    /// Makes everything written so far visible to readers of the file.
    public func flush() { if let file { fflush(file) } }

    /// Ends the current file with the interfaces' statistics (`drops`: per interface, kernel and interface drops
    /// as known now) and closes it. A ring that never saw a packet still leaves one file, with its interfaces.
    public func close(at time: Timestamp, drops: [(kernel: UInt64?, interface: UInt64?)]? = nil) throws(CaptureError) {
        if file == nil { try open(at: time) }
        try finishFile(at: time, drops: drops ?? dropCounts?() ?? [])
    }

    private func rotate(at time: Timestamp, drops: [(kernel: UInt64?, interface: UInt64?)]) throws(CaptureError) {
        try finishFile(at: time, drops: drops)
        try open(at: time)
    }

    private func finishFile(at time: Timestamp, drops: [(kernel: UInt64?, interface: UInt64?)]) throws(CaptureError) {
        guard let current = file else { return }
        for (i, d) in drops.enumerated() where i < interfaces.count {
            block.removeAll(keepingCapacity: true)
            var options: [(UInt16, UInt64)] = []
            if let v = d.interface { options.append((5, v)) }  // isb_ifdrop
            if let v = d.kernel { options.append((7, v)) }  // isb_osdrop
            let total = 24 + options.count * 12 + (options.isEmpty ? 0 : 4)
            append32(5)
            append32(UInt32(total))
            append32(UInt32(i))
            let ns = UInt64(bitPattern: time.nanoseconds)
            append32(UInt32(truncatingIfNeeded: ns >> 32))
            append32(UInt32(truncatingIfNeeded: ns))
            for (code, value) in options {
                append16(code)
                append16(8)
                append32(UInt32(truncatingIfNeeded: value))
                append32(UInt32(truncatingIfNeeded: value >> 32))
            }
            if !options.isEmpty { append32(0) }  // opt_endofopt
            append32(UInt32(total))
            try emit()
        }
        file = nil
        var failure: Int32 = 0
        if fflush(current) != 0 || ferror(current) != 0 { failure = errno == 0 ? EIO : errno }
        if fclose(current) != 0 && failure == 0 { failure = errno }
        if failure != 0 {
            throw CaptureError(.cannotWrite, capture: files.last ?? options.directory, message: String(cString: strerror(failure)))
        }
    }

    private func open(at time: Timestamp) throws(CaptureError) {
        sequence += 1
        let path = options.directory + "/" + options.prefix + "-" + Self.stamp(time) + "-" + Self.pad(sequence) + ".pcapng"
        guard let f = fopen(path, "wb") else {
            throw CaptureError(.cannotWrite, capture: path, message: String(cString: strerror(errno)))
        }
        file = f
        fileBytes = 0
        fileStart = time
        files.append(path)
        written.append(path)
        if let keep = options.files, keep > 0 {
            while files.count > keep { unlink(files.removeFirst()) }
        }
        block.removeAll(keepingCapacity: true)
        PcapngBlocks.sectionHeader(application: application, into: &block)
        for i in interfaces { PcapngBlocks.interface(i, into: &block) }
        try emit()
    }

    private func emit() throws(CaptureError) {
        guard let file else { return }
        let n = block.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        if n != block.count {
            throw CaptureError(.cannotWrite, capture: files.last ?? options.directory, message: String(cString: strerror(errno)))
        }
        fileBytes += n
    }

    @inline(__always) private func append32(_ v: UInt32) { PcapngBlocks.append32(v, to: &block) }
    @inline(__always) private func append16(_ v: UInt16) { PcapngBlocks.append16(v, to: &block) }

    static func pad(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    /// `YYYYMMDDTHHMMSSZ` (UTC) of a capture time.
    static func stamp(_ t: Timestamp) -> String {
        var seconds = time_t(t.nanoseconds / 1_000_000_000)
        var tm = tm()
        gmtime_r(&seconds, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tm.tm_year + 1900)\(two(tm.tm_mon + 1))\(two(tm.tm_mday))T\(two(tm.tm_hour))\(two(tm.tm_min))\(two(tm.tm_sec))Z"
    }
}

/// pcapng blocks (little-endian), as the pcapng specification (draft-ietf-opsawg-pcapng) lays them out: a Section
/// Header Block, Interface Description Blocks (nanosecond timestamps), Enhanced Packet Blocks, each with an optional
/// comment (`opt_comment`, which Wireshark shows as `frame.comment`).
enum PcapngBlocks {
    @inline(__always) static func append32(_ v: UInt32, to out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    @inline(__always) static func append16(_ v: UInt16, to out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    /// Options as (code, value) pairs, each padded to 4 bytes, then `opt_endofopt` (nothing when there are none).
    static func options(_ list: [(UInt16, [UInt8])]) -> [UInt8] {
        guard !list.isEmpty else { return [] }
        var out: [UInt8] = []
        for (code, value) in list {
            append16(code, to: &out)
            append16(UInt16(truncatingIfNeeded: value.count), to: &out)
            out += value
            out += repeatElement(UInt8(0), count: ((value.count + 3) & ~3) - value.count)
        }
        out += [0, 0, 0, 0]
        return out
    }

    /// A comment option's value: at most 65,532 bytes of UTF-8 (an option's length is 16 bits).
    static func comment(_ text: String) -> [UInt8] {
        var bytes = Array(text.utf8)
        guard bytes.count > 65_532 else { return bytes }
        // Cut before a character, not inside one (continuation bytes are 10xxxxxx).
        var cut = 65_532
        while cut > 0 && bytes[cut] & 0xC0 == 0x80 { cut -= 1 }
        bytes.removeSubrange(cut...)
        return bytes
    }

    static func block(type: UInt32, body: [UInt8], into out: inout [UInt8]) {
        let total = UInt32(12 + body.count)
        append32(type, to: &out)
        append32(total, to: &out)
        out += body
        append32(total, to: &out)
    }

    /// Section Header Block: byte-order magic, version 1.0, section length unknown, the writing application and a
    /// comment.
    static func sectionHeader(application: String, comment: String? = nil, into out: inout [UInt8]) {
        var body: [UInt8] = []
        append32(0x1A2B_3C4D, to: &body)
        append16(1, to: &body)
        append16(0, to: &body)
        append32(0xFFFF_FFFF, to: &body)
        append32(0xFFFF_FFFF, to: &body)
        var list: [(UInt16, [UInt8])] = []
        if let comment { list.append((1, Self.comment(comment))) }
        list.append((4, Array(application.utf8)))  // shb_userappl
        body += options(list)
        block(type: 0x0A0D_0D0A, body: body, into: &out)
    }

    /// Interface Description Block: link type, snapshot length, if_name, if_tsresol = 10^-9.
    static func interface(_ i: CaptureInterface, into out: inout [UInt8]) {
        var body: [UInt8] = []
        append16(UInt16(truncatingIfNeeded: i.linkType.rawValue), to: &body)
        append16(0, to: &body)
        append32(i.snapLength, to: &body)
        body += options([(2, Array(i.name.utf8)), (9, [9])])
        block(type: 1, body: body, into: &out)
    }

    /// Enhanced Packet Block with an optional comment.
    static func packet(_ packet: CapturedPacket, interface: Int, comment: String? = nil, into out: inout [UInt8]) {
        var body: [UInt8] = []
        body.reserveCapacity(20 + packet.bytes.count + 3)
        append32(UInt32(interface), to: &body)
        let ns = UInt64(bitPattern: packet.timestamp.nanoseconds)
        append32(UInt32(truncatingIfNeeded: ns >> 32), to: &body)
        append32(UInt32(truncatingIfNeeded: ns), to: &body)
        append32(UInt32(packet.bytes.count), to: &body)
        append32(UInt32(packet.originalLength), to: &body)
        body.append(contentsOf: packet.bytes)
        body += repeatElement(UInt8(0), count: ((packet.bytes.count + 3) & ~3) - packet.bytes.count)
        body += options(comment.map { [(UInt16(1), Self.comment($0))] } ?? [])
        block(type: 6, body: body, into: &out)
    }
}

/// One pcapng file written from start to end: a section with a comment, the interfaces, packets with comments
/// (`siphon extract`, case evidence files).
public final class PcapngFileWriter {
    public let path: String
    private let file: UnsafeMutablePointer<FILE>
    private var block: [UInt8] = []
    public private(set) var packetsWritten = 0

    public init(path: String, interfaces: [CaptureInterface], application: String, comment: String?) throws(CaptureError) {
        guard let f = fopen(path, "wb") else {
            throw CaptureError(.cannotWrite, capture: path, message: String(cString: strerror(errno)))
        }
        self.path = path
        file = f
        PcapngBlocks.sectionHeader(application: application, comment: comment, into: &block)
        for i in interfaces { PcapngBlocks.interface(i, into: &block) }
        try emit()
    }

    deinit { fclose(file) }

    /// Declares the next interface (IDs count from 0 in the order declared).
    public func declare(_ interface: CaptureInterface) throws(CaptureError) {
        block.removeAll(keepingCapacity: true)
        PcapngBlocks.interface(interface, into: &block)
        try emit()
    }

    public func write(_ packet: CapturedPacket, interface: Int, comment: String? = nil) throws(CaptureError) {
        block.removeAll(keepingCapacity: true)
        PcapngBlocks.packet(packet, interface: interface, comment: comment, into: &block)
        try emit()
        packetsWritten += 1
    }

    /// Writes what is buffered; the file stays open until the writer goes away.
    public func finish() throws(CaptureError) {
        if fflush(file) != 0 || ferror(file) != 0 {
            throw CaptureError(.cannotWrite, capture: path, message: String(cString: strerror(errno)))
        }
    }

    private func emit() throws(CaptureError) {
        let n = block.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        if n != block.count { throw CaptureError(.cannotWrite, capture: path, message: String(cString: strerror(errno))) }
        block.removeAll(keepingCapacity: true)
    }
}
