import Foundation
@testable import SiphonDetect
@testable import SiphonApp
@testable import SiphonGeo
import Siphon
import Testing

/// Each built-in detector on its own, fed hand-made flows (the scenarios test them end to end): what makes it
/// fire, what does not, and that it fires once. Expected figures are the arithmetic of the flows given.
@Suite struct DetectorTests {
    static let device = DeviceID.mac(0x02a4_c211_3302)
    static let phone4 = IPAddress("192.168.1.23")!, phone6 = IPAddress("2a01:e0a:1f2:3b40::23")!
    static let foreignGeo = GeoInfo(country: "CN", registeredCountry: "CN", asn: 45102, asOrganization: "Alibaba", scope: .foreign)

    /// A flow of the device to `server`:`port` from `client`, `start` seconds in, with application bytes each way.
    static func judgement(
        to server: String, port: UInt16 = 443, from client: IPAddress = phone4, start: Double = 0, sent: Int, received: Int,
        names: [String] = [], resolved: Bool = true, app: String = "tls", proto: UInt8 = 6, geo: GeoInfo? = foreignGeo,
        facts: FlowFacts = FlowFacts()
    ) -> FlowJudgement {
        let s = IPAddress(server)!
        var f = Flow(key: FlowKey(a: client, portA: 50000, b: s, portB: port, ipProtocol: proto, vlan: 0), id: 1, initiatorIsA: true,
                     start: Timestamp(seconds: 1_741_942_800 + Int64(start)))
        f.end = Timestamp(seconds: 1_741_942_801 + Int64(start))
        f.aToB.packets = 3
        f.bToA.packets = 3
        let e = EndedFlow(flow: f, sent: sent, received: received, resolvedNames: resolved ? names : [], names: names,
                          destination: geo, app: app)
        return FlowJudgement(ended: e, facts: facts, pair: .init(device: device, endpoint: s), foreign: geo?.scope == .foreign)
    }

    /// The ledger entry a flow updates, as the engine keeps it.
    static func add(_ j: FlowJudgement, to t: inout EndpointTotals?) {
        var x = t ?? EndpointTotals(first: j.ended.flow.start, last: j.ended.flow.end)
        x.flows += 1
        x.sent += j.ended.sent
        x.received += j.ended.received
        x.last = j.ended.flow.end
        x.lastFlow = j.ended.flow
        for n in j.ended.names where !x.names.contains(n) { x.names.append(n) }
        x.destination = j.ended.destination
        t = x
    }

    @Test func uploadByVolumeByRatioAndOnce() {
        var d = UploadDetector(DetectionConfiguration())
        var alerts: [Alert] = []
        var t: EndpointTotals?
        // 600,000 bytes twice, 100,000 back each: the ratio (6) never holds; the volume (1 MiB) at the second flow.
        for k in 0..<3 {
            let j = Self.judgement(to: "52.84.1.1", start: Double(60 * k), sent: 600_000, received: 100_000)
            Self.add(j, to: &t)
            d.flowEnded(j, &t!, into: &alerts)
            #expect(alerts.count == (k == 0 ? 0 : 1), "after flow \(k + 1)")
        }
        #expect(alerts.first?.severity == .high && alerts.first?.evidence.first { $0.0 == "sent_bytes" }?.1 == .int(1_200_000))
        // 16,384 bytes sent and ten times what came back (1,638 < 16,384 / 10): medium by ratio.
        var r = UploadDetector(DetectionConfiguration())
        var ratio: [Alert] = []
        var u: EndpointTotals?
        let j = Self.judgement(to: "120.77.166.21", sent: 16_384, received: 1_638)
        Self.add(j, to: &u)
        r.flowEnded(j, &u!, into: &ratio)
        #expect(ratio.map(\.severity) == [.medium])
    }

    /// 600 KB over IPv4 and 600 KB over IPv6 to one name: neither address reaches 1 MiB, the name does.
    @Test func uploadOverTheAddressesOfOneName() {
        var d = UploadDetector(DetectionConfiguration())
        var alerts: [Alert] = []
        var t4: EndpointTotals?, t6: EndpointTotals?
        let name = ["upload.cloudvault-sync.com"]
        let a = Self.judgement(to: "52.84.1.1", sent: 600_000, received: 100_000, names: name)
        Self.add(a, to: &t4)
        d.flowEnded(a, &t4!, into: &alerts)
        let b = Self.judgement(to: "2600:1f18:4000::10", from: Self.phone6, start: 60, sent: 600_000, received: 100_000, names: name)
        Self.add(b, to: &t6)
        d.flowEnded(b, &t6!, into: &alerts)
        #expect(alerts.count == 1)
        #expect(alerts.first?.evidence.first { $0.0 == "addresses" }?.1 == .strings(["52.84.1.1", "2600:1f18:4000::10"]))
        #expect(alerts.first?.device == Self.phone6 && alerts.first?.deviceID == Self.device)
    }

