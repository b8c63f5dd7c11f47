internal import SiphonCore
internal import CSiphonSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a `CaptureReader` reads ahead: blocks of `blockSize` bytes, `blocks` of them in all (filled, being filled
/// or being read), so at most `blocks × blockSize` bytes of packets wait between the two threads.
public struct ReadAheadOptions: Sendable {
    public var blockSize = 1 << 20
    public var blocks = 4
    /// Read ahead even with one processor online (tests of the hand-over; on one processor it only adds a copy).
    public var evenOnOneProcessor = false
    /// Work done on each packet in the reader thread, right after its copy (while its bytes are in that core's
    /// cache); the result comes with the packet as `CapturedPacket.annotation`. It must not touch state the
    /// consumer uses: it runs concurrently with it. Its second argument is the packet's side record
    /// (`sideBytes` bytes, 16-byte aligned, nil when `sideBytes` is 0), handed on as `CapturedPacket.side`.
    public var inspect: (@Sendable (CapturedPacket, UnsafeMutableRawPointer?) -> UInt64)?
    /// Bytes of side record per packet for `inspect` to fill (a decoded form of the packet, say).
    public var sideBytes = 0
    public init(
        blockSize: Int = 1 << 20, blocks: Int = 4, evenOnOneProcessor: Bool = false, sideBytes: Int = 0,
        inspect: (@Sendable (CapturedPacket, UnsafeMutableRawPointer?) -> UInt64)? = nil
    ) {
        self.blockSize = blockSize
        self.blocks = blocks
        self.evenOnOneProcessor = evenOnOneProcessor
        self.sideBytes = sideBytes
        self.inspect = inspect
    }
}

/// Reads a capture on a second thread, a block of packets at a time, so that the file's reads and libpcap's copies
/// run beside the pipeline instead of before each packet. Suricata reads capture files the same way by default (its
/// `autofp` run mode has a receive thread in front of the workers).
///
/// The reader thread runs the whole `CaptureReader.next()` loop (libpcap or the pcapng reader, then the BPF filter)
/// and copies each accepted packet into the block being filled: one copy of every packet, on the reader's core
/// (none for a file read in place from a memory mapping: its records point into the mapping).
/// Blocks go round between two lists, `full` (in capture order) and `free`, so memory is bounded by
/// `blocks × blockSize` (a packet larger than a block gets a block of its size). The consumer hands a block back
/// when it asks for the packet after the block's last one, which keeps `CapturedPacket`'s promise (bytes valid
/// until the next call).
///
/// An error stops the reader after the packets before it: they come out first, then the error, with the offsets
/// and counters the sequential reader would have given at that point. One lock and one condition variable, taken
/// once per block (thousands of packets), not per packet.
final class ReadAhead: @unchecked Sendable {
    // @unchecked: `full`, `free` and `stopping` are touched under `mutex` only; the consumer's fields (`current`,
    // `index`, the cached pointers and counters) by the consumer only; `source` and the block being filled by the
    // reader thread only (a block changes hands under the mutex). The reader thread holds a strong reference while
    // it runs, so this object cannot be freed under it: its owner (`CaptureReader.deinit`) calls `stop()`, which
    // wakes the thread if it waits for a free block and detaches it; the last release may then happen on it.

    struct Record {
        var start: Int
        var count: Int
        var originalLength: Int
        var timestamp: Timestamp
        var linkType: LinkType
        var interfaceID: Int
        var annotation: UInt64
        var frame: UInt64
        /// `CaptureReader.offset` after this record.
        var offset: Int64
    }

    final class Block {
        var storage: UnsafeMutableRawPointer
        var capacity: Int
        var used = 0
        /// The packet records (raw storage: read once per packet by the consumer, no array checks on the way),
        /// room for `recordCapacity` of them: the reader hands a block on when it is full.
        let records: UnsafeMutablePointer<Record>
        var recordCount = 0
        let recordCapacity: Int
        /// The reader's counters once this block was filled.
        var recordsRead = 0
        var filteredOut = 0
        var offset: Int64 = 0
        /// Set on the last block: the capture ended, or could not be read further.
        var end = false
        var error: CaptureError?
        var interfaceDrops: UInt64?
        var kernelDrops: UInt64?
        /// One side record per packet record (`sideStride` bytes each).
        let sideStride: Int
        let side: UnsafeMutableRawPointer?

        init(capacity: Int, records: Int, sideBytes: Int) {
            self.capacity = capacity
            storage = .allocate(byteCount: capacity, alignment: 16)
            recordCapacity = records
            self.records = .allocate(capacity: records)
            sideStride = (sideBytes + 15) & ~15
            side = sideStride > 0 ? .allocate(byteCount: records * sideStride, alignment: 16) : nil
        }
        deinit {
            storage.deallocate()
            records.deallocate()
            side?.deallocate()
        }

        /// Adds a record (the reader thread only, when `recordCount < recordCapacity`).
        func append(_ r: Record) {
            (records + recordCount).initialize(to: r)
            recordCount += 1
        }

        /// The side record of record `i`.
        func sideRecord(_ i: Int) -> UnsafeMutableRawPointer? { side.map { $0 + i * sideStride } }

        func reset() {
            used = 0
            records.deinitialize(count: recordCount)
            recordCount = 0
        }

        /// Makes room for `count` more bytes, growing the storage when the block is empty and still too small.
        func fits(_ count: Int) -> Bool {
            if used + count <= capacity { return true }
            guard used == 0 else { return false }
            storage.deallocate()
            capacity = count
            storage = .allocate(byteCount: count, alignment: 16)
            return true
        }
    }

    private let source: SequentialSource
    private let configuration: ReadAheadOptions
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var full: [Block] = []
    private var fullHead = 0
    private var free: [Block] = []
    private var stopping = false
    private var thread: pthread_t?

    // Consumer side. The current block's storage is also kept as raw pointers, so that handing out a packet
    // neither retains the block nor checks an array.
    private var current: Block?
    private var index = 0
    private var count = 0
    private var records = UnsafeMutablePointer<Record>(bitPattern: 16)!
    private var storage = UnsafeMutableRawPointer(bitPattern: 16)!
    private var side: UnsafeMutableRawPointer?
    private var sideStride = 0

    /// A file read in place: the reader thread copies nothing (a packet's bytes stay in the mapping, and records
    /// point into it); blocks still count the bytes, so the reader stays at most `blocks × blockSize` ahead.
    private let mapping: UnsafeRawPointer?

    init(source: SequentialSource, configuration: ReadAheadOptions = ReadAheadOptions()) {
        self.source = source
        // In place only while what waits between the threads stays within the mapping's 16 MiB lag.
        mapping = configuration.blocks * configuration.blockSize <= 8 << 20 ? source.mappingBase : nil
        self.configuration = configuration
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        pthread_cond_init(condition, nil)
        // Records and side records for one packet per 256 bytes of block (a block of smaller packets is handed on
        // when its records are used up): allocated once, so empty or tiny packets cannot grow memory.
        let blockSize = max(4096, configuration.blockSize)
        free = (0..<max(2, configuration.blocks)).map { _ in
            Block(capacity: blockSize, records: blockSize / 256, sideBytes: max(0, configuration.sideBytes))
        }
    }

    /// Starts the reader thread; false when the system refused one (the caller then reads sequentially).
    func start() -> Bool {
        var t = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&t, nil, { raw in
            #if canImport(Glibc)
            let me = Unmanaged<ReadAhead>.fromOpaque(raw!).takeRetainedValue()
            #else
            let me = Unmanaged<ReadAhead>.fromOpaque(raw).takeRetainedValue()
            #endif
            me.run()
            return nil
        }, context)
        if rc != 0 {
            Unmanaged<ReadAhead>.fromOpaque(context).release()
            return false
        }
        thread = t
        return true
    }

    /// Tells the reader thread to stop and lets it finish on its own (detached): it ends at its next hand-over
    /// (at most a block later), or when a read it is blocked in returns. Not joined, so that letting a reader go
    /// never waits for a pipe that says nothing; the thread keeps this object (and the source) alive until then.
    func stop() {
        guard let t = thread else { return }
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
        pthread_detach(t)
        thread = nil
    }

    deinit {
        stop()
        pthread_cond_destroy(condition)
        condition.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    // MARK: reader thread

    private func takeFree() -> Block? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while free.isEmpty && !stopping { pthread_cond_wait(condition, mutex) }
        if stopping { return nil }
        return free.removeLast()
    }

    private func publish(_ b: Block) {
        b.recordsRead = source.recordsRead
        b.filteredOut = source.filteredOut
        b.offset = source.offset
        b.interfaceDrops = source.interfaceDrops
        b.kernelDrops = source.kernelDrops
        pthread_mutex_lock(mutex)
        full.append(b)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    private func run() {
        // Unwrapped once (`if let` on the optional closure retained and released its context for every packet);
        // without an inspector every packet gets annotation 0, as before.
        let inspect = configuration.inspect ?? { _, _ in 0 }
        guard var block = takeFree() else { return }
        while true {
            let packet: CapturedPacket?
            do {
                packet = try source.next()
            } catch {
                block.error = error
                block.end = true
                publish(block)
                return
            }
            guard let packet else {
                block.end = true
                publish(block)
                return
            }
            let n = packet.bytes.count
            if !block.fits(n) || block.recordCount == block.recordCapacity {
                publish(block)
                guard let next = takeFree() else { return }
                block = next
                block.reset()
                _ = block.fits(n)
            }
            let start: Int
            let annotation: UInt64
            if let mapping {
                start = n > 0 ? packet.bytes.baseAddress! - mapping : 0
                annotation = inspect(packet, block.sideRecord(block.recordCount))
            } else {
                start = block.used
                let copy = UnsafeMutableRawBufferPointer(start: block.storage + block.used, count: n)
                if n > 0 { copy.baseAddress!.copyMemory(from: packet.bytes.baseAddress!, byteCount: n) }
                var copied = packet
                copied.bytes = UnsafeRawBufferPointer(copy)
                annotation = inspect(copied, block.sideRecord(block.recordCount))
            }
            block.append(Record(
                start: start, count: n, originalLength: packet.originalLength, timestamp: packet.timestamp,
                linkType: packet.linkType, interfaceID: packet.interfaceID, annotation: annotation, frame: packet.frame, offset: source.offset))
            block.used += (n + 15) & ~15
        }
    }

    // MARK: consumer

    /// The reader's counters as of the last packet handed out.
    private(set) var recordsRead = 0
    private(set) var filteredOut = 0
    private(set) var offset: Int64 = 24
    private(set) var interfaceDrops: UInt64?
    private(set) var kernelDrops: UInt64?

    /// The annotation of the packet `next()` will return (`ahead` 1) or of the one after it (2), when it is
    /// already in the block being read (0 if not).
    @inline(__always)
    func annotation(ahead: Int) -> UInt64 {
        let i = index + ahead - 1
        return i < count ? records[i].annotation : 0
    }

    @inline(__always)
    func next() throws(CaptureError) -> CapturedPacket? {
        if index < count {
            let r = records + index
            let recordSide = side.map { UnsafeRawPointer($0 + index * sideStride) }
            index += 1
            offset = r.pointee.offset
            if index < count {
                // The next packet's lines the pipeline touches (its start, where a segment's middle and last bytes
                // are, and its side record): they were written by the reader thread's core.
                let n = records + index
                let p = storage + n.pointee.start
                let length = n.pointee.count
                siphon_prefetch(p)
                siphon_prefetch(p + 64)
                siphon_prefetch(p + length / 2)
                siphon_prefetch(p + max(0, length - 1))
                if let s = side {
                    var line = 0
                    let record = s + index * sideStride
                    while line < sideStride {
                        siphon_prefetch(record + line)
                        line += 64
                    }
                }
            }
            return CapturedPacket(
                bytes: UnsafeRawBufferPointer(start: storage + r.pointee.start, count: r.pointee.count),
                timestamp: r.pointee.timestamp, linkType: r.pointee.linkType, originalLength: r.pointee.originalLength,
                interfaceID: r.pointee.interfaceID, annotation: r.pointee.annotation, side: recordSide, frame: r.pointee.frame)
        }
        return try nextBlock()
    }

    private func nextBlock() throws(CaptureError) -> CapturedPacket? {
        if let b = current {
            if b.end {
                offset = b.offset
                if let error = b.error { throw error }
                return nil
            }
            // Every packet of it was handed out: back to the reader.
            pthread_mutex_lock(mutex)
            b.reset()
            free.append(b)
            current = nil
            count = 0
            index = 0
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        pthread_mutex_lock(mutex)
        while fullHead == full.count { pthread_cond_wait(condition, mutex) }
        let b = full[fullHead]
        fullHead += 1
        if fullHead == full.count {
            full.removeAll(keepingCapacity: true)
            fullHead = 0
        }
        pthread_mutex_unlock(mutex)
        current = b
        index = 0
        count = b.recordCount
        records = b.records
        storage = mapping.map { UnsafeMutableRawPointer(mutating: $0) } ?? b.storage
        side = b.side
        sideStride = b.sideStride
        recordsRead = b.recordsRead
        filteredOut = b.filteredOut
        interfaceDrops = b.interfaceDrops
        kernelDrops = b.kernelDrops
        if b.recordCount == 0 {
            offset = b.offset
            return try nextBlock()
        }
        return try next()
    }
}
