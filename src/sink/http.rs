//! The original Heroku Pulse emitter's HTTP body, POSTed to each metrics URL.
//!
//! The body is a JSON list with one object per value of each snapshot:
//!
//! ```json
//! [{"metric":"router.status.200.count","value":12,"measure_time":1431856800,"measure_period":60}]
//! ```
//!
//! `metric` is `stat[.key].name` as written (no cleaning), `measure_time` the window start
//! and `measure_period` its length in seconds. Credentials in the URL's user info
//! (`https://user:token@host/path`) are sent as HTTP basic auth and never shown in messages.
//! Each request has 5 s timeouts and is tried up to 3 times, with backoff, when the server is
//! unreachable or answers 408, 429 or 5xx; any other non-2xx status fails at once.

use std::time::Duration;

use super::{Backoff, Sink};
use crate::error::{Error, Result};
use crate::record::Snapshot;

/// Values per request: big batches are split so that one request stays small.
const VALUES_PER_POST: usize = 1000;

/// A metrics URL split into what is requested and what is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL without user info and fragment: what is requested.
    pub url: String,
    /// `Basic ...` when the URL had user info.
    pub auth: Option<String>,
    /// The URL as messages show it (see [`redact`]).
    pub shown: String,
    /// The secret strings of the URL (user info, raw and decoded, and the values of
    /// token-like query parameters), scrubbed from any message that might repeat them.
    secrets: Vec<String>,
}

/// A URL taken apart: `scheme://[userinfo@]host[:port][/path][?query][#fragment]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    host: &'a str,
    /// Path and query, without the fragment (may be empty).
    rest: &'a str,
}

/// True for `host`, `host:port`, `[v6]`, `[v6]:port` with a numeric port.
fn valid_host_port(s: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok();
    if let Some(r) = s.strip_prefix('[') {
        let Some((h, p)) = r.split_once(']') else {
            return false;
        };
        let h_ok = !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit() || ":.".contains(c));
        return h_ok && (p.is_empty() || p.strip_prefix(':').is_some_and(port_ok));
    }
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_~%".contains(c));
    host_ok && port.is_none_or(port_ok)
}

/// Split a URL. User info is what comes before the `@` of the authority; a password may
/// hold `/`, `?` or `#` unencoded (`https://user:pa/ss@host/`): when the authority as RFC 3986
/// reads it is not a valid `host[:port]` and an `@` follows, the user info runs to the first
/// later `@` that is followed by a valid `host[:port]`. A user name without a password must
/// percent-encode them.
fn split_url(s: &str) -> Option<Parts<'_>> {
    let (scheme, rest) = s.split_once("://")?;
    let delim = |t: &str| t.find(['/', '?', '#']).unwrap_or(t.len());
    let end = delim(rest);
    let authority = &rest[..end];
    let (userinfo, host, after) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..], &rest[end..]),
        None if !valid_host_port(authority) && authority.contains(':') => {
            // An unencoded `/`, `?` or `#` in a password.
            let mut found = None;
            let mut first = None;
            for (i, _) in rest.match_indices('@').filter(|(i, _)| *i > end) {
                let tail = &rest[i + 1..];
                let hp = &tail[..delim(tail)];
                let split = (&rest[..i], hp, &tail[hp.len()..]);
                first.get_or_insert(split);
                if !hp.contains('@') && valid_host_port(hp) {
                    found = Some(split);
                    break;
                }
            }
            // No valid host after any `@`: still keep what precedes the first one out of
            // sight (the URL is refused).
            let found = found.or(first);
            match found {
                Some((ui, hp, after)) => (Some(ui), hp, after),
                None => (None, authority, &rest[end..]),
            }
        }
        None => (None, authority, &rest[end..]),
    };
    let rest = after.split('#').next().unwrap_or("");
    Some(Parts {
        scheme,
        userinfo,
        host,
        rest,
    })
}

/// True for query parameter names that carry credentials.
fn is_secret_param(name: &str) -> bool {
    let n = percent_decode(name).to_ascii_lowercase().replace('-', "_");
    const WORDS: [&str; 9] = [
        "token",
        "secret",
        "password",
        "passwd",
        "key",
        "auth",
        "sig",
        "credential",
        "session",
    ];
    WORDS.iter().any(|w| n.contains(w)) || matches!(n.as_str(), "pass" | "pwd" | "pw" | "code")
}

