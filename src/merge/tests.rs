//! Topology independence, on the real library code: any partition of an event stream over
//! 1 to 4 fragmenters, any chunking of their input, any interleaving and duplication of their
//! fragments, and any tree of mergers (sharded ones recombined by concatenation, inner ones
//! writing fragments for outer ones, with or without a rollup) gives the same final snapshots
//! as one fragmenter and one merger over the whole stream, value for value. The one
//! exception is a `top` summary past its capacity (`t.wide`, 6 counters for up to 30
//! values): there the result depends on the merges, so it is checked against the exact
//! counts (`t.wide.all`) and the bounds of [`crate::stat::top`] instead, and compared for
//! equality in the windows whose values fit its capacity.
//!
//! Values are multiples of 1/8 well below 2^20, so every sum (summary, `last ... sum`, the
//! sums of squares behind stddev) is exact in f64 whatever the order of additions, and the
//! snapshots are compared with `==`, not with a tolerance. Event times never fall behind the
//! stream's newest time by more than the lateness, so no event is late in the whole stream
//! nor in any part of it (a subsequence's newest time is never newer): the `pulse.*` self
//! stats are compared too, with nothing left out. The group keys stay under every cap.
//!
//! The randomness not drawn by proptest (chunk sizes, ticks, grace, `--shards` prefixes,
//! tree shape, shards, interleavings, duplicates, polls) comes from a seeded generator that
//! proptest draws, so a failing case replays.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{strip_shard_prefix, Config, Merger, Output, Reject, REFUSED};
use crate::clock::Clock;
use crate::error::Diag;
use crate::fragment::window::Windows;
use crate::fragment::{Engine, InputKind};
use crate::record::{Fragment, Snapshot};
use crate::shard::Shard;
use crate::spec::StatSet;

/// Every aggregate, 60 s windows, grouped and not, plus l2met keys.
const STATS: &str = "\
l2met on
t.count     count              60s              by k
t.summary   summary v          60s   v?         by k
t.quant     quantiles v        60s   v?
t.unique    unique u           60s   u?         by k
t.top       top 3 u            60s   u?
t.wide      top 3 w cap 6      60s   w?
t.wide.all  top 40 w           60s   w?
t.last      last v per p sum   60s   v?         by k
";

/// A whole minute, so that windows line up with round numbers in failure output.
const T0: f64 = 1_699_999_980.0;
const LATENESS: f64 = 300.0;

/// SplitMix64: the test's own deterministic randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

fn engine() -> Engine {
    Engine::new(
        StatSet::parse(STATS, "topology").unwrap(),
        InputKind::Events,
        LATENESS,
        Clock::Fixed(T0 + 100_000.0),
    )
}

/// One generated event: time step and lag in quarter seconds, group key, text value,
/// partition, value in eighths (or a value that is not a number), l2met measure.
#[derive(Clone, Debug)]
struct Ev {
    step: u32,
    lag: u32,
    k: u8,
    u: u8,
    p: u8,
    w: u8,
    v: Option<Result<i32, ()>>,
    l2met: Option<i32>,
}

fn ev() -> impl Strategy<Value = Ev> {
    let v = prop_oneof![
        6 => (-800i32..8000).prop_map(|e| Some(Ok(e))),
        2 => Just(None),
        1 => Just(Some(Err(()))),
    ];
    (
        0u32..12,
        0u32..2000,
        0u8..3,
        0u8..6,
        0u8..4,
        // A few heavy values and many light ones.
        prop_oneof![2 => 0u8..3, 3 => 0u8..30],
        v,
        proptest::option::weighted(0.2, 0i32..400),
    )
        .prop_map(|(step, lag, k, u, p, w, v, l2met)| Ev {
            step,
            lag,
            k,
            u,
            p,
            w,
            v,
            l2met,
        })
}

