//! Application and server logs: a leading timestamp (any layout of [`super::stamp`]), then
//! what the common layouts put between it and the message.
//!
//! After the stamp, in this order and each only where it is there:
//!
//! | part | example | field |
//! |---|---|---|
//! | `[PID]` | PostgreSQL `[1329108]` | `ps` |
//! | one or two numbers | MySQL `0`, HDFS `148`, logcat `1702  2395` | `thread`; two: `ps`, `thread` |
//! | a level word, bare, in brackets or with a colon | `INFO`, ` WARN`, `[error]`, `[Note]`, `ERROR:`, `[core:error]`, logcat `E` | `level` (lower case; `E` → `error`), `module` |
//! | `[...]` groups | log4j `[main]`, Apache `[pid 1:tid 2]` `[client 1.2.3.4:5]`, MySQL `[MY-010068]` `[InnoDB]` | `thread`, `ps`, `client`, `code`, `component` |
//! | `PID#TID: *CONN` | nginx `54053#0: *1` | `ps`, `thread`, `conn` |
//! | `(logger:method) -`, `logger:`, `logger -` | log4j, logback, Spark, HDFS, logcat tags | `logger` |
//! | `file.go:63:` | Go `log` with `Lshortfile` | `file` |
//!
//! The rest is `msg`, and its attributes when it looks like logfmt. Three shapes start
//! otherwise: Ruby's Logger (`E, [2017-08-17T18:15:08.067497 #48598] ERROR -- prog: msg`),
//! Redis (`4961:M 30 May 12:50:13.457 * msg`, `[2932] 31 May 04:32:08 * msg`, level marks
//! `.` `-` `*` `#`), and Kubernetes klog (`I0102 15:04:05.123456   12345 file.go:123] msg`).

use super::scan::put_new;
use super::stamp::{self, Ctx, Stamp, Zone};
use super::syslog::set_message;
use crate::record::{Event, Val};

/// The level of a level word (any case), as written in lower case, or `None`.
pub fn level_word(w: &str) -> Option<&'static str> {
    const WORDS: [&str; 27] = [
        "trace", "debug", "debug1", "debug2", "debug3", "debug4", "debug5", "fine", "finer",
        "finest", "config", "verbose", "info", "note", "notice", "log", "warn", "warning", "error",
        "err", "severe", "crit", "critical", "alert", "emerg", "fatal", "panic",
    ];
    if w.len() > 9 || w.is_empty() {
        return None;
    }
    let mut lower = [0u8; 9];
    for (d, c) in lower.iter_mut().zip(w.bytes()) {
        *d = c.to_ascii_lowercase();
    }
    let l = &lower[..w.len()];
    if let Some(x) = WORDS.iter().find(|x| x.as_bytes() == l) {
        return Some(x);
    }
    (l == b"emergency").then_some("emergency")
}

/// PostgreSQL's secondary lines name their part where the level goes, with a colon
/// (`STATEMENT:  select 1`): only in that form.
fn part_word(w: &str) -> Option<&'static str> {
    const PARTS: [&str; 6] = [
        "statement",
        "detail",
        "hint",
        "context",
        "query",
        "location",
    ];
    PARTS.iter().find(|p| p.eq_ignore_ascii_case(w)).copied()
}

/// The level of a one-letter mark (logcat, klog, Ruby).
fn level_letter(c: u8) -> Option<&'static str> {
    Some(match c {
        b'V' => "verbose",
        b'D' => "debug",
        b'I' => "info",
        b'W' => "warning",
        b'E' => "error",
        b'F' => "fatal",
        b'A' => "alert",
        _ => return None,
    })
}

/// Write a stamp as `time`; false when it has no valid year.
fn set_time(ev: &mut Event, st: &Stamp<'_>, ctx: &Ctx) -> bool {
    let mut ok = false;
    let span = ev.build_text(|t| ok = st.write(ctx, t));
    if ok {
        ev.set("time", Val::Str(span));
    }
    ok
}