/// The query with the values of token-like parameters replaced by `REDACTED`.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_param(k) => format!("{k}=REDACTED"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A URL as it may be shown: no user info, no fragment, and `REDACTED` for the values of
/// query parameters that look like credentials (`api_key`, `token`, `secret`, `password`,
/// `auth`, `sig`, ...). Every message that names a URL goes through this.
pub fn redact(s: &str) -> String {
    let s = s.trim();
    match split_url(s) {
        Some(p) => {
            let (path, query) = match p.rest.split_once('?') {
                Some((a, q)) => (a, Some(q)),
                None => (p.rest, None),
            };
            let mut out = format!("{}://{}{}", p.scheme, p.host, path);
            if let Some(q) = query {
                out.push('?');
                out.push_str(&redact_query(q));
            }
            out
        }
        // Not a URL: show at most what follows the last `@`, without a query.
        None => {
            let tail = s.rsplit('@').next().unwrap_or("");
            tail.split(['?', '#']).next().unwrap_or("").to_string()
        }
    }
}

impl Target {
    /// Split `https://user:pass@host/path`; only `http` and `https` are accepted.
    pub fn parse(s: &str) -> Result<Target> {
        let s = s.trim();
        let shown = redact(s);
        let Some(p) = split_url(s) else {
            return Err(Error::Usage(format!("metrics URL {shown:?}: no scheme")));
        };
        if !p.scheme.eq_ignore_ascii_case("http") && !p.scheme.eq_ignore_ascii_case("https") {
            return Err(Error::Usage(format!(
                "metrics URL {shown:?}: scheme must be http or https"
            )));
        }
        if p.host.is_empty() {
            return Err(Error::Usage(format!("metrics URL {shown:?}: no host")));
        }
        if !valid_host_port(p.host) {
            return Err(Error::Usage(format!(
                "metrics URL {shown:?}: bad host or port (percent-encode `/`, `?`, `#` and `@` in user names and passwords)"
            )));
        }
        let mut secrets = Vec::new();
        let auth = p.userinfo.map(|ui| {
            let (user, pass) = ui.split_once(':').unwrap_or((ui, ""));
            let (user, pass) = (percent_decode(user), percent_decode(pass));
            for x in [ui, &user, &pass] {
                secrets.push(x.to_string());
            }
            let creds = format!("{user}:{pass}");
            format!("Basic {}", base64(creds.as_bytes()))
        });
        if let Some((_, q)) = p.rest.split_once('?') {
            for (k, v) in q.split('&').filter_map(|kv| kv.split_once('=')) {
                if is_secret_param(k) {
                    secrets.push(v.to_string());
                    secrets.push(percent_decode(v));
                }
            }
        }
        secrets.retain(|x| x.len() >= 3);
        secrets.sort_by_key(|x| std::cmp::Reverse(x.len()));
        secrets.dedup();
        Ok(Target {
            url: format!("{}://{}{}", p.scheme, p.host, p.rest),
            auth,
            shown,
            secrets,
        })
    }

    /// `msg` with every secret of this URL replaced by `REDACTED` (for messages of the HTTP
    /// library, which may quote the URL it was given).
    pub fn scrub(&self, msg: &str) -> String {
        let mut out = msg.replace(&self.url, &self.shown);
        for s in &self.secrets {
            out = out.replace(s.as_str(), "REDACTED");
        }
        out
    }
}

/// Where a redirect's `Location` points, resolved against the URL that was requested.
fn resolve(base: &str, location: &str) -> String {
    let location = location.trim();
    if location.contains("://") {
        return location.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    if let Some(l) = location.strip_prefix("//") {
        return format!("{scheme}://{l}");
    }
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..host_end]);
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = rest[host_end..].split('?').next().unwrap_or("");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    format!("{origin}{dir}{location}")
}

