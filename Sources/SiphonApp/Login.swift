internal import Foundation
import SiphonCore

/// What a cleartext session gave away: a user and secret (SMTP AUTH, POP3/FTP USER and PASS, IMAP LOGIN, HTTP
/// Basic, a form's password field), a mail sent (sender, recipients, attachments), a file stored over FTP, an IRC
/// registration, a shell's output.
public struct LoginRecord: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case credential, mail, upload
        /// An IRC client registered (NICK and USER) or joined a channel.
        case session
        /// A command shell's output sent by the flow's initiator (a reverse shell).
        case shell
    }
    public var kind: Kind
    /// `smtp`, `pop3`, `imap`, `ftp`, `http`, `irc`.
    public var app: String
    /// How the secret went: `AUTH PLAIN`, `AUTH LOGIN`, `USER/PASS`, `LOGIN`, `Basic`, `form`...
    public var mechanism = ""
    public var user: String?
    public var secret: String?
    /// A mail (SMTP DATA): envelope sender and recipients, attachment file names, subject, size of the message.
    public var from: String?
    public var recipients: [String] = []
    public var attachments: [String] = []
    public var subject: String?
    public var bytes = 0
    /// A file stored (FTP STOR, APPE, STOU).
    public var file: String?
    /// IRC: the nickname, the real name given with USER, the channels joined so far (8 at most).
    public var nick: String?
    public var realName: String?
    public var channels: [String] = []
    /// A shell's output: what it showed (`mechanism` names it: id, passwd, shadow, cmd.exe, PowerShell), as sent.
    public var output: String?

    public init(kind: Kind, app: String) {
        self.kind = kind
        self.app = app
    }

    /// A secret for people to read: its first and last characters, the rest as asterisks (the JSON evidence keeps
    /// it whole).
    public static func mask(_ secret: String) -> String {
        let c = Array(secret)
        guard c.count > 2 else { return String(repeating: "*", count: c.count) }
        return String(c[0]) + String(repeating: "*", count: min(c.count - 2, 12)) + String(c[c.count - 1])
    }
}

/// Reads the client side of an SMTP, POP3, IMAP or FTP conversation line by line and keeps what a login or a mail
/// gives away. Bounded: a line longer than 4 KiB is skipped; mail contents are not kept, only header lines that
/// name an attachment or the subject. A class: a flow's record holds a reference, not the watcher's lines and
/// records (an IRC session's and a mail's are a few hundred bytes), and most flows have none.
final class LoginWatcher {
    let app: AppProtocol
    private var line: [UInt8] = []
    /// Bytes of the current line dropped because it grew past `maximumLine` (counted in a mail's size).
    private var skipped = 0
    /// SMTP AUTH LOGIN/PLAIN and IMAP AUTHENTICATE PLAIN continue on the next lines.
    private enum Pending { case none, loginUser, loginSecret, plain }
    private var pending = Pending.none
    private var user: String?
    private var mechanism = ""
    private var mail: LoginRecord?
    private var inData = false
    /// IRC: what the client said of itself (registered once it gave a nick and a user).
    private var session = LoginRecord(kind: .session, app: "irc")
    /// Records found since the last `take`.
    private(set) var found: [LoginRecord] = []

    static let maximumLine = 4096

    init(app: AppProtocol) { self.app = app }

    var bufferedBytes: Int { line.count }

    /// The records found since the last call (none: no array is made).
    func take() -> [LoginRecord] {
        guard !found.isEmpty else { return [] }
        defer { found = [] }
        return found
    }

    func feed(_ bytes: UnsafeRawBufferPointer) {
        var start = 0
        for i in 0..<bytes.count where bytes[i] == 0x0A {
            consume(bytes[start..<i])
            start = i + 1
        }
        guard start < bytes.count else { return }
        if skipped > 0 {
            skipped += bytes.count - start
            return
        }
        line.append(contentsOf: bytes[start...])
        if line.count > Self.maximumLine {
            skipped = line.count
            line = []
        }
    }

    private func consume(_ tail: UnsafeRawBufferPointer.SubSequence) {
        if skipped > 0 {
            if inData { mail?.bytes += skipped + tail.count + 1 }
            skipped = 0
            return
        }
        line.append(contentsOf: tail)
        if line.last == 0x0D { line.removeLast() }
        let text = String(decoding: line, as: UTF8.self)
        let count = line.count
        line = []
        if inData {
            dataLine(text, count)
        } else {
            command(text)
        }
    }

