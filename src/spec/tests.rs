use super::*;
use crate::record::Val;

fn one(line: &str) -> StatDef {
    let set = StatSet::parse(line, "t.stats").unwrap_or_else(|e| panic!("{line}: {e}"));
    assert_eq!(set.stats.len(), 1, "{line}");
    set.stats.into_iter().next().unwrap()
}

fn err(text: &str) -> SpecError {
    match StatSet::parse(text, "t.stats") {
        Ok(s) => panic!("{text:?} parsed: {s:?}"),
        Err(e) => e,
    }
}

/// Set `k` to `v` coerced as pulse-parse does: integers, decimals, booleans, else a string.
pub(super) fn set_coerced(e: &mut Event, k: &str, v: &str) {
    if let Ok(i) = v.parse::<i64>() {
        e.set(k, Val::Int(i));
    } else if let Ok(f) = v.parse::<f64>() {
        e.set(k, Val::Float(f));
    } else if v == "true" || v == "false" {
        e.set(k, Val::Bool(v == "true"));
    } else {
        e.set_str(k, v);
    }
}

/// An event from `k=v` words: integers and decimals become numbers, true/false booleans,
/// anything else strings (as pulse-parse coerces attributes).
fn ev(s: &str) -> Event {
    let mut e = Event::new();
    for w in s.split_whitespace() {
        let (k, v) = w.split_once('=').unwrap_or((w, "true"));
        set_coerced(&mut e, k, v);
    }
    e
}

#[test]
fn parses_every_part_of_a_line() {
    let d = one("router.service  quantiles service in ms  60s  source=heroku ps=router  by host max-keys 500");
    assert_eq!(d.name, "router.service");
    assert_eq!(d.agg, AggSpec::Quantiles);
    assert_eq!(d.secs, 60);
    assert_eq!(d.value.as_deref(), Some("service"));
    assert_eq!(d.unit, Some(Unit::Ms));
    assert_eq!(d.group_by, vec!["host"]);
    assert_eq!(d.max_keys, 500);
    assert_eq!(d.filter.any.len(), 1);
    assert_eq!(d.filter.any[0].len(), 2);
    assert_eq!(d.line, 1);

    let c = one("events count 1m");
    assert_eq!(
        (c.agg.clone(), c.secs, c.value.clone()),
        (AggSpec::Count, 60, None)
    );
    assert!(c.filter.is_empty() && c.group_by.is_empty() && c.max_keys == DEFAULT_MAX_KEYS);

    let t = one("paths top 5 path 10m status? by host, status");
    // An old line: the default cap.
    assert_eq!(t.agg, AggSpec::Top { k: 5, cap: 1000 });
    for line in [
        "paths top 5 path cap 50 10m status?",
        "paths top 5 path 10m cap 50 status?",
    ] {
        assert_eq!(one(line).agg, AggSpec::Top { k: 5, cap: 50 }, "{line}");
        assert_eq!(one(line).filter.to_string(), "status?", "{line}");
    }
    assert_eq!(t.secs, 600);
    assert_eq!(t.group_by, vec!["host", "status"]);

    let u = one("clients unique fwd 1h where fwd?");
    assert_eq!((u.agg.clone(), u.secs), (AggSpec::Unique, 3600));

    let l = one("web.mem last sample#memory_total per source sum within 120s in MB 60s sample#memory_total? by app");
    assert_eq!(
        l.agg,
        AggSpec::Last {
            func: LastFn::Sum,
            recency: 120
        }
    );
    assert_eq!(l.partition.as_deref(), Some("source"));
    assert_eq!(l.value.as_deref(), Some("sample#memory_total"));
    assert_eq!(l.unit, Some(Unit::MB));
    let l2 = one("x last v per a,b max 30s");
    assert_eq!(
        l2.agg,
        AggSpec::Last {
            func: LastFn::Max,
            recency: DEFAULT_RECENCY
        }
    );
    // Options may also follow the window.
    let s = one("s summary service 60s as s");
    assert_eq!(s.unit, Some(Unit::S));
}