fn skip_ws(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

/// An application log line (see the module doc). False when `s` has no leading stamp.
pub fn parse_applog(ev: &mut Event, scratch: &mut Vec<u8>, s: &str, ctx: &Ctx) -> bool {
    let b = s.as_bytes();
    match b.first() {
        Some(b'0'..=b'9') => {
            if let Some(done) = redis(ev, scratch, s, ctx) {
                return done;
            }
        }
        Some(b'[') if b.get(1).is_some_and(u8::is_ascii_digit) => {
            if let Some(done) = redis(ev, scratch, s, ctx) {
                return done;
            }
        }
        Some(b'D' | b'I' | b'W' | b'E' | b'F' | b'A') if b.get(1) == Some(&b',') => {
            return ruby(ev, scratch, s, ctx);
        }
        Some(b'I' | b'W' | b'E' | b'F') if b.get(1).is_some_and(u8::is_ascii_digit) => {
            return klog(ev, scratch, s, ctx);
        }
        _ => {}
    }
    let Some((st, n)) = stamp::leading(s) else {
        return false;
    };
    ev.clear();
    if !set_time(ev, &st, ctx) {
        return false;
    }
    let mut rest = skip_ws(&s[n..]);
    // `[PID]` before the level (PostgreSQL).
    if let Some(inner) = bracketed(rest) {
        if !inner.is_empty() && inner.bytes().all(|c| c.is_ascii_digit()) {
            put_new(ev, "ps", inner);
            rest = skip_ws(&rest[inner.len() + 2..]);
        }
    }
    // One or two numbers (thread; pid and thread), only when a level follows.
    let (n1, r1) = word(rest);
    if is_number(n1) {
        let (n2, r2) = word(r1);
        if is_number(n2) && level_at(r2, true).is_some() {
            put_new(ev, "ps", n1);
            put_new(ev, "thread", n2);
            rest = r2;
        } else if level_at(r1, false).is_some() || r1.starts_with('[') {
            put_new(ev, "thread", n1);
            rest = r1;
        }
    }
    let logcat = ev.get("ps").is_some() && ev.get("thread").is_some() && st.year.is_none();
    if let Some((level, module, r)) = level_at(rest, logcat) {
        put_new(ev, "level", level);
        if let Some(m) = module {
            put_new(ev, "module", m);
        }
        rest = r;
    }
    rest = groups(ev, rest);
    rest = nginx_ids(ev, rest);
    rest = logger(ev, rest, logcat);
    set_message(ev, scratch, rest);
    true
}

/// The inside of a `[...]` at the start of `s` (no nested brackets).
fn bracketed(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let close = inner.find(']')?;
    Some(&inner[..close])
}

/// The first word of `s` (to a space or tab) and the rest, blanks skipped.
fn word(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], skip_ws(&s[i..])),
        None => (s, ""),
    }
}

fn is_number(w: &str) -> bool {
    !w.is_empty() && w.len() <= 20 && w.bytes().all(|c| c.is_ascii_digit())
}

/// A level at the start of `s`: (level, module, rest). `letter`: a lone capital letter is
/// a level too (logcat).
fn level_at(s: &str, letter: bool) -> Option<(&'static str, Option<&str>, &str)> {
    if let Some(inner) = bracketed(s) {
        let after = skip_ws(&s[inner.len() + 2..]);
        // `[error]`, `[Note]`, Apache 2.4's `[core:error]`.
        let (module, lw) = match inner.split_once(':') {
            Some((m, l))
                if !m.is_empty() && m.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') =>
            {
                (Some(m), l)
            }
            _ => (None, inner),
        };
        return level_word(lw).map(|l| (l, module, after));
    }
    let (w, rest) = word(s);
    if letter && w.len() == 1 {
        return level_letter(w.as_bytes()[0]).map(|l| (l, None, rest));
    }
    // `ERROR:` (PostgreSQL) or `INFO` (log4j).
    match w.strip_suffix(':') {
        Some(bare) => level_word(bare).or_else(|| part_word(bare)),
        None => level_word(w),
    }
    .map(|l| (l, None, rest))
}

