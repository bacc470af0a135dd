//! Syslog headers: RFC 5424 (`<PRI>1 TIME HOST APP PROCID MSGID [SD] MSG`, as Logplex sends
//! it, and its drain-to-file form without `<PRI>1`) and RFC 3164 / BSD
//! (`<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`).
//!
//! Fields: `time` (as written for RFC 5424; BSD stamps become RFC 3339 in UTC), `host`
//! (HOSTNAME), `source` (APP-NAME or tag), `ps` (PROCID or `[pid]`), `facility` and `level`
//! (names, from PRI when present), `msgid` (when not `-`), `sd` (the structured data, raw,
//! when not `-` or `[]`), `msg`, then the message's attributes when it looks like logfmt.
//! NILVALUE (`-`) fields are left out.
//!
//! Leniency, because real senders bend the RFC: Logplex leaves out STRUCTURED-DATA, so the
//! token after MSGID is read as SD only when it is `-` or starts with `[` (a message that
//! starts with `- ` loses that dash); a MSGID holding `=` is taken as the start of the message
//! (a sender that dropped PROCID); runs of spaces between header fields are accepted.

use super::logfmt::{looks_logfmt, parse_attrs_at};
use super::scan::{looks_rfc3339, put_new, put_new_val, skip_spaces, token};
use super::stamp::{Ctx, Stamp, Zone};
use crate::record::{Event, Val};

/// A BSD stamp (`Feb 13 20:07:26`, `Feb  3 20:07:26`, exactly 15 bytes), without its year.
#[cfg(test)]
fn bsd_stamp(s: &str) -> Option<Stamp<'static>> {
    let b = s.as_bytes();
    bsd_stamp_of(b, crate::time::month_from_abbrev(b.get(..3)?)?)
}

/// [`bsd_stamp`] of bytes whose first three name `month` (already read by the caller).
#[inline]
fn bsd_stamp_of(b: &[u8], month: u32) -> Option<Stamp<'static>> {
    if b.len() != 15 || b[3] != b' ' || b[6] != b' ' || b[9] != b':' || b[12] != b':' {
        return None;
    }
    let day = match (b[4], b[5]) {
        (b' ', d) if d.is_ascii_digit() => (d - b'0') as u32,
        (a, d) if a.is_ascii_digit() && d.is_ascii_digit() => ((a - b'0') * 10 + d - b'0') as u32,
        _ => return None,
    };
    let two = |i: usize| -> Option<u32> {
        let (a, c) = (b[i], b[i + 1]);
        (a.is_ascii_digit() && c.is_ascii_digit()).then(|| ((a - b'0') * 10 + c - b'0') as u32)
    };
    let (hour, min, sec) = (two(7)?, two(10)?, two(13)?);
    let max_day = match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=max_day).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    Some(Stamp {
        year: None,
        month,
        day,
        hour,
        min,
        sec,
        frac: "",
        zone: Zone::Local,
    })
}

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];
pub const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// True for `facility.level` as the original Pulse lines carry it (`local0.info`).
pub fn is_facility_level(t: &str) -> bool {
    let Some((f, l)) = t.split_once('.') else {
        return false;
    };
    FACILITIES.contains(&f)
        && (SEVERITIES.contains(&l) || matches!(l, "error" | "warn" | "emergency" | "panic"))
}

/// A `<PRI>` prefix: its value (0..=191) and what follows.
#[inline]
pub fn pri(s: &str) -> Option<(u8, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'<') {
        return None;
    }
    let mut v: u32 = 0;
    let mut i = 1;
    while i < b.len() && i <= 4 && b[i].is_ascii_digit() {
        v = v * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    if i == 1 || i > 4 || b.get(i) != Some(&b'>') || v > 191 {
        return None;
    }
    Some((v as u8, &s[i + 1..]))
}