    private func dataLine(_ text: String, _ count: Int) {
        if text == "." {
            inData = false
            if let m = mail { found.append(m) }
            mail?.attachments = []
            mail?.subject = nil
            mail?.bytes = 0
            return
        }
        mail?.bytes += count + 2
        let lower = text.lowercased()
        if mail?.subject == nil, lower.hasPrefix("subject:") {
            mail?.subject = String(String(text.dropFirst(8)).trimmingCharacters(in: " \t").prefix(256))
        }
        if let r = lower.range(of: "filename=") ?? lower.range(of: "filename*=") ?? (lower.contains("content-type:") ? lower.range(of: " name=") : nil) {
            var value = String(text[r.upperBound...]).trimmingCharacters(in: " \t;")
            if value.hasPrefix("\"") { value = String(value.dropFirst().prefix { $0 != "\"" }) }
            value = String(value.prefix(256))
            if !value.isEmpty, mail?.attachments.contains(value) == false, (mail?.attachments.count ?? 0) < 32 {
                mail?.attachments.append(value)
            }
        }
    }

    private func command(_ text: String) {
        switch pending {
        case .loginUser:
            pending = .loginSecret
            user = Self.base64(text)
            return
        case .loginSecret:
            pending = .none
            emit(user: user, secret: Self.base64(text))
            return
        case .plain:
            pending = .none
            plain(text)
            return
        case .none:
            break
        }
        let words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard let first = words.first else { return }
        let verb = first.uppercased()
        switch app {
        case .smtp:
            switch verb {
            case "AUTH" where words.count >= 2:
                let m = words[1].uppercased()
                mechanism = "AUTH " + m
                if m == "PLAIN" {
                    if words.count >= 3 { plain(words[2]) } else { pending = .plain }
                } else if m == "LOGIN" {
                    if words.count >= 3 {
                        user = Self.base64(words[2])
                        pending = .loginSecret
                    } else {
                        pending = .loginUser
                    }
                }
            case "MAIL":
                mail = LoginRecord(kind: .mail, app: "smtp")
                mail?.from = Self.address(text)
            case "RCPT":
                if let a = Self.address(text), (mail?.recipients.count ?? 0) < 64 { mail?.recipients.append(a) }
            case "DATA":
                if mail != nil { inData = true }
            case "RSET":
                mail = nil
            default: break
            }
        case .pop3, .ftp:
            if verb == "USER", words.count >= 2 {
                user = String(text.dropFirst(5).prefix(256))
            } else if verb == "PASS" {
                mechanism = "USER/PASS"
                emit(user: user, secret: String(text.dropFirst(min(5, text.count)).prefix(256)))
            } else if app == .ftp, ["STOR", "APPE", "STOU"].contains(verb) {
                var r = LoginRecord(kind: .upload, app: "ftp")
                r.user = user
                r.file = String(text.dropFirst(min(5, text.count)).prefix(256))
                found.append(r)
            }
        case .irc:
            irc(verb, words, text)
        case .imap:
            guard words.count >= 2 else { return }
            let command = words[1].uppercased()
            if command == "LOGIN", words.count >= 4 {
                mechanism = "LOGIN"
                let args = Self.imapArguments(text.split(separator: " ", maxSplits: 2).last.map(String.init) ?? "")
                if args.count >= 2 { emit(user: args[0], secret: args[1]) }
            } else if command == "AUTHENTICATE", words.count >= 3, words[2].uppercased() == "PLAIN" {
                mechanism = "AUTHENTICATE PLAIN"
                if words.count >= 4 { plain(words[3]) } else { pending = .plain }
            }
        default:
            break
        }
    }

