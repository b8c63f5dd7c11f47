public import SiphonCore

/// Zero-copy packet decoding: link layer, network layer, transport header, payload offsets.
///
/// Each `decodeX` function checks the length its header needs once, then reads fields without further checks,
/// and throws a `DecodeError` naming the layer, the header's offset and the needed length when the bytes fall
/// short. `decode(_:linkType:into:)` chains them and records the first error in the packet instead of throwing.
public enum PacketDecoder {
    /// Decodes `bytes` captured on `linkType`. Never throws: the stop reason, if any, is the packet's `error`.
    public static func decode(_ bytes: UnsafeRawBufferPointer, linkType: LinkType) -> DecodedPacket {
        var packet = DecodedPacket()
        decode(bytes, linkType: linkType, into: &packet)
        return packet
    }

    /// Decodes `bytes` into `packet`, which is reset first: the same as `decode(_:linkType:)` without returning (and
    /// so copying) a 300-byte value per packet. Inlinable, so that the caller's own initialisation of `packet` and
    /// this reset fold into one.
    @inlinable
    public static func decode(_ bytes: UnsafeRawBufferPointer, linkType: LinkType, into packet: inout DecodedPacket) {
        packet = DecodedPacket()
        packet.linkType = linkType
        do {
            try decodeLink(bytes, linkType: linkType, into: &packet)
        } catch {
            packet.error = error
        }
    }

    // MARK: Link layers

    @usableFromInline
    static func decodeLink(_ b: UnsafeRawBufferPointer, linkType: LinkType, into p: inout DecodedPacket) throws(DecodeError) {
        switch linkType {
        case .ethernet:
            try decodeEthernet(b, at: 0, into: &p)
        case .raw:
            try decodeRawIP(b, at: 0, layer: .link, into: &p)
        case .ipv4:
            try decodeIPv4(b, at: 0, into: &p)
        case .ipv6:
            try decodeIPv6(b, at: 0, into: &p)
        case .linuxSLL:
            try decodeSLL(b, at: 0, into: &p)
        case .linuxSLL2:
            try decodeSLL2(b, at: 0, into: &p)
        case .null, .loop:
            try decodeLoopback(b, at: 0, networkOrder: linkType == .loop, into: &p)
        case .ppp, .pppHDLC:
            try decodePPP(b, at: 0, into: &p)
        case .nflog:
            try decodeNFLOG(b, at: 0, into: &p)
        default:
            throw DecodeError(.link, .unsupported(.linkType, value: linkType.rawValue), at: 0)
        }
    }

    @inline(__always)
    static func need(_ b: UnsafeRawBufferPointer, _ offset: Int, _ length: Int, _ layer: Layer) throws(DecodeError) {
        if b.count - offset < length {
            throw DecodeError(layer, .truncated(needed: length, available: max(0, b.count - offset)), at: offset)
        }
    }

    @inline(__always)
    static func mac(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        UInt64(b.be32(at)) << 16 | UInt64(b.be16(at + 4))
    }

    /// Ethernet II: 14 bytes, then the EtherType chain (VLAN tags, MPLS, PPPoE) to the network layer.
    public static func decodeEthernet(_ b: UnsafeRawBufferPointer, at o: Int, into p: inout DecodedPacket) throws(DecodeError) {
        try need(b, o, 14, .ethernet)
        p.destinationMAC = mac(b, o)
        p.sourceMAC = mac(b, o + 6)
        p.hasMACs = true
        let type = b.be16(o + 12)
        if type <= 1500 {
            // IEEE 802.3 length field: an LLC frame (STP, CDP...), not IP.
            throw DecodeError(.ethernet, .unsupported(.llc, value: UInt32(type)), at: o)
        }
        try decodeEtherType(type, b, at: o + 14, layer: .ethernet, into: &p)
    }

