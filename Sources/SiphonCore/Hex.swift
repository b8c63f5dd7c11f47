/// Lower-case hexadecimal digits, as bytes.
public enum HexDigits {
    @inline(__always) public static func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 0x30 &+ nibble : 0x57 &+ nibble }

    /// Appends the two hex digits of each byte of `bytes` to `out`.
    @inline(__always) public static func append<S: Sequence>(_ bytes: S, to out: inout [UInt8]) where S.Element == UInt8 {
        for b in bytes {
            out.append(digit(b >> 4))
            out.append(digit(b & 15))
        }
    }
}

extension Sequence where Element == UInt8 {
    /// The bytes as lowercase hexadecimal, two digits each.
    public var hexString: String {
        // Contiguous bytes (arrays, buffers, digests' bytes) are written straight into the string's storage.
        let direct = withContiguousStorageIfAvailable { raw in
            String(unsafeUninitializedCapacity: raw.count * 2) { out in
                for (i, b) in raw.enumerated() {
                    out[2 * i] = HexDigits.digit(b >> 4)
                    out[2 * i + 1] = HexDigits.digit(b & 15)
                }
                return raw.count * 2
            }
        }
        if let direct { return direct }
        var out = [UInt8]()
        out.reserveCapacity(underestimatedCount * 2)
        HexDigits.append(self, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
