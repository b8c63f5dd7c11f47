import Crypto
import Foundation
import Siphon
import Testing

/// Community ID v1 against the specification's own example and against the spec written out here byte by byte
/// (Foundation's base64 as the independent encoder), over IPv4 and IPv6, TCP, UDP, SCTP, ICMP and other protocols.
@Suite struct CommunityIDTests {
    /// The example of the specification's README (corelight/community-id-spec): a TCP flow, either direction.
    @Test func specificationExample() {
        let a = IPAddress("128.232.110.120")!, b = IPAddress("66.35.250.204")!
        #expect(CommunityID.compute(source: a, sourcePort: 34855, destination: b, destinationPort: 80, ipProtocol: 6)
            == "1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
        #expect(CommunityID.compute(source: b, sourcePort: 80, destination: a, destinationPort: 34855, ipProtocol: 6)
            == "1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
    }

    /// The spec's layout: seed (16 bits), the smaller (address, port) first, protocol, a zero byte, the ports (none
    /// for protocols without), SHA-1, base64 with padding.
    static func reference(_ s: IPAddress, _ sp: UInt16, _ d: IPAddress, _ dp: UInt16, _ proto: UInt8, seed: UInt16) -> String {
        var (s, sp, d, dp) = (s, sp, d, dp)
        if d < s || (d == s && dp < sp) { (s, sp, d, dp) = (d, dp, s, sp) }
        var input = [UInt8(seed >> 8), UInt8(seed & 0xFF)] + s.bytes + d.bytes + [proto, 0]
        if [6, 17, 132].contains(proto) { input += [UInt8(sp >> 8), UInt8(sp & 0xFF), UInt8(dp >> 8), UInt8(dp & 0xFF)] }
        return "1:" + Data(Insecure.SHA1.hash(data: input)).base64EncodedString()
    }

    @Test func matchesTheSpecificationWrittenOut() {
        var rng = SystemRandomNumberGenerator()
        for i in 0..<2_000 {
            let v6 = i % 2 == 1
            func address() -> IPAddress {
                v6 ? IPAddress(ipv6High: 0x2001_0DB8_0000_0000 | UInt64.random(in: 0...0xFFFF, using: &rng), low: UInt64.random(in: 0...3, using: &rng))
                    : IPAddress(ipv4: 0xC000_0200 | UInt32.random(in: 0...3, using: &rng))
            }
            let s = address(), d = address()
            let sp = UInt16.random(in: 0...3, using: &rng) * 20_000, dp = UInt16.random(in: 0...3, using: &rng) * 20_000
            let proto: UInt8 = [6, 17, 132, 47, 50][i % 5]
            let seed = UInt16.random(in: 0...2, using: &rng)
            #expect(CommunityID.compute(source: s, sourcePort: sp, destination: d, destinationPort: dp, ipProtocol: proto, seed: seed)
                == Self.reference(s, sp, d, dp, proto, seed: seed), "\(s):\(sp) \(d):\(dp) \(proto) seed \(seed)")
        }
    }
}
