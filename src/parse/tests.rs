//! Tests of the whole line parser: detection, frames, and a property test.

use super::*;
use proptest::prelude::*;

fn parse_with(format: Format, line: &[u8]) -> (Vec<serde_json::Value>, LineOutcome) {
    let mut p = Parser::new(Options::new(format, Some(2019), 0));
    let mut got = Vec::new();
    let outcome = p.parse_line(line, &mut |ev: &Event| {
        let mut out = Vec::new();
        ev.write_json(&mut out);
        got.push(serde_json::from_slice(&out).expect("valid JSON"));
    });
    (got, outcome)
}

fn one(line: &str) -> serde_json::Value {
    let (mut v, o) = parse_with(Format::Auto, line.as_bytes());
    assert_eq!(v.len(), 1, "{line}");
    assert_eq!(o.events, 1);
    v.remove(0)
}

fn is_unparsed(v: &serde_json::Value) -> bool {
    v.get("unparsed") == Some(&serde_json::Value::Bool(true))
}

#[test]
fn format_names_round_trip() {
    for (f, n) in Format::ALL {
        assert_eq!(n.parse::<Format>(), Ok(f));
        assert_eq!(f.to_string(), n);
    }
    assert!("nope".parse::<Format>().unwrap_err().contains("rfc5424"));
}

