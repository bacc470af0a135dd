//! The Kafka compositions of the README, run against a real Kafka-protocol broker (Tansu)
//! with kcat: receivers into a topic, mergers out of it, compared with one pipe.
//! (How the broker and kcat are set up for the tests: see `servers::Kafka`.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::merge::{finals, Finals};
use crate::servers::Kafka;
use crate::util::{assert_ok, fixture, ndjson, path_with_bins, sh, terminated_after, watchdog};

/// A real access log (10,000 lines over four days).
const APACHE: &str = "real/elastic-examples/apache_logs";

/// The finals of one pipe over the whole log.
fn one_pipe(file: &Path) -> Finals {
    let out = sh(&format!(
        "pulse-fragment --raw --now 0 {} | pulse-merge --every 0 --now 0",
        file.display()
    ));
    assert_ok(&out);
    let f = finals(&ndjson(&out.stdout));
    assert!(f.len() > 500, "{}", f.len());
    f
}

/// The log's lines dealt to `n` files in blocks of 101 (so each has every day), as `n`
/// receivers would see them.
fn deal(file: &Path, dir: &Path, n: usize) -> Vec<std::path::PathBuf> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut parts = vec![String::new(); n];
    for (i, line) in text.lines().enumerate() {
        parts[(i / 101) % n].push_str(line);
        parts[(i / 101) % n].push('\n');
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let f = dir.join(format!("receiver{i}.log"));
            std::fs::write(&f, p).unwrap();
            f
        })
        .collect()
}

/// Consume every message of `topic` (one partition, or all) from the start, then exit.
fn consume(k: &Kafka, topic: &str, partition: Option<u32>, format: &str) -> Vec<u8> {
    let p = partition.map_or(String::new(), |p| format!("-p {p}"));
    let out = sh(&format!(
        "timeout 60 {} -C -t {topic} {p} -o beginning -e -q -f '{format}'",
        k.kcat()
    ));
    assert_ok(&out);
    out.stdout
}

/// `pulse-fragment --shards 2 --kafka-key` into a 2-partition topic, with kcat's default
/// partitioner and with murmur2 (the Java client's): every fragment is in its shard's
/// partition, and two mergers, each reading only its partition, give together the finals
/// of one pipe.
#[test]
fn kafka_keyed_shards_land_in_their_partition_and_two_mergers_equal_one_pipe() {
    let Some(k) = Kafka::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(APACHE);
    let want = one_pipe(&file);
    let receivers = deal(&file, dir.path(), 2);
    for (topic, partitioner) in [
        ("fragments", ""),
        ("fragments-murmur2", "-X topic.partitioner=murmur2_random"),
    ] {
        k.create_topic(topic, 2);
        for r in &receivers {
            let out = sh(&format!(
                "pulse-fragment --raw --now 0 --shards 2 --kafka-key {} | timeout 60 {} -P -t {topic} -K'\\t' {partitioner}",
                r.display(),
                k.kcat()
            ));
            assert_ok(&out);
        }
        let mut got = Finals::new();
        for p in 0..2u32 {
            let keyed = consume(&k, topic, Some(p), "%k\\t%s\\n");
            let text = String::from_utf8(keyed).unwrap();
            let mut n = 0;
            for line in text.lines() {
                let (key, value) = line.split_once('\t').unwrap();
                let v: serde_json::Value = serde_json::from_str(value).unwrap();
                let stat = v["stat"].as_str().unwrap();
                assert_eq!(
                    pulse::shard::shard_of(stat, 2),
                    p,
                    "{topic}: partition {p} has key {key}, stat {stat}"
                );
                n += 1;
            }
            assert!(n > 100, "{topic}: partition {p} has {n} fragments");
            // The merger of shard p reads partition p only.
            let out = sh(&format!(
                "timeout 60 {} -C -t {topic} -p {p} -o beginning -e -q | pulse-merge --every 0 --now 0 --shard {p}/2",
                k.kcat()
            ));
            assert_ok(&out);
            let mine = finals(&ndjson(&out.stdout));
            assert!(!mine.is_empty());
            got.extend(mine);
        }
        assert_eq!(got.len(), want.len(), "{topic}");
        assert_eq!(got, want, "{topic}");
    }
}

