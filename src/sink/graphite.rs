//! Graphite's plaintext protocol: `path value timestamp\n` over TCP.
//!
//! One line per value of a snapshot: `PREFIX.stat.key.name VALUE START`, the key left out
//! when it is null. The stat name's dots are kept (they are Graphite's levels, as the user
//! named them); inside the key and the value name a dot would add a level, so it becomes `_`
//! like every other character outside `[A-Za-z0-9_-]` (spaces, `/`, `:`, non-ASCII). An empty
//! component becomes `_`.
//!
//! The protocol has no acknowledgement: a batch counts as sent once it was written and
//! flushed to the socket. Before reusing a connection the sink checks that the server has not
//! closed it, and a failed write reconnects and writes the whole chunk again (a point sent
//! twice for the same timestamp simply overwrites itself in Graphite). What was written in
//! the last `resend` (at most [`RESEND_BYTES`]) is kept, and written again first on every
//! new connection after the first: a carbon that was killed loses what it had taken but not
//! yet stored, and gets it back once it listens again.

use std::collections::VecDeque;
use std::time::Instant;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::{Backoff, Sink};
use crate::error::{Error, Result};
use crate::record::{write_f64, Snapshot};

/// Snapshots written per chunk (a chunk is retried whole after a reconnect).
const CHUNK: usize = 2000;

/// At most this many bytes of recent lines are kept for writing again after a reconnect.
pub const RESEND_BYTES: usize = 16 << 20;

/// Append `s` as one path component: every character outside `[A-Za-z0-9_-]` becomes `_`.
pub fn push_component(out: &mut String, s: &str) {
    if s.is_empty() {
        out.push('_');
        return;
    }
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
        } else {
            out.push('_');
        }
    }
}

/// Append `s` as dotted levels (its dots kept, each level cleaned like a component).
pub fn push_levels(out: &mut String, s: &str) {
    for (i, part) in s.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_component(out, part);
    }
}

/// A prefix as given by the user (`servers.web`, `servers.web.`), cleaned and ending with a
/// dot, or empty.
pub fn clean_prefix(prefix: &str) -> String {
    let p = prefix.trim_matches('.');
    if p.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    push_levels(&mut out, p);
    out.push('.');
    out
}

/// The Graphite path of one value of `snap` (`prefix` as made by [`clean_prefix`]).
pub fn metric_path(prefix: &str, snap: &Snapshot, name: &str) -> String {
    let mut path = String::with_capacity(prefix.len() + snap.stat.len() + name.len() + 16);
    path.push_str(prefix);
    push_levels(&mut path, &snap.stat);
    if let Some(key) = &snap.key {
        path.push('.');
        push_component(&mut path, key);
    }
    path.push('.');
    push_component(&mut path, name);
    path
}

/// Append the plaintext lines of `snap` to `out`.
pub fn write_lines(out: &mut Vec<u8>, prefix: &str, snap: &Snapshot) {
    let mut num = String::new();
    for (name, &value) in &snap.values {
        out.extend_from_slice(metric_path(prefix, snap, name).as_bytes());
        out.push(b' ');
        num.clear();
        write_f64(&mut num, value);
        out.extend_from_slice(num.as_bytes());
        out.push(b' ');
        out.extend_from_slice(itoa::Buffer::new().format(snap.start).as_bytes());
        out.push(b'\n');
    }
}

/// Normalise a Graphite address: `host:port`, `tcp://host:port` (a missing port is 2003).
pub fn parse_addr(s: &str) -> Result<String> {
    let rest = s.trim();
    let rest = match rest.split_once("://") {
        Some(("tcp", r)) => r,
        Some((scheme, _)) => {
            return Err(Error::Usage(format!(
                "graphite address {s:?}: scheme {scheme:?} not supported (use host:port or tcp://host:port)"
            )))
        }
        None => rest,
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Err(Error::Usage(format!("graphite address {s:?} is empty")));
    }
    // `[::1]:2003`, `host:2003`, `host`.
    let has_port = match rest.rfind(':') {
        Some(i) => rest.starts_with('[') == rest[..i].ends_with(']') && !rest.ends_with(']'),
        None => false,
    };
    let addr = if has_port {
        rest.to_string()
    } else {
        format!("{rest}:2003")
    };
    let port = addr.rsplit(':').next().unwrap_or("");
    if port.parse::<u16>().is_err() {
        return Err(Error::Usage(format!("graphite address {s:?}: bad port")));
    }
    Ok(addr)
}

