public import SiphonCore
import Crypto

/// Community ID v1 (https://github.com/corelight/community-id-spec): a flow hash shared by Zeek, Suricata,
/// Arkime and Wireshark, so a Siphon flow can be found in their logs.
///
/// SHA-1 over seed (16 bits), source and destination addresses, protocol, a zero byte, and the two ports, with the
/// endpoints ordered smaller first; base64, prefixed with `1:`. ICMP types and codes stand in for ports
/// (see `ICMPPorts`); a one-way ICMP message keeps its direction.
public enum CommunityID {
    public static func compute(
        source: IPAddress, sourcePort: UInt16, destination: IPAddress, destinationPort: UInt16, ipProtocol: UInt8,
        seed: UInt16 = 0
    ) -> String {
        var src = source
        var dst = destination
        var sport = sourcePort
        var dport = destinationPort
        var oneWay = false
        let hasPorts: Bool
        switch ipProtocol {
        case 1, 58:
            // Flow keys already carry ICMP (type, counterpart-or-code); recover the one-way flag.
            let v6 = ipProtocol == 58
            if ICMPPorts.counterpart(type: UInt8(truncatingIfNeeded: sport), v6: v6) == nil { oneWay = true }
            hasPorts = true
        case 6, 17, 132:
            hasPorts = true
        default:
            hasPorts = false
        }
        if !oneWay && (dst < src || (dst == src && dport < sport)) {
            swap(&src, &dst)
            swap(&sport, &dport)
        }
        // The hashed bytes on the stack (at most 2 + 16 + 16 + 2 + 4 = 40), the text written once: built with
        // arrays (the addresses' bytes, the input, a base64 table per call), one cost 9,500 instructions a flow.
        var input: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &input) { raw in
            var n = 0
            func put16(_ v: UInt16) {
                raw.storeBytes(of: v.bigEndian, toByteOffset: n, as: UInt16.self)
                n += 2
            }
            func put(_ a: IPAddress) {
                if a.isIPv6 {
                    raw.storeBytes(of: a.high.bigEndian, toByteOffset: n, as: UInt64.self)
                    raw.storeBytes(of: a.low.bigEndian, toByteOffset: n + 8, as: UInt64.self)
                    n += 16
                } else {
                    raw.storeBytes(of: UInt32(truncatingIfNeeded: a.low).bigEndian, toByteOffset: n, as: UInt32.self)
                    n += 4
                }
            }
            put16(seed)
            put(src)
            put(dst)
            put16(UInt16(ipProtocol) << 8)  // the protocol, then a zero byte
            if hasPorts {
                put16(sport)
                put16(dport)
            }
            var sha1 = Insecure.SHA1()
            sha1.update(bufferPointer: UnsafeRawBufferPointer(rebasing: raw[0..<n]))
            return sha1.finalize().withUnsafeBytes { digest in
                String(unsafeUninitializedCapacity: 2 + (digest.count + 2) / 3 * 4) { out in
                    out[0] = UInt8(ascii: "1")
                    out[1] = UInt8(ascii: ":")
                    return 2 + base64(digest, into: UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: out[2...])))
                }
            }
        }
    }

    private static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    /// Standard base64 with padding (RFC 4648 section 4) of `bytes` into `out` (room for 4 bytes per 3, rounded
    /// up); returns the bytes written.
    static func base64(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int {
        let table = alphabet.utf8Start
        var i = 0, o = 0
        while i < bytes.count {
            let left = bytes.count - i
            let b0 = Int(bytes[i]), b1 = left > 1 ? Int(bytes[i + 1]) : 0, b2 = left > 2 ? Int(bytes[i + 2]) : 0
            out[o] = table[b0 >> 2]
            out[o + 1] = table[(b0 & 3) << 4 | b1 >> 4]
            out[o + 2] = left > 1 ? table[(b1 & 15) << 2 | b2 >> 6] : UInt8(ascii: "=")
            out[o + 3] = left > 2 ? table[b2 & 63] : UInt8(ascii: "=")
            i += 3
            o += 4
        }
        return o
    }
}