/// `scheme://host:port` of a URL, lower case, for telling whether a redirect leaves it.
fn origin(url: &str) -> String {
    match split_url(url) {
        Some(p) => format!("{}://{}", p.scheme, p.host).to_ascii_lowercase(),
        None => String::new(),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard base64 with padding (for the basic auth header).
fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// The JSON body objects for `snaps`, one per value.
pub fn body_items(snaps: &[Snapshot]) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    for s in snaps {
        for (name, &value) in &s.values {
            let metric = match &s.key {
                Some(k) => format!("{}.{}.{}", s.stat, k, name),
                None => format!("{}.{}", s.stat, name),
            };
            items.push(serde_json::json!({
                "metric": metric,
                "value": value,
                "measure_time": s.start,
                "measure_period": s.secs,
            }));
        }
    }
    items
}

/// Redirects (307 and 308) followed for one POST.
const MAX_HOPS: usize = 5;

/// POSTs to one metrics URL.
pub struct Http {
    target: Target,
    agent: ureq::Agent,
    tries: u32,
    backoff: Backoff,
}

impl Http {
    /// `timeout` bounds each request as a whole (connect, send, answer).
    pub fn new(target: Target, tries: u32, timeout: Duration) -> Http {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            // Redirects are handled in `post`: ureq would replay a 301/302 as a GET.
            .max_redirects(0)
            .user_agent(concat!("pulse-emit/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            target,
            agent: config.into(),
            tries: tries.max(1),
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(5)),
        }
    }

    /// One POST: `Ok` on 2xx; `Err((message, retry))` otherwise. A 307 or 308 is followed
    /// as a POST of the same body (up to [`MAX_HOPS`] times; credentials only within the
    /// same origin, never from https to http); 301, 302 and 303, which clients replay as a
    /// bodiless GET, are failures naming where they point.
    fn post(&self, body: &[u8]) -> std::result::Result<(), (String, bool)> {
        let home = origin(&self.target.url);
        let mut url = self.target.url.clone();
        for hop in 0..=MAX_HOPS {
            let mut req = self
                .agent
                .post(&url)
                .header("Content-Type", "application/json");
            if let Some(auth) = &self.target.auth {
                if origin(&url) == home {
                    req = req.header("Authorization", auth);
                }
            }
            let resp = req
                .send(body)
                .map_err(|e| (self.target.scrub(&e.to_string()), true))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            let code = status.as_u16();
            let reason = status.canonical_reason().unwrap_or("");
            let what = format!("HTTP {code} {reason}").trim_end().to_string();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(|l| resolve(&url, l));
                let Some(next) = location else {
                    return Err((format!("{what} without a Location"), false));
                };
                let shown = redact(&next);
                if code != 307 && code != 308 {
                    return Err((
                        format!(
                            "{what}, redirected to {shown}: not followed (a POST redirected so would be replayed as a GET without its body); use that URL, or have the server answer 307 or 308"
                        ),
                        false,
                    ));
                }
                if url.starts_with("https:") && next.starts_with("http:") {
                    return Err((
                        format!("{what}, redirected to {shown}: not followed from https to http"),
                        false,
                    ));
                }
                if hop == MAX_HOPS {
                    return Err((
                        format!("{what}: more than {MAX_HOPS} redirects, last to {shown}"),
                        false,
                    ));
                }
                url = next;
                continue;
            }
            let retry = code == 408 || code == 429 || status.is_server_error();
            return Err((what, retry));
        }
        unreachable!("the loop returns")
    }
}

impl Http {
    /// POST one JSON body, trying up to `tries` times with backoff when the server is
    /// unreachable or answers 408, 429 or 5xx; the error is one line naming the URL (without
    /// its secrets) and the number of tries.
    pub fn deliver(&mut self, body: &[u8]) -> Result<()> {
        let mut attempt = 1;
        loop {
            match self.post(body) {
                Ok(()) => {
                    self.backoff.reset();
                    return Ok(());
                }
                Err((msg, retry)) => {
                    if !retry || attempt >= self.tries {
                        let s = if attempt == 1 { "try" } else { "tries" };
                        return Err(Error::Runtime(format!(
                            "POST {}: {msg} (after {attempt} {s})",
                            self.target.shown
                        )));
                    }
                    attempt += 1;
                    std::thread::sleep(self.backoff.next_delay());
                }
            }
        }
    }

