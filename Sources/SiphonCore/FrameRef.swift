/// One packet of a capture as Wireshark names it: its frame number (`frame.number`, 1 for the first packet record
/// of the file), its capture time, and for pcapng files and live captures the interface it came from. Findings
/// point at the frames they rest on, so that an analyst can go to them (`frame.number == N`).
@frozen
public struct FrameRef: Hashable, Comparable, Sendable {
    public var number: UInt64
    public var timestamp: Timestamp
    /// The pcapng interface (Interface Description Block index), or -1 when the capture has no interfaces (pcap).
    public var interface: Int32

    @inlinable
    public init(number: UInt64, timestamp: Timestamp, interface: Int32 = -1) {
        self.number = number
        self.timestamp = timestamp
        self.interface = interface
    }

    /// No frame (a finding with nothing to point at, or a source that does not number its packets).
    @inlinable public static var none: FrameRef { FrameRef(number: 0, timestamp: .zero) }
    @inlinable public var isNone: Bool { number == 0 }

    @inlinable
    public static func < (a: FrameRef, b: FrameRef) -> Bool { a.number < b.number }
}
