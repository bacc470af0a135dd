//! Every stat of `stats/pulse-classic.stats` against an event it must count and one it must
//! not (a near miss: one condition of the original predicate broken). Events are written as
//! `k=v` words; `k="a b"` quotes a value with blanks.

use super::*;

const CLASSIC: &str = include_str!("../../stats/pulse-classic.stats");

/// (stat, an event it counts, an event it does not count; "" when it counts every event)
const TABLE: &[(&str, &str, &str)] = &[
    ("events-per-second", "at=info", ""),
    (
        "events-per-second-unparsed",
        "line=x unparsed=true",
        "at=info",
    ),
    (
        "amqp-publishes-per-second",
        "cloud=heroku.com amqp_message=true action=publish",
        "cloud=heroku.com amqp_message=true action=received",
    ),
    (
        "amqp-receives-per-second",
        "cloud=heroku.com amqp_message=true action=received",
        "action=received",
    ),
    (
        "amqp-timeouts-per-minute",
        "cloud=heroku.com amqp_message=true action=timeout",
        "cloud=heroku.com amqp_publish=true action=timeout",
    ),
    (
        "nginx-requests-per-second",
        "cloud=heroku.com source=nginx http_status=200",
        "source=varnish http_status=200",
    ),
    (
        "nginx-requests-domains-per-minute",
        "cloud=heroku.com source=nginx http_status=200 http_domain=a.com",
        "source=nginx http_domain=a.com",
    ),
    (
        "nginx-500-per-minute",
        "cloud=heroku.com source=nginx http_status=500 http_host=10.0.0.1",
        "cloud=heroku.com source=nginx http_status=500 http_host=127.0.0.1",
    ),
    (
        "nginx-502-per-minute",
        "cloud=heroku.com source=nginx http_status=502 http_host=10.0.0.1",
        "cloud=heroku.com source=nginx http_status=502 http_host=127.0.0.1",
    ),
    (
        "nginx-503-per-minute",
        "cloud=heroku.com source=nginx http_status=503 http_host=10.0.0.1",
        "cloud=heroku.com source=nginx http_status=503 http_host=127.0.0.1",
    ),
    (
        "nginx-504-per-minute",
        "cloud=heroku.com source=nginx http_status=504 http_host=10.0.0.1",
        "cloud=heroku.com source=nginx http_status=504 http_host=127.0.0.1",
    ),
    (
        "nginx-500-domains-per-minute",
        "cloud=heroku.com source=nginx http_status=500 http_domain=a.com",
        "cloud=heroku.com source=nginx http_status=501 http_domain=a.com",
    ),
    (
        "nginx-502-domains-per-minute",
        "cloud=heroku.com source=nginx http_status=502 http_domain=a.com",
        "cloud=heroku.com source=nginx http_status=503 http_domain=a.com",
    ),
    (
        "nginx-503-domains-per-minute",
        "cloud=heroku.com source=nginx http_status=503 http_domain=a.com",
        "cloud=heroku.com source=nginx http_status=504 http_domain=a.com",
    ),
    (
        "nginx-504-domains-per-minute",
        "cloud=heroku.com source=nginx http_status=504 http_domain=a.com",
        "cloud=heroku.com source=nginx http_status=505 http_domain=a.com",
    ),
    (
        "nginx-errors-per-minute",
        r#"cloud=heroku.com source=nginx level=crit msg="2012/10/10 [error] 1#0: upstream""#,
        r#"cloud=heroku.com source=nginx level=crit msg="[warn] slow""#,
    ),
    (
        "nginx-errors-instances-per-minute",
        r#"cloud=heroku.com source=nginx level=crit instance_id=12 msg="x [error] y""#,
        r#"cloud=heroku.com source=nginx level=info instance_id=12 msg="x [error] y""#,
    ),
    (
        "varnish-requests-per-second",
        "cloud=heroku.com source=varnish http_status=200",
        "source=varnish",
    ),
    (
        "varnish-500-per-minute",
        "cloud=heroku.com source=varnish http_status=500",
        "cloud=heroku.com source=nginx http_status=500",
    ),
    (
        "varnish-502-per-minute",
        "cloud=heroku.com source=varnish http_status=502",
        "cloud=heroku.com source=nginx http_status=502",
    ),
    (
        "varnish-503-per-minute",
        "cloud=heroku.com source=varnish http_status=503",
        "cloud=heroku.com source=nginx http_status=503",
    ),
    (
        "varnish-504-per-minute",
        "cloud=heroku.com source=varnish http_status=504",
        "cloud=heroku.com source=nginx http_status=504",
    ),
    (
        "varnish-purges-per-minute",
        "cloud=heroku.com cache_purge=true",
        "cache=true",
    ),
    (
        "rendezvous-joins-per-minute",
        "app=rendezvous fn=join at=start",
        "app=rendezvous fn=join at=rendezvous",
    ),
    (
        "rendezvous-rendezvous-per-minute",
        "app=rendezvous fn=join at=rendezvous",
        "app=rendezvous fn=leave at=rendezvous",
    ),
    (
        "hermes-requests-per-second",
        "cloud=heroku.com mod=hermes_proxy code=OK",
        "mod=hermes_proxy",
    ),
    (
        "hermes-requests-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy app_id=123",
        "mod=hermes_clock app_id=123",
    ),
    (
        "hermes-h10-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H10",
        "cloud=heroku.com mod=hermes_proxy code=H11",
    ),
    (
        "hermes-h11-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H11",
        "cloud=heroku.com mod=hermes_proxy code=H12",
    ),
    (
        "hermes-h12-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H12",
        "cloud=heroku.com mod=hermes_proxy code=H13",
    ),
    (
        "hermes-h13-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H13",
        "cloud=heroku.com mod=hermes_proxy code=H14",
    ),
    (
        "hermes-h14-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H14",
        "cloud=heroku.com mod=hermes_proxy code=H15",
    ),
    (
        "hermes-h15-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H15",
        "cloud=heroku.com mod=hermes_proxy code=H16",
    ),
    (
        "hermes-h16-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H16",
        "cloud=heroku.com mod=hermes_proxy code=H17",
    ),
    (
        "hermes-h17-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H17",
        "cloud=heroku.com mod=hermes_proxy code=H18",
    ),
    (
        "hermes-h18-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H18",
        "cloud=heroku.com mod=hermes_proxy code=H19",
    ),
    (
        "hermes-h19-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H19",
        "cloud=heroku.com mod=hermes_proxy code=H20",
    ),
    (
        "hermes-h20-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H20",
        "cloud=heroku.com mod=hermes_proxy code=H80",
    ),
    (
        "hermes-h80-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H80",
        "cloud=heroku.com mod=hermes_proxy code=H99",
    ),
    (
        "hermes-h99-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H99",
        "cloud=heroku.com mod=hermes_proxy code=H10",
    ),
    (
        "hermes-h10-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H10 app_id=77",
        "cloud=heroku.com mod=services_callback code=H10 app_id=77",
    ),
    (
        "hermes-h11-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H11 app_id=77",
        "cloud=heroku.com mod=services_callback code=H11 app_id=77",
    ),
    (
        "hermes-h12-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H12 app_id=77",
        "cloud=heroku.com mod=services_callback code=H12 app_id=77",
    ),
    (
        "hermes-h13-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H13 app_id=77",
        "cloud=heroku.com mod=services_callback code=H13 app_id=77",
    ),
    (
        "hermes-h14-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H14 app_id=77",
        "cloud=heroku.com mod=services_callback code=H14 app_id=77",
    ),
    (
        "hermes-h15-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H15 app_id=77",
        "cloud=heroku.com mod=services_callback code=H15 app_id=77",
    ),
    (
        "hermes-h16-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H16 app_id=77",
        "cloud=heroku.com mod=services_callback code=H16 app_id=77",
    ),
    (
        "hermes-h17-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H17 app_id=77",
        "cloud=heroku.com mod=services_callback code=H17 app_id=77",
    ),
    (
        "hermes-h18-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H18 app_id=77",
        "cloud=heroku.com mod=services_callback code=H18 app_id=77",
    ),
    (
        "hermes-h19-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H19 app_id=77",
        "cloud=heroku.com mod=services_callback code=H19 app_id=77",
    ),
    (
        "hermes-h20-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H20 app_id=77",
        "cloud=heroku.com mod=services_callback code=H20 app_id=77",
    ),
    (
        "hermes-h80-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H80 app_id=77",
        "cloud=heroku.com mod=services_callback code=H80 app_id=77",
    ),
    (
        "hermes-h99-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy code=H99 app_id=77",
        "cloud=heroku.com mod=services_callback code=H99 app_id=77",
    ),
    (
        "hermes-econns-per-minute",
        "cloud=heroku.com mod=hermes_proxy error_type=econn",
        "mod=hermes_proxy error_type=timeout",
    ),
    (
        "hermes-econns-apps-per-minute",
        "cloud=heroku.com mod=hermes_proxy error_type=econn app_id=5",
        "mod=hermes error_type=econn app_id=5",
    ),
    (
        "hermes-errors-per-minute",
        "cloud=heroku.com source=hermes level=err",
        "source=hermes level=info",
    ),
    (
        "hermes-services-lockstep-updates-per-minute",
        "cloud=heroku.com mod=services_callback at=msg",
        "cloud=heroku.com mod=procs_callback at=msg",
    ),
    (
        "hermes-services-lockstep-connections-per-minute",
        "cloud=heroku.com mod=services_callback at=connect",
        "cloud=heroku.com mod=services_callback at=disconnect",
    ),
    (
        "hermes-services-lockstep-disconnects-per-minute",
        "cloud=heroku.com mod=services_callback at=disconnect",
        "cloud=heroku.com mod=services_callback at=connect",
    ),
    (
        "hermes-services-lockstep-mean-latency",
        "cloud=heroku.com mod=hermes_clock callback=services_callback latency=12",
        "cloud=heroku.com mod=hermes_clock callback=services_callback staleness=12",
    ),
    (
        "hermes-services-lockstep-mean-staleness",
        "cloud=heroku.com mod=hermes_clock callback=services_callback staleness=3.5",
        "cloud=heroku.com mod=hermes_clock callback=procs_callback staleness=3.5",
    ),
    (
        "hermes-procs-lockstep-updates-per-minute",
        "cloud=heroku.com mod=procs_callback at=msg",
        "cloud=heroku.com mod=services_callback at=msg",
    ),
    (
        "hermes-procs-lockstep-connections-per-minute",
        "cloud=heroku.com mod=procs_callback at=connect",
        "cloud=heroku.com mod=procs_callback at=disconnect",
    ),
    (
        "hermes-procs-lockstep-disconnects-per-minute",
        "cloud=heroku.com mod=procs_callback at=disconnect",
        "cloud=heroku.com mod=procs_callback at=connect",
    ),
    (
        "hermes-procs-lockstep-mean-latency",
        "cloud=heroku.com mod=hermes_clock callback=procs_callback latency=12",
        "cloud=heroku.com mod=hermes_clock callback=procs_callback staleness=12",
    ),
    (
        "hermes-procs-lockstep-mean-staleness",
        "cloud=heroku.com mod=hermes_clock callback=procs_callback staleness=3.5",
        "cloud=heroku.com mod=hermes_clock callback=services_callback staleness=3.5",
    ),
    (
        "hermes-domains-lockstep-updates-per-minute",
        "cloud=heroku.com mod=domains_callback at=msg",
        "cloud=heroku.com mod=procs_callback at=msg",
    ),
    (
        "hermes-domains-lockstep-connections-per-minute",
        "cloud=heroku.com mod=domains_callback at=connect",
        "cloud=heroku.com mod=domains_callback at=disconnect",
    ),
    (
        "hermes-domains-lockstep-disconnects-per-minute",
        "cloud=heroku.com mod=domains_callback at=disconnect",
        "cloud=heroku.com mod=domains_callback at=connect",
    ),
    (
        "hermes-domains-lockstep-mean-latency",
        "cloud=heroku.com mod=hermes_clock callback=domains_callback latency=12",
        "cloud=heroku.com mod=hermes_clock callback=domains_callback staleness=12",
    ),
    (
        "hermes-domains-lockstep-mean-staleness",
        "cloud=heroku.com mod=hermes_clock callback=domains_callback staleness=3.5",
        "cloud=heroku.com mod=hermes_clock callback=procs_callback staleness=3.5",
    ),
    (
        "hermes-domain-groups-lockstep-updates-per-minute",
        "cloud=heroku.com mod=domain_groups_callback at=msg",
        "cloud=heroku.com mod=procs_callback at=msg",
    ),
    (
        "hermes-domain-groups-lockstep-connections-per-minute",
        "cloud=heroku.com mod=domain_groups_callback at=connect",
        "cloud=heroku.com mod=domain_groups_callback at=disconnect",
    ),
    (
        "hermes-domain-groups-lockstep-disconnects-per-minute",
        "cloud=heroku.com mod=domain_groups_callback at=disconnect",
        "cloud=heroku.com mod=domain_groups_callback at=connect",
    ),
    (
        "hermes-domain-groups-lockstep-mean-latency",
        "cloud=heroku.com mod=hermes_clock callback=domain_groups_callback latency=12",
        "cloud=heroku.com mod=hermes_clock callback=domain_groups_callback staleness=12",
    ),
    (
        "hermes-domain-groups-lockstep-mean-staleness",
        "cloud=heroku.com mod=hermes_clock callback=domain_groups_callback staleness=3.5",
        "cloud=heroku.com mod=hermes_clock callback=procs_callback staleness=3.5",
    ),
    (
        "hermes-slow-redis-lookups-per-minute",
        "cloud=heroku.com mod=hermes_proxy redis=12.5",
        "cloud=heroku.com mod=hermes_proxy redis=9.9",
    ),
    (
        "hermes-catastrophic-redis-lookups-per-minute",
        "cloud=heroku.com mod=hermes_proxy redis=25",
        "cloud=heroku.com mod=hermes_proxy redis=24",
    ),
    (
        "hermes-processes-last",
        "cloud=heroku.com mod=hermes_clock at=stats instance_id=3 processes=120",
        "cloud=heroku.com mod=hermes_clock at=start instance_id=3 processes=120",
    ),
    (
        "hermes-ports-last",
        "cloud=heroku.com mod=hermes_clock at=stats instance_id=3 ports=4000",
        "cloud=heroku.com mod=hermes_proxy at=stats instance_id=3 ports=4000",
    ),
    (
        "logplex-msg-processed",
        "cloud=heroku.com logplex_stats=true instance_id=9 message_processed=1000",
        "cloud=heroku.com logplex_stats=true instance_id=9 drain_delivered=1000",
    ),
    (
        "logplex-drain-delivered",
        "cloud=heroku.com logplex_stats=true instance_id=9 drain_id=d.4 drain_delivered=77",
        "cloud=heroku.com instance_id=9 drain_id=d.4 drain_delivered=77",
    ),
    (
        "pulse-events-per-second",
        "app=pulse deploy=production",
        "app=hermes deploy=production",
    ),
];

