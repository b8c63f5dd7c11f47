/// Unchecked big-endian loads from a raw buffer. Callers check bounds once per header, then read fields
/// without further checks (the etherparse "validate once" pattern).
extension UnsafeRawBufferPointer {
    @inlinable @inline(__always)
    public func u8(_ offset: Int) -> UInt8 {
        baseAddress.unsafelyUnwrapped.load(fromByteOffset: offset, as: UInt8.self)
    }

    @inlinable @inline(__always)
    public func be16(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: baseAddress.unsafelyUnwrapped.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable @inline(__always)
    public func be32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: baseAddress.unsafelyUnwrapped.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inlinable @inline(__always)
    public func be64(_ offset: Int) -> UInt64 {
        UInt64(bigEndian: baseAddress.unsafelyUnwrapped.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inlinable @inline(__always)
    public func le16(_ offset: Int) -> UInt16 {
        UInt16(littleEndian: baseAddress.unsafelyUnwrapped.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable @inline(__always)
    public func le32(_ offset: Int) -> UInt32 {
        UInt32(littleEndian: baseAddress.unsafelyUnwrapped.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}

extension UnsafeBufferPointer where Element == UInt8 {
    /// Whether `part` occurs in these bytes (a plain search: the first byte, then the rest; an empty `part` is found).
    /// Through pointers, for callers that searched array slices byte by byte with bounds checks.
    @inlinable
    public func contains(bytes part: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = part.first else { return true }
        guard part.count <= count else { return false }
        let last = count - part.count
        var i = 0
        while i <= last {
            if self[i] == first {
                var k = 1
                while k < part.count && self[i + k] == part[k] { k += 1 }
                if k == part.count { return true }
            }
            i += 1
        }
        return false
    }
}
