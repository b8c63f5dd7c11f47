internal import CPcap
internal import SiphonCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A classic pcap file read in place from a read-only memory mapping: the packets handed on point into the file's
/// pages, so neither the kernel's copy into a read buffer (`read(2)`: a quarter of the CPU time of a quiet scan of a
/// 1 GB capture) nor libpcap's copy into its packet buffer is made.
///
/// Only for the files libpcap itself reads without transformation: a regular file (not standard input, not gzip),
/// the standard or nanosecond magic in this machine's byte order, version 2.4, and a link type whose largest
/// packet is libpcap's usual 262,144 bytes. The file header is still read by libpcap (link type and snapshot length
/// as it works them out); every record is then checked as libpcap 1.10 checks it, with its words for what is wrong
/// (`MappedPcapTests` compares both readers on every committed capture and on cut and corrupted copies). Anything
/// else goes through libpcap (`LibpcapFileSource`).
///
/// The bytes observer (the capture's SHA-256) sees the file in order, a megabyte at a time as records are reached,
/// and all of it by the end of the file or the error.
///
/// The file is read as it was when opened: records appended while the scan runs are not read (libpcap would read
/// up to wherever the end was when it got there), and a file cut shorter during the scan (`truncate`, a log
/// rotation's copy-and-truncate) would end it with SIGBUS, as any program that maps it would; scan a copy of a
/// capture that is still being written, or read it from standard input.
final class MappedPcapSource {
    /// The mapping's first byte: a packet's bytes stay at the same place until the mapping goes (pages given back
    /// are read again from the file if touched).
    let base: UnsafeRawPointer
    private let size: Int
    private let name: String
    let linkType: LinkType
    let snapLength: UInt32
    private let nanoseconds: Bool
    /// Byte offset of the next record.
    private(set) var offset: Int64 = 24
    private let observer: (any CaptureByteObserver)?
    private var observed = 0
    /// The file's pages before this offset are given back (`MADV_DONTNEED`) as the reader moves on, 16 MiB at a
    /// time and 16 MiB behind it: a mapping keeps what it touched resident, and a 10 GB capture would otherwise
    /// count 10 GB in the scan's memory. The lag leaves the packets a read-ahead thread has handed on but the
    /// consumer not yet read (4 MiB by default) where they are: a page given back and touched again would be read
    /// again from the file and stay resident.
    private var released = 0
    private static let releaseStep = 16 << 20

    /// libpcap's largest packet for the link types this reader takes (`max_snaplen_for_dlt`'s default).
    static let maximumCaptureLength: UInt32 = 262_144

