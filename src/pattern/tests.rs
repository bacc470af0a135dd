use super::*;
use crate::parse::{Options, Parser};

fn parsed(text: &str) -> Patterns {
    Patterns::parse(text, "test.patterns").unwrap()
}

fn err(text: &str) -> String {
    Patterns::parse(text, "test.patterns")
        .unwrap_err()
        .to_string()
}

/// Parse `line` with the patterns `text` (year 2026) and return the event as JSON.
fn event(text: &str, line: &str) -> serde_json::Value {
    let p = Arc::new(parsed(text));
    let mut parser =
        Parser::new(Options::new(crate::parse::Format::Auto, Some(2026), 0)).with_patterns(Some(p));
    let mut out = Vec::new();
    parser.parse_line(line.as_bytes(), &mut |ev| ev.write_json(&mut out));
    serde_json::from_slice(&out).unwrap()
}

const SSHD: &str = r"match /^Failed password for (?:invalid user )?(?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+)/ where source=sshd";

#[test]
fn grammar_reads_each_kind_of_line() {
    let p = parsed(&format!(
        "# comment\n\n{SSHD}\nkv where source=sshd\nkv line\nmatch detail /(?P<a>x)/ \\\n  where level=error || level=crit\n\
         format app /(?P<time>\\S+ \\S+) (?P<msg>.*)/ time \"%Y-%m-%d %H:%M:%S\" # trailing comment\n"
    ));
    assert_eq!(p.counts(), (4, 1));
    assert_eq!(&*p.rules[0].field, "msg");
    assert!(matches!(p.rules[1].kind, Kind::Kv));
    assert!(!p.rules[1].filter.is_empty());
    assert_eq!(&*p.rules[2].field, "line");
    assert!(p.rules[2].filter.is_empty());
    assert_eq!(&*p.rules[3].field, "detail");
    assert_eq!(p.rules[3].filter.any.len(), 2);
    assert_eq!(p.formats[0].name, "app");
    assert!(p.formats[0].caps.time.is_some());
}

#[test]
fn a_slash_in_a_regex_is_written_escaped() {
    let p = parsed(r"match /GET (?P<path>\/[a-z\/]+) \d/");
    let Kind::Match(c) = &p.rules[0].kind else {
        panic!()
    };
    assert_eq!(c.regex.as_str(), r"GET (?P<path>/[a-z/]+) \d");
}

#[test]
fn errors_name_the_file_and_line() {
    assert_eq!(
        err("\n\nmtach /x/"),
        "test.patterns:3: expected a rule: match, kv or format; found \"mtach\""
    );
    assert!(err("match /(?P<a>x/").starts_with("test.patterns:1: bad regular expression"));
    assert!(err("# c\nmatch /(?P<a>x)").contains(":2: unterminated /REGEX/"));
    assert!(err("match /x/").contains("no named capture"));
    assert!(err("match msg").contains("expected /REGEX/"));
    assert!(err("match /(?P<a>x)/ where status>>5").starts_with("test.patterns:1:"));
    assert!(err("match /(?P<a>x)/ by host").contains("unexpected \"by\""));
    assert!(err("match /(?P<a>x)/ time \"%Y\"").contains("whole time"));
    assert!(err("match /(?P<a>x)/ time %F%T").contains("no (?P<time>"));
    assert!(err("format f /(?P<time>\\S+) (?P<msg>.*)/").contains("needs its layout"));
    assert!(err("format /x/").contains("NAME"));
    assert!(err("format a /(?P<x>.)/\nformat a /(?P<y>.)/").starts_with("test.patterns:2:"));
    assert!(err("kv msg source=sshd").contains("where FILTER"));
    assert!(err("kv a=b").contains("not a field name"));
}

#[test]
fn captures_become_coerced_fields() {
    let v = event(
        SSHD,
        "Feb 13 20:07:26 box sshd[4242]: Failed password for invalid user admin from 218.188.2.4 port 50514 ssh2",
    );
    assert_eq!(v["source"], "sshd");
    assert_eq!(v["user"], "admin");
    assert_eq!(v["ip"], "218.188.2.4");
    assert_eq!(v["port"], 50514);
    assert_eq!(v["time"], "2026-02-13T20:07:26Z");
    // Coercion as for attributes: decimals, booleans, empty is null; envelope names stay
    // strings.
    let v = event(
        r"match /^d:(?P<d>\S*) b:(?P<b>\S+) e:(?P<e>\S*) s:(?P<s>\S+) l:(?P<level>\S+)/",
        "Feb 13 20:07:26 box app: d:2.5 b:true e: s:37ms l:200",
    );
    assert_eq!(v["d"], 2.5);
    assert_eq!(v["b"], true);
    assert_eq!(v["e"], serde_json::Value::Null);
    assert_eq!(v["s"], "37ms");
    assert_eq!(v["level"], "200");
}