#[test]
fn comments_blank_lines_continuations_and_l2met() {
    let set = StatSet::parse(
        "# header\n\n  a count 60s   # trailing comment\nl2met on\nb count \\\n   10s \\\n   status=500\n",
        "f",
    )
    .unwrap();
    assert!(set.l2met);
    assert_eq!(set.stats.len(), 2);
    assert_eq!(set.stats[1].line, 5);
    assert_eq!(set.stats[1].secs, 10);
    assert_eq!(set.stats[1].filter.to_string(), "status=500");
    assert!(!StatSet::parse("l2met on\nl2met off", "f").unwrap().l2met);
}

#[test]
fn errors_name_the_file_and_line_and_what_was_expected() {
    for (text, line, want) in [
        ("a count", 1, "expected a window"),
        ("\n\na count 60", 3, "needs a unit"),
        ("a count 1.5s", 1, "whole number of seconds"),
        ("a count 0s", 1, "at least 1s"),
        ("a average x 60s", 1, "expected an aggregate"),
        ("a", 1, "expected an aggregate"),
        ("a summary", 1, "summary needs the field it reads"),
        ("a top x f 60s", 1, "expected a count K"),
        ("a last v sum 60s", 1, "expected per"),
        ("a last v per p median 60s", 1, "sum, mean, count or max"),
        (
            "a count 60s status",
            1,
            "expected an operator after \"status\"",
        ),
        ("a count 60s status>high", 1, "needs a number"),
        ("a count 60s by", 1, "expected field names after by"),
        (
            "a count 60s max-keys 5",
            1,
            "only applies to a stat with by",
        ),
        (
            "a count 60s by h max-keys 0",
            1,
            "number ≥ 1 after max-keys",
        ),
        ("a count 60s by h max-keys", 1, "a number after max-keys"),
        ("a count in ms 60s", 1, "a unit applies only to"),
        ("a summary x in furlongs 60s", 1, "unknown unit"),
        (
            "a summary x within 60s 60s",
            1,
            "within applies only to last",
        ),
        ("a count cap 5 60s", 1, "cap applies only to top"),
        ("a top 3 x cap 0 60s", 1, "from 1 to 10000 after cap"),
        ("a top 3 x cap 10001 60s", 1, "from 1 to 10000 after cap"),
        ("a top 3 x cap 60s", 1, "from 1 to 10000 after cap"),
        ("a top 3 x cap 5 60s cap 6", 1, "cap given twice"),
        ("bad! count 60s", 1, "may contain only"),
        (
            "a count 60s\nb count 60s\na count 10s",
            3,
            "already defined at line 1",
        ),
        ("l2met maybe", 1, "on or off"),
        ("a count 60s msg~\"open", 1, "unterminated"),
    ] {
        let e = err(text);
        assert_eq!(e.line, line, "{text}: {e}");
        assert_eq!(e.origin, "t.stats");
        assert!(e.message.contains(want), "{text}: {e}");
        assert!(
            e.to_string().starts_with(&format!("t.stats:{line}:")),
            "{e}"
        );
    }
}

