//! Fuzz `Parser::parse_line` with every format: it must never panic, always emit at least one
//! event, and every event must serialise to a JSON object.
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
    let mut parser = Parser::new(Options { format, year: 2020 });
    let mut out = Vec::new();
    let mut n = 0u32;
    let outcome = parser.parse_line(line, &mut |ev: &Event| {
        out.clear();
        ev.write_json(&mut out);
        assert!(out.starts_with(b"{") && out.ends_with(b"}"));
        assert!(std::str::from_utf8(&out).is_ok());
        n += 1;
    });
    assert!(n >= 1);
    assert_eq!(n, outcome.events);
});
