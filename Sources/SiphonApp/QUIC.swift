import Crypto
import _CryptoExtras

/// Reads the TLS ClientHello that a QUIC client sends in its Initial packets (RFC 9000/9001, QUIC v1 and v2
/// (RFC 9369)): derives the Initial keys from the client's first Destination Connection ID, removes header
/// protection, decrypts with AES-128-GCM, and reassembles CRYPTO frames until the ClientHello is complete.
public struct QUICInitialReader: Sendable {
    public private(set) var clientHello: TLSClientHello?
    public private(set) var version: UInt32?
    public private(set) var failure: String?
    private var keys: Keys?
    private var crypto: [(offset: Int, data: [UInt8])] = []
    private var packets = 0
    /// What the reader holds: CRYPTO frame data of up to 8 Initial packets, until the ClientHello is whole.
    public var bufferedBytes: Int { crypto.reduce(0) { $0 + $1.data.count } }

    struct Keys: @unchecked Sendable {  // SymmetricKey is immutable once made
        var key: SymmetricKey
        var iv: [UInt8]
        var hp: SymmetricKey
        var version: UInt32
    }

    public init() {}

    public var done: Bool { clientHello != nil || failure != nil || packets > 8 }

    static let saltV1: [UInt8] = hex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
    static let saltV2: [UInt8] = hex("0dede3def700a6db819381be6e269dcbf9bd2ed9")

    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// HKDF-Expand-Label of TLS 1.3 (RFC 8446 §7.1) with an empty context.
    static func expandLabel(_ secret: SymmetricKey, _ label: String, _ length: Int) -> SymmetricKey {
        let full = Array(("tls13 " + label).utf8)
        let info = [UInt8(length >> 8), UInt8(length & 0xFF), UInt8(full.count)] + full + [0]
        return HKDF<SHA256>.expand(pseudoRandomKey: secret, info: info, outputByteCount: length)
    }

    static func keys(dcid: [UInt8], version: UInt32) -> Keys {
        let v2 = version == 0x6B33_43CF
        let initial = HKDF<SHA256>.extract(inputKeyMaterial: SymmetricKey(data: dcid), salt: v2 ? saltV2 : saltV1)
        let client = expandLabel(SymmetricKey(data: initial), "client in", 32)
        let prefix = v2 ? "quicv2 " : "quic "
        let iv = expandLabel(client, prefix + "iv", 12).withUnsafeBytes { Array($0) }
        return Keys(key: expandLabel(client, prefix + "key", 16), iv: iv, hp: expandLabel(client, prefix + "hp", 16), version: version)
    }

    /// A QUIC variable-length integer at `p` (RFC 9000 §16).
    static func varint(_ b: [UInt8], _ p: inout Int) -> Int? {
        guard p < b.count else { return nil }
        let n = 1 << Int(b[p] >> 6)
        guard p + n <= b.count else { return nil }
        var v = Int(b[p] & 0x3F)
        for i in 1..<n { v = v << 8 | Int(b[p + i]) }
        p += n
        return v
    }

    /// Feeds one UDP datagram sent by the client; returns true when the ClientHello became complete.
    public mutating func feed(_ datagram: UnsafeRawBufferPointer) -> Bool {
        guard !done else { return false }
        var d = [UInt8](datagram)
        var start = 0
        // A datagram may coalesce several long-header packets; Initial comes first.
        while start + 7 <= d.count, d[start] & 0x80 != 0 {
            packets += 1
            guard let end = decryptInitial(&d, at: start) else { return false }
            if clientHello != nil { return true }
            start = end
        }
        return false
    }

