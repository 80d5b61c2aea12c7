//! Flood detection per source IP (Kamailio's pike): how many requests each source sent over a
//! sliding window, shared by every shard without a lock.
//!
//! Each source has one 64-bit word: the index of the current window, the count in it and the
//! count of the window before. The estimate of the requests in the last `window` is the
//! previous window's count weighted by how much of it still overlaps, plus the current count
//! (a sliding-window counter: no per-request timestamps, one compare-and-swap per request,
//! never more than one window of error in the weighting). A source is *flooding* while that
//! estimate exceeds `limit`.
//!
//! Sources live in a [`papaya`] map keyed by their address (IPv4 as an IPv4-mapped IPv6
//! address); the map holds at most `max_sources`: a new source beyond that is not tracked
//! (counted in `untracked`, never flooding: the detector fails open rather than growing
//! without bound under a spoofed-source flood). [`Pike::sweep`] forgets sources idle for two
//! windows.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use foldhash::fast::RandomState;
use papaya::HashMap;

/// Counts saturate here (20 bits).
const MAX_COUNT: u64 = (1 << 20) - 1;
/// Window indexes wrap at 24 bits (at a 100 ms window, after 19 days; a wrapped index only
/// looks like an old window, which resets the counts).
const WINDOW_MASK: u64 = (1 << 24) - 1;

fn pack(window: u64, prev: u64, cur: u64) -> u64 {
    ((window & WINDOW_MASK) << 40) | (prev.min(MAX_COUNT) << 20) | cur.min(MAX_COUNT)
}

fn unpack(w: u64) -> (u64, u64, u64) {
    (w >> 40, (w >> 20) & MAX_COUNT, w & MAX_COUNT)
}

/// One source's word.
#[derive(Debug, Default)]
struct Slot(AtomicU64);

/// A shared flood detector.
#[derive(Debug)]
pub struct Pike {
    map: HashMap<u128, Slot, RandomState>,
    epoch: Instant,
    window_ms: u64,
    limit: u64,
    max_sources: usize,
    sources: AtomicUsize,
    /// Requests counted.
    pub counted: AtomicU64,
    /// Requests found over the limit.
    pub over: AtomicU64,
    /// New sources not tracked because the map was full.
    pub untracked: AtomicU64,
}

/// One source as [`Pike::top`] reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Talker {
    /// The source.
    pub ip: IpAddr,
    /// Its estimated requests in the last window.
    pub rate: u64,
    /// Over the limit now.
    pub flooding: bool,
}

fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn ip_of(k: u128) -> IpAddr {
    let v6 = std::net::Ipv6Addr::from(k);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

impl Pike {
    /// A detector: more than `limit` requests in `window` from one source is a flood; at most
    /// `max_sources` sources are tracked.
    pub fn new(window: Duration, limit: u32, max_sources: usize) -> Pike {
        Pike {
            map: HashMap::builder().hasher(RandomState::default()).build(),
            epoch: Instant::now(),
            window_ms: (window.as_millis() as u64).max(1),
            limit: u64::from(limit),
            max_sources,
            sources: AtomicUsize::new(0),
            counted: AtomicU64::new(0),
            over: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
        }
    }

    /// Whether it has these settings (a config push keeps a detector whose settings did not
    /// change, and its counts).
    pub fn same_settings(&self, window: Duration, limit: u32, max_sources: usize) -> bool {
        self.window_ms == (window.as_millis() as u64).max(1)
            && self.limit == u64::from(limit)
            && self.max_sources == max_sources
    }

    fn clock(&self, now: Instant) -> (u64, u64) {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        (ms / self.window_ms, ms % self.window_ms)
    }

    /// The estimate from a word at `(window, into)`.
    fn estimate(&self, word: u64, window: u64, into: u64) -> u64 {
        let (w, prev, cur) = unpack(word);
        let now_w = window & WINDOW_MASK;
        let (prev, cur) = if w == now_w {
            (prev, cur)
        } else if w == now_w.wrapping_sub(1) & WINDOW_MASK {
            (cur, 0)
        } else {
            (0, 0)
        };
        // the part of the previous window still inside the sliding one (rounded up)
        (prev * (self.window_ms - into)).div_ceil(self.window_ms) + cur
    }

    /// Count a request from `ip` at `now`; true when the source is now over the limit.
    pub fn hit(&self, ip: IpAddr, now: Instant) -> bool {
        self.counted.fetch_add(1, Ordering::Relaxed);
        let (window, into) = self.clock(now);
        let map = self.map.pin();
        let k = key(ip);
        let slot = match map.get(&k) {
            Some(s) => s,
            None => {
                if self.sources.load(Ordering::Relaxed) >= self.max_sources {
                    self.untracked.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                match map.try_insert(k, Slot::default()) {
                    Ok(s) => {
                        self.sources.fetch_add(1, Ordering::Relaxed);
                        s
                    }
                    Err(e) => e.current,
                }
            }
        };
        let mut old = slot.0.load(Ordering::Relaxed);
        loop {
            let (w, prev, cur) = unpack(old);
            let now_w = window & WINDOW_MASK;
            let new = if w == now_w && old != 0 {
                pack(now_w, prev, cur + 1)
            } else if w == now_w.wrapping_sub(1) & WINDOW_MASK && old != 0 {
                pack(now_w, cur, 1)
            } else {
                pack(now_w, 0, 1)
            };
            match slot.0.compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    let over = self.estimate(new, window, into) > self.limit;
                    if over {
                        self.over.fetch_add(1, Ordering::Relaxed);
                    }
                    return over;
                }
                Err(x) => old = x,
            }
        }
    }

    /// Sources tracked now.
    pub fn sources(&self) -> usize {
        self.sources.load(Ordering::Relaxed)
    }

    /// Forget sources that sent nothing for two windows. Returns how many went.
    pub fn sweep(&self, now: Instant) -> usize {
        let now_w = self.clock(now).0 & WINDOW_MASK;
        let map = self.map.pin();
        let before = map.len();
        map.retain(|_, s| {
            let w = unpack(s.0.load(Ordering::Relaxed)).0;
            w == now_w || w == now_w.wrapping_sub(1) & WINDOW_MASK
        });
        let gone = before.saturating_sub(map.len());
        self.sources.store(map.len(), Ordering::Relaxed);
        gone
    }

    /// The `n` busiest sources now, busiest first.
    pub fn top(&self, n: usize, now: Instant) -> Vec<Talker> {
        let (window, into) = self.clock(now);
        let map = self.map.pin();
        let mut all: Vec<Talker> = map
            .iter()
            .map(|(k, s)| {
                let rate = self.estimate(s.0.load(Ordering::Relaxed), window, into);
                Talker { ip: ip_of(*k), rate, flooding: rate > self.limit }
            })
            .filter(|t| t.rate > 0)
            .collect();
        all.sort_by(|a, b| b.rate.cmp(&a.rate).then(a.ip.cmp(&b.ip)));
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_over_the_limit_floods_and_calms_down_as_the_window_slides() {
        let p = Pike::new(Duration::from_secs(2), 10, 100);
        let t0 = p.epoch;
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 10 requests in the first window: at the limit, not over
        for i in 0..10 {
            assert!(!p.hit(ip("192.0.2.1"), at(i * 10)), "request {i}");
        }
        assert!(p.hit(ip("192.0.2.1"), at(150)), "the 11th is over");
        // another source is not affected
        assert!(!p.hit(ip("192.0.2.2"), at(160)));
        // half-way into the next window, half of the 11 still count: 5 + this one
        assert!(!p.hit(ip("192.0.2.1"), at(3000)));
        // two windows later it starts afresh
        assert!(!p.hit(ip("192.0.2.1"), at(6100)));
        assert_eq!(p.over.load(Ordering::Relaxed), 1);
        // the sliding weight: 11 in window 0, then at 2,000 ms (start of window 1) all 11 count
        let q = Pike::new(Duration::from_secs(2), 10, 100);
        let t = q.epoch;
        for _ in 0..10 {
            q.hit(ip("198.51.100.1"), t + Duration::from_millis(1900));
        }
        assert!(q.hit(ip("198.51.100.1"), t + Duration::from_millis(2000)), "10 just before + 1 now");
    }

    #[test]
    fn ipv6_and_ipv4_sources_are_told_apart_and_reported() {
        let p = Pike::new(Duration::from_secs(1), 3, 100);
        let now = p.epoch;
        for _ in 0..5 {
            p.hit(ip("2001:db8::1"), now);
        }
        p.hit(ip("::ffff:192.0.2.9"), now);
        p.hit(ip("192.0.2.9"), now);
        let top = p.top(10, now);
        assert_eq!(top[0], Talker { ip: ip("2001:db8::1"), rate: 5, flooding: true });
        assert_eq!(top[1], Talker { ip: ip("192.0.2.9"), rate: 2, flooding: false }, "a mapped v6 is the v4 source");
        assert_eq!(top.len(), 2);
        assert_eq!(p.sources(), 2);
    }

    #[test]
    fn the_map_is_bounded_and_idle_sources_are_swept() {
        let p = Pike::new(Duration::from_millis(100), 1000, 3);
        let now = p.epoch;
        for i in 0..5 {
            assert!(!p.hit(ip(&format!("203.0.113.{i}")), now));
        }
        assert_eq!(p.sources(), 3);
        assert_eq!(p.untracked.load(Ordering::Relaxed), 2);
        assert_eq!(p.sweep(now + Duration::from_millis(150)), 0, "still inside the sliding window");
        assert_eq!(p.sweep(now + Duration::from_millis(250)), 3, "idle for two windows");
        assert_eq!(p.sources(), 0);
        assert!(!p.hit(ip("203.0.113.4"), now + Duration::from_millis(260)), "room again");
        assert_eq!(p.sources(), 1);
    }

    #[test]
    fn shards_counting_at_once_lose_no_request() {
        let p = std::sync::Arc::new(Pike::new(Duration::from_secs(60), 1_000_000, 100));
        let now = p.epoch;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        p.hit(ip("192.0.2.77"), now);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(p.top(1, now)[0].rate, 40_000);
    }
}
