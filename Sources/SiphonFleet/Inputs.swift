import Siphon
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file a batch found: a capture to scan, or a file in a folder that is not one (listed as skipped).
public struct FoundFile: Sendable, Equatable {
    public var path: String
    /// Nil: scan it. Else why it is not a capture.
    public var notCapture: String?
    /// Why it is not opened although named as a capture (not a regular file: a pipe would block the batch).
    public var refused: String?

    public init(path: String, notCapture: String? = nil, refused: String? = nil) {
        self.path = path
        self.notCapture = notCapture
        self.refused = refused
    }
}

/// Finds the captures under the paths a batch is given.
public enum CaptureFinder {
    /// Names that say "capture": a file so named is scanned even when its header is wrong (and reported then).
    static let captureSuffixes = [".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".cap.gz", ".gz", ".dmp", ".ntar"]

    /// Every file under `paths`, in the order given (a folder's files in path order): files given by name are always
    /// scanned (unless they are not regular files: pipes, devices); in folders (recursively;
    /// hidden entries and symbolic links to folders left out), a file is scanned when its first bytes are a pcap,
    /// pcapng or gzip header or its name ends like a capture's, and listed as skipped otherwise. Throws naming a
    /// path that does not exist.
    public static func find(_ paths: [String]) throws(BatchError) -> [FoundFile] {
        var found: [FoundFile] = []
        var seen = Set<String>()
        for path in paths {
            var s = stat()
            guard stat(path, &s) == 0 else { throw BatchError("\(path): \(String(cString: strerror(errno)))") }
            if (s.st_mode & S_IFMT) == S_IFDIR {
                for file in walk(path) where seen.insert(file).inserted {
                    found.append(FoundFile(path: file, notCapture: classify(file)))
                }
            } else if seen.insert(path).inserted {
                let regular = (s.st_mode & S_IFMT) == S_IFREG
                found.append(FoundFile(path: path, refused: regular ? nil : "not a regular file (a pipe or a device): copy it to a file first"))
            }
        }
        return found
    }

    /// Regular files under `dir`, sorted by path (byte order).
    static func walk(_ dir: String) -> [String] {
        var out: [String] = []
        var pending = [dir]
        while let d = pending.popLast() {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: d) else { continue }
            for name in entries where !name.hasPrefix(".") {
                let p = d.hasSuffix("/") ? d + name : d + "/" + name
                var s = stat()
                guard lstat(p, &s) == 0 else {
                    // A name this platform's string conversion could not keep (not UTF-8): listed, and scanning
                    // it reports that it cannot be opened, rather than leaving it out unsaid.
                    out.append(p)
                    continue
                }
                switch s.st_mode & S_IFMT {
                case S_IFDIR: pending.append(p)
                case S_IFREG: out.append(p)
                case S_IFLNK:
                    // A link to a file is followed; one to a folder is not (no loops).
                    if stat(p, &s) == 0, (s.st_mode & S_IFMT) == S_IFREG { out.append(p) }
                default: break
                }
            }
        }
        return out.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Nil when `path` is to be scanned, else why it is not a capture.
    static func classify(_ path: String) -> String? {
        let lower = path.lowercased()
        if captureSuffixes.contains(where: { lower.hasSuffix($0) }) { return nil }
        guard let f = fopen(path, "rb") else { return nil }  // unreadable: scanning reports why
        defer { fclose(f) }
        var magic = [UInt8](repeating: 0, count: 4)
        let n = fread(&magic, 1, 4, f)
        if n >= 2 && magic[0] == 0x1F && magic[1] == 0x8B { return nil }
        if n == 4 {
            let m = UInt32(magic[0]) << 24 | UInt32(magic[1]) << 16 | UInt32(magic[2]) << 8 | UInt32(magic[3])
            if [0xA1B2_C3D4, 0xA1B2_3C4D, 0xD4C3_B2A1, 0x4D3C_B2A1, 0x0A0D_0D0A, 0xA1B2_CD34, 0x34CD_B2A1].contains(m) { return nil }
        }
        return "not a capture (no pcap, pcapng or gzip header, and not named like one)"
    }

    /// The folder name a capture's outputs get under `DIR/captures`: its path made safe (letters, digits, `.-_`;
    /// the last 60 characters) and 12 hex digits of the path's SHA-256, so two paths never share one.
    public static func slot(for path: String) -> String {
        var safe = ""
        for c in path.unicodeScalars {
            let ok = (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "." || c == "-" || c == "_"
            let ch: Character = ok ? Character(c) : "_"
            if !(ch == "_" && safe.last == "_") { safe.append(ch) }
        }
        if safe.count > 60 { safe = String(safe.suffix(60)) }
        // Never a hidden name (the fleet skips those) nor one starting with a separator.
        while safe.first == "_" || safe.first == "." || safe.first == "-" { safe.removeFirst() }
        let digest = SHA256.hash(data: Array(path.utf8)).hex
        return (safe.isEmpty ? "capture" : safe) + "-" + digest.prefix(12)
    }
}

/// `--shard K/N`: which share of the inputs this run scans. A file belongs to shard 1 + (the first 8 bytes of
/// the SHA-256 of its path, big-endian) mod N: every machine computes the same split from the same paths, and
/// shares stay even whatever the folders hold.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]), n >= 1, k >= 1, k <= n else { return nil }
        index = k
        count = n
    }

    public func contains(_ path: String) -> Bool {
        let d = Array(SHA256.hash(data: Array(path.utf8)))
        var v: UInt64 = 0
        for b in d.prefix(8) { v = v << 8 | UInt64(b) }
        return Int(v % UInt64(count)) == index - 1
    }

    public var description: String { "\(index)/\(count)" }
}

/// An error that stops a batch before it starts (bad arguments, a bad devices file, an output folder that cannot
/// be made).
public struct BatchError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

extension Array where Element == UInt8 {
    var sha256: String { Array(SHA256.hash(data: self)).hexString }
}

extension SHA256.Digest {
    var hex: String { Array(self).hexString }
}

/// SHA-256 and size of a file, read in 1 MiB blocks.
public func fileDigest(_ path: String) throws(BatchError) -> (sha256: String, size: Int64) {
    try ContentHasher().finish(path: path)
}

/// SHA-256 of a string, in hex.
public func textDigest(_ text: String) -> String { SHA256.hash(data: Array(text.utf8)).hex }

/// Writes `bytes` to `path` (created or truncated) with plain writes: no fsync (Foundation's `Data.write`
/// syncs every file, a millisecond or more each on a disk). The per-capture files are made whole by the rename of
/// their folder, which protects them from a killed process; after a power loss, rerun with `--force`.
func writeFile(_ path: String, _ bytes: [UInt8]) throws(BatchError) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw BatchError("\(path): cannot write: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw BatchError("\(path): cannot write: \(String(cString: strerror(errno)))") }
        done += n
    }
}
