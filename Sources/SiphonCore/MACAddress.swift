/// 48-bit MAC addresses as flows and devices carry them, and their `aa:bb:cc:dd:ee:ff` text.
public enum MACAddress {
    public static func text(_ mac: UInt64) -> String {
        // The 17 characters written straight into the string's storage (one allocation, no array).
        String(unsafeUninitializedCapacity: 17) { out in
            var n = 0
            for i in stride(from: 5, through: 0, by: -1) {
                let b = UInt8(truncatingIfNeeded: mac >> (UInt64(i) * 8))
                out[n] = HexDigits.digit(b >> 4)
                out[n + 1] = HexDigits.digit(b & 15)
                n += 2
                if i > 0 { out[n] = UInt8(ascii: ":"); n += 1 }
            }
            return n
        }
    }

    /// `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`.
    public static func parse(_ text: String) -> UInt64? {
        let parts = text.split(whereSeparator: { $0 == ":" || $0 == "-" })
        guard parts.count == 6 else { return nil }
        var v: UInt64 = 0
        for p in parts {
            guard p.utf8.count == 2, let b = UInt8(p, radix: 16) else { return nil }
            v = v << 8 | UInt64(b)
        }
        return v
    }

    /// A group (multicast or broadcast) address: never a sender's own.
    @inlinable public static func isGroup(_ mac: UInt64) -> Bool { mac >> 40 & 1 == 1 }
}
