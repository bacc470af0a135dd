//! The TCP side of `pulse-merge --listen`: clients accepted within bounds, authenticated,
//! and each read as a byte stream by a thread of its own.
//!
//! Bounds, each refusal told to the client in one line `error: REASON` before the
//! connection is closed, and to the caller as a [`Refusal`] (so it is reported and counted):
//! - at most [`Limits::max_clients`] connections at once (authenticating ones included);
//! - a thread that cannot be started (a task limit) or a descriptor that cannot be had
//!   (`EMFILE`, `ENFILE`) refuses that client only: one descriptor is kept in reserve so the
//!   acceptor can still take the connection to say so, and it waits before trying again,
//!   rather than spinning on a listen queue it cannot empty;
//! - a connection that sends nothing for [`Limits::idle`] is closed;
//! - with [`Tokens`], the first line must be `auth NAME:TOKEN` within [`AUTH_WAIT`], and the
//!   token is compared in constant time; the client's identity is then NAME.
//!
//! Stopping (the shared `stop` flag): no new connection is taken once the kernel's queue is
//! empty, and each connection is read until a read finds nothing buffered ([`Draining`]).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a new client has to send its `auth` line.
pub const AUTH_WAIT: Duration = Duration::from_secs(10);

/// The longest `auth` line taken.
const AUTH_MAX: usize = 4096;

/// How often a connection's reader wakes while it waits, to see whether the merger stops.
const POLL: Duration = Duration::from_millis(50);

/// How long the acceptor waits after running out of descriptors or threads before it
/// accepts again.
const BACKOFF: Duration = Duration::from_millis(100);

/// A reader thread's stack: readers hold a chunk buffer on the heap and little else.
const STACK: usize = 256 << 10;

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_clients: usize,
    /// Close a connection that sent nothing for this long.
    pub idle: Option<Duration>,
}

/// Why a client was turned away or cut off.
#[derive(Debug)]
pub struct Refusal {
    /// Short and fixed (a diagnostic kind and the name of its `pulse.*` counter).
    pub kind: &'static str,
    /// `tcp:ADDR:PORT`.
    pub peer: String,
    pub detail: String,
}

/// One accepted (and, with tokens, authenticated) client.
pub struct Client {
    /// `tcp:ADDR:PORT`, for messages.
    pub name: String,
    /// The NAME of its token, with authentication.
    pub identity: Option<Arc<str>>,
    /// What it sends after its `auth` line.
    pub reader: io::Chain<io::Cursor<Vec<u8>>, Draining>,
    /// Set when the connection was closed for being idle.
    pub idled: Arc<AtomicBool>,
}

/// The shared tokens of `--auth-file`: one `NAME:TOKEN` per line.
pub struct Tokens {
    entries: Vec<(String, Vec<u8>)>,
}

impl Tokens {
    /// Read an auth file: `NAME:TOKEN` lines; blank lines and `#` comments are skipped.
    /// Names are unique and made of `[A-Za-z0-9._-]`; tokens are at least 16 bytes.
    pub fn load(path: &Path) -> Result<Tokens> {
        let shown = path.display();
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Usage(format!("{shown}: {e}")))?;
        Tokens::parse(&text, &shown.to_string())
    }

    /// [`Tokens::load`] of text already read; `shown` names where it came from in errors.
    pub fn parse(text: &str, shown: &str) -> Result<Tokens> {
        let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let at = format!("{shown}: line {}", i + 1);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, token)) = line.split_once(':') else {
                return Err(Error::Usage(format!("{at}: expected NAME:TOKEN")));
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(Error::Usage(format!(
                    "{at}: a name is letters, digits, '.', '_' and '-'"
                )));
            }
            if token.len() < 16 {
                return Err(Error::Usage(format!(
                    "{at}: the token of {name:?} is shorter than 16 bytes"
                )));
            }
            if entries.iter().any(|(n, _)| n == name) {
                return Err(Error::Usage(format!("{at}: {name:?} is named twice")));
            }
            entries.push((name.to_string(), token.as_bytes().to_vec()));
        }
        if entries.is_empty() {
            return Err(Error::Usage(format!("{shown}: no NAME:TOKEN line")));
        }
        Ok(Tokens { entries })
    }

    /// The identity an `auth NAME:TOKEN` line proves, if it does. The time taken does not
    /// depend on how much of a token is right, nor on whether the name exists.
    pub fn check(&self, line: &[u8]) -> Option<&str> {
        let rest = line.strip_prefix(b"auth ")?;
        let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
        let colon = rest.iter().position(|&b| b == b':')?;
        let (name, token) = (&rest[..colon], &rest[colon + 1..]);
        let mut found = None;
        for (n, t) in &self.entries {
            // Every entry's token is compared, so the time says nothing about which name
            // matched.
            let same = constant_time_eq(t, token);
            if same && n.as_bytes() == name {
                found = Some(n.as_str());
            }
        }
        found
    }
}

