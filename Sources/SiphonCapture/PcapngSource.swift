import SiphonCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A native pcapng reader (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html): several sections
/// of either byte order, several interfaces with their own link type, snapshot length, timestamp resolution
/// and offset; Enhanced, Simple and obsolete Packet Blocks; drop counts from Interface Statistics Blocks.
/// Other blocks (name resolution, decryption secrets, custom) are skipped by their length.
///
/// Every length is checked before use; a damaged block stops reading with its file offset. Error texts follow
/// libpcap's where libpcap has one for the same damage.
final class PcapngSource {
    private struct Interface {
        var linkType: LinkType
        var snapLength: UInt32
        /// Timestamp units per second (10^6 unless `if_tsresol` says otherwise).
        var unitsPerSecond: UInt64 = 1_000_000
        var offsetSeconds: Int64 = 0
    }

    static let maximumBlockLength = 64 << 20

    private let file: UnsafeMutablePointer<FILE>
    private let closeOnDeinit: Bool
    private let name: String
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    /// Bytes already read from `file` for the block being assembled (the 4 magic bytes at first).
    private var carried: [UInt8]
    private var swapped = false
    private var interfaces: [Interface] = []
    /// The section being read (0 for the first): interface IDs count from 0 again in each.
    private(set) var section = -1
    /// The current section's interfaces so far (their link type and snapshot length), by interface ID.
    var interfaceList: [CaptureInterface] {
        interfaces.enumerated().map { CaptureInterface(name: "interface \($0.offset)", linkType: $0.element.linkType, snapLength: $0.element.snapLength) }
    }
    /// File offset of the next block.
    private(set) var offset: Int64 = 0
    private(set) var reportedDrops: UInt64?
    private var dropsByInterface: [Int: UInt64] = [:]
    private(set) var reportedSystemDrops: UInt64?
    private var systemDropsByInterface: [Int: UInt64] = [:]

    /// The file's stdio buffer, freed after the file is closed (when this source goes).
    private let ioBuffer: StdioBuffer?

    init(file: UnsafeMutablePointer<FILE>, closeOnDeinit: Bool, name: String, magic: [UInt8], ioBuffer: StdioBuffer? = nil) throws(CaptureError) {
        self.ioBuffer = ioBuffer
        self.file = file
        self.closeOnDeinit = closeOnDeinit
        self.name = name
        capacity = 1 << 16
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
        carried = magic
        // The first block must be a Section Header Block; damage there means the file cannot be opened at all.
        do throws(CaptureError) {
            guard let (type, _) = try readBlock(), type == 0x0A0D_0D0A else {
                throw CaptureError(.badFormat, capture: name, message: "pcapng file does not start with a Section Header Block")
            }
            // Like libpcap, read up to the first Interface Description Block before calling the file open.
            while interfaces.isEmpty, let (type, total) = try readBlock() {
                if try handle(type: type, total: total, at: offset - Int64(total)) != nil {
                    throw CaptureError(.badFormat, capture: name, message: "a packet block comes before any Interface Description Block")
                }
            }
        } catch {
            // Every stored property is initialized: deinit runs and releases the file and the buffer.
            throw CaptureError(.badFormat, capture: name, message: error.message)
        }
    }

    deinit {
        if closeOnDeinit { fclose(file) }
        buffer.deallocate()
    }

    private func damaged(_ message: String, at blockOffset: Int64) -> CaptureError {
        CaptureError(.damaged(offset: blockOffset), capture: name, message: message)
    }

    @inline(__always)
    private func u16(_ body: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        let v = body.baseAddress.unsafelyUnwrapped.loadUnaligned(fromByteOffset: at, as: UInt16.self)
        return swapped ? v.byteSwapped : v
    }

    @inline(__always)
    private func u32(_ body: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        let v = body.baseAddress.unsafelyUnwrapped.loadUnaligned(fromByteOffset: at, as: UInt32.self)
        return swapped ? v.byteSwapped : v
    }

    private func u64(_ body: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        let v = body.baseAddress.unsafelyUnwrapped.loadUnaligned(fromByteOffset: at, as: UInt64.self)
        return swapped ? v.byteSwapped : v
    }

    /// Reads exactly `count` bytes into `buffer + at`, first from `carried`. Returns how many it got.
    private func fill(_ at: Int, _ count: Int) -> Int {
        var done = 0
        if !carried.isEmpty {
            let n = min(count, carried.count)
            carried.withUnsafeBytes { (buffer + at).copyMemory(from: $0.baseAddress!, byteCount: n) }
            carried.removeFirst(n)
            done = n
        }
        if done < count { done += fread(buffer + at + done, 1, count - done, file) }
        return done
    }

