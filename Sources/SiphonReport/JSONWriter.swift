public import SiphonCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Growable bytes behind a class reference, written through a raw pointer: JSON events are built from hundreds of
/// small appends, and an `Array` append checks uniqueness and capacity and goes through a generic path for each.
final class ByteBuffer {
    var base: UnsafeMutablePointer<UInt8>
    var count = 0
    var capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }
    deinit { base.deallocate() }

    /// Room for `more` bytes past `count`.
    @inline(__always) func ensure(_ more: Int) {
        if count + more > capacity { grow(count + more) }
    }

    @inline(never) func grow(_ needed: Int) {
        var c = capacity * 2
        while c < needed { c *= 2 }
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        bigger.initialize(from: base, count: count)
        base.deallocate()
        base = bigger
        capacity = c
    }

    @inline(__always) func append(_ b: UInt8) {
        ensure(1)
        base[count] = b
        count += 1
    }

    @inline(__always) func append(_ raw: UnsafeBufferPointer<UInt8>) {
        guard let from = raw.baseAddress, raw.count > 0 else { return }
        ensure(raw.count)
        (base + count).update(from: from, count: raw.count)
        count += raw.count
    }

    func append(_ s: String) {
        var text = s
        text.withUTF8 { append($0) }
    }

    var raw: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

/// A member name of a JSON object: a string literal (the contract's names: their bytes are read where the compiler
/// put them, no `String` made or passed, and they are written without the escape scan, checked once in debug
/// builds), or a name known only at run time (`JSONKey(_:)`: escaped as any string).
public struct JSONKey: ExpressibleByStringLiteral, Sendable {
    @usableFromInline let literal: StaticString?
    @usableFromInline let text: String

    public init(stringLiteral value: StaticString) {
        literal = value
        text = ""
    }

    public init(_ text: String) {
        literal = nil
        self.text = text
    }
}

/// A minimal streaming JSON object writer: appends UTF-8 straight into a byte buffer, no intermediate values.
public struct JSONObjectWriter {
    /// The event so far (a writer is built, then written once; copies of a writer share it).
    let buffer = ByteBuffer(capacity: 1024)
    public var bytes: [UInt8] { Array(buffer.raw) }
    /// Bit d: the container at depth d already has an element (so the next one needs a comma). 64 levels.
    private var commaBits: UInt64 = 0
    private var depth = 0

    public init() {}

    public mutating func beginObject() {
        separate()
        buffer.append(UInt8(ascii: "{"))
        push()
    }

    public mutating func beginObject(_ key: JSONKey) {
        self.key(key)
        buffer.append(UInt8(ascii: "{"))
        push()
    }

    public mutating func endObject() {
        buffer.append(UInt8(ascii: "}"))
        depth -= 1
    }

    public mutating func beginArray(_ key: JSONKey) {
        self.key(key)
        buffer.append(UInt8(ascii: "["))
        push()
    }

    public mutating func endArray() {
        buffer.append(UInt8(ascii: "]"))
        depth -= 1
    }

    @inline(__always)
    private mutating func push() {
        depth += 1
        commaBits &= ~(1 << UInt64(depth & 63))
    }

    @inline(__always)
    private mutating func separate() {
        guard depth > 0 else { return }
        let bit: UInt64 = 1 << UInt64(depth & 63)
        if commaBits & bit != 0 { buffer.append(UInt8(ascii: ",")) }
        commaBits |= bit
    }

    @inline(__always)
    private mutating func key(_ key: JSONKey) {
        separate()
        guard let literal = key.literal else {
            appendString(key.text)
            buffer.append(UInt8(ascii: ":"))
            return
        }
        let n = literal.utf8CodeUnitCount
        assert(!UnsafeBufferPointer(start: literal.utf8Start, count: n).contains(where: Self.needsEscape),
               "a literal JSON key that needs escaping")
        buffer.ensure(n + 3)
        let out = buffer.base + buffer.count
        out[0] = UInt8(ascii: "\"")
        (out + 1).update(from: literal.utf8Start, count: n)
        out[n + 1] = UInt8(ascii: "\"")
        out[n + 2] = UInt8(ascii: ":")
        buffer.count += n + 3
    }

