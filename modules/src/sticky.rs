//! Stateless stickiness: which destination a recent INVITE went to, so its CANCEL, the ACK of
//! a non-2xx answer and requests that come back addressed to ringsip itself follow it.
//!
//! A stateless proxy keeps no transaction state, yet RFC 3261 §16.11 needs the CANCEL of an
//! INVITE to reach the same next hop, and round-robin or random selection cannot be repeated
//! from the CANCEL alone. Each shard therefore keeps a fixed-size table, keyed by a hash of
//! Call-ID and From tag, of the destination its last initial INVITEs went to. The CANCEL
//! comes from the same source as its INVITE, so SO_REUSEPORT delivers it to the same shard.
//! The table never grows: a new entry overwrites whatever shared its slot, and an entry
//! older than `ttl` is ignored; without an entry, the set's algorithm decides (with a hash
//! algorithm that repeats the INVITE's choice anyway).

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: u64,
    set: u16,
    dest: u16,
    at: Instant,
}

/// The per-shard table.
#[derive(Debug)]
pub struct Sticky {
    slots: Box<[Option<Entry>]>,
    mask: u64,
    ttl: Duration,
}

impl Sticky {
    /// A table of `entries` slots (rounded up to a power of two).
    pub fn new(entries: usize, ttl: Duration) -> Sticky {
        let n = entries.max(1).next_power_of_two();
        Sticky { slots: vec![None; n].into_boxed_slice(), mask: n as u64 - 1, ttl }
    }

    /// Remember that `key` went to (`set`, `dest`).
    #[inline]
    pub fn put(&mut self, key: u64, set: usize, dest: usize, now: Instant) {
        self.slots[(key & self.mask) as usize] = Some(Entry { key, set: set as u16, dest: dest as u16, at: now });
    }

    /// Where `key` went in `set`, if remembered and fresh.
    #[inline]
    pub fn get(&self, key: u64, set: usize, now: Instant) -> Option<usize> {
        match self.slots[(key & self.mask) as usize] {
            Some(e) if e.key == key && e.set as usize == set && now.duration_since(e.at) <= self.ttl => {
                Some(e.dest as usize)
            }
            _ => None,
        }
    }
}

impl Sticky {
    /// After a config swap: point every entry at its destination's new (set, destination)
    /// indices, or forget it when `map` says the destination is gone.
    pub fn remap(&mut self, map: impl Fn(usize, usize) -> Option<(usize, usize)>) {
        for slot in self.slots.iter_mut() {
            if let Some(e) = slot {
                match map(e.set as usize, e.dest as usize) {
                    Some((set, dest)) => {
                        e.set = set as u16;
                        e.dest = dest as u16;
                    }
                    None => *slot = None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_overwrites_and_expires() {
        let t0 = Instant::now();
        let mut s = Sticky::new(1000, Duration::from_secs(32));
        assert_eq!(s.slots.len(), 1024);
        s.put(7, 0, 1, t0);
        assert_eq!(s.get(7, 0, t0), Some(1));
        assert_eq!(s.get(7, 1, t0), None, "other set");
        assert_eq!(s.get(8, 0, t0), None, "other key");
        assert_eq!(s.get(7, 0, t0 + Duration::from_secs(33)), None, "expired");
        // a colliding key overwrites
        s.put(7 + 1024, 0, 0, t0);
        assert_eq!(s.get(7, 0, t0), None);
        assert_eq!(s.get(7 + 1024, 0, t0), Some(0));
        // a swap moves set 0 to index 1 and removes destination 1
        s.put(9, 0, 1, t0);
        s.remap(|set, dest| (dest == 0).then_some((set + 1, dest)));
        assert_eq!(s.get(7 + 1024, 1, t0), Some(0));
        assert_eq!(s.get(9, 0, t0), None);
        assert_eq!(s.get(9, 1, t0), None);
    }
}