    private func ensureCapacity(_ n: Int) {
        guard n > capacity else { return }
        var c = capacity
        while c < n { c *= 2 }
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 8)
        bigger.copyMemory(from: buffer, byteCount: capacity)
        buffer.deallocate()
        buffer = bigger
        capacity = c
    }

    /// Reads the next whole block into `buffer`; returns its type and total length, or nil at a clean end of file.
    /// A Section Header Block resets the byte order and the interface list.
    private func readBlock() throws(CaptureError) -> (UInt32, Int)? {
        let start = offset
        let got = fill(0, 8)
        if got == 0 { return nil }
        if got < 8 {
            throw damaged("truncated pcapng dump file; tried to read 8 bytes of block header, only got \(got)", at: start)
        }
        let head = UnsafeRawBufferPointer(start: buffer, count: 8)
        var type = u32(head, 0)
        if type == 0x0A0D_0D0A {
            // The byte-order magic decides how this section's integers read, the SHB's own length included.
            guard fill(8, 4) == 4 else { throw damaged("truncated pcapng dump file in a Section Header Block", at: start) }
            let bom = buffer.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
            if bom == 0x1A2B_3C4D {
                swapped = false
            } else if bom == 0x4D3C_2B1A {
                swapped = true
            } else {
                throw damaged("Section Header Block has an invalid byte-order magic 0x\(String(bom, radix: 16))", at: start)
            }
            type = 0x0A0D_0D0A
        }
        let total = Int(u32(UnsafeRawBufferPointer(start: buffer, count: 8), 4))
        if total < 12 {
            throw damaged("block in pcapng dump file has a length of \(total) < 12", at: start)
        }
        if total % 4 != 0 {
            throw damaged("block in pcapng dump file has a length of \(total) that is not a multiple of 4", at: start)
        }
        if total > PcapngSource.maximumBlockLength {
            throw damaged("pcapng block size \(total) > maximum \(PcapngSource.maximumBlockLength)", at: start)
        }
        ensureCapacity(total)
        let already = type == 0x0A0D_0D0A ? 12 : 8
        if type == 0x0A0D_0D0A && total < 28 {
            throw damaged("Section Header Block has a length of \(total) < 28", at: start)
        }
        let rest = fill(already, total - already)
        if rest < total - already {
            throw damaged("truncated pcapng dump file; tried to read \(total - already) bytes of block, only got \(rest)", at: start)
        }
        let block = UnsafeRawBufferPointer(start: buffer, count: total)
        let trailer = Int(u32(block, total - 4))
        // libpcap does not compare a Section Header Block's trailer (its options are checked instead); neither do we,
        // so that damage is reported where libpcap reports it.
        if trailer != total && type != 0x0A0D_0D0A {
            throw damaged("block total length in header \(total) and trailer \(trailer) don't match", at: start)
        }
        offset += Int64(total)
        if type == 0x0A0D_0D0A {
            let major = u16(block, 12)
            let minor = u16(block, 14)
            // libpcap reads 1.0 and 1.2 (1.2 was written by some tools); 1.1 and 0.x are refused.
            guard major == 1, minor == 0 || minor == 2 else {
                throw damaged("unsupported pcapng savefile version \(major).\(minor)", at: start)
            }
            interfaces.removeAll(keepingCapacity: true)
            section += 1
        }
        return (type, total)
    }

    /// Walks the options of a block body from `from` to `end` (the trailer), calling `body(code, valueOffset, length)`.
    private func forEachOption(
        _ block: UnsafeRawBufferPointer, from: Int, end: Int, at blockOffset: Int64,
        _ body: (UInt16, Int, Int) throws(CaptureError) -> Void
    ) throws(CaptureError) {
        var p = from
        while p + 4 <= end {
            let code = u16(block, p)
            let length = Int(u16(block, p + 2))
            if code == 0 { return }  // opt_endofopt
            let padded = (length + 3) & ~3
            guard p + 4 + padded <= end else {
                throw damaged("option \(code) of length \(length) runs past the end of its block", at: blockOffset)
            }
            try body(code, p + 4, length)
            p += 4 + padded
        }
    }

    private func timestamp(_ high: UInt32, _ low: UInt32, _ interface: Interface) -> Timestamp {
        let units = UInt64(high) << 32 | UInt64(low)
        let perSecond = interface.unitsPerSecond
        let seconds = units / perSecond
        let remainder = units % perSecond
        let nanos = remainder.multipliedFullWidth(by: 1_000_000_000)
        let (fraction, _) = perSecond.dividingFullWidth(nanos)
        return Timestamp(
            seconds: Int64(truncatingIfNeeded: seconds) &+ interface.offsetSeconds,
            nanoseconds: Int64(truncatingIfNeeded: fraction))
    }

    func next() throws(CaptureError) -> CapturedPacket? {
        while true {
            let blockStart = offset
            guard let (type, total) = try readBlock() else { return nil }
            if let packet = try handle(type: type, total: total, at: blockStart) { return packet }
        }
    }

    /// Interprets the block in `buffer`: interfaces and statistics are recorded, a packet block is returned.
    private func handle(type: UInt32, total: Int, at blockStart: Int64) throws(CaptureError) -> CapturedPacket? {
        let block = UnsafeRawBufferPointer(start: buffer, count: total)
        let end = total - 4
        switch type {
        case 1:  // Interface Description Block
            guard total >= 20 else { throw damaged("Interface Description Block is \(total) bytes long", at: blockStart) }
            var interface = Interface(linkType: LinkType(rawValue: UInt32(u16(block, 8))), snapLength: u32(block, 12))
            try forEachOption(block, from: 16, end: end, at: blockStart) { (code, at, length) throws(CaptureError) in
                if code == 9 && length >= 1 {  // if_tsresol
                    let r = block[at]
                    let exponent = UInt64(r & 0x7F)
                    if r & 0x80 == 0 {
                        guard exponent <= 19 else { throw damaged("if_tsresol 10^-\(exponent) is out of range", at: blockStart) }
                        var v: UInt64 = 1
                        for _ in 0..<exponent { v *= 10 }
                        interface.unitsPerSecond = v
                    } else {
                        guard exponent <= 63 else { throw damaged("if_tsresol 2^-\(exponent) is out of range", at: blockStart) }
                        interface.unitsPerSecond = 1 << exponent
                    }
                } else if code == 14 && length >= 8 {  // if_tsoffset
                    interface.offsetSeconds = Int64(bitPattern: u64(block, at))
                }
            }
            interfaces.append(interface)
        case 6, 2:  // Enhanced Packet Block, obsolete Packet Block
            guard total >= 32 else { throw damaged("packet block is \(total) bytes long", at: blockStart) }
            let id = type == 6 ? Int(u32(block, 8)) : Int(u16(block, 8))
            guard id < interfaces.count else {
                throw damaged("a packet block refers to interface \(id) but the section has \(interfaces.count)", at: blockStart)
            }
            let caplen = Int(u32(block, 20))
            guard 28 + caplen <= end else {
                throw damaged("packet block's captured length \(caplen) exceeds the block (\(total) bytes)", at: blockStart)
            }
            let interface = interfaces[id]
            return CapturedPacket(
                bytes: UnsafeRawBufferPointer(start: buffer + 28, count: caplen),
                timestamp: timestamp(u32(block, 12), u32(block, 16), interface),
                linkType: interface.linkType,
                originalLength: max(Int(u32(block, 24)), caplen),
                interfaceID: id)
        case 3:  // Simple Packet Block: interface 0, no timestamp
            guard total >= 16 else { throw damaged("Simple Packet Block is \(total) bytes long", at: blockStart) }
            guard let interface = interfaces.first else {
                throw damaged("a Simple Packet Block comes before any Interface Description Block", at: blockStart)
            }
            let original = Int(u32(block, 8))
            var caplen = min(original, end - 12)
            if interface.snapLength > 0 { caplen = min(caplen, Int(interface.snapLength)) }
            return CapturedPacket(
                bytes: UnsafeRawBufferPointer(start: buffer + 12, count: caplen),
                timestamp: .zero, linkType: interface.linkType, originalLength: original, interfaceID: 0)
        case 5:  // Interface Statistics Block
            guard total >= 24 else { throw damaged("Interface Statistics Block is \(total) bytes long", at: blockStart) }
            let id = Int(u32(block, 8))
            try forEachOption(block, from: 20, end: end, at: blockStart) { (code, at, length) throws(CaptureError) in
                if code == 5 && length >= 8 {  // isb_ifdrop: cumulative for this interface
                    dropsByInterface[id] = u64(block, at)
                    reportedDrops = dropsByInterface.values.reduce(0, +)
                }
                if code == 7 && length >= 8 {  // isb_osdrop: cumulative, dropped by the capturing system
                    systemDropsByInterface[id] = u64(block, at)
                    reportedSystemDrops = systemDropsByInterface.values.reduce(0, +)
                }
            }
        default:
            break  // SHB (handled in readBlock), NRB, DSB, custom and unknown blocks
        }
        return nil
    }
}