    /// Dispatches on an EtherType found by `layer` for the header starting at `o`.
    public static func decodeEtherType(
        _ type: UInt16, _ b: UnsafeRawBufferPointer, at o: Int, layer: Layer, into p: inout DecodedPacket
    ) throws(DecodeError) {
        var type = type
        var o = o
        var layer = layer
        // 802.1Q (0x8100), 802.1ad (0x88a8) and the pre-standard QinQ 0x9100: 4 bytes each.
        while type == 0x8100 || type == 0x88A8 || type == 0x9100 {
            try need(b, o, 4, .vlan)
            let id = b.be16(o) & 0x0FFF
            switch p.vlanCount {
            case 0:
                p.vlanIDs.0 = id
                if type == 0x8100 { p.outer8021QTCI = Int32(b.be16(o)) }
            case 1: p.vlanIDs.1 = id
            case 2: p.vlanIDs.2 = id
            default: break
            }
            if p.vlanCount < 255 { p.vlanCount += 1 }
            type = b.be16(o + 2)
            o += 4
            layer = .vlan
        }
        switch type {
        case 0x0800: try decodeIPv4(b, at: o, into: &p)
        case 0x86DD: try decodeIPv6(b, at: o, into: &p)
        case 0x0806, 0x8035: try decodeARP(b, at: o, into: &p)
        case 0x8847, 0x8848: try decodeMPLS(b, at: o, into: &p)
        case 0x8864: try decodePPPoESession(b, at: o, into: &p)
        default: throw DecodeError(layer, .unsupported(.etherType, value: UInt32(type)), at: o)
        }
    }

    /// MPLS label stack (4 bytes a label, bottom-of-stack bit), then IPv4 or IPv6 by version nibble.
    static func decodeMPLS(_ b: UnsafeRawBufferPointer, at o: Int, into p: inout DecodedPacket) throws(DecodeError) {
        var o = o
        while true {
            try need(b, o, 4, .mpls)
            let entry = b.be32(o)
            o += 4
            if entry & 0x100 != 0 { break }
        }
        try decodeRawIP(b, at: o, layer: .mpls, into: &p)
    }

    /// PPPoE session stage: 6-byte header, then a PPP protocol number.
    static func decodePPPoESession(_ b: UnsafeRawBufferPointer, at o: Int, into p: inout DecodedPacket) throws(DecodeError) {
        try need(b, o, 7, .pppoe)
        if b.u8(o + 6) & 1 == 1 {  // PPP protocol field compression: one odd byte (0x21 for IPv4)
            return try decodePPPProtocol(UInt32(b.u8(o + 6)), b, at: o + 7, into: &p)
        }
        try need(b, o, 8, .pppoe)
        try decodePPPProtocol(UInt32(b.be16(o + 6)), b, at: o + 8, into: &p)
    }

    /// PPP (LINKTYPE_PPP / PPP_HDLC): optional FF 03 address/control, 1- or 2-byte protocol field.
    static func decodePPP(_ b: UnsafeRawBufferPointer, at o: Int, into p: inout DecodedPacket) throws(DecodeError) {
        var o = o
        try need(b, o, 2, .ppp)
        if b.u8(o) == 0xFF && b.u8(o + 1) == 0x03 { o += 2 }
        try need(b, o, 1, .ppp)
        if b.u8(o) & 1 == 1 {  // protocol field compression: a single odd byte
            try decodePPPProtocol(UInt32(b.u8(o)), b, at: o + 1, into: &p)
        } else {
            try need(b, o, 2, .ppp)
            try decodePPPProtocol(UInt32(b.be16(o)), b, at: o + 2, into: &p)
        }
    }

    static func decodePPPProtocol(_ proto: UInt32, _ b: UnsafeRawBufferPointer, at o: Int, into p: inout DecodedPacket) throws(DecodeError) {
        switch proto {
        case 0x0021: try decodeIPv4(b, at: o, into: &p)
        case 0x0057: try decodeIPv6(b, at: o, into: &p)
        default: throw DecodeError(.ppp, .unsupported(.protocolType, value: proto), at: o)
        }
    }

