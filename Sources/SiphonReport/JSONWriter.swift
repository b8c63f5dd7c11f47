public import SiphonCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A minimal streaming JSON object writer: appends UTF-8 straight into a byte buffer, no intermediate values.
public struct JSONObjectWriter {
    public private(set) var bytes: [UInt8] = []
    /// Bit d: the container at depth d already has an element (so the next one needs a comma). 64 levels.
    private var commaBits: UInt64 = 0
    private var depth = 0

    public init() { bytes.reserveCapacity(512) }

    public mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        push()
    }

    public mutating func beginObject(_ key: String) {
        self.key(key)
        bytes.append(UInt8(ascii: "{"))
        push()
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        depth -= 1
    }

    public mutating func beginArray(_ key: String) {
        self.key(key)
        bytes.append(UInt8(ascii: "["))
        push()
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        depth -= 1
    }

    private mutating func push() {
        depth += 1
        commaBits &= ~(1 << UInt64(depth & 63))
    }

    private mutating func separate() {
        guard depth > 0 else { return }
        let bit: UInt64 = 1 << UInt64(depth & 63)
        if commaBits & bit != 0 { bytes.append(UInt8(ascii: ",")) }
        commaBits |= bit
    }

    private mutating func key(_ key: String) {
        separate()
        appendString(key)
        bytes.append(UInt8(ascii: ":"))
    }

    public mutating func field(_ key: String, _ value: String) {
        self.key(key)
        appendString(value)
    }

    public mutating func field<I: BinaryInteger>(_ key: String, _ value: I) {
        self.key(key)
        if value < 0 {
            bytes.append(contentsOf: String(value).utf8)
            return
        }
        // Digits straight into the buffer, no String.
        let v = UInt64(value)
        var digits: (UInt64, Int) = (1, 1)
        while v / digits.0 >= 10 { digits = (digits.0 * 10, digits.1 + 1) }
        var p = digits.0
        while p > 0 {
            bytes.append(UInt8(48 + (v / p) % 10))
            p /= 10
        }
    }

    public mutating func field(_ key: String, _ value: Double) {
        self.key(key)
        bytes.append(contentsOf: (value.isFinite ? String(value) : "null").utf8)
    }

    public mutating func field(_ key: String, _ value: Bool) {
        self.key(key)
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    /// An array element string.
    public mutating func element(_ value: String) {
        separate()
        appendString(value)
    }

    /// A timestamp in RFC 3339 form, written straight into the buffer.
    public mutating func field(_ key: String, _ value: Timestamp) {
        self.key(key)
        bytes.append(UInt8(ascii: "\""))
        value.appendRFC3339(to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func appendString(_ s: String) {
        // Native and literal strings lend their UTF-8 without a copy; others (bridged, small) are made contiguous.
        if s.utf8.withContiguousStorageIfAvailable({ appendEscaped($0) }) == nil {
            var text = s
            text.withUTF8 { appendEscaped($0) }
        }
    }

    /// `raw` as a JSON string. Eight bytes at a time (SWAR): a word with no byte below 0x20, no '"' and no '\\' is
    /// copied as is; the runs between characters that need escaping go in one copy each.
    @inline(__always)
    private mutating func appendEscaped(_ raw: UnsafeBufferPointer<UInt8>) {
        let n = raw.count
        bytes.reserveCapacity(bytes.count + n + 2)
        bytes.append(UInt8(ascii: "\""))
        var start = 0
        var i = 0
        if let base = UnsafeRawPointer(raw.baseAddress) {
            while i < n {
                if i + 8 <= n {
                    if !Self.needsEscape(base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { i += 8; continue }
                }
                let c = base.load(fromByteOffset: i, as: UInt8.self)
                if c < 0x20 || c == 0x22 || c == 0x5C {
                    if i > start { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: raw[start..<i])) }
                    escape(c)
                    start = i + 1
                }
                i += 1
            }
        }
        if n > start { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: raw[start..<n])) }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Whether any byte of `w` is below 0x20, a '"' or a '\\' (bytes of 0x80 and above never need escaping).
    @inline(__always) static func needsEscape(_ w: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        func zeroByte(_ x: UInt64) -> UInt64 { (x &- ones) & ~x & highs }
        let below20 = (w &- ones &* 0x20) & ~w & highs
        return (below20 | zeroByte(w ^ (ones &* 0x22)) | zeroByte(w ^ (ones &* 0x5C))) != 0
    }

    private mutating func escape(_ c: UInt8) {
        switch c {
        case UInt8(ascii: "\""): bytes.append(0x5C); bytes.append(0x22)
        case UInt8(ascii: "\\"): bytes.append(0x5C); bytes.append(0x5C)
        case 0x0A: bytes.append(0x5C); bytes.append(UInt8(ascii: "n"))
        case 0x0D: bytes.append(0x5C); bytes.append(UInt8(ascii: "r"))
        case 0x09: bytes.append(0x5C); bytes.append(UInt8(ascii: "t"))
        default:
            let hex: StaticString = "0123456789abcdef"
            let digits = hex.utf8Start
            bytes.append(0x5C); bytes.append(UInt8(ascii: "u")); bytes.append(0x30); bytes.append(0x30)
            bytes.append(digits[Int(c >> 4)]); bytes.append(digits[Int(c & 15)])
        }
    }
}

/// Where JSON Lines go: a file descriptor (buffered) or memory (for tests and embedding).
public final class EventOutput {
    private let fd: Int32
    private let ownsDescriptor: Bool
    private var buffer: [UInt8] = []
    /// Everything written, when the output is in memory.
    public private(set) var memory: [UInt8] = []
    private let inMemory: Bool
    public private(set) var eventsWritten = 0

    /// Writes to memory; read `memory` or `lines` afterwards.
    public init() {
        fd = -1
        ownsDescriptor = false
        inMemory = true
    }

    /// Writes to a file descriptor (1 for standard output); `owns` closes it on deinit.
    public init(fileDescriptor: Int32, owns: Bool) {
        fd = fileDescriptor
        ownsDescriptor = owns
        inMemory = false
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
            memory.append(contentsOf: event.bytes)
            memory.append(0x0A)
            return
        }
        buffer.append(contentsOf: event.bytes)
        buffer.append(0x0A)
        if buffer.count >= 1 << 16 { flush() }
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
                    break
                }
                done += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
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