#[test]
fn a_capture_that_took_no_part_sets_nothing() {
    let v = event(
        r"match /^Failed password for (?:invalid user (?P<invalid>\S+)|(?P<user>\S+)) from/",
        "Feb 13 20:07:26 box sshd[1]: Failed password for root from 1.2.3.4 port 22 ssh2",
    );
    assert_eq!(v["user"], "root");
    assert!(v.get("invalid").is_none(), "{v}");
}

#[test]
fn the_filter_is_tested_first_and_rules_see_earlier_captures() {
    let rules = format!("{SSHD}\nmatch ip /^(?P<net>\\d+\\.\\d+)\\./ where user=root");
    // Not sshd: the rule does not run, though its regex would match.
    let v = event(
        &rules,
        "Feb 13 20:07:26 box kernel: Failed password for root from 1.2.3.4 port 22 ssh2",
    );
    assert!(v.get("ip").is_none(), "{v}");
    let v = event(
        &rules,
        "Feb 13 20:07:26 box sshd[1]: Failed password for root from 10.20.3.4 port 22 ssh2",
    );
    assert_eq!(v["net"], 10.2);
    let v = event(
        &rules,
        "Feb 13 20:07:26 box sshd[1]: Failed password for bob from 10.20.3.4 port 22 ssh2",
    );
    assert!(v.get("net").is_none(), "{v}");
}

#[test]
fn kv_reads_pairs_anywhere_in_the_message() {
    let line = "Feb 13 20:07:26 box sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=218.188.2.4  user=root";
    let without = event("", line);
    assert!(without.get("rhost").is_none(), "{without}");
    let v = event("kv where source=sshd", line);
    assert_eq!(v["rhost"], "218.188.2.4");
    assert_eq!(v["uid"], 0);
    assert_eq!(v["logname"], serde_json::Value::Null);
    assert_eq!(v["user"], "root");
    assert_eq!(v["tty"], "ssh");
    // `pam_unix(sshd:auth):` and `failure;` are no pairs.
    assert_eq!(v.as_object().unwrap().len(), 5 + 7, "{v}");
    let mut ev = Event::new();
    let n = kv_anywhere(&mut ev, &mut Vec::new(), r#"x a="b c" =d (e=1 f=2,"#);
    assert_eq!(n, 2);
    assert_eq!(ev.get_str("a"), Some("b c"));
    assert_eq!(ev.get_str("f"), Some("2,"));
}

#[test]
fn a_custom_format_with_a_time_layout() {
    let fmt = "format app /(?P<time>\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d,\\d+) (?P<level>[A-Z]+) +\\[(?P<thread>[^\\]]+)\\] (?P<msg>.*)/ time \"%Y-%m-%d %H:%M:%S,%f\"\n\
               match /took (?P<ms>\\d+) ?ms/";
    let v = event(
        fmt,
        "2015-03-04 05:06:07,250 WARN  [main] query took 1200 ms",
    );
    assert_eq!(v["time"], "2015-03-04T05:06:07.250Z");
    assert_eq!(v["level"], "WARN");
    assert_eq!(v["thread"], "main");
    assert_eq!(v["msg"], "query took 1200 ms");
    assert_eq!(v["ms"], 1200);
    // A message that looks like logfmt gives its attributes, as built-in formats do.
    let v = event(fmt, "2015-03-04 05:06:07,250 INFO [w1] at=done n=3");
    assert_eq!(v["n"], 3);
    // A time that does not fit its layout: not this format; the built-in detection goes on.
    let v = event(fmt, "2015-02-30 05:06:07,250 INFO [w1] at=done n=3");
    assert_eq!(v["unparsed"], true);
    // Other lines are read as before.
    let v = event(fmt, "at=info n=4");
    assert_eq!(v["n"], 4);
}

#[test]
fn a_forced_format_skips_custom_formats() {
    let p = Arc::new(parsed(r"format all /(?P<whole>.*)/"));
    let mut parser = Parser::new(Options::new(crate::parse::Format::Logfmt, Some(2026), 0))
        .with_patterns(Some(p));
    let mut out = Vec::new();
    parser.parse_line(b"a=1", &mut |ev| ev.write_json(&mut out));
    assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":1}"#);
}

#[test]
fn load_reads_files_in_order_and_reports_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.patterns");
    let b = dir.path().join("b.patterns");
    std::fs::write(&a, "kv\n").unwrap();
    std::fs::write(&b, "match /(?P<x>.)/\nbogus\n").unwrap();
    assert!(Patterns::load(&[]).unwrap().is_none());
    assert_eq!(
        Patterns::load(std::slice::from_ref(&a))
            .unwrap()
            .unwrap()
            .counts(),
        (1, 0)
    );
    let e = Patterns::load(&[a, b.clone()]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string().contains("b.patterns:2: expected a rule"),
        "{e}"
    );
    let e = Patterns::load(&[dir.path().join("none")]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
}

/// [`Matcher::only_fields`]: the captures nobody reads are not set, those a later rule reads
/// are, and a rule left setting nothing does not run.
#[test]
fn only_the_fields_read_are_set() {
    let text = format!("{SSHD}\nmatch user /^(?P<first>.)/\nmatch /(?P<never>Failed)/");
    let p = Arc::new(parsed(&text));
    let wanted: Vec<Box<str>> = vec!["time".into(), "ip".into(), "first".into()];
    let mut parser = Parser::new(Options::new(crate::parse::Format::Auto, Some(2026), 0))
        .with_patterns(Some(p))
        .reading_only(&wanted);
    let line = "Jan  1 00:00:00 web2 sshd[16863]: Failed password for invalid user pi from 197.147.66.190 port 29573 ssh2";
    let mut out = Vec::new();
    parser.parse_line(line.as_bytes(), &mut |ev| ev.write_json(&mut out));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["ip"], "197.147.66.190");
    // Read by the second rule, so set, though no caller field.
    assert_eq!(v["user"], "pi");
    assert_eq!(v["first"], "p");
    assert!(v.get("port").is_none(), "{v}");
    assert!(v.get("never").is_none(), "{v}");
    // Without reading_only, every capture.
    let all = event(&text, line);
    assert_eq!(all["port"], 29573);
    assert_eq!(all["never"], "Failed");
}

