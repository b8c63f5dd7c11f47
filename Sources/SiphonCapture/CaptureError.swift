/// Why a capture could not be opened or read any further. Every case names the capture; damage found while
/// reading also names the byte offset of the record that could not be read.
public struct CaptureError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The file does not exist or cannot be read.
        case cannotOpen
        /// The file is not a capture format Siphon reads, or its header is invalid.
        case badFormat
        /// A record is cut short or inconsistent: reading stopped there.
        case damaged(offset: Int64)
        /// The BPF filter expression did not compile.
        case badFilter
        /// A live interface cannot be captured on (missing, down, permission denied), or failed while capturing.
        case cannotCapture
        /// The capture being written (`siphon live --write`) cannot be created or written.
        case cannotWrite
    }

    public var kind: Kind
    /// The capture's name as the user gave it (`-` for standard input).
    public var capture: String
    /// What went wrong, in libpcap's words where libpcap found it.
    public var message: String

    public init(_ kind: Kind, capture: String, message: String) {
        self.kind = kind
        self.capture = capture
        self.message = message
    }

    /// The byte offset of the damaged record, if the error is damage found while reading.
    public var offset: Int64? {
        if case .damaged(let offset) = kind { return offset }
        return nil
    }

    public var description: String {
        switch kind {
        case .cannotOpen: "\(capture): cannot open: \(message)"
        case .badFormat: "\(capture): not a readable capture: \(message)"
        case .damaged(let offset): "\(capture): damaged capture at byte offset \(offset): \(message)"
        case .badFilter: "\(capture): bad filter: \(message)"
        case .cannotCapture: "\(capture): cannot capture: \(message)"
        case .cannotWrite: "\(capture): cannot write: \(message)"
        }
    }
}
