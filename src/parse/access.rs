//! Apache/nginx access logs (NCSA common and combined):
//! `CLIENT IDENT USER [17/May/2015:10:05:03 +0000] "GET /x HTTP/1.1" 200 5 "REFERRER" "AGENT"`.
//!
//! As an event: `client` (the remote address; not `host`, which names the machine that
//! logged), `ident` and `user` (when not `-`), `time` (RFC 3339, offset as written), `method`,
//! `path`, `protocol` (`HTTP/1.1`) — or `request` when the request line is not three words —,
//! `status` (number), `bytes` (number, `null` when written `-`), `referrer` and `user_agent`
//! (left out when `-`), and `extra` for anything after the user agent. Quoted fields have
//! `\"`, `\\` and `\xNN` undone (a byte that is not UTF-8 keeps its `\xNN`). A user agent with no
//! closing quote runs to the end of the line.

use super::scan::{push_unescaped, quote_end, token};
use crate::record::{Event, Val};

/// The pieces of an access-log line, still escaped.
pub struct Access<'a> {
    pub client: &'a str,
    pub ident: &'a str,
    pub user: &'a str,
    pub time: &'a str,
    pub request: &'a str,
    pub status: &'a str,
    pub bytes: &'a str,
    pub referrer: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub rest: &'a str,
}

/// A quoted field at the start of `s`: its raw text and what follows the closing quote.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('"')?;
    let end = quote_end(inner.as_bytes(), 0);
    Some((&inner[..end], inner.get(end + 1..).unwrap_or("")))
}

/// Split an access-log line; `None` when it is not one.
pub fn split(s: &str) -> Option<Access<'_>> {
    let (client, rest) = token(s);
    let (ident, rest) = token(rest);
    let (user, rest) = token(rest);
    if client.is_empty() || ident.is_empty() || user.is_empty() {
        return None;
    }
    let inner = rest.strip_prefix('[')?;
    let close = memchr::memchr(b']', inner.as_bytes())?;
    let time = &inner[..close];
    let rest = inner[close + 1..].strip_prefix(' ')?;
    let (request, rest) = quoted(rest)?;
    let rest = rest.strip_prefix(' ')?;
    let (status, rest) = token(rest);
    if !(status == "-" || (status.len() == 3 && status.bytes().all(|c| c.is_ascii_digit()))) {
        return None;
    }
    let (bytes, mut rest) = token(rest);
    if bytes != "-" && (bytes.is_empty() || !bytes.bytes().all(|c| c.is_ascii_digit())) {
        return None;
    }
    let mut referrer = None;
    let mut agent = None;
    if let Some((r, after)) = quoted(rest) {
        referrer = Some(r);
        rest = after.strip_prefix(' ').unwrap_or(after);
        if let Some((a, after)) = quoted(rest) {
            agent = Some(a);
            rest = after.strip_prefix(' ').unwrap_or(after);
        }
    }
    Some(Access {
        client,
        ident,
        user,
        time,
        request,
        status,
        bytes,
        referrer,
        agent,
        rest,
    })
}

fn number(ev: &mut Event, key: &str, v: &str) {
    if v == "-" {
        ev.set(key, Val::Null);
    } else if let Ok(n) = v.parse::<i64>() {
        ev.set(key, Val::Int(n));
    } else {
        ev.set_str(key, v);
    }
}

fn text(ev: &mut Event, scratch: &mut Vec<u8>, key: &str, raw: &str) {
    let span = push_unescaped(ev, scratch, raw, true);
    ev.set(key, Val::Str(span));
}

/// Set the `time` field from an access-log stamp; false when it is not one.
fn set_time(ev: &mut Event, stamp: &str) -> bool {
    let mut ok = false;
    let span = ev.build_text(|t| ok = crate::time::apache_to_rfc3339(stamp, t));
    if ok {
        ev.set("time", Val::Str(span));
    }
    ok
}