/// Byte strings compared in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= (x ^ y) as u64;
    }
    // Keep the loop from being cut short on the first difference.
    std::hint::black_box(diff) == 0
}

/// The open client connections, for the bytes they hold unread when a stop's deadline
/// passes.
#[derive(Default)]
pub struct Conns {
    open: Mutex<Vec<(u64, TcpStream)>>,
}

impl Conns {
    fn add(&self, id: u64, s: TcpStream) {
        self.lock().push((id, s));
    }

    fn remove(&self, id: u64) {
        self.lock().retain(|(i, _)| *i != id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, TcpStream)>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// (bytes the kernel holds unread, connections holding them or still open).
    pub fn unread(&self) -> (u64, usize) {
        let open = self.lock();
        let bytes = open.iter().map(|(_, s)| pending_bytes(s)).sum();
        (bytes, open.len())
    }
}

/// Bytes received on `s` and not yet read (`FIONREAD`).
fn pending_bytes(s: &TcpStream) -> u64 {
    let mut n: libc::c_int = 0;
    // SAFETY: the descriptor is open (owned by `s`) and `n` is a writable c_int, as FIONREAD
    // requires.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
    if r == 0 {
        n.max(0) as u64
    } else {
        0
    }
}

/// A client connection read with a short timeout: while the merger runs, a timeout is
/// waited through (up to the idle limit); once it stops, a read that finds nothing buffered
/// ends the stream (all the kernel had accepted has been read).
pub struct Draining {
    stream: TcpStream,
    stop: Arc<AtomicBool>,
    idle: Option<Duration>,
    last_data: Instant,
    idled: Arc<AtomicBool>,
}

impl Read for Draining {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let stopping = self.stop.load(Ordering::Relaxed);
            match self.stream.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if stopping && pending_bytes(&self.stream) == 0 {
                        return Ok(0);
                    }
                    if !stopping && self.idle.is_some_and(|d| self.last_data.elapsed() >= d) {
                        self.idled.store(true, Ordering::Relaxed);
                        return Ok(0);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(n) => {
                    self.last_data = Instant::now();
                    return Ok(n);
                }
                other => return other,
            }
        }
    }
}

/// How long, and how many bytes, a turned-away client's input is read and discarded after
/// its `error:` line, before the connection is closed.
const DRAIN_WAIT: Duration = Duration::from_millis(500);
const DRAIN_MAX: usize = 1 << 20;

/// Tell a client why it is turned away, as far as a short write can, and close. The write
/// side is shut first and what the client sent is read (for at most [`DRAIN_WAIT`] and
/// [`DRAIN_MAX`] bytes) before closing: closing with unread input sends a reset, which can
/// destroy the `error:` line before the client reads it.
fn turn_away(s: &TcpStream, reason: &str) {
    turn_away_for(s, reason, DRAIN_WAIT);
}

/// [`turn_away`], from the acceptor: on a thread of its own, so the acceptor does not wait
/// for the drain; without threads to be had, at once (what the client already sent is
/// still read).
fn turn_away_aside(conn: TcpStream, reason: &'static str) {
    let conn = Arc::new(conn);
    let mine = Arc::clone(&conn);
    let started = std::thread::Builder::new()
        .name("pulse-refuse".into())
        .stack_size(64 << 10)
        .spawn(move || turn_away(&mine, reason));
    if started.is_err() {
        turn_away_for(&conn, reason, Duration::ZERO);
    }
}

