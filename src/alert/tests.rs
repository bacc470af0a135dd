use proptest::prelude::*;
use serde::Serialize;

use super::*;

/// The check result as `Records::write_json` writes it, read back.
fn to_json(t: &Transition, rules: &[Rule]) -> serde_json::Value {
    let mut out = Vec::new();
    Records::new(rules).write_json(t, &mut out);
    serde_json::from_slice(&out).expect("a record is JSON")
}

/// The record as serde writes it: the reference `Records::write_json` is held to.
#[derive(Serialize)]
struct Record<'a> {
    rule: &'a str,
    stat: &'a str,
    key: Option<&'a str>,
    value_name: Option<&'a str>,
    state: &'static str,
    value: Option<Num>,
    #[serde(serialize_with = "threshold_json")]
    threshold: Threshold,
    start: i64,
    secs: u32,
    since: i64,
    severity: &'a str,
    summary: String,
    correction: bool,
    #[serde(skip_serializing_if = "is_false")]
    withdrawn: bool,
    #[serde(skip_serializing_if = "is_false")]
    repeat: bool,
    #[serde(skip_serializing_if = "is_false")]
    provisional: bool,
}

fn record<'a>(t: &'a Transition, rules: &'a [Rule]) -> Record<'a> {
    let rule = &rules[t.rule];
    Record {
        rule: &rule.name,
        stat: &rule.stat,
        key: t.key.as_deref(),
        value_name: Some(rule.value.as_str()).filter(|v| !v.is_empty()),
        state: t.status.as_str(),
        value: t.value.map(Num),
        threshold: t.threshold,
        start: t.start,
        secs: t.secs,
        since: t.since,
        severity: &rule.severity,
        summary: t.summary(rule),
        correction: t.correction,
        withdrawn: t.withdrawn,
        repeat: t.repeat,
        provisional: t.provisional,
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Whole numbers without a fraction, as snapshots write them.
#[derive(Clone, Copy)]
struct Num(f64);

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.fract() == 0.0 && v.abs() < 9e15 {
            s.serialize_i64(v as i64)
        } else if v.is_finite() {
            s.serialize_f64(v)
        } else {
            s.serialize_none()
        }
    }
}

fn threshold_json<S: serde::Serializer>(t: &Threshold, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Threshold::None => s.serialize_none(),
        Threshold::One(v) => Num(*v).serialize(s),
        Threshold::Range(a, b) => [Num(*a), Num(*b)].serialize(s),
    }
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        (-1_000_000i64..1_000_000).prop_map(|n| n as f64),
        (-1e6f64..1e6),
        Just(9e15),
        Just(-0.0),
    ]
}

proptest! {
    /// The hand-made record is byte for byte serde's (names and keys with quotes,
    /// backslashes, controls and other scripts; every kind of number and threshold).
    #[test]
    fn records_are_written_as_serde_writes_them(
        name in "[a-z\"\\\u{1}\u{e9}]{1,8}",
        stat in "[a-z.\"\u{1f600}]{1,8}",
        value_name in "[a-z\"]{0,4}",
        severity in "[a-z\n]{1,6}",
        summary in "[a-z {}\"\t]{0,12}|\\{key\\} \\{value\\} \\{threshold\\} \\{state\\}",
        key in proptest::option::of("[a-z\"\\\u{2}\u{e9}]{0,8}"),
        value in proptest::option::of(number()),
        threshold in prop_oneof![
            Just(Threshold::None),
            number().prop_map(Threshold::One),
            (number(), number()).prop_map(|(a, b)| Threshold::Range(a, b)),
        ],
        status in prop_oneof![Just(Status::Pending), Just(Status::Firing), Just(Status::Resolved), Just(Status::Ok)],
        times in (any::<i64>(), any::<u32>(), any::<i64>()),
        flags in any::<[bool; 4]>(),
    ) {
        // The rule's names are set directly: the rules grammar would refuse most of them.
        let mut rule = Rules::parse("r s count > 1", "t").unwrap().rules[0].clone();
        rule.name = name;
        rule.stat = stat;
        rule.value = value_name;
        rule.severity = severity;
        rule.summary = summary;
        let rules = [rule];
        let t = Transition {
            rule: 0,
            key: key.map(|k| Arc::from(k.as_str())),
            status,
            value,
            threshold,
            start: times.0,
            secs: times.1,
            since: times.2,
            correction: flags[0],
            withdrawn: flags[1],
            repeat: flags[2],
            provisional: flags[3],
        };
        let mut got = Vec::new();
        Records::new(&rules).write_json(&t, &mut got);
        let mut want = serde_json::to_vec(&record(&t, &rules)).unwrap();
        want.push(b'\n');
        prop_assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap());
    }
}