    public mutating func field(_ key: JSONKey, _ value: String) {
        self.key(key)
        appendString(value)
    }

    public mutating func field<I: BinaryInteger>(_ key: JSONKey, _ value: I) {
        self.key(key)
        if value < 0 {
            buffer.append(String(value))
            return
        }
        // Digits straight into the buffer, no String.
        var v = UInt64(value)
        var n = 1
        var p: UInt64 = 10
        while n < 20 && v >= p { n += 1; p = p &* 10 }
        buffer.ensure(n)
        let out = buffer.base + buffer.count
        var i = n
        repeat {
            i -= 1
            out[i] = UInt8(48 + v % 10)
            v /= 10
        } while i > 0
        buffer.count += n
    }

    public mutating func field(_ key: JSONKey, _ value: Double) {
        self.key(key)
        buffer.append(value.isFinite ? String(value) : "null")
    }

    public mutating func field(_ key: JSONKey, _ value: Bool) {
        self.key(key)
        buffer.append(value ? "true" : "false")
    }

    /// An array element string.
    /// `"key":["a","b",...]`.
    public mutating func field<S: Sequence<String>>(_ key: JSONKey, _ values: S) {
        beginArray(key)
        for v in values { element(v) }
        endArray()
    }

    /// `"key":[1,2,...]`.
    public mutating func field(_ key: JSONKey, integers values: [Int]) {
        beginArray(key)
        for v in values {
            separate()
            buffer.append(String(v))
        }
        endArray()
    }

    public mutating func element(_ value: String) {
        separate()
        appendString(value)
    }

    /// An address in its text form (`IPAddress.description`): an IPv4 address's digits straight into the buffer (no
    /// `String` made: flow-scoped events carry two each), an IPv6 address through its description.
    public mutating func field(_ key: JSONKey, _ address: IPAddress) {
        guard !address.isIPv6 else {
            field(key, address.description)
            return
        }
        self.key(key)
        buffer.ensure(17)
        let out = buffer.base + buffer.count
        out[0] = UInt8(ascii: "\"")
        let n = address.writeIPv4Text(to: out + 1)
        out[n + 1] = UInt8(ascii: "\"")
        buffer.count += n + 2
    }

    /// A timestamp in RFC 3339 form.
    public mutating func field(_ key: JSONKey, _ value: Timestamp) {
        self.key(key)
        buffer.ensure(29)
        let out = buffer.base + buffer.count
        out[0] = UInt8(ascii: "\"")
        value.writeRFC3339(into: out + 1)
        out[28] = UInt8(ascii: "\"")
        buffer.count += 29
    }

    @inline(__always)
    private mutating func appendString(_ s: String) {
        // Native and literal strings lend their UTF-8 without a copy; others (bridged, small) are made contiguous.
        if s.utf8.withContiguousStorageIfAvailable({ appendEscaped($0) }) == nil {
            var text = s
            text.withUTF8 { appendEscaped($0) }
        }
    }

    /// `raw` as a JSON string, written through a pointer after one capacity check for the worst case (every byte
    /// as a 6-byte `\u00XX`, and 8 bytes of slack for a word stored past the end). Eight bytes at a time (SWAR):
    /// a word with no byte below 0x20, no '"' and no '\\' is copied whole; so is the last partial word (most keys
    /// and many values are shorter than 8 bytes), read as the string's last 8 bytes (overlapping the word before)
    /// when nothing was escaped before it, or padded with 'A's in a string under 8 bytes. Only a word that needs an
    /// escape goes byte by byte.
    @inline(__always)
    private func appendEscaped(_ raw: UnsafeBufferPointer<UInt8>) {
        let n = raw.count
        buffer.ensure(n * 6 + 10)
        var out = buffer.base + buffer.count
        out.pointee = UInt8(ascii: "\"")
        out += 1
        let first = out
        if let from = raw.baseAddress {
            let base = UnsafeRawPointer(from)
            var i = 0
            while i < n {
                if i + 8 <= n {
                    let w = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    if !Self.needsEscape(w) {
                        UnsafeMutableRawPointer(out).storeBytes(of: w, as: UInt64.self)
                        out += 8
                        i += 8
                        continue
                    }
                } else if out - first == i {
                    // The tail (1-7 bytes), nothing escaped so far: output offsets equal input offsets.
                    if n >= 8 {
                        let w = base.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
                        if !Self.needsEscape(w) {
                            UnsafeMutableRawPointer(first + (n - 8)).storeBytes(of: w, as: UInt64.self)
                            out = first + n
                            break
                        }
                    } else if i == 0 {
                        var w: UInt64 = 0x4141_4141_4141_4141
                        withUnsafeMutableBytes(of: &w) { $0.baseAddress!.copyMemory(from: base, byteCount: n) }
                        if !Self.needsEscape(w) {
                            UnsafeMutableRawPointer(out).storeBytes(of: w, as: UInt64.self)
                            out += n
                            break
                        }
                    }
                }
                let c = from[i]
                if Self.needsEscape(c) {
                    out = Self.escape(c, to: out)
                } else {
                    out.pointee = c
                    out += 1
                }
                i += 1
            }
        }
        out.pointee = UInt8(ascii: "\"")
        out += 1
        buffer.count = out - buffer.base
    }