    /// IRC client lines (RFC 2812): PASS, NICK, USER (`USER <user> <mode> <unused> :<real name>`), JOIN. A record
    /// when registration completes (NICK and USER seen), then one per JOIN (8 at most); a server password goes out as
    /// a credential.
    private func irc(_ verb: String, _ words: [String], _ text: String) {
        func clip(_ w: some StringProtocol) -> String { String(w.prefix(64)) }
        let registered = session.nick != nil && session.user != nil
        switch verb {
        case "PASS" where words.count >= 2:
            mechanism = "PASS"
            emit(user: nil, secret: String(words[1].drop { $0 == ":" }.prefix(256)))
        case "NICK" where words.count >= 2:
            session.nick = clip(words[1].drop { $0 == ":" })
            if registered { found.append(session) }
        case "USER" where words.count >= 2:
            session.user = clip(words[1])
            if let colon = text.range(of: " :") { session.realName = String(text[colon.upperBound...].prefix(128)) }
        case "JOIN" where words.count >= 2 && registered:
            let before = session.channels.count
            for c in words[1].split(separator: ",").map(clip) where session.channels.count < 8 && !session.channels.contains(c) {
                session.channels.append(c)
            }
            if session.channels.count > before { found.append(session) }
        default:
            break
        }
        if !registered, session.nick != nil, session.user != nil { found.append(session) }
    }

    /// SASL PLAIN: base64 of authzid NUL authcid NUL password.
    private func plain(_ text: String) {
        guard let data = Data(base64Encoded: text.trimmingCharacters(in: " ")) else { return }
        let parts = data.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard parts.count >= 3 else { return }
        emit(user: parts[1].isEmpty ? parts[0] : parts[1], secret: parts[2])
    }

    private func emit(user: String?, secret: String?) {
        guard let secret, !secret.isEmpty else { return }
        var r = LoginRecord(kind: .credential, app: app.rawValue)
        r.mechanism = mechanism
        r.user = user
        r.secret = secret
        found.append(r)
    }

    static func base64(_ text: String) -> String? {
        Data(base64Encoded: text.trimmingCharacters(in: " ")).map { String(decoding: $0.prefix(256), as: UTF8.self) }
    }

    /// The address of `MAIL FROM:<a>` or `RCPT TO:<a>`.
    static func address(_ text: String) -> String? {
        if let open = text.firstIndex(of: "<"), let close = text[open...].firstIndex(of: ">") {
            let a = String(text[text.index(after: open)..<close])
            return a.isEmpty ? nil : String(a.prefix(256))
        }
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let a = String(text[text.index(after: colon)...]).trimmingCharacters(in: " ")
        return a.isEmpty ? nil : String(a.prefix(256))
    }

    /// IMAP astrings: quoted (with backslash escapes) or atoms.
    static func imapArguments(_ text: String) -> [String] {
        var out: [String] = []
        var i = text.startIndex
        while i < text.endIndex, out.count < 2 {
            while i < text.endIndex, text[i] == " " { i = text.index(after: i) }
            guard i < text.endIndex else { break }
            var value = ""
            if text[i] == "\"" {
                i = text.index(after: i)
                while i < text.endIndex, text[i] != "\"" {
                    if text[i] == "\\", text.index(after: i) < text.endIndex { i = text.index(after: i) }
                    value.append(text[i])
                    i = text.index(after: i)
                }
                if i < text.endIndex { i = text.index(after: i) }
            } else {
                while i < text.endIndex, text[i] != " " {
                    value.append(text[i])
                    i = text.index(after: i)
                }
            }
            out.append(value)
        }
        return out
    }
}

/// Credentials an HTTP request carries in clear: an `Authorization: Basic` header, or a form field (URI query or
/// urlencoded/JSON body) named like a password, with the user field beside it.
public enum HTTPCredentials {
    static let secretFields: Set<String> = ["password", "passwd", "pass", "pwd", "passwort", "motdepasse", "mot_de_passe", "passcode", "user_password", "userpassword"]
    static let userFields: Set<String> = ["user", "username", "user_name", "login", "email", "usr", "account", "uname", "userid", "user_id"]

