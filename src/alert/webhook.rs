//! The body `pulse-alert --webhook URL` POSTs: Alertmanager's webhook shape (version 4), so
//! receivers written for Alertmanager take it as it is.
//!
//! ```json
//! {"version":"4","groupKey":"pulse-alert","status":"firing","receiver":"pulse-alert",
//!  "groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"","truncatedAlerts":0,
//!  "alerts":[{"status":"firing","labels":{"alertname":"h12-storm","stat":"router.errors","key":"H12",
//!   "value_name":"count","severity":"critical"},"annotations":{"summary":"...","value":"812","threshold":"100"},
//!   "startsAt":"2026-01-01T00:04:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"..."}]}
//! ```
//!
//! Only `firing` and `resolved` transitions are sent (pending and ok stay on stdout). A
//! withdrawn firing (a correction) is sent as resolved at the moment it started, a withdrawn
//! resolution as firing again. `startsAt` is the start of the window the condition began to
//! hold in, `endsAt` the start of the window that resolved it (event time).

use serde_json::{json, Value};

use super::{Rule, Status, Transition};
use crate::time::format_rfc3339;

/// Alertmanager's "not ended" time.
const NOT_ENDED: &str = "0001-01-01T00:00:00Z";

/// Whether a transition goes to webhooks.
pub fn wanted(t: &Transition) -> bool {
    matches!(t.status, Status::Firing | Status::Resolved)
}

/// FNV-1a of the labels, as 16 hex digits: the same alert gets the same fingerprint.
fn fingerprint(labels: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in labels.to_string().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// One alert of the body.
pub fn alert(t: &Transition, rules: &[Rule]) -> Value {
    let rule = &rules[t.rule];
    let firing = matches!(
        (t.status, t.withdrawn),
        (Status::Firing, false) | (Status::Resolved, true)
    );
    let mut labels = json!({
        "alertname": rule.name,
        "stat": rule.stat,
        "severity": rule.severity,
    });
    if let Some(k) = &t.key {
        labels["key"] = k.as_ref().into();
    }
    if !rule.value.is_empty() {
        labels["value_name"] = rule.value.clone().into();
    }
    let ends = if firing {
        NOT_ENDED.to_string()
    } else if t.withdrawn {
        format_rfc3339(t.since)
    } else {
        format_rfc3339(t.start)
    };
    let mut annotations = json!({
        "summary": t.summary(rule),
        "value": t.value.map_or(String::new(), super::fmt_num),
        "threshold": t.threshold.text(),
    });
    if t.correction {
        annotations["correction"] = "true".into();
    }
    if t.provisional {
        annotations["provisional"] = "true".into();
    }
    json!({
        "status": if firing { "firing" } else { "resolved" },
        "fingerprint": fingerprint(&labels),
        "labels": labels,
        "annotations": annotations,
        "startsAt": format_rfc3339(t.since),
        "endsAt": ends,
        "generatorURL": "",
    })
}

/// The whole body for a batch of alerts (already [`alert`]s).
pub fn body(alerts: &[Value]) -> Value {
    let firing = alerts.iter().any(|a| a["status"] == "firing");
    json!({
        "version": "4",
        "groupKey": "pulse-alert",
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": "pulse-alert",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": alerts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Rules, Threshold};

    #[test]
    fn alertmanager_shape() {
        let rules = Rules::parse(
            "h12 router.errors[H12] count > 100 severity critical \"{value} on {key}\"",
            "r",
        )
        .unwrap()
        .rules;
        let mut t = Transition {
            rule: 0,
            key: Some("H12".into()),
            status: Status::Firing,
            value: Some(812.0),
            threshold: Threshold::One(100.0),
            start: 1767225840,
            secs: 60,
            since: 1767225780,
            correction: false,
            withdrawn: false,
            repeat: false,
            provisional: false,
        };
        let a = alert(&t, &rules);
        assert_eq!(a["status"], "firing");
        assert_eq!(a["labels"]["alertname"], "h12");
        assert_eq!(a["labels"]["key"], "H12");
        assert_eq!(a["labels"]["severity"], "critical");
        assert_eq!(a["annotations"]["summary"], "812 on H12");
        assert_eq!(a["startsAt"], "2026-01-01T00:03:00Z");
        assert_eq!(a["endsAt"], NOT_ENDED);
        t.status = Status::Resolved;
        let r = alert(&t, &rules);
        assert_eq!(r["status"], "resolved");
        assert_eq!(r["endsAt"], "2026-01-01T00:04:00Z");
        assert_eq!(r["fingerprint"], a["fingerprint"]);
        let b = body(&[a, r]);
        assert_eq!(b["status"], "firing");
        assert_eq!(b["version"], "4");
        assert_eq!(b["alerts"].as_array().unwrap().len(), 2);
    }
}
