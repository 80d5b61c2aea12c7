//! Snapshots round-trip, and every kind of damage is refused with its reason, never a panic.

use super::*;

fn example() -> Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/lcr.toml");
    ringsip_config::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Put a correct hash on damaged content, so the checks behind the hash are reached.
fn rehash(bytes: &mut [u8]) {
    let h = xxhash_rust::xxh3::xxh3_128(&bytes[HEADER..]);
    bytes[32..48].copy_from_slice(&h.to_le_bytes());
}

#[test]
fn round_trip_keeps_the_config_and_the_trees() {
    let cfg = example();
    let bytes = build(&cfg, 7, 1_700_000_000_000).unwrap();
    let opened = open(&bytes).unwrap();
    assert_eq!(opened.meta.version, 7);
    assert_eq!(opened.meta.built_unix_ms, 1_700_000_000_000);
    assert_eq!(opened.config.server.listen, cfg.server.listen);
    assert_eq!(opened.config.dispatcher.sets.len(), cfg.dispatcher.sets.len());
    assert_eq!(format!("{:?}", opened.config.routes), format!("{:?}", cfg.routes));
    assert_eq!(opened.trees.len(), 1);
    let (built, distinct) = crate::route::build_tree(&cfg.mtrees[0]).unwrap();
    assert_eq!(opened.trees[0].0.image(), built.image());
    assert_eq!(opened.trees[0].1, distinct);
    assert!(opened.config.mtrees[0].entries.is_empty(), "entries travel as the built tree only");
    // the same content has the same hash whatever the version and time
    let again = build(&cfg, 8, 1_800_000_000_000).unwrap();
    assert_eq!(header(&again).unwrap().hash, opened.meta.hash);
}

#[test]
fn damage_is_refused_with_the_reason() {
    let good = build(&example(), 1, 0).unwrap();
    assert!(matches!(open(&good[..10]), Err(SnapshotError::TooShort(10))));
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(open(&b).unwrap_err(), SnapshotError::NotASnapshot);
    let mut b = good.clone();
    b[8] = 9;
    assert_eq!(open(&b).unwrap_err(), SnapshotError::Format(9));
    assert!(matches!(open(&good[..good.len() - 1]), Err(SnapshotError::Length { .. })));
    let mut b = good.clone();
    let last = b.len() - 1;
    b[last] ^= 0x55;
    assert!(matches!(open(&b), Err(SnapshotError::Hash { .. })));
    let toml = b"[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n".to_vec();
    assert_eq!(open(&toml).unwrap_err(), SnapshotError::TooShort(toml.len()));
}

#[test]
fn damaged_archives_behind_a_good_hash_never_panic() {
    let good = build(&example(), 1, 0).unwrap();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut refused = 0;
    for _ in 0..3000 {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        let r = rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let mut b = good.clone();
        let at = HEADER + (r as usize >> 8) % (b.len() - HEADER);
        b[at] ^= (r as u8) | 1;
        rehash(&mut b);
        if open(&b).is_err() {
            refused += 1;
        }
    }
    // most single-byte changes land in offsets, lengths, tags or tree arrays and are caught;
    // the others change a string or a number and still load as a valid (different) config
    assert!(refused > 300, "only {refused} of 3000 damaged archives were refused");
}

#[test]
fn acl_groups_travel_in_the_snapshot() {
    let text = "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n\
[[acl]]\nname = \"trusted\"\nentries = [\"10.0.0.0/8\", \"[2001:db8::1]:5070\"]\n\
[[route.request]]\nif = \"not $si in acl trusted\"\ndo = \"drop\"\n\
[[route.request]]\ndo = \"forward\"\n";
    let cfg = ringsip_config::parse(text, std::path::Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let opened = open(&build(&cfg, 1, 0).unwrap()).unwrap();
    assert_eq!(opened.config.acls, cfg.acls);
    let shared = crate::stateless::Shared::from_snapshot(opened, None).unwrap();
    assert_eq!(shared.program.acl_names, ["trusted"]);
    assert_eq!(shared.program.acls[0].len(), 2);
    assert!(shared.program.acls[0].matches("10.9.8.7:5060".parse().unwrap()));
    assert!(!shared.program.acls[0].matches("[2001:db8::1]:5071".parse().unwrap()));
}

#[test]
fn media_travels_in_the_snapshot() {
    let text = "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n\
[media]\naddress = \"127.0.0.1\"\nadvertise = \"203.0.113.5\"\nports = \"30000-39999\"\n\
control = \"127.0.0.1:2223\"\ntimeout = \"90s\"\nlatching = false\nbatch_wait = \"250us\"\n\
[[route.request]]\ndo = [\"anchor_media ice_remove\", \"relay \\\"sip:127.0.0.1:5080\\\"\"]\n";
    let cfg = ringsip_config::parse(text, std::path::Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.media.is_some());
    let opened = open(&build(&cfg, 1, 0).unwrap()).unwrap();
    assert_eq!(opened.config.media, cfg.media);
    assert_eq!(format!("{:?}", opened.config.routes), format!("{:?}", cfg.routes));
    // and without the section, none arrives
    let opened = open(&build(&example(), 1, 0).unwrap()).unwrap();
    assert_eq!(opened.config.media, None);
}

#[test]
fn the_format_is_5_since_pike() {
    let bytes = build(&example(), 1, 0).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 5);
    let mut old = bytes.clone();
    old[8..12].copy_from_slice(&4u32.to_le_bytes());
    assert_eq!(open(&old).unwrap_err(), SnapshotError::Format(4));
}
