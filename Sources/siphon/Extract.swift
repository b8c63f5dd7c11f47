import ArgumentParser
import Siphon
import SiphonFleet
import Foundation

#if canImport(Glibc)
import Glibc
#endif

struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Write the packets behind an alert, a flow, a device or an endpoint to a pcapng file.",
        discussion: """
            The capture is scanned with the options given (the same as the scan's, so that alert and flow IDs are
            the same), then read again: the packets go to OUT.pcapng with their original times and interfaces, each
            with a comment giving its frame number in the original and the alerts resting on it (Wireshark:
            frame.comment), the file with a comment naming the capture and its SHA-256.
            With --payload (an alert or a flow over TCP): the initiator's reassembled bytes to OUT and the
            responder's to OUT.response instead.
            """)

    @Argument(help: "The capture file.")
    var capture: String

    @Option(help: ArgumentHelp("An alert's alert_id.", valueName: "id"))
    var alert: Int?

    @Option(help: ArgumentHelp("A flow's flow_id.", valueName: "id"))
    var flow: UInt64?

    @Option(name: .customLong("device-id"), help: ArgumentHelp("A device's device_id (its MAC address, address or prefix): all its flows (--device declares devices under test, as for scan).", valueName: "id"))
    var device: String?

    @Option(help: ArgumentHelp("An address: every flow to or from it.", valueName: "ip"))
    var endpoint: String?

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("The file to write.", valueName: "file"))
    var output: String

    @Flag(help: "Write the reassembled bytes of the alert's or flow's TCP streams instead of packets.")
    var payload = false

    @OptionGroup var analysis: AnalysisOptions

    func validate() throws {
        let given = [alert != nil, flow != nil, device != nil, endpoint != nil].filter { $0 }.count
        if given != 1 { throw ValidationError("give exactly one of --alert, --flow, --device-id, --endpoint") }
        if let endpoint, IPAddress(endpoint) == nil { throw ValidationError("--endpoint \(endpoint): not an IP address") }
        if payload && (device != nil || endpoint != nil) { throw ValidationError("--payload goes with --alert or --flow") }
        if capture == "-" { throw ValidationError("extract reads the capture twice: give a file, not standard input") }
    }

    var target: EvidenceTarget {
        if let alert { return .alert(alert) }
        if let flow { return .flow(flow) }
        if let device { return .device(device) }
        return .endpoint(IPAddress(endpoint!)!)
    }

    func run() throws {
        let options = try analysis.scanOptions(verdicts: true)
        let log = FrameFlowLog()
        let hasher = ContentHasher()
        let result = CaptureScanner.scan(path: capture, options: options, output: nil, observer: hasher, frameLog: log)
        if let error = result.error, error.offset == nil {
            printError("siphon: \(error)")
            throw ExitCode(2)
        }
        if let error = result.error { printError("siphon: \(error) (extracting from what was read before it)") }
        let sha = try? hasher.finish(path: capture).sha256
        let file: EvidenceFile
        switch Evidence.select(target, result: result, log: log, capture: capture, sha256: sha, path: output) {
        case .success(let f): file = f
        case .failure(let e):
            printError("siphon: \(e)")
            throw ExitCode(2)
        }
        if payload {
            try writePayload(options: options, result: result, log: log)
            return
        }
        do {
            let written = try Evidence.write([file], from: [capture])
            printError("siphon: \(output): \(written[0]) packets (\(target))")
        } catch {
            printError("siphon: \(error)")
            throw ExitCode(2)
        }
    }

    /// The flow's two reassembled streams, through the stream extraction of a second scan (that flow only).
    func writePayload(options: ScanOptions, result: CaptureScanner.Result, log: FrameFlowLog) throws {
        let id: UInt64 = alert.flatMap { a in result.alerts.first { $0.id == a }?.flow.id } ?? flow ?? 0
        guard let facts = log.flows[id], facts.ipProtocol == 6 else {
            printError("siphon: --payload: \(target) has no TCP flow")
            throw ExitCode(2)
        }
        let dir = NSTemporaryDirectory() + "siphon-payload-\(getpid())"
        guard mkdir(dir, 0o700) == 0 else {
            printError("siphon: \(dir): cannot create: \(String(cString: strerror(errno)))")
            throw ExitCode(2)
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var again = options
        again.streams.extractDirectory = dir
        again.streams.extractOnlyFlow = id
        again.detection = nil
        _ = CaptureScanner.scan(path: capture, options: again, output: nil)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let request = StreamRecorder.tcpflowName(
            source: facts.client, sourcePort: facts.clientPort, destination: facts.server, destinationPort: facts.serverPort, vlanTCI: facts.vlanTCI)
        let response = StreamRecorder.tcpflowName(
            source: facts.server, sourcePort: facts.serverPort, destination: facts.client, destinationPort: facts.clientPort, vlanTCI: facts.vlanTCI)
        for (name, path) in [(request, output), (response, output + ".response")] {
            let bytes = names.contains(name) ? (try? Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))) ?? Data() : Data()
            do { try bytes.write(to: URL(fileURLWithPath: path)) } catch {
                printError("siphon: \(path): cannot write: \(error.localizedDescription)")
                throw ExitCode(2)
            }
            printError("siphon: \(path): \(bytes.count) bytes")
        }
    }
}
