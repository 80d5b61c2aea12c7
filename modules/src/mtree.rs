//! mtree: named prefix trees for prefix and least-cost routing (Kamailio's `mtree` module).
//!
//! A tree maps prefixes over a small alphabet (digits by default; `+`, `*`, `#` or any other
//! printable ASCII when configured, at most 32 characters) to values. It is built once, off
//! the hot path, into a compact array and never changed afterwards: a new table is a new tree
//! in a new snapshot. Lookups take no lock and allocate nothing:
//!
//! * [`Mtree::longest`]: the longest prefix of a key that is in the tree (LCR's "most
//!   specific route");
//! * [`Mtree::matches`]: every prefix of the key that is in the tree, longest first (failover
//!   from the most specific route to the broader ones).
//!
//! A key character outside the alphabet ends the match there, as in Kamailio (a `;` or `@`
//! after the number, or a `+` in a digits-only tree). The empty prefix is allowed and matches
//! every key (a default route).
//!
//! Layout: one 12-byte node per distinct prefix-of-a-prefix, laid out breadth first so that
//! the children of a node are contiguous. A node holds a bitmap of the characters that have a
//! child, the index of its first child and its value; the child for character `c` is
//! `first_child + popcount(bitmap below c)`. A lookup touches one node per key character.

use std::collections::VecDeque;
use std::fmt;

/// Longest prefix a tree accepts (E.164 numbers have at most 15 digits; routing keys rarely
/// more than 20 characters).
pub const MAX_PREFIX: usize = 64;

