//! Pulse's own link from a sender (`pulse-fragment`, `pulse-merge --output fragments`) to a
//! `pulse-merge --listen`: `--connect HOST:PORT`.
//!
//! - **One connection, kept.** A thread of its own connects, sends the `auth NAME:TOKEN`
//!   line first when it has a token, then writes what the tool hands it. A lost connection
//!   (the merger killed, restarted, a reset) is reconnected with exponential backoff
//!   ([`BACKOFF_MIN`] doubling up to [`BACKOFF_MAX`], with jitter). When no connection can be
//!   had for `wait` (`--connect-wait`), from the start or since the last one was lost, the
//!   link gives up: fatal.
//! - **Re-send after a reconnect.** Fragments are cumulative and idempotent by `src` and
//!   `rev`, so after every reconnect the tool re-sends every window it still holds
//!   ([`Link::take_resend`] says when); a merger that was restarted is whole again. Lines
//!   queued while the merger was down are sent too (those of windows the tool has since
//!   forgotten are only there).
//! - **Never dropped.** While there is no connection, what the tool writes is queued, up to
//!   [`BUDGET`] bytes; then [`LinkWriter`] blocks, so the tool stops reading its input
//!   (backpressure). Both the hold and the recovery are reported on stderr, once each.
//! - **What cannot be known.** Without acknowledgements, lines written into a connection
//!   just before it broke may not have been taken by the merger: a window the tool forgot
//!   within [`SUSPECT`] before the failure cannot be re-sent, and the tool counts it as
//!   possibly undelivered ([`Link::lost`]), reports it and exits 1.
//! - **Refusals.** A line `error: REASON` from the merger is printed on stderr; an
//!   authentication refusal is fatal (retrying cannot help), others (too many clients, out
//!   of descriptors) are retried.
//! - **Kept alive.** After [`KEEPALIVE`] with nothing to send, an empty line is sent (the
//!   merger skips it), so its `--idle-timeout` does not close a quiet link.
//! - **Closing.** [`Link::close`] waits until everything queued is written, shuts the write
//!   side down and waits (at most [`CLOSE_WAIT`]) for the merger to close its side, which it
//!   does once it has read everything: then all was taken. A connection lost while closing is
//!   reconnected and re-sent as any other.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{warn, Error, Result};

/// Bytes queued for the merger before the tool stops reading its input.
pub const BUDGET: usize = 8 << 20;

/// First wait before reconnecting; doubled after each failed attempt.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);

/// Longest wait between two attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A window forgotten this long before a connection broke may not have reached the merger.
pub const SUSPECT: Duration = Duration::from_secs(2);

/// How long a closing link waits for the merger to close its side.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// An empty line is sent after this long with nothing to send, so the merger's
/// `--idle-timeout` (default 300 s) does not close a quiet link.
pub const KEEPALIVE: Duration = Duration::from_secs(30);

/// The longest connect attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the writer looks up while it has nothing to write.
const POLL: Duration = Duration::from_millis(50);

/// The default of `--connect-wait`.
pub const DEFAULT_WAIT: &str = "5m";

/// `300`, `300s`, `5m`, `1h`, `500ms`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: a whole number with ms, s, m or h (e.g. 5m)"))?;
    let ms = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("{s:?}: unit must be ms, s, m or h")),
    };
    Ok(Duration::from_millis(n.saturating_mul(ms)))
}