/// An event from `k=v` words (`k="a b"` for blanks): integers and decimals become numbers,
/// true/false booleans, the rest strings, as pulse-parse coerces attributes.
fn ev(s: &str) -> Event {
    let mut e = Event::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (k, after) = rest.split_once('=').expect("k=v");
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').expect("closing quote");
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        super::tests::set_coerced(&mut e, k, v);
        rest = next.trim_start();
    }
    e
}

#[test]
fn every_classic_line_parses() {
    let set = StatSet::parse(CLASSIC, "pulse-classic.stats").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.stats.len(), 83);
    let stat_lines = CLASSIC
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .count();
    assert_eq!(stat_lines, set.stats.len());
    let again = StatSet::parse(&set.list(), "listed").unwrap();
    assert_eq!(set.stats.len(), again.stats.len());
    for (a, b) in set.stats.iter().zip(&again.stats) {
        assert_eq!(
            (&a.name, &a.agg, a.secs, &a.filter),
            (&b.name, &b.agg, b.secs, &b.filter)
        );
    }
}

#[test]
fn every_classic_stat_counts_its_event_and_not_the_near_miss() {
    let set = StatSet::parse(CLASSIC, "pulse-classic.stats").unwrap();
    assert_eq!(TABLE.len(), set.stats.len(), "one row per stat");
    let mut scratch = String::new();
    let mut key = String::new();
    for def in &set.stats {
        let &(_, yes, no) = TABLE
            .iter()
            .find(|r| r.0 == def.name)
            .unwrap_or_else(|| panic!("no test row for {}", def.name));
        let y = ev(yes);
        assert!(def.matches(&y), "{} should count {yes:?}", def.name);
        assert!(
            def.input(&y, 1.0, &mut scratch).is_some(),
            "{} should read a value from {yes:?}",
            def.name
        );
        if def.group_by.iter().any(|g| g == "cloud") {
            assert!(def.group_key(&y, &mut key));
            assert_eq!(key, "heroku.com", "{}", def.name);
        }
        if no.is_empty() {
            assert!(
                def.filter.is_empty(),
                "{} has no near miss but a filter",
                def.name
            );
        } else {
            assert!(
                !def.matches(&ev(no)),
                "{} should not count {no:?}",
                def.name
            );
        }
    }
}

