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
    /// The URL without user info: what is requested.
    pub url: String,
    /// `Basic ...` when the URL had user info.
    pub auth: Option<String>,
}

impl Target {
    /// Split `https://user:pass@host/path`; only `http` and `https` are accepted.
    pub fn parse(s: &str) -> Result<Target> {
        let s = s.trim();
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(Error::Usage(format!(
                "metrics URL {:?}: no scheme",
                redact(s)
            )));
        };
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(Error::Usage(format!(
                "metrics URL {:?}: scheme must be http or https",
                redact(s)
            )));
        }
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(auth_end);
        let (userinfo, host) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(Error::Usage(format!(
                "metrics URL {:?}: no host",
                redact(s)
            )));
        }
        let auth = userinfo.map(|ui| {
            let (user, pass) = ui.split_once(':').unwrap_or((ui, ""));
            let creds = format!("{}:{}", percent_decode(user), percent_decode(pass));
            format!("Basic {}", base64(creds.as_bytes()))
        });
        Ok(Target {
            url: format!("{scheme}://{host}{path}"),
            auth,
        })
    }
}

/// `s` with any user info removed, for messages about a URL that failed to parse.
fn redact(s: &str) -> String {
    match s.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..end].rfind('@') {
                Some(i) => format!("{scheme}://{}", &rest[i + 1..]),
                None => s.to_string(),
            }
        }
        None => s.split('@').next_back().unwrap_or("").to_string(),
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

/// POSTs to one metrics URL.
pub struct Http {
    target: Target,
    agent: ureq::Agent,
    tries: u32,
    backoff: Backoff,
}

impl Http {
    pub fn new(target: Target, tries: u32) -> Http {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .user_agent(concat!("pulse-emit/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            target,
            agent: config.into(),
            tries: tries.max(1),
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(5)),
        }
    }

    /// One POST: `Ok` on 2xx; `Err((message, retry))` otherwise.
    fn post(&self, body: &[u8]) -> std::result::Result<(), (String, bool)> {
        let mut req = self
            .agent
            .post(&self.target.url)
            .header("Content-Type", "application/json");
        if let Some(auth) = &self.target.auth {
            req = req.header("Authorization", auth);
        }
        match req.send(body) {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    return Ok(());
                }
                let code = status.as_u16();
                let retry = code == 408 || code == 429 || status.is_server_error();
                let reason = status.canonical_reason().unwrap_or("");
                Err((
                    format!("HTTP {code} {reason}").trim_end().to_string(),
                    retry,
                ))
            }
            Err(e) => Err((e.to_string(), true)),
        }
    }
}

impl Sink for Http {
    fn name(&self) -> String {
        format!("POST {}", self.target.url)
    }

    fn send(&mut self, batch: &[Snapshot]) -> Result<()> {
        let items = body_items(batch);
        for chunk in items.chunks(VALUES_PER_POST) {
            let body = serde_json::to_vec(chunk).map_err(|e| Error::Runtime(e.to_string()))?;
            let mut attempt = 1;
            loop {
                match self.post(&body) {
                    Ok(()) => {
                        self.backoff.reset();
                        break;
                    }
                    Err((msg, retry)) => {
                        if !retry || attempt >= self.tries {
                            let s = if attempt == 1 { "try" } else { "tries" };
                            return Err(Error::Runtime(format!(
                                "{}: {msg} (after {attempt} {s})",
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