fn snap(stat: &str, key: Option<&str>, start: i64, v: f64) -> Snapshot {
    Snapshot {
        stat: stat.into(),
        key: key.map(Into::into),
        start,
        secs: 60,
        is_final: true,
        values: [("count".to_string(), v)].into_iter().collect(),
    }
}

fn engine(rules: &str) -> Engine {
    Engine::new(Rules::parse(rules, "t").unwrap(), Config::default())
}

/// (window index, status, correction, withdrawn) of every transition.
fn run(e: &mut Engine, snaps: &[Snapshot]) -> Vec<(i64, &'static str, bool, bool)> {
    let mut out = Vec::new();
    for s in snaps {
        e.add(s, &mut out);
    }
    out.iter()
        .map(|t| (t.start / 60, t.status.as_str(), t.correction, t.withdrawn))
        .collect()
}

fn series(stat: &str, key: Option<&str>, vals: &[f64]) -> Vec<Snapshot> {
    vals.iter()
        .enumerate()
        .map(|(i, &v)| snap(stat, key, i as i64 * 60, v))
        .collect()
}

#[test]
fn for_gives_pending_then_firing_then_resolved() {
    let mut e = engine("r s count > 10 for 3m");
    let got = run(
        &mut e,
        &series("s", None, &[1., 20., 20., 20., 20., 1., 1.]),
    );
    assert_eq!(
        got,
        vec![
            (1, "pending", false, false),
            (3, "firing", false, false),
            (5, "resolved", false, false)
        ]
    );
}

#[test]
fn pending_that_lapses_is_ok_and_never_fires() {
    let mut e = engine("r s count > 10 for 2m");
    let got = run(&mut e, &series("s", None, &[20., 1., 20., 1., 20., 1.]));
    assert!(
        got.iter().all(|t| t.1 == "pending" || t.1 == "ok"),
        "{got:?}"
    );
}

#[test]
fn clear_stops_flapping() {
    // Oscillates around 100 once it fired: with clear 80 it stays firing until 70.
    let mut e = engine("r s count > 100 for 2m clear 80");
    let vals = [120., 130., 95., 105., 90., 110., 99., 101., 70., 75.];
    let got = run(&mut e, &series("s", None, &vals));
    assert_eq!(
        got,
        vec![
            (0, "pending", false, false),
            (1, "firing", false, false),
            (8, "resolved", false, false)
        ]
    );
    // Without clear it flaps.
    let mut e = engine("r s count > 100");
    let got = run(&mut e, &series("s", None, &vals));
    assert!(
        got.iter().filter(|t| t.1 == "firing").count() >= 3,
        "{got:?}"
    );
}

#[test]
fn keep_stays_firing_after_the_condition_clears() {
    let mut e = engine("r s count > 10 keep 2m");
    let got = run(&mut e, &series("s", None, &[20., 1., 20., 1., 1., 1., 1.]));
    assert_eq!(
        got,
        vec![(0, "firing", false, false), (5, "resolved", false, false)]
    );
}

#[test]
fn absent_fires_on_silence_known_from_other_series_and_not_at_the_end() {
    let mut e = engine("gone s[*] absent for 2m");
    let mut snaps = Vec::new();
    for w in 0..10 {
        snaps.push(snap("other", None, w * 60, 1.0));
        // "a" is silent in windows 3..=5.
        if !(3..=5).contains(&w) {
            snaps.push(snap("s", Some("a"), w * 60, 1.0));
        }
    }
    // "a" also goes silent at 10 and 11, but the input ends: never closed, never absent.
    snaps.push(snap("other", None, 600, 1.0));
    let got = run(&mut e, &snaps);
    assert_eq!(
        got,
        vec![
            (3, "pending", false, false),
            (4, "firing", false, false),
            (6, "resolved", false, false)
        ]
    );
}