    /// Linux cooked capture v1: 16 bytes, protocol (an EtherType for most link types) at offset 14.
    public static func decodeSLL(_ b: UnsafeRawBufferPointer, at o: Int, into p: inout DecodedPacket) throws(DecodeError) {
        try need(b, o, 16, .sll)
        let hardware = b.be16(o + 2)
        let proto = b.be16(o + 14)
        try decodeCookedProtocol(hardware: hardware, proto: proto, b, at: o + 16, layer: .sll, into: &p)
    }

    /// Linux cooked capture v2: 20 bytes, protocol at offset 0, ARPHRD type at 8.
    public static func decodeSLL2(_ b: UnsafeRawBufferPointer, at o: Int, into p: inout DecodedPacket) throws(DecodeError) {
        try need(b, o, 20, .sll2)
        let proto = b.be16(o)
        let hardware = b.be16(o + 8)
        try decodeCookedProtocol(hardware: hardware, proto: proto, b, at: o + 20, layer: .sll2, into: &p)
    }

    static func decodeCookedProtocol(
        hardware: UInt16, proto: UInt16, _ b: UnsafeRawBufferPointer, at o: Int, layer: Layer, into p: inout DecodedPacket
    ) throws(DecodeError) {
        if hardware == 824 {  // ARPHRD_NETLINK: netlink messages, not IP
            throw DecodeError(layer, .unsupported(.hardwareType, value: UInt32(hardware)), at: o)
        }
        if proto < 0x0600 {
            // Special values (802.3 frames, 802.2 LLC, CAN, ...): not IP.
            throw DecodeError(layer, .unsupported(.protocolType, value: UInt32(proto)), at: o)
        }
        try decodeEtherType(proto, b, at: o, layer: layer, into: &p)
    }

    /// BSD loopback (NULL, host-order 4-byte family) and OpenBSD LOOP (network-order family).
    public static func decodeLoopback(
        _ b: UnsafeRawBufferPointer, at o: Int, networkOrder: Bool, into p: inout DecodedPacket
    ) throws(DecodeError) {
        try need(b, o, 4, .loopback)
        var family = networkOrder ? b.be32(o) : b.le32(o)
        // NULL uses the byte order of the machine that captured: a value above 0xFFFF was written the other way.
        if !networkOrder && family > 0xFFFF { family = family.byteSwapped }
        switch family {
        case 2: try decodeIPv4(b, at: o + 4, into: &p)
        case 10, 24, 28, 30: try decodeIPv6(b, at: o + 4, into: &p)  // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, Darwin
        default: throw DecodeError(.loopback, .unsupported(.family, value: family), at: o)
        }
    }

    /// Linux NFLOG: 4-byte header, then TLVs (little-endian length and type, padded to 4); type 9 holds the packet.
    public static func decodeNFLOG(_ b: UnsafeRawBufferPointer, at o: Int, into p: inout DecodedPacket) throws(DecodeError) {
        try need(b, o, 4, .nflog)
        var t = o + 4
        while b.count - t >= 4 {
            let length = Int(b.le16(t))
            let type = b.le16(t + 2)
            guard length >= 4 else { throw DecodeError(.nflog, .invalid(.tlv), at: t) }
            if type == 9 {  // NFULA_PAYLOAD
                let end = t + length
                guard end <= b.count else { throw DecodeError(.nflog, .truncated(needed: length, available: b.count - t), at: t) }
                let payload = UnsafeRawBufferPointer(rebasing: b[..<end])
                return try decodeRawIP(payload, at: t + 4, layer: .nflog, into: &p)
            }
            t += (length + 3) & ~3
        }
        throw DecodeError(.nflog, .truncated(needed: 4, available: max(0, b.count - t)), at: t)
    }

    /// Raw IP: the version nibble says IPv4 or IPv6.
    public static func decodeRawIP(_ b: UnsafeRawBufferPointer, at o: Int, layer: Layer, into p: inout DecodedPacket) throws(DecodeError) {
        try need(b, o, 1, layer)
        switch b.u8(o) >> 4 {
        case 4: try decodeIPv4(b, at: o, into: &p)
        case 6: try decodeIPv6(b, at: o, into: &p)
        default: throw DecodeError(layer, .invalid(.version), at: o)
        }
    }

