import Siphon

#if canImport(Glibc)
import Glibc
#endif

// Decode + flow table over a capture, timed inside the process (excluding start-up), for scripts/bench.sh.
// Usage: SiphonBench FILE [--repeat N]
let args = CommandLine.arguments
guard args.count >= 2 else {
    writeStandardError("usage: SiphonBench capture.pcap [--repeat N]")
    exit(2)
}
let path = args[1]
var repeats = 1
if let i = args.firstIndex(of: "--repeat"), i + 1 < args.count, let n = Int(args[i + 1]) { repeats = n }

func rssKiB() -> Int {
    guard let f = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, f) != nil {
        let s = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if s.hasPrefix("VmHWM:") {
            return Int(s.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
        }
    }
    return 0
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

// --dump-patterns IDS.yaml: the literals the identifier scanner looks for, hex, one a line (scripts/bench_identifiers.sh
// gives them to Hyperscan). --scan-identifiers CORPUS IDS.yaml [--chunk N] [--repeat R]: the scanner's throughput
// over CORPUS cut in blocks of N bytes (default 1460, a TCP segment), best of R passes.
if args[1] == "--dump-patterns" || args[1] == "--scan-identifiers" {
    let idsPath = args[1] == "--dump-patterns" ? args.count > 2 ? args[2] : "" : args.count > 3 ? args[3] : ""
    var configuration = IdentifierConfiguration()
    do { configuration.known = try KnownIdentifier.load(path: idsPath) } catch {
        writeStandardError("\(error)")
        exit(2)
    }
    let scanner = IdentifierScanner(configuration: configuration)
    if args[1] == "--dump-patterns" {
        for l in scanner.literals.sorted(by: { $0.lexicographicallyPrecedes($1) }) { print(l.hexString) }
        exit(0)
    }
    guard let f = fopen(args[2], "rb") else {
        writeStandardError("cannot open \(args[2])")
        exit(2)
    }
    var corpus: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        corpus += buffer[0..<n]
    }
    fclose(f)
    var chunk = 1460
    if let i = args.firstIndex(of: "--chunk"), i + 1 < args.count, let n = Int(args[i + 1]), n > 0 { chunk = n }
    var best = Double.infinity
    var found = 0
    var matches: [IdentifierMatch] = []
    for _ in 0..<max(1, repeats) {
        let t0 = now()
        var count = 0
        corpus.withUnsafeBytes { all in
            var o = 0
            while o < all.count {
                let end = min(all.count, o + chunk)
                matches.removeAll(keepingCapacity: true)
                scanner.scan(UnsafeRawBufferPointer(rebasing: all[o..<end]), into: &matches)
                count += matches.count
                o = end
            }
        }
        best = min(best, now() - t0)
        found = count
    }
    print("swift bytes=\(corpus.count) seconds=\(best) matches=\(found) patterns=\(scanner.patternCount)")
    exit(0)
}

// --flows N: memory per tracked flow, by RSS growth while N distinct UDP flows are live in one table.
if args[1] == "--flows", args.count > 2, let n = Int(args[2]) {
    let table = FlowTable()
    var p = DecodedPacket()
    p.network = .ipv4
    p.ipProtocol = 17
    p.transport = .udp
    p.destination = IPAddress(ipv4: 0xC633_6401)
    p.destinationPort = 53
    let before = rssKiB()
    for i in 0..<n {
        p.source = IPAddress(ipv4: 0x0A00_0000 | UInt32(i >> 14))
        p.sourcePort = UInt16(1024 + (i & 0x3FFF))
        table.process(p, timestamp: Timestamp(nanoseconds: Int64(i)), wireLength: 60)
    }
    let after = rssKiB()
    print("flows=\(table.activeCount) rss_growth_kib=\(after - before) bytes_per_flow=\((after - before) * 1024 / n) "
        + "table_footprint_per_flow=\(table.memoryFootprint / n) flow_stride=\(MemoryLayout<Flow>.stride) "
        + "tcp_reassembly_state_per_flow=\(TCPReassembler<StreamRecorder>.stateBytesPerFlow)")
    exit(0)
}