/// Bracketed groups after the level: thread, `pid N:tid M`, `client ADDR`, MySQL's code and
/// subsystem.
fn groups<'a>(ev: &mut Event, mut rest: &'a str) -> &'a str {
    for _ in 0..4 {
        let Some(inner) = bracketed(rest) else {
            break;
        };
        let after = skip_ws(&rest[inner.len() + 2..]);
        if let Some(p) = inner.strip_prefix("pid ") {
            let (pid, tid) = match p.split_once(":tid ") {
                Some((a, b)) => (a, Some(b)),
                None => (p, None),
            };
            put_new(ev, "ps", pid);
            if let Some(t) = tid {
                put_new(ev, "thread", t);
            }
        } else if let Some(c) = inner.strip_prefix("client ") {
            put_new(ev, "client", c);
        } else if inner.starts_with("MY-") {
            put_new(ev, "code", inner);
        } else if ev.get("level").is_some() && ev.get("thread").is_none() && !inner.is_empty() {
            put_new(ev, "thread", inner);
        } else if ev.get("code").is_some() && ev.get("component").is_none() {
            put_new(ev, "component", inner);
        } else {
            break;
        }
        rest = after;
    }
    rest
}

/// nginx's `PID#TID: *CONN `.
fn nginx_ids<'a>(ev: &mut Event, rest: &'a str) -> &'a str {
    let (w, after) = word(rest);
    let Some(ids) = w.strip_suffix(':') else {
        return rest;
    };
    let Some((pid, tid)) = ids.split_once('#') else {
        return rest;
    };
    if !is_number(pid) || !is_number(tid) {
        return rest;
    }
    put_new(ev, "ps", pid);
    put_new(ev, "thread", tid);
    let (c, after2) = word(after);
    match c.strip_prefix('*') {
        Some(conn) if is_number(conn) => {
            put_new(ev, "conn", conn);
            after2
        }
        _ => after,
    }
}

/// A logger, file or tag before the message.
fn logger<'a>(ev: &mut Event, rest: &'a str, logcat: bool) -> &'a str {
    // log4j `(class:method) - msg`.
    if let Some(inner) = rest.strip_prefix('(') {
        if let Some(close) = inner.find(") - ") {
            let l = &inner[..close];
            if !l.contains(' ') {
                put_new(ev, "logger", l);
                return &inner[close + 4..];
            }
        }
    }
    let (w, after) = word(rest);
    let ident = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'$' | b'-' | b'/'))
    };
    if let Some(t) = w.strip_suffix(':') {
        // Go's `file.go:63:`.
        if let Some((file, line)) = t.rsplit_once(':') {
            if ident(file) && file.contains('.') && is_number(line) {
                put_new(ev, "file", t);
                return after;
            }
        }
        // `org.x.Y:`, `executor.Backend:`, `InnoDB:`, a logcat tag: a word with a dot, a
        // capital inside, or after logcat's ids.
        let camel = t.bytes().any(|c| c.is_ascii_lowercase())
            && t.bytes().skip(1).any(|c| c.is_ascii_uppercase());
        let javaish = t.contains('.') || camel;
        if ident(t) && (javaish || logcat) {
            put_new(ev, "logger", t);
            return after;
        }
    }
    // `org.x.Y - msg` (logback's `%logger - %msg`).
    if ident(w) && w.contains('.') {
        if let Some(m) = after.strip_prefix("- ") {
            put_new(ev, "logger", w);
            return m;
        }
    }
    rest
}