    /// ARP/RARP: counted as decoded at the network layer; its addresses are not used for flows.
    public static func decodeARP(_ b: UnsafeRawBufferPointer, at o: Int, into p: inout DecodedPacket) throws(DecodeError) {
        try need(b, o, 8, .arp)
        let body = 8 + 2 * (Int(b.u8(o + 4)) + Int(b.u8(o + 5)))
        try need(b, o, body, .arp)
        p.network = .arp
        p.networkOffset = o
    }

    // MARK: Network layer

    /// IPv4 with options; fragments are marked, and only a first fragment's transport header is decoded.
    public static func decodeIPv4(_ b: UnsafeRawBufferPointer, at o: Int, into p: inout DecodedPacket) throws(DecodeError) {
        try need(b, o, 20, .ipv4)
        let vihl = b.u8(o)
        guard vihl >> 4 == 4 else { throw DecodeError(.ipv4, .invalid(.version), at: o) }
        let headerLength = Int(vihl & 0x0F) * 4
        guard headerLength >= 20 else { throw DecodeError(.ipv4, .invalid(.headerLength), at: o) }
        try need(b, o, headerLength, .ipv4)
        var total = Int(b.be16(o + 2))
        if total == 0 {
            total = b.count - o  // TCP segmentation offload: the NIC fills the length in later
        } else if total < headerLength {
            throw DecodeError(.ipv4, .invalid(.totalLength), at: o)
        }
        let fragment = b.be16(o + 6)
        p.network = .ipv4
        p.networkOffset = o
        p.ttl = b.u8(o + 8)
        p.ipProtocol = b.u8(o + 9)
        p.source = IPAddress(ipv4: b.be32(o + 12))
        p.destination = IPAddress(ipv4: b.be32(o + 16))
        p.ipLength = total
        p.fragmentOffset = Int(fragment & 0x1FFF) * 8
        p.moreFragments = fragment & 0x2000 != 0
        p.isFragment = p.moreFragments || p.fragmentOffset != 0
        p.fragmentID = UInt32(b.be16(o + 4))
        try decodeTransport(b, at: o + headerLength, datagramEnd: o + total, into: &p)
    }

    /// IPv6 and its extension headers (hop-by-hop, routing, fragment, destination options, AH, mobility, HIP, shim6).
    public static func decodeIPv6(_ b: UnsafeRawBufferPointer, at o: Int, into p: inout DecodedPacket) throws(DecodeError) {
        try need(b, o, 40, .ipv6)
        guard b.u8(o) >> 4 == 6 else { throw DecodeError(.ipv6, .invalid(.version), at: o) }
        var payloadLength = Int(b.be16(o + 4))
        if payloadLength == 0 { payloadLength = b.count - o - 40 }  // jumbogram or offload: take what was captured
        p.network = .ipv6
        p.networkOffset = o
        p.ttl = b.u8(o + 7)
        p.source = IPAddress(ipv6High: b.be64(o + 8), low: b.be64(o + 16))
        p.destination = IPAddress(ipv6High: b.be64(o + 24), low: b.be64(o + 32))
        p.ipLength = 40 + payloadLength
        var next = b.u8(o + 6)
        var h = o + 40
        let end = o + 40 + payloadLength
        while true {
            switch next {
            case 0, 43, 60, 135, 139, 140:  // length in 8-octet units, not counting the first 8
                try need(b, h, 2, .ipv6Extension)
                let length = (Int(b.u8(h + 1)) + 1) * 8
                try need(b, h, length, .ipv6Extension)
                if next == 43 { finalDestination(b, routingHeader: h, length: length, into: &p) }
                if next == 60 { homeAddress(b, options: h, length: length, into: &p) }
                next = b.u8(h)
                h += length
            case 51:  // AH: length in 4-octet units, not counting the first 2
                try need(b, h, 2, .ipv6Extension)
                let length = (Int(b.u8(h + 1)) + 2) * 4
                try need(b, h, length, .ipv6Extension)
                next = b.u8(h)
                h += length
            case 44:  // fragment header
                try need(b, h, 8, .ipv6Extension)
                let field = b.be16(h + 2)
                p.fragmentOffset = Int(field & 0xFFF8)
                p.moreFragments = field & 1 != 0
                p.isFragment = true
                p.fragmentID = b.be32(h + 4)
                next = b.u8(h)
                h += 8
            default:
                p.ipProtocol = next
                return try decodeTransport(b, at: h, datagramEnd: end, into: &p)
            }
            p.ipv6ExtensionCount &+= 1
        }
    }