    /// At the end: 7,000 of the device's 7,500 bytes to one endpoint that sent back 2,000 (≤ half): low, by share;
    /// with 20,000 more bytes to another endpoint the share is 26 %: nothing.
    @Test func uploadByShareOfTheDevicesTraffic() {
        let d = UploadDetector(DetectionConfiguration())
        for (other, expected) in [(500, 1), (20_500, 0)] {
            var alerts: [Alert] = []
            var t: EndpointTotals?
            let j = Self.judgement(to: "120.77.166.21", sent: 7000, received: 2000)
            Self.add(j, to: &t)
            var ledger = [j.pair: t!]
            var activity = DeviceActivity(address: Self.phone4, first: j.ended.flow.start)
            activity.sent = 7000 + other
            d.finish(ledger: &ledger, devices: [Self.device: activity], into: &alerts)
            #expect(alerts.count == expected, "other \(other)")
            if expected == 1 {
                #expect(alerts[0].severity == .low && alerts[0].evidence.first { $0.0 == "reason" }?.1 == .string("share"))
                // Marked raised: a second look gives nothing.
                var again: [Alert] = []
                d.finish(ledger: &ledger, devices: [Self.device: activity], into: &again)
                #expect(again.isEmpty)
            }
        }
    }

    /// Contacts every 60 s from two addresses of one device make one series: an alert at the 6th contact. The
    /// same contacts under two identities (each address its own device) make two series of 3 and 4: none.
    @Test func beaconSeriesFollowTheDeviceAcrossAddresses() {
        func run(identities: (DeviceID, DeviceID)) -> [Alert] {
            var d = BeaconDetector(DetectionConfiguration())
            var alerts: [Alert] = []
            for k in 0..<7 {
                var j = Self.judgement(to: "47.88.1.1", from: k % 2 == 0 ? Self.phone4 : Self.phone6, start: Double(60 * k),
                                       sent: 300, received: 200)
                j.pair.device = k % 2 == 0 ? identities.0 : identities.1
                d.flowEnded(j, into: &alerts)
            }
            return alerts
        }
        let one = run(identities: (Self.device, Self.device))
        #expect(one.count == 1)
        #expect(one.first?.evidence.first { $0.0 == "contacts" }?.1 == .int(6))
        #expect(one.first?.severity == .medium)
        #expect(run(identities: (.address(Self.phone4), .address(Self.phone6))).isEmpty)
    }

    @Test func noDNSEndpointNeedsAnAnsweredUnresolvedFlow() {
        let d = NoDNSEndpointDetector(DetectionConfiguration())
        func raise(_ j: FlowJudgement) -> [Alert] {
            var alerts: [Alert] = []
            var t: EndpointTotals? = nil
            Self.add(j, to: &t)
            d.flowEnded(j, &t!, into: &alerts)
            return alerts
        }
        #expect(raise(Self.judgement(to: "47.88.1.1", sent: 10, received: 10, names: ["a.example"])).isEmpty)  // resolved
        #expect(raise(Self.judgement(to: "47.88.1.1", sent: 10, received: 10)).map(\.severity) == [.low])
        #expect(raise(Self.judgement(to: "47.88.1.1", sent: 10, received: 10, names: ["sni.example"], resolved: false)).map(\.severity) == [.info])
        #expect(raise(Self.judgement(to: "47.88.1.1", port: 123, sent: 10, received: 10, proto: 17)).isEmpty)  // NTP is exempt
        #expect(raise(Self.judgement(to: "212.27.48.10", sent: 10, received: 10, geo: GeoInfo(country: "FR", registeredCountry: "FR", asn: nil, asOrganization: nil, scope: .home))).map(\.severity) == [.info])
    }

