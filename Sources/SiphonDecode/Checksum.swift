public import SiphonCore
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// What a packet's checksums say, as a receiving host would judge them.
public enum ChecksumStatus: UInt8, Sendable {
    /// Not verified: the datagram is cut by the snapshot length, is a fragment, or carries no checksum (IPv4 UDP 0).
    case unchecked
    case valid
    /// Wrong, but in the shape a sender's checksum offload leaves in a capture taken on the sender: the field holds
    /// the folded pseudo-header sum (Linux `CHECKSUM_PARTIAL`) or zero. The NIC fixes it on the wire, so the
    /// receiver accepts the packet.
    case offloaded
    /// Wrong: the receiver drops the packet.
    case bad
}

/// Which checksum of a packet was judged.
public enum ChecksumLayer: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case ipv4, tcp, udp
    /// ICMP (over IPv4: the message alone) and ICMPv6 (with the IPv6 pseudo-header, RFC 4443 2.3).
    case icmp
    public var description: String {
        switch self {
        case .ipv4: "ipv4"
        case .tcp: "tcp"
        case .udp: "udp"
        case .icmp: "icmp"
        }
    }
}

/// The Internet checksum (RFC 1071) of IPv4 headers and of TCP and UDP over their pseudo-header (RFC 793, 768,
/// 8200 section 8.1).
public enum InternetChecksum {
    /// The one's-complement sum of `count` bytes read as 16-bit words in *machine* order, unfolded. Summing in
    /// either byte order and swapping the folded result gives the same checksum (RFC 1071, section 2(B)).
    /// On x86-64 the loop adds 64 bytes an iteration with `pmaddwd`, which adds pairs of *signed* 16-bit words into
    /// 32-bit lanes: each word is first biased by -32,768 (XOR 0x8000) and the bias is added back at the end. Elsewhere
    /// it spreads the words over 32-bit SIMD lanes.
    public static func nativeSum(_ base: UnsafeRawPointer, count: Int) -> UInt64 {
        var a: UInt64 = 0
        var i = 0
        #if arch(x86_64)
        let bias = _mm_set1_epi16(Int16.min)
        let ones = _mm_set1_epi16(1)
        while count &- i >= 64 {
            // Each iteration adds 4 pair sums of -65,536...65,534 to a lane: 4,096 iterations stay within Int32.
            var acc = _mm_setzero_si128()
            let start = i
            let end = min(count, i &+ 4_096 &* 64)
            while end &- i >= 64 {
                let w = _mm_madd_epi16(_mm_xor_si128(base.loadUnaligned(fromByteOffset: i, as: __m128i.self), bias), ones)
                let x = _mm_madd_epi16(_mm_xor_si128(base.loadUnaligned(fromByteOffset: i &+ 16, as: __m128i.self), bias), ones)
                let y = _mm_madd_epi16(_mm_xor_si128(base.loadUnaligned(fromByteOffset: i &+ 32, as: __m128i.self), bias), ones)
                let z = _mm_madd_epi16(_mm_xor_si128(base.loadUnaligned(fromByteOffset: i &+ 48, as: __m128i.self), bias), ones)
                acc = _mm_add_epi32(acc, _mm_add_epi32(_mm_add_epi32(w, x), _mm_add_epi32(y, z)))
                i &+= 64
            }
            let lanes = unsafeBitCast(acc, to: SIMD4<Int32>.self)
            let total = Int64(lanes[0]) + Int64(lanes[1]) + Int64(lanes[2]) + Int64(lanes[3])
            a &+= UInt64(bitPattern: total + Int64((i &- start) / 2) * 32_768)
        }
        #else
        let low = SIMD4<UInt32>(repeating: 0xFFFF)
        while count &- i >= 64 {
            // Each iteration adds at most 4 x 0xFFFF to a lane: 8,192 iterations (512 KiB) cannot overflow it.
            var u = SIMD4<UInt32>(repeating: 0)
            var v = SIMD4<UInt32>(repeating: 0)
            let end = min(count, i &+ 8_192 &* 64)
            while end &- i >= 64 {
                let w = base.loadUnaligned(fromByteOffset: i, as: SIMD4<UInt32>.self)
                let x = base.loadUnaligned(fromByteOffset: i &+ 16, as: SIMD4<UInt32>.self)
                let y = base.loadUnaligned(fromByteOffset: i &+ 32, as: SIMD4<UInt32>.self)
                let z = base.loadUnaligned(fromByteOffset: i &+ 48, as: SIMD4<UInt32>.self)
                u &+= (w & low) &+ (w &>> 16) &+ (y & low) &+ (y &>> 16)
                v &+= (x & low) &+ (x &>> 16) &+ (z & low) &+ (z &>> 16)
                i &+= 64
            }
            let t = SIMD4<UInt64>(truncatingIfNeeded: u) &+ SIMD4<UInt64>(truncatingIfNeeded: v)
            a &+= t.wrappedSum()
        }
        #endif
        var b: UInt64 = 0
        while count &- i >= 8 {
            let x = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            b &+= (x & 0xFFFF_FFFF) &+ (x >> 32)
            i &+= 8
        }
        // The tail (under 8 bytes, starting at an even offset): 4, 2 and 1-byte loads in machine order, as a
        // zero-padded word would read (a lone last byte is the first byte of its 16-bit word). No copy call: the
        // tail comes with every packet's checksum, and an IPv4 header of 20 bytes is mostly tail.
        if count &- i >= 4 {
            b &+= UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            i &+= 4
        }
        if count &- i >= 2 {
            b &+= UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt16.self))
            i &+= 2
        }
        if i < count {
            b &+= UInt64(UInt16(littleEndian: UInt16(base.load(fromByteOffset: i, as: UInt8.self))))
        }
        return a &+ b
    }

    /// Folds a wide one's-complement sum to 16 bits.
    @inlinable
    public static func fold(_ sum: UInt64) -> UInt16 {
        var s = (sum & 0xFFFF_FFFF) &+ (sum >> 32)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        return UInt16(truncatingIfNeeded: s)
    }

    /// The folded sum of `count` bytes as big-endian words (the order the checksum field is written in).
    @inlinable
    public static func sum(_ base: UnsafeRawPointer, count: Int) -> UInt16 {
        let native = fold(nativeSum(base, count: count))
        return UInt16(bigEndian: native)  // on a little-endian machine this swaps; on a big-endian one it does not
    }

    /// The folded sum of the pseudo-header's addresses, protocol and upper-layer length (big-endian words).
    @inlinable
    public static func pseudoHeaderSum(source: IPAddress, destination: IPAddress, protocol: UInt8, length: Int) -> UInt16 {
        // 32-bit halves: their one's-complement sum folds to the same 16 bits as the four words'.
        @inline(__always) func words(_ w: UInt64) -> UInt64 { (w & 0xFFFF_FFFF) &+ (w >> 32) }
        let s = UInt64(`protocol`) &+ UInt64(length & 0xFFFF) &+ UInt64(length >> 16)
            &+ words(source.high) &+ words(source.low) &+ words(destination.high) &+ words(destination.low)
        return fold(s)
    }

    /// Whether an IPv4 header checksum verifies; a zero field reads as offloaded.
    public static func ipv4Header(_ b: UnsafeRawBufferPointer, at o: Int) -> ChecksumStatus {
        let length = Int(b[o] & 0x0F) * 4
        guard length >= 20, o + length <= b.count else { return .unchecked }
        // A multiple of 4 bytes: 32-bit words in machine order, folded (all ones reads the same in either order).
        // Not `sum`: for 20 bytes its call, 64-byte guard and 8/4/2/1-byte tails cost 33 instructions a packet more
        // (mid.pcap 453.0 → 455.5 M), and an inlinable `sum` did no better (455.9 M).
        let header = b.baseAddress! + o
        var s: UInt64 = 0
        var i = 0
        while i < length {
            s &+= UInt64(header.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            i &+= 4
        }
        if fold(s) == 0xFFFF { return .valid }
        return b.be16(o + 10) == 0 ? .offloaded : .bad
    }

    /// UDP ports of tunnels that may send IPv6 with a zero checksum: LISP 4341-4342, VXLAN 4789, GUE 6080,
    /// Geneve 6081, MPLS-in-UDP 6635, VXLAN-GPE 4790, GTP-U 2152.
    public static let zeroChecksumTunnelPorts: Set<UInt16> = [2152, 4341, 4342, 4789, 4790, 6080, 6081, 6635]

    /// The TCP, UDP, ICMP or ICMPv6 checksum of a decoded packet whose transport header starts in `b` at
    /// `transportOffset`.
    /// `b` must hold the whole segment (a snapshot-length cut leaves it unchecked).
    public static func transport(_ b: UnsafeRawBufferPointer, _ p: DecodedPacket) -> ChecksumStatus {
        let o = p.transportOffset
        let length: Int
        let field: Int
        switch p.transport {
        case .tcp:
            guard !p.transportHeaderSplit, p.payloadCaptured == p.payloadLength else { return .unchecked }
            length = p.payloadOffset + p.payloadLength - o
            field = o + 16
        case .udp:
            guard o + 8 <= b.count else { return .unchecked }
            let stored = b.be16(o + 6)
            if stored == 0 {
                // IPv4: no checksum. IPv6 receivers discard a zero checksum (RFC 8200 8.1) except on tunnels that
                // allow it (RFC 6935/6936: VXLAN, Geneve, GUE, MPLS-in-UDP, LISP...), judged as sent.
                guard p.network == .ipv6, !zeroChecksumTunnelPorts.contains(p.destinationPort),
                    !zeroChecksumTunnelPorts.contains(p.sourcePort)
                else { return .unchecked }
                return .bad
            }
            length = Int(b.be16(o + 4))
            guard length >= 8, p.payloadCaptured == p.payloadLength, o + length <= b.count,
                length == p.payloadOffset + p.payloadLength - o
            else { return .unchecked }
            field = o + 6
        case .icmp, .icmpv6:
            // The whole message, as captured: no offload shape applies (hosts checksum ICMP in software, and 0 is
            // an ordinary value), so a wrong sum is bad.
            guard !p.transportHeaderSplit, p.payloadCaptured == p.payloadLength else { return .unchecked }
            let length = p.payloadOffset + p.payloadLength - o
            guard length >= 4, o + length <= b.count else { return .unchecked }
            var total = UInt32(sum(b.baseAddress! + o, count: length))
            if p.transport == .icmpv6 {
                let source = p.checksumSource(in: b), destination = p.checksumDestination(in: b)
                total &+= UInt32(pseudoHeaderSum(source: source, destination: destination, protocol: 58, length: length))
            }
            total = (total & 0xFFFF) &+ (total >> 16)
            total = (total & 0xFFFF) &+ (total >> 16)
            if total == 0xFFFF { return .valid }
            return p.pseudoHeaderUncertain && p.transport == .icmpv6 ? .unchecked : .bad
        default:
            return .unchecked
        }
        guard length >= 8, o + length <= b.count else { return .unchecked }
        let source = p.checksumSource(in: b), destination = p.checksumDestination(in: b)
        let pseudo = pseudoHeaderSum(source: source, destination: destination, protocol: p.ipProtocol, length: length)
        let data = sum(b.baseAddress! + o, count: length)
        var total = UInt32(pseudo) &+ UInt32(data)
        total = (total & 0xFFFF) &+ (total >> 16)
        if total == 0xFFFF { return .valid }
        if p.pseudoHeaderUncertain { return .unchecked }
        let stored = b.be16(field)
        if stored == 0 || stored == pseudo || stored == ~pseudo { return .offloaded }
        // Segmentation offload (TSO/GSO) leaves the pseudo-header sum without the length, which the NIC fills in.
        let unsized = pseudoHeaderSum(source: source, destination: destination, protocol: p.ipProtocol, length: 0)
        return stored == unsized || stored == ~unsized ? .offloaded : .bad
    }
}

/// Whether a pipeline verifies checksums. `auto` verifies, and stops after the first 1,000 judged checksums (an IPv4
/// TCP packet has two) when more than a tenth of them were bad (a capture taken where checksums are not final), as Suricata's `auto` does.
public enum ChecksumValidation: String, Sendable, CaseIterable {
    case auto, on, off
}