    /// A routing header with segments left: the packet's final destination, which the upper-layer checksum
    /// covers. Type 0 and 2 carry it last; a segment routing header (type 4) first (its list is in reverse).
    static func finalDestination(_ b: UnsafeRawBufferPointer, routingHeader h: Int, length: Int, into p: inout DecodedPacket) {
        guard length >= 24, b.u8(h + 3) > 0 else { return }
        let at: Int
        switch b.u8(h + 2) {
        case 0: at = h + 8 + ((length - 8) / 16 - 1) * 16
        case 2, 4: at = h + 8
        default:
            p.pseudoHeaderUncertain = true
            return
        }
        if at + 16 <= b.count, at <= Int(UInt16.max) { p.pseudoHeaderDestinationOffset = UInt16(at) }
    }

    /// A Home Address destination option (Mobile IPv6, RFC 6275 6.3): the checksum's source address.
    static func homeAddress(_ b: UnsafeRawBufferPointer, options h: Int, length: Int, into p: inout DecodedPacket) {
        var i = h + 2
        let end = h + length
        while i < end {
            let type = b.u8(i)
            if type == 0 { i += 1; continue }  // Pad1
            guard i + 1 < end else { return }
            let size = Int(b.u8(i + 1))
            if type == 0xC9, size == 16, i + 18 <= end {
                if i + 2 <= Int(UInt16.max) { p.pseudoHeaderSourceOffset = UInt16(i + 2) }
                return
            }
            i += 2 + size
        }
    }

    // MARK: Transport layer

    static func decodeTransport(_ b: UnsafeRawBufferPointer, at o: Int, datagramEnd: Int, into p: inout DecodedPacket) throws(DecodeError) {
        p.transportOffset = o
        // Bytes this datagram has in the capture (Ethernet padding beyond the IP length excluded).
        let end = min(datagramEnd, b.count)
        if p.fragmentOffset != 0 {
            p.transport = .fragment
            p.payloadOffset = o
            p.payloadLength = max(0, datagramEnd - o)
            p.payloadCaptured = max(0, end - o)
            return
        }
        let view = UnsafeRawBufferPointer(rebasing: b[..<max(end, o)])
        do {
            try decodeTransportHeader(view, at: o, datagramEnd: datagramEnd, into: &p)
        } catch {
            // A first fragment whose datagram ends inside the transport header: the header continues in the next
            // fragment (tiny-fragment evasion). The ports are here, as Wireshark shows them, so it joins its flow.
            guard p.moreFragments, datagramEnd <= b.count, case .truncated = error.kind, error.offset == o,
                p.ipProtocol == 6 || p.ipProtocol == 17, datagramEnd - o >= 4
            else { throw error }
            p.transport = p.ipProtocol == 6 ? .tcp : .udp
            p.sourcePort = b.be16(o)
            p.destinationPort = b.be16(o + 2)
            p.tcp = TCPInfo()
            p.transportHeaderSplit = true
            p.payloadOffset = datagramEnd
            p.payloadLength = 0
            p.payloadCaptured = 0
        }
    }

    static func decodeTransportHeader(_ view: UnsafeRawBufferPointer, at o: Int, datagramEnd: Int, into p: inout DecodedPacket) throws(DecodeError) {
        let end = min(datagramEnd, view.count)
        switch p.ipProtocol {
        case 6: try decodeTCP(view, at: o, datagramEnd: datagramEnd, into: &p)
        case 17: try decodeUDP(view, at: o, datagramEnd: datagramEnd, into: &p)
        case 1: try decodeICMP(view, at: o, layer: .icmp, datagramEnd: datagramEnd, into: &p)
        case 58: try decodeICMP(view, at: o, layer: .icmpv6, datagramEnd: datagramEnd, into: &p)
        case 59:  // IPv6 no next header
            p.transport = .none
            p.payloadOffset = o
        default:
            p.transport = .other
            p.payloadOffset = o
            p.payloadLength = max(0, datagramEnd - o)
            p.payloadCaptured = max(0, end - o)
        }
    }