    /// Decrypts the Initial packet at `start`; returns the offset just past it, nil to stop.
    private mutating func decryptInitial(_ d: inout [UInt8], at start: Int) -> Int? {
        var p = start + 1
        let version = UInt32(d[p]) << 24 | UInt32(d[p + 1]) << 16 | UInt32(d[p + 2]) << 8 | UInt32(d[p + 3])
        p += 4
        guard version == 1 || version == 0x6B33_43CF else { failure = "QUIC version 0x\(String(version, radix: 16))"; return nil }
        let type = (d[start] >> 4) & 3
        guard type == (version == 1 ? 0 : 1) else { return nil }  // not an Initial: nothing more to read here
        guard p < d.count else { return nil }
        let dcidLength = Int(d[p]); p += 1
        guard dcidLength <= 20, p + dcidLength < d.count else { failure = "bad connection ID"; return nil }
        let dcid = Array(d[p..<(p + dcidLength)]); p += dcidLength
        let scidLength = Int(d[p]); p += 1 + scidLength
        guard scidLength <= 20, var q = Optional(p), let tokenLength = Self.varint(d, &q) else { failure = "truncated header"; return nil }
        p = q + tokenLength
        guard let length = Self.varint(d, &p), p + length <= d.count, length >= 20 else { failure = "truncated Initial"; return nil }
        let pnOffset = p
        if keys == nil { keys = Self.keys(dcid: dcid, version: version) }
        guard let k = keys else { return nil }
        // Header protection: a mask from AES-ECB over 16 bytes sampled 4 bytes after the packet number start.
        var sample = Array(d[(pnOffset + 4)..<(pnOffset + 20)])
        guard (try? AES.permute(&sample, key: k.hp)) != nil else { failure = "header protection"; return nil }
        d[start] ^= sample[0] & 0x0F
        let pnLength = Int(d[start] & 0x03) + 1
        var packetNumber: UInt64 = 0
        for i in 0..<pnLength {
            d[pnOffset + i] ^= sample[1 + i]
            packetNumber = packetNumber << 8 | UInt64(d[pnOffset + i])
        }
        var nonce = k.iv
        for i in 0..<8 { nonce[11 - i] ^= UInt8(truncatingIfNeeded: packetNumber >> (8 * UInt64(i))) }
        let header = Array(d[start..<(pnOffset + pnLength)])
        let payloadStart = pnOffset + pnLength
        let end = pnOffset + length
        guard end - payloadStart > 16 else { failure = "Initial too short"; return nil }
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: nonce), ciphertext: d[payloadStart..<(end - 16)], tag: d[(end - 16)..<end])
            let plain = [UInt8](try AES.GCM.open(box, using: k.key, authenticating: header))
            readFrames(plain)
        } catch {
            failure = "Initial does not decrypt (keys from another connection ID?)"
            return nil
        }
        version == 1 ? (self.version = 1) : (self.version = version)
        return end
    }

    /// The frames of an Initial already decrypted (the fuzz target's way past the AEAD, which random input never
    /// passes): CRYPTO frames collected and the ClientHello parsed as from a decrypted packet.
    public mutating func readDecryptedFrames(_ f: [UInt8]) { readFrames(f) }

    /// Collects CRYPTO frames; parses the ClientHello once its bytes are contiguous from offset 0.
    private mutating func readFrames(_ f: [UInt8]) {
        var p = 0
        while p < f.count {
            var q = p
            guard let type = Self.varint(f, &q) else { return }
            p = q
            switch type {
            case 0x00, 0x01: continue  // PADDING, PING
            case 0x02, 0x03:  // ACK: largest, delay, range count, first range, ranges, ECN counts
                guard Self.varint(f, &p) != nil, Self.varint(f, &p) != nil, let count = Self.varint(f, &p), Self.varint(f, &p) != nil
                else { return }
                for _ in 0..<min(count, 256) { guard Self.varint(f, &p) != nil, Self.varint(f, &p) != nil else { return } }
                if type == 0x03 { for _ in 0..<3 { guard Self.varint(f, &p) != nil else { return } } }
            case 0x06:
                guard let offset = Self.varint(f, &p), let length = Self.varint(f, &p), p + length <= f.count else { return }
                crypto.append((offset, Array(f[p..<(p + length)])))
                p += length
            case 0x1C:  // CONNECTION_CLOSE
                return
            default:
                return  // no other frame may appear in a client Initial before the handshake completes
            }
        }
        assemble()
    }

    private mutating func assemble() {
        var stream: [UInt8] = []
        var progressed = true
        while progressed {
            progressed = false
            for piece in crypto where piece.offset <= stream.count && piece.offset + piece.data.count > stream.count {
                stream += piece.data[(stream.count - piece.offset)...]
                progressed = true
            }
        }
        guard stream.count >= 4, stream[0] == 1 else { return }
        let length = Int(stream[1]) << 16 | Int(stream[2]) << 8 | Int(stream[3])
        guard stream.count >= 4 + length else { return }
        do {
            var hello = try TLSHandshakeParser.clientHello(Array(stream[4..<(4 + length)]))
            hello.ja4 = hello.ja4(quic: true)
            clientHello = hello
        } catch {
            failure = error.reason
        }
    }
}