    public static func find(_ request: HTTPMessage) -> LoginRecord? {
        if let auth = request.header("Authorization"), auth.lowercased().hasPrefix("basic "),
           let decoded = LoginWatcher.base64(String(auth.dropFirst(6))), let colon = decoded.firstIndex(of: ":") {
            var r = LoginRecord(kind: .credential, app: "http")
            r.mechanism = "Basic"
            r.user = String(decoded[..<colon])
            r.secret = String(decoded[decoded.index(after: colon)...])
            if r.secret?.isEmpty == false { return r }
        }
        // Every field name looked for holds "pass" or "pwd": most requests are passed over without parsing. Only
        // the query of the URI holds fields (a path is not scanned).
        let query = request.uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { request.uri.utf8[$0...] }
        let body = !request.bodyPrefix.isEmpty
        guard query.map({ mayHoldSecret($0) }) ?? false || body && mayHoldSecret(request.bodyPrefix) else { return nil }
        var fields: [(String, String)] = []
        if let q = request.uri.firstIndex(of: "?") { fields += form(String(request.uri[request.uri.index(after: q)...])) }
        if body {
            let body = String(decoding: request.bodyPrefix, as: UTF8.self)
            fields += body.hasPrefix("{") ? json(body) : form(body)
        }
        guard let secret = fields.first(where: { secretFields.contains($0.0) && !$0.1.isEmpty }) else { return nil }
        var r = LoginRecord(kind: .credential, app: "http")
        r.mechanism = "form field " + secret.0
        r.secret = String(secret.1.prefix(256))
        r.user = fields.first { userFields.contains($0.0) }.map { String($0.1.prefix(256)) }
        return r
    }

    /// Whether `bytes` hold "pass" or "pwd" in any case: read in place, looking back only from an `s` or a `d`
    /// (request bodies are scanned whole: a few instructions a byte).
    static func mayHoldSecret(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { p in
            var i = 2
            while i < p.count {
                let c = p[i] | 0x20
                if c == 0x73, i >= 3, p[i - 1] | 0x20 == 0x73, p[i - 2] | 0x20 == 0x61, p[i - 3] | 0x20 == 0x70 { return true }
                if c == 0x64, p[i - 1] | 0x20 == 0x77, p[i - 2] | 0x20 == 0x70 { return true }
                i += 1
            }
            return false
        }
    }

    /// Whether `bytes` hold "pass" or "pwd" in any case.
    static func mayHoldSecret<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        var previous: (UInt8, UInt8, UInt8) = (0, 0, 0)
        for b in bytes {
            let c = b | 0x20
            if previous == (0x70, 0x61, 0x73) && c == 0x73 || previous.1 == 0x70 && previous.2 == 0x77 && c == 0x64 { return true }
            previous = (previous.1, previous.2, c)
        }
        return false
    }

    static func form(_ text: String) -> [(String, String)] {
        text.split(separator: "&").prefix(64).compactMap { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2 else { return nil }
            let key = (String(kv[0]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(kv[0])).lowercased()
            let value = String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(kv[1])
            return (key, value)
        }
    }

    /// `"key": "value"` pairs of a flat JSON object (strings only; what a login form posts).
    static func json(_ text: String) -> [(String, String)] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return [] }
        return object.compactMap { k, v in (v as? String).map { (k.lowercased(), $0) } }.sorted { $0.0 < $1.0 }
    }
}

/// Watches the first bytes an unidentified TCP flow's initiator sends for a command shell's output: the line `id`
/// prints (`uid=0(root) gid=0(root)`), a line of /etc/passwd or /etc/shadow for root, the banner cmd.exe or
/// PowerShell print on start. A device that connects out and sends those is running a reverse shell for whoever
/// listens (Suricata's ATTACK_RESPONSE rules look for the same lines). Interactive shells send a byte per segment:
/// the last bytes are carried over. Reads 8 KiB per flow at most; reports once, when the output's line is complete
/// (160 bytes kept) or the flow ends. A class, as `LoginWatcher` is: unidentified flows are many.
final class ShellWatcher {
    static let limit = 8192
    /// Longer than the longest pattern (`uid=` 10 digits `(` 32 characters `) gid=` 10 digits `(`).
    static let carryBytes = 72
    private var carry: [UInt8] = []
    private var junction: [UInt8] = []
    private(set) var read = 0
    private(set) var done = false

    var bufferedBytes: Int { carry.count + junction.count + line.count }

