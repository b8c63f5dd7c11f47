#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.x message head and what its body turned out to be.
public struct HTTPMessage: Sendable {
    public var isRequest: Bool
    public var method = ""
    public var uri = ""
    public var version = ""
    public var status = 0
    /// The headers Siphon reads (Host, User-Agent, Content-Length, Content-Type... see `HTTPStreamParser`).
    public var headers: [(String, String)] = []
    /// Header lines in the head, kept or not.
    public var headerCount = 0
    /// Body bytes received (after de-chunking).
    public var bodyLength = 0
    /// The first bytes of the body, up to the parser's depth (for the identifier detectors).
    public var bodyPrefix: [UInt8] = []
    /// The body ended before its declared length (gap, end of flow).
    public var bodyTruncated = false
    /// What a message holds beyond its strings and body prefix (its fields and array headers), and each kept header
    /// beyond its name and value: the figures `heldBytes` adds (the application layer's memory budget).
    static let baseCost = 200, headerCost = 48
    /// Bytes the message holds, about (its strings, kept headers and body prefix).
    public var heldBytes: Int {
        var n = Self.baseCost + uri.utf8.count + bodyPrefix.count
        for (k, v) in headers { n += Self.headerCost + k.utf8.count + v.utf8.count }
        return n
    }

    public func header(_ name: String) -> String? {
        headers.first { Self.sameHeaderName($0.0, name) }?.1
    }

    /// Whether two header names are the same, ASCII case aside (compared on bytes: no lower-cased copies).
    public static func sameHeaderName(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        func same(_ x: UInt8, _ y: UInt8) -> Bool { x == y || x | 0x20 == y | 0x20 && (x | 0x20) &- 0x61 < 26 }
        // Native strings are contiguous: compared as buffers (a zip of the two UTF-8 views cost 10 times more).
        if let r = a.utf8.withContiguousStorageIfAvailable({ p in
            b.utf8.withContiguousStorageIfAvailable { q in (0..<p.count).allSatisfy { same(p[$0], q[$0]) } }
        }), let r { return r }
        return zip(a.utf8, b.utf8).allSatisfy { same($0, $1) }
    }
}

/// An incremental HTTP/1.x parser for one direction: heads (at most 64 KiB), Content-Length and chunked bodies,
/// bodies until close; pipelined and keep-alive messages. The response side needs the request methods (a HEAD
/// response has no body) through `expectResponse(toMethod:)`.
public struct HTTPStreamParser: Sendable {
    enum State: Sendable {
        case head
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkEnd
        case trailer
        case untilClose
        case failed
    }

    public let isRequestSide: Bool
    public let bodyDepth: Int
    private var state = State.head
    private var buffer: [UInt8] = []
    private var current: HTTPMessage?
    private var pendingMethods: [String] = []
    /// The request method the last response head answered.
    private var lastMethod = ""
    public private(set) var failure: String?
    /// Bytes of the message being read that it keeps (header strings, body prefix): with the line buffer, what the
    /// parser holds (`bufferedBytes`).
    private var currentBytes = 0
    /// What the parser holds: the line being read and the kept parts of the message being read.
    public var bufferedBytes: Int { buffer.count + currentBytes }

    /// Requests a flow may have waiting for their responses (clients pipeline a few); beyond, the oldest is
    /// given up as unanswered.
    public static let maximumPendingRequests = 256

    public init(requests: Bool, bodyDepth: Int = 4096) {
        isRequestSide = requests
        self.bodyDepth = bodyDepth
    }

    public var failed: Bool { if case .failed = state { return true } else { return false } }

    /// Tells the response side which request a coming response answers (HEAD responses carry no body).
    public mutating func expectResponse(toMethod method: String) {
        // As many as the application layer keeps requests waiting (the oldest go out unanswered beyond).
        if pendingMethods.count >= Self.maximumPendingRequests { pendingMethods.removeFirst() }
        pendingMethods.append(method)
    }

