public import SiphonCore

/// One packet as the capture layer hands it on: borrowed bytes, valid only until the reader's next call.
///
/// Nothing is copied: `bytes` points into libpcap's buffer (or the pcapng reader's block buffer).
/// A stage that needs bytes past the next `next()` must copy them.
@frozen
public struct CapturedPacket {
    /// The captured bytes (`caplen` of them).
    public var bytes: UnsafeRawBufferPointer
    public var timestamp: Timestamp
    public var linkType: LinkType
    /// The packet's length on the wire (`len`); larger than `bytes.count` when the snapshot length cut it.
    public var originalLength: Int
    /// The pcapng interface the packet came from (0 for pcap files).
    public var interfaceID: Int
    /// What `ReadAheadOptions.inspect` computed for this packet on the reader thread (0 without read-ahead or
    /// without an inspect function).
    public var annotation: UInt64
    /// The side record `ReadAheadOptions.inspect` filled for this packet (nil without one); valid as `bytes` is.
    public var side: UnsafeRawPointer?
    /// The packet's number in its capture as Wireshark counts frames (`frame.number`): 1 for the first packet record
    /// of the file, counting records a filter rejected; for a live capture, packets in the order captured. 0: unknown.
    public var frame: UInt64

    @inlinable
    public init(
        bytes: UnsafeRawBufferPointer, timestamp: Timestamp, linkType: LinkType, originalLength: Int, interfaceID: Int = 0,
        annotation: UInt64 = 0, side: UnsafeRawPointer? = nil, frame: UInt64 = 0
    ) {
        self.frame = frame
        self.side = side
        self.bytes = bytes
        self.timestamp = timestamp
        self.linkType = linkType
        self.originalLength = originalLength
        self.interfaceID = interfaceID
        self.annotation = annotation
    }

    /// True when the capture kept fewer bytes than the packet had on the wire (snapshot length).
    @inlinable
    public var isTruncated: Bool { bytes.count < originalLength }
}