/// A Graphite server reached over TCP.
pub struct Graphite {
    addr: String,
    prefix: String,
    conn: Option<TcpStream>,
    /// Attempts per chunk before `send` gives up.
    tries: u32,
    backoff: Backoff,
    timeout: Duration,
    /// Chunks written in the last `resend`, oldest first, with when they were written.
    recent: VecDeque<(Instant, Vec<u8>)>,
    recent_bytes: usize,
    resend: Duration,
    /// Set once a connection was made: a later one writes `recent` again first.
    connected_before: bool,
}

impl Graphite {
    /// `addr` as made by [`parse_addr`]; `prefix` as the user wrote it. No connection is made
    /// until the first send.
    /// `resend`: how long written lines are kept for writing again after a reconnect.
    pub fn new(addr: String, prefix: &str, tries: u32, resend: Duration) -> Graphite {
        Graphite {
            addr,
            prefix: clean_prefix(prefix),
            conn: None,
            tries: tries.max(1),
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(5)),
            timeout: Duration::from_secs(5),
            recent: VecDeque::new(),
            recent_bytes: 0,
            resend,
            connected_before: false,
        }
    }

    /// Remember a written chunk; forget what is older than `resend` or over the byte cap.
    fn remember(&mut self, bytes: &[u8]) {
        if self.resend.is_zero() {
            return;
        }
        let now = Instant::now();
        self.recent.push_back((now, bytes.to_vec()));
        self.recent_bytes += bytes.len();
        while let Some((t, b)) = self.recent.front() {
            if self.recent_bytes > RESEND_BYTES || now.duration_since(*t) > self.resend {
                self.recent_bytes -= b.len();
                self.recent.pop_front();
            } else {
                break;
            }
        }
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let addrs: Vec<SocketAddr> = self.addr.to_socket_addrs()?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.timeout) {
                Ok(s) => {
                    s.set_write_timeout(Some(self.timeout))?;
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The open connection, or a new one; an open connection the server has closed (it
    /// reads as end of file) is replaced.
    fn conn(&mut self) -> io::Result<&mut TcpStream> {
        if let Some(c) = &mut self.conn {
            if peer_closed(c) {
                self.conn = None;
            }
        }
        if self.conn.is_none() {
            let mut c = self.connect()?;
            if self.connected_before {
                for (_, b) in &self.recent {
                    c.write_all(b)?;
                }
                c.flush()?;
            }
            self.connected_before = true;
            self.conn = Some(c);
        }
        Ok(self.conn.as_mut().expect("connected"))
    }

    fn write_chunk(&mut self, bytes: &[u8]) -> io::Result<()> {
        let c = self.conn()?;
        c.write_all(bytes)?;
        c.flush()
    }
}

/// True when the server closed the connection (or it failed); Graphite never sends anything,
/// so a readable socket means end of file or an error.
fn peer_closed(c: &mut TcpStream) -> bool {
    if c.set_nonblocking(true).is_err() {
        return true;
    }
    let mut b = [0u8; 64];
    let closed = match c.read(&mut b) {
        Ok(_) => true,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    closed || c.set_nonblocking(false).is_err()
}

impl Sink for Graphite {
    fn name(&self) -> String {
        format!("graphite {}", self.addr)
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn send(&mut self, batch: &[Snapshot]) -> Result<()> {
        // The caller spaces out its own retries of a failed batch; each send starts afresh.
        self.backoff.reset();
        let mut buf = Vec::with_capacity(64 * 1024);
        for chunk in batch.chunks(CHUNK) {
            buf.clear();
            for snap in chunk {
                write_lines(&mut buf, &self.prefix, snap);
            }
            let mut attempt = 1;
            loop {
                match self.write_chunk(&buf) {
                    Ok(()) => {
                        self.backoff.reset();
                        self.remember(&buf);
                        break;
                    }
                    Err(e) => {
                        self.conn = None;
                        if attempt >= self.tries {
                            let tries = self.tries;
                            let s = if tries == 1 { "try" } else { "tries" };
                            return Err(Error::Runtime(format!(
                                "{}: {e} (after {tries} {s})",
                                self.name()
                            )));
                        }
                        attempt += 1;
                        std::thread::sleep(self.backoff.next_delay());
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(stat: &str, key: Option<&str>) -> Snapshot {
        Snapshot {
            stat: stat.into(),
            key: key.map(Into::into),
            start: 1431856800,
            secs: 60,
            is_final: true,
            values: [("count".to_string(), 12.0), ("p.95".to_string(), 0.25)]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn lines_clean_components_and_keep_stat_levels() {
        let mut out = Vec::new();
        write_lines(
            &mut out,
            &clean_prefix("pulse.prod."),
            &snap("router.status", Some("web.1 /a:b")),
        );
        write_lines(&mut out, "", &snap("router..errs", None));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "pulse.prod.router.status.web_1__a_b.count 12 1431856800\n\
             pulse.prod.router.status.web_1__a_b.p_95 0.25 1431856800\n\
             router._.errs.count 12 1431856800\n\
             router._.errs.p_95 0.25 1431856800\n"
        );
        let mut p = String::new();
        push_component(&mut p, "héllo");
        assert_eq!(p, "h_llo");
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("graphite:2003").unwrap(), "graphite:2003");
        assert_eq!(parse_addr("tcp://10.0.0.1:2103/").unwrap(), "10.0.0.1:2103");
        assert_eq!(parse_addr("graphite").unwrap(), "graphite:2003");
        assert_eq!(parse_addr("[::1]:2004").unwrap(), "[::1]:2004");
        assert_eq!(parse_addr("[::1]").unwrap(), "[::1]:2003");
        assert!(parse_addr("udp://x:1").is_err());
        assert!(parse_addr("x:notaport").is_err());
        assert!(parse_addr("").is_err());
    }

    #[test]
    fn unreachable_server_is_an_error_naming_it() {
        // Bind then drop a listener to get a loopback port with nobody listening.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut g = Graphite::new(format!("127.0.0.1:{port}"), "", 2, Duration::ZERO);
        let err = g.send(&[snap("a", None)]).unwrap_err().to_string();
        assert!(err.contains(&format!("graphite 127.0.0.1:{port}")), "{err}");
        assert!(err.contains("after 2 tries"), "{err}");
    }

    #[test]
    fn reconnects_after_server_closed_the_connection() {
        use std::io::BufRead;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (closed_tx, closed_rx) = std::sync::mpsc::channel();
        let server = std::thread::spawn(move || {
            let mut got = Vec::new();
            // Each connection: read one batch (two lines), then close it.
            for _ in 0..2 {
                let (s, _) = listener.accept().unwrap();
                let mut r = std::io::BufReader::new(s);
                let mut line = String::new();
                for _ in 0..2 {
                    line.clear();
                    r.read_line(&mut line).unwrap();
                    got.push(line.clone());
                }
                drop(r);
                let _ = closed_tx.send(());
            }
            got
        });
        let mut g = Graphite::new(addr, "", 3, Duration::from_secs(60));
        g.send(&[snap("a", None)]).unwrap();
        closed_rx.recv().unwrap();
        // The close (FIN) is on its way over loopback; let it land before the next send.
        std::thread::sleep(Duration::from_millis(50));
        g.send(&[snap("b", None)]).unwrap();
        let got = server.join().unwrap();
        // The new connection first carries again what the closed one had taken.
        assert_eq!(got.len(), 4);
        assert!(got[2].starts_with("a.count 12 "), "{got:?}");
    }
}