/// Event lines. Each event lags the stream's clock by at most `max_lag` quarter seconds;
/// the clock only moves forward.
fn lines(evs: &[Ev], max_lag: u32) -> Vec<String> {
    let mut clock = T0;
    evs.iter()
        .map(|e| {
            clock += f64::from(e.step) / 4.0;
            let t = clock - f64::from(e.lag % (max_lag + 1)) / 4.0;
            let mut obj = serde_json::json!({
                "time": t,
                "k": format!("k{}", e.k),
                "u": format!("u{}", e.u),
                "p": format!("web.{}", e.p),
                "w": format!("w{}", e.w),
            });
            match e.v {
                Some(Ok(eighths)) => obj["v"] = (f64::from(eighths) / 8.0).into(),
                Some(Err(())) => obj["v"] = "n/a".into(),
                None => {}
            }
            if let Some(m) = e.l2met {
                obj["measure#db"] = (f64::from(m) / 8.0).into();
            }
            obj.to_string()
        })
        .collect()
}

/// Run one fragmenter over `lines` as `pulse-fragment` does: chunks of 1 to `max_chunk`
/// lines through `Engine::process`, each settled in stream order, wall-clock ticks now and
/// then, and everything left at the end.
fn fragmenter(
    engine: &Engine,
    src: &str,
    lines: &[String],
    max_chunk: usize,
    rng: &mut Rng,
) -> Vec<String> {
    let grace = rng.below(6) as f64;
    let shards = rng
        .chance(3)
        .then(|| crate::shard::Routing::new(1 + rng.below(3) as u32, rng.chance(2)));
    let mut windows = Windows::new(src.into(), engine.clock, grace, engine.lateness, shards);
    let mut diag = Diag::new("topology", false);
    let (mut scratch, mut exact) = (engine.scratch(), engine.scratch());
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let n = (1 + rng.below(max_chunk)).min(lines.len() - i);
        let mut chunk = lines[i..i + n].join("\n");
        chunk.push('\n');
        i += n;
        let got = engine.process(&mut scratch, chunk.as_bytes(), None);
        engine.settle(&mut exact, &mut windows, got, &mut diag, &mut out);
        if rng.chance(4) {
            windows.flush_all(&engine.stats, &mut out, false);
        }
    }
    windows.finish(&engine.stats, &mut out).unwrap();
    split_lines(&out)
}

fn split_lines(out: &[u8]) -> Vec<String> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The inputs of one merger as it might receive them: interleaved keeping each input's
/// order (streams), or in any order at all; some lines delivered twice, and sometimes the
/// whole lot again (a reconnecting source re-sending what it holds).
fn deliver(inputs: &[Vec<String>], rng: &mut Rng) -> Vec<String> {
    let mut stream: Vec<String> = Vec::new();
    if rng.chance(3) {
        stream = inputs.concat();
        for i in (1..stream.len()).rev() {
            stream.swap(i, rng.below(i + 1));
        }
    } else {
        let mut at = vec![0; inputs.len()];
        loop {
            let open: Vec<usize> = (0..inputs.len())
                .filter(|&i| at[i] < inputs[i].len())
                .collect();
            if open.is_empty() {
                break;
            }
            let i = open[rng.below(open.len())];
            stream.push(inputs[i][at[i]].clone());
            at[i] += 1;
        }
    }
    for _ in 0..rng.below(stream.len() / 4 + 1) {
        let line = stream[rng.below(stream.len())].clone();
        let at = rng.below(stream.len() + 1);
        stream.insert(at, line);
    }
    if rng.chance(4) {
        stream.extend(stream.clone());
    }
    stream
}

/// Run one merger over its delivered input, polling now and then.
fn merger(cfg: Config, input: &[String], rng: &mut Rng) -> Vec<String> {
    let mut m = Merger::new(cfg, Clock::Fixed(T0 + 100_000.0));
    let mut out = Vec::new();
    for line in input {
        let f: Fragment = serde_json::from_slice(strip_shard_prefix(line.as_bytes())).unwrap();
        match m.add(f) {
            Ok(()) | Err(Reject::OtherShard) | Err(Reject::Stale) => {}
            Err(e) => panic!("fragment rejected: {e:?}: {line}"),
        }
        if rng.chance(8) {
            m.poll(rng.chance(2), &mut out);
        }
    }
    m.finish(&mut out);
    split_lines(&out)
}

