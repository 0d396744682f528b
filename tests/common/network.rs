//! Networks between the module and MongoDB that the tests control: a TCP proxy that delays
//! what the client sends, one that holds it until told to let it through (or drops its open
//! connections without a word), and a server that accepts connections and never answers. They stall the module's MongoDB without a signal, and
//! leave the tests' own MongoDB client (which goes direct) untouched.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A TCP proxy on a free port that holds every chunk the client sends for `delay` before it
/// forwards it: a slow MongoDB, as Redis sees it, without touching the server.
pub struct SlowProxy {
    pub port: u16,
}

impl SlowProxy {
    pub fn start(upstream: u16, delay: Duration) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(client, server, delay));
                std::thread::spawn(move || pump(s2, c2, Duration::ZERO));
            }
        });
        SlowProxy { port }
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }
}

/// Whether a holding proxy lets requests through now, and the wake-up for its pumps.
type Gate = Arc<(Mutex<bool>, Condvar)>;

/// A TCP proxy on a free port that forwards everything, except while `hold` is in force: then
/// what the client sends waits in the proxy (connections stay open, nothing is answered) until
/// `release`. MongoDB as a stalled server looks to the module, without stopping the server.
pub struct HoldingProxy {
    pub port: u16,
    gate: Gate,
    links: Links,
}

/// A holding proxy's connections, numbered as accepted, and the number below which they are
/// dead (`drop_silently`).
#[derive(Clone, Default)]
struct Links {
    accepted: Arc<AtomicU64>,
    dead_below: Arc<AtomicU64>,
}

impl HoldingProxy {
    pub fn start(upstream: u16) -> HoldingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let gate: Gate = Arc::new((Mutex::new(false), Condvar::new()));
        let links = Links::default();
        let (g, l) = (Arc::clone(&gate), links.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let n = l.accepted.fetch_add(1, Ordering::SeqCst);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (g, dead_below) = (Arc::clone(&g), Arc::clone(&l.dead_below));
                std::thread::spawn(move || {
                    let alive = move || n >= dead_below.load(Ordering::SeqCst);
                    pump_gated(client, server, Duration::ZERO, Some((g, Box::new(alive))))
                });
                std::thread::spawn(move || pump(s2, c2, Duration::ZERO));
            }
        });
        HoldingProxy { port, gate, links }
    }

    /// Every connection open now goes dead without a word, as after a NAT's or a load
    /// balancer's idle timeout or a host's crash: what the module sends on it is dropped,
    /// nothing is answered, and it is never closed. Connections made from now on work.
    pub fn drop_silently(&self) {
        let accepted = self.links.accepted.load(Ordering::SeqCst);
        self.links.dead_below.store(accepted, Ordering::SeqCst);
    }

    /// From now on, nothing the module sends reaches MongoDB (until `release`).
    pub fn hold(&self) {
        *self.gate.0.lock().unwrap() = true;
    }

    /// Lets everything held, and what follows, through.
    pub fn release(&self) {
        *self.gate.0.lock().unwrap() = false;
        self.gate.1.notify_all();
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }
}

impl Drop for HoldingProxy {
    fn drop(&mut self) {
        self.release();
    }
}

fn pump(from: std::net::TcpStream, to: std::net::TcpStream, delay: Duration) {
    pump_gated(from, to, delay, None)
}

/// A holding proxy's gate, and whether this connection is still alive (what a dead one is sent
/// is dropped).
type Control = (Gate, Box<dyn Fn() -> bool + Send>);

fn pump_gated(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    delay: Duration,
    gate: Option<Control>,
) {
    use std::io::{Read, Write};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                std::thread::sleep(delay);
                if let Some((g, alive)) = &gate {
                    if !alive() {
                        continue;
                    }
                    let held = g.0.lock().unwrap();
                    drop(g.1.wait_while(held, |h| *h).unwrap());
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

/// A TCP proxy in front of a port not known yet (`set_upstream`), whose links can be cut: `cut`
/// closes every open connection and closes each new one at once, until `restore`. What was in
/// flight is lost: a Redis Cluster node's bus port, as the other nodes reach it, with its
/// traffic dropped while the node itself runs on.
pub struct CuttableProxy {
    pub port: u16,
    upstream: Arc<Mutex<u16>>,
    cut: Arc<Mutex<bool>>,
    open: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl CuttableProxy {
    pub fn start() -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = Arc::new(Mutex::new(0u16));
        let cut = Arc::new(Mutex::new(false));
        let open: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
        let (u, c, o) = (Arc::clone(&upstream), Arc::clone(&cut), Arc::clone(&open));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let to = *u.lock().unwrap();
                if *c.lock().unwrap() || to == 0 {
                    continue; // dropped: closed at once
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                let mut open = o.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(client, server, Duration::ZERO));
                std::thread::spawn(move || pump(s2, c2, Duration::ZERO));
            }
        });
        CuttableProxy {
            port,
            upstream,
            cut,
            open,
        }
    }

    pub fn set_upstream(&self, port: u16) {
        *self.upstream.lock().unwrap() = port;
    }

    pub fn cut(&self) {
        *self.cut.lock().unwrap() = true;
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        *self.cut.lock().unwrap() = false;
    }
}

/// A "MongoDB" on a free port that accepts connections and never answers: every load against
/// it waits until its deadline, deterministically.
pub struct SilentServer {
    pub port: u16,
}

impl SilentServer {
    pub fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            // Keep every connection open, read nothing, write nothing.
            let _held: Vec<_> = listener.incoming().flatten().collect();
        });
        SilentServer { port }
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }
}