    func feed(_ bytes: UnsafeRawBufferPointer) -> LoginRecord? {
        guard !done else { return nil }
        let take = min(bytes.count, Self.limit - read)
        read += take
        let chunk = UnsafeRawBufferPointer(rebasing: bytes[0..<take])
        if found != nil {
            // Completing the line the output began on.
            line.append(contentsOf: chunk.prefix(Self.lineBytes - line.count))
            return lineDone || read >= Self.limit ? finish() : nil
        }
        // An output that begins in the carried bytes (it may straddle the two), then one that begins in the chunk,
        // read in place (no copy of the chunk; the junction's buffer is reused).
        junction.removeAll(keepingCapacity: true)
        junction.append(contentsOf: carry)
        junction.append(contentsOf: chunk.prefix(Self.carryBytes))
        if let (kind, range) = junction.withUnsafeBytes({ Self.find($0) }), range.lowerBound < carry.count {
            found = kind
            line = Array(junction[range.lowerBound...].prefix(Self.lineBytes))
            line.append(contentsOf: chunk.dropFirst(Self.carryBytes).prefix(Self.lineBytes - line.count))
        } else if let (kind, range) = Self.find(chunk) {
            found = kind
            line = Array(chunk[range.lowerBound...].prefix(Self.lineBytes))
        }
        if found != nil {
            carry = []
            return lineDone || read >= Self.limit ? finish() : nil
        }
        if read >= Self.limit { done = true }
        carry.removeAll(keepingCapacity: true)
        if chunk.count >= Self.carryBytes { carry.append(contentsOf: chunk.suffix(Self.carryBytes)) } else { carry.append(contentsOf: junction.suffix(Self.carryBytes)) }
        return nil
    }

    /// Bytes of the output's line kept for the evidence.
    static let lineBytes = 160
    private var found: String?
    private var line: [UInt8] = []
    private var lineDone: Bool { line.count >= Self.lineBytes || line.contains(0x0A) }

    /// What was found, with its line as far as it came (at the end of the flow, or once the line is complete).
    func finish() -> LoginRecord? {
        guard let kind = found, !done else { return nil }
        done = true
        var r = LoginRecord(kind: .shell, app: "shell")
        r.mechanism = kind
        r.output = String(decoding: line.prefix { $0 != 0x0A && $0 != 0x0D }, as: UTF8.self)
        line = []
        return r
    }

    /// The first shell output in `b`: its kind and where.
    static func find(_ b: UnsafeRawBufferPointer) -> (String, Range<Int>)? {
        func at(_ i: Int, _ text: StaticString) -> Bool { bytes(b, at: i, are: text) }
        func digits(_ i: inout Int) -> Bool {
            let start = i
            while i < b.count, i - start < 10, b[i] &- 0x30 < 10 { i += 1 }
            return i > start
        }
        func name(_ i: inout Int) -> Bool {
            let start = i
            while i < b.count, i - start < 32, b[i] != 0x29, b[i] > 0x20, b[i] < 0x7F { i += 1 }
            return i > start
        }
        for i in 0..<b.count {
            switch b[i] {
            case UInt8(ascii: "u") where at(i, "uid="):
                var j = i + 4
                guard digits(&j), j < b.count, b[j] == UInt8(ascii: "(") else { continue }
                j += 1
                guard name(&j), at(j, ") gid=") else { continue }
                j += 6
                guard digits(&j), j < b.count, b[j] == UInt8(ascii: "(") else { continue }
                return ("id", i..<(j + 1))
            case UInt8(ascii: "r") where at(i, "root:") && (i == 0 || b[i - 1] == 0x0A):
                if at(i + 5, "x:0:0:") { return ("passwd", i..<(i + 11)) }
                if at(i + 5, "*:") || at(i + 5, "!:") || at(i + 5, "!*:") || at(i + 5, "$1$") || at(i + 5, "$5$") || at(i + 5, "$6$")
                    || at(i + 5, "$y$") || at(i + 5, "$2") {
                    return ("shadow", i..<(i + 7))
                }
            case UInt8(ascii: "M") where at(i, "Microsoft Windows [Version "):
                return ("cmd.exe", i..<(i + 27))
            case UInt8(ascii: "W") where at(i, "Windows PowerShell\r\nCopyright (C)"):
                return ("PowerShell", i..<(i + 18))
            default:
                continue
            }
        }
        return nil
    }
}

/// Whether the bytes of `b` from `i` are `text` (no array made: for the protocol decision's prefixes and the shell
/// watcher's patterns).
@inline(__always) func bytes(_ b: UnsafeRawBufferPointer, at i: Int, are text: StaticString) -> Bool {
    let n = text.utf8CodeUnitCount
    guard i >= 0, i + n <= b.count else { return false }
    let t = text.utf8Start
    for k in 0..<n where b[i + k] != t[k] { return false }
    return true
}