/// Why a tree could not be built. Entries are named by their index in the input, so a
/// config loader can point at the file, line or CSV row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// The alphabet is empty, longer than 32 characters, repeats a character or holds a
    /// non-printable or non-ASCII byte.
    BadAlphabet(String),
    /// Entry `entry` has a character outside the alphabet at byte `at`.
    BadChar {
        /// Index of the entry in the input.
        entry: usize,
        /// Byte offset in its prefix.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// Entry `entry`'s prefix is longer than [`MAX_PREFIX`].
    TooLong {
        /// Index of the entry in the input.
        entry: usize,
        /// Its length.
        len: usize,
    },
    /// Two entries have the same prefix.
    Duplicate {
        /// The earlier entry.
        first: usize,
        /// The later one.
        second: usize,
    },
    /// More than 2^32 - 2 nodes or entries.
    TooLarge,
    /// A tree image (from a snapshot) is not a tree this module built: what is wrong.
    BadImage(&'static str),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::BadAlphabet(why) => write!(f, "bad alphabet: {why}"),
            BuildError::BadChar { entry, at, byte } => {
                write!(f, "entry {entry}: character {:?} at {at} is not in the alphabet", char::from(*byte))
            }
            BuildError::TooLong { entry, len } => {
                write!(f, "entry {entry}: prefix of {len} characters (at most {MAX_PREFIX})")
            }
            BuildError::Duplicate { first, second } => write!(f, "entry {second} repeats the prefix of entry {first}"),
            BuildError::TooLarge => write!(f, "too many prefixes for one tree"),
            BuildError::BadImage(why) => write!(f, "invalid tree image: {why}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// The characters a tree's prefixes are made of.
#[derive(Clone)]
pub struct Alphabet {
    /// byte -> index, or `NONE`
    map: [u8; 256],
    chars: Box<[u8]>,
}

const NONE: u8 = 0xff;

impl Alphabet {
    /// The decimal digits, Kamailio's default.
    pub fn digits() -> Alphabet {
        Alphabet::new(b"0123456789").unwrap_or_else(|_| unreachable!("the digits are a valid alphabet"))
    }

    /// An alphabet of 1 to 32 distinct printable ASCII characters (no space).
    pub fn new(chars: &[u8]) -> Result<Alphabet, BuildError> {
        if chars.is_empty() || chars.len() > 32 {
            return Err(BuildError::BadAlphabet(format!("{} characters (1 to 32 allowed)", chars.len())));
        }
        let mut map = [NONE; 256];
        for (i, &c) in chars.iter().enumerate() {
            if !c.is_ascii_graphic() {
                return Err(BuildError::BadAlphabet(format!("byte 0x{c:02x} is not a printable ASCII character")));
            }
            if map[usize::from(c)] != NONE {
                return Err(BuildError::BadAlphabet(format!("{:?} appears twice", char::from(c))));
            }
            map[usize::from(c)] = i as u8;
        }
        Ok(Alphabet { map, chars: chars.into() })
    }

    /// The characters, in order.
    pub fn chars(&self) -> &[u8] {
        &self.chars
    }

    #[inline]
    fn index(&self, b: u8) -> Option<u32> {
        let i = self.map[usize::from(b)];
        (i != NONE).then_some(u32::from(i))
    }
}

impl fmt::Debug for Alphabet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Alphabet({:?})", String::from_utf8_lossy(&self.chars))
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Node {
    first_child: u32,
    /// bit i: a child for alphabet character i
    bits: u32,
    /// 0: no value; else index + 1 into `values`
    value: u32,
}

/// A built prefix tree with values of type `V`.
#[derive(Clone, Debug)]
pub struct Mtree<V> {
    alphabet: Alphabet,
    nodes: Box<[Node]>,
    values: Box<[V]>,
    /// the prefix length of each value, by value index
    lens: Box<[u8]>,
}

/// Every match of one key, longest first; see [`Mtree::matches`].
pub struct Matches<'t, V> {
    tree: &'t Mtree<V>,
    found: [u32; MAX_PREFIX + 1],
    n: usize,
}

impl<'t, V> Iterator for Matches<'t, V> {
    /// (prefix length, value)
    type Item = (usize, &'t V);

    fn next(&mut self) -> Option<(usize, &'t V)> {
        if self.n == 0 {
            return None;
        }
        self.n -= 1;
        let v = self.found[self.n] as usize - 1;
        Some((usize::from(self.tree.lens[v]), &self.tree.values[v]))
    }
}

impl<V> Mtree<V> {
    /// Build a tree from `(prefix, value)` pairs. Refuses characters outside the alphabet,
    /// prefixes over [`MAX_PREFIX`] and duplicates (naming both entries).
    pub fn build<P: AsRef<[u8]>>(alphabet: Alphabet, entries: Vec<(P, V)>) -> Result<Mtree<V>, BuildError> {
        let n = entries.len();
        if n >= u32::MAX as usize - 1 {
            return Err(BuildError::TooLarge);
        }
        // every prefix as alphabet indices, in one flat buffer
        let mut keys: Vec<u8> = Vec::new();
        let mut span: Vec<(u32, u8)> = Vec::with_capacity(n);
        for (e, (p, _)) in entries.iter().enumerate() {
            let p = p.as_ref();
            if p.len() > MAX_PREFIX {
                return Err(BuildError::TooLong { entry: e, len: p.len() });
            }
            let start = keys.len();
            for (at, &b) in p.iter().enumerate() {
                match alphabet.index(b) {
                    Some(i) => keys.push(i as u8),
                    None => return Err(BuildError::BadChar { entry: e, at, byte: b }),
                }
            }
            span.push((u32::try_from(start).map_err(|_| BuildError::TooLarge)?, p.len() as u8));
        }
        let key = |e: u32| -> &[u8] {
            let (s, l) = span[e as usize];
            &keys[s as usize..s as usize + usize::from(l)]
        };
        // sorted by key (a prefix sorts before its extensions), ties by input order
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by(|&a, &b| key(a).cmp(key(b)).then(a.cmp(&b)));
        for w in order.windows(2) {
            if key(w[0]) == key(w[1]) {
                return Err(BuildError::Duplicate { first: w[0] as usize, second: w[1] as usize });
            }
        }

        // breadth first: a node's children are allocated together, so they are contiguous
        let mut nodes = vec![Node::default()];
        let mut queue: VecDeque<(u32, usize, usize, usize)> = VecDeque::new();
        queue.push_back((0, 0, n, 0));
        while let Some((node, lo, hi, depth)) = queue.pop_front() {
            let mut i = lo;
            if i < hi && key(order[i]).len() == depth {
                nodes[node as usize].value = order[i] + 1;
                i += 1;
            }
            let first = u32::try_from(nodes.len()).map_err(|_| BuildError::TooLarge)?;
            let mut bits = 0u32;
            while i < hi {
                let c = key(order[i])[depth];
                let mut j = i + 1;
                while j < hi && key(order[j])[depth] == c {
                    j += 1;
                }
                bits |= 1 << c;
                let child = u32::try_from(nodes.len()).map_err(|_| BuildError::TooLarge)?;
                nodes.push(Node::default());
                queue.push_back((child, i, j, depth + 1));
                i = j;
            }
            let nd = &mut nodes[node as usize];
            nd.bits = bits;
            nd.first_child = first;
        }
        let lens = span.iter().map(|&(_, l)| l).collect();
        let values = entries.into_iter().map(|(_, v)| v).collect();
        Ok(Mtree { alphabet, nodes: nodes.into_boxed_slice(), values, lens })
    }

    /// Walk `key` from the root, calling `seen` with every value on the path (shortest
    /// first).
    #[inline]
    fn walk(&self, key: &[u8], mut seen: impl FnMut(u32)) {
        let mut node = &self.nodes[0];
        if node.value != 0 {
            seen(node.value);
        }
        for &b in key {
            let Some(c) = self.alphabet.index(b) else { break };
            let bit = 1u32 << c;
            if node.bits & bit == 0 {
                break;
            }
            let child = node.first_child + (node.bits & (bit - 1)).count_ones();
            node = &self.nodes[child as usize];
            if node.value != 0 {
                seen(node.value);
            }
        }
    }

    /// The longest prefix of `key` in the tree: (its length, its value).
    #[inline]
    pub fn longest(&self, key: &[u8]) -> Option<(usize, &V)> {
        self.longest_index(key).map(|v| (usize::from(self.lens[v]), &self.values[v]))
    }

    /// The index (in the build input) of the longest prefix of `key` in the tree.
    #[inline]
    pub fn longest_index(&self, key: &[u8]) -> Option<usize> {
        let mut best = 0;
        self.walk(key, |v| best = v);
        (best != 0).then(|| best as usize - 1)
    }

    /// The value of entry `index` of the build input.
    pub fn value(&self, index: usize) -> Option<&V> {
        self.values.get(index)
    }

    /// Every prefix of `key` in the tree, longest first.
    pub fn matches(&self, key: &[u8]) -> Matches<'_, V> {
        let mut m = Matches { tree: self, found: [0; MAX_PREFIX + 1], n: 0 };
        self.walk(key, |v| {
            m.found[m.n] = v;
            m.n += 1;
        });
        m
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// No prefixes at all.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Nodes in the tree (one per distinct prefix of a prefix, plus the root).
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Bytes the tree's own arrays take (not counting what the values point to).
    pub fn memory_bytes(&self) -> usize {
        self.nodes.len() * std::mem::size_of::<Node>()
            + self.values.len() * (std::mem::size_of::<V>() + 1)
            + std::mem::size_of::<Self>()
    }

    /// The alphabet.
    pub fn alphabet(&self) -> &Alphabet {
        &self.alphabet
    }
}

/// A built tree in the form a config snapshot carries it (rkyv-archived): the node array as
/// it is used for lookups, so loading a snapshot copies arrays instead of sorting and
/// building again (1,000,000 prefixes: see `docs/config.md`, "Snapshots").
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct TreeImage {
    /// The alphabet's characters, in order.
    pub alphabet: Vec<u8>,
    /// Nodes, breadth first: `[first_child, child bitmap, value index + 1 or 0]`.
    pub nodes: Vec<[u32; 3]>,
    /// The value of each entry.
    pub values: Vec<u32>,
    /// The prefix length of each entry.
    pub lens: Vec<u8>,
}

impl Mtree<u32> {
    /// The tree as a snapshot carries it.
    pub fn image(&self) -> TreeImage {
        TreeImage {
            alphabet: self.alphabet.chars.to_vec(),
            nodes: self.nodes.iter().map(|n| [n.first_child, n.bits, n.value]).collect(),
            values: self.values.to_vec(),
            lens: self.lens.to_vec(),
        }
    }

    /// Load a tree from its archived image, checking that it has exactly the shape
    /// [`Mtree::build`] produces: children allocated breadth first and contiguously (so the
    /// nodes form a tree: no cycle, no shared child), no child for a character outside the
    /// alphabet, depth at most [`MAX_PREFIX`], every value index in range and used once, and
    /// every value below `distinct`. A snapshot is checked byte by byte by rkyv; this checks
    /// what rkyv cannot, so that no lookup can index out of bounds or loop.
    pub fn from_archived(image: &ArchivedTreeImage, distinct: usize) -> Result<Mtree<u32>, BuildError> {
        let alphabet = Alphabet::new(&image.alphabet)?;
        let n_values = image.values.len();
        if image.lens.len() != n_values {
            return Err(BuildError::BadImage("values and prefix lengths differ in number"));
        }
        if n_values >= u32::MAX as usize - 1 || image.nodes.len() >= u32::MAX as usize - 1 {
            return Err(BuildError::TooLarge);
        }
        if image.nodes.is_empty() {
            return Err(BuildError::BadImage("no root node"));
        }
        let limit = if alphabet.chars.len() == 32 { u32::MAX } else { (1u32 << alphabet.chars.len()) - 1 };
        let mut nodes = Vec::with_capacity(image.nodes.len());
        let mut depth = vec![0u8; image.nodes.len()];
        let mut used = vec![false; n_values];
        let mut next = 1usize;
        for (i, n) in image.nodes.iter().enumerate() {
            let node = Node { first_child: n[0].to_native(), bits: n[1].to_native(), value: n[2].to_native() };
            if node.bits & !limit != 0 {
                return Err(BuildError::BadImage("a child for a character outside the alphabet"));
            }
            let children = node.bits.count_ones() as usize;
            if children > 0 {
                if node.first_child as usize != next {
                    return Err(BuildError::BadImage("children are not laid out breadth first"));
                }
                if depth[i] as usize >= MAX_PREFIX {
                    return Err(BuildError::BadImage("deeper than the longest prefix"));
                }
                next += children;
                if next > image.nodes.len() {
                    return Err(BuildError::BadImage("a child index is out of range"));
                }
                let below = depth[i] + 1;
                depth[node.first_child as usize..next].fill(below);
            }
            if node.value != 0 {
                let v = node.value as usize - 1;
                if v >= n_values || std::mem::replace(&mut used[v], true) {
                    return Err(BuildError::BadImage("a value index is out of range or used twice"));
                }
                if usize::from(image.lens[v]) != usize::from(depth[i]) {
                    return Err(BuildError::BadImage("a prefix length does not match its depth"));
                }
            }
            nodes.push(node);
        }
        if next != image.nodes.len() {
            return Err(BuildError::BadImage("nodes that no parent reaches"));
        }
        if used.iter().any(|u| !u) {
            return Err(BuildError::BadImage("a value that no node holds"));
        }
        let values: Box<[u32]> = image.values.iter().map(|v| v.to_native()).collect();
        if values.iter().any(|&v| v as usize >= distinct) {
            return Err(BuildError::BadImage("a value refers to a missing distinct value"));
        }
        Ok(Mtree { alphabet, nodes: nodes.into_boxed_slice(), values, lens: image.lens.to_vec().into_boxed_slice() })
    }
}

#[cfg(test)]
mod tests;