    /// Maps `path` when libpcap would read it as it is; nil otherwise (or when it cannot be mapped).
    static func open(path: String, observer: (any CaptureByteObserver)?) -> MappedPcapSource? {
        guard path != "-" else { return nil }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var s = stat()
        guard fstat(fd, &s) == 0, (s.st_mode & S_IFMT) == S_IFREG, s.st_size >= 24, Int64(s.st_size) <= Int64(Int.max) else { return nil }
        var header = [UInt8](repeating: 0, count: 24)
        guard header.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, 24, 0) }) == 24 else { return nil }
        // This machine's byte order (little-endian): d4 c3 b2 a1 (microseconds), 4d 3c b2 a1 (nanoseconds).
        #if _endian(little)
        let micro: [UInt8] = [0xD4, 0xC3, 0xB2, 0xA1], nano: [UInt8] = [0x4D, 0x3C, 0xB2, 0xA1]
        #else
        let micro: [UInt8] = [0xA1, 0xB2, 0xC3, 0xD4], nano: [UInt8] = [0xA1, 0xB2, 0x3C, 0x4D]
        #endif
        let magic = Array(header[0..<4])
        guard magic == micro || magic == nano else { return nil }
        let major = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt16.self) }
        let minor = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 6, as: UInt16.self) }
        guard major == 2, minor == 4, SequentialSource.checkPcapHeader(header) == nil else { return nil }
        // libpcap works out the link type and snapshot length from the header.
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let handle = pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errbuf) else { return nil }
        let dlt = pcap_datalink(handle), snapshot = pcap_snapshot(handle)
        pcap_close(handle)
        // DBUS, EBHSCR and USBPCAP have larger maximums in libpcap: left to it.
        guard snapshot > 0, UInt32(snapshot) <= maximumCaptureLength, dlt != 231, dlt != 279, dlt != 249 else { return nil }
        let size = Int(s.st_size)
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else { return nil }
        _ = madvise(mapped, size, MADV_SEQUENTIAL)
        return MappedPcapSource(
            base: UnsafeRawPointer(mapped), size: size, name: path, linkType: LinkType(dlt: dlt),
            snapLength: UInt32(snapshot), nanoseconds: magic == nano, observer: observer)
    }

    private init(base: UnsafeRawPointer, size: Int, name: String, linkType: LinkType, snapLength: UInt32, nanoseconds: Bool,
                 observer: (any CaptureByteObserver)?) {
        self.base = base
        self.size = size
        self.name = name
        self.linkType = linkType
        self.snapLength = snapLength
        self.nanoseconds = nanoseconds
        self.observer = observer
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }

    /// Hands the observer the file's bytes up to `end` not yet seen.
    private func observe(upTo end: Int) {
        guard let observer, end > observed else { return }
        observer.observe(UnsafeRawBufferPointer(start: base + observed, count: end - observed))
        observed = end
    }

    @inline(__always)
    func next() throws(CaptureError) -> CapturedPacket? {
        let at = Int(offset)
        let remaining = size &- at
        if observer != nil && at &- observed >= 1 << 20 { observe(upTo: at) }
        if at &- released >= 2 &* Self.releaseStep { release(upTo: at &- Self.releaseStep) }
        guard remaining >= 16 else {
            observe(upTo: size)
            if remaining == 0 { return nil }
            throw damaged("truncated dump file; tried to read 16 header bytes, only got \(remaining)")
        }
        let h = base + at
        let seconds = Int32(littleEndian: h.loadUnaligned(as: Int32.self))
        let fraction = Int32(littleEndian: h.loadUnaligned(fromByteOffset: 4, as: Int32.self))
        let caplen = UInt32(littleEndian: h.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        let length = UInt32(littleEndian: h.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        let body = remaining &- 16
        guard caplen <= Self.maximumCaptureLength else {
            observe(upTo: size)
            throw damaged(caplen > snapLength
                ? "invalid packet capture length \(caplen), bigger than snaplen of \(snapLength)"
                : "invalid packet capture length \(caplen), bigger than maximum of \(Self.maximumCaptureLength)")
        }
        // A record longer than the snapshot length: its first snapshot-length bytes, the rest skipped (libpcap).
        let kept = min(caplen, snapLength)
        guard body >= Int(caplen) else {
            observe(upTo: size)
            throw damaged("truncated dump file; tried to read \(body < Int(kept) ? kept : caplen) captured bytes, only got \(min(body, Int(caplen)))")
        }
        offset = Int64(at &+ 16 &+ Int(caplen))
        return CapturedPacket(
            bytes: UnsafeRawBufferPointer(start: h + 16, count: Int(kept)),
            timestamp: Timestamp(seconds: Int64(seconds), nanoseconds: nanoseconds ? Int64(fraction) : Int64(fraction) &* 1_000),
            linkType: linkType,
            originalLength: Int(length))
    }

    /// Gives back the pages wholly before `end` (and already observed).
    @inline(never)
    private func release(upTo end: Int) {
        let limit = observer == nil ? end : min(end, observed)
        let page = Self.pageSize
        let to = limit / page * page
        guard to > released else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + released), to - released, MADV_DONTNEED)
        released = to
    }

    private static let pageSize = max(4096, sysconf(Int32(_SC_PAGESIZE)))

    private func damaged(_ message: String) -> CaptureError {
        CaptureError(.damaged(offset: offset), capture: name, message: message)
    }
}
