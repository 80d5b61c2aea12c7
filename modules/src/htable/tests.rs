//! The table's semantics with explicit instants (the table's epoch plus offsets), the entry
//! count under races, and [`Tables::reconcile`].

use super::*;

fn spec(name: &str, max: Option<usize>, autoexpire: Option<Duration>) -> Spec {
    Spec { name: name.to_string(), max_entries: max, autoexpire }
}

fn table(max: Option<usize>, autoexpire: Option<Duration>) -> Htable {
    Htable::new(&spec("t", max, autoexpire))
}

/// The table's epoch plus `ms` milliseconds.
fn at(t: &Htable, ms: u64) -> Instant {
    t.epoch + Duration::from_millis(ms)
}

fn text(s: &str) -> Value {
    Value::Text(s.as_bytes().into())
}

#[test]
fn set_get_exists_delete_flush() {
    let t = table(None, None);
    let now = at(&t, 0);
    assert!(t.is_empty());
    assert_eq!(t.get(b"a", now, |v| v.clone()), None);
    t.set(b"a", Value::Int(7), None, now).unwrap();
    t.set(b"b", text("hello"), None, now).unwrap();
    assert_eq!(t.get(b"a", now, |v| v.clone()), Some(Value::Int(7)));
    assert_eq!(t.get(b"b", now, |v| v.clone()), Some(text("hello")));
    assert_eq!(t.get_int(b"a", now), Some(7));
    assert_eq!(t.get_int(b"b", now), None);
    assert!(t.exists(b"a", now) && t.exists(b"b", now) && !t.exists(b"c", now));
    assert_eq!(t.len(), 2);

    // Overwrite: same count, new value, even of another kind.
    t.set(b"a", text("x"), None, now).unwrap();
    assert_eq!(t.get(b"a", now, |v| v.clone()), Some(text("x")));
    assert_eq!(t.len(), 2);

    assert!(t.delete(b"a"));
    assert!(!t.delete(b"a"));
    assert!(!t.exists(b"a", now));
    assert_eq!(t.len(), 1);

    for i in 0..10 {
        t.set(format!("k{i}").as_bytes(), Value::Int(i), None, now).unwrap();
    }
    assert_eq!(t.len(), 11);
    assert_eq!(t.flush(), 11);
    assert_eq!(t.len(), 0);
    assert!(!t.exists(b"b", now));
    assert_eq!(t.flush(), 0);

    let s = t.stats();
    assert_eq!(s.sets, 13);
    assert_eq!(s.deletes, 12);
    assert_eq!(s.refused_full, 0);
}

#[test]
fn empty_key_and_binary_keys() {
    let t = table(None, None);
    let now = at(&t, 0);
    t.set(b"", Value::Int(1), None, now).unwrap();
    t.set(&[0, 255, 10], Value::Int(2), None, now).unwrap();
    assert_eq!(t.get_int(b"", now), Some(1));
    assert_eq!(t.get_int(&[0, 255, 10], now), Some(2));
}

#[test]
fn per_item_expiry() {
    let t = table(None, None);
    t.set(b"short", Value::Int(1), Some(Duration::from_secs(10)), at(&t, 1_000)).unwrap();
    t.set(b"forever", Value::Int(2), None, at(&t, 1_000)).unwrap();
    // Some(ZERO): never expires.
    t.set(b"zero", Value::Int(3), Some(Duration::ZERO), at(&t, 1_000)).unwrap();
    // A sub-millisecond expiry still expires (rounded up to 1 ms).
    t.set(b"tiny", Value::Int(4), Some(Duration::from_micros(10)), at(&t, 1_000)).unwrap();

    assert!(t.exists(b"short", at(&t, 10_999)));
    assert!(!t.exists(b"short", at(&t, 11_000)));
    assert_eq!(t.get(b"short", at(&t, 11_000), |_| ()), None);
    assert!(t.exists(b"forever", at(&t, u32::MAX as u64)));
    assert!(t.exists(b"zero", at(&t, u32::MAX as u64)));
    assert!(t.exists(b"tiny", at(&t, 1_000)));
    assert!(!t.exists(b"tiny", at(&t, 1_001)));

    // Expired but not swept: still counted.
    assert_eq!(t.len(), 4);
    assert_eq!(t.sweep(at(&t, 10_000)), 1, "only tiny by then");
    assert_eq!(t.sweep(at(&t, 11_000)), 1, "short");
    assert_eq!(t.sweep(at(&t, 11_000)), 0);
    assert_eq!(t.len(), 2);
    assert_eq!(t.stats().expired, 2);

    // An expired key is overwritten by a set, with a fresh deadline.
    t.set(b"k", Value::Int(1), Some(Duration::from_secs(1)), at(&t, 0)).unwrap();
    t.set(b"k", Value::Int(5), Some(Duration::from_secs(1)), at(&t, 5_000)).unwrap();
    assert_eq!(t.get_int(b"k", at(&t, 5_999)), Some(5));
    assert_eq!(t.len(), 3);
}

