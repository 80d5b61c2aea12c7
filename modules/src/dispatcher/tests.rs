use super::*;
use std::path::Path;

fn dispatcher(sets: &str) -> Dispatcher {
    let text = format!("[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n{sets}\n[[route.request]]\ndo = \"forward\"\n");
    let cfg = ringsip_config::parse(&text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"));
    Dispatcher::new(&cfg.dispatcher)
}

const TWO_RR: &str = r#"
[[dispatcher.set]]
id = 1
algorithm = "round-robin"
destinations = ["sip:127.0.0.1:5080", "sip:127.0.0.1:5081"]
probe = { interval = "1s", timeout = "500ms", failure_threshold = 2, success_threshold = 2 }
"#;

fn pick(d: &Dispatcher, cur: &mut Cursor, n: usize) -> Vec<Option<usize>> {
    (0..n).map(|_| d.select(0, Key::None, cur)).collect()
}

#[test]
fn round_robin_alternates_and_skips_unavailable() {
    let d = dispatcher(TWO_RR);
    let mut cur = Cursor::new(&d, 0);
    let got = pick(&d, &mut cur, 4);
    assert_eq!(got, [Some(0), Some(1), Some(0), Some(1)]);
    d.sets[0].dests[1].set_active(false);
    assert_eq!(pick(&d, &mut cur, 3), [Some(0), Some(0), Some(0)]);
    d.sets[0].dests[0].set_disabled(true);
    assert_eq!(d.select(0, Key::None, &mut cur), None);
    d.sets[0].dests[0].set_disabled(false);
    assert_eq!(d.sets[0].dests[0].state_name(), "active");
    assert_eq!(d.sets[0].dests[1].state_name(), "inactive");
}

#[test]
fn hash_algorithms_are_deterministic_and_fall_over() {
    let d = dispatcher(
        r#"
[[dispatcher.set]]
id = 7
algorithm = "hash-callid"
destinations = ["sip:10.0.0.1", "sip:10.0.0.2", "sip:10.0.0.3"]
"#,
    );
    let mut cur = Cursor::new(&d, 1);
    let mut hits = [0usize; 3];
    for i in 0..300 {
        let key = format!("call-{i}@example.com");
        let a = d.select(0, Key::Bytes(key.as_bytes()), &mut cur).unwrap();
        assert_eq!(d.select(0, Key::Bytes(key.as_bytes()), &mut cur), Some(a), "same key, same destination");
        hits[a] += 1;
    }
    assert!(hits.iter().all(|&h| h > 60), "hash spreads: {hits:?}");
    // a destination going down moves only its keys, to the next available one
    let k =
        (0..).map(|i| format!("k{i}")).find(|k| d.select(0, Key::Bytes(k.as_bytes()), &mut cur) == Some(1)).unwrap();
    d.sets[0].dests[1].set_active(false);
    assert_eq!(d.select(0, Key::Bytes(k.as_bytes()), &mut cur), Some(2));
    assert_eq!(d.select(0, Key::None, &mut cur), Some(0), "no key: first available");
}

#[test]
fn priority_weight_and_relative_weight() {
    let d = dispatcher(
        r#"
[[dispatcher.set]]
id = 1
algorithm = "priority"
destinations = [{ uri = "sip:10.0.0.1", priority = 1 }, { uri = "sip:10.0.0.2", priority = 5 }, { uri = "sip:10.0.0.3", priority = 3 }]

[[dispatcher.set]]
id = 2
algorithm = "weight"
destinations = [{ uri = "sip:10.0.0.1", weight = 70 }, { uri = "sip:10.0.0.2", weight = 30 }]

[[dispatcher.set]]
id = 3
algorithm = "relative-weight"
destinations = [{ uri = "sip:10.0.0.1", weight = 1 }, { uri = "sip:10.0.0.2", weight = 2 }, { uri = "sip:10.0.0.3", weight = 1 }]
"#,
    );
    let mut cur = Cursor::new(&d, 3);
    assert_eq!(d.select(0, Key::None, &mut cur), Some(1), "highest priority first");
    d.sets[0].dests[1].set_active(false);
    assert_eq!(d.select(0, Key::None, &mut cur), Some(2), "then the next priority");

    let mut w = [0usize; 2];
    for _ in 0..1000 {
        w[d.select(1, Key::None, &mut cur).unwrap()] += 1;
    }
    assert_eq!(w, [700, 300], "weights are exact over whole rounds of 100");
    // the weight table is interleaved, not 70 in a row
    let first10: Vec<_> = (0..10).map(|_| d.select(1, Key::None, &mut cur).unwrap()).collect();
    assert!(first10.contains(&1), "{first10:?}");

    let mut r = [0usize; 3];
    for _ in 0..40_000 {
        r[d.select(2, Key::None, &mut cur).unwrap()] += 1;
    }
    assert!((9_000..11_000).contains(&r[0]) && (19_000..21_000).contains(&r[1]), "{r:?}");
    // one down: the others keep their relative shares (1:1 now)
    d.sets[2].dests[1].set_active(false);
    let mut r = [0usize; 3];
    for _ in 0..20_000 {
        r[d.select(2, Key::None, &mut cur).unwrap()] += 1;
    }
    assert_eq!(r[1], 0);
    assert!((9_000..11_000).contains(&r[0]), "{r:?}");
}

#[test]
fn random_only_picks_available() {
    let d = dispatcher(
        r#"
[[dispatcher.set]]
id = 1
algorithm = "random"
destinations = ["sip:10.0.0.1", "sip:10.0.0.2", "sip:10.0.0.3"]
"#,
    );
    let mut cur = Cursor::new(&d, 9);
    d.sets[0].dests[0].set_active(false);
    let mut seen = [0usize; 3];
    for _ in 0..300 {
        seen[d.select(0, Key::None, &mut cur).unwrap()] += 1;
    }
    assert_eq!(seen[0], 0);
    assert!(seen[1] > 50 && seen[2] > 50, "{seen:?}");
}

#[test]
fn probing_thresholds_and_codes() {
    let d = dispatcher(TWO_RR);
    let t0 = Instant::now();
    let mut p = Prober::new(&d, t0);
    let (mut send, mut changes) = (Vec::new(), Vec::new());
    let ms = |n| Duration::from_millis(n);
    let tick = |p: &mut Prober, at: Duration, send: &mut Vec<ProbeSend>, changes: &mut Vec<Transition>| {
        send.clear();
        changes.clear();
        p.tick(&d, t0 + at, send, changes);
    };
    // t=0: both probed
    tick(&mut p, ms(0), &mut send, &mut changes);
    assert_eq!(send.len(), 2);
    assert_eq!(send[0].seq, 1);
    // dest 0 answers 200, dest 1 stays silent
    d.record_answer(0, 0, send[0].seq, 200);
    tick(&mut p, ms(600), &mut send, &mut changes);
    assert!(changes.is_empty(), "one failure is below the threshold of 2");
    assert!(send.is_empty(), "next probes only after the interval");
    tick(&mut p, ms(1000), &mut send, &mut changes);
    assert_eq!(send.len(), 2);
    d.record_answer(0, 0, send[0].seq, 200);
    // dest 1 answers, but with 503: a failure too
    d.record_answer(0, 1, send[1].seq, 503);
    tick(&mut p, ms(1100), &mut send, &mut changes);
    assert_eq!(changes, [Transition { set: 0, dest: 1, up: false }]);
    assert!(!d.sets[0].dests[1].available());
    assert!(d.sets[0].dests[0].available());
    // two good answers bring it back
    for k in 0..2u64 {
        tick(&mut p, ms(2000 + 1000 * k), &mut send, &mut changes);
        let s1 = send.iter().find(|s| s.dest == 1).unwrap();
        d.record_answer(0, 1, s1.seq, 200);
        d.record_answer(0, 0, send.iter().find(|s| s.dest == 0).unwrap().seq, 200);
        tick(&mut p, ms(2050 + 1000 * k), &mut send, &mut changes);
        if k == 0 {
            assert!(changes.is_empty());
        } else {
            assert_eq!(changes, [Transition { set: 0, dest: 1, up: true }]);
        }
    }
    assert!(d.sets[0].dests[1].available());
    // a stale answer (old sequence) does not count
    tick(&mut p, ms(4000), &mut send, &mut changes);
    d.record_answer(0, 0, 1, 200);
    tick(&mut p, ms(4600), &mut send, &mut changes);
    tick(&mut p, ms(5000), &mut send, &mut changes);
    tick(&mut p, ms(5600), &mut send, &mut changes);
    assert!(changes.contains(&Transition { set: 0, dest: 0, up: false }), "{changes:?}");
}

#[test]
fn disabled_destinations_are_not_probed_and_mode_inactive() {
    let d = dispatcher(
        r#"
[[dispatcher.set]]
id = 1
algorithm = 4
destinations = ["sip:10.0.0.1", { uri = "sip:10.0.0.2", state = "disabled" }]
probe = { mode = "inactive", interval = "1s" }
"#,
    );
    assert!(!d.sets[0].dests[1].available());
    let t0 = Instant::now();
    let mut p = Prober::new(&d, t0);
    let (mut send, mut changes) = (Vec::new(), Vec::new());
    p.tick(&d, t0, &mut send, &mut changes);
    assert!(send.is_empty(), "mode inactive: active destinations are not probed; disabled never: {send:?}");
    d.sets[0].dests[0].set_active(false);
    p.tick(&d, t0 + Duration::from_secs(1), &mut send, &mut changes);
    assert_eq!(send.len(), 1);
    assert_eq!(send[0].dest, 0);
    assert_eq!(Prober::min_interval(&d), Some(Duration::from_secs(1)));
}
