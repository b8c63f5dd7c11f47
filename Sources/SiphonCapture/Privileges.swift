#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Giving up root once the interfaces are open, as tcpdump's `-Z` does.
public enum Privileges {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Switches the process to `user` (its uid, its primary group and its supplementary groups), then checks that
    /// root cannot be regained. Throws naming the user and what failed.
    public static func drop(to user: String) throws(Failure) {
        guard let entry = getpwnam(user) else { throw Failure(description: "-Z \(user): no such user") }
        let uid = entry.pointee.pw_uid, gid = entry.pointee.pw_gid
        func check(_ rc: Int32, _ what: String) throws(Failure) {
            if rc != 0 { throw Failure(description: "-Z \(user): \(what): \(String(cString: strerror(errno)))") }
        }
        try check(initgroups(user, gid), "initgroups")
        try check(setgid(gid), "setgid")
        try check(setuid(uid), "setuid")
        if uid != 0 && (setuid(0) == 0 || geteuid() == 0) {
            throw Failure(description: "-Z \(user): root could be regained after setuid")
        }
    }
}
