import Foundation
import Siphon
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs `command` with /bin/sh; returns its status and what it printed (both streams).
@discardableResult
func shell(_ command: String) -> (status: Int32, out: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", command + " 2>&1"]
    let pipe = Pipe()
    p.standardOutput = pipe
    do { try p.run() } catch { return (127, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Two network namespaces joined by a veth pair: `a` holds 192.0.2.1/24 on `aLink`, `b` 192.0.2.2/24 on
/// `bLink`. IPv6 is off in both (no router solicitations or DAD on the captured link): what crosses the link is
/// what a test sends. Nothing leaves the namespaces; they are deleted by `remove()`.
struct TestBench {
    let a: String, b: String, aLink: String, bLink: String

    /// Whether this process may create namespaces (root, iproute2 present, netns supported).
    static let available: Bool = {
        guard geteuid() == 0 else { return false }
        let probe = "siphon-probe-\(getpid())"
        guard shell("ip netns add \(probe)").status == 0 else { return false }
        shell("ip netns del \(probe)")
        return true
    }()

    static let reason = "network namespaces cannot be created here (needs root and iproute2): the live-capture tests are skipped"

    init(up: Bool = true) throws {
        let tag = String(UInt32.random(in: 0..<1_000_000), radix: 36)
        a = "siphonA-\(tag)"; b = "siphonB-\(tag)"; aLink = "sa\(tag)"; bLink = "sb\(tag)"
        let steps = [
            "ip netns add \(a)", "ip netns add \(b)",
            "ip netns exec \(a) sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
            "ip netns exec \(b) sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
            "ip link add \(aLink) type veth peer name \(bLink)",
            "ip link set \(aLink) netns \(a)", "ip link set \(bLink) netns \(b)",
            "ip -n \(a) addr add 192.0.2.1/24 dev \(aLink)", "ip -n \(b) addr add 192.0.2.2/24 dev \(bLink)",
            "ip -n \(a) link set lo up", "ip -n \(b) link set lo up",
        ] + (up ? ["ip -n \(a) link set \(aLink) up", "ip -n \(b) link set \(bLink) up"] : [])
        for s in steps {
            let r = shell(s)
            if r.status != 0 {
                shell("ip netns del \(a); ip netns del \(b)")
                throw BenchError(description: "\(s): \(r.out)")
            }
        }
    }

    func remove() { shell("ip netns del \(a); ip netns del \(b)") }

    struct BenchError: Error, CustomStringConvertible { var description: String }
}

/// `siphon live` started in a namespace, its standard error collected.
final class LiveRun: @unchecked Sendable {
    let process = Process()
    private let errPipe = Pipe()
    private let lock = NSLock()
    private var errData = Data()

    init(namespace: String, arguments: [String], user: String? = nil) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        if !FileManager.default.fileExists(atPath: "/usr/sbin/ip") { process.executableURL = URL(fileURLWithPath: "/sbin/ip") }
        let prefix = user.map { ["setpriv", "--reuid=\($0)", "--regid=\($0)", "--clear-groups"] } ?? []
        process.arguments = ["netns", "exec", namespace] + prefix + [Repo.siphonExecutable, "live"] + arguments
        process.standardError = errPipe
        process.standardOutput = FileHandle.nullDevice
        errPipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            // At the end of the stream the handler would be called again and again with nothing.
            if d.isEmpty { h.readabilityHandler = nil; return }
            guard let self else { return }
            self.lock.lock(); self.errData.append(d); self.lock.unlock()
        }
        try process.run()
    }

    var stderr: String {
        lock.lock(); defer { lock.unlock() }
        return String(decoding: errData, as: UTF8.self)
    }

    /// Waits until standard error contains `text` (true) or `seconds` pass (false).
    func waitFor(_ text: String, seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if stderr.contains(text) { return true }
            if !process.isRunning { return stderr.contains(text) }
            usleep(20_000)
        }
        return false
    }

    /// Sends `signal` and returns the seconds until the process exited (nil: still running after `limit`).
    func stop(_ signal: Int32 = SIGINT, limit: Double = 30) -> Double? {
        let start = Date()
        kill(process.processIdentifier, signal)
        while process.isRunning {
            if Date().timeIntervalSince(start) > limit { return nil }
            usleep(2_000)
        }
        // What the handler has not taken yet, without waiting for the end of the stream: another child started
        // meanwhile (tcpreplay) may hold the pipe's write end.
        let handle = errPipe.fileHandleForReading
        handle.readabilityHandler = nil
        let fd = handle.fileDescriptor
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            lock.lock(); errData.append(contentsOf: chunk[0..<n]); lock.unlock()
        }
        return Date().timeIntervalSince(start)
    }
}

