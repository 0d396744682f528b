//! Did MongoDB answer? One meaning for a MongoDB that does not answer: the client gets
//! `TIMEOUT`, whatever stage the driver was in (server selection, opening a connection, the
//! query itself). `BACKEND` is for a MongoDB that answered with an error or refused the
//! connection. Pure: it reads what the driver's error says, nothing else.

/// What a driver error says, as far as this question goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause<'a> {
    /// An I/O error of the given kind.
    Io(std::io::ErrorKind),
    /// Server selection ran out of time; the message describes each server and its last error
    /// (`{ Address: h:p, Type: Unknown, Error: I/O error: timed out }`).
    Selection(&'a str),
    /// A connection pool was cleared under the operation; the message names the error.
    PoolCleared(&'a str),
    /// Anything else (a command error, a refused authentication, a bad reply): an answer.
    Answered,
}

/// True when the error only says that MongoDB has not answered (yet): a time-out, or a server
/// that was never heard from. A refused connection, a TLS or authentication failure, or a
/// command error are answers.
pub fn unanswered(cause: &Cause) -> bool {
    match *cause {
        Cause::Io(kind) => is_timeout(kind),
        // A server the driver never heard from shows no `Error:`; one that stopped answering
        // shows a time-out. Any other error it shows (refused, reset, TLS) is an answer.
        Cause::Selection(msg) => msg.contains("timed out") || !msg.contains("Error:"),
        // "... cleared because another operation failed with: I/O error: timed out", or
        // "Connection to h:p interrupted due to server monitor timeout".
        Cause::PoolCleared(msg) => msg.contains("timed out") || msg.contains("monitor timeout"),
        Cause::Answered => false,
    }
}

fn is_timeout(kind: std::io::ErrorKind) -> bool {
    matches!(
        kind,
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    // Messages as the MongoDB Rust driver 3.9 words them (seen in this project's logs).
    const STALLED: &str = "Server selection timeout: No available servers. Topology: { Type: \
        Unknown, Servers: [ { Address: 127.0.0.1:27017, Type: Unknown, Error: I/O error: timed \
        out } ] }";
    const NEVER_HEARD: &str = "Server selection timeout: No available servers. Topology: { \
        Type: Unknown, Servers: [ { Address: 127.0.0.1:27017, Type: Unknown } ] }";
    const REFUSED: &str = "Server selection timeout: No available servers. Topology: { Type: \
        Unknown, Servers: [ { Address: 127.0.0.1:27017, Type: Unknown, Error: I/O error: \
        Connection refused (os error 111) } ] }";

    #[test]
    fn a_stall_at_any_stage_is_unanswered() {
        assert!(unanswered(&Cause::Selection(STALLED)));
        assert!(unanswered(&Cause::Selection(NEVER_HEARD)));
        assert!(unanswered(&Cause::Io(ErrorKind::TimedOut)));
        assert!(unanswered(&Cause::PoolCleared(
            "Connection pool for 127.0.0.1:27017 cleared because another operation failed \
             with: I/O error: timed out"
        )));
        assert!(unanswered(&Cause::PoolCleared(
            "Connection to 127.0.0.1:46841 interrupted due to server monitor timeout"
        )));
    }

    #[test]
    fn refusals_and_errors_are_answers() {
        assert!(!unanswered(&Cause::Selection(REFUSED)));
        assert!(!unanswered(&Cause::Io(ErrorKind::ConnectionRefused)));
        assert!(!unanswered(&Cause::Io(ErrorKind::ConnectionReset)));
        assert!(!unanswered(&Cause::PoolCleared(
            "Connection pool for h:1 cleared because another operation failed with: I/O error: \
             Connection reset by peer (os error 104)"
        )));
        assert!(!unanswered(&Cause::Answered));
    }
}
