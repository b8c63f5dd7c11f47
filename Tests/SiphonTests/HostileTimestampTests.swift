import Foundation
import Siphon
import Testing

/// Timestamps read from a capture are untrusted: a pcapng file can put any 64-bit value in them (a 2^-64 s
/// resolution, an `if_tsoffset`, bit flips). Time differences between such packets overflow 64 bits; none may trap.
/// (Issue 17 found three such traps in FlowTable with zzuf: `process`, `expireIdle`, `touch`.)
@Suite struct HostileTimestampTests {
    /// Ethernet, IPv4 (header checksum right), UDP without checksum, 4 bytes of payload.
    static func udpFrame(sourcePort: UInt16) -> [UInt8] {
        var ip: [UInt8] = [0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7]
        var sum: UInt32 = 0
        for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(ip[i]) << 8 | UInt32(ip[i + 1]) }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        ip[10] = UInt8(~sum >> 8 & 0xFF)
        ip[11] = UInt8(~sum & 0xFF)
        let udp: [UInt8] = [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), 0x1F, 0x90, 0, 12, 0, 0, 1, 2, 3, 4]
        return [0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00] + ip + udp
    }

    @Test func extremeTimestampsNeverTrap() throws {
        let path = temporaryPath("siphon-timestamps-\(UUID().uuidString).pcapng")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try PcapngFileWriter(
            path: path, interfaces: [CaptureInterface(name: "eth0", linkType: .ethernet, snapLength: 65535)], application: "test", comment: nil)
        // The same flow (and a second one) jumping between the ends of the 64-bit range and the epoch.
        let times: [Int64] = [Int64.max - 5, Int64.min + 5, 0, Int64.max, Int64.min, 1_741_942_800_000_000_000, -1, Int64.max - 1]
        for (i, t) in times.enumerated() {
            let frame = Self.udpFrame(sourcePort: i % 3 == 2 ? 40_001 : 40_000)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: frame.count, alignment: 8)
            defer { buffer.deallocate() }
            buffer.copyBytes(from: frame)
            let packet = CapturedPacket(
                bytes: UnsafeRawBufferPointer(buffer), timestamp: Timestamp(nanoseconds: t), linkType: .ethernet, originalLength: frame.count)
            try writer.write(packet, interface: 0)
        }
        try writer.finish()
        for readAhead in [false, true] {
            var options = ScanOptions()
            options.readAhead = readAhead
            let (events, result) = scanEvents(path, options: options)
            #expect(result.error == nil)
            #expect(result.statistics.packets == UInt64(times.count) && result.statistics.decoded == UInt64(times.count))
            // Every packet is in a flow event: the flows' packet counts add up to the capture's.
            let counted = events.filter { $0["event_type"] as? String == "flow" }.reduce(0) { sum, e in
                sum + ((e["client"] as? [String: Any])?["packets"] as? Int ?? 0) + ((e["server"] as? [String: Any])?["packets"] as? Int ?? 0)
            }
            #expect(counted == times.count)
        }
    }
}
