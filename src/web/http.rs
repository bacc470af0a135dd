//! A small HTTP/1.1 server for the dashboard: a thread per connection, `GET` and `HEAD`
//! only, one request per connection (`Connection: close`), requests parsed by `httparse`.
//!
//! The page's needs are few (a handful of GET routes and one Server-Sent Events stream per
//! open page), and an event stream wants a plain socket it can write and flush as the
//! history changes; a thread per client is cheap at a dashboard's scale (tens of clients),
//! and at most [`MAX_CONNS`] are served at once.
//!
//! With [`Shared::auth`], every route, the stream included, needs HTTP basic auth; the
//! credentials are checked by [`crate::io::listen::Tokens`], in constant time.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use base64::Engine as _;

use super::dashboard::Dashboard;
use super::routes::{route, Reply};
use super::History;
use crate::io::listen::Tokens;

/// At most this many connections are served at once; more are answered 503.
pub const MAX_CONNS: usize = 512;

/// A request head larger than this is refused.
const MAX_HEAD: usize = 16 * 1024;

/// How often the event stream writes a comment while nothing changes (so that proxies and
/// browsers keep it open, and a closed client is noticed).
const KEEPALIVE: Duration = Duration::from_secs(10);

/// Updates to the event stream are sent at most this often.
const COALESCE: Duration = Duration::from_millis(200);

/// What every connection thread shares.
pub struct Shared {
    pub history: Mutex<History>,
    /// Notified whenever the history changed.
    pub changed: Condvar,
    pub dashboard: Dashboard,
    pub auth: Option<Tokens>,
    conns: AtomicUsize,
    /// The last `/api/stats` reply and the state of the history it was made from: every open
    /// page asks for it on every update, and all but the first get the same bytes.
    stats_cache: Mutex<Option<(StatsKey, Arc<Reply>)>>,
}

/// What `/api/stats` depends on besides the dashboard (which does not change).
type StatsKey = (u64, u64, u64, bool, u64);

fn stats_key(h: &History) -> StatsKey {
    (
        h.version,
        h.ingested,
        h.overflow,
        h.read_done,
        h.read_secs.to_bits(),
    )
}

impl Shared {
    pub fn new(history: History, dashboard: Dashboard, auth: Option<Tokens>) -> Shared {
        Shared {
            history: Mutex::new(history),
            changed: Condvar::new(),
            dashboard,
            auth,
            conns: AtomicUsize::new(0),
            stats_cache: Mutex::new(None),
        }
    }

    /// Run `f` on the history, then wake the event streams.
    pub fn update(&self, f: impl FnOnce(&mut History)) {
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut h);
        drop(h);
        self.changed.notify_all();
    }
}