// --geo: load time of the embedded tables and cost per lookup (random IPv4 and IPv6 addresses).
if args[1] == "--geo" {
    var loads: [Double] = []
    var geo: GeoDatabase?
    for _ in 0..<5 {
        let t = now()
        geo = try GeoDatabase()
        loads.append(now() - t)
    }
    var state: UInt64 = 1
    func rnd() -> UInt64 { state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407; return state }
    let v4 = (0..<1_000_000).map { _ in IPAddress(ipv4: UInt32(truncatingIfNeeded: rnd() >> 17)) }
    let v6 = (0..<1_000_000).map { _ in IPAddress(ipv6High: 0x2000_0000_0000_0000 | rnd() >> 3, low: rnd()) }
    var sink = 0
    for (name, list) in [("v4", v4), ("v6", v6)] {
        for withName in [false, true] {
            let t = now()
            for a in list { let g = geo!.lookup(a, withName: withName); sink &+= Int(g.asn ?? 0) &+ (g.country?.utf8.count ?? 0) }
            let per = (now() - t) / Double(list.count) * 1e9
            print("geo lookup \(name): \(Int(per)) ns per address (located, registered, ASN, scope\(withName ? ", AS name" : ""))")
        }
    }
    print("geo load: median \(Int(loads.sorted()[2] * 1000)) ms (\(loads.map { Int($0 * 1000) }) ms), checksum \(sink)")
    exit(0)
}

// --stage read|decode: time only the capture reader, or reader + decoder (where the time goes).
if let i = args.firstIndex(of: "--stage"), i + 1 < args.count {
    let stage = args[i + 1]
    let start = now()
    let reader = try CaptureReader(path: path)
    var n = 0
    var sum = 0
    while let p = try reader.next() {
        n += 1
        if stage == "decode" {
            sum &+= PacketDecoder.decode(p.bytes, linkType: p.linkType).payloadLength
        } else {
            sum &+= p.bytes.count
        }
    }
    let elapsed = now() - start
    print("stage=\(stage) seconds=\(Double(Int(elapsed * 1000)) / 1000) packets=\(n) checksum=\(sum)")
    exit(0)
}

// What the full scan runs: SIPHON_BENCH_GEO=1 adds the embedded geo tables (as the CLI does), SIPHON_BENCH_DETECT=0
// turns the detectors off; the difference between runs is their cost.
var scanOptions = ScanOptions()
func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
if environment("SIPHON_BENCH_GEO") == "1" { scanOptions.geo = try GeoDatabase() }
if environment("SIPHON_BENCH_DETECT") == "0" { scanOptions.detection = nil }
// SIPHON_BENCH_READAHEAD=1: the reader thread the CLI uses; the pipeline thread's CPU time is then the critical path.
if environment("SIPHON_BENCH_READAHEAD") == "1" { scanOptions.readAhead = true }
if environment("SIPHON_BENCH_CHECKSUMS") == "off" { scanOptions.checksums = .off }
/// CPU seconds (user + system) of the calling thread, or of the whole process.
func cpuSeconds(thread: Bool) -> Double {
    var ts = timespec()
    clock_gettime(thread ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
for run in 1...repeats {
    let start = now()
    let cpu0 = cpuSeconds(thread: true), all0 = cpuSeconds(thread: false)
    let result = CaptureScanner.scan(path: path, options: scanOptions, output: nil)
    let elapsed = now() - start
    let pipelineCPU = cpuSeconds(thread: true) - cpu0, processCPU = cpuSeconds(thread: false) - all0
    if let error = result.error { writeStandardError("error: \(error)"); exit(1) }
    let s = result.statistics
    print(
        "run=\(run) seconds=\(Double(Int(elapsed * 1000)) / 1000) packets=\(s.packets) bytes=\(s.capturedBytes) "
            + "pps=\(Int(Double(s.packets) / elapsed)) MBps=\(Int(Double(s.capturedBytes) / elapsed / 1e6)) "
            + "flows=\(s.flows) decoded=\(s.decoded) undecodable=\(s.undecodableTotal) peak_rss_kib=\(rssKiB()) "
            + "flow_stride=\(MemoryLayout<Flow>.stride) pipeline_thread_cpu=\(Double(Int(pipelineCPU * 1000)) / 1000) "
            + "process_cpu=\(Double(Int(processCPU * 1000)) / 1000)")
}