    @Test func nonStandardPorts() {
        let d = NonStandardPortDetector(DetectionConfiguration())
        func raise(_ j: FlowJudgement) -> [Severity] {
            var alerts: [Alert] = []
            var t: EndpointTotals? = nil
            Self.add(j, to: &t)
            d.flowEnded(j, &t!, into: &alerts)
            return alerts.map(\.severity)
        }
        #expect(raise(Self.judgement(to: "47.88.1.1", port: 5555, sent: 10, received: 10, app: "http")) == [.low])
        #expect(raise(Self.judgement(to: "47.88.1.1", port: 443, sent: 10, received: 10)) == [])
        #expect(raise(Self.judgement(to: "47.88.1.1", port: 40000, sent: 10, received: 10, app: "unknown")) == [.info])
        #expect(raise(Self.judgement(to: "47.88.1.1", port: 40000, sent: 10, received: 10, app: "unknown", proto: 17)) == [])
        #expect(raise(Self.judgement(to: "47.88.1.1", port: 40000, sent: 10, received: 0, app: "unknown")) == [])  // one way only
    }

    /// 100 bytes of MQTT, then 100 more: the cleartext total (200) passes 128 at the second flow; raised once.
    @Test func cleartextSumsOverFlows() {
        let d = CleartextDetector(DetectionConfiguration())
        var alerts: [Alert] = []
        var t: EndpointTotals?
        for k in 0..<3 {
            let j = Self.judgement(to: "47.88.1.1", port: 1883, start: Double(k), sent: 100, received: 10, app: "mqtt")
            Self.add(j, to: &t)
            d.flowEnded(j, &t!, into: &alerts)
            #expect(alerts.count == (k == 0 ? 0 : 1))
        }
        #expect(alerts.first?.severity == .medium && alerts.first?.evidence.first { $0.0 == "cleartext_sent_bytes" }?.1 == .int(200))
    }

    /// The DNS tunnel's name statistics (bytes, longest label, mean entropy, encoded names) against the same
    /// figures worked out here label by label with `split` and Shannon's formula, on names of every shape: empty
    /// labels, a 16-byte label of low and of high entropy, a long subdomain of short labels, non-ASCII bytes.
    @Test func dnsTunnelNameFiguresMatchALabelByLabelReckoning() throws {
        let subdomains = [
            "a", "mail", "aaaaaaaaaaaaaaaa", "x7kq2m9vbz4tr1wp", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v",
            "ab..cd", "0123456789abcdef0123456789abcdef01234567", "caf\u{E9}.r\u{E9}sum\u{E9}", "k9f3.zq81mvb2xc7lpd0",
        ]
        // Judged (and raised) at the last name: the evidence covers them all.
        var c = DNSTunnelConfiguration()
        c.minimumNames = subdomains.count
        c.encodedFraction = 0.25
        var d = DNSTunnelDetector(c, suffixes: PublicSuffixList.shared)
        func entropy(_ bytes: [UInt8]) -> Double {
            var counts: [UInt8: Int] = [:]
            for b in bytes { counts[b, default: 0] += 1 }
            return counts.values.reduce(0.0) { h, n in
                let p = Double(n) / Double(bytes.count)
                return h - p * log2(p)
            }
        }
        var bytes = 0, longest = 0, encoded = 0, encodedBytes = 0, entropySum = 0.0
        for s in subdomains {
            let labels = s.split(separator: ".", omittingEmptySubsequences: false).map { Array($0.utf8) }
            let all = labels.flatMap { $0 }
            bytes += all.count
            longest = max(longest, labels.map(\.count).max()!)
            entropySum += entropy(all)
            if s.utf8.count >= c.longSubdomain || labels.contains(where: { $0.count >= 16 && entropy($0) >= c.entropy }) {
                encoded += 1
                encodedBytes += all.count
            }
        }
        // Worked out by hand: the 16-byte random label, the 40-byte name and the 22-label name are encoded.
        #expect(encoded == 3)
        var alerts: [Alert] = []
        let f = Self.judgement(to: "198.51.100.53", port: 53, sent: 0, received: 0).ended.flow
        for (i, s) in subdomains.enumerated() {
            d.query(DNSQuestion(name: s + ".example.com", type: 1, qclass: 1), domain: "example.com", flow: f,
                    device: Self.device, timestamp: Timestamp(seconds: 1_741_942_800 + Int64(i)), into: &alerts)
        }
        #expect(alerts.count == 1)
        let a = try #require(alerts.first)
        func value(_ k: String) -> EvidenceValue? { a.evidence.first { $0.0 == k }?.1 }
        #expect(value("unique_names") == .int(subdomains.count))
        #expect(value("subdomain_bytes") == .int(bytes))
        #expect(value("longest_label") == .int(longest))
        #expect(value("encoded_names") == .int(encoded))
        #expect(value("encoded_bytes") == .int(encodedBytes))
        guard case .double(let mean)? = value("mean_entropy_bits") else { Issue.record("no mean entropy"); return }
        #expect(abs(mean - entropySum / Double(subdomains.count)) < 1e-9)
    }
}
