//! Media port pools: each shard owns a disjoint slice of the configured range (so a port's
//! packets belong to one shard, like its SIP transactions), handed out as RTP/RTCP pairs
//! (an even RTP port, RTCP on the next one).
//!
//! Ports come back to the end of a FIFO queue: a port freed by a call that just ended is the
//! last to be reused, so late packets of the old call do not land in a new one. Everything is
//! allocated when the pool is built; taking and giving back are O(1) without allocation, and
//! giving back a port twice (or one that is not the pool's) is refused, not corrupting.

use std::collections::VecDeque;
use std::fmt;
use std::ops::RangeInclusive;

/// Why a range cannot be pooled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The range holds no even/odd port pair.
    Empty,
    /// More shards than port pairs.
    TooManyShards {
        /// Pairs in the range.
        pairs: usize,
        /// Shards asked for.
        shards: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Empty => f.write_str("the port range holds no RTP/RTCP pair (an even port and the next one)"),
            Error::TooManyShards { pairs, shards } => {
                write!(f, "the port range holds {pairs} RTP/RTCP pairs, fewer than the {shards} shards")
            }
        }
    }
}

impl std::error::Error for Error {}

/// The first even port of `range` and how many RTP/RTCP pairs it holds.
fn pairs(range: &RangeInclusive<u16>) -> Result<(u32, usize), Error> {
    let first = u32::from(*range.start()).div_ceil(2) * 2;
    let last = u32::from(*range.end());
    if last < first + 1 {
        return Err(Error::Empty);
    }
    Ok((first, (last - first).div_ceil(2) as usize))
}

/// Split `range` into `shards` disjoint ranges of whole pairs (the first shards get one more
/// pair when it does not divide evenly).
pub fn split(range: RangeInclusive<u16>, shards: usize) -> Result<Vec<RangeInclusive<u16>>, Error> {
    let (first, pairs) = pairs(&range)?;
    if shards == 0 || shards > pairs {
        return Err(Error::TooManyShards { pairs, shards });
    }
    let (each, extra) = (pairs / shards, pairs % shards);
    let mut out = Vec::with_capacity(shards);
    let mut at = first;
    for s in 0..shards {
        let n = (each + usize::from(s < extra)) as u32;
        out.push(at as u16..=(at + 2 * n - 1) as u16);
        at += 2 * n;
    }
    Ok(out)
}

/// One shard's RTP/RTCP port pairs.
#[derive(Debug)]
pub struct Pool {
    first: u16,
    free: VecDeque<u16>,
    /// One bit per pair: set while handed out.
    used: Vec<u64>,
}

impl Pool {
    /// A pool of the pairs in `range` (an odd first port is skipped, an even last one too).
    pub fn new(range: RangeInclusive<u16>) -> Result<Pool, Error> {
        let (first, pairs) = pairs(&range)?;
        let free = (0..pairs).map(|k| (first + 2 * k as u32) as u16).collect();
        Ok(Pool { first: first as u16, free, used: vec![0; pairs.div_ceil(64)] })
    }

    fn index(&self, port: u16) -> Option<usize> {
        let k = port.checked_sub(self.first)?;
        (k % 2 == 0 && usize::from(k / 2) < self.used.len() * 64).then_some(usize::from(k / 2))
    }

    /// An RTP port (its RTCP port is the next one), or `None` when every pair is in use.
    pub fn take(&mut self) -> Option<u16> {
        let port = self.free.pop_front()?;
        if let Some(k) = self.index(port) {
            self.used[k / 64] |= 1 << (k % 64);
        }
        Some(port)
    }

    /// Give an RTP port back. False, and nothing changed, for a port that is not this pool's
    /// or is not handed out.
    pub fn give(&mut self, port: u16) -> bool {
        let Some(k) = self.index(port) else { return false };
        let bit = 1u64 << (k % 64);
        if self.used[k / 64] & bit == 0 {
            return false;
        }
        self.used[k / 64] &= !bit;
        self.free.push_back(port);
        true
    }

    /// Take the pair of `port` (RTP or RTCP) out of the pool for good: its port cannot be
    /// used (another program holds it). False when it is not this pool's or already out.
    pub fn withhold(&mut self, port: u16) -> bool {
        let rtp = port & !1;
        let Some(k) = self.index(rtp) else { return false };
        let bit = 1u64 << (k % 64);
        if self.used[k / 64] & bit != 0 {
            return false;
        }
        self.used[k / 64] |= bit;
        self.free.retain(|&p| p != rtp);
        true
    }

    /// Pairs free now.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Pairs in use now.
    pub fn in_use(&self) -> usize {
        self.used.iter().map(|w| w.count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_range_splits_into_whole_disjoint_pairs() {
        let r = split(30000..=39999, 3).unwrap();
        assert_eq!(r, vec![30000..=33333, 33334..=36667, 36668..=39999], "1667, 1667 and 1666 pairs");
        let pairs: usize = r.iter().map(|x| pairs(x).unwrap().1).sum();
        assert_eq!(pairs, 5000);
        assert_eq!(split(30001..=30002, 1), Err(Error::Empty));
        assert_eq!(split(30000..=30003, 3), Err(Error::TooManyShards { pairs: 2, shards: 3 }));
    }

    #[test]
    fn pairs_are_handed_out_fifo_and_double_frees_are_refused() {
        let mut p = Pool::new(30001..=30008).unwrap();
        assert_eq!(p.available(), 3, "30002/3, 30004/5, 30006/7 (30001 odd, 30008 alone)");
        let a = p.take().unwrap();
        let b = p.take().unwrap();
        assert_eq!((a, b), (30002, 30004));
        assert!(p.give(a));
        assert!(!p.give(a), "already free");
        assert!(!p.give(30003), "an RTCP port is not handed out");
        assert!(!p.give(40000), "not this pool's");
        // the freed port is the last to come back
        assert_eq!(p.take(), Some(30006));
        assert_eq!(p.take(), Some(30002));
        assert_eq!(p.take(), None, "exhausted");
        assert_eq!((p.in_use(), p.available()), (3, 0));
    }

    #[test]
    fn withheld_pairs_are_never_handed_out() {
        let mut p = Pool::new(30000..=30007).unwrap();
        assert!(p.withhold(30003), "RTCP port 30003 takes pair 30002 out");
        assert!(!p.withhold(30002), "already out");
        assert!(!p.withhold(50000), "not this pool's");
        assert_eq!(p.available(), 3);
        let mut got: Vec<u16> = std::iter::from_fn(|| p.take()).collect();
        got.sort();
        assert_eq!(got, vec![30000, 30004, 30006]);
    }

    #[test]
    fn a_full_range_cycles_without_losing_a_port() {
        let mut p = Pool::new(30000..=39999).unwrap();
        let mut held = std::collections::VecDeque::new();
        for round in 0..20_000 {
            if round % 3 != 2 {
                if let Some(port) = p.take() {
                    assert_eq!(port % 2, 0);
                    held.push_back(port);
                }
            } else if let Some(port) = held.pop_front() {
                assert!(p.give(port));
            }
        }
        assert_eq!(p.in_use(), held.len());
        assert_eq!(p.in_use() + p.available(), 5000);
    }
}