    @inline(__always)
    static func setPayload(_ b: UnsafeRawBufferPointer, from start: Int, datagramEnd: Int, into p: inout DecodedPacket) {
        p.payloadOffset = start
        p.payloadLength = max(0, datagramEnd - start)
        p.payloadCaptured = max(0, min(datagramEnd, b.count) - start)
    }

    /// TCP, with the MSS, window scale, SACK-permitted, SACK and timestamp options.
    /// `b` ends where the datagram's captured bytes end.
    public static func decodeTCP(_ b: UnsafeRawBufferPointer, at o: Int, datagramEnd: Int, into p: inout DecodedPacket) throws(DecodeError) {
        try need(b, o, 20, .tcp)
        let headerLength = Int(b.u8(o + 12) >> 4) * 4
        guard headerLength >= 20 else { throw DecodeError(.tcp, .invalid(.dataOffset), at: o) }
        try need(b, o, headerLength, .tcp)
        p.transport = .tcp
        p.sourcePort = b.be16(o)
        p.destinationPort = b.be16(o + 2)
        p.tcp.sequence = b.be32(o + 4)
        p.tcp.acknowledgment = b.be32(o + 8)
        p.tcp.flags = TCPFlags(rawValue: UInt16(b.u8(o + 13)) | UInt16(b.u8(o + 12) & 1) << 8)
        p.tcp.window = b.be16(o + 14)
        p.tcp.headerLength = UInt8(headerLength)
        if headerLength > 20 { decodeTCPOptions(b, from: o + 20, to: o + headerLength, into: &p.tcp) }
        setPayload(b, from: o + headerLength, datagramEnd: datagramEnd, into: &p)
    }

    static func decodeTCPOptions(_ b: UnsafeRawBufferPointer, from: Int, to end: Int, into t: inout TCPInfo) {
        var i = from
        while i < end {
            let kind = b.u8(i)
            if kind == 0 { return }  // end of option list
            if kind == 1 { i += 1; continue }  // no-operation
            guard i + 1 < end else { t.optionsMalformed = true; return }
            let length = Int(b.u8(i + 1))
            guard length >= 2, i + length <= end else { t.optionsMalformed = true; return }
            switch (kind, length) {
            case (2, 4): t.mss = b.be16(i + 2)
            case (3, 3): t.windowScale = b.u8(i + 2)
            case (4, 2): t.sackPermitted = true
            case (5, _): t.sackBlocks = UInt8((length - 2) / 8)
            case (8, 10):
                t.hasTimestamps = true
                t.timestampValue = b.be32(i + 2)
                t.timestampEcho = b.be32(i + 6)
            default: break
            }
            i += length
        }
    }

    /// UDP: 8 bytes; the payload length comes from the IP datagram (the UDP length field can lie).
    public static func decodeUDP(_ b: UnsafeRawBufferPointer, at o: Int, datagramEnd: Int, into p: inout DecodedPacket) throws(DecodeError) {
        try need(b, o, 8, .udp)
        p.transport = .udp
        p.sourcePort = b.be16(o)
        p.destinationPort = b.be16(o + 2)
        let udpLength = Int(b.be16(o + 4))
        // Trust the smaller of the two lengths when the UDP one is sane, as Wireshark does.
        let end = udpLength >= 8 && o + udpLength < datagramEnd ? o + udpLength : datagramEnd
        setPayload(b, from: o + 8, datagramEnd: end, into: &p)
        // GTP-U on either port (uplinks may come from another port), never inside a tunnel (telecom cores do not
        // nest GTP: a port 2152 inside is plain UDP), never in a fragment (its datagram is decoded when rebuilt).
        if p.sourcePort == 2152 || p.destinationPort == 2152, p.tunnel.kind == .none, !p.isFragment {
            try decodeGTPU(b, at: o + 8, end: min(end, b.count), into: &p)
        }
    }

