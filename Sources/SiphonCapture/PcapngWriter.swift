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
                  packet.timestamp.nanoseconds - start.nanoseconds >= span.nanoseconds {
            try rotate(at: packet.timestamp, drops: dropCounts?() ?? [])
        }
        let captured = packet.bytes.count
        let padded = (captured + 3) & ~3
        let total = 32 + padded
        block.removeAll(keepingCapacity: true)
        append32(6)
        append32(UInt32(total))
        append32(UInt32(interface))
        let ns = UInt64(bitPattern: packet.timestamp.nanoseconds)
        append32(UInt32(truncatingIfNeeded: ns >> 32))
        append32(UInt32(truncatingIfNeeded: ns))
        append32(UInt32(captured))
        append32(UInt32(packet.originalLength))
        block.append(contentsOf: packet.bytes)
        block.append(contentsOf: repeatElement(0, count: padded - captured))
        append32(UInt32(total))
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
        // Section Header Block: byte-order magic, version 1.0, section length unknown, the writing application.
        block.removeAll(keepingCapacity: true)
        let app = Array(application.utf8)
        let appPadded = (app.count + 3) & ~3
        let shbTotal = 28 + 4 + appPadded + 4
        append32(0x0A0D_0D0A)
        append32(UInt32(shbTotal))
        append32(0x1A2B_3C4D)
        append16(1)
        append16(0)
        append32(0xFFFF_FFFF)
        append32(0xFFFF_FFFF)
        append16(4)  // shb_userappl
        append16(UInt16(app.count))
        block.append(contentsOf: app)
        block.append(contentsOf: repeatElement(0, count: appPadded - app.count))
        append32(0)
        append32(UInt32(shbTotal))
        // One Interface Description Block per interface: if_name, if_tsresol = 10^-9.
        for i in interfaces {
            let name = Array(i.name.utf8)
            let namePadded = (name.count + 3) & ~3
            let total = 20 + 4 + namePadded + 8 + 4
            append32(1)
            append32(UInt32(total))
            append16(UInt16(truncatingIfNeeded: i.linkType.rawValue))
            append16(0)
            append32(i.snapLength)
            append16(2)  // if_name
            append16(UInt16(name.count))
            block.append(contentsOf: name)
            block.append(contentsOf: repeatElement(0, count: namePadded - name.count))
            append16(9)  // if_tsresol
            append16(1)
            block.append(contentsOf: [9, 0, 0, 0])
            append32(0)
            append32(UInt32(total))
        }
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

    @inline(__always) private func append32(_ v: UInt32) {
        withUnsafeBytes(of: v.littleEndian) { block.append(contentsOf: $0) }
    }

    @inline(__always) private func append16(_ v: UInt16) {
        withUnsafeBytes(of: v.littleEndian) { block.append(contentsOf: $0) }
    }

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