#[test]
fn a_count_that_stops_resolves() {
    let mut e = engine("r s[H12] count > 10");
    let mut snaps = series("s", Some("H12"), &[20., 20.]);
    snaps.extend([snap("t", None, 120, 0.), snap("t", None, 180, 0.)]);
    let got = run(&mut e, &snaps);
    assert_eq!(
        got,
        vec![(0, "firing", false, false), (2, "resolved", false, false)]
    );
    assert_eq!(e.instances(), 1);
    let more: Vec<Snapshot> = (4..14).map(|w| snap("t", None, w * 60, 0.)).collect();
    run(&mut e, &more);
    assert_eq!(
        e.instances(),
        0,
        "an ok instance silent for the whole horizon is dropped"
    );
}

#[test]
fn rises_by_and_outside() {
    let mut e = engine("r s count rises by 50%");
    let got = run(&mut e, &series("s", None, &[100., 140., 220., 230.]));
    assert_eq!(
        got,
        vec![(2, "firing", false, false), (3, "resolved", false, false)]
    );
    let mut e = engine("r s count outside 10..20 clear 12..18");
    let got = run(&mut e, &series("s", None, &[15., 25., 19., 17., 5.]));
    assert_eq!(
        got,
        vec![
            (1, "firing", false, false),
            (3, "resolved", false, false),
            (4, "firing", false, false)
        ]
    );
}

#[test]
fn late_data_gives_corrections() {
    let mut e = engine("r s count > 10 for 2m");
    let mut snaps = series("s", None, &[1., 20., 5., 1.]);
    // Window 2 re-emitted above the threshold: it fires at 2 after all, and resolves at 3.
    snaps.push(snap("s", None, 120, 30.));
    let got = run(&mut e, &snaps);
    assert_eq!(
        got,
        vec![
            (1, "pending", false, false),
            (2, "ok", false, false),
            (2, "ok", true, true),
            (2, "firing", true, false),
            (3, "resolved", true, false)
        ]
    );
    // The same value again changes nothing.
    let mut out = Vec::new();
    e.add(&snap("s", None, 120, 30.), &mut out);
    assert!(out.is_empty());
    // Too old for the horizon: counted, ignored.
    let mut e = Engine::new(
        Rules::parse("r s count > 10", "t").unwrap(),
        Config {
            horizon: 2,
            ..Config::default()
        },
    );
    run(&mut e, &series("s", None, &[1., 1., 1., 1.]));
    let got = run(&mut e, &[snap("s", None, 0, 99.)]);
    assert!(got.is_empty());
    assert_eq!(e.too_late, 1);
}

#[test]
fn repeat_restates_firing() {
    let mut e = Engine::new(
        Rules::parse("r s count > 10", "t").unwrap(),
        Config {
            repeat: Some(120),
            ..Config::default()
        },
    );
    let mut out = Vec::new();
    for s in series("s", None, &[20., 20., 20., 20., 20.]) {
        e.add(&s, &mut out);
    }
    let reps: Vec<i64> = out
        .iter()
        .filter(|t| t.repeat)
        .map(|t| t.start / 60)
        .collect();
    assert_eq!(reps, vec![2, 4]);
}

#[test]
fn state_survives_save_and_restore() {
    let rules = "r s count > 10 for 2m";
    let snaps = series("s", None, &[20., 20., 20., 1., 1.]);
    let mut whole = engine(rules);
    let all = run(&mut whole, &snaps);
    let mut first = engine(rules);
    let mut got = run(&mut first, &snaps[..2]);
    let saved = serde_json::to_string(&first.save()).unwrap();
    let mut second = engine(rules);
    second.restore(serde_json::from_str(&saved).unwrap(), first.clock);
    got.extend(run(&mut second, &snaps[2..]));
    assert_eq!(got, all);
}

#[test]
fn summary_template() {
    let rules = Rules::parse(
        "r s[*] count > 10 \"{rule}: {key} {name} at {value} over {threshold} {x}\"",
        "t",
    )
    .unwrap();
    let mut e = Engine::new(rules, Config::default());
    let mut out = Vec::new();
    e.add(&snap("s", Some("web"), 0, 12.5), &mut out);
    assert_eq!(
        out[0].summary(&e.rules[0]),
        "r: web count at 12.5 over 10 {x}"
    );
    let j = to_json(&out[0], &e.rules);
    assert_eq!(j["threshold"], 10);
    assert_eq!(j["value"], 12.5);
    assert_eq!(j["state"], "firing");
    assert_eq!(j["correction"], false);
}

