import Foundation
import Siphon
import Testing

/// The README's quick-start capture, checked against the manifest `scripts/gen_sample.py` wrote with it: every
/// expected value below is read from that manifest, none is typed in here.
@Suite struct SampleCaptureTests {
    let manifest: [String: Any]
    let events: [[String: Any]]
    let result: CaptureScanner.Result

    init() throws {
        manifest = try #require(try Repo.json("captures/sample/backdoor-phone.json") as? [String: Any])
        (events, result) = scanEvents(Repo.path("captures/sample/backdoor-phone.pcap"))
    }

    private func events(_ type: String) -> [[String: Any]] { events.filter { $0["event_type"] as? String == type } }

    private var list: (String) -> [[String: Any]] { { manifest[$0] as? [[String: Any]] ?? [] } }

    /// The identifiers the upload carried, each found once in the POST body sent to the upload's server.
    @Test func identifiersInTheUpload() throws {
        let upload = try #require(list("uploads").first)
        let identifiers = try #require(upload["identifiers"] as? [String: String])
        let kinds = ["imei": "imei", "imsi": "imsi", "msisdn": "phone", "location": "location"]
        let expected = Set(identifiers.map { "\(kinds[$0.key] ?? $0.key)=\($0.value)" })
        let leaks = events("alert").filter { ($0["alert"] as? [String: Any])?["category"] as? String == "identifier-leak" }
        let got = leaks.map { a -> String in
            let e = a["evidence"] as? [String: Any] ?? [:]
            return "\(e["kind"] ?? "")=\(e["value"] ?? "")"
        }
        #expect(got.count == expected.count && Set(got) == expected, "\(got)")
        for a in leaks {
            #expect(a["dest_ip"] as? String == upload["server"] as? String)
            #expect((a["evidence"] as? [String: Any])?["where"] as? String == "http-body")
        }
    }

    @Test func everyPacketDecoded() throws {
        let stats = try #require(events("stats").last)
        let figures = try #require(stats["stats"] as? [String: Any])
        #expect(figures["packets"] as? Int == manifest["packets"] as? Int)
        #expect(figures["decoded"] as? Int == manifest["packets"] as? Int)
        #expect(figures["undecodable"] as? Int == 0)
        #expect(result.error == nil)
    }

    @Test func dhcpNamesTheDevice() throws {
        let device = try #require(manifest["device"] as? [String: Any])
        let requests = events("dhcp").compactMap { $0["dhcp"] as? [String: Any] }.filter { $0["type"] as? String == "request" }
        #expect(!requests.isEmpty)
        for request in requests {
            #expect(request["client_mac"] as? String == device["mac"] as? String)
            #expect(request["hostname"] as? String == device["hostname"] as? String)
            #expect(request["vendor_class_identifier"] as? String == device["vendor_class"] as? String)
        }
        let acks = events("dhcp").compactMap { $0["dhcp"] as? [String: Any] }.filter { $0["dhcp_type"] as? String == "ack" }
        #expect(acks.map { $0["assigned_ip"] as? String } == [device["ip"] as? String])
    }

    @Test func dnsAnswersAndFlowNames() throws {
        let answers = events("dns").compactMap { $0["dns"] as? [String: Any] }.filter { $0["type"] as? String == "answer" }
        let expected = list("dns")
        #expect(answers.count == expected.count)
        // Each expected A record: the answer event carries it, and the flows to that address are named by every
        // name of the chain that led to it (the queried name and the CNAME targets).
        var namesByAddress: [String: Set<String>] = [:]
        for query in expected {
            let name = try #require(query["name"] as? String)
            let records = try #require(query["answers"] as? [[String]])
            let event = try #require(answers.first { $0["rrname"] as? String == name }, "no answer for \(name)")
            let got = (event["answers"] as? [[String: Any]] ?? []).map {
                [$0["rrname"] as? String ?? "", $0["rrtype"] as? String ?? "", $0["rdata"] as? String ?? ""]
            }
            #expect(got == records, "\(name)")
            for record in records where record[1] == "A" {
                namesByAddress[record[2], default: []].formUnion(records.map { $0[0] })
            }
        }
        for flow in events("flow") {
            guard let dest = flow["dest_ip"] as? String, let names = namesByAddress[dest] else { continue }
            #expect(Set(flow["names"] as? [String] ?? []) == names, "\(dest)")
        }
    }

    @Test func tlsServerNames() {
        let got = events("tls").map { ($0["dest_ip"] as? String ?? "", ($0["tls"] as? [String: Any])?["sni"] as? String ?? "") }
        let expected = list("tls").map { ($0["server"] as? String ?? "", $0["sni"] as? String ?? "") }
        #expect(got.map { "\($0.0) \($0.1)" } == expected.map { "\($0.0) \($0.1)" })
    }

    @Test func tcpFlowVolumes() throws {
        let flows = events("flow").filter { $0["proto"] as? String == "TCP" }
        let expected = list("flows")
        #expect(flows.count == expected.count)
        for want in expected {
            let server = want["server"] as? String, port = want["port"] as? Int, clientPort = want["client_port"] as? Int
            let flow = try #require(flows.first {
                $0["dest_ip"] as? String == server && $0["dest_port"] as? Int == port && $0["src_port"] as? Int == clientPort
            }, "no flow to \(server ?? "?"):\(port ?? 0) from port \(clientPort ?? 0)")
            let client = flow["client"] as? [String: Any], serverSide = flow["server"] as? [String: Any]
            #expect(client?["payload_bytes"] as? Int == want["sent"] as? Int, "\(server ?? "?"):\(port ?? 0)")
            #expect(serverSide?["payload_bytes"] as? Int == want["received"] as? Int, "\(server ?? "?"):\(port ?? 0)")
            #expect(flow["state"] as? String == "closed")
        }
    }

    @Test func beaconsAndUploadSeenAsHTTP() throws {
        let http = events("http")
        let beacons = list("beacons")
        let beaconRequests = http.filter { $0["dest_port"] as? Int == 8080 }
        #expect(beaconRequests.count == beacons.count)
        for (event, beacon) in zip(beaconRequests, beacons) {
            #expect(event["dest_ip"] as? String == beacon["server"] as? String)
        }
        let upload = try #require(list("uploads").first)
        let post = try #require(http.compactMap { $0["http"] as? [String: Any] }.first { $0["http_method"] as? String == "POST" })
        #expect(post["hostname"] as? String == upload["host"] as? String)
        #expect(post["url"] as? String == upload["path"] as? String)
        #expect(post["request_body_length"] as? Int == upload["body_bytes"] as? Int)
    }
}