    /// Feeds bytes; returns the messages completed by them (heads with their bodies).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [HTTPMessage] {
        var consumed = 0
        return feed(bytes, stopAfterConnect: false, consumed: &consumed)
    }

    /// Feeds bytes, stopping right after a CONNECT request or a 2xx answer to one when `stopAfterConnect`: what
    /// follows may be another protocol. `consumed` says how many bytes were read.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, stopAfterConnect: Bool, consumed: inout Int) -> [HTTPMessage] {
        var done: [HTTPMessage] = []
        var i = 0
        defer { consumed = i }
        while i < bytes.count {
            if stopAfterConnect, let last = done.last,
                (last.isRequest && last.method == "CONNECT") || (!last.isRequest && lastMethod == "CONNECT" && (200..<300).contains(last.status))
            {
                if !last.isRequest { fail("tunnel") }
                return done
            }
            switch state {
            case .failed:
                return done
            case .head, .chunkSize, .chunkEnd, .trailer:
                // Line-oriented states: collect up to the next LF.
                guard let found = memchr(bytes.baseAddress! + i, 0x0A, bytes.count - i) else {
                    buffer.append(contentsOf: bytes[i...])
                    i = bytes.count
                    if buffer.count > 65_536 { fail("line or head over 64 KiB") }
                    continue
                }
                let lf = found - UnsafeMutableRawPointer(mutating: bytes.baseAddress!)
                if buffer.isEmpty {
                    // The whole line is in these bytes: read in place, not copied into the line buffer first.
                    let text = UnsafeRawBufferPointer(rebasing: bytes[i...lf])
                    i = lf + 1
                    if text.count > 65_536 { fail("head over 64 KiB"); continue }
                    line(text, &done)
                } else {
                    buffer.append(contentsOf: bytes[i...lf])
                    i = lf + 1
                    if buffer.count > 65_536 { fail("head over 64 KiB"); continue }
                    // Read from the buffer taken out of the parser (handling a line may fail it, which empties
                    // the buffer), then put back empty with its capacity.
                    var held: [UInt8] = []
                    swap(&held, &buffer)
                    held.withUnsafeBytes { line($0, &done) }
                    if !failed {
                        held.removeAll(keepingCapacity: true)
                        buffer = held
                    }
                }
            case .body(let remaining):
                let n = min(remaining, bytes.count - i)
                body(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + n)]))
                i += n
                if remaining - n == 0 { finish(&done) } else { state = .body(remaining: remaining - n) }
            case .chunkData(let remaining):
                let n = min(remaining, bytes.count - i)
                body(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + n)]))
                i += n
                state = remaining - n == 0 ? .chunkEnd : .chunkData(remaining: remaining - n)
            case .untilClose:
                body(UnsafeRawBufferPointer(rebasing: bytes[i...]))
                i = bytes.count
            }
        }
        return done
    }

    private mutating func body(_ b: UnsafeRawBufferPointer) {
        guard current != nil else { return }
        // Through the unwrapped message in place (`current?.x` reads copied the whole message, line after line).
        let depth = bodyDepth
        func add(_ m: inout HTTPMessage) -> Int {
            m.bodyLength += b.count
            let have = m.bodyPrefix.count
            guard have < depth else { return 0 }
            m.bodyPrefix.append(contentsOf: b.prefix(depth - have))
            return min(b.count, depth - have)
        }
        currentBytes += add(&current!)
    }

    /// Handles a complete line (its LF included), read in place.
    private mutating func line(_ bytes: UnsafeRawBufferPointer, _ done: inout [HTTPMessage]) {
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D { end -= 1 }
        handle(line: UnsafeRawBufferPointer(rebasing: bytes[..<end]), &done)
    }

    private mutating func handle(line text: UnsafeRawBufferPointer, _ done: inout [HTTPMessage]) {
        switch state {
        case .head:
            if current == nil {
                if text.isEmpty { return }  // stray CRLF between messages
                guard startLine(text) else { return }
                return
            }
            if text.isEmpty { headEnded(&done); return }
            guard let colon = text.firstIndex(of: UInt8(ascii: ":")) else { fail("header line without a colon"); return }
            currentBytes += Self.header(text, colon: colon, to: &current!)
        case .chunkSize:
            let s = String(decoding: text, as: UTF8.self)
            let hex = s.split(separator: ";", maxSplits: 1).first.map { String($0).trimmingSpaces() } ?? ""
            guard let size = Int(hex, radix: 16), size >= 0 else { fail("bad chunk size \(s.prefix(20))"); return }
            state = size == 0 ? .trailer : .chunkData(remaining: size)
        case .chunkEnd:
            state = .chunkSize
        case .trailer:
            if text.isEmpty { finish(&done) }
        default:
            break
        }
    }

    /// Counts a header line in `m` and keeps it when something reads it; the bytes it holds now. `m` is the parser's
    /// message in place: reading `current?.headers` copied the whole message for every line.
    private static func header(_ text: UnsafeRawBufferPointer, colon: Int, to m: inout HTTPMessage) -> Int {
        m.headerCount += 1
        // Only the headers something reads become strings; the others are counted.
        guard let name = kept(UnsafeRawBufferPointer(rebasing: text[..<colon])) else { return 0 }
        var start = colon + 1, end = text.count
        while start < end, text[start] == 0x20 || text[start] == 0x09 { start += 1 }
        while end > start, text[end - 1] == 0x20 || text[end - 1] == 0x09 { end -= 1 }
        // A message repeating a kept header without end keeps its first 64 (all are counted).
        guard m.headers.count < 64 else { return 0 }
        m.headers.append((name, String(decoding: UnsafeRawBufferPointer(rebasing: text[start..<end]), as: UTF8.self)))
        return HTTPMessage.headerCost + name.utf8.count + (end - start)
    }

    private mutating func startLine(_ line: UnsafeRawBufferPointer) -> Bool {
        // Up to three space-separated parts (empty ones skipped, the third runs to the end), found on bytes; only
        // the parts a message keeps become strings (no array of them per message).
        var parts = (0..<0, 0..<0, 0..<0)
        var count = 0
        var start = 0
        var i = 0
        while i <= line.count && count < 3 {
            if i == line.count || (line[i] == 0x20 && count < 2) {
                if i > start {
                    switch count {
                    case 0: parts.0 = start..<i
                    case 1: parts.1 = start..<i
                    default: parts.2 = start..<i
                    }
                    count += 1
                }
                start = i + 1
            }
            i += 1
        }
        func text(_ r: Range<Int>) -> String { String(decoding: UnsafeRawBufferPointer(rebasing: line[r]), as: UTF8.self) }
        guard count >= 2 else { fail(isRequestSide ? "not an HTTP request line" : "not an HTTP status line"); return false }
        if isRequestSide {
            let method = text(parts.0)
            guard HTTPStreamParser.methods.contains(method) else { fail("not an HTTP request line"); return false }
            let uri = text(parts.1)
            current = HTTPMessage(isRequest: true, method: method, uri: uri, version: count > 2 ? text(parts.2) : "HTTP/0.9")
            currentBytes = HTTPMessage.baseCost + uri.utf8.count
        } else {
            let version = text(parts.0)
            guard version.hasPrefix("HTTP/"), let status = Int(text(parts.1)) else { fail("not an HTTP status line"); return false }
            current = HTTPMessage(isRequest: false, version: version, status: status)
            currentBytes = HTTPMessage.baseCost
        }
        return true
    }

    /// Header names kept as strings (the rest are only counted), matched case-insensitively on bytes.
    static let keptNames: [String] = [
        "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Content-Type", "Content-Encoding", "Referer",
        "Cookie", "Authorization", "X-Forwarded-For", "Server", "Location", "Set-Cookie", "Upgrade",
    ]
    static let keptBytes: [[UInt8]] = keptNames.map { Array($0.lowercased().utf8) }

    static func kept(_ name: UnsafeRawBufferPointer) -> String? {
        var n = name.count
        while n > 0, name[n - 1] == 0x20 || name[n - 1] == 0x09 { n -= 1 }
        guard n >= 4 && n <= 17 else { return nil }  // the kept names are 4 to 17 bytes long
        // Compared in place, case-insensitively, with the few names of the same length (no array per header).
        outer: for (i, kept) in keptBytes.enumerated() where kept.count == n {
            for j in 0..<n {
                let a = name[j]
                if (a >= 0x41 && a <= 0x5A ? a | 0x20 : a) != kept[j] { continue outer }
            }
            return keptNames[i]
        }
        return nil
    }

    static let methods: Set<String> = [
        "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT", "PATCH", "TRACE", "PROPFIND", "PROPPATCH",
        "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH", "SUBSCRIBE", "NOTIFY", "M-SEARCH",
    ]

    private mutating func headEnded(_ done: inout [HTTPMessage]) {
        guard let m = current else { return }
        let chunked = m.header("Transfer-Encoding")?.lowercasedIfNeeded().contains("chunked") == true
        let length = m.header("Content-Length").flatMap { Int($0.trimmingSpaces()) }
        if m.isRequest {
            if chunked { state = .chunkSize } else if let length, length > 0 { state = .body(remaining: length) } else { finish(&done) }
            return
        }
        let method = pendingMethods.isEmpty ? "" : pendingMethods.removeFirst()
        lastMethod = method
        if method == "CONNECT" && (200..<300).contains(m.status) {
            finish(&done)  // a tunnel: no body, and what follows is not HTTP
            return
        }
        if method == "HEAD" || m.status < 200 || m.status == 204 || m.status == 304 {
            finish(&done)
            // 1xx responses are followed by the real response to the same request.
            if m.status < 200 && m.status != 101 { pendingMethods.insert(method, at: 0) }
            if m.status == 101 { state = .failed; failure = "protocol switched" }
        } else if chunked {
            state = .chunkSize
        } else if let length {
            if length > 0 { state = .body(remaining: length) } else { finish(&done) }
        } else {
            state = .untilClose
        }
    }

    private mutating func finish(_ done: inout [HTTPMessage]) {
        if let m = current { done.append(m) }
        current = nil
        currentBytes = 0
        if case .failed = state { return }
        state = .head
    }

    private mutating func fail(_ reason: String) {
        failure = reason
        state = .failed
        buffer = []
    }

    /// The stream lost bytes: a message being read is cut short; parsing cannot resume reliably.
    public mutating func gap() -> [HTTPMessage] {
        var out: [HTTPMessage] = []
        if var m = current {
            m.bodyTruncated = true
            out.append(m)
            current = nil
            currentBytes = 0
        currentBytes = 0
        }
        fail("gap in the stream")
        return out
    }

    /// The stream ended: a body read until close is complete; anything else in progress is truncated.
    public mutating func end() -> [HTTPMessage] {
        guard var m = current else { return [] }
        if case .untilClose = state {} else { m.bodyTruncated = true }
        current = nil
        currentBytes = 0
        return [m]
    }
}
