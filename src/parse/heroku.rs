//! Heroku's own line shapes: `heroku logs` output and the original Pulse syslog lines.
//!
//! `heroku logs`: `TIME SOURCE[DYNO]: MESSAGE` → `time`, `source`, `ps`, `msg` (+ attributes).
//! `heroku[router]:` gives `source: heroku, ps: router`.
//!
//! Original Pulse: `TIME HOST facility.level SOURCE[PID]: - SLOT.INSTANCE@CLOUD MESSAGE`, or
//! with `- SLOT-INSTANCE.CLOUD`, → `time`, `host`, `facility`, `level`, `source`, `ps`,
//! `slot`, `instance_id` (integer), `cloud`, `msg`; an nginx or varnish access message becomes
//! the original's `http_*` fields (see [`super::access::set_http_fields`]), any other message
//! that looks like logfmt its attributes. The colon after the source, the `- SLOT...` part and
//! a `- ` between it and the message are optional.

use super::access::set_http_fields;
use super::scan::{looks_rfc3339, put_new, token};
use super::syslog::{is_facility_level, set_message};
use crate::record::{Event, Val};

/// Split `name[pid]` into its parts (`pid` empty when there are no brackets).
fn name_pid(t: &str) -> (&str, &str) {
    // A byte loop: tags are short, and `str::find` costs more to set up.
    if let Some(open) = t.bytes().position(|c| c == b'[') {
        if let Some(inner) = t[open + 1..].strip_suffix(']') {
            return (&t[..open], inner);
        }
    }
    (t, "")
}

/// A `heroku logs` line.
pub fn parse_heroku_cli(ev: &mut Event, scratch: &mut Vec<u8>, s: &str) -> bool {
    let (time, rest) = token(s);
    if !looks_rfc3339(time) {
        return false;
    }
    let (tag, msg) = token(rest);
    heroku_cli_parts(ev, scratch, time, tag, msg)
}

/// [`parse_heroku_cli`] of a line already split into its time (checked), its tag and the rest.
pub fn heroku_cli_parts(
    ev: &mut Event,
    scratch: &mut Vec<u8>,
    time: &str,
    tag: &str,
    msg: &str,
) -> bool {
    let Some(tag) = tag.strip_suffix(':') else {
        return false;
    };
    let (source, ps) = name_pid(tag);
    if source.is_empty() {
        return false;
    }
    ev.clear();
    put_new(ev, "time", time);
    put_new(ev, "source", source);
    if !ps.is_empty() {
        put_new(ev, "ps", ps);
    }
    set_message(ev, scratch, msg);
    true
}

/// `SLOT.INSTANCE@CLOUD` or `SLOT-INSTANCE.CLOUD`: (slot, instance, cloud).
fn slot_spec(t: &str) -> Option<(&str, i64, &str)> {
    let (left, cloud, sep) = match t.split_once('@') {
        Some((l, c)) => (l, c, '.'),
        None => {
            let (l, c) = t.split_once('.')?;
            (l, c, '-')
        }
    };
    let (slot, inst) = left.rsplit_once(sep)?;
    if cloud.is_empty() || inst.is_empty() || inst.len() > 18 {
        return None;
    }
    if !inst.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((slot, inst.parse().ok()?, cloud))
}