    /// The URL as messages show it.
    pub fn shown(&self) -> &str {
        &self.target.shown
    }
}

impl Sink for Http {
    fn name(&self) -> String {
        format!("POST {}", self.target.shown)
    }

    fn send(&mut self, batch: &[Snapshot]) -> Result<()> {
        let items = body_items(batch);
        for chunk in items.chunks(VALUES_PER_POST) {
            let body = serde_json::to_vec(chunk).map_err(|e| Error::Runtime(e.to_string()))?;
            self.deliver(&body)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_user_info_becomes_basic_auth() {
        let t =
            Target::parse("https://user:p%40ss@metrics.example.com:8443/v1/metrics?x=1").unwrap();
        assert_eq!(t.url, "https://metrics.example.com:8443/v1/metrics?x=1");
        // base64("user:p@ss")
        assert_eq!(t.auth.as_deref(), Some("Basic dXNlcjpwQHNz"));
        let t = Target::parse("http://localhost:1/").unwrap();
        assert_eq!(t.auth, None);
        let e = Target::parse("ftp://u:secret@h/").unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
        assert!(Target::parse("http:///x").is_err());
        assert!(Target::parse("nourl").is_err());
    }

    #[test]
    fn unencoded_delimiters_in_passwords_and_redaction() {
        for (raw, host, auth_plain) in [
            (
                "https://u:pa/ss@h.example:8443/m?x=1",
                "h.example:8443",
                "u:pa/ss",
            ),
            ("https://u:pa?ss@h.example/m", "h.example", "u:pa?ss"),
            ("https://u:pa#ss@h.example/m", "h.example", "u:pa#ss"),
            ("https://u:a/b@c@h.example/m", "h.example", "u:a/b@c"),
            ("https://u:p%2Fq%3F%23@h.example/m", "h.example", "u:p/q?#"),
        ] {
            let t = Target::parse(raw).unwrap();
            assert_eq!(
                t.url,
                format!(
                    "https://{host}/m{}",
                    if raw.contains("x=1") { "?x=1" } else { "" }
                ),
                "{raw}"
            );
            assert_eq!(
                t.auth,
                Some(format!("Basic {}", base64(auth_plain.as_bytes()))),
                "{raw}"
            );
            assert!(
                !t.shown.contains("pa") && !t.shown.contains('@'),
                "{}",
                t.shown
            );
        }
        assert_eq!(
            redact("https://h/m?api_key=abc&x=1&access_token=t0k&Secret=s#frag"),
            "https://h/m?api_key=REDACTED&x=1&access_token=REDACTED&Secret=REDACTED"
        );
        assert_eq!(redact("https://u:p@h/path@x"), "https://h/path@x");
        let t = Target::parse("https://h/m?token=sekrit").unwrap();
        assert_eq!(
            t.scrub("failed https://h/m?token=sekrit and sekrit"),
            "failed https://h/m?token=REDACTED and REDACTED"
        );
        // A path with an @ stays a path.
        assert_eq!(
            Target::parse("https://h.example/users/@me").unwrap().url,
            "https://h.example/users/@me"
        );
    }

    #[test]
    fn locations_resolve_against_the_request() {
        assert_eq!(resolve("http://h:1/a/b?q", "/c"), "http://h:1/c");
        assert_eq!(resolve("http://h:1/a/b?q", "c"), "http://h:1/a/c");
        assert_eq!(resolve("http://h:1/a/b", "//o:2/x"), "http://o:2/x");
        assert_eq!(resolve("http://h:1/a", "https://o/x"), "https://o/x");
        assert_eq!(origin("http://u:p@H:1/a"), "http://h:1");
    }

    #[test]
    fn base64_padding() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn body_names_metrics_like_the_original() {
        let s = Snapshot {
            stat: "router.status".into(),
            key: Some("200".into()),
            start: 1431856800,
            secs: 60,
            is_final: true,
            values: [("count".to_string(), 12.0)].into_iter().collect(),
        };
        let items = body_items(&[s]);
        assert_eq!(
            items,
            vec![
                serde_json::json!({"metric":"router.status.200.count","value":12.0,"measure_time":1431856800,"measure_period":60})
            ]
        );
    }
}