/// Alerts as (category, rule, severity, src, dest, device_id) from JSON Lines, sorted: what must be equal between
/// a live capture and a scan of the same packets (texts and figures such as a beacon's period depend on timing).
func alertKeys(_ jsonLines: String) -> [String] {
    jsonLines.split(separator: "\n").compactMap { line -> String? in
        guard let e = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
              e["event_type"] as? String == "alert", let a = e["alert"] as? [String: Any] else { return nil }
        return [a["category"], a["rule"], a["severity"], e["src_ip"], e["dest_ip"], e["device_id"]]
            .map { $0.map { "\($0)" } ?? "-" }.joined(separator: " ")
    }.sorted()
}

@Suite(.serialized) struct LiveTests {
    /// A missing interface is named, with the reason, in one line; exit 2. (No namespace needed.)
    @Test func missingInterfaceIsAClearError() throws {
        let r = try runSiphon(["live", "-i", "siphon-nosuch0"])
        #expect(r.status == 2)
        #expect(r.err.hasPrefix("siphon: siphon-nosuch0: cannot capture: no such interface"), "\(r.err)")
        #expect(r.err.split(separator: "\n").count == 1)
    }

    /// A ring folder that cannot be made is an error before any packet, and the interfaces are released once.
    @Test(.enabled(if: geteuid() == 0, "needs root to open an interface: skipped"))
    func unwritableRingIsAClearError() throws {
        var options = LiveOptions(interfaces: ["lo"])
        options.ring = RingOptions(directory: "/proc/siphon-cannot-be-made")
        options.stopOnSignals = false
        #expect(throws: CaptureError.self) { _ = try LiveCapture(options: options) }
        let r = try runSiphon(["live", "-i", "lo", "--write", "/proc/siphon-cannot-be-made"])
        #expect(r.status == 2 && r.err.hasPrefix("siphon: /proc/siphon-cannot-be-made: cannot write:"), "\(r.err)")
    }

    @Test func usageErrorsExit2() throws {
        #expect(try runSiphon(["live"]).status == 2)
        #expect(try runSiphon(["live", "-i", "lo", "--ring-files", "3"]).status == 2)
        #expect(try runSiphon(["live", "-i", "lo", "--duration", "0"]).status == 2)
    }

    @Test(.enabled(if: TestBench.available, "network namespaces cannot be created here (needs root and iproute2): skipped"))
    func downInterfaceAndDeniedPermissionAreClearErrors() throws {
        let bench = try TestBench(up: false)
        defer { bench.remove() }
        let down = shell("ip netns exec \(bench.b) \(Repo.siphonExecutable) live -i \(bench.bLink)")
        #expect(down.status == 2)
        #expect(down.out == "siphon: \(bench.bLink): cannot capture: interface is down (ip link set \(bench.bLink) up)\n", "\(down.out)")
        shell("ip -n \(bench.b) link set \(bench.bLink) up")
        // As user nobody (65534), without capture capabilities.
        let denied = shell("ip netns exec \(bench.b) setpriv --reuid=65534 --regid=65534 --clear-groups \(Repo.siphonExecutable) live -i \(bench.bLink)")
        #expect(denied.status == 2)
        #expect(denied.out.hasPrefix("siphon: \(bench.bLink): cannot capture: permission denied"), "\(denied.out)")
        #expect(denied.out.split(separator: "\n").count == 1)
        // -Z with an unknown user: the interfaces opened, then the switch fails before any packet is read.
        let noUser = shell("ip netns exec \(bench.b) \(Repo.siphonExecutable) live -i \(bench.bLink) -Z siphon-no-such-user")
        #expect(noUser.status == 2 && noUser.out.contains("siphon: -Z siphon-no-such-user: no such user"), "\(noUser.out)")
    }