/// A regex split at its leading literal finds what the whole regex finds, capture for
/// capture; one whose rest might look behind itself (or with no leading literal) is not
/// split.
#[test]
fn a_leading_literal_is_compared_not_searched() {
    let sshd =
        r"^Failed password for (?:invalid user )?(?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+)";
    let cases: [(&str, bool); 9] = [
        (sshd, true),
        (r"^ab(?P<x>c+)$", true),
        (r"^é (?P<x>\w)(?m:$)", true),
        (r"^ab\b(?P<x>\w+)", false),
        (r"(?i)^ab(?P<x>c)", false),
        (r"(?m)^ab(?P<x>.)", false),
        (r"^(?P<x>a)b", false),
        (r"^a(?P<x>b)|^c(?P<y>d)", false),
        (r"^ab(?P<x>\B.)", false),
    ];
    let texts = [
        "Failed password for invalid user pi from 197.147.66.190 port 29573 ssh2",
        "Failed password for root from 10.0.0.1 port 22 ssh2",
        "Failed password for invalid user  from 1.2.3.4 port 5",
        "Failed password for invalid user from 1.2.3.4 port 5",
        "Failed password for",
        "abccc",
        "abccc\n",
        "ab cd",
        "abc",
        "é x\ny",
        "cd",
        "abé",
        "",
    ];
    for (re, splits) in cases {
        let caps = captures(re, false, None).unwrap();
        assert_eq!(caps.lead.is_some(), splits, "{re}");
        let whole = Regex::new(re).unwrap();
        let mut locs = caps.locations();
        for text in texts {
            let want: Option<Vec<(&str, Option<&str>)>> = whole.captures(text).map(|c| {
                caps.names
                    .iter()
                    .map(|(_, n, _)| (&**n, c.name(n).map(|m| m.as_str())))
                    .collect()
            });
            let got = caps.search(&mut locs, text).map(|hay| {
                caps.names
                    .iter()
                    .map(|(g, n, _)| (&**n, locs.get(*g).map(|(s, e)| &hay[s..e])))
                    .collect()
            });
            assert_eq!(got, want, "{re} on {text:?}");
        }
    }
}

/// The regexes of pulse.patterns(5)'s examples that [`seq`] can search take it; the others
/// are left to the regex crate (and give the same captures either way: see `seq`'s tests).
#[test]
fn the_documented_examples_take_the_fast_search_where_they_can() {
    let cases = [
        (
            r"^Failed password for (?:invalid user )?(?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+)",
            false,
            true,
        ),
        (
            r"(?P<time>\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] (?P<pid>\d+)#(?P<tid>\d+): (?:\*(?P<connection>\d+) )?(?P<msg>.*)",
            true,
            true,
        ),
        (
            r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC) \[(?P<pid>\d+)\] (?P<level>[A-Z]+\d?):  (?P<msg>.*)",
            true,
            true,
        ),
        (
            r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] (?P<msg>.*)",
            true,
            true,
        ),
        // Not anchored; an alternation.
        (r#"upstream: "(?P<upstream>[^"]+)""#, false, false),
        (
            r"^duration: (?P<duration>\d+(?:\.\d+)?) ms  (?:statement|execute [^:]*): (?P<statement>.*)",
            false,
            false,
        ),
    ];
    for (re, anchored, fast) in cases {
        assert_eq!(
            captures(re, anchored, None).unwrap().seq.is_some(),
            fast,
            "{re}"
        );
    }
}