#[test]
fn input_reads_values_in_the_declared_unit() {
    let mut scratch = String::new();
    let q = one("q quantiles service in ms 60s");
    assert_eq!(
        q.input(&ev("service=1.2s"), 0.0, &mut scratch),
        Some(Input::Num(1200.0))
    );
    assert_eq!(
        q.input(&ev("service=37ms"), 0.0, &mut scratch),
        Some(Input::Num(37.0))
    );
    assert_eq!(
        q.input(&ev("service=37"), 0.0, &mut scratch),
        Some(Input::Num(37.0))
    );
    assert_eq!(q.input(&ev("service=fast"), 0.0, &mut scratch), None);
    assert_eq!(q.input(&ev("service=3pages"), 0.0, &mut scratch), None);
    assert_eq!(q.input(&ev("other=1"), 0.0, &mut scratch), None);
    let s = one("s summary pages 60s");
    assert_eq!(
        s.input(&ev("pages=348836pages"), 0.0, &mut scratch),
        Some(Input::Num(348836.0))
    );
    let m = one("m summary mem in MB 60s");
    assert_eq!(
        m.input(&ev("mem=512kB"), 0.0, &mut scratch),
        Some(Input::Num(0.5))
    );
    assert_eq!(
        m.input(&ev("mem=21.00MB"), 0.0, &mut scratch),
        Some(Input::Num(21.0))
    );
    let c = one("c count 60s");
    assert_eq!(c.input(&ev(""), 0.0, &mut scratch), Some(Input::One));
}

#[test]
fn input_writes_text_for_unique_and_top() {
    let mut scratch = String::new();
    let u = one("u unique status 60s");
    assert_eq!(
        u.input(&ev("status=200"), 0.0, &mut scratch),
        Some(Input::Text("200"))
    );
    assert_eq!(
        u.input(&ev("status=ok"), 0.0, &mut scratch),
        Some(Input::Text("ok"))
    );
    assert_eq!(
        u.input(&ev("status=true"), 0.0, &mut scratch),
        Some(Input::Text("true"))
    );
    let mut null = Event::new();
    null.set("status", Val::Null);
    assert_eq!(u.input(&null, 0.0, &mut scratch), None);
    let t = one("t top 3 x 60s");
    assert_eq!(
        t.input(&ev("x=2.5"), 0.0, &mut scratch),
        Some(Input::Text("2.5"))
    );
}

#[test]
fn input_for_last_carries_partition_and_time() {
    let mut scratch = String::new();
    let l = one("l last sample#memory_total per source sum in MB 60s");
    assert_eq!(
        l.input(
            &ev("source=web.1 sample#memory_total=21.00MB"),
            12.5,
            &mut scratch
        ),
        Some(Input::Last {
            part: "web.1",
            time: 12.5,
            value: 21.0
        })
    );
    assert_eq!(
        l.input(&ev("sample#memory_total=21.00MB"), 1.0, &mut scratch),
        None
    );
    let two = one("d last n per instance_id,drain_id sum 60s");
    assert_eq!(
        two.input(&ev("instance_id=7 drain_id=d.1 n=3"), 1.0, &mut scratch),
        Some(Input::Last {
            part: "7,d.1",
            time: 1.0,
            value: 3.0
        })
    );
    let n = one("n last v per instance_id sum 60s");
    assert_eq!(
        n.input(&ev("instance_id=42 v=1"), 1.0, &mut scratch),
        Some(Input::Last {
            part: "42",
            time: 1.0,
            value: 1.0
        })
    );
}

#[test]
fn group_keys_join_fields_and_mark_missing_ones() {
    let d = one("g count 60s by host,status");
    let mut key = String::from("stale");
    assert!(d.group_key(&ev("host=a.example.com status=200"), &mut key));
    assert_eq!(key, "a.example.com,200");
    assert!(d.group_key(&ev("status=503"), &mut key));
    assert_eq!(key, "-,503");
    let none = one("n count 60s");
    assert!(!none.group_key(&ev("host=x"), &mut key));
    assert!(key.is_empty());
}

#[test]
fn list_re_parses_to_the_same_set() {
    let text = r#"
l2met on
a count 60s
b quantiles service in ms 60s source=heroku ps=router by host max-keys 500
c last sample#memory_total per source,dyno mean within 90s in MB 10s sample#memory_total? || x>=1.5s by app
d top 7 path 120s path~"/api v2"|/admin status!=404|410 !unparsed
f top 3 path cap 20 60s
e unique "odd field" 1s "other field"="a|b" by "k k",z
"#;
    let set = StatSet::parse(text, "t").unwrap();
    let listed = set.list();
    let again = StatSet::parse(&listed, "listed").unwrap();
    assert_eq!(strip_lines(set), strip_lines(again), "{listed}");
    assert!(listed.starts_with("l2met on\n"));
    assert_eq!(listed.lines().count(), 7);
    assert!(listed.contains("top 3 path cap 20 "), "{listed}");
}