/// An original Pulse syslog line.
pub fn parse_pulse(ev: &mut Event, scratch: &mut Vec<u8>, s: &str) -> bool {
    let (time, rest) = token(s);
    if !looks_rfc3339(time) {
        return false;
    }
    let (host, rest) = token(rest);
    let (fl, mut rest) = token(rest);
    if host.is_empty() || !is_facility_level(fl) {
        return false;
    }
    let (facility, level) = fl.split_once('.').unwrap_or((fl, ""));
    ev.clear();
    ev.set_str("time", time);
    ev.set_str("host", host);
    ev.set_str("facility", facility);
    ev.set_str("level", level);
    // SOURCE[PID]: when it ends with ':' or ']' or is followed by ` - `.
    let (tag, after) = token(rest);
    if !tag.is_empty() && (tag.ends_with(':') || tag.ends_with(']') || after.starts_with("- ")) {
        let (source, ps) = name_pid(tag.strip_suffix(':').unwrap_or(tag));
        if !source.is_empty() {
            ev.set_str("source", source);
            if !ps.is_empty() {
                ev.set_str("ps", ps);
            }
            rest = after;
        }
    }
    if let Some(r) = rest.strip_prefix("- ") {
        let (spec, after) = token(r);
        if let Some((slot, inst, cloud)) = slot_spec(spec) {
            if !slot.is_empty() {
                ev.set_str("slot", slot);
            }
            ev.set("instance_id", Val::Int(inst));
            ev.set_str("cloud", cloud);
            rest = after.strip_prefix("- ").unwrap_or(after);
        } else {
            rest = r;
        }
    }
    let http = matches!(ev.get_str("source"), Some("nginx" | "varnish"));
    if http {
        ev.set_str("msg", rest);
        if set_http_fields(ev, scratch, rest) {
            return true;
        }
        ev.remove("msg");
    }
    set_message(ev, scratch, rest);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(f: fn(&mut Event, &mut Vec<u8>, &str) -> bool, s: &str) -> Option<serde_json::Value> {
        let mut ev = Event::new();
        if !f(&mut ev, &mut Vec::new(), s) {
            return None;
        }
        let mut out = Vec::new();
        ev.write_json(&mut out);
        Some(serde_json::from_slice(&out).unwrap())
    }

    #[test]
    fn heroku_cli_lines() {
        let v = json(parse_heroku_cli, r#"2010-10-06T21:51:37-07:00 heroku[router]: at=error code=H12 desc="Request timeout" service=30001ms status=503 bytes=0"#).unwrap();
        assert_eq!(v["time"], "2010-10-06T21:51:37-07:00");
        assert_eq!(v["source"], "heroku");
        assert_eq!(v["ps"], "router");
        assert_eq!(v["code"], "H12");
        assert_eq!(v["status"], 503);
        let v = json(
            parse_heroku_cli,
            "2011-05-03T17:40:11+00:00 heroku[worker.1]: Error R14 (Memory quota exceeded)",
        )
        .unwrap();
        assert_eq!(v["ps"], "worker.1");
        assert_eq!(v["msg"], "Error R14 (Memory quota exceeded)");
        assert!(v.get("Error").is_none());
        assert!(json(
            parse_heroku_cli,
            "2011-05-03T17:40:11+00:00 host app web.1 - x"
        )
        .is_none());
    }

    #[test]
    fn pulse_lines() {
        let v = json(parse_pulse, r#"2012-01-23T21:24:19-08:00 10.64.78.161 local0.info nginx[21325]: - nginx.3418@heroku.com 127.0.0.1 - - [23/Jan/2012:21:24:19 -0800] "GET /x HTTP/1.1" 200 5 "-" "curl" mumble.heroku.com"#).unwrap();
        assert_eq!(v["time"], "2012-01-23T21:24:19-08:00");
        assert_eq!(v["host"], "10.64.78.161");
        assert_eq!(v["facility"], "local0");
        assert_eq!(v["level"], "info");
        assert_eq!(v["source"], "nginx");
        assert_eq!(v["ps"], "21325");
        assert_eq!(v["slot"], "nginx");
        assert_eq!(v["instance_id"], 3418);
        assert_eq!(v["cloud"], "heroku.com");
        assert_eq!(v["http_host"], "127.0.0.1");
        assert_eq!(v["http_method"], "GET");
        assert_eq!(v["http_url"], "/x");
        assert_eq!(v["http_version"], "1.1");
        assert_eq!(v["http_status"], 200);
        assert_eq!(v["http_bytes"], 5);
        assert_eq!(v["http_referrer"], "-");
        assert_eq!(v["http_user_agent"], "curl");
        assert_eq!(v["http_domain"], "mumble.heroku.com");
        let v = json(parse_pulse, "2012-01-23T21:24:19-08:00 10.1.2.3 local3.err shen[9]: - face-lift-12.herokudev.com at=fail elapsed=1.5 code=").unwrap();
        assert_eq!(v["slot"], "face-lift");
        assert_eq!(v["instance_id"], 12);
        assert_eq!(v["cloud"], "herokudev.com");
        assert_eq!(v["at"], "fail");
        assert_eq!(v["elapsed"], 1.5);
        assert!(v["code"].is_null());
        assert_eq!(v["level"], "err");
        let v = json(
            parse_pulse,
            "2012-01-23T21:24:19-08:00 10.1.2.3 local0.info raw message text",
        )
        .unwrap();
        assert_eq!(v["msg"], "raw message text");
        assert!(v.get("source").is_none());
        assert!(json(parse_pulse, "2012-01-23T21:24:19-08:00 10.1.2.3 web.1 x").is_none());
    }
}
