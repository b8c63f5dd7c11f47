// libFuzzer's entry point for the targets of SiphonFuzzing: the target is named by SIPHON_FUZZ_TARGET.
// Built by scripts/fuzz.sh (SIPHON_FUZZ=1 swift build -c release --sanitize=fuzzer --sanitize=address ...):
// the package only declares this target then, since libFuzzer provides main().
#if canImport(Glibc)
import Glibc
#endif
import SiphonFuzzing

/// Writes a line to standard error (fd 2: `stderr` is shared mutable state to Swift 6).
func say(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

let target: FuzzTarget = {
    let name = getenv("SIPHON_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        say("SiphonFuzz: set SIPHON_FUZZ_TARGET to one of: \(names)")
        exit(2)
    }
    return t
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    do {
        try target.run(bytes)
    } catch {
        say("SiphonFuzz \(target.rawValue): model mismatch: \(error)")
        abort()
    }
    return 0
}
