public import Siphon
public import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A case folder (`--case DIR`): the reports, the evidence pcapng files and `manifest.json`, the SHA-256 and size
/// of every file in the folder, optionally signed with Ed25519 (`manifest.sig`: the 64-byte signature of
/// `manifest.json`'s bytes; `signer.pub`: the public key, PEM, for convenience: trust comes from the key the
/// verifier is given). `siphon verify` recomputes everything and names each file changed, added or missing.
public enum CaseFile {
    public static let manifestName = "manifest.json"
    public static let signatureName = "manifest.sig"
    public static let publicKeyName = "signer.pub"
    /// Written by the case itself.
    static let own: Set<String> = [manifestName, signatureName, publicKeyName]

    /// One file of the manifest.
    public struct Entry: Codable, Sendable, Equatable {
        public var path: String
        public var size: Int64
        public var sha256: String
        public init(path: String, size: Int64, sha256: String) {
            self.path = path
            self.size = size
            self.sha256 = sha256
        }
    }

    public struct Manifest: Codable, Sendable {
        public var format = "siphon-case-1"
        public var createdBy: String
        /// What the case covers: each capture's SHA-256 as the analysis read it, and the alert threshold of the
        /// evidence files.
        public var captures: [Entry]
        public var evidenceSeverity: String
        /// Who made it and when (absent with `--reproducible`).
        public var host: String?
        public var user: String?
        public var created: String?
        public var files: [Entry]
    }

    /// Every regular file under `dir`, relative paths sorted byte-wise, except the case's own files and a batch's
    /// empty `.lock` file and `.partial` folder (its lock and scratch space: anything in them is listed). Symbolic
    /// links and other kinds of file are errors (a case holds files, not pointers to elsewhere).
    public static func files(in dir: String) throws(BatchError) -> [String] {
        var out: [String] = []
        func walk(_ relative: String) throws(BatchError) {
            let path = relative.isEmpty ? dir : dir + "/" + relative
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
                throw BatchError("\(path): cannot list: \(error.localizedDescription)")
            }
            for name in names {
                let rel = relative.isEmpty ? name : relative + "/" + name
                if relative.isEmpty && own.contains(name) { continue }
                var s = stat()
                guard lstat(dir + "/" + rel, &s) == 0 else { throw BatchError("\(dir)/\(rel): cannot stat") }
                if relative.isEmpty && name == ".lock" && (s.st_mode & S_IFMT) == S_IFREG && s.st_size == 0 { continue }
                switch s.st_mode & S_IFMT {
                case S_IFDIR: try walk(rel)
                case S_IFREG: out.append(rel)
                default: throw BatchError("\(dir)/\(rel): not a regular file")
                }
            }
        }
        try walk("")
        return out.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Hashes every file of `dir` and writes `manifest.json` (then `manifest.sig` and `signer.pub` with a key).
    @discardableResult
    public static func seal(
        _ dir: String, captures: [Entry], severity: Severity, analysis: Provenance.Analysis?, version: String,
        signingKey: Curve25519.Signing.PrivateKey?
    ) throws(BatchError) -> Manifest {
        var entries: [Entry] = []
        for rel in try files(in: dir) {
            let d = try fileDigest(dir + "/" + rel)
            entries.append(Entry(path: rel, size: d.size, sha256: d.sha256))
        }
        let manifest = Manifest(
            createdBy: "siphon \(version)", captures: captures, evidenceSeverity: severity.description,
            host: analysis?.host, user: analysis?.user, created: analysis?.started, files: entries)
        let data: Data
        do { data = try encoder.encode(manifest) + Data([0x0A]) } catch { throw BatchError("\(dir)/\(manifestName): \(error)") }
        for stale in [signatureName, publicKeyName] { unlink(dir + "/" + stale) }
        try FleetBuilder.atomicWrite(data, to: dir + "/" + manifestName)
        if let signingKey {
            let signature: Data
            do { signature = try signingKey.signature(for: data) } catch { throw BatchError("\(dir): cannot sign: \(error)") }
            try FleetBuilder.atomicWrite(signature, to: dir + "/" + signatureName)
            try FleetBuilder.atomicWrite(Data(KeyPEM.publicKey(signingKey.publicKey).utf8), to: dir + "/" + publicKeyName)
        }
        return manifest
    }

