extension String {
    /// The string without the spaces and tabs it starts and ends with (read as bytes; the string itself when there
    /// are none).
    public func trimmingSpaces() -> String {
        let u = utf8
        var start = u.startIndex, end = u.endIndex
        while start < end, u[start] == 0x20 || u[start] == 0x09 { start = u.index(after: start) }
        while end > start {
            let last = u.index(before: end)
            guard u[last] == 0x20 || u[last] == 0x09 else { break }
            end = last
        }
        return start == u.startIndex && end == u.endIndex ? self : String(self[start..<end])
    }

    /// The string in lower case, without a copy when it has no upper-case ASCII letter and nothing beyond ASCII
    /// (names, hosts and header values rarely do): `lowercased()`'s Unicode tables cost thousands of instructions
    /// a call.
    public func lowercasedIfNeeded() -> String {
        utf8.contains { $0 &- 0x41 < 26 || $0 >= 0x80 } ? lowercased() : self
    }
}
