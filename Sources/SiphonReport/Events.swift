public import SiphonCore
public import SiphonDecode
public import SiphonFlows

/// Encodes events of the JSON Lines contract (ARCHITECTURE.md).
public enum EventEncoder {
    /// A `flow` event for a flow that ended.
    public static func flow(_ f: Flow, capture: String) -> JSONObjectWriter {
        var w = JSONObjectWriter()
        w.beginObject()
        w.field("timestamp", f.end.rfc3339)
        w.field("event_type", "flow")
        w.field("capture", capture)
        flowFields(f, into: &w)
        w.field("state", f.state.description)
        w.field("start", f.start.rfc3339)
        w.field("end", f.end.rfc3339)
        w.field("duration", Double((f.end - f.start).nanoseconds / 1000) / 1e6)
        w.field("app", "unknown")
        w.field("history", f.history.description)
        if f.evicted { w.field("evicted", true) }
        w.beginObject("client")
        counters(f.client, into: &w)
        if f.clientMAC != 0 { w.field("mac", macString(f.clientMAC)) }
        w.endObject()
        w.beginObject("server")
        counters(f.server, into: &w)
        if f.serverMAC != 0 { w.field("mac", macString(f.serverMAC)) }
        w.endObject()
        w.endObject()
        return w
    }

    /// The fields every flow-scoped event carries.
    public static func flowFields(_ f: Flow, into w: inout JSONObjectWriter) {
        w.field("flow_id", f.id)
        w.field("community_id", f.communityID)
        w.field("src_ip", f.clientAddress.description)
        let icmp = f.key.ipProtocol == 1 || f.key.ipProtocol == 58
        let ports = f.key.ipProtocol == 6 || f.key.ipProtocol == 17 || f.key.ipProtocol == 132
        if ports { w.field("src_port", f.clientPort) }
        w.field("dest_ip", f.serverAddress.description)
        if ports { w.field("dest_port", f.serverPort) }
        w.field("proto", f.protocolName)
        if icmp {
            w.field("icmp_type", f.clientPort)
            if ICMPPorts.counterpart(type: UInt8(truncatingIfNeeded: f.clientPort), v6: f.key.ipProtocol == 58) == nil {
                w.field("icmp_code", f.serverPort)
            }
        }
        if f.key.vlan != 0 { w.field("vlan", f.key.vlan) }
    }

    static func counters(_ c: DirectionCounters, into w: inout JSONObjectWriter) {
        w.field("packets", c.packets)
        w.field("bytes", c.bytes)
        w.field("payload_bytes", c.payloadBytes)
    }

    public static func macString(_ mac: UInt64) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for i in (0..<6).reversed() {
            let b = UInt8(truncatingIfNeeded: mac >> (UInt64(i) * 8))
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 15)])
            if i > 0 { out.append(UInt8(ascii: ":")) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The final `stats` event.
    public static func stats(_ s: CaptureStatistics, capture: String) -> JSONObjectWriter {
        var w = JSONObjectWriter()
        w.beginObject()
        w.field("timestamp", (s.lastTimestamp ?? .zero).rfc3339)
        w.field("event_type", "stats")
        w.field("capture", capture)
        w.beginObject("stats")
        w.field("packets", s.packets)
        w.field("bytes", s.wireBytes)
        w.field("captured_bytes", s.capturedBytes)
        w.field("decoded", s.decoded)
        w.field("undecodable", s.undecodableTotal)
        w.beginObject("undecodable_by_reason")
        for (reason, count) in s.undecodable.sorted(by: { $0.key < $1.key }) { w.field(reason.description, count) }
        w.endObject()
        w.field("truncated_by_snaplen", s.truncatedBySnaplen)
        w.field("filtered_out", s.filteredOut)
        w.field("ipv4", s.ipv4)
        w.field("ipv6", s.ipv6)
        w.field("arp", s.arp)
        w.field("tcp", s.tcp)
        w.field("udp", s.udp)
        w.field("icmp", s.icmp)
        w.field("other_ip", s.otherIP)
        w.field("ip_fragments", s.fragments)
        w.beginObject("link_types")
        for (type, count) in s.linkTypes.sorted(by: { $0.key < $1.key }) {
            w.field(LinkType(rawValue: type).description, count)
        }
        w.endObject()
        w.field("flows", s.flows)
        w.field("flows_evicted", s.flowsEvicted)
        if let drops = s.interfaceDrops { w.field("interface_drops", drops) }
        if let first = s.firstTimestamp, let last = s.lastTimestamp {
            w.field("first_packet", first.rfc3339)
            w.field("last_packet", last.rfc3339)
        }
        if let error = s.error {
            w.field("error", error)
            if let offset = s.errorOffset { w.field("error_offset", offset) }
        }
        w.endObject()
        w.endObject()
        return w
    }
}