proptest! {
    /// Any order of the keys within each window gives the same transitions, per series.
    #[test]
    fn key_order_within_windows_does_not_matter(
        vals in proptest::collection::vec(proptest::collection::vec(0u8..4, 3), 1..14),
        perm in proptest::collection::vec(0usize..6, 14),
        gaps in proptest::collection::vec(any::<bool>(), 14),
    ) {
        let rules = "a s count > 2 for 2m clear 1\nb s[*] absent for 2m\nc s count rises by 50% keep 1m";
        let keys = ["x", "y", "z"];
        let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
        let mut straight = Vec::new();
        let mut shuffled = Vec::new();
        for (w, row) in vals.iter().enumerate() {
            for k in 0..3 {
                if gaps[w] && k == 1 {
                    continue;
                }
                straight.push(snap("s", Some(keys[k]), w as i64 * 60, row[k] as f64));
            }
            for &k in &orders[perm[w]] {
                if gaps[w] && k == 1 {
                    continue;
                }
                shuffled.push(snap("s", Some(keys[k]), w as i64 * 60, row[k] as f64));
            }
        }
        let norm = |snaps: &[Snapshot]| {
            let mut e = engine(rules);
            let mut out = Vec::new();
            for s in snaps {
                e.add(s, &mut out);
            }
            let mut v: Vec<String> = out.iter().map(|t| to_json(t, &e.rules).to_string()).collect();
            v.sort();
            v
        };
        prop_assert_eq!(norm(&straight), norm(&shuffled));
    }
}

proptest! {
    /// Values in summaries read as `{:.3}` with the trailing zeros cut, however they are made.
    #[test]
    fn numbers_read_as_three_decimals(
        bits in any::<u64>(),
        k in -2_000_000_000i64..2_000_000_000,
        nudge in -3i32..=3,
        scale in 0u32..12,
    ) {
        let old = |v: f64| {
            if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{}", v as i64)
            } else {
                let s = format!("{v:.3}");
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            }
        };
        // Any bits, values near the halves between thousandths, small and large ones.
        let half = (k as f64 + 0.5) / 1000.0;
        let near = f64::from_bits((half.to_bits() as i64 + nudge as i64) as u64);
        let small = k as f64 / 10f64.powi(scale as i32 + 3);
        for v in [f64::from_bits(bits), half, near, small, -small, k as f64 * 0.0007] {
            prop_assert_eq!(fmt_num(v), old(v), "{:e}", v);
        }
    }
}

fn provisional(stat: &str, key: Option<&str>, start: i64, v: f64) -> Snapshot {
    Snapshot {
        is_final: false,
        ..snap(stat, key, start, v)
    }
}

#[test]
fn early_fires_provisionally_and_withdraws_what_the_final_does_not_confirm() {
    let mut e = Engine::new(
        Rules::parse("r s count > 10", "t").unwrap(),
        Config {
            early: true,
            ..Config::default()
        },
    );
    let mut out = Vec::new();
    e.add(&snap("s", None, 0, 1.), &mut out);
    // Window 1 looks bad early, then its final is fine: withdrawn.
    e.add(&provisional("s", None, 60, 20.), &mut out);
    e.add(&provisional("s", None, 60, 25.), &mut out); // same verdict: nothing new
    e.add(&snap("s", None, 60, 5.), &mut out);
    // Window 2 looks bad early, and its final confirms it.
    e.add(&provisional("s", None, 120, 30.), &mut out);
    e.add(&snap("s", None, 120, 40.), &mut out);
    let got: Vec<(i64, &str, bool, bool)> = out
        .iter()
        .map(|t| (t.start / 60, t.status.as_str(), t.provisional, t.withdrawn))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "firing", true, false),
            (1, "firing", true, true),
            (2, "firing", true, false),
            (2, "firing", false, false),
        ]
    );
    // Without --early, provisional snapshots change nothing.
    let mut e = engine("r s count > 10");
    let mut out = Vec::new();
    e.add(&provisional("s", None, 0, 20.), &mut out);
    assert!(out.is_empty());
}

#[test]
fn what_an_instance_holds() {
    // The figure of the module's documentation and of pulse-alert(1) (a held window is
    // 64 bytes, which the module asserts).
    assert!(
        std::mem::size_of::<Instance>() <= 200,
        "{}",
        std::mem::size_of::<Instance>()
    );
}