/// Redis: `PID:ROLE STAMP MARK msg`, `[PID] STAMP MARK msg`, `STAMP MARK msg` (pre 2.6),
/// `PID:signal-handler (EPOCH) msg`. `None` when `s` is not Redis-shaped.
fn redis(ev: &mut Event, scratch: &mut Vec<u8>, s: &str, ctx: &Ctx) -> Option<bool> {
    let b = s.as_bytes();
    let (pid, role, rest) = if b[0] == b'[' {
        let inner = bracketed(s)?;
        if !is_number(inner) {
            return None;
        }
        if b.get(inner.len() + 2) != Some(&b' ') {
            return None;
        }
        (Some(inner), None, &s[inner.len() + 3..])
    } else {
        let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
        if b.get(digits) == Some(&b':') {
            let after = &s[digits + 1..];
            if let Some(r) = after.strip_prefix("signal-handler (") {
                let close = r.find(") ")?;
                let (st, n) = stamp::leading(&r[..close])?;
                if n != close {
                    return None;
                }
                ev.clear();
                if !set_time(ev, &st, ctx) {
                    return Some(false);
                }
                put_new(ev, "ps", &s[..digits]);
                put_new(ev, "role", "signal-handler");
                set_message(ev, scratch, &r[close + 2..]);
                return Some(true);
            }
            let role = after.as_bytes().first()?;
            if !matches!(role, b'M' | b'S' | b'C' | b'X') || after.as_bytes().get(1) != Some(&b' ')
            {
                return None;
            }
            (Some(&s[..digits]), Some(&after[..1]), &after[2..])
        } else {
            (None, None, s)
        }
    };
    // `dd Mon [yyyy ]HH:mm:ss[.SSS] MARK `.
    let rb = rest.as_bytes();
    if rb.len() < 17 || rb[2] != b' ' || crate::time::month_from_abbrev(&rb[3..6]).is_none() {
        return None;
    }
    let (st, n) = stamp::leading(rest)?;
    let mark = rest.as_bytes().get(n + 1)?;
    let level = match mark {
        b'.' => "debug",
        b'-' => "verbose",
        b'*' => "notice",
        b'#' => "warning",
        _ => return None,
    };
    if rest.as_bytes().get(n) != Some(&b' ')
        || rest.as_bytes().get(n + 2).is_some_and(|&c| c != b' ')
    {
        return None;
    }
    ev.clear();
    if !set_time(ev, &st, ctx) {
        return Some(false);
    }
    if let Some(p) = pid {
        put_new(ev, "ps", p);
    }
    if let Some(r) = role {
        put_new(ev, "role", r);
    }
    put_new(ev, "level", level);
    set_message(ev, scratch, rest.get(n + 3..).unwrap_or(""));
    Some(true)
}

/// Ruby's Logger: `L, [ISO #PID]  LEVEL -- PROGNAME: msg`.
fn ruby(ev: &mut Event, scratch: &mut Vec<u8>, s: &str, ctx: &Ctx) -> bool {
    let Some(r) = s.get(3..).filter(|_| s.as_bytes().get(2) == Some(&b' ')) else {
        return false;
    };
    let Some(inner) = bracketed(r) else {
        return false;
    };
    let Some((stamp_text, pid)) = inner.split_once(" #") else {
        return false;
    };
    let Some((st, n)) = stamp::leading(stamp_text) else {
        return false;
    };
    if n != stamp_text.len() || !is_number(pid) {
        return false;
    }
    let after = skip_ws(&r[inner.len() + 2..]);
    let (lw, after) = word(after);
    let Some(level) = level_word(lw).or(match lw {
        "ANY" | "UNKNOWN" => Some("unknown"),
        _ => None,
    }) else {
        return false;
    };
    let Some(after) = after.strip_prefix("-- ") else {
        return false;
    };
    ev.clear();
    if !set_time(ev, &st, ctx) {
        return false;
    }
    put_new(ev, "ps", pid);
    put_new(ev, "level", level);
    let msg = match after.find(": ") {
        Some(i) if !after[..i].contains(' ') => {
            if i > 0 {
                put_new(ev, "logger", &after[..i]);
            }
            &after[i + 2..]
        }
        _ => after,
    };
    set_message(ev, scratch, msg);
    true
}

/// klog: `Lmmdd hh:mm:ss.uuuuuu THREADID file:line] msg`.
fn klog(ev: &mut Event, scratch: &mut Vec<u8>, s: &str, ctx: &Ctx) -> bool {
    let b = s.as_bytes();
    if b.len() < 22 || b[5] != b' ' || !b[1..5].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let month = (b[1] - b'0') as u32 * 10 + (b[2] - b'0') as u32;
    let day = (b[3] - b'0') as u32 * 10 + (b[4] - b'0') as u32;
    let text = &s[6..];
    let tb = text.as_bytes();
    if tb.len() < 15 || tb[2] != b':' || tb[5] != b':' || tb[8] != b'.' {
        return false;
    }
    let frac_len = tb[9..].iter().take_while(|c| c.is_ascii_digit()).count();
    let (Ok(h), Ok(mi), Ok(sec)) = (
        text[..2].parse::<u32>(),
        text[3..5].parse::<u32>(),
        text[6..8].parse::<u32>(),
    ) else {
        return false;
    };
    let after = skip_ws(&text[9 + frac_len..]);
    let (tid, after) = word(after);
    let Some(close) = after.find("] ") else {
        return false;
    };
    let file = &after[..close];
    if !is_number(tid) || !file.contains(':') || file.contains(' ') {
        return false;
    }
    let st = Stamp {
        year: None,
        month,
        day,
        hour: h,
        min: mi,
        sec,
        frac: &text[9..9 + frac_len],
        zone: Zone::Local,
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return false;
    }
    ev.clear();
    if !set_time(ev, &st, ctx) {
        return false;
    }
    put_new(ev, "level", level_letter(b[0]).unwrap_or("info"));
    put_new(ev, "thread", tid);
    put_new(ev, "file", file);
    set_message(ev, scratch, &after[close + 2..]);
    true
}

