//! Fuzz `pulse::find::first` (SSE2 on x86-64) against the plain byte test of each class, for
//! every start position `from` in `0..=len + 1` (past the end it must give `None`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse::find::{first, Blank, Class, JsonSpecial, KeyEnd, QuoteOrBackslash, Space};

fn check<C: Class>(bytes: &[u8], name: &str) {
    for from in 0..=bytes.len() + 1 {
        let want = bytes
            .get(from..)
            .and_then(|rest| rest.iter().position(|&b| C::test(b)))
            .map(|p| from + p);
        assert_eq!(
            first::<C>(bytes, from),
            want,
            "first::<{name}>({bytes:?}, {from}), len {}",
            bytes.len()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check::<JsonSpecial>(data, "JsonSpecial");
    check::<Blank>(data, "Blank");
    check::<KeyEnd>(data, "KeyEnd");
    check::<QuoteOrBackslash>(data, "QuoteOrBackslash");
    check::<Space>(data, "Space");
});