#[test]
fn classic_values_follow_the_original() {
    let set = StatSet::parse(CLASSIC, "pulse-classic.stats").unwrap();
    let get = |n: &str| set.stats.iter().find(|s| s.name == n).unwrap();
    let mut scratch = String::new();
    // Per-second stats are 10-second counts (read as a rate), per-minute ones 60-second.
    assert_eq!(get("nginx-requests-per-second").secs, 10);
    assert_eq!(get("nginx-500-per-minute").secs, 60);
    // last-sum: the latest value per instance (and per drain for logplex).
    let d = get("logplex-drain-delivered");
    let e = ev("cloud=heroku.com logplex_stats=true instance_id=9 drain_id=d.4 drain_delivered=77");
    assert_eq!(
        d.input(&e, 2.0, &mut scratch),
        Some(Input::Last {
            part: "9,d.4",
            time: 2.0,
            value: 77.0
        })
    );
    // per-minute-unique counts distinct values of its key.
    let u = get("hermes-h12-apps-per-minute");
    let e = ev("cloud=heroku.com mod=hermes_proxy code=H12 app_id=77");
    assert_eq!(u.input(&e, 0.0, &mut scratch), Some(Input::Text("77")));
    // The unscoped stats have no group; the scoped ones group by cloud.
    assert!(get("events-per-second").group_by.is_empty());
    assert!(get("rendezvous-joins-per-minute").group_by.is_empty());
    assert_eq!(get("varnish-purges-per-minute").group_by, vec!["cloud"]);
}