    /// GTP-U v1 (TS 29.281 5.1): a G-PDU (message type 255) is decapsulated, its IPv4 or IPv6 packet decoded as the
    /// packet, the outer addresses, ports and TEID kept in `tunnel`. Anything else on the port (echo, error
    /// indication, end marker, or a datagram that is not GTP at all) is left a UDP datagram. A G-PDU whose header
    /// or inner packet is broken throws (layer `gtp`): counted undecodable with its reason.
    static func decodeGTPU(_ b: UnsafeRawBufferPointer, at o: Int, end: Int, into p: inout DecodedPacket) throws(DecodeError) {
        guard end - o >= 8 else { return }
        let flags = b.u8(o)
        // Version 1, protocol type GTP (not GTP'), G-PDU.
        guard flags & 0xF0 == 0x30, b.u8(o + 1) == 0xFF else { return }
        let declaredEnd = o + 8 + Int(b.be16(o + 2))
        var h = o + 8
        var extensions: UInt8 = 0
        if flags & 0x07 != 0 {
            // Sequence number, N-PDU number and next extension type are present when any of E, S, PN is set.
            try need(b, o, 12, .gtp)
            h = o + 12
            var next = b.u8(o + 11)
            while flags & 0x04 != 0 && next != 0 {
                try need(b, h, 1, .gtp)
                let length = Int(b.u8(h)) * 4
                guard length > 0 else { throw DecodeError(.gtp, .invalid(.length), at: h) }
                try need(b, h, length, .gtp)
                next = b.u8(h + length - 1)
                h += length
                extensions &+= 1
            }
        }
        guard declaredEnd >= h else { throw DecodeError(.gtp, .invalid(.length), at: o) }
        let innerEnd = min(end, declaredEnd)
        try need(b, h, 1, .gtp)
        let version = b.u8(h) >> 4
        guard version == 4 || version == 6 else {
            throw DecodeError(.gtp, .unsupported(.version, value: UInt32(version)), at: h)
        }
        var t = TunnelInfo()
        t.kind = .gtpU
        t.teid = b.be32(o + 4)
        t.outerIsIPv6 = p.network == .ipv6
        guard p.networkOffset <= Int(UInt16.max) else { return }  // (captured packets' headers start near 0)
        t.outerNetworkOffset = UInt16(p.networkOffset)
        t.outerSourcePort = p.sourcePort
        t.outerDestinationPort = p.destinationPort
        t.flags = flags
        t.extensionHeaders = extensions
        t.discriminator = TunnelInfo.discriminator(p.source, p.destination)
        p.tunnel = t
        // The inner packet's own layers from here: the link addresses are the tunnel endpoints'.
        p.hasMACs = false
        p.ipv6ExtensionCount = 0
        p.pseudoHeaderSourceOffset = 0
        p.pseudoHeaderDestinationOffset = 0
        p.pseudoHeaderUncertain = false
        p.sourcePort = 0
        p.destinationPort = 0
        p.transport = .none
        let inner = UnsafeRawBufferPointer(rebasing: b[..<innerEnd])
        if version == 4 { try decodeIPv4(inner, at: h, into: &p) } else { try decodeIPv6(inner, at: h, into: &p) }
    }

    /// ICMP and ICMPv6: type, code, checksum (4 bytes) and the rest of the message as payload.
    public static func decodeICMP(
        _ b: UnsafeRawBufferPointer, at o: Int, layer: Layer, datagramEnd: Int, into p: inout DecodedPacket
    ) throws(DecodeError) {
        try need(b, o, 4, layer)
        p.transport = layer == .icmp ? .icmp : .icmpv6
        p.icmpType = b.u8(o)
        p.icmpCode = b.u8(o + 1)
        setPayload(b, from: o + 4, datagramEnd: datagramEnd, into: &p)
    }
}