/// The `NAME:TOKEN` of a `--token-file`: one line. A file others can read is refused, and
/// the token is never shown.
pub fn read_token_file(path: &Path) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| Error::Usage(format!("{shown}: {e}")))?;
    if meta.permissions().mode() & 0o004 != 0 {
        return Err(Error::Usage(format!(
            "{shown}: readable by every user; a token file must not be (chmod 600 {shown})"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::Usage(format!("{shown}: {e}")))?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let line = lines
        .next()
        .ok_or_else(|| Error::Usage(format!("{shown}: empty (expected one NAME:TOKEN line)")))?;
    if lines.next().is_some() {
        return Err(Error::Usage(format!(
            "{shown}: more than one line (expected one NAME:TOKEN line)"
        )));
    }
    match line.split_once(':') {
        Some((name, token)) if !name.is_empty() && !token.is_empty() => Ok(line.to_string()),
        _ => Err(Error::Usage(format!(
            "{shown}: line 1: expected NAME:TOKEN"
        ))),
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    /// `HOST:PORT`.
    pub addr: String,
    /// `NAME:TOKEN`, sent first as `auth NAME:TOKEN`.
    pub auth: Option<String>,
    /// Give up when no connection could be had for this long.
    pub wait: Duration,
    /// The tool name, for messages.
    pub tool: &'static str,
    /// Bytes queued before the writer blocks.
    pub budget: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Vec<u8>>,
    queued: usize,
    connected: bool,
    /// Set by the tool when it has handed over everything.
    closing: bool,
    /// The link gave up; why.
    fatal: Option<String>,
    /// When the connection that a reconnect replaced broke: the tool owes a re-send.
    resend: Option<Instant>,
    /// The writer closed the connection cleanly after `closing`.
    closed: bool,
    /// The hold on input has been reported (until the recovery is).
    holding: bool,
    /// Windows counted as possibly undelivered.
    lost: u64,
}

struct Shared {
    opts: Options,
    state: Mutex<State>,
    cond: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn say(&self, what: &str) {
        warn(
            self.opts.tool,
            &format!("merger {}: {what}", self.opts.addr),
        );
    }
}

/// The control side of a link (see the module doc); [`Link::writer`] is its data side.
#[derive(Clone)]
pub struct Link {
    shared: Arc<Shared>,
}

/// What the tool writes to: complete lines, handed to the link in batches (see
/// [`Link`]). Blocks while [`BUDGET`] bytes are queued.
pub struct LinkWriter {
    shared: Arc<Shared>,
    buf: Vec<u8>,
}

/// Batches handed to the link thread.
const BATCH: usize = 64 << 10;

impl Link {
    /// Start the link thread; it connects in the background.
    pub fn start(opts: Options) -> Link {
        let shared = Arc::new(Shared {
            opts,
            state: Mutex::new(State::default()),
            cond: Condvar::new(),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("pulse-link".into())
            .spawn(move || run(&s))
            .expect("start the link thread");
        Link { shared }
    }

    pub fn writer(&self) -> LinkWriter {
        LinkWriter {
            shared: self.shared.clone(),
            buf: Vec::with_capacity(BATCH),
        }
    }

    /// After a reconnect, once: when the connection it replaced broke. The tool then writes
    /// every window it holds again.
    pub fn take_resend(&self) -> Option<Instant> {
        self.shared.lock().resend.take()
    }

    /// Count windows the tool forgot before they could be re-sent.
    pub fn add_lost(&self, windows: u64) {
        self.shared.lock().lost += windows;
    }

    /// After a reconnect that replaced the connection broken at `broke`: the windows
    /// forgotten (past `horizon`, the tool's flag) shortly before it cannot be re-sent;
    /// count them as possibly undelivered and say so on stderr, as `tool`, of `merger`.
    pub fn count_forgotten(
        &self,
        tool: &str,
        forgotten: &Forgotten,
        broke: Instant,
        horizon: &str,
        merger: &str,
    ) {
        let lost = forgotten.before(broke);
        if lost > 0 {
            self.add_lost(lost);
            eprintln!(
                "{tool}: {lost} windows were forgotten (past {horizon}) less than {} s before the connection broke and cannot be re-sent: {merger} may not have them",
                SUSPECT.as_secs()
            );
        }
    }

    /// Windows counted as possibly undelivered.
    pub fn lost(&self) -> u64 {
        self.shared.lock().lost
    }

    /// Why the link gave up, if it did.
    pub fn fatal(&self) -> Option<String> {
        self.shared.lock().fatal.clone()
    }

    /// Everything has been handed over (flush `w` first): wait until it is written and the
    /// connection closed. A reconnect meanwhile calls `resend` with the instant the
    /// connection broke, for the tool's windows again (and to count those it forgot just
    /// before, as [`Link::take_resend`] does). An error says why the link gave up.
    pub fn close(&self, mut resend: impl FnMut(Instant, &mut Vec<u8>)) -> Result<()> {
        let mut st = self.shared.lock();
        st.closing = true;
        self.shared.cond.notify_all();
        loop {
            if let Some(why) = &st.fatal {
                return Err(Error::Runtime(why.clone()));
            }
            if st.closed {
                return Ok(());
            }
            if let Some(broke) = st.resend.take() {
                drop(st);
                let mut buf = Vec::new();
                resend(broke, &mut buf);
                st = self.shared.lock();
                if !buf.is_empty() {
                    st.queued += buf.len();
                    st.queue.push_back(buf);
                    self.shared.cond.notify_all();
                }
                continue;
            }
            st = self
                .shared
                .cond
                .wait_timeout(st, POLL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl LinkWriter {
    fn hand_over(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let sh = &*self.shared;
        let mut st = sh.lock();
        let mut held = false;
        while st.fatal.is_none() && st.queued >= sh.opts.budget {
            if !st.holding {
                st.holding = true;
                held = true;
                let mb = st.queued as f64 / (1 << 20) as f64;
                if st.connected {
                    sh.say(&format!(
                        "not taking data as fast as it comes, holding input ({mb:.1} MiB queued)"
                    ));
                } else {
                    sh.say(&format!("merger down, holding input ({mb:.1} MiB queued)"));
                }
            }
            st = sh
                .cond
                .wait_timeout(st, POLL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if let Some(why) = &st.fatal {
            return Err(io::Error::other(why.clone()));
        }
        if held || st.holding {
            st.holding = false;
            sh.say("taking data again, reading input again");
        }
        let batch = std::mem::replace(&mut self.buf, Vec::with_capacity(BATCH));
        st.queued += batch.len();
        st.queue.push_back(batch);
        sh.cond.notify_all();
        Ok(())
    }
}

impl Write for LinkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        // Hand over on a write boundary, which the tools keep at line ends.
        if self.buf.len() >= BATCH {
            self.hand_over()?;
        }
        Ok(data.len())
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.write(data).map(|_| ())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.hand_over()
    }
}

/// What the connection's reader saw.
#[derive(Default)]
struct Heard {
    /// The merger closed its side (or the connection broke).
    ended: bool,
    /// Its `error:` line, if it sent one.
    refusal: Option<String>,
    /// Why the connection broke, when a read failed.
    error: Option<String>,
}

/// A connection's reader: the merger sends nothing but an `error:` line, then closes.
fn read_side(mut s: TcpStream, heard: Arc<(Mutex<Heard>, AtomicBool)>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let result = loop {
        match s.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => {
                if got.len() < 4096 {
                    got.extend_from_slice(&buf[..n]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Some(crate::error::io_reason(&e)),
        }
    };
    let text = String::from_utf8_lossy(&got);
    let refusal = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("error: ")
                .or_else(|| l.strip_prefix("error:"))
        })
        .map(|r| r.trim().to_string());
    let mut h = heard.0.lock().unwrap_or_else(|e| e.into_inner());
    h.ended = true;
    h.refusal = refusal;
    h.error = result;
    heard.1.store(true, Ordering::Relaxed);
}

/// The link thread: connect, write, reconnect, until closed or given up.
fn run(sh: &Shared) {
    let o = &sh.opts;
    let mut first = true;
    // When the link was last without a connection (since the start, or the last loss).
    let mut down_since = Instant::now();
    let mut broke_at: Option<Instant> = None;
    loop {
        let stream = match connect(sh, down_since, first) {
            Ok(s) => s,
            Err(why) => {
                let mut st = sh.lock();
                let n = st.queue.iter().map(|b| bytecount_lines(b)).sum::<usize>();
                let why = format!("{why}; {n} queued fragments not delivered");
                st.fatal = Some(format!("merger {}: {why}", o.addr));
                sh.cond.notify_all();
                return;
            }
        };
        let heard = Arc::new((Mutex::new(Heard::default()), AtomicBool::new(false)));
        let reader = match stream.try_clone() {
            Ok(r) => {
                let h = heard.clone();
                std::thread::spawn(move || read_side(r, h))
            }
            Err(e) => {
                sh.say(&format!("cannot use the connection ({e}); reconnecting"));
                std::thread::sleep(BACKOFF_MIN);
                continue;
            }
        };
        let mut s = &stream;
        let mut ok = match &o.auth {
            Some(a) => s.write_all(format!("auth {a}\n").as_bytes()).is_ok(),
            None => true,
        };
        {
            let mut st = sh.lock();
            st.connected = true;
            if let Some(at) = broke_at.take() {
                sh.say(&format!(
                    "connected again after {:.1} s; re-sending the windows held",
                    down_since.elapsed().as_secs_f64()
                ));
                st.resend = Some(at);
            }
            sh.cond.notify_all();
        }
        first = false;
        // Write until the connection breaks or the link is closed.
        let mut clean = false;
        let mut last_write = Instant::now();
        while ok {
            let mut st = sh.lock();
            if heard.1.load(Ordering::Relaxed) {
                break;
            }
            let Some(batch) = st.queue.pop_front() else {
                if st.closing && st.resend.is_none() {
                    drop(st);
                    clean = finish(&stream, &heard);
                    break;
                }
                if last_write.elapsed() >= KEEPALIVE {
                    drop(st);
                    last_write = Instant::now();
                    ok = s.write_all(b"\n").is_ok();
                    continue;
                }
                let _ = sh.cond.wait_timeout(st, POLL);
                continue;
            };
            drop(st);
            last_write = Instant::now();
            if s.write_all(&batch).is_ok() {
                let mut st = sh.lock();
                st.queued -= batch.len();
                sh.cond.notify_all();
            } else {
                // Not known to be taken: written again on the next connection (harmless).
                let mut st = sh.lock();
                st.queue.push_front(batch);
                ok = false;
            }
        }
        let _ = stream.shutdown(Shutdown::Both);
        let _ = reader.join();
        let h = heard.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = sh.lock();
        st.connected = false;
        if clean {
            st.closed = true;
            sh.cond.notify_all();
            return;
        }
        if let Some(reason) = &h.refusal {
            if reason.contains("authenticat") {
                st.fatal = Some(format!("merger {}: refused: {reason}", o.addr));
                sh.cond.notify_all();
                return;
            }
            sh.say(&format!("refused: {reason}; trying again"));
        } else {
            let why = h
                .error
                .clone()
                .unwrap_or_else(|| "closed by the merger".into());
            sh.say(&format!("connection lost ({why}); reconnecting"));
        }
        let now = Instant::now();
        broke_at = Some(now);
        down_since = now;
        sh.cond.notify_all();
    }
}

fn bytecount_lines(b: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', b).count()
}

/// Shut the write side, then wait for the merger to close its own, which it does once it
/// has read everything; true if it did without a refusal.
fn finish(stream: &TcpStream, heard: &Arc<(Mutex<Heard>, AtomicBool)>) -> bool {
    if stream.shutdown(Shutdown::Write).is_err() {
        return false;
    }
    let until = Instant::now() + CLOSE_WAIT;
    while !heard.1.load(Ordering::Relaxed) {
        if Instant::now() >= until {
            // Written, but the merger did not say it read it all: closed anyway.
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let h = heard.0.lock().unwrap_or_else(|e| e.into_inner());
    h.refusal.is_none() && h.error.is_none()
}

/// Connect with exponential backoff, for at most `wait` since `down_since`.
fn connect(
    sh: &Shared,
    down_since: Instant,
    first: bool,
) -> std::result::Result<TcpStream, String> {
    let o = &sh.opts;
    let mut backoff = BACKOFF_MIN;
    let mut told = false;
    loop {
        let err = match resolve(&o.addr) {
            Ok(addrs) => {
                let mut last = String::from("no address");
                let mut got = None;
                for a in addrs {
                    let left = o.wait.saturating_sub(down_since.elapsed());
                    let t = CONNECT_TIMEOUT.min(left).max(Duration::from_millis(10));
                    match TcpStream::connect_timeout(&a, t) {
                        Ok(s) => {
                            got = Some(s);
                            break;
                        }
                        Err(e) => last = crate::error::io_reason(&e),
                    }
                }
                match got {
                    Some(s) => {
                        let _ = s.set_nodelay(true);
                        if told && first {
                            sh.say("reachable");
                        }
                        return Ok(s);
                    }
                    None => last,
                }
            }
            Err(e) => e,
        };
        let waited = down_since.elapsed();
        if waited >= o.wait {
            let what = if first {
                "never reachable"
            } else {
                "unreachable"
            };
            return Err(format!(
                "{what} for {} (--connect-wait): {err}",
                show_duration(o.wait)
            ));
        }
        if !told {
            told = true;
            sh.say(&format!(
                "cannot connect ({err}); trying again for up to {} (--connect-wait)",
                show_duration(o.wait)
            ));
        }
        let jitter = Duration::from_millis(
            (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
                % 50) as u64,
        );
        std::thread::sleep((backoff + jitter).min(o.wait.saturating_sub(waited)));
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn resolve(addr: &str) -> std::result::Result<Vec<SocketAddr>, String> {
    addr.to_socket_addrs()
        .map(|a| a.collect())
        .map_err(|e| format!("cannot resolve {addr}: {}", crate::error::io_reason(&e)))
}

fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Windows forgotten by the tool, by when, kept for [`SUSPECT`]: those forgotten shortly
/// before a connection broke are the ones a re-send cannot cover.
#[derive(Default)]
pub struct Forgotten {
    recent: VecDeque<(Instant, u64)>,
}

impl Forgotten {
    /// `n` windows were forgotten just now.
    pub fn add(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        let now = Instant::now();
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > SUSPECT * 4)
        {
            self.recent.pop_front();
        }
        self.recent.push_back((now, n));
    }

    /// Windows forgotten within [`SUSPECT`] before `broke`.
    pub fn before(&self, broke: Instant) -> u64 {
        self.recent
            .iter()
            .filter(|(t, _)| *t <= broke && broke.duration_since(*t) <= SUSPECT)
            .map(|(_, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
        assert_eq!(show_duration(Duration::from_secs(300)), "5m");
        assert_eq!(show_duration(Duration::from_secs(2)), "2s");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn token_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "web1:0123456789abcdef\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_token_file(&p).unwrap(), "web1:0123456789abcdef");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token_file(&p).unwrap_err().to_string();
        assert!(e.contains("readable by every user"), "{e}");
        assert!(!e.contains("0123456789abcdef"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&p, "no-colon-secret\n").unwrap();
        let e = read_token_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("expected NAME:TOKEN") && !e.contains("secret"),
            "{e}"
        );
    }

    #[test]
    fn forgotten_windows_near_a_break_are_counted() {
        let mut f = Forgotten::default();
        f.add(3);
        f.add(0);
        f.add(2);
        let now = Instant::now();
        assert_eq!(f.before(now), 5);
        // Forgotten after the break: queued, not at risk.
        assert_eq!(f.before(now - Duration::from_secs(1)), 0);
    }
}
