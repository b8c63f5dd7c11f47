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
        var input: [UInt8] = [UInt8(seed >> 8), UInt8(seed & 0xFF)]
        input += src.bytes
        input += dst.bytes
        input += [ipProtocol, 0]
        if hasPorts {
            input += [UInt8(sport >> 8), UInt8(sport & 0xFF), UInt8(dport >> 8), UInt8(dport & 0xFF)]
        }
        let digest = Insecure.SHA1.hash(data: input)
        // Through the digest's bytes: iterating a Digest as a Sequence is slow.
        return "1:" + digest.withUnsafeBytes { base64(Array($0)) }
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out = [UInt8]()
        var i = 0
        while i < bytes.count {
            let b0 = Int(bytes[i])
            let b1 = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? Int(bytes[i + 2]) : 0
            out.append(table[b0 >> 2])
            out.append(table[(b0 & 3) << 4 | b1 >> 4])
            out.append(i + 1 < bytes.count ? table[(b1 & 15) << 2 | b2 >> 6] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? table[b2 & 63] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
