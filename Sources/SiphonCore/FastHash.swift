/// A multiply-xor hash step for the package's own tables, where SipHash per lookup costs more than the table saves
/// (the flow table's index, the TLS fingerprint cache). Not keyed by itself: a table whose keys a capture chooses
/// starts from a seed the capture cannot know (`FastHash.seed()`): the TLS fingerprint cache's digest and the flow
/// table's index (`FlowTableConfiguration.hashSeed`) do.
public enum FastHash {
    /// One step: `v` folded into the running hash `h` (a bijection of `h ^ v`).
    @inlinable @inline(__always)
    public static func mix(_ h: UInt64, _ v: UInt64) -> UInt64 {
        let x = (h ^ v) &* 0x9E37_79B9_7F4A_7C15
        return x ^ (x >> 29)
    }

    /// A random starting value (per table: hashes are not comparable across tables or runs).
    public static func seed() -> UInt64 { UInt64.random(in: .min ... .max) }
}