fn turn_away_for(mut s: &TcpStream, reason: &str, wait: Duration) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_write_timeout(Some(POLL));
    let _ = s.write_all(format!("error: {reason}\n").as_bytes());
    let _ = s.shutdown(Shutdown::Write);
    let until = Instant::now() + wait.max(Duration::from_millis(1));
    let mut buf = [0u8; 16 << 10];
    let mut drained = 0;
    while drained < DRAIN_MAX {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left.min(POLL))).is_err() {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => drained += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = s.shutdown(Shutdown::Both);
}

/// Read the `auth` line: what came after it, or why the client is refused.
fn authenticate(
    stream: &mut TcpStream,
    tokens: &Tokens,
    stop: &AtomicBool,
) -> std::result::Result<(Arc<str>, Vec<u8>), &'static str> {
    let started = Instant::now();
    let mut got: Vec<u8> = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if let Some(nl) = got.iter().position(|&b| b == b'\n') {
            let rest = got[nl + 1..].to_vec();
            return match tokens.check(&got[..nl]) {
                Some(name) => Ok((name.into(), rest)),
                None if got.starts_with(b"auth ") => Err("authentication failed"),
                None => Err("authentication required: send `auth NAME:TOKEN` first"),
            };
        }
        if got.len() > AUTH_MAX {
            return Err("authentication required: send `auth NAME:TOKEN` first");
        }
        if started.elapsed() >= AUTH_WAIT || stop.load(Ordering::Relaxed) {
            return Err("no `auth NAME:TOKEN` line in time");
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err("closed before authenticating"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return Err("closed before authenticating"),
        }
    }
}

/// Let this process have as many descriptors as its hard limit allows (a merger holds two
/// per client).
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid, writable rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// What the acceptor needs besides the listener.
pub struct Acceptor {
    pub limits: Limits,
    pub tokens: Option<Arc<Tokens>>,
    pub stop: Arc<AtomicBool>,
    pub conns: Arc<Conns>,
    /// Cleared once the listener is closed (after a stop).
    pub accepting: Arc<AtomicBool>,
}

impl Acceptor {
    /// Accept clients until stopped. `serve` runs on each client's own thread; `refused`
    /// is told of every client turned away or cut off.
    pub fn run(
        self,
        listener: TcpListener,
        serve: impl Fn(Client) + Send + Sync + 'static,
        refused: impl Fn(Refusal) + Send + Sync + 'static,
    ) {
        let serve = Arc::new(serve);
        let refused = Arc::new(refused);
        // A descriptor held back to take a connection with when there are no more, to
        // tell the client so instead of leaving it in the queue for ever.
        let mut reserve = std::fs::File::open("/dev/null").ok();
        let mut id = 0u64;
        loop {
            // Once stopping, what is already queued is still taken (those clients were
            // accepted by the kernel), then the listener closes.
            let stopping = self.stop.load(Ordering::Relaxed);
            let (conn, peer) = match listener.accept() {
                Ok((conn, addr)) => (conn, format!("tcp:{addr}")),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if stopping {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    drop(reserve.take());
                    if let Ok((conn, addr)) = listener.accept() {
                        turn_away_aside(conn, "the merger is out of file descriptors");
                        refused(Refusal {
                            kind: "refused: out of descriptors",
                            peer: format!("tcp:{addr}"),
                            detail: format!("cannot accept more connections ({e})"),
                        });
                    }
                    std::thread::sleep(BACKOFF);
                    if reserve.is_none() {
                        reserve = std::fs::File::open("/dev/null").ok();
                    }
                    continue;
                }
                Err(_) => {
                    std::thread::sleep(BACKOFF);
                    continue;
                }
            };
            let open = self.conns.count();
            if open >= self.limits.max_clients {
                turn_away_aside(conn, "too many clients");
                refused(Refusal {
                    kind: "refused: too many clients",
                    peer,
                    detail: format!("{open} connections open (--max-clients)"),
                });
                continue;
            }
            let kept = match (
                conn.set_nonblocking(false),
                conn.set_read_timeout(Some(POLL)),
                conn.try_clone(),
            ) {
                (Ok(()), Ok(()), Ok(kept)) => kept,
                (.., Err(e)) | (_, Err(e), _) | (Err(e), ..) => {
                    turn_away_aside(conn, "the merger is out of file descriptors");
                    refused(Refusal {
                        kind: "refused: out of descriptors",
                        peer,
                        detail: format!("cannot set the connection up ({e})"),
                    });
                    continue;
                }
            };
            id += 1;
            self.conns.add(id, kept);
            let conn_id = id;
            let (serve2, refused2) = (Arc::clone(&serve), Arc::clone(&refused));
            let (conns, stop, tokens) =
                (self.conns.clone(), self.stop.clone(), self.tokens.clone());
            let idle = self.limits.idle;
            let peer2 = peer.clone();
            let started = std::thread::Builder::new()
                .name("pulse-conn".into())
                .stack_size(STACK)
                .spawn(move || {
                    let mut conn = conn;
                    let (identity, first) = match &tokens {
                        None => (None, Vec::new()),
                        Some(t) => match authenticate(&mut conn, t, &stop) {
                            Ok((name, rest)) => (Some(name), rest),
                            Err(reason) => {
                                turn_away(&conn, reason);
                                refused2(Refusal {
                                    kind: "refused: not authenticated",
                                    peer: peer2,
                                    detail: reason.to_string(),
                                });
                                conns.remove(conn_id);
                                return;
                            }
                        },
                    };
                    let idled = Arc::new(AtomicBool::new(false));
                    let reader = Draining {
                        stream: conn,
                        stop,
                        idle,
                        last_data: Instant::now(),
                        idled: idled.clone(),
                    };
                    serve2(Client {
                        name: peer2.clone(),
                        identity,
                        reader: io::Cursor::new(first).chain(reader),
                        idled: idled.clone(),
                    });
                    if idled.load(Ordering::Relaxed) {
                        refused2(Refusal {
                            kind: "closed: idle",
                            peer: peer2,
                            detail: format!(
                                "sent nothing for {} s (--idle-timeout)",
                                idle.map_or(0.0, |d| d.as_secs_f64())
                            ),
                        });
                    }
                    conns.remove(conn_id);
                });
            if let Err(e) = started {
                // The closure (and the connection in it) is gone with the error: the client
                // sees its connection closed; the kept clone can still say why.
                let open = self.conns.lock().iter().position(|(i, _)| *i == conn_id);
                if let Some(i) = open {
                    let (_, s) = self.conns.lock().remove(i);
                    turn_away_for(
                        &s,
                        "the merger cannot start a reader (out of threads)",
                        Duration::ZERO,
                    );
                }
                refused(Refusal {
                    kind: "refused: out of threads",
                    peer,
                    detail: format!("cannot start a reader thread ({e})"),
                });
                std::thread::sleep(BACKOFF);
            }
        }
        drop(listener);
        self.accepting.store(false, Ordering::Relaxed);
    }
}