    /// One pcapng file per alert at or above `severity` under `folder` (`alert-0001-identifier-leak.pcapng`): the
    /// packets it rests on and the rest of its flow, read again from `capture` in one pass. Returns the files'
    /// paths relative to `folder`.
    public static func writeEvidence(
        result: CaptureScanner.Result, log: FrameFlowLog, capture: String, sha256: String?, severity: Severity, folder: String,
        files captureFiles: [String]? = nil
    ) throws(BatchError) -> [String] {
        let files = Evidence.alertFiles(
            result: result, log: log, capture: capture, sha256: sha256, severity: severity, folder: folder,
            name: { a in
                let number = String(a.id)
                return "alert-" + String(repeating: "0", count: max(0, 4 - number.count)) + number + "-" + a.category.rawValue + ".pcapng"
            })
        let names = files.map { String($0.path.dropFirst(folder.count + 1)) }
        guard !files.isEmpty else { return [] }
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw BatchError("\(folder): cannot create: \(error.localizedDescription)")
        }
        do { _ = try Evidence.write(files, from: captureFiles ?? [capture]) } catch { throw BatchError("\(error)") }
        return names
    }

    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return e
    }

    /// What `verify` found.
    public struct Verification: Sendable {
        public var changed: [String] = []
        public var missing: [String] = []
        public var added: [String] = []
        /// nil: not signed; true/false: the signature checked against the key.
        public var signatureValid: Bool?
        /// The SHA-256 of the public key the signature was checked with, and whether it came from the case itself.
        public var keyFingerprint: String?
        public var keyFromCase = false
        public var problems: [String] = []
        public var files = 0
        public var intact: Bool {
            changed.isEmpty && missing.isEmpty && added.isEmpty && problems.isEmpty && signatureValid != false
        }
    }

    /// Checks `dir` against its manifest: every listed file present with its size and SHA-256, no file added, and
    /// the signature (with `key`, or else the case's own `signer.pub`) over the manifest's bytes.
    public static func verify(_ dir: String, key: Curve25519.Signing.PublicKey?, requireSignature: Bool) -> Verification {
        var v = Verification()
        let manifestPath = dir + "/" + manifestName
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            v.problems.append("\(manifestPath): missing or unreadable")
            return v
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard let manifest = try? decoder.decode(Manifest.self, from: data) else {
            v.problems.append("\(manifestPath): not a Siphon case manifest")
            return v
        }
        v.files = manifest.files.count
        var listed = Set<String>()
        for e in manifest.files {
            listed.insert(e.path)
            guard !e.path.hasPrefix("/"), !e.path.split(separator: "/").contains("..") else {
                v.problems.append("\(e.path): a path outside the case")
                continue
            }
            let path = dir + "/" + e.path
            var s = stat()
            guard lstat(path, &s) == 0 else {
                v.missing.append(e.path)
                continue
            }
            // Only a regular file is read (a FIFO put in its place would block the hash).
            guard (s.st_mode & S_IFMT) == S_IFREG else {
                v.changed.append(e.path)
                continue
            }
            guard let d = try? fileDigest(path), d.size == e.size, d.sha256 == e.sha256 else {
                v.changed.append(e.path)
                continue
            }
        }
        do {
            for rel in try files(in: dir) where !listed.contains(rel) { v.added.append(rel) }
        } catch {
            v.problems.append("\(error)")
        }
        let signaturePath = dir + "/" + signatureName
        if let signature = FileManager.default.contents(atPath: signaturePath) {
            var checkKey = key
            if checkKey == nil, let pem = try? String(contentsOfFile: dir + "/" + publicKeyName, encoding: .utf8) {
                checkKey = try? KeyPEM.publicKey(pem)
                v.keyFromCase = checkKey != nil
            }
            if let k = checkKey {
                v.signatureValid = k.isValidSignature(signature, for: data)
                v.keyFingerprint = SHA256.hash(data: k.rawRepresentation).hex
            } else {
                v.signatureValid = false
                v.problems.append("\(signaturePath): no public key to check it with (give --key)")
            }
        } else if requireSignature {
            v.problems.append("\(signaturePath): missing (the case is not signed)")
        }
        return v
    }
}

/// Ed25519 keys in the PEM forms OpenSSL reads and writes: PKCS#8 `PRIVATE KEY` and SubjectPublicKeyInfo
/// `PUBLIC KEY` (RFC 8410: a fixed DER prefix, then the 32 key bytes).
public enum KeyPEM {
    static let privatePrefix: [UInt8] = [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
    static let publicPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]

    static func armor(_ label: String, _ der: [UInt8]) -> String {
        let b64 = Data(der).base64EncodedString()
        var lines: [String] = []
        var i = b64.startIndex
        while i < b64.endIndex {
            let j = b64.index(i, offsetBy: 64, limitedBy: b64.endIndex) ?? b64.endIndex
            lines.append(String(b64[i..<j]))
            i = j
        }
        return "-----BEGIN \(label)-----\n" + lines.joined(separator: "\n") + "\n-----END \(label)-----\n"
    }

    static func unarmor(_ label: String, _ text: String, prefix: [UInt8]) throws(BatchError) -> [UInt8] {
        let begin = "-----BEGIN \(label)-----", end = "-----END \(label)-----"
        guard let a = text.range(of: begin), let b = text.range(of: end), a.upperBound <= b.lowerBound else {
            throw BatchError("not a PEM \(label)")
        }
        let body = text[a.upperBound..<b.lowerBound].filter { !$0.isWhitespace }
        guard let der = Data(base64Encoded: String(body)).map(Array.init), der.count == prefix.count + 32,
              Array(der.prefix(prefix.count)) == prefix
        else { throw BatchError("not an Ed25519 \(label.lowercased())") }
        return Array(der.suffix(32))
    }

    public static func privateKey(_ k: Curve25519.Signing.PrivateKey) -> String { armor("PRIVATE KEY", privatePrefix + k.rawRepresentation) }
    public static func publicKey(_ k: Curve25519.Signing.PublicKey) -> String { armor("PUBLIC KEY", publicPrefix + k.rawRepresentation) }

    public static func privateKey(_ pem: String) throws(BatchError) -> Curve25519.Signing.PrivateKey {
        let raw = try unarmor("PRIVATE KEY", pem, prefix: privatePrefix)
        do { return try Curve25519.Signing.PrivateKey(rawRepresentation: raw) } catch { throw BatchError("bad Ed25519 private key") }
    }

    public static func publicKey(_ pem: String) throws(BatchError) -> Curve25519.Signing.PublicKey {
        let raw = try unarmor("PUBLIC KEY", pem, prefix: publicPrefix)
        do { return try Curve25519.Signing.PublicKey(rawRepresentation: raw) } catch { throw BatchError("bad Ed25519 public key") }
    }
}
