//! Fuzz `Event::read_json` with arbitrary bytes: it must never panic, and when it accepts a
//! line, `write_json` must give a JSON object (checked with serde_json) that reads back into an
//! equal event. `Event::read_json_keeping` must accept exactly the same lines and keep the
//! same values of the fields it keeps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse::record::{Event, ValRef};

fn fields(ev: &Event) -> Vec<(&str, ValRef<'_>)> {
    ev.iter().collect()
}

fuzz_target!(|data: &[u8]| {
    let mut ev = Event::new();
    let keep = |k: &str| k.len() % 2 == 0;
    let mut kept = Event::new();
    let kept_ok = kept.read_json_keeping(data, &keep).is_ok();
    if ev.read_json(data).is_err() {
        assert!(!kept_ok, "read_json_keeping accepted what read_json rejects");
        return;
    }
    assert!(kept_ok, "read_json_keeping rejected what read_json accepts");
    let want: Vec<_> = fields(&ev).into_iter().filter(|(k, _)| keep(k)).collect();
    assert_eq!(fields(&kept), want);
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