/// Set `facility` and `level` from a PRI value, on an event that holds neither yet (its
/// envelope being read).
pub fn set_pri(ev: &mut Event, pri: u8) {
    put_new(ev, "facility", FACILITIES[(pri >> 3) as usize]);
    put_new(ev, "level", SEVERITIES[(pri & 7) as usize]);
}

/// Set `msg` and, when it looks like logfmt, its attributes.
#[inline]
pub fn set_message(ev: &mut Event, scratch: &mut Vec<u8>, msg: &str) {
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    let at = put_new(ev, "msg", msg);
    if looks_logfmt(msg) {
        parse_attrs_at(ev, scratch, msg, Some(at.start));
    }
}

/// Append an envelope field unless it is NILVALUE (the event holds no such field yet).
#[inline]
fn set_unless_nil(ev: &mut Event, key: &str, v: &str) {
    if !v.is_empty() && v != "-" {
        put_new(ev, key, v);
    }
}

/// The byte index just past a run of SD elements starting at `i` (`[...]`, with `\]`
/// escapes), or the end of `b` when one is unclosed.
fn sd_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] == b'[' {
        i += 1;
        // PARAM-VALUEs must escape `]`, so the first unescaped one closes the element
        // (even when a sender forgot a closing quote).
        while i < b.len() {
            match b[i] {
                b'\\' => i += 1,
                b']' => break,
                _ => {}
            }
            i += 1;
        }
        if i >= b.len() {
            return b.len();
        }
        i += 1;
    }
    i
}

/// An RFC 5424 line: `<PRI>VERSION TIME HOST APP PROCID MSGID SD MSG`.
pub fn parse_rfc5424(ev: &mut Event, scratch: &mut Vec<u8>, s: &str) -> bool {
    let Some((p, rest)) = pri(s) else {
        return false;
    };
    let (ver, rest) = token(rest);
    if ver.is_empty() || ver.len() > 2 || !ver.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    header_fields(ev, scratch, rest, Some(p))
}

/// The fields after `<PRI>VERSION ` (or the whole drain-to-file line `TIME HOST APP PROCID
/// [MSGID] MSG`).
pub fn header_fields(ev: &mut Event, scratch: &mut Vec<u8>, s: &str, pri: Option<u8>) -> bool {
    let (time, rest) = token(skip_spaces(s));
    let (host, rest) = token(skip_spaces(rest));
    let (app, rest) = token(skip_spaces(rest));
    if time.is_empty() || host.is_empty() || app.is_empty() {
        return false;
    }
    if time != "-" && !time.as_bytes()[0].is_ascii_digit() {
        return false;
    }
    let mut rest = skip_spaces(rest);
    let mut procid = "-";
    let mut msgid = "-";
    if !rest.is_empty() {
        let (t, r) = token(rest);
        if t.contains('=') {
            // PROCID missing: this is already the message.
        } else {
            procid = t;
            rest = skip_spaces(r);
            let (t, r) = token(rest);
            if !t.contains('=') {
                msgid = t;
                rest = r;
            }
        }
    }
    let mut sd = "";
    if rest == "-" {
        rest = "";
    } else if let Some(r) = rest.strip_prefix("- ") {
        rest = r;
    } else if rest.starts_with('[') {
        let end = sd_end(rest.as_bytes(), 0);
        sd = &rest[..end];
        rest = rest[end..].strip_prefix(' ').unwrap_or(&rest[end..]);
    }
    ev.clear();
    set_unless_nil(ev, "time", time);
    set_unless_nil(ev, "host", host);
    set_unless_nil(ev, "source", app);
    set_unless_nil(ev, "ps", procid);
    if let Some(p) = pri {
        set_pri(ev, p);
    }
    set_unless_nil(ev, "msgid", msgid);
    if !sd.is_empty() && sd != "[]" {
        let v = ev.push_text(sd);
        ev.set("sd", Val::Str(v));
    }
    set_message(ev, scratch, rest);
    true
}