    /// Whether a byte is one JSON escapes: below 0x20, a '"' or a '\\' (bytes of 0x80 and above never are).
    @inline(__always) static func needsEscape(_ c: UInt8) -> Bool { c < 0x20 || c == 0x22 || c == 0x5C }

    /// Whether any byte of `w` is below 0x20, a '"' or a '\\' (bytes of 0x80 and above never need escaping).
    @inline(__always) static func needsEscape(_ w: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        func zeroByte(_ x: UInt64) -> UInt64 { (x &- ones) & ~x & highs }
        let below20 = (w &- ones &* 0x20) & ~w & highs
        return (below20 | zeroByte(w ^ (ones &* 0x22)) | zeroByte(w ^ (ones &* 0x5C))) != 0
    }

    /// Writes the escape of `c` at `out` (2 or 6 bytes) and returns the position after it.
    private static func escape(_ c: UInt8, to out: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        out[0] = 0x5C
        switch c {
        case UInt8(ascii: "\""): out[1] = 0x22
        case UInt8(ascii: "\\"): out[1] = 0x5C
        case 0x0A: out[1] = UInt8(ascii: "n")
        case 0x0D: out[1] = UInt8(ascii: "r")
        case 0x09: out[1] = UInt8(ascii: "t")
        default:
            out[1] = UInt8(ascii: "u")
            out[2] = 0x30
            out[3] = 0x30
            out[4] = HexDigits.digit(c >> 4)
            out[5] = HexDigits.digit(c & 15)
            return out + 6
        }
        return out + 2
    }
}

/// Where JSON Lines go: a file descriptor (buffered) or memory (for tests and embedding).
public final class EventOutput {
    private var fd: Int32
    private var ownsDescriptor: Bool
    private var buffer: [UInt8] = []
    /// Everything written, when the output is in memory.
    public private(set) var memory: [UInt8] = []
    private var inMemory: Bool
    /// A spool kept in memory until it holds more than this many bytes, then moved to an unnamed temporary file
    /// (`spool(memoryLimit:)`); nil for every other output.
    private let spillAt: Int?
    private let spillDirectory: String?
    /// Whether this spool moved to a temporary file.
    public var spilled: Bool { spillAt != nil && !inMemory }
    /// Why a spool that outgrew its memory limit could not move to a temporary file (it stays in memory: no event
    /// is lost); nil when it did, or never had to.
    public private(set) var spillError: String?
    public internal(set) var eventsWritten = 0
    /// Each event is written out as soon as it is complete (live capture: a reader sees alerts as they fire).
    public var lineBuffered = false
    /// The first write that failed (disk full, closed pipe), if one did: the events after it are lost.
    public internal(set) var writeError: String?

    /// Writes to memory; read `memory` or `lines` afterwards.
    public convenience init() { self.init(spillingAt: nil, directory: nil) }

    /// In memory; a spool (`limit` set) moves to a temporary file past `limit` bytes.
    private init(spillingAt limit: Int?, directory: String?) {
        fd = -1
        ownsDescriptor = false
        inMemory = true
        spillAt = limit
        spillDirectory = directory
    }