/// Give the pages freed after building a large reply back to the system: the JSON tree of
/// `/api/stats` takes several times the bytes it serializes to, and glibc keeps the freed
/// pages below a block still held (the reply kept for the next page) resident.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Accept connections forever, each on its own thread.
pub fn serve(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if shared.conns.fetch_add(1, Ordering::SeqCst) >= MAX_CONNS {
            shared.conns.fetch_sub(1, Ordering::SeqCst);
            let _ = write_reply(
                &conn,
                &Reply::error(503, "too many connections"),
                false,
                &[],
            );
            continue;
        }
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("web-conn".into())
            .spawn(move || {
                handle(conn, &s);
                s.conns.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.conns.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A parsed request head.
struct Head {
    method: String,
    path: String,
    query: String,
    authorization: Option<Vec<u8>>,
}

fn read_head(conn: &mut TcpStream) -> Option<Head> {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let target = req.path.unwrap_or("/");
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let authorization = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("authorization"))
                    .map(|h| h.value.to_vec());
                return Some(Head {
                    method: req.method.unwrap_or("").to_string(),
                    path: path.to_string(),
                    query: query.to_string(),
                    authorization,
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            _ => {
                let _ = write_reply(conn, &Reply::error(400, "bad request"), false, &[]);
                return None;
            }
        }
    }
}

/// Whether `Authorization: Basic ...` proves one of the credentials.
pub fn authorized(tokens: &Tokens, header: Option<&[u8]>) -> bool {
    let Some(h) = header else { return false };
    let Some(b64) = h
        .strip_prefix(b"Basic ")
        .or_else(|| h.strip_prefix(b"basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64.trim_ascii()) else {
        return false;
    };
    let mut line = b"auth ".to_vec();
    line.extend_from_slice(&decoded);
    tokens.check(&line).is_some()
}

fn handle(mut conn: TcpStream, shared: &Shared) {
    let Some(head) = read_head(&mut conn) else {
        return;
    };
    let _ = conn.set_read_timeout(None);
    if let Some(tokens) = &shared.auth {
        if !authorized(tokens, head.authorization.as_deref()) {
            let _ = write_reply(
                &conn,
                &Reply::error(401, "authentication required"),
                false,
                &["WWW-Authenticate: Basic realm=\"pulse-web\", charset=\"UTF-8\""],
            );
            return;
        }
    }
    let head_only = head.method == "HEAD";
    if head.method != "GET" && !head_only {
        let _ = write_reply(
            &conn,
            &Reply::error(405, "only GET"),
            false,
            &["Allow: GET, HEAD"],
        );
        return;
    }
    if head.path == "/events" {
        let _ = events(conn, shared);
        return;
    }
    let reply = {
        let h = shared.history.lock().unwrap_or_else(|e| e.into_inner());
        if head.path == "/api/stats" {
            let mut cache = shared.stats_cache.lock().unwrap_or_else(|e| e.into_inner());
            let key = stats_key(&h);
            match &*cache {
                Some((k, r)) if *k == key => r.clone(),
                _ => {
                    let r = Arc::new(route(&head.path, &head.query, &h, &shared.dashboard));
                    *cache = Some((key, r.clone()));
                    release_free_memory();
                    r
                }
            }
        } else {
            Arc::new(route(&head.path, &head.query, &h, &shared.dashboard))
        }
    };
    let _ = write_reply(&conn, &reply, head_only, &[]);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn write_reply(
    mut conn: &TcpStream,
    r: &Reply,
    head_only: bool,
    extra: &[&str],
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    )
    .into_bytes();
    for h in extra {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&r.body);
    }
    conn.write_all(&out)?;
    conn.flush()
}

/// `/events`: Server-Sent Events. `event: update` with the history's version as data, at
/// once and then whenever it changes (at most every [`COALESCE`]); a comment every
/// [`KEEPALIVE`] otherwise. `retry: 1000` has a browser reconnect a second after pulse-web
/// went away.
fn events(mut conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    conn.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\nretry: 1000\n\n",
    )?;
    let mut sent = u64::MAX;
    loop {
        let version = {
            let h = shared.history.lock().unwrap_or_else(|e| e.into_inner());
            let (h, _) = shared
                .changed
                .wait_timeout_while(h, KEEPALIVE, |h| h.version == sent)
                .unwrap_or_else(|e| e.into_inner());
            h.version
        };
        if version == sent {
            conn.write_all(b": keepalive\n\n")?;
        } else {
            conn.write_all(format!("event: update\ndata: {version}\n\n").as_bytes())?;
            sent = version;
            std::thread::sleep(COALESCE);
        }
        conn.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_header_is_checked() {
        let t = Tokens::parse("ops:correct-horse-battery\n", "WEB_AUTH").unwrap();
        let enc = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert!(authorized(
            &t,
            Some(enc("ops:correct-horse-battery").as_bytes())
        ));
        assert!(!authorized(
            &t,
            Some(enc("ops:correct-horse-batterx").as_bytes())
        ));
        assert!(!authorized(
            &t,
            Some(enc("other:correct-horse-battery").as_bytes())
        ));
        assert!(!authorized(&t, Some(b"Bearer x")));
        assert!(!authorized(&t, None));
    }
}
