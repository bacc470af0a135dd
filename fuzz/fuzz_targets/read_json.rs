//! Fuzz `Event::read_json` with arbitrary bytes: it must never panic, and when it accepts a
//! line, `write_json` must give a JSON object (checked with serde_json) that reads back into an
//! equal event. `Event::read_json_routed` must accept exactly the same lines, keep in the
//! event the same values of the fields routed there (tried with two complementary filters, so
//! that every field is skipped by one of them), and give in its slots the values read_json
//! gives the fields routed there.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse::record::{Event, Route, ValRef};

fn fields(ev: &Event) -> Vec<(&str, ValRef<'_>)> {
    ev.iter().collect()
}

fn check_keeping(data: &[u8], full: Option<&Event>, keep: &dyn Fn(&str) -> bool, name: &str) {
    let mut kept = Event::new();
    let route = |k: &str| if keep(k) { Route::Event } else { Route::Skip };
    match (full, kept.read_json_routed(data, &route, &mut [])) {
        (None, Err(_)) => {}
        (None, Ok(())) => panic!(
            "read_json_routed ({name}) accepted what read_json rejects: {:?}",
            String::from_utf8_lossy(data)
        ),
        (Some(_), Err(e)) => panic!(
            "read_json_routed ({name}) rejected what read_json accepts ({e}): {:?}",
            String::from_utf8_lossy(data)
        ),
        (Some(full), Ok(())) => {
            let want: Vec<_> = full.iter().filter(|(k, _)| keep(k)).collect();
            assert_eq!(fields(&kept), want, "read_json_routed ({name})");
        }
    }
}

/// Route names by length: 0 mod 3 skipped, 1 into slot `len % 4`, 2 into that slot and the
/// event.
fn route(k: &str) -> Route {
    let slot = (k.len() % 4) as u16;
    match k.len() % 3 {
        0 => Route::Skip,
        1 => Route::Slot(slot),
        _ => Route::Both(slot),
    }
}

fn check_routed(data: &[u8], full: Option<&Event>) {
    let mut ev = Event::new();
    let mut slots = [None; 4];
    match (full, ev.read_json_routed(data, &route, &mut slots)) {
        (None, Err(_)) => {}
        (None, Ok(())) => panic!("read_json_routed accepted what read_json rejects"),
        (Some(_), Err(e)) => panic!("read_json_routed rejected what read_json accepts ({e})"),
        (Some(full), Ok(())) => {
            // A slot holds the value of the field of the one name routed there (as a name's
            // later field replaces its earlier one). Slots shared by several names, which
            // real callers do not do, are left unchecked.
            let mut want = [None; 4];
            let mut names = [0; 4];
            for (k, v) in full.iter() {
                if let Route::Slot(i) | Route::Both(i) = route(k) {
                    want[i as usize] = Some(v);
                    names[i as usize] += 1;
                }
            }
            for i in 0..4 {
                if names[i] <= 1 {
                    let got = slots[i].map(|v| ev.resolve(v));
                    assert_eq!(got, want[i], "read_json_routed slot {i}");
                }
            }
            let kept: Vec<_> = full
                .iter()
                .filter(|(k, _)| matches!(route(k), Route::Both(_)))
                .collect();
            assert_eq!(fields(&ev), kept, "read_json_routed event");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut ev = Event::new();
    let ok = ev.read_json(data).is_ok();
    // Two complementary filters, so that every field is skipped by one of them.
    check_keeping(
        data,
        ok.then_some(&ev),
        &|k: &str| k.len() % 2 == 0,
        "even names",
    );
    check_keeping(
        data,
        ok.then_some(&ev),
        &|k: &str| k.len() % 2 == 1,
        "odd names",
    );
    check_routed(data, ok.then_some(&ev));
    if !ok {
        return;
    }
    let mut out = Vec::new();
    ev.write_json(&mut out);
    let parsed: serde_json::Value = match serde_json::from_slice(&out) {
        Ok(v) => v,
        Err(e) => panic!(
            "write_json gave invalid JSON ({e}): {:?}",
            String::from_utf8_lossy(&out)
        ),
    };
    let obj = parsed.as_object().expect("write_json gave a non-object");
    assert_eq!(
        obj.len(),
        ev.len(),
        "duplicate keys in {:?}",
        String::from_utf8_lossy(&out)
    );
    let mut back = Event::new();
    if let Err(e) = back.read_json(&out) {
        panic!("cannot read back {:?}: {e}", String::from_utf8_lossy(&out));
    }
    assert_eq!(
        fields(&ev),
        fields(&back),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
});