#[test]
fn autoexpire_counts_from_the_last_write() {
    let t = table(None, Some(Duration::from_secs(60)));
    t.set(b"a", Value::Int(1), None, at(&t, 0)).unwrap();
    // An explicit expiry wins over autoexpire.
    t.set(b"b", Value::Int(1), Some(Duration::from_secs(5)), at(&t, 0)).unwrap();
    t.set(b"c", Value::Int(1), Some(Duration::ZERO), at(&t, 0)).unwrap();
    assert!(t.exists(b"a", at(&t, 59_999)));
    assert!(!t.exists(b"a", at(&t, 60_000)));
    assert!(!t.exists(b"b", at(&t, 5_000)));
    assert!(t.exists(b"c", at(&t, 1_000_000)));

    // A write renews the deadline.
    t.set(b"a", Value::Int(2), None, at(&t, 50_000)).unwrap();
    assert!(t.exists(b"a", at(&t, 109_999)));
    assert!(!t.exists(b"a", at(&t, 110_000)));

    // So does an increment.
    t.inc(b"n", 1, at(&t, 0)).unwrap();
    assert_eq!(t.inc(b"n", 1, at(&t, 59_000)), Ok(2));
    assert_eq!(t.get_int(b"n", at(&t, 118_999)), Some(2));
    assert!(!t.exists(b"n", at(&t, 119_000)));
    // An increment of an expired counter starts from 0.
    assert_eq!(t.inc(b"n", 1, at(&t, 119_000)), Ok(1));
    assert_eq!(t.len(), 4);
}

#[test]
fn inc_keeps_a_per_item_deadline_without_autoexpire() {
    let t = table(None, None);
    t.set(b"n", Value::Int(10), Some(Duration::from_secs(10)), at(&t, 0)).unwrap();
    assert_eq!(t.inc(b"n", 5, at(&t, 9_000)), Ok(15));
    assert!(!t.exists(b"n", at(&t, 10_000)), "inc without autoexpire keeps the deadline");
    // From a missing key: no deadline.
    assert_eq!(t.inc(b"m", 1, at(&t, 0)), Ok(1));
    assert!(t.exists(b"m", at(&t, u32::MAX as u64)));
}

#[test]
fn inc_errors() {
    let t = table(None, None);
    let now = at(&t, 0);
    assert_eq!(t.inc(b"n", -3, now), Ok(-3));
    assert_eq!(t.inc(b"n", 10, now), Ok(7));
    assert_eq!(t.get_int(b"n", now), Some(7));

    t.set(b"s", text("abc"), None, now).unwrap();
    assert_eq!(t.inc(b"s", 1, now), Err(HtError::NotInteger));
    assert_eq!(t.get(b"s", now, |v| v.clone()), Some(text("abc")), "unchanged");

    t.set(b"big", Value::Int(i64::MAX - 1), None, now).unwrap();
    assert_eq!(t.inc(b"big", 1, now), Ok(i64::MAX));
    assert_eq!(t.inc(b"big", 1, now), Err(HtError::Overflow));
    assert_eq!(t.get_int(b"big", now), Some(i64::MAX), "unchanged");
    assert_eq!(t.inc(b"big", i64::MIN, now), Ok(-1));

    assert_eq!(t.len(), 3);
    assert_eq!(t.stats().incs, 4);
    assert_eq!(HtError::NotInteger.to_string(), "htable value is not an integer");
}