    /// On an idle interface (nothing crosses the veth), SIGINT ends the capture and the report is written well
    /// within a second; the same for SIGTERM, and with -Z nobody (privileges dropped after opening).
    @Test(.enabled(if: TestBench.available, "network namespaces cannot be created here (needs root and iproute2): skipped"))
    func idleCaptureStopsAtOnce() throws {
        let bench = try TestBench()
        defer { bench.remove() }
        let dir = temporaryPath("siphon-idle-\(getpid())")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The HTML report in a folder only root may write to: with -Z it is created before the switch.
        let reports = dir + "-reports"
        try? FileManager.default.removeItem(atPath: reports)
        try FileManager.default.createDirectory(atPath: reports, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: reports) }
        for (signal, user) in [(SIGINT, nil), (SIGTERM, nil), (SIGINT, "nobody")] as [(Int32, String?)] {
            try? FileManager.default.removeItem(atPath: dir)
            var arguments = ["-i", bench.bLink, "--json", "/dev/null", "--write", dir, "--html", reports + "/live.html"]
            if let user { arguments += ["-Z", user] }
            let run = try LiveRun(namespace: bench.b, arguments: arguments)
            #expect(run.waitFor("Ctrl-C stops", seconds: 20), "\(run.stderr)")
            usleep(300_000)
            let took = try #require(run.stop(signal), "live did not stop")
            #expect(took < 0.5, "stopped \(took) s after signal \(signal)")
            #expect(run.process.terminationStatus == 0, "\(run.stderr)")
            #expect(run.stderr.contains("\(bench.bLink): 0 packets"), "\(run.stderr)")
            // The ring's file is a whole pcapng with the interface and no packet.
            let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".pcapng") }
            #expect(files.count == 1)
            if let f = files.first {
                let r = try runSiphon(["scan", "-q", "--json", "-", dir + "/" + f])
                #expect(r.status == 0 && r.out.contains("\"packets\":0"), "\(r.err)")
            }
            if user != nil {
                var s = stat()
                #expect(stat(dir + "/" + (files.first ?? ""), &s) == 0 && s.st_uid == 65534, "the ring is written as the -Z user")
            }
            let page = (try? String(contentsOfFile: reports + "/live.html", encoding: .utf8)) ?? ""
            #expect(page.contains("<html") && page.contains(bench.bLink), "\(user ?? "root"): \(run.stderr)")
            try? FileManager.default.removeItem(atPath: reports + "/live.html")
        }
    }

    /// Under steady traffic (tcpreplay looping the sample at 5,000 packets/s) SIGINT still ends the capture at
    /// once: the drain reads what the kernel holds and stops. Every packet analysed is in the ring file and the
    /// other way round. `-c` stops after that many packets, `--duration` after that long.
    @Test(.enabled(if: TestBench.available && shell("command -v tcpreplay").status == 0,
                   "tcpreplay missing or no network namespaces: skipped"))
    func stopsUnderSteadyTrafficAndByLimits() throws {
        let bench = try TestBench()
        defer { bench.remove() }
        let tmp = temporaryPath("siphon-steady-\(getpid())")
        try? FileManager.default.removeItem(atPath: tmp)
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let rewritten = tmp + "/sample-doc.pcap"
        try #require(shell("tcprewrite --pnat=192.168.0.0/16:192.0.2.128/25,0.0.0.0/0:198.51.100.0/24 -C -i \(Repo.path("captures/sample/backdoor-phone.pcap")) -o \(rewritten)").status == 0)
        let sender = Process()
        sender.executableURL = URL(fileURLWithPath: "/bin/sh")
        sender.arguments = ["-c", "exec ip netns exec \(bench.a) timeout -s KILL 30 tcpreplay -q --pps=5000 --loop=0 -i \(bench.aLink) \(rewritten) >/dev/null 2>&1"]
        for (limit, expectation) in [([String](), "signal"), (["-c", "500"], "count"), (["--duration", "1.5"], "duration")] {
            let json = tmp + "/live.json", ring = tmp + "/ring-\(expectation)"
            let run = try LiveRun(namespace: bench.b, arguments: ["-i", bench.bLink, "-q", "--json", json, "--write", ring] + limit)
            if expectation == "signal" {
                try sender.run()
                Sanitizer.wait(1.5)
                let took = try #require(run.stop(), "live did not stop")
                #expect(took < 1.0 * Sanitizer.slowdown, "stopped \(took) s after SIGINT under traffic")
            } else {
                let start = Date()
                while run.process.isRunning && Date().timeIntervalSince(start) < 20 { usleep(10_000) }
                #expect(!run.process.isRunning, "\(expectation): still running")
                if expectation == "duration" { #expect(Date().timeIntervalSince(start) < 3.0 * Sanitizer.slowdown) }
                _ = run.stop()
            }
            #expect(run.process.terminationStatus == 0, "\(run.stderr)")
            let live = try String(contentsOfFile: json, encoding: .utf8)
            let stats = try #require(live.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any])
            let packets = try #require((stats["stats"] as? [String: Any])?["packets"] as? Int)
            #expect(packets > 100, "\(expectation): \(packets) packets")
            if expectation == "count" { #expect(packets == 500) }
            let files = try FileManager.default.contentsOfDirectory(atPath: ring).filter { $0.hasSuffix(".pcapng") }
            let again = try runSiphon(["scan", "-q", "--json", "-"] + files.map { ring + "/" + $0 })
            let rescanned = again.out.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any]
            #expect((rescanned?["stats"] as? [String: Any])?["packets"] as? Int == packets, "\(expectation)")
        }
        // tcpreplay does not stop on SIGTERM: killed (timeout's own KILL after 30 s is the safety net).
        shell("pkill -KILL -f 'tcpreplay -q --pps=5000 --loop=0 -i \(bench.aLink) '")
        sender.waitUntilExit()
    }

    /// Two interfaces at once (the veth and the namespace's loopback): packets of both are analysed and written to
    /// one ring file with an interface block each, as tshark reads it.
    @Test(.enabled(if: TestBench.available && shell("command -v tcpreplay && command -v tshark").status == 0,
                   "tcpreplay/tshark missing or no network namespaces: skipped"))
    func twoInterfacesAtOnce() throws {
        let bench = try TestBench()
        defer { bench.remove() }
        let tmp = temporaryPath("siphon-two-\(getpid())")
        try? FileManager.default.removeItem(atPath: tmp)
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let rewritten = tmp + "/sample-doc.pcap"
        try #require(shell("tcprewrite --pnat=192.168.0.0/16:192.0.2.128/25,0.0.0.0/0:198.51.100.0/24 -C -i \(Repo.path("captures/sample/backdoor-phone.pcap")) -o \(rewritten)").status == 0)
        let json = tmp + "/live.json", ring = tmp + "/ring"
        let run = try LiveRun(namespace: bench.b, arguments: ["-i", bench.bLink, "-i", "lo", "-q", "--json", json, "--write", ring])
        Sanitizer.wait(1.5)
        #expect(shell("ip netns exec \(bench.a) tcpreplay -q --topspeed -i \(bench.aLink) \(rewritten)").status == 0)
        // Five datagrams on the loopback of the listening namespace (nothing leaves it).
        #expect(shell("ip netns exec \(bench.b) python3 -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); [s.sendto(b'x' * 10, ('127.0.0.1', 9999)) for _ in range(5)]\"").status == 0)
        Sanitizer.wait(0.5)
        _ = try #require(run.stop(), "live did not stop")
        #expect(run.process.terminationStatus == 0, "\(run.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: ring).filter { $0.hasSuffix(".pcapng") }
        try #require(files.count == 1)
        let names = shell("tshark -r \(ring)/\(files[0]) -T fields -e frame.interface_name 2>/dev/null").out.split(separator: "\n")
        #expect(names.filter { $0 == bench.bLink }.count == 207)
        #expect(names.filter { $0 == "lo" }.count >= 5)
        let stats = try String(contentsOfFile: json, encoding: .utf8).split(separator: "\n").last
            .flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any]
        #expect((stats?["stats"] as? [String: Any])?["packets"] as? Int == names.filter { $0 == bench.bLink || $0 == "lo" }.count)
        #expect(run.stderr.isEmpty || !run.stderr.contains("error"), "\(run.stderr)")
    }

    /// The bench test: the bundled sample rewritten into documentation ranges (tcprewrite), replayed from one
    /// namespace (tcpreplay, 30 times faster than captured) while `siphon live` listens in the other, stopped
    /// with SIGINT. Its alerts equal those of `siphon scan` on the rewritten capture, with the same
    /// --geo-override (which gives the rewritten remote hosts their original countries), and a scan of the ring
    /// it wrote gives them too. Alerts come out while the capture runs, not only at the stop.
    @Test(.enabled(if: TestBench.available && shell("command -v tcprewrite && command -v tcpreplay").status == 0,
                   "tcprewrite/tcpreplay missing or no network namespaces: the replay test is skipped"))
    func replayedSampleGivesTheScansAlerts() throws {
        let bench = try TestBench()
        defer { bench.remove() }
        let tmp = temporaryPath("siphon-live-\(getpid())")
        try? FileManager.default.removeItem(atPath: tmp)
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let rewritten = tmp + "/sample-doc.pcap"
        let rw = shell("tcprewrite --pnat=192.168.0.0/16:192.0.2.128/25,0.0.0.0/0:198.51.100.0/24 -C -i \(Repo.path("captures/sample/backdoor-phone.pcap")) -o \(rewritten)")
        try #require(rw.status == 0, "\(rw.out)")
        // The sample's remote hosts, as rewritten: 120.77.166.21 -> .21 (CN), 45.77.0.1 -> .1 (US), the French sites.
        let geo = tmp + "/geo.csv"
        try """
            # network,country,registered_country,asn,as_org
            198.51.100.21/32,CN,CN,37963,Hangzhou Alibaba Advertising
            198.51.100.1/32,US,US,20473,The Constant Company
            198.51.100.0/24,FR,FR,12322,Free SAS

            """.write(toFile: geo, atomically: true, encoding: .utf8)
        let scan = try runSiphon(["scan", "-q", "--geo-override", geo, "--json", "-", rewritten])
        #expect(scan.status == 0)
        let expected = alertKeys(scan.out)
        let categories = Set(expected.map { $0.split(separator: " ")[0] })
        #expect(categories.isSuperset(of: ["identifier-leak", "beaconing", "foreign-upload", "cleartext", "foreign-endpoint"]), "\(categories)")

        let json = tmp + "/live.json", ring = tmp + "/ring"
        let html = tmp + "/live.html"
        let run = try LiveRun(namespace: bench.b, arguments: ["-i", bench.bLink, "--geo-override", geo, "--json", json, "--write", ring, "--html", html])
        #expect(run.waitFor("Ctrl-C stops", seconds: 20), "\(run.stderr)")
        let replay = shell("ip netns exec \(bench.a) tcpreplay -q -x 30 -i \(bench.aLink) \(rewritten)")
        #expect(replay.status == 0, "\(replay.out)")
        // Alerts already written while the capture runs (the identifier leak and the upload are complete by now).
        Sanitizer.wait(1.5)
        let during = alertKeys((try? String(contentsOfFile: json, encoding: .utf8)) ?? "")
        #expect(during.contains { $0.hasPrefix("identifier-leak ") } && during.contains { $0.hasPrefix("foreign-upload ") }, "\(during)")
        let took = try #require(run.stop(), "live did not stop")
        #expect(took < 5, "the stop took \(took) s")
        #expect(run.process.terminationStatus == 0, "\(run.stderr)")
        let live = try String(contentsOfFile: json, encoding: .utf8)
        #expect(alertKeys(live) == expected)
        // Every packet replayed was captured and none dropped.
        let stats = try #require(live.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any])
        let s = try #require(stats["stats"] as? [String: Any])
        #expect(s["packets"] as? Int == 207 && s["kernel_drops"] as? Int == 0, "\(s)")
        #expect(live.contains("\"event_type\":\"verdict\"") && !live.contains("\"incomplete\""))
        // The report on stop, as scan writes it: the summary on standard error, the HTML page.
        #expect(run.stderr.contains("device 02:a4:c2:11:33:02 (mini-phone-x9, dhcp)") && run.stderr.contains("verdict: CRITICAL"), "\(run.stderr)")
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.contains("02:a4:c2:11:33:02") && page.contains("CRITICAL") && !page.contains("Incomplete capture"))
        // The ring, scanned: the same alerts; tshark reads it whole.
        let files = try FileManager.default.contentsOfDirectory(atPath: ring).filter { $0.hasSuffix(".pcapng") }.sorted()
        #expect(files.count == 1)
        let again = try runSiphon(["scan", "-q", "--geo-override", geo, "--json", "-"] + files.map { ring + "/" + $0 })
        #expect(again.status == 0)
        #expect(alertKeys(again.out) == expected)
        let tshark = shell("tshark -r \(ring)/\(files[0]) -T fields -e frame.number 2>/dev/null | wc -l")
        #expect(tshark.out.trimmingCharacters(in: .whitespacesAndNewlines) == "207", "\(tshark.out)")
    }

    /// `live --case`: the capture is kept in the case, the events start with the provenance (the interface), each
    /// alert at or above the severity has its evidence file cut from the kept capture (its packets there, with the
    /// alert in their comments), and the sealed case verifies.
    @Test(.enabled(if: getuid() == 0, "needs root for network namespaces"))
    func liveCaseKeepsTheCaptureAndTheEvidence() throws {
        let bench = try TestBench()
        defer { bench.remove() }
        let tmp = try temporaryFolder("live-case")
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let rewritten = tmp + "/sample-doc.pcap"
        let rw = shell("tcprewrite --pnat=192.168.0.0/16:192.0.2.128/25,0.0.0.0/0:198.51.100.0/24 -C -i \(Repo.path("captures/sample/backdoor-phone.pcap")) -o \(rewritten)")
        try #require(rw.status == 0, "\(rw.out)")
        let geo = tmp + "/geo.csv"
        try "198.51.100.21/32,CN,CN,37963,Hangzhou Alibaba Advertising\n198.51.100.1/32,US,US,20473,The Constant Company\n198.51.100.0/24,FR,FR,12322,Free SAS\n"
            .write(toFile: geo, atomically: true, encoding: .utf8)
        let key = tmp + "/lab.pem"
        #expect(try runSiphon(["keygen", "-o", key]).status == 0)
        let folder = tmp + "/case"
        let run = try LiveRun(namespace: bench.b, arguments: ["-i", bench.bLink, "--geo-override", geo, "--case", folder, "--sign", key, "--case-severity", "medium"])
        #expect(run.waitFor("Ctrl-C stops", seconds: 20), "\(run.stderr)")
        #expect(shell("ip netns exec \(bench.a) tcpreplay -q -x 30 -i \(bench.aLink) \(rewritten)").status == 0)
        Sanitizer.wait(1.0)
        #expect(try #require(run.stop(), "live did not stop") < 5)
        #expect(run.process.terminationStatus == 0, "\(run.stderr)")
        let events = jsonLines(try String(contentsOfFile: folder + "/events.jsonl", encoding: .utf8))
        let input = (events.first?["provenance"] as? [String: Any])?["input"] as? [String: Any]
        #expect(input?["kind"] as? String == "interface" && input?["capture"] as? String == bench.bLink)
        let captures = try FileManager.default.contentsOfDirectory(atPath: folder + "/capture").filter { $0.hasSuffix(".pcapng") }
        #expect(captures.count == 1)
        let kept = folder + "/capture/" + captures[0]
        let medium = events.filter { ["medium", "high", "critical"].contains(($0["alert"] as? [String: Any])?["severity"] as? String ?? "") }
        #expect(medium.count >= 3)
        for alert in medium {
            let id = alert["alert_id"] as? Int ?? 0
            let category = (alert["alert"] as? [String: Any])?["category"] as? String ?? ""
            let file = folder + "/evidence/alert-" + String(format: "%04d", id) + "-" + category + ".pcapng"
            #expect(FileManager.default.fileExists(atPath: file), "\(file)")
            // The packets it rests on are those frames of the kept capture: same bytes.
            for frame in ((alert["frames"] as? [[String: Any]]) ?? []).compactMap({ $0["frame"] as? Int }) {
                let original = shell("(tshark -r '\(kept)' -Y 'frame.number == \(frame)' -x) 2>/dev/null | grep '^[0-9a-f]\\{4\\} '").out
                let copy = shell("(tshark -r '\(file)' -Y 'frame.comment contains \"original frame \(frame);\"' -x) 2>/dev/null | grep '^[0-9a-f]\\{4\\} '").out
                #expect(!original.isEmpty && original == copy, "alert \(id) frame \(frame)")
            }
        }
        let verify = try runSiphon(["verify", folder, "--key", key + ".pub"])
        #expect(verify.status == 0 && verify.out.contains("signature: valid"), "\(verify.out)")
    }
}