fn strip_lines(mut s: StatSet) -> StatSet {
    for d in &mut s.stats {
        d.line = 0;
    }
    s
}

#[test]
fn defaults_parse_and_list_round_trips() {
    let d = StatSet::defaults();
    assert!(d.l2met);
    assert!(d.stats.len() >= 20);
    let again = StatSet::parse(&d.list(), "listed").unwrap();
    assert_eq!(strip_lines(d.clone()), strip_lines(again));
    for name in [
        "events.total",
        "events.unparsed",
        "router.requests",
        "router.status.5xx",
        "router.service",
        "router.connect",
        "router.errors",
        "router.clients",
        "runtime.memory",
        "runtime.load",
        "http.requests",
        "http.bytes",
    ] {
        assert!(d.stats.iter().any(|s| s.name == name), "{name}");
    }
}

#[test]
fn defaults_compute_router_and_runtime_values() {
    let d = StatSet::defaults();
    let get = |n: &str| d.stats.iter().find(|s| s.name == n).unwrap();
    let router = ev(
        "source=heroku ps=router at=info method=GET path=/ host=myapp.herokuapp.com \
                     fwd=1.2.3.4 dyno=web.1 connect=1ms service=37ms status=503 bytes=1548",
    );
    let runtime = ev("source=web.1 host=host dyno=heroku.1.abc sample#memory_total=21.00MB sample#load_avg_1m=0.5");
    let apache = ev("host=66.249.73.135 method=GET path=/index.html status=200 bytes=1024");
    let mut scratch = String::new();
    let mut key = String::new();

    let s5 = get("router.status.5xx");
    assert!(s5.matches(&router) && !get("router.status.2xx").matches(&router));
    assert!(
        !s5.matches(&apache),
        "router stats need source=heroku ps=router"
    );

    let svc = get("router.service");
    assert!(svc.matches(&router));
    assert_eq!(
        svc.input(&router, 0.0, &mut scratch),
        Some(Input::Num(37.0))
    );
    assert!(svc.group_key(&router, &mut key));
    assert_eq!(key, "myapp.herokuapp.com");

    let clients = get("router.clients");
    assert_eq!(
        clients.input(&router, 0.0, &mut scratch),
        Some(Input::Text("1.2.3.4"))
    );

    let errors = get("router.errors");
    assert!(!errors.matches(&router));
    assert!(errors.matches(&ev("source=heroku ps=router at=error code=H12 status=503")));

    let mem = get("runtime.memory");
    assert!(mem.matches(&runtime) && !mem.matches(&router));
    assert_eq!(
        mem.input(&runtime, 5.0, &mut scratch),
        Some(Input::Last {
            part: "web.1",
            time: 5.0,
            value: 21.0
        })
    );
    assert!(get("runtime.load").matches(&runtime));

    let http = get("http.requests");
    assert!(http.matches(&apache) && http.matches(&router));
    http.group_key(&apache, &mut key);
    assert_eq!(key, "200");
    let bytes = get("http.bytes");
    assert_eq!(
        bytes.input(&apache, 0.0, &mut scratch),
        Some(Input::Num(1024.0))
    );
    assert!(!bytes.matches(&ev("status=200 bytes=-")));

    assert!(get("events.unparsed").matches(&ev("line=garbage unparsed=true")));
    assert!(!get("events.unparsed").matches(&apache));
    assert!(get("events.total").matches(&apache));
}