#[test]
fn max_entries_is_exact() {
    let t = table(Some(3), None);
    let now = at(&t, 0);
    for k in [b"a", b"b", b"c"] {
        t.set(k, Value::Int(1), None, now).unwrap();
    }
    assert_eq!(t.set(b"d", Value::Int(1), None, now), Err(HtError::Full { max: 3 }));
    assert_eq!(t.inc(b"d", 1, now), Err(HtError::Full { max: 3 }));
    assert!(!t.exists(b"d", now));
    // Overwrites and increments of existing keys are allowed at the limit.
    t.set(b"a", text("x"), None, now).unwrap();
    assert_eq!(t.inc(b"b", 1, now), Ok(2));
    assert_eq!(t.len(), 3);
    assert_eq!(t.stats().refused_full, 2);

    // An expired entry still holds its slot until swept, but can be overwritten.
    t.set(b"c", Value::Int(1), Some(Duration::from_secs(1)), now).unwrap();
    let later = at(&t, 2_000);
    assert!(t.set(b"d", Value::Int(1), None, later).is_err());
    assert_eq!(t.inc(b"c", 1, later), Ok(1));
    t.set(b"c", Value::Int(1), Some(Duration::from_secs(1)), now).unwrap();
    assert_eq!(t.sweep(later), 1);
    t.set(b"d", Value::Int(1), None, later).unwrap();

    // Deleting frees a slot.
    assert!(t.delete(b"a"));
    t.set(b"e", Value::Int(1), None, later).unwrap();
    assert_eq!(t.len(), 3);
    assert!(t.set(b"f", Value::Int(1), None, later).is_err());
}

#[test]
fn lowering_max_keeps_entries_and_refuses_new_keys() {
    let t = table(None, None);
    let now = at(&t, 0);
    for i in 0..5 {
        t.set(format!("k{i}").as_bytes(), Value::Int(i), None, now).unwrap();
    }
    t.reconfigure(&spec("t", Some(3), Some(Duration::from_secs(9))));
    assert_eq!(t.spec(), spec("t", Some(3), Some(Duration::from_secs(9))));
    assert_eq!(t.len(), 5);
    assert_eq!(t.set(b"new", Value::Int(1), None, now), Err(HtError::Full { max: 3 }));
    t.set(b"k0", Value::Int(9), None, now).unwrap();
    assert!(t.delete(b"k1") && t.delete(b"k2"));
    assert!(t.set(b"new", Value::Int(1), None, now).is_err(), "3 entries: still at the limit");
    assert!(t.delete(b"k3"));
    t.set(b"new", Value::Int(1), None, now).unwrap();
    // The new autoexpire applies to writes from now on; older entries keep theirs.
    assert!(!t.exists(b"new", at(&t, 9_000)));
    assert!(t.exists(b"k4", at(&t, 9_000)));
    assert!(!t.exists(b"k0", at(&t, 9_000)), "rewritten after the change");

    t.reconfigure(&spec("t", None, None));
    assert_eq!(t.spec(), spec("t", None, None));
    t.set(b"more", Value::Int(1), None, now).unwrap();
}

#[test]
fn concurrent_inserts_respect_max_entries() {
    let t = table(Some(1000), None);
    let now = at(&t, 0);
    let threads = 4;
    let per_thread = 600;
    let ok: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|th| {
                let t = &t;
                s.spawn(move || {
                    let mut ok = 0;
                    for i in 0..per_thread {
                        match t.set(format!("{th}.{i}").as_bytes(), Value::Int(i), None, now) {
                            Ok(()) => ok += 1,
                            Err(e) => assert_eq!(e, HtError::Full { max: 1000 }),
                        }
                    }
                    ok
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(ok, 1000);
    assert_eq!(t.len(), 1000);
    assert_eq!(t.dump(now).len(), 1000);
    assert_eq!(t.stats().refused_full, (threads * per_thread - 1000) as u64);
    assert_eq!(t.flush(), 1000);
}

#[test]
fn concurrent_same_keys_with_deletes_keep_the_count_exact() {
    // Writers and deleters race on a few keys: the count must end equal to the keys left.
    let t = table(Some(8), None);
    let now = at(&t, 0);
    std::thread::scope(|s| {
        for th in 0..4u64 {
            let t = &t;
            s.spawn(move || {
                for i in 0..20_000u64 {
                    let key = [b'k', b'0' + ((i * 7 + th) % 12) as u8];
                    match (i + th) % 3 {
                        0 => {
                            let _ = t.set(&key, Value::Int(1), None, now);
                        }
                        1 => {
                            let _ = t.inc(&key, 1, now);
                        }
                        _ => {
                            t.delete(&key);
                        }
                    }
                }
            });
        }
    });
    let left = t.dump(now).len();
    assert_eq!(t.len(), left);
    assert!(left <= 8);
}

#[test]
fn concurrent_incs_are_not_lost() {
    let t = table(None, Some(Duration::from_secs(60)));
    let now = at(&t, 0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..10_000 {
                    t.inc(b"10.1.2.3", 1, now).unwrap();
                }
            });
        }
    });
    assert_eq!(t.get_int(b"10.1.2.3", now), Some(40_000));
    assert_eq!(t.len(), 1);
    assert_eq!(t.stats().incs, 40_000);
}

