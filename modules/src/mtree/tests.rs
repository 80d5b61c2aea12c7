//! The tree against a naive oracle (a scan of every entry), plus the build errors.

use super::*;

/// The oracle: every entry whose prefix starts `key` (up to the first character outside the
/// alphabet), longest first.
fn oracle<'a, V>(alphabet: &Alphabet, entries: &'a [(Vec<u8>, V)], key: &[u8]) -> Vec<(usize, &'a V)> {
    let usable = key.iter().position(|&b| alphabet.index(b).is_none()).unwrap_or(key.len());
    let mut out: Vec<(usize, &V)> =
        entries.iter().filter(|(p, _)| key[..usable].starts_with(p)).map(|(p, v)| (p.len(), v)).collect();
    out.sort_by_key(|b| std::cmp::Reverse(b.0));
    out
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn random_string(r: &mut Rng, chars: &[u8], max: usize) -> Vec<u8> {
    let len = r.below(max + 1);
    (0..len).map(|_| chars[r.below(chars.len())]).collect()
}

#[test]
fn agrees_with_the_oracle_on_random_trees() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for (round, chars) in [&b"0123456789"[..], b"0123456789+*#", b"01", b"abcdefghijklmnopqrstuvwxyz012345"]
        .iter()
        .cycle()
        .take(40)
        .enumerate()
    {
        let alphabet = Alphabet::new(chars).unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut entries: Vec<(Vec<u8>, usize)> = Vec::new();
        let count = 1 + r.below(300);
        while entries.len() < count {
            let p = random_string(&mut r, chars, 8);
            if seen.insert(p.clone()) {
                let v = entries.len();
                entries.push((p, v));
            }
        }
        let tree = Mtree::build(alphabet.clone(), entries.clone()).unwrap();
        assert_eq!(tree.len(), entries.len());
        for _ in 0..500 {
            // keys: extensions of entries, random strings, and strings with foreign bytes
            let mut key = match r.below(3) {
                0 => {
                    let mut k = entries[r.below(entries.len())].0.clone();
                    k.extend(random_string(&mut r, chars, 4));
                    k
                }
                1 => random_string(&mut r, chars, 12),
                _ => random_string(&mut r, b"0123456789+*#;@ax", 12),
            };
            if r.below(10) == 0 {
                key.push(b';');
                key.extend(random_string(&mut r, chars, 3));
            }
            let want = oracle(&alphabet, &entries, &key);
            let got: Vec<(usize, &usize)> = tree.matches(&key).collect();
            assert_eq!(got, want, "round {round}, key {:?}", String::from_utf8_lossy(&key));
            assert_eq!(tree.longest(&key), want.first().copied(), "round {round}");
        }
    }
}

#[test]
fn longest_prefix_routing_example() {
    let t = Mtree::build(
        Alphabet::new(b"0123456789+").unwrap(),
        vec![("+49", "de"), ("+4930", "berlin"), ("+49301", "berlin-1"), ("+1", "nanp"), ("", "default")],
    )
    .unwrap();
    assert_eq!(t.longest(b"+493012345"), Some((6, &"berlin-1")));
    assert_eq!(t.longest(b"+4930999"), Some((5, &"berlin")));
    assert_eq!(t.longest(b"+4989"), Some((3, &"de")));
    assert_eq!(t.longest(b"+33"), Some((0, &"default")));
    // a character outside the alphabet ends the key: the user part before ';'
    assert_eq!(t.longest(b"+4930;npdi"), Some((5, &"berlin")));
    let all: Vec<_> = t.matches(b"+49301").map(|(_, v)| *v).collect();
    assert_eq!(all, ["berlin-1", "berlin", "de", "default"]);
    let digits_only = Mtree::build(Alphabet::digits(), vec![("49", 1)]).unwrap();
    assert_eq!(digits_only.longest(b"+49"), None, "'+' is not a digit");
    assert!(digits_only.nodes() == 3 && digits_only.memory_bytes() > 0);
}