/// True for a syslog tag: `name[pid]:` or `name:` (a name of letters, digits and `._/-`).
pub fn is_tag(t: &str) -> bool {
    let Some(t) = t.strip_suffix(':') else {
        return false;
    };
    let name = match t.find('[') {
        Some(open) => {
            let pid = &t[open + 1..];
            if !pid.ends_with(']') || pid.len() < 2 || pid[..pid.len() - 1].contains([' ', '[']) {
                return false;
            }
            &t[..open]
        }
        None => t,
    };
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'/' | b'@'))
}

/// True when `rest` (what follows the time of a line) has the unambiguous shape of the
/// drain-to-file form `HOST APP PROCID MSGID [SD] MSG`: a NILVALUE `-` for PROCID or MSGID, a
/// structured-data element or `-` after MSGID, or a PROCID with the message's first
/// `key=value` right after it (a sender that drops MSGID). Anything else (an application
/// log's `0 [Note] [MY-012487] ...`) is not taken for it.
pub fn drain_shape(rest: &str) -> bool {
    let (host, r) = token(skip_spaces(rest));
    let (app, r) = token(skip_spaces(r));
    let (procid, r) = token(skip_spaces(r));
    let (msgid, r) = token(skip_spaces(r));
    let (sd, _) = token(skip_spaces(r));
    if host.is_empty() || app.is_empty() || app.ends_with(':') || host.ends_with(':') {
        return false;
    }
    procid == "-"
        || (!procid.is_empty() && msgid == "-")
        || (!procid.is_empty()
            && !msgid.is_empty()
            && (sd == "-" || sd.starts_with('['))
            && !msgid.starts_with('['))
        || (!procid.is_empty() && !procid.starts_with('[') && msgid.contains('='))
}

