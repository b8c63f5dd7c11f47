public import SiphonCore

/// Where packets come from: a capture file (pcap, pcapng, standard input) or live interfaces. Nothing above the
/// capture stage needs to know which.
///
/// The consumer calls `next()` until it returns nil, then looks at `isFinished`: a file source is finished at its
/// end; a live source returns nil also when it has no packet right now (it waited up to its tick), and then its
/// `clock` says how far capture time has gone, so that the consumer can end idle flows with no packet arriving.
public protocol PacketSource: AnyObject {
    /// The capture's name in events and messages (file name, `-`, or the interfaces).
    var name: String { get }
    /// The next packet, borrowed until the following call; nil when none is available now (see `isFinished`).
    /// Throws when reading cannot go on: everything returned before stays valid data.
    func next() throws(CaptureError) -> CapturedPacket?
    /// Whether the last nil from `next()` was the end of the source.
    var isFinished: Bool { get }
    /// The capture time up to which every packet has been handed out (live: the clock when the source last
    /// waited); nil when packets carry the only time there is (files).
    var clock: Timestamp? { get }
    /// An annotation the source computed ahead for the packet `ahead` calls from now (0: none).
    func annotation(ahead: Int) -> UInt64
    /// Packets the BPF filter rejected in user space (0 when the kernel filters).
    var filteredOut: Int { get }
    /// Drops reported by the capturing interfaces (pcapng statistics blocks; live: `ps_ifdrop`).
    var interfaceDrops: UInt64? { get }
    /// Packets the kernel dropped for lack of buffer space (live: `ps_drop`); nil for files.
    var kernelDrops: UInt64? { get }
}

extension CaptureReader: PacketSource {
    /// A file ends when `next()` first returns nil.
    public var isFinished: Bool { true }
    public var clock: Timestamp? { nil }
}
