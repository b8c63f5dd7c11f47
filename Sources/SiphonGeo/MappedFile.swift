#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only file mapped into memory: the embedded tables are 20 MB, and a scan touches a few pages of them, so
/// mapping costs neither the copy nor the page faults of reading them into arrays (35 ms per process before).
/// Immutable once made; the mapping lives as long as the object.
final class MappedFile: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    private let mapped: Bool

    init(path: String) throws(GeoError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw GeoError("\(path): cannot read") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw GeoError("\(path): cannot read") }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            mapped = false
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw GeoError("\(path): cannot map")
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
        mapped = true
    }

    deinit {
        if mapped, let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    var count: Int { bytes.count }
    subscript(i: Int) -> UInt8 { bytes[i] }
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try body(bytes) }
    func starts(with magic: [UInt8]) -> Bool { bytes.count >= magic.count && bytes.prefix(magic.count).elementsEqual(magic) }
}