/// An RFC 3164 (BSD) line, with or without `<PRI>`, with a BSD stamp (`Feb  3 20:07:26`,
/// its year and zone from `ctx`, see [`super::stamp`]) or an RFC 3339 one.
pub fn parse_rfc3164(ev: &mut Event, scratch: &mut Vec<u8>, s: &str, ctx: &Ctx) -> bool {
    let (p, rest) = match pri(s) {
        Some((p, r)) => (Some(p), r),
        None => (None, s),
    };
    ev.clear();
    // `Feb 3 20:07:26`, a one-digit day after one space (some senders do not pad), is
    // `Feb  3 20:07:26` one byte short.
    let b = rest.as_bytes();
    let unpadded = b.len() >= 14 && b[3] == b' ' && b[4].is_ascii_digit() && b[5] == b' ';
    let len = if unpadded { 14 } else { 15 };
    // The envelope fields below are each set once, on an event just cleared: appended
    // without Event::set's search for an earlier field of the name.
    let month = match b.get(..3) {
        Some(m) if rest.len() >= len && rest.is_char_boundary(len) => {
            crate::time::month_from_abbrev(m)
        }
        _ => None,
    };
    let rest = if let Some(month) = month {
        let padded;
        let stamp = if unpadded {
            padded = format!("{}  {}", &rest[..3], &rest[4..14]);
            padded.as_bytes()
        } else {
            &b[..15]
        };
        let Some(st) = bsd_stamp_of(stamp, month) else {
            return false;
        };
        let mut ok = false;
        let span = ev.build_text(|t| ok = st.write(ctx, t));
        if !ok {
            return false;
        }
        put_new_val(ev, "time", Val::Str(span));
        &rest[len..]
    } else {
        let (t, r) = token(rest);
        if !looks_rfc3339(t) {
            return false;
        }
        put_new(ev, "time", t);
        r
    };
    let rest = skip_spaces(rest);
    // HOSTNAME, unless the sender left it out and this is already the tag.
    let (host, after) = token(rest);
    let rest = if host.is_empty() || host.ends_with(':') || host.contains('[') {
        rest
    } else {
        put_new(ev, "host", host);
        skip_spaces(after)
    };
    // TAG: `name[pid]:`, `name:`, `name [pid]:`; no tag when none of these.
    let b = rest.as_bytes();
    let stop = b
        .iter()
        .position(|&c| matches!(c, b':' | b' ' | b'['))
        .unwrap_or(b.len());
    let mut msg = rest;
    if stop > 0 && stop < b.len() {
        let name = &rest[..stop];
        let mut after = &rest[stop..];
        if after.starts_with(" [") {
            after = &after[1..];
        }
        if let Some(inner) = after.strip_prefix('[') {
            // Byte loops: a pid is a few bytes, shorter than a search call's setup.
            if let Some(close) = inner.bytes().position(|c| c == b']') {
                let pid = &inner[..close];
                let tail = &inner[close + 1..];
                if !pid.bytes().any(|c| c == b' ') && (tail.is_empty() || tail.starts_with(':')) {
                    put_new(ev, "source", name);
                    put_new(ev, "ps", pid);
                    msg = tail.strip_prefix(':').unwrap_or(tail);
                }
            }
        } else if let Some(m) = after.strip_prefix(':') {
            put_new(ev, "source", name);
            msg = m;
        }
    }
    if let Some(p) = p {
        set_pri(ev, p);
    }
    set_message(ev, scratch, skip_spaces(msg));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(ev: &Event) -> serde_json::Value {
        let mut out = Vec::new();
        ev.write_json(&mut out);
        serde_json::from_slice(&out).unwrap()
    }

    fn p5424(s: &str) -> Option<serde_json::Value> {
        let mut ev = Event::new();
        parse_rfc5424(&mut ev, &mut Vec::new(), s).then(|| json(&ev))
    }

    #[test]
    fn rfc5424_router_frame() {
        let v = p5424("<158>1 2017-08-28T08:36:13.461949+00:00 host heroku router - at=info method=POST path=\"/logs\" status=400 bytes=259").unwrap();
        assert_eq!(v["time"], "2017-08-28T08:36:13.461949+00:00");
        assert_eq!(v["host"], "host");
        assert_eq!(v["source"], "heroku");
        assert_eq!(v["ps"], "router");
        assert_eq!(v["facility"], "local3");
        assert_eq!(v["level"], "info");
        assert_eq!(v["status"], 400);
        assert_eq!(v["path"], "/logs");
        assert!(v.get("msgid").is_none());
    }

    #[test]
    fn rfc5424_structured_data_and_nil() {
        let v = p5424(r#"<133>1 2013-05-24T06:48:51.740194+00:00 host token process - [meta sequenceId="518"][meta somethingElse="blah\]] this is the message"#).unwrap();
        assert_eq!(
            v["sd"],
            r#"[meta sequenceId="518"][meta somethingElse="blah\]]"#
        );
        assert_eq!(v["msg"], "this is the message");
        let v = p5424("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [] BOMAn application").unwrap();
        assert_eq!(v["msgid"], "ID47");
        assert!(v.get("sd").is_none());
        assert!(v.get("ps").is_none());
        assert_eq!(v["msg"], "BOMAn application");
        let v = p5424("<190>1 2014-07-17T12:59:25.223980+00:00 d.8f7a app web.2 - - Started GET")
            .unwrap();
        assert_eq!(v["msg"], "Started GET");
        let v =
            p5424("<2>1 2017-11-30T06:45:29+00:00 host app - sample#service.dataset_count=19071")
                .unwrap();
        assert_eq!(v["sample#service.dataset_count"], 19071);
        assert!(v.get("ps").is_none());
        assert_eq!(v["facility"], "kern");
        assert_eq!(v["level"], "crit");
        assert!(p5424("<999>1 x y z").is_none());
        assert!(p5424("<13>Feb 13 20:07:26 host x").is_none());
        assert!(p5424("<13>1 2003").is_none());
    }

    fn p3164(s: &str) -> Option<serde_json::Value> {
        let mut ev = Event::new();
        let ctx = Ctx {
            year: super::super::stamp::Year::Fixed(2019),
            tz: 0,
        };
        parse_rfc3164(&mut ev, &mut Vec::new(), s, &ctx).then(|| json(&ev))
    }

    #[test]
    fn rfc3164_forms() {
        let v = p3164("<13>Feb 13 20:07:26 74794bfb6795 root[8539]: i am foobar").unwrap();
        assert_eq!(v["time"], "2019-02-13T20:07:26Z");
        assert_eq!(v["host"], "74794bfb6795");
        assert_eq!(v["source"], "root");
        assert_eq!(v["ps"], "8539");
        assert_eq!(v["msg"], "i am foobar");
        assert_eq!(v["level"], "notice");
        let v = p3164("<190>2019-02-13T21:53:30.605850+00:00 74794bfb6795 liblogging-stdlog:  [origin x=\"1\"] start").unwrap();
        assert_eq!(v["time"], "2019-02-13T21:53:30.605850+00:00");
        assert_eq!(v["source"], "liblogging-stdlog");
        assert_eq!(v["msg"], "[origin x=\"1\"] start");
        let v = p3164("Feb  3 01:02:03 myhost sshd [42]: Accepted key").unwrap();
        assert_eq!(v["time"], "2019-02-03T01:02:03Z");
        assert_eq!(v["source"], "sshd");
        assert_eq!(v["ps"], "42");
        let v = p3164("Feb  3 01:02:03 myhost just words here").unwrap();
        assert!(v.get("source").is_none());
        assert_eq!(v["msg"], "just words here");
        let v = p3164("Feb  3 01:02:03 cron[7]: job=x n=2").unwrap();
        assert!(v.get("host").is_none());
        assert_eq!(v["source"], "cron");
        assert_eq!(v["n"], 2);
        assert!(p3164("Feb 33 01:02:03 h x").is_none());
        assert!(p3164("hello").is_none());
        // A one-digit day without its padding space.
        let v = p3164("<13>Feb 3 20:07:26 myhost root[8539]: i am foobar").unwrap();
        assert_eq!(v["time"], "2019-02-03T20:07:26Z");
        assert_eq!(v["host"], "myhost");
        assert_eq!(v["msg"], "i am foobar");
        assert!(p3164("Feb 3 20:07:2").is_none());
    }

    #[test]
    fn rfc3164_stamp_cut_inside_a_char_is_no_match() {
        // Found by fuzzing: byte 15 falls inside a multi-byte char (lossy U+FFFD here).
        assert!(p3164("Feb \u{fffd}\u{fffd}\u{fffd}\u{fffd}").is_none());
        assert!(p3164("<13>Feb 13 20:0\u{e9}7:26 host x").is_none());
    }

    #[test]
    fn bsd_stamps_and_the_days_a_year_has() {
        let read = |s: &str, y: i32| {
            let ctx = Ctx {
                year: super::super::stamp::Year::Fixed(y),
                tz: 0,
            };
            let mut out = String::new();
            bsd_stamp(s)
                .filter(|st| st.write(&ctx, &mut out))
                .map(|_| out)
        };
        assert_eq!(
            read("Feb 13 20:07:26", 2019).as_deref(),
            Some("2019-02-13T20:07:26Z")
        );
        assert_eq!(
            read("Feb  3 20:07:26", 2026).as_deref(),
            Some("2026-02-03T20:07:26Z")
        );
        assert_eq!(read("Fob 13 20:07:26", 2019), None);
        assert_eq!(read("Feb 13 2007:26", 2019), None);
        // Days the month does not have in that year.
        assert_eq!(read("Feb 29 20:07:26", 2019), None);
        assert_eq!(read("Apr 31 20:07:26", 2019), None);
        assert_eq!(read("Feb 29 20:07:26", 1900), None);
        assert_eq!(
            read("Feb 29 20:07:26", 2000).as_deref(),
            Some("2000-02-29T20:07:26Z")
        );
    }

    #[test]
    fn facility_level() {
        assert!(is_facility_level("local0.info"));
        assert!(is_facility_level("user.err"));
        assert!(!is_facility_level("web.1"));
        assert!(!is_facility_level("local0"));
    }
}
