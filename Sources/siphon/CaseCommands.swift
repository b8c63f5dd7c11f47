import ArgumentParser
import Crypto
import Siphon
import SiphonFleet
import Foundation

#if canImport(Glibc)
import Glibc
#endif

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make an Ed25519 key pair for signing case folders (--sign).",
        discussion: """
            Writes the private key to FILE (PKCS#8 PEM, mode 0600) and the public key to FILE.pub (PEM): the forms
            OpenSSL reads (openssl pkey -in FILE). Give the public key to whoever verifies the cases.
            """)

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("The private key's file (the public key goes to FILE.pub).", valueName: "file"))
    var output: String

    func run() throws {
        let key = Curve25519.Signing.PrivateKey()
        let fd = open(output, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            printError("siphon: \(output): cannot create: \(String(cString: strerror(errno)))" + (errno == EEXIST ? " (a key is not overwritten)" : ""))
            throw ExitCode(2)
        }
        let pem = Array(KeyPEM.privateKey(key).utf8)
        let written = pem.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == pem.count else {
            printError("siphon: \(output): cannot write")
            throw ExitCode(2)
        }
        do { try KeyPEM.publicKey(key.publicKey).write(toFile: output + ".pub", atomically: true, encoding: .utf8) } catch {
            printError("siphon: \(output).pub: cannot write: \(error.localizedDescription)")
            throw ExitCode(2)
        }
        print("private key: \(output)\npublic key: \(output).pub\nfingerprint: sha256 \(Array(SHA256.hash(data: key.publicKey.rawRepresentation)).hexString)")
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a case folder: every file's SHA-256 against its manifest, and the manifest's signature.",
        discussion: """
            Names each file changed, missing or added. Exit status: 0 when the case is intact (and, when signed, the
            signature is valid), 1 when anything differs or the signature does not verify, 2 on bad usage.
            Without --key a signature is checked with the case's own signer.pub: that shows the manifest was not
            changed since it was signed by that key, not who holds it; give --key to check against a key you trust.
            """)

    @Argument(help: "The case folder.")
    var folder: String

    @Option(help: ArgumentHelp("The signer's public key (PEM): the signature must verify with it.", valueName: "key.pub"))
    var key: String?

    func run() throws {
        var publicKey: Curve25519.Signing.PublicKey?
        if let key {
            do { publicKey = try KeyPEM.publicKey(try String(contentsOfFile: key, encoding: .utf8)) } catch {
                printError("siphon: \(key): \(error)")
                throw ExitCode(2)
            }
        }
        let v = CaseFile.verify(folder, key: publicKey, requireSignature: key != nil)
        for p in v.problems { print("problem: \(p)") }
        for f in v.changed { print("changed: \(f)") }
        for f in v.missing { print("missing: \(f)") }
        for f in v.added { print("added: \(f)") }
        switch v.signatureValid {
        case nil: print("signature: none (the manifest is not signed)")
        case true?: print("signature: valid, key sha256 \(v.keyFingerprint ?? "?")" + (v.keyFromCase ? " (the case's own signer.pub: compare its fingerprint with the signer's)" : ""))
        case false?: print("signature: INVALID" + (v.keyFingerprint.map { " for key sha256 \($0)" } ?? ""))
        }
        if v.intact {
            print("\(folder): intact (\(v.files) files)")
        } else {
            print("\(folder): NOT intact")
            throw ExitCode(1)
        }
    }
}