/// A standalone access-log line.
pub fn parse_access(ev: &mut Event, scratch: &mut Vec<u8>, s: &str) -> bool {
    let Some(a) = split(s) else {
        return false;
    };
    ev.clear();
    ev.set_str("client", a.client);
    if !set_time(ev, a.time) {
        return false;
    }
    if a.ident != "-" {
        ev.set_str("ident", a.ident);
    }
    if a.user != "-" {
        ev.set_str("user", a.user);
    }
    let mut words = a.request.splitn(3, ' ');
    match (words.next(), words.next(), words.next()) {
        (Some(m), Some(p), Some(v)) if !m.is_empty() && !p.is_empty() && !v.contains(' ') => {
            ev.set_str("method", m);
            text(ev, scratch, "path", p);
            ev.set_str("protocol", v);
        }
        _ => text(ev, scratch, "request", a.request),
    }
    number(ev, "status", a.status);
    number(ev, "bytes", a.bytes);
    if let Some(r) = a.referrer.filter(|r| *r != "-") {
        text(ev, scratch, "referrer", r);
    }
    if let Some(u) = a.agent.filter(|u| *u != "-") {
        text(ev, scratch, "user_agent", u);
    }
    if !a.rest.is_empty() {
        text(ev, scratch, "extra", a.rest);
    }
    true
}

/// The original Pulse's `http_*` fields for an nginx or varnish access message carried in a
/// Pulse syslog line: `http_host` (the client address, as the original named it),
/// `http_method`, `http_url`, `http_version` (`1.1`), `http_status`, `http_bytes`,
/// `http_referrer`, `http_user_agent`, `http_domain` (the trailing virtual host). The
/// envelope's `time` is kept. False (and nothing set) when `msg` is not an access line.
pub fn set_http_fields(ev: &mut Event, scratch: &mut Vec<u8>, msg: &str) -> bool {
    let Some(a) = split(msg) else {
        return false;
    };
    ev.set_str("http_host", a.client);
    let mut words = a.request.splitn(3, ' ');
    if let (Some(m), Some(u), Some(v)) = (words.next(), words.next(), words.next()) {
        ev.set_str("http_method", m);
        text(ev, scratch, "http_url", u);
        ev.set_str("http_version", v.strip_prefix("HTTP/").unwrap_or(v));
    }
    number(ev, "http_status", a.status);
    number(ev, "http_bytes", a.bytes);
    if let Some(r) = a.referrer {
        text(ev, scratch, "http_referrer", r);
    }
    if let Some(u) = a.agent {
        text(ev, scratch, "http_user_agent", u);
    }
    if !a.rest.is_empty() {
        ev.set_str("http_domain", a.rest.trim());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<serde_json::Value> {
        let mut ev = Event::new();
        if !parse_access(&mut ev, &mut Vec::new(), s) {
            return None;
        }
        let mut out = Vec::new();
        ev.write_json(&mut out);
        Some(serde_json::from_slice(&out).unwrap())
    }

    #[test]
    fn combined_line() {
        let v = p(r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash-monitorama-2013/images/kibana-search.png HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/logstash-monitorama-2013/" "Mozilla/5.0 (Macintosh)""#).unwrap();
        assert_eq!(v["client"], "83.149.9.216");
        assert_eq!(v["time"], "2015-05-17T10:05:03+00:00");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["protocol"], "HTTP/1.1");
        assert_eq!(v["status"], 200);
        assert_eq!(v["bytes"], 203023);
        assert_eq!(
            v["referrer"],
            "http://semicomplete.com/presentations/logstash-monitorama-2013/"
        );
        assert_eq!(v["user_agent"], "Mozilla/5.0 (Macintosh)");
        assert!(v.get("ident").is_none());
    }

    #[test]
    fn escapes_dashes_and_unterminated_agent() {
        let v = p(r#"1.2.3.4 - bob [17/May/2015:10:05:03 -0700] "GET /a\"b HTTP/1.0" 304 - "http://\xe4\x41" "Googlebot (+http://www.google.com/bot.html)"#).unwrap();
        assert_eq!(v["user"], "bob");
        assert_eq!(v["time"], "2015-05-17T10:05:03-07:00");
        assert_eq!(v["path"], "/a\"b");
        assert!(v["bytes"].is_null());
        // Not UTF-8 (Latin-1 ä): kept as written rather than lost to U+FFFD.
        assert_eq!(v["referrer"], "http://\\xe4A");
        assert_eq!(
            v["user_agent"],
            "Googlebot (+http://www.google.com/bot.html)"
        );
        let v = p(r#"host.example - - [17/May/2015:10:05:03 +0000] "\x16\x03" 400 0"#).unwrap();
        assert!(v.get("method").is_none());
        assert_eq!(v["request"], "\u{16}\u{3}");
        let v = p(r#"1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET /caf\xc3\xa9 HTTP/1.1" 200 1"#)
            .unwrap();
        assert_eq!(v["path"], "/café");
        assert!(p("1.2.3.4 - - 17/May/2015 \"GET / HTTP/1.1\" 200 1").is_none());
        assert!(p("1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 2000 1").is_none());
    }
}
