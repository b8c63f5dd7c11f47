import Siphon
import SiphonFleet
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A data file (or folder: the SHA-256 of its sorted `name=sha256` lines) for the provenance; `shown` replaces the
/// path in the report (`embedded` for data built into the program).
func dataFile(_ role: String, _ path: String?, shown: String? = nil) -> Provenance.DataFile {
    guard let path else { return Provenance.DataFile(role: role, path: shown ?? "-", sha256: "bundle") }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        return Provenance.DataFile(role: role, path: shown ?? path, sha256: "missing")
    }
    if !isDirectory.boolValue {
        let d = try? fileDigest(path)
        return Provenance.DataFile(role: role, path: shown ?? path, sha256: d?.sha256 ?? "unreadable", size: d?.size)
    }
    let names = ((FileManager.default.enumerator(atPath: path)?.allObjects as? [String]) ?? []).filter {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: path + "/" + $0, isDirectory: &d) && !d.boolValue
    }.sorted()
    var size: Int64 = 0
    let lines = names.map { name -> String in
        let d = try? fileDigest(path + "/" + name)
        size += d?.size ?? 0
        return "\(name)=\(d?.sha256 ?? "-")"
    }
    return Provenance.DataFile(role: role, path: shown ?? path, sha256: textDigest(lines.joined(separator: "\n")), size: size,
                               version: "\(names.count) files")
}

/// Who runs the analysis, where and when: host name, user, and the wall-clock time now (or `SOURCE_DATE_EPOCH`,
/// seconds since 1970, as reproducible builds set it).
func analysisRecord() -> Provenance.Analysis {
    var name = [CChar](repeating: 0, count: 256)
    let host = gethostname(&name, name.count - 1) == 0 ? name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } : "unknown"
    let user = getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) }
    let started: Timestamp
    if let epoch = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"].flatMap(Int64.init) {
        started = Timestamp(seconds: epoch)
    } else {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        started = Timestamp(seconds: Int64(t.tv_sec), nanoseconds: Int64(t.tv_nsec))
    }
    return Provenance.Analysis(host: host, user: user, started: started.rfc3339)
}
