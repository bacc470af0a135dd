//! Topology independence, on the real library code: any partition of an event stream over
//! 1 to 4 fragmenters, any chunking of their input, any interleaving and duplication of their
//! fragments, and any tree of mergers (sharded ones recombined by concatenation, inner ones
//! writing fragments for outer ones, with or without a rollup) gives the same final snapshots
//! as one fragmenter and one merger over the whole stream, value for value.
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

use super::{strip_shard_prefix, Config, Merger, Output, Reject};
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
        v,
        proptest::option::weighted(0.2, 0i32..400),
    )
        .prop_map(|(step, lag, k, u, p, v, l2met)| Ev {
            step,
            lag,
            k,
            u,
            p,
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
    let shards = rng.chance(3).then(|| 1 + rng.below(3) as u32);
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
        for s in ["t.summary", "t.quant", "t.unique", "t.top", "t.last"] {
            assert!(stats.contains(s), "{s} missing from {stats:?}");
        }
    }
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
        prop_assert_eq!(got, want, "tree {:?}", top);
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
            },
            &frags,
            &mut rng,
        ));
        prop_assert_eq!(got, want);
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