/// A stamp in a `Year` context that ignores the reference (tests).
#[cfg(test)]
pub fn test_ctx() -> Ctx {
    Ctx {
        year: super::stamp::Year::Fixed(2026),
        tz: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<serde_json::Value> {
        let mut ev = Event::new();
        if !parse_applog(&mut ev, &mut Vec::new(), s, &test_ctx()) {
            return None;
        }
        let mut out = Vec::new();
        ev.write_json(&mut out);
        Some(serde_json::from_slice(&out).unwrap())
    }

    fn has(v: &serde_json::Value, want: &[(&str, &str)]) {
        for (k, w) in want {
            let got = match &v[k] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(got, *w, "{k} of {v}");
        }
    }

    #[test]
    fn java_layouts() {
        let v = p("2011-04-20 16:26:34,302 DEBUG [main] (org.apache.log4j.PropertyConfigurator:parseCategory) - Parsing for [root]").unwrap();
        has(
            &v,
            &[
                ("time", "2011-04-20T16:26:34.302Z"),
                ("level", "debug"),
                ("thread", "main"),
                (
                    "logger",
                    "org.apache.log4j.PropertyConfigurator:parseCategory",
                ),
                ("msg", "Parsing for [root]"),
            ],
        );
        let v = p("2011-04-20 16:26:34,302  INFO [MyThread 0] (com.x.Y:run) - hi").unwrap();
        has(
            &v,
            &[("level", "info"), ("thread", "MyThread 0"), ("msg", "hi")],
        );
        let v = p("2015-10-18 18:01:47,978 INFO [main] org.x.Y: started in 3 s").unwrap();
        has(&v, &[("logger", "org.x.Y"), ("msg", "started in 3 s")]);
        let v = p("17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal handlers for [TERM, HUP, INT]").unwrap();
        has(
            &v,
            &[
                ("time", "2017-06-09T20:10:40Z"),
                ("level", "info"),
                ("logger", "executor.CoarseGrainedExecutorBackend"),
            ],
        );
        let v = p("081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating").unwrap();
        has(
            &v,
            &[
                ("time", "2008-11-09T20:36:15Z"),
                ("thread", "148"),
                ("level", "info"),
                ("logger", "dfs.DataNode$PacketResponder"),
                (
                    "msg",
                    "PacketResponder 1 for block blk_38865049064139660 terminating",
                ),
            ],
        );
    }

    #[test]
    fn servers() {
        let v = p("2016/10/25 14:49:34 [error] 54053#0: *1 open() \"/x\" failed (2: No such file or directory), client: 127.0.0.1").unwrap();
        has(
            &v,
            &[
                ("level", "error"),
                ("ps", "54053"),
                ("thread", "0"),
                ("conn", "1"),
                (
                    "msg",
                    "open() \"/x\" failed (2: No such file or directory), client: 127.0.0.1",
                ),
            ],
        );
        let v = p("[Mon Dec 26 16:22:08 2016] [error] [client 192.168.33.1] File does not exist: /var/www/favicon.ico").unwrap();
        has(
            &v,
            &[
                ("time", "2016-12-26T16:22:08Z"),
                ("level", "error"),
                ("client", "192.168.33.1"),
                ("msg", "File does not exist: /var/www/favicon.ico"),
            ],
        );
        let v = p("[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187] File does not exist: /x").unwrap();
        has(
            &v,
            &[
                ("time", "2011-09-09T10:42:29.902022Z"),
                ("module", "core"),
                ("level", "error"),
                ("ps", "35708"),
                ("thread", "4328636416"),
                ("client", "72.15.99.187"),
            ],
        );
        let v =
            p("2025-04-12 00:14:12.837 CEST [1329108] ERROR:  syntax error at or near \"null\"")
                .unwrap();
        has(
            &v,
            &[
                ("time", "2025-04-12T00:14:12.837+02:00"),
                ("ps", "1329108"),
                ("level", "error"),
                ("msg", "syntax error at or near \"null\""),
            ],
        );
        let v = p(
            "2020-08-06T14:25:02.835618Z 0 [Note] [MY-012487] [InnoDB] DDL log recovery : begin",
        )
        .unwrap();
        has(
            &v,
            &[
                ("thread", "0"),
                ("level", "note"),
                ("code", "MY-012487"),
                ("component", "InnoDB"),
                ("msg", "DDL log recovery : begin"),
            ],
        );
        let v = p("2019-10-16 17:24:15 0 [Note] InnoDB: Using Linux native AIO").unwrap();
        has(
            &v,
            &[
                ("level", "note"),
                ("logger", "InnoDB"),
                ("msg", "Using Linux native AIO"),
            ],
        );
        let v = p("2022/09/11 16:31:21 main.go:63: creating otel trace grpc client").unwrap();
        has(
            &v,
            &[
                ("file", "main.go:63"),
                ("msg", "creating otel trace grpc client"),
            ],
        );
        assert!(p("2022/09/11 16:31:21 connecting to db: timeout").unwrap()["logger"].is_null());
    }

    #[test]
    fn redis_ruby_logcat_klog() {
        let v = p("98738:M 30 May 12:23:52.442 * Saving the final RDB snapshot before exiting.")
            .unwrap();
        has(
            &v,
            &[
                ("time", "2026-05-30T12:23:52.442Z"),
                ("ps", "98738"),
                ("role", "M"),
                ("level", "notice"),
                ("msg", "Saving the final RDB snapshot before exiting."),
            ],
        );
        let v = p("[2932] 31 May 04:32:08 * The server is now ready").unwrap();
        has(
            &v,
            &[
                ("ps", "2932"),
                ("level", "notice"),
                ("msg", "The server is now ready"),
            ],
        );
        let v = p("30 May 10:05:20 . 0 clients connected").unwrap();
        has(&v, &[("level", "debug"), ("msg", "0 clients connected")]);
        let v =
            p("5092:signal-handler (1496141844) Received SIGINT scheduling shutdown...").unwrap();
        has(
            &v,
            &[
                ("time", "2017-05-30T10:57:24Z"),
                ("ps", "5092"),
                ("msg", "Received SIGINT scheduling shutdown..."),
            ],
        );
        let v = p(
            "E, [2017-08-17T18:15:08.067497 #48598] ERROR -- Kitchen: Class: Kitchen::UserError",
        )
        .unwrap();
        has(
            &v,
            &[
                ("time", "2017-08-17T18:15:08.067497Z"),
                ("ps", "48598"),
                ("level", "error"),
                ("logger", "Kitchen"),
                ("msg", "Class: Kitchen::UserError"),
            ],
        );
        let v = p(
            "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogs opening app",
        )
        .unwrap();
        has(
            &v,
            &[
                ("time", "2026-03-17T16:13:38.811Z"),
                ("ps", "1702"),
                ("thread", "2395"),
                ("level", "debug"),
                ("logger", "WindowManager"),
                ("msg", "printFreezingDisplayLogs opening app"),
            ],
        );
        let v = p("I0102 15:04:05.123456   12345 controller.go:123] Starting controller").unwrap();
        has(
            &v,
            &[
                ("time", "2026-01-02T15:04:05.123456Z"),
                ("level", "info"),
                ("thread", "12345"),
                ("file", "controller.go:123"),
                ("msg", "Starting controller"),
            ],
        );
    }

    #[test]
    fn not_app_logs() {
        for s in [
            "hello world",
            "12 apples",
            "E, nope",
            "I0102 x",
            "[x] y",
            "1234:Q hi",
        ] {
            assert!(p(s).is_none(), "{s}");
        }
    }
}