/// Whether an address to listen on is only reachable from this machine.
pub fn is_loopback(l: &TcpListener) -> bool {
    l.local_addr().is_ok_and(|a| a.ip().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Result<Tokens> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("auth");
        std::fs::write(&p, text).unwrap();
        Tokens::load(&p)
    }

    #[test]
    fn tokens_prove_their_name_only() {
        let t = tokens("# receivers\nweb1:0123456789abcdef\n\nweb2:fedcba9876543210xx\n").unwrap();
        assert_eq!(t.check(b"auth web1:0123456789abcdef"), Some("web1"));
        assert_eq!(t.check(b"auth web2:fedcba9876543210xx\r"), Some("web2"));
        // Another's token, a prefix, a longer one, a missing name.
        assert_eq!(t.check(b"auth web1:fedcba9876543210xx"), None);
        assert_eq!(t.check(b"auth web1:0123456789abcde"), None);
        assert_eq!(t.check(b"auth web1:0123456789abcdef0"), None);
        assert_eq!(t.check(b"auth web3:0123456789abcdef"), None);
        assert_eq!(t.check(b"web1:0123456789abcdef"), None);
    }

    #[test]
    fn auth_file_mistakes_are_named() {
        let e = |text| tokens(text).err().unwrap().to_string();
        assert!(e("web1\n").contains("line 1: expected NAME:TOKEN"));
        assert!(e("web1:short\n").contains("shorter than 16 bytes"));
        assert!(
            e("a:0123456789abcdef\na:0123456789abcdeX\n").contains("line 2: \"a\" is named twice")
        );
        assert!(e("we b:0123456789abcdef\n").contains("a name is"));
        assert!(e("# nothing\n").contains("no NAME:TOKEN line"));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abc\0"));
        assert!(!constant_time_eq(b"abc\0", b"abc"));
    }
}