#[test]
fn auto_detects_each_format() {
    let v = one(
        r#"2012-01-23T21:24:19-08:00 10.64.78.161 local0.info shen[5]: - face-lift.3418@heroku.com at=start n=1"#,
    );
    assert_eq!(
        (v["source"].as_str(), v["instance_id"].as_i64()),
        (Some("shen"), Some(3418))
    );
    let v = one("<40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed");
    assert_eq!(v["ps"], "web.3");
    let v = one(
        "83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up",
    );
    assert_eq!(v["msg"], "State changed from starting to up");
    let v = one("2010-10-06T21:51:04-07:00 heroku[web.1]: State changed from down to starting");
    assert_eq!(
        (v["source"].as_str(), v["ps"].as_str()),
        (Some("heroku"), Some("web.1"))
    );
    let v = one("2013-04-17T19:04:46+00:00 d.1234-drain-identifier-567 heroku logplex - - Error L10 (output buffer overflow)");
    assert_eq!(
        (v["host"].as_str(), v["source"].as_str(), v["ps"].as_str()),
        (
            Some("d.1234-drain-identifier-567"),
            Some("heroku"),
            Some("logplex")
        )
    );
    assert_eq!(v["msg"], "Error L10 (output buffer overflow)");
    let v = one("<13>Feb 13 20:07:26 74794bfb6795 root[8539]: i am foobar");
    assert_eq!(v["time"], "2019-02-13T20:07:26Z");
    let v = one("Feb  3 20:07:26 box cron[1]: ok");
    assert_eq!(v["time"], "2019-02-03T20:07:26Z");
    let v = one("2024-01-01T00:00:00Z level=info n=3");
    assert_eq!(
        (v["time"].as_str(), v["n"].as_i64()),
        (Some("2024-01-01T00:00:00Z"), Some(3))
    );
    assert!(v.get("msg").is_none());
    let v = one("count#signups=1 measure#signup-controller=50ms");
    assert_eq!(v["measure#signup-controller"], "50ms");
    let v = one("y");
    assert_eq!(v["y"], true);
    let v = one(r#"1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 5 "-" "x""#);
    assert_eq!(v["status"], 200);
    let v = one(r#"{"ts":"2024-01-01T00:00:00Z","a":1}"#);
    assert_eq!(v["time"], "2024-01-01T00:00:00Z");
    let v = one(r#"{"timestamp":1431857103500,"a":1}"#);
    assert_eq!(v["time"], "2015-05-17T10:05:03.5Z");
    let v = one(r#"{"time":"x","ts":5}"#);
    assert_eq!(v["time"], "x");
    // A number past year 9999 (even as milliseconds) has no RFC 3339 form: no time.
    // A time and a word is an application log line.
    let v = one("2012-01-01T00:00:00Z lonely");
    assert_eq!(
        (v["time"].as_str(), v["msg"].as_str()),
        (Some("2012-01-01T00:00:00Z"), Some("lonely"))
    );
    let v = one(r#"{"ts":1e20,"a":1}"#);
    assert!(v.get("time").is_none(), "{v}");
    for bad in ["just some words", "{not json", "12345"] {
        let v = one(bad);
        assert!(is_unparsed(&v), "{bad}: {v}");
        assert_eq!(v["line"], bad);
    }
}

#[test]
fn forced_formats() {
    let line = b"a=1 b=two";
    let (v, _) = parse_with(Format::Logfmt, line);
    assert_eq!(v[0]["b"], "two");
    let (v, o) = parse_with(Format::Access, line);
    assert!(is_unparsed(&v[0]) && o.unparsed);
    let (v, _) = parse_with(Format::Logfmt, b"hello world");
    assert_eq!(v[0]["world"], true);
    let (v, _) = parse_with(Format::Json, b"a=1");
    assert!(is_unparsed(&v[0]));
    let (v, _) = parse_with(
        Format::HerokuCli,
        b"2013-04-17T19:04:46+00:00 d.1 heroku logplex - - Error L10",
    );
    assert_eq!(v[0]["ps"], "logplex");
    let (v, _) = parse_with(
        Format::Rfc5424,
        b"83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - x",
    );
    assert!(is_unparsed(&v[0]));
}

#[test]
fn empty_crlf_nul_and_invalid_utf8() {
    // A blank line is counted as empty and makes no record.
    let (v, o) = parse_with(Format::Auto, b"");
    assert!(o.empty && !o.unparsed && v.is_empty() && o.events == 0);
    let (v, o) = parse_with(Format::Auto, b" \t ");
    assert!(o.empty && v.is_empty());
    let (v, _) = parse_with(Format::Auto, b"a=1 b=x\r");
    assert_eq!(v[0]["b"], "x");
    let (v, _) = parse_with(Format::Auto, b"a=\xff\x00z");
    assert_eq!(v[0]["a"], "\u{fffd}\u{0}z");
}

#[test]
fn several_frames_on_one_line() {
    let a = "<40>1 2012-11-30T06:45:29+00:00 host app web.3 - one";
    let b = "<158>1 2012-11-30T06:45:30+00:00 host heroku router - at=info status=200";
    let line = format!("{} {a}\n{} {b}", a.len() + 1, b.len());
    let (v, o) = parse_with(Format::Auto, line.as_bytes());
    assert_eq!(
        o,
        LineOutcome {
            events: 2,
            unparsed: false,
            bad_frame_counts: 0,
            empty: false,
            format: Some(Format::Logplex),
            continuation: false,
        }
    );
    assert_eq!(v[0]["msg"], "one");
    assert_eq!(v[1]["status"], 200);
    let line = format!("{} {a} {} {b}", a.len() + 7, b.len());
    let (v, o) = parse_with(Format::Auto, line.as_bytes());
    assert_eq!((o.events, o.bad_frame_counts), (2, 1));
    assert_eq!(v[0]["msg"], "one");
}

#[test]
fn parse_chunk_counts_and_offsets() {
    let mut p = Parser::new(Options::new(Format::Auto, Some(2020), 0));
    let r = parse_chunk(&mut p, b"a=1\n\nwhat is this\r\nb=2");
    assert_eq!(
        (r.lines, r.events, r.issues.unparsed, r.issues.empty),
        (4, 3, 1, 1)
    );
    let issue = r.issues.first_unparsed.unwrap();
    assert_eq!(issue.line, 2);
    assert_eq!(issue.text, "what is this");
    let out = String::from_utf8(r.out).unwrap();
    assert_eq!(out.lines().count(), 3);
    assert!(out[issue.out_offset..].starts_with(r#"{"line":"what is this","unparsed":true}"#));
}

proptest! {
    #[test]
    fn any_bytes_give_one_valid_record_per_line(
        lines in proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![
                    Just(b'\r'), Just(0u8), Just(0xffu8), Just(b' '), Just(b'='), Just(b'"'),
                    Just(b'<'), Just(b'['), Just(b'\\'), any::<u8>(), b'a'..=b'z', b'0'..=b'9'
                ],
                0..80,
            ),
            1..8,
        ),
        format in 0usize..11,
    ) {
        let mut p = Parser::new(Options::new(Format::ALL[format].0, Some(2020), 0));
        let mut chunk = Vec::new();
        for l in &lines {
            chunk.extend(l.iter().copied().filter(|&c| c != b'\n'));
            chunk.push(b'\n');
        }
        let r = parse_chunk(&mut p, &chunk);
        prop_assert_eq!(r.lines, lines.len() as u64);
        let text = String::from_utf8(r.out).expect("UTF-8 output");
        let mut records = 0;
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).expect("valid JSON");
            prop_assert!(v.is_object());
            records += 1;
        }
        // Frame splitting may yield more than one record per line; otherwise exactly one
        // per line that is not blank.
        let framed = chunk.split(|&c| c == b'\n').any(logplex::starts_with_frame);
        let blank = |l: &Vec<u8>| {
            let l = l.iter().copied().filter(|&c| c != b'\n').collect::<Vec<u8>>();
            let l = l.strip_suffix(b"\r").unwrap_or(&l);
            String::from_utf8_lossy(l).bytes().all(|c| matches!(c, b' ' | b'\t' | b'\r'))
        };
        let solid = lines.iter().filter(|l| !blank(l)).count();
        if !framed {
            prop_assert_eq!(records, solid);
        } else {
            prop_assert!(records >= solid);
        }
    }
}

#[test]
fn rsyslog_file_format_is_syslog_in_every_stamp_form() {
    let forms = [
        "2026-12-01T21:13:51.123456+00:00",
        "2026-12-01T21:13:51+00:00",
        "2026-12-01T21:13:51Z",
        "2026-12-01T21:13:51.123Z",
        "2026-12-01T21:13:51-05:00",
        "2026-12-01T21:13:51+0100",
    ];
    for stamp in forms {
        for pri in ["", "<38>"] {
            let line = format!(
                "{pri}{stamp} web1 sshd[123]: Failed password for root from 1.2.3.4 port 22 ssh2"
            );
            let (v, o) = parse_with(Format::Auto, line.as_bytes());
            assert_eq!(o.format, Some(Format::Rfc3164), "{line}");
            let v = &v[0];
            assert_eq!(v["time"], stamp, "{line}");
            assert_eq!(v["host"], "web1", "{line}");
            assert_eq!(v["source"], "sshd", "{line}");
            assert_eq!(v["ps"], "123", "{line}");
            assert_eq!(
                v["msg"], "Failed password for root from 1.2.3.4 port 22 ssh2",
                "{line}"
            );
            assert!(v.get("msgid").is_none(), "{line}");
        }
    }
    // A tag without a pid, and the tag right after the time (no host).
    let v = one("2026-12-01T21:13:51Z web1 CRON: (root) CMD (run-parts /etc/cron.hourly)");
    assert_eq!(
        (v["host"].as_str(), v["source"].as_str()),
        (Some("web1"), Some("CRON"))
    );
    // The drain-to-file form is still read where its NILVALUEs make it unambiguous.
    let v = one("2014-07-17T12:59:25.223980+00:00 d.8f7a app web.2 - - Started GET");
    assert_eq!(
        (v["source"].as_str(), v["ps"].as_str()),
        (Some("app"), Some("web.2"))
    );
    assert_eq!(v["msg"], "Started GET");
    // Anything else with a leading time is an application log, not a drain line.
    let (v, o) = parse_with(
        Format::Auto,
        b"2020-08-06T14:25:02.835618Z 0 [Note] [MY-012487] [InnoDB] DDL log recovery : begin",
    );
    assert_eq!(o.format, Some(Format::Applog));
    assert!(v[0].get("host").is_none() && v[0]["level"] == "note");
}

#[test]
fn continuation_lines_are_neither_events_of_a_format_nor_unparsed() {
    for line in [
        "\tat com.example.Main.run(Main.java:12)",
        "    at java.base/java.lang.Thread.run(Thread.java:829)",
        "Caused by: java.io.IOException: boom",
        "... 12 more",
        "java.io.FileNotFoundException: log4j.properties (not found)",
        "java.lang.NullPointerException",
    ] {
        let (v, o) = parse_with(Format::Auto, line.as_bytes());
        assert!(o.continuation && !o.unparsed, "{line}");
        assert_eq!(v[0]["line"], line);
        assert_eq!(v[0]["continuation"], true);
    }
    for line in ["java is fun", "com.example.Foo: started", "... and more"] {
        let (_, o) = parse_with(Format::Auto, line.as_bytes());
        assert!(!o.continuation, "{line}");
    }
}