    /// Writes to a file descriptor (1 for standard output); `owns` closes it on deinit.
    public init(fileDescriptor: Int32, owns: Bool) {
        fd = fileDescriptor
        ownsDescriptor = owns
        inMemory = false
        spillAt = nil
        spillDirectory = nil
        buffer.reserveCapacity(1 << 16)
    }

    /// Creates or truncates `path`; `-` means standard output.
    public convenience init(path: String) throws(OutputError) {
        if path == "-" {
            self.init(fileDescriptor: 1, owns: false)
            return
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw OutputError(path: path, message: String(cString: strerror(errno))) }
        self.init(fileDescriptor: fd, owns: true)
    }

    deinit {
        flush()
        if ownsDescriptor { close(fd) }
    }

    /// Appends one event as a line.
    public func write(_ event: JSONObjectWriter) {
        eventsWritten += 1
        if inMemory {
            memory.append(contentsOf: event.buffer.raw)
            memory.append(0x0A)
            spillIfFull()
            return
        }
        buffer.append(contentsOf: event.buffer.raw)
        buffer.append(0x0A)
        if lineBuffered || buffer.count >= 1 << 16 { flush() }
    }

    /// Writes buffered lines now (events become visible to a reader of the file as soon as they are known).
    public func flush() {
        guard !inMemory, !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    if writeError == nil { writeError = n < 0 ? String(cString: strerror(errno)) : "nothing written" }
                    break
                }
                done += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// A spool: the events wait there until `copy(to:)` puts them after what must come first (the provenance
    /// event, known once the capture is read). In memory up to `memoryLimit` bytes (a small capture's events: no
    /// file is made, and `batch` does not create and delete one per capture), then in an unnamed temporary file (in
    /// `directory`, else `TMPDIR`, unlinked at once). If that file cannot be made, the spool stays in memory
    /// (`spillError`).
    public static func spool(memoryLimit: Int = 1 << 20, directory: String? = nil) -> EventOutput {
        EventOutput(spillingAt: max(0, memoryLimit), directory: directory)
    }

    /// A spool in memory past its limit moves to its file (once: after a failure it stays in memory).
    @inline(__always) private func spillIfFull() {
        if let spillAt, memory.count > spillAt, spillError == nil { spill() }
    }

    /// Moves a spool's events from memory to an unnamed temporary file, which takes every later write.
    private func spill() {
        let dir = spillDirectory ?? getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((dir + "/siphon-events-XXXXXX").utf8CString)
        let file = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard file >= 0 else {
            spillError = "\(dir): cannot write: \(String(cString: strerror(errno)))"
            return
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        fd = file
        ownsDescriptor = true
        inMemory = false
        swap(&buffer, &memory)
        memory = []
        flush()
        // The memory the spool held goes: a file's buffer needs 64 KiB.
        buffer = []
        buffer.reserveCapacity(1 << 16)
    }

    /// Appends everything written to this spool to `target` (its write failures become the target's).
    public func copy(to target: EventOutput) {
        flush()
        if let e = writeError, target.writeError == nil { target.writeError = e }
        target.eventsWritten += eventsWritten
        if inMemory {
            memory.withUnsafeBytes { target.append(raw: $0) }
            return
        }
        guard lseek(fd, 0, SEEK_SET) == 0 else {
            if target.writeError == nil { target.writeError = "spooled events: " + String(cString: strerror(errno)) }
            return
        }
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { chunk.deallocate() }
        while true {
            let n = read(fd, chunk.baseAddress, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 {
                if target.writeError == nil { target.writeError = "spooled events: " + String(cString: strerror(errno)) }
                return
            }
            if n == 0 { break }
            target.append(raw: UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
        }
    }

    /// Appends bytes that are whole lines already.
    func append(raw: UnsafeRawBufferPointer) {
        if inMemory {
            memory.append(contentsOf: raw)
            spillIfFull()
            return
        }
        buffer.append(contentsOf: raw)
        if buffer.count >= 1 << 16 { flush() }
    }

    /// The lines written so far, when in memory.
    public var lines: [String] {
        memory.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
    }
}

public struct OutputError: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "\(path): cannot write: \(message)" }
}
