//! Fuzz `Parser::parse_line` with every format: it must never panic, always emit at least one
//! event, and every event must serialise to one line of valid JSON (checked with serde_json)
//! that is an object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse::parse::{Format, Options, Parser};
use pulse::record::Event;

fuzz_target!(|data: &[u8]| {
    let (selector, line) = match data.split_first() {
        Some((s, rest)) => (*s as usize, rest),
        None => (0, data),
    };
    let format = Format::ALL[selector % Format::ALL.len()].0;
    let has_lf = line.contains(&b'\n');
    let mut parser = Parser::new(Options { format, year: 2020 });
    let mut out = Vec::new();
    let mut n = 0u32;
    let outcome = parser.parse_line(line, &mut |ev: &Event| {
        out.clear();
        ev.write_json(&mut out);
        match serde_json::from_slice::<serde_json::Value>(&out) {
            Ok(v) => assert!(v.is_object(), "not an object: {v}"),
            Err(e) => panic!("invalid JSON ({e}): {:?}", String::from_utf8_lossy(&out)),
        }
        // Real lines never hold an LF (input is split on it); then no record may either.
        assert!(
            has_lf || !out.contains(&b'\n'),
            "an LF inside an NDJSON record"
        );
        n += 1;
    });
    assert!(n >= 1);
    assert_eq!(n, outcome.events);
});