#[test]
fn build_errors_name_the_entries() {
    let a = Alphabet::digits;
    assert_eq!(
        Mtree::build(a(), vec![("123", 0), ("45", 1), ("123", 2)]).unwrap_err(),
        BuildError::Duplicate { first: 0, second: 2 }
    );
    assert_eq!(
        Mtree::build(a(), vec![("12", 0), ("4x5", 1)]).unwrap_err(),
        BuildError::BadChar { entry: 1, at: 1, byte: b'x' }
    );
    let long = "1".repeat(MAX_PREFIX + 1);
    assert_eq!(
        Mtree::build(a(), vec![(long.as_str(), 0)]).unwrap_err(),
        BuildError::TooLong { entry: 0, len: MAX_PREFIX + 1 }
    );
    assert!(matches!(Alphabet::new(b""), Err(BuildError::BadAlphabet(_))));
    assert!(matches!(Alphabet::new(b"0120"), Err(BuildError::BadAlphabet(_))));
    assert!(matches!(Alphabet::new(b"01 "), Err(BuildError::BadAlphabet(_))));
    assert!(matches!(Alphabet::new(&[b'0'; 33]), Err(BuildError::BadAlphabet(_))));
    assert!(Alphabet::new(b"abcdefghijklmnopqrstuvwxyz012345").is_ok(), "32 characters fit the bitmap");
    assert_eq!(BuildError::Duplicate { first: 0, second: 2 }.to_string(), "entry 2 repeats the prefix of entry 0");
    let empty: Mtree<u8> = Mtree::build(a(), Vec::<(&str, u8)>::new()).unwrap();
    assert!(empty.is_empty() && empty.longest(b"123").is_none() && empty.matches(b"1").next().is_none());
}

fn archive(image: &TreeImage) -> rkyv::util::AlignedVec {
    rkyv::to_bytes::<rkyv::rancor::Error>(image).unwrap()
}

fn load(bytes: &[u8], distinct: usize) -> Result<Mtree<u32>, BuildError> {
    let archived = rkyv::access::<ArchivedTreeImage, rkyv::rancor::Error>(bytes).unwrap();
    Mtree::from_archived(archived, distinct)
}

#[test]
fn an_archived_image_loads_into_the_same_tree() {
    let mut r = Rng(0x51_7cc1_b727_220a);
    for chars in [&b"0123456789"[..], b"01", b"abcdefghijklmnopqrstuvwxyz012345"] {
        let alphabet = Alphabet::new(chars).unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut entries: Vec<(Vec<u8>, u32)> = Vec::new();
        while entries.len() < 400 {
            let p = random_string(&mut r, chars, 9);
            if seen.insert(p.clone()) {
                entries.push((p, r.below(7) as u32));
            }
        }
        let tree = Mtree::build(alphabet, entries.clone()).unwrap();
        let loaded = load(&archive(&tree.image()), 7).unwrap();
        assert_eq!(loaded.image(), tree.image());
        for _ in 0..500 {
            let key = random_string(&mut r, chars, 12);
            assert_eq!(loaded.matches(&key).collect::<Vec<_>>(), tree.matches(&key).collect::<Vec<_>>());
        }
    }
}

#[test]
fn a_tampered_image_is_refused_not_trusted() {
    let entries: Vec<(&str, u32)> = vec![("", 0), ("1", 1), ("12", 0), ("44", 2), ("441", 1)];
    let tree = Mtree::build(Alphabet::digits(), entries).unwrap();
    let good = tree.image();
    assert!(load(&archive(&good), 3).is_ok());
    let bad = |f: &dyn Fn(&mut TreeImage), distinct: usize| {
        let mut img = good.clone();
        f(&mut img);
        load(&archive(&img), distinct).err()
    };
    let msg = |e: Option<BuildError>| e.map(|e| e.to_string()).unwrap_or_else(|| "accepted".into());
    // a child pointing back at the root (a cycle)
    assert!(msg(bad(&|i| i.nodes[1][0] = 0, 3)).contains("breadth first"), "{}", msg(bad(&|i| i.nodes[1][0] = 0, 3)));
    // a child for a character the alphabet does not have
    assert!(msg(bad(&|i| i.nodes[0][1] |= 1 << 12, 3)).contains("outside the alphabet"));
    // value index out of range, or used twice
    assert!(msg(bad(&|i| i.nodes[1][2] = 99, 3)).contains("value index"));
    assert!(msg(bad(&|i| i.nodes[2][2] = i.nodes[1][2], 3)).contains("used twice"));
    // a value beyond the distinct values the snapshot carries
    assert!(msg(bad(&|_| {}, 2)).contains("distinct"));
    // lengths that do not match
    assert!(msg(bad(&|i| i.lens[1] = 5, 3)).contains("depth"));
    assert!(msg(bad(&|i| i.lens.pop().map(drop).unwrap_or(()), 3)).contains("differ"));
    // trailing nodes nobody points at
    assert!(msg(bad(&|i| i.nodes.push([0, 0, 0]), 3)).contains("no parent"));
    assert!(msg(bad(&|i| i.nodes.clear(), 3)).contains("root"));
}