/// A merger split over 1 to 3 shards, each fed its own delivery of the inputs, their
/// outputs concatenated.
fn sharded(
    name: &str,
    output: Output,
    rollup: Option<u32>,
    inputs: &[Vec<String>],
    rng: &mut Rng,
) -> Vec<String> {
    let n = 1 + rng.below(3) as u32;
    let mut all = Vec::new();
    for i in 0..n {
        let cfg = Config {
            shard: (n > 1).then_some(Shard { index: i, count: n }),
            rollup,
            max_wait: if rng.chance(2) { 0.0 } else { 10.0 },
            retain: f64::INFINITY,
            output,
            src: format!("{name}.{i}"),
            ..Config::default()
        };
        let input = deliver(inputs, rng);
        all.extend(merger(cfg, &input, rng));
    }
    all
}

/// A tree of mergers over the fragmenters.
#[derive(Debug)]
enum Node {
    Fragmenter(usize),
    Merger(Vec<Node>),
}

/// Up to 3 inner mergers, each over 1 to 3 of the fragmenters or mergers made so far; the
/// root takes what is left.
fn tree(fragmenters: usize, rng: &mut Rng) -> Vec<Node> {
    let mut items: Vec<Node> = (0..fragmenters).map(Node::Fragmenter).collect();
    for _ in 0..rng.below(4) {
        let take = 1 + rng.below(items.len().min(3));
        let mut group = Vec::new();
        for _ in 0..take {
            group.push(items.remove(rng.below(items.len())));
        }
        items.insert(rng.below(items.len() + 1), Node::Merger(group));
    }
    items
}

fn eval(
    node: &Node,
    outputs: &[Vec<String>],
    rollup: Option<u32>,
    rng: &mut Rng,
    id: &mut usize,
) -> Vec<String> {
    match node {
        Node::Fragmenter(i) => outputs[*i].clone(),
        Node::Merger(children) => {
            let inputs: Vec<Vec<String>> = children
                .iter()
                .map(|c| eval(c, outputs, rollup, rng, id))
                .collect();
            *id += 1;
            sharded(&format!("m{id}"), Output::Fragments, rollup, &inputs, rng)
        }
    }
}

type Finals = BTreeMap<(String, Option<String>, i64, u32), BTreeMap<String, f64>>;

/// The latest final snapshot per (stat, key, start, secs).
fn finals(lines: &[String]) -> Finals {
    let mut m = Finals::new();
    for l in lines {
        let s: Snapshot = serde_json::from_str(l).unwrap();
        if s.is_final {
            m.insert((s.stat, s.key, s.start, s.secs), s.values);
        }
    }
    m
}

/// One fragmenter over the whole stream in one chunk, one merger.
fn reference(engine: &Engine, lines: &[String], rollup: Option<u32>) -> Finals {
    let mut rng = Rng(0);
    let frags = fragmenter(engine, "whole", lines, usize::MAX, &mut rng);
    let cfg = Config {
        shard: None,
        rollup,
        max_wait: 10.0,
        retain: f64::INFINITY,
        output: Output::Snapshots,
        src: "root".into(),
        ..Config::default()
    };
    let mut m = Merger::new(cfg, engine.clock);
    let mut out = Vec::new();
    for l in &frags {
        m.add(serde_json::from_slice(strip_shard_prefix(l.as_bytes())).unwrap())
            .unwrap();
    }
    m.finish(&mut out);
    finals(&split_lines(&out))
}

/// The reference covers every kind of stat, so that agreement means something.
fn assert_covers_everything(f: &Finals, evs: &[Ev]) {
    let stats: std::collections::BTreeSet<&str> = f.keys().map(|k| k.0.as_str()).collect();
    assert!(stats.contains("t.count") && stats.contains("pulse.events"));
    if evs.iter().any(|e| matches!(e.v, Some(Ok(_)))) {
        for s in [
            "t.summary",
            "t.quant",
            "t.unique",
            "t.top",
            "t.wide",
            "t.last",
        ] {
            assert!(stats.contains(s), "{s} missing from {stats:?}");
        }
    }
}