#[test]
fn dump_is_sorted_with_remaining_lifetimes() {
    let t = table(None, Some(Duration::from_secs(100)));
    let t0 = at(&t, 1_000);
    t.set(b"c", Value::Int(3), None, t0).unwrap();
    t.set(b"a", text("one"), Some(Duration::from_secs(10)), t0).unwrap();
    t.set(b"b", Value::Int(2), Some(Duration::ZERO), t0).unwrap();
    t.set(b"gone", Value::Int(0), Some(Duration::from_millis(500)), t0).unwrap();
    let now = at(&t, 4_000);
    assert_eq!(
        t.dump(now),
        vec![
            (b"a".to_vec(), text("one"), Some(Duration::from_secs(7))),
            (b"b".to_vec(), Value::Int(2), None),
            (b"c".to_vec(), Value::Int(3), Some(Duration::from_secs(97))),
        ]
    );
}

#[test]
fn instants_before_the_epoch_count_as_the_epoch() {
    let t = table(None, None);
    let before = t.epoch.checked_sub(Duration::from_secs(5)).unwrap_or(t.epoch);
    t.set(b"a", Value::Int(1), Some(Duration::from_secs(1)), before).unwrap();
    assert!(t.exists(b"a", before));
    assert!(!t.exists(b"a", at(&t, 1_000)));
}

#[test]
fn tables_reconcile() {
    let old = Tables::new(&[spec("ipban", Some(10), None), spec("counters", None, None), spec("gone", None, None)]);
    assert_eq!(old.len(), 3);
    assert_eq!(old.index("ipban"), Some(0));
    assert_eq!(old.index("counters"), Some(1));
    assert_eq!(old.index("nope"), None);
    assert_eq!(old.iter().map(|t| t.name()).collect::<Vec<_>>(), ["ipban", "counters", "gone"]);
    let ipban = Arc::clone(old.by_name("ipban").unwrap());
    let now = Instant::now();
    ipban.set(b"192.0.2.1", Value::Int(1), None, now).unwrap();
    let gone = Arc::downgrade(old.by_name("gone").unwrap());

    let new = old.reconcile(&[
        spec("fresh", None, None),
        spec("ipban", Some(20), Some(Duration::from_secs(30))),
        spec("counters", None, None),
    ]);
    assert_eq!(new.len(), 3);
    assert_eq!(new.index("fresh"), Some(0));
    assert_eq!(new.index("ipban"), Some(1));
    assert_eq!(new.index("gone"), None);
    let kept = new.get(1).unwrap();
    assert!(Arc::ptr_eq(kept, &ipban));
    assert!(Arc::ptr_eq(new.by_name("counters").unwrap(), old.by_name("counters").unwrap()));
    assert!(kept.exists(b"192.0.2.1", now), "entries survive");
    assert_eq!(kept.spec(), spec("ipban", Some(20), Some(Duration::from_secs(30))));
    assert!(new.by_name("fresh").unwrap().is_empty());
    assert!(new.get(3).is_none());

    drop(old);
    assert!(gone.upgrade().is_none(), "dropped with the last snapshot holding it");
    assert!(Tables::default().is_empty());
}

#[test]
fn tables_with_a_repeated_name_keep_the_first() {
    let t = Tables::new(&[spec("a", Some(1), None), spec("a", Some(2), None), spec("b", None, None)]);
    assert_eq!(t.len(), 2);
    assert_eq!(t.by_name("a").unwrap().spec().max_entries, Some(1));
    assert_eq!(t.index("b"), Some(1));
}