/// A receiver restarted mid-stream (SIGTERM: it writes what it holds; the new process is a
/// new source) and a merger killed with SIGKILL mid-topic and started again, re-reading the
/// topic from the start: the latest finals equal one pipe's, nothing counted twice.
#[test]
fn kafka_restarted_receiver_and_merger_stay_exact() {
    let Some(k) = Kafka::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(APACHE);
    let want = one_pipe(&file);
    let receivers = deal(&file, dir.path(), 2);
    k.create_topic("fragments", 1);
    let produce = |fragments: &[u8]| {
        let f = dir.path().join("batch.ndjson");
        std::fs::write(&f, fragments).unwrap();
        let out = sh(&format!(
            "timeout 60 {} -P -t fragments -l {}",
            k.kcat(),
            f.display()
        ));
        assert_ok(&out);
    };
    // Receiver 0 runs on a stream that stays open and is stopped after its first half;
    // a new process takes the rest of the stream.
    let text = std::fs::read(&receivers[0]).unwrap();
    let cut = text[..text.len() / 2]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let first = terminated_after(
        "pulse-fragment",
        &["--raw", "--now", "0"],
        &text[..cut],
        1500,
    );
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    produce(&first.stdout);
    let rest = crate::util::run("pulse-fragment", &["--raw", "--now", "0"], &text[cut..]);
    assert_ok(&rest);
    produce(&rest.stdout);
    let other = sh(&format!(
        "pulse-fragment --raw --now 0 {}",
        receivers[1].display()
    ));
    assert_ok(&other);
    produce(&other.stdout);

    // The first merger follows the topic (no -e) and is killed with SIGKILL, kcat with it.
    let mut m1 = Command::new("setsid")
        .arg("bash")
        .arg("-c")
        .arg(format!(
            "{} -C -t fragments -o beginning -q | pulse-merge --now 0",
            k.kcat()
        ))
        .env("PATH", path_with_bins())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = watchdog(m1.id(), 60);
    let out1 = m1.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut { out1 }, &mut buf);
        buf
    });
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let pgid = format!("-{}", m1.id());
    let _ = Command::new("kill").args(["-9", "--", &pgid]).status();
    let _ = m1.wait();
    drop(guard);
    let before = reader.join().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(30));
    let partial = finals(&ndjson(&before));
    assert!(
        partial.len() < want.len(),
        "the killed merger had written every window final ({}): it was not mid-topic",
        partial.len()
    );

    // Started again, re-reading the topic from the start.
    let out2 = sh(&format!(
        "timeout 60 {} -C -t fragments -o beginning -e -q | pulse-merge --every 0 --now 0",
        k.kcat()
    ));
    assert_ok(&out2);
    let mut all = ndjson(&before);
    all.extend(ndjson(&out2.stdout));
    let got = finals(&all);
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    // Every message once: the three receivers' fragments, no more.
    let n = consume(&k, "fragments", None, "%s\\n")
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    let sent = [&first.stdout, &rest.stdout, &other.stdout]
        .iter()
        .map(|o| o.iter().filter(|&&b| b == b'\n').count())
        .sum::<usize>();
    assert_eq!(n, sent);
}

/// The talk's `cat aggregates | alert | kafka --to check-results`: snapshots in a topic,
/// pulse-alert between two kcats, the check results in another topic: exactly the
/// incidents' transitions, byte for byte what pulse-alert writes on its own.
#[test]
fn kafka_aggregates_through_pulse_alert_to_check_results() {
    use crate::alert::{expected_incidents, incident_snapshots, summary, INCIDENT_RULES};
    let Some(k) = Kafka::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("ops.rules");
    std::fs::write(&rules, INCIDENT_RULES).unwrap();
    let snaps = dir.path().join("snaps.ndjson");
    std::fs::write(&snaps, incident_snapshots()).unwrap();
    k.create_topic("aggregates", 1);
    k.create_topic("check-results", 1);
    let kcat = k.kcat();
    assert_ok(&sh(&format!(
        "timeout 60 {kcat} -P -t aggregates -l {}",
        snaps.display()
    )));
    let rules = rules.display();
    assert_ok(&sh(&format!(
        "timeout 60 {kcat} -C -t aggregates -o beginning -e -q | pulse-alert --rules {rules} | timeout 60 {kcat} -P -t check-results"
    )));
    let got = consume(&k, "check-results", None, "%s\\n");
    assert_eq!(summary(&got), expected_incidents());
    let direct = sh(&format!("pulse-alert --rules {rules} {}", snaps.display()));
    assert_ok(&direct);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&direct.stdout)
    );
}