#[test]
fn extend_rejects_duplicates_and_merges_l2met() {
    let mut a = StatSet::parse("a count 60s", "a").unwrap();
    let b = StatSet::parse("l2met on\nb count 60s", "b").unwrap();
    a.extend(b).unwrap();
    assert!(a.l2met);
    assert_eq!(a.stats.len(), 2);
    let dup = StatSet::parse("\nb count 10s", "c").unwrap();
    let e = a.extend(dup).unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("\"b\" is defined twice"), "{e}");
}

#[test]
fn l2met_keys() {
    assert_eq!(
        l2met("count#requests"),
        Some(("requests", AggSpec::Summary))
    );
    assert_eq!(
        l2met("measure#db.latency"),
        Some(("db.latency", AggSpec::Quantiles))
    );
    assert_eq!(
        l2met("sample#memory_total"),
        Some(("memory_total", AggSpec::Summary))
    );
    assert_eq!(l2met("unique#user"), Some(("user", AggSpec::Unique)));
    assert_eq!(l2met("status"), None);
    assert_eq!(l2met("count#"), None);
    assert_eq!(l2met("other#x"), None);
}

const MAN: &str = include_str!("../../man/pulse.stats.5");

/// The `.EX` blocks of a section of the man page, roff escapes undone.
fn man_blocks(section: &str) -> Vec<String> {
    let start = MAN.find(&format!(".SH {section}\n")).expect("section");
    let body = &MAN[start + 1..];
    let body = &body[..body.find("\n.SH ").unwrap_or(body.len())];
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in body.lines() {
        match (line, cur.as_mut()) {
            (".EX", None) => cur = Some(String::new()),
            (".EE", Some(_)) => blocks.extend(cur.take()),
            (l, Some(b)) => {
                b.push_str(&l.replace("\\-", "-").replace("\\e", "\\"));
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn man_page_examples_parse_and_cover_the_grammar() {
    let text: String = man_blocks("EXAMPLES")
        .into_iter()
        .filter(|b| !b.starts_with("pulse-") && !b.starts_with("zcat"))
        .collect();
    let set = StatSet::parse(&text, "pulse.stats.5").unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(set.stats.len() >= 15, "{}", set.stats.len());
    assert!(set.l2met);
    let aggs: Vec<String> = set.stats.iter().map(|s| s.agg.to_string()).collect();
    for a in [
        "count",
        "summary",
        "quantiles",
        "unique",
        "top 10",
        "top 10 cap 5000",
    ] {
        assert!(aggs.iter().any(|x| x == a), "no {a} example");
    }
    for f in ["sum", "count", "max"] {
        assert!(
            aggs.iter().any(|x| x.starts_with(&format!("last {f}"))),
            "no last {f}"
        );
    }
    let conds: Vec<&Test> = set
        .stats
        .iter()
        .flat_map(|s| s.filter.any.iter().flatten().map(|c| &c.test))
        .collect();
    let has = |p: &dyn Fn(&Test) -> bool| conds.iter().any(|t| p(t));
    assert!(has(&|t| matches!(t, Test::Eq(l) if l.len() == 1)));
    assert!(
        has(&|t| matches!(t, Test::Eq(l) if l.len() > 1)),
        "alternatives"
    );
    assert!(has(&|t| matches!(t, Test::Ne(_))));
    assert!(has(&|t| matches!(t, Test::Present)));
    assert!(has(&|t| matches!(t, Test::Absent)));
    assert!(has(&|t| matches!(t, Test::Contains(_))));
    assert!(has(&|t| matches!(t, Test::NotContains(_))));
    for op in [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge] {
        assert!(has(&|t| matches!(t, Test::Cmp(o, _) if *o == op)), "{op:?}");
    }
    assert!(
        set.stats.iter().any(|s| s.filter.any.len() > 1),
        "an || example"
    );
    assert!(set.stats.iter().any(|s| s.max_keys != DEFAULT_MAX_KEYS));
    assert!(set.stats.iter().any(|s| s.group_by.len() > 1));
}

#[test]
fn man_page_error_messages_are_the_real_ones() {
    let blocks = man_blocks("ERRORS");
    let lines: Vec<&str> = blocks[0].lines().collect();
    let e1 = err("\n\na count 60");
    let e2 = err("\n\n\n\n\n\na count 60s status 500");
    assert_eq!(lines[0], e1.to_string().replace("t.stats", "my.stats"));
    assert_eq!(lines[1], e2.to_string().replace("t.stats", "my.stats"));
}

proptest::proptest! {
    /// Any text either parses or gives an error with a line number inside the text; what
    /// parses lists back to itself.
    #[test]
    fn parse_never_panics(text in "([a-z#\"|&!=<>~?,\\\\ .0-9]{0,12}( |\n)){0,8}") {
        match StatSet::parse(&text, "p") {
            Ok(set) => {
                let again = StatSet::parse(&set.list(), "listed").expect("list re-parses");
                proptest::prop_assert_eq!(strip_lines(set), strip_lines(again));
            }
            Err(e) => proptest::prop_assert!(e.line >= 1 && e.line <= text.lines().count().max(1)),
        }
    }

    #[test]
    fn stat_lines_survive_list(
        name in "[a-z][a-z0-9._-]{0,8}",
        field in "[a-z_][a-z_#.]{0,5}",
        value in "[ -~]{0,6}",
        secs in 1u32..100_000,
    ) {
        let (mut quoted, mut quoted_y) = (String::new(), String::new());
        lex::write_word(&mut quoted, &value, &['|', '(', ')']);
        lex::write_word(&mut quoted_y, &format!("{value}y"), &['|', '(', ')']);
        let text = format!("{name} summary {field} {secs}s {field}!={quoted} {field}~x|{quoted_y} by {field}");
        let set = StatSet::parse(&text, "p").map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{text}: {e}")))?;
        let again = StatSet::parse(&set.list(), "listed").expect("list re-parses");
        proptest::prop_assert_eq!(strip_lines(set), strip_lines(again));
    }
}

#[test]
fn parentheses_group_and_are_multiplied_out() {
    let d = one("e count 60s (status=500 || status=502) ps=router");
    assert_eq!(
        d.filter.to_string(),
        "status=500 ps=router || status=502 ps=router"
    );
    assert!(d.matches(&ev("status=502 ps=router")));
    assert!(!d.matches(&ev("status=502 ps=web")));
    assert!(!d.matches(&ev("status=404 ps=router")));
    // Nested, with `&&`, blanks inside the parentheses and a group first on the line.
    let n = one("n count 60s where ( a? && (b=1 || c=2) ) || d? by host");
    assert_eq!(n.filter.to_string(), "a? b=1 || a? c=2 || d?");
    assert_eq!(n.group_by, vec!["host"]);
    let x = one("x count 60s (a? || b?) (c? || d?)");
    assert_eq!(x.filter.any.len(), 4);
    assert!(x.matches(&ev("b d")) && !x.matches(&ev("a b")));
    // A condition repeated by the expansion is kept once per group.
    let r = one("r count 60s (a? || b?) a?");
    assert_eq!(r.filter.to_string(), "a? || b? a?");
    // Parentheses in quotes are text; the list reads back.
    let q = one(r#"q count 60s ("odd (name)"=1 || b?) msg~"(error)""#);
    let set = StatSet::parse(&q.to_string(), "again").unwrap();
    assert_eq!(set.stats[0].filter, q.filter);
    assert!(q.matches(&{
        let mut e = Event::new();
        e.set_str("msg", "x (error) y");
        e.set_str("odd (name)", "1");
        e
    }));
}

#[test]
fn parenthesis_and_field_errors_give_line_and_column() {
    for (text, line, col, want) in [
        ("a count 60s (status=500", 1, 13, "`(` is not closed"),
        ("a count 60s status=500)", 1, 23, "`)` without its `(`"),
        ("a count 60s (status=500 by host", 1, 13, "not closed"),
        ("a count 60s ()", 1, 13, "empty parentheses"),
        ("a count 60s !(a? || b?)", 1, 13, "cannot be negated"),
        ("a count 60s (a? ||)", 1, 19, "`||` needs a condition"),
        ("a count 60s msg~x(y)", 1, 18, "written in double quotes"),
        ("\na count 60s st;atus=1", 2, 13, "holds ';'"),
        ("a count 60s by (host)", 1, 16, "holds '('"),
        ("a count 60s \\\n  by h,o;st", 2, 6, "holds ';'"),
        ("a summary (latency) 60s", 1, 11, "holds '('"),
        (
            "a count 60s (a?||b?)(c?||d?)(e?||f?)(g?||h?)(i?||j?)(k?||l?)(m?||n?)",
            1,
            61,
            "more than 64 alternatives",
        ),
    ] {
        let e = err(text);
        assert_eq!((e.line, e.column), (line, Some(col)), "{text}: {e}");
        assert!(e.message.contains(want), "{text}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("t.stats:{line}:{col}: ")),
            "{e}"
        );
    }
    // Six pairs make 64: allowed.
    one("a count 60s (a?||b?)(c?||d?)(e?||f?)(g?||h?)(i?||j?)(k?||l?)");
}

#[test]
fn an_aggregate_without_its_field_says_so() {
    for (text, want) in [
        (
            "a summary 60s",
            "summary needs the field it reads before the window",
        ),
        (
            "a quantiles 1m x?",
            "quantiles needs the field it reads before the window",
        ),
        ("a unique 10s", "unique needs the field it reads"),
        (
            "a top 5 60s",
            "top 5 needs the field it reads before the window",
        ),
        ("a last 60s", "last needs the field it reads"),
        (
            "a last v per 60s sum",
            "last v per needs the field it reads",
        ),
        (
            "a summary",
            "summary needs the field it reads (summary FIELD)",
        ),
        ("a summary status=500 60s", "holds '='"),
        ("a count service 60s", "count takes no field"),
    ] {
        let e = err(text);
        assert!(e.message.contains(want), "{text}: {e}");
    }
    // A field really named like a window is quoted.
    assert_eq!(one(r#"a summary "60s" 60s"#).value.as_deref(), Some("60s"));
}

#[test]
fn windows_take_seconds_minutes_hours_and_days() {
    for (w, secs) in [
        ("1s", 1),
        ("90s", 90),
        ("30m", 1800),
        ("5min", 300),
        ("2h", 7200),
        ("1.5h", 5400),
        ("1d", 86_400),
        ("7d", 604_800),
        ("2days", 172_800),
        ("1000ms", 1),
    ] {
        assert_eq!(one(&format!("a count {w}")).secs, secs, "{w}");
    }
    for (w, want) in [
        ("1w", "a number with a unit s, m, h or d"),
        ("60", "needs a unit"),
        ("1.5s", "whole number of seconds"),
    ] {
        let e = err(&format!("a count {w}"));
        assert!(e.message.contains(want), "{w}: {e}");
    }
    let l = one("l last v per p sum within 1d 1d");
    assert_eq!(
        l.agg,
        AggSpec::Last {
            func: LastFn::Sum,
            recency: 86_400
        }
    );
}

#[test]
fn a_long_group_key_is_cut_with_a_marker_and_its_length_returned() {
    use crate::record::ValRef;
    let long = "p".repeat(50);
    let mut out = String::new();
    let got = write_group_key([Some(ValRef::Str(&long)), None].into_iter(), 20, &mut out);
    assert_eq!(got, Some(52));
    assert!(
        out.starts_with(&"p".repeat(20)) && out.contains("[cut from 52 bytes #"),
        "{out}"
    );
    let got = write_group_key([Some(ValRef::Str("a")), None].into_iter(), 20, &mut out);
    assert_eq!((got, out.as_str()), (None, "a,-"));
}
