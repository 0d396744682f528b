//! The inline loads' own connection to MongoDB: one plain TCP socket, made and greeted
//! (`hello`) on the runtime, then written and read without blocking by whoever owns it (Redis's
//! main thread, `engine/load/inline.rs`). Knows nothing of Redis.
//!
//! It is made only where a `find` sent on it means exactly what the driver's `find_one` means:
//! one host, no credentials, no TLS, no read preference or read concern, no versioned API, no
//! load balancer, and that host a primary (or standalone, or mongos) of the replica set the URI
//! names, new enough for the driver. Anything else keeps every load on the driver. Like the
//! driver it tries every address of the host, and keeps the socket alive with TCP keepalive
//! (the driver's 120 s), so a NAT or load balancer does not drop it for being idle.

use crate::core::uri::redact;
use crate::core::wire;
use mongodb::bson::Document;
use mongodb::options::{ClientOptions, ServerAddress, Tls};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// TCP keepalive idle time, as the driver sets it on its own connections.
const KEEPALIVE: Duration = Duration::from_secs(120);
/// The least a read asks for; more when a message's header says it is longer.
const READ_STEP: usize = 64 * 1024;

/// Why no connection was made.
#[derive(Debug)]
pub enum NotOpened {
    /// The URI asks for something only the driver does: never for this URI.
    Unfit(String),
    /// It may work later (the server is down, not primary yet); why, for the log.
    Failed(String),
}

/// A connection whose `hello` was answered.
pub struct Conn {
    stream: TcpStream,
    received: Vec<u8>,
    /// Where `read_some` reads to.
    scratch: Vec<u8>,
    next_id: i32,
}

/// Makes a connection per `uri`, bounded by `timeout` at each step.
pub async fn open(uri: String, timeout: Duration) -> Result<Conn, NotOpened> {
    let opts = ClientOptions::parse(&uri)
        .await
        .map_err(|e| NotOpened::Unfit(redact(&e.to_string(), &uri)))?;
    let (host, port) = fit(&opts).map_err(|why| NotOpened::Unfit(why.into()))?;
    let set_name = opts.repl_set_name.clone();
    tokio::task::spawn_blocking(move || greet(&host, port, set_name.as_deref(), timeout))
        .await
        .map_err(|e| NotOpened::Failed(e.to_string()))?
        .map_err(NotOpened::Failed)
}

/// The one host to connect to, if a plain `find` there is what the driver would do.
fn fit(o: &ClientOptions) -> Result<(String, u16), &'static str> {
    if o.credential.is_some() {
        return Err("credentials");
    }
    if matches!(o.tls, Some(Tls::Enabled(_))) {
        return Err("TLS");
    }
    if o.selection_criteria.is_some() || o.read_concern.is_some() {
        return Err("a read preference or read concern");
    }
    if o.server_api.is_some() || o.load_balanced == Some(true) {
        return Err("a versioned API or a load balancer");
    }
    match o.hosts.as_slice() {
        [ServerAddress::Tcp { host, port }] => Ok((host.clone(), port.unwrap_or(27017))),
        _ => Err("more than one host"),
    }
}

/// Connects to the first address of `host` that answers, as the driver does.
fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let mut last = String::from("the host has no address");
    for addr in (host, port).to_socket_addrs().map_err(|e| e.to_string())? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// Connects, sends `hello` and checks its answer, with blocking I/O; then the socket turns
/// non-blocking.
fn greet(host: &str, port: u16, set_name: Option<&str>, timeout: Duration) -> Result<Conn, String> {
    let stream = connect(host, port, timeout)?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    socket2::SockRef::from(&stream)
        .set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(KEEPALIVE))
        .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut conn = Conn {
        stream,
        received: Vec::new(),
        scratch: Vec::new(),
        next_id: 1,
    };
    conn.send(&wire::hello())?;
    let reply = loop {
        if conn.read_some().map_err(|e| e.to_string())? == 0 {
            return Err("closed during hello".into());
        }
        if let Some(msg) = conn.take_message()? {
            break msg;
        }
    };
    wire::reads_here(&wire::decode(&reply)?.1, set_name)?;
    conn.stream
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

impl Conn {
    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Sends `cmd`; its request id. A send that would block or falls short is an error: the
    /// stream is then out of step, and the caller drops the connection.
    pub fn send(&mut self, cmd: &Document) -> Result<i32, String> {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        let msg = wire::encode(id, cmd);
        match self.stream.write(&msg) {
            Ok(n) if n == msg.len() => Ok(id),
            Ok(n) => Err(format!("sent {n} of {} bytes", msg.len())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Reads what has arrived, without blocking, and returns the whole messages in it. An error
    /// when the connection closed or broke.
    pub fn receive(&mut self) -> Result<Vec<Vec<u8>>, String> {
        loop {
            match self.read_some() {
                Ok(0) => return Err("MongoDB closed the connection".into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        let mut out = Vec::new();
        while let Some(msg) = self.take_message()? {
            out.push(msg);
        }
        Ok(out)
    }

    /// One `read`, asking for the rest of the message the buffer holds (so a large answer takes
    /// one or a few reads, not one per 16 KiB), at least `READ_STEP`. Read into `scratch`,
    /// zeroed once and grown only for a larger message: zeroing the space on every read cost
    /// every miss a few microseconds.
    fn read_some(&mut self) -> std::io::Result<usize> {
        let announced = wire::announced_len(&self.received).unwrap_or(0).max(0) as usize;
        let want = announced
            .min(wire::MAX_MESSAGE)
            .saturating_sub(self.received.len())
            .max(READ_STEP);
        if self.scratch.len() < want {
            self.scratch.resize(want, 0);
        }
        let n = self.stream.read(&mut self.scratch[..want])?;
        self.received.extend_from_slice(&self.scratch[..n]);
        Ok(n)
    }

    fn take_message(&mut self) -> Result<Option<Vec<u8>>, String> {
        Ok(wire::whole_message(&self.received)?.map(|len| {
            let rest = self.received.split_off(len);
            std::mem::replace(&mut self.received, rest)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(uri: &str) -> ClientOptions {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async { ClientOptions::parse(uri).await })
            .unwrap()
    }

    #[test]
    fn only_a_plain_single_host_deployment_is_fit() {
        assert_eq!(
            fit(&opts("mongodb://127.0.0.1:27950/?directConnection=true")),
            Ok(("127.0.0.1".into(), 27950))
        );
        assert_eq!(
            fit(&opts("mongodb://db.example")),
            Ok(("db.example".into(), 27017))
        );
        for (uri, why) in [
            ("mongodb://u:p@h", "credentials"),
            ("mongodb://h/?tls=true", "TLS"),
            (
                "mongodb://h/?readPreference=secondary",
                "a read preference or read concern",
            ),
            (
                "mongodb://h/?readConcernLevel=majority",
                "a read preference or read concern",
            ),
            (
                "mongodb://h/?loadBalanced=true",
                "a versioned API or a load balancer",
            ),
            ("mongodb://a,b/?replicaSet=rs", "more than one host"),
        ] {
            assert_eq!(fit(&opts(uri)), Err(why), "{uri}");
        }
    }
}