/// `got` equals `want` but for `t.wide` past its capacity of 6, which is held to the bounds
/// of [`crate::stat::top`] against the exact counts of `t.wide.all` instead.
fn check_finals(mut got: Finals, mut want: Finals, what: &str) -> Result<(), TestCaseError> {
    const CAP: f64 = 6.0;
    let take = |f: &mut Finals| {
        let keys: Vec<_> = f.keys().filter(|k| k.0 == "t.wide").cloned().collect();
        keys.into_iter()
            .map(|k| {
                let v = f.remove(&k).unwrap();
                (k, v)
            })
            .collect::<Finals>()
    };
    let (wide_got, wide_want) = (take(&mut got), take(&mut want));
    prop_assert_eq!(&got, &want, "{}", what);
    prop_assert_eq!(
        wide_got.keys().collect::<Vec<_>>(),
        wide_want.keys().collect::<Vec<_>>(),
        "{}",
        what
    );
    let named = |v: &BTreeMap<String, f64>, secs: f64| -> BTreeMap<String, f64> {
        v.iter()
            .filter(|(n, _)| !["count", "error", "(other)"].contains(&n.as_str()))
            .map(|(n, r)| (n.clone(), (r * secs).round()))
            .collect()
    };
    for (k, g) in &wide_got {
        let secs = f64::from(k.3);
        let all = &want[&("t.wide.all".to_string(), k.1.clone(), k.2, k.3)];
        let truth = named(all, secs);
        let n = all["count"];
        prop_assert_eq!(g["count"], n, "{}: {:?}", what, k);
        if truth.len() as f64 <= CAP {
            // Within capacity: exact, the same as one merger.
            prop_assert_eq!(g, &wide_want[k], "{}: {:?}", what, k);
            prop_assert_eq!(g["error"], 0.0);
            continue;
        }
        let error = (g["error"] * secs).round();
        prop_assert!(
            error * (CAP + 1.0) <= n,
            "{}: {:?}: error {} of {}",
            what,
            k,
            error,
            n
        );
        let listed = named(g, secs);
        let other = g.get("(other)").map_or(0.0, |r| (r * secs).round());
        prop_assert_eq!(listed.values().sum::<f64>() + other, n, "{}: {:?}", what, k);
        for (v, &c) in &listed {
            let t = truth[v];
            prop_assert!(
                t - error <= c && c <= t,
                "{}: {:?}: {} {} of {}",
                what,
                k,
                v,
                c,
                t
            );
        }
        let last = listed.values().copied().fold(f64::INFINITY, f64::min);
        let last = if listed.len() == 3 { last } else { 0.0 };
        for (v, &t) in &truth {
            if !listed.contains_key(v) {
                prop_assert!(
                    t <= last + error,
                    "{}: {:?}: {} ({}) unlisted",
                    what,
                    k,
                    v,
                    t
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn any_topology_gives_the_final_snapshots_of_one_merger(
        evs in proptest::collection::vec(ev(), 1..240),
        parts in 1usize..=4,
        owner in proptest::collection::vec(0usize..4, 240),
        rollup in prop_oneof![3 => Just(None), 1 => Just(Some(120u32))],
        seed in any::<u64>(),
    ) {
        let engine = engine();
        // At most 90 s behind the newest: never late, in the whole or in any part.
        let lines = lines(&evs, 360);
        let want = reference(&engine, &lines, rollup);
        assert_covers_everything(&want, &evs);

        let mut rng = Rng(seed);
        let mut shares = vec![Vec::new(); parts];
        for (i, l) in lines.iter().enumerate() {
            shares[owner[i] % parts].push(l.clone());
        }
        let outputs: Vec<Vec<String>> = shares
            .iter()
            .enumerate()
            .map(|(i, s)| fragmenter(&engine, &format!("f{i}"), s, 1 + rng.below(40), &mut rng))
            .collect();
        let top = tree(parts, &mut rng);
        let mut id = 0;
        let inputs: Vec<Vec<String>> = top
            .iter()
            .map(|n| eval(n, &outputs, rollup, &mut rng, &mut id))
            .collect();
        let got = finals(&sharded("root", Output::Snapshots, rollup, &inputs, &mut rng));
        check_finals(got, want, &format!("tree {top:?}"))?;
    }

    /// With late events and malformed lines, one fragmenter gives the same result however
    /// its input is cut into chunks, `pulse.late` and `pulse.malformed` included (the
    /// worker judges lateness by its chunk alone; the stream-order step must correct it).
    #[test]
    fn chunking_changes_nothing_even_with_late_events(
        evs in proptest::collection::vec(ev(), 1..240),
        bad in proptest::collection::vec(any::<bool>(), 240),
        seed in any::<u64>(),
    ) {
        let engine = engine();
        // Up to 500 s behind the stream's clock: late, for a 300 s lateness, when that
        // many seconds behind the newest event.
        let mut lines = lines(&evs, 4 * 500);
        for (i, b) in bad.iter().enumerate().take(lines.len()).rev() {
            if *b && i % 5 == 0 {
                lines.insert(i, "{not json".into());
            }
        }
        let want = reference(&engine, &lines, None);
        let mut rng = Rng(seed);
        let frags = fragmenter(&engine, "whole", &lines, 1 + rng.below(30), &mut rng);
        let got = finals(&merger(
            Config {
                shard: None,
                rollup: None,
                max_wait: 10.0,
                retain: f64::INFINITY,
                output: Output::Snapshots,
                src: "root".into(),
                ..Config::default()
            },
            &frags,
            &mut rng,
        ));
        check_finals(got, want, "chunked")?;
    }
}

/// A one-event count fragment of `src` for the minute starting at `start`.
/// A snapshot merger's config with `max_wait` and `retain`.
fn waiting(max_wait: f64, retain: f64) -> Config {
    Config {
        shard: None,
        rollup: None,
        max_wait,
        retain,
        output: Output::Snapshots,
        src: "m".into(),
        ..Config::default()
    }
}

fn count_fragment(src: &str, start: i64, wm: i64, rev: u64) -> Fragment {
    Fragment {
        stat: "c".into(),
        key: None,
        start,
        secs: 60,
        src: src.into(),
        rev,
        wm,
        agg: "count".into(),
        state: serde_json::json!({"count": 1}),
    }
}

/// `max_wait` waits for silent sources, not for live ones: a source at end of input (or with
/// a clock ahead) passing a window's end must not make it final while another source is
/// still sending into it.
#[test]
fn max_wait_does_not_cut_short_a_window_a_live_source_is_still_in() {
    let mut m = Merger::new(waiting(10.0, 3600.0), Clock::Fixed(1000.0));
    let mut out = Vec::new();
    // b is done with the window [0, 60); a is still in it, its watermark moving on.
    m.add(count_fragment("b", 0, 60, 1)).unwrap();
    for i in 0..30 {
        m.clock = Clock::Fixed(1000.0 + f64::from(i));
        m.add(count_fragment("a", 0, i64::from(i), i as u64 + 1))
            .unwrap();
        m.poll(false, &mut out);
    }
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    // a falls silent after 1029: max_wait later the window is final.
    m.clock = Clock::Fixed(1038.5);
    m.poll(false, &mut out);
    assert!(out.is_empty());
    m.clock = Clock::Fixed(1039.0);
    m.poll(false, &mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("\"final\":true") && text.contains("\"count\":2"),
        "{text}"
    );
}

/// A source that keeps sending with a watermark that never moves (stuck) is waited for no
/// longer than a silent one.
#[test]
fn max_wait_does_not_wait_for_ever_for_a_stuck_source() {
    let mut m = Merger::new(waiting(10.0, 3600.0), Clock::Fixed(1000.0));
    let mut out = Vec::new();
    m.add(count_fragment("b", 0, 60, 1)).unwrap();
    for i in 0..12 {
        m.clock = Clock::Fixed(1000.0 + f64::from(i));
        m.add(count_fragment("a", 0, 5, i as u64 + 1)).unwrap();
        m.poll(false, &mut out);
    }
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("\"final\":true"), "{text}");
}

#[test]
fn a_silent_source_stops_holding_windows_after_retain() {
    let mut m = Merger::new(waiting(10.0, 60.0), Clock::Fixed(1000.0));
    let mut out = Vec::new();
    // Source a is heard from once, early; source b runs on for 100 minutes.
    m.add(count_fragment("a", 0, 60, 1)).unwrap();
    for i in 0..100 {
        m.add(count_fragment("b", i * 60, i * 60 + 60, 1)).unwrap();
    }
    m.poll(false, &mut out);
    // a still counts: nothing is forgotten, and b may still revise its first window.
    assert_eq!(m.add(count_fragment("b", 0, 6000, 2)), Ok(()));
    assert_eq!(m.open(), 100);
    // A minute of silence later a no longer holds b's windows back.
    m.clock = Clock::Fixed(1061.0);
    m.add(count_fragment("b", 100 * 60, 6060, 1)).unwrap();
    m.poll(false, &mut out);
    assert!(m.open() <= 3, "{} windows held", m.open());
    assert_eq!(m.add(count_fragment("b", 0, 6060, 3)), Err(Reject::TooOld));
}

fn keyed_fragment(src: &str, key: &str, start: i64, wm: i64, rev: u64) -> Fragment {
    Fragment {
        key: Some(key.into()),
        ..count_fragment(src, start, wm, rev)
    }
}

/// The final snapshots' text of a merger, without its own `pulse.merge.refused` counts.
fn finals_of(m: &mut Merger) -> Vec<String> {
    let mut out = Vec::new();
    m.finish(&mut out);
    let mut lines: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .filter(|l| !l.contains(REFUSED))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// A client sending every window first with another aggregate changes nothing for the
/// honest sources: with the stats file it is refused from its first fragment; without, the
/// first fragment of the stat decides, and conflicts are reported once per source and stat.
#[test]
fn a_forged_aggregate_is_refused_for_its_source_only() {
    let honest = |m: &mut Merger| {
        for i in 0..10 {
            m.add(count_fragment("a", i * 60, i * 60 + 60, 1)).unwrap();
            m.add(count_fragment("b", i * 60, i * 60 + 60, 1)).unwrap();
        }
    };
    let forged = |i: i64| Fragment {
        agg: "unique".into(),
        state: serde_json::json!({"hll": "AAAA"}),
        ..count_fragment("evil", i * 60, i * 60 + 60, 1)
    };
    let mut alone = Merger::new(waiting(10.0, 3600.0), Clock::Fixed(1000.0));
    honest(&mut alone);
    let want = finals_of(&mut alone);
    assert_eq!(want.len(), 10);

    let mut cfg = waiting(10.0, 3600.0);
    cfg.aggs.insert("c".into(), "count".into());
    let mut m = Merger::new(cfg, Clock::Fixed(1000.0));
    for i in 0..10 {
        let r = m.add(forged(i));
        assert!(
            matches!(r, Err(Reject::Mismatch(_, first)) if first == (i == 0)),
            "{r:?}"
        );
    }
    honest(&mut m);
    assert_eq!(finals_of(&mut m), want);

    // Without the stats file, the stat's first fragment decides for the whole run.
    let mut m = Merger::new(waiting(10.0, 3600.0), Clock::Fixed(1000.0));
    m.add(count_fragment("a", -60, 0, 1)).unwrap();
    for i in 0..10 {
        let r = m.add(forged(i));
        match r {
            Err(Reject::Mismatch(msg, _)) => assert!(
                msg.contains("source evil sends stat c as \"unique\", but it is \"count\" (as source a sent it first)"),
                "{msg}"
            ),
            other => panic!("{other:?}"),
        }
    }
    honest(&mut m);
    assert_eq!(finals_of(&mut m).len(), 11);
}

/// A `rev` far ahead of the clock cannot freeze another source's windows at its values.
#[test]
fn a_rev_far_ahead_is_refused() {
    let mut m = Merger::new(waiting(10.0, 3600.0), Clock::System);
    let now = (Clock::System.now() * 1e6) as u64;
    m.add(count_fragment("a", 0, 60, now)).unwrap();
    let frozen = Fragment {
        state: serde_json::json!({"count": 1000}),
        ..count_fragment("a", 0, 60, u64::MAX)
    };
    assert!(matches!(m.add(frozen), Err(Reject::RevAhead(_))));
    // Within a few minutes of skew, a later rev still replaces the earlier.
    let next = Fragment {
        state: serde_json::json!({"count": 2}),
        ..count_fragment("a", 0, 60, now + 60_000_000)
    };
    m.add(next).unwrap();
    let text = finals_of(&mut m).join("\n");
    assert!(text.contains("\"count\":2"), "{text}");
}

/// A source whose watermark creeps up (live, but never past the window) holds back only the
/// windows it sends to, and those at most one window length beyond `max_wait`.
#[test]
fn a_creeping_watermark_holds_finality_no_longer_than_max_wait() {
    let mut m = Merger::new(waiting(10.0, 3600.0), Clock::Fixed(1000.0));
    let mut out = Vec::new();
    // Honest a has passed [0, 60) of stat c; slow sends to its own stat and to c's next
    // window, its watermark moving 1 s per second of wall clock from 0.
    m.add(count_fragment("a", 0, 60, 1)).unwrap();
    for t in 0..=80 {
        m.clock = Clock::Fixed(1000.0 + f64::from(t));
        let own = Fragment {
            stat: "slow".into(),
            ..count_fragment("slow", 0, i64::from(t) / 4, t as u64 + 1)
        };
        m.add(own).unwrap();
        m.poll(false, &mut out);
        let text = String::from_utf8_lossy(&out);
        let c_final = text
            .lines()
            .any(|l| l.contains("\"stat\":\"c\"") && l.contains("\"final\":true"));
        let slow_final = text
            .lines()
            .any(|l| l.contains("\"stat\":\"slow\"") && l.contains("\"final\":true"));
        // c: max_wait after a passed it, whatever slow does.
        assert_eq!(c_final, t >= 10, "at {t}: {text}");
        // slow's own window: held while slow is in it, for max_wait + 60 s at most.
        assert_eq!(slow_final, t >= 70, "at {t}: {text}");
    }
}

#[test]
fn keys_per_stat_and_window_are_bounded() {
    let mut cfg = waiting(10.0, 3600.0);
    cfg.max_keys = 3;
    let mut m = Merger::new(cfg, Clock::Fixed(1000.0));
    for k in ["k1", "k2", "k3"] {
        m.add(keyed_fragment("a", k, 0, 0, 1)).unwrap();
    }
    let r = m.add(keyed_fragment("b", "k4", 0, 0, 1));
    assert!(matches!(r, Err(Reject::Bound("keys", _))), "{r:?}");
    // Keys held still take fragments from every source, and other windows are their own.
    m.add(keyed_fragment("b", "k1", 0, 0, 1)).unwrap();
    m.add(keyed_fragment("b", "k4", 60, 0, 1)).unwrap();
    m.count_refused(r.unwrap_err().reason().unwrap(), 1);
    let mut out = Vec::new();
    m.finish(&mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(r#"{"stat":"pulse.merge.refused","key":"max_keys","start":0,"secs":60,"final":true,"values":{"count":1,"#),
        "{text}"
    );
    assert_eq!(text.lines().count(), 5, "{text}");
}

/// A source is bounded in the windows it holds; revising one it holds is still allowed, and
/// once windows are forgotten it may open new ones.
#[test]
fn windows_per_source_are_bounded() {
    let mut cfg = waiting(10.0, 120.0);
    cfg.max_windows = 5;
    let mut m = Merger::new(cfg, Clock::Fixed(1000.0));
    for i in 0..5 {
        m.add(count_fragment("a", i * 60, 0, 1)).unwrap();
    }
    let r = m.add(count_fragment("a", 300, 0, 1));
    assert!(matches!(r, Err(Reject::Bound("windows", _))), "{r:?}");
    m.add(count_fragment("a", 0, 0, 2)).unwrap();
    m.add(count_fragment("b", 300, 0, 1)).unwrap();
    assert_eq!(m.open(), 6);
    // The watermark moves on, the first windows are forgotten: room again.
    m.add(count_fragment("a", 240, 600, 3)).unwrap();
    m.add(count_fragment("b", 300, 600, 3)).unwrap();
    let mut out = Vec::new();
    m.poll(false, &mut out);
    assert_eq!(m.open(), 0, "{}", String::from_utf8_lossy(&out));
    for i in 10..15 {
        m.add(count_fragment("a", i * 60, 600, 4)).unwrap();
    }
}

/// The slowest watermark is kept in a multiset: many distinct sources cost linear time, and
/// a source that goes is taken out of it.
#[test]
fn the_slowest_watermark_follows_sources_coming_and_going() {
    let mut m = Merger::new(waiting(10.0, 60.0), Clock::Fixed(1000.0));
    for i in 0..100_000 {
        m.add(count_fragment(&format!("s{i}"), 0, 60 + i, 1))
            .unwrap();
    }
    assert_eq!(m.slowest(), 60);
    m.add(count_fragment("s0", 0, 1_000_000, 2)).unwrap();
    assert_eq!(m.slowest(), 61);
    let mut out = Vec::new();
    m.clock = Clock::Fixed(1061.0);
    m.add(count_fragment("late", 0, 5, 1)).unwrap();
    m.poll(false, &mut out);
    // Everyone but "late" was silent for over `retain`.
    assert_eq!(m.slowest(), 5);
}
