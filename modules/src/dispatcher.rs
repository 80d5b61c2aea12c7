//! The dispatcher: sets of destinations, Kamailio's selection algorithms, and health probing.
//!
//! Health is shared by every shard without a lock: each destination's state is one atomic
//! byte. Only the prober (shard 0) changes it; every shard reads it when selecting. Probe
//! answers can arrive on any shard (the kernel picks the shard by the prober's 4-tuple), so a
//! shard that receives one records the sequence number and status code in the destination's
//! atomics, and the prober reads them at the probe's deadline.
//!
//! Round-robin counters are per shard (each shard rotates on its own), so the destinations
//! still share calls evenly and no cache line bounces between cores.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ringsip_config::{Algorithm, Probe, ProbeMode};
use ringsip_proto::proxy::Fnv;

/// State bits of a destination.
const ACTIVE: u8 = 1;
const DISABLED: u8 = 2;

/// No operator override: the config's `state` applies.
const FORCED_NONE: u8 = 0;
/// An operator disabled the destination at run time.
const FORCED_DISABLED: u8 = 1;
/// An operator enabled the destination at run time (even if the config disables it).
const FORCED_ENABLED: u8 = 2;

/// One destination and its shared health.
#[derive(Debug)]
pub struct Dest {
    /// Its URI as configured.
    pub uri: String,
    /// Where requests go.
    pub addr: SocketAddr,
    /// Weight (algorithms 9 and 11).
    pub weight: u32,
    /// Priority (algorithm 8; higher first).
    pub priority: i32,
    /// Free-form attributes.
    pub attrs: String,
    state: AtomicU8,
    /// What an operator forced with `ringsipctl dispatcher set-state`: `FORCED_*`.
    forced: AtomicU8,
    answered_seq: AtomicU32,
    answered_code: AtomicU16,
}

impl Dest {
    /// Usable for new requests: active and not administratively disabled.
    #[inline]
    pub fn available(&self) -> bool {
        self.state.load(Ordering::Relaxed) == ACTIVE
    }

    /// Probing says it answers.
    pub fn is_active(&self) -> bool {
        self.state.load(Ordering::Relaxed) & ACTIVE != 0
    }

    /// Administratively disabled.
    pub fn is_disabled(&self) -> bool {
        self.state.load(Ordering::Relaxed) & DISABLED != 0
    }

    /// Set or clear the administrative disable.
    pub fn set_disabled(&self, disabled: bool) {
        if disabled {
            self.state.fetch_or(DISABLED, Ordering::Relaxed);
        } else {
            self.state.fetch_and(!DISABLED, Ordering::Relaxed);
        }
    }

    /// An operator's run-time choice (`ringsipctl dispatcher set-state`): disabled or
    /// enabled, remembered across config pushes until the next operator choice.
    pub fn force_disabled(&self, disabled: bool) {
        self.forced.store(if disabled { FORCED_DISABLED } else { FORCED_ENABLED }, Ordering::Relaxed);
        self.set_disabled(disabled);
    }

    /// Mark the destination up or down by hand (`ringsipctl dispatcher set-state ... active|inactive`);
    /// probing may change it again.
    pub fn mark_active(&self, active: bool) {
        self.set_active(active);
    }

    /// Whether an operator forced the administrative state: `Some(disabled)`.
    pub fn forced(&self) -> Option<bool> {
        match self.forced.load(Ordering::Relaxed) {
            FORCED_DISABLED => Some(true),
            FORCED_ENABLED => Some(false),
            _ => None,
        }
    }

    fn set_active(&self, active: bool) {
        if active {
            self.state.fetch_or(ACTIVE, Ordering::Relaxed);
        } else {
            self.state.fetch_and(!ACTIVE, Ordering::Relaxed);
        }
    }

    /// Human-readable state.
    pub fn state_name(&self) -> &'static str {
        match (self.is_disabled(), self.is_active()) {
            (true, _) => "disabled",
            (false, true) => "active",
            (false, false) => "inactive",
        }
    }
}

/// A dispatcher set.
#[derive(Debug)]
pub struct Set {
    /// Set id.
    pub id: u32,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Destinations, in configured order.
    pub dests: Vec<Dest>,
    /// Destination indices by descending priority (algorithm 8).
    by_priority: Vec<u16>,
    /// 100 slots filled in proportion to the weights (algorithm 9).
    weight_slots: Vec<u16>,
    /// Probing settings.
    pub probe: Probe,
}

/// Every set, shared by all shards.
#[derive(Debug)]
pub struct Dispatcher {
    /// Sets in id order.
    pub sets: Vec<Set>,
}

/// The input of a hash algorithm, prepared by the caller from the message.
#[derive(Clone, Copy, Debug)]
pub enum Key<'a> {
    /// Bytes to hash (Call-ID, From URI, …).
    Bytes(&'a [u8]),
    /// Nothing to hash (the field is missing): hash algorithms fall back to the first
    /// available destination.
    None,
}

/// Per-shard selection state.
#[derive(Clone, Debug)]
pub struct Cursor {
    rr: Vec<u32>,
    rng: u64,
}

impl Cursor {
    /// A cursor for `d`, seeded per shard so shards do not move in lock step.
    pub fn new(d: &Dispatcher, seed: u64) -> Cursor {
        Cursor { rr: vec![seed as u32; d.sets.len()], rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 }
    }

    /// A random number below `n` (0 when `n` is 0), from this shard's generator.
    pub fn random_below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.random() % n }
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Dispatcher {
    /// Build from the validated config.
    pub fn new(cfg: &ringsip_config::Dispatcher) -> Dispatcher {
        let sets = cfg
            .sets
            .iter()
            .map(|s| {
                let dests: Vec<Dest> = s
                    .destinations
                    .iter()
                    .map(|d| Dest {
                        uri: d.uri.clone(),
                        addr: d.addr,
                        weight: d.weight,
                        priority: d.priority,
                        attrs: d.attrs.clone(),
                        // destinations start active; probing takes them out (Kamailio starts
                        // them active too unless flagged otherwise)
                        state: AtomicU8::new(ACTIVE | if d.disabled { DISABLED } else { 0 }),
                        forced: AtomicU8::new(FORCED_NONE),
                        answered_seq: AtomicU32::new(0),
                        answered_code: AtomicU16::new(0),
                    })
                    .collect();
                let mut by_priority: Vec<u16> = (0..dests.len() as u16).collect();
                by_priority.sort_by_key(|&i| std::cmp::Reverse(dests[i as usize].priority));
                let weight_slots = weight_table(&dests);
                Set { id: s.id, algorithm: s.algorithm, dests, by_priority, weight_slots, probe: s.probe.clone() }
            })
            .collect();
        Dispatcher { sets }
    }

    /// Carry run-time state over from the dispatcher of the previous snapshot: a
    /// destination with the same set id and the same URI keeps its probed health
    /// (active/inactive) and any operator override of its administrative state. New
    /// destinations start active; removed ones are forgotten. Call before publishing.
    pub fn inherit(&self, old: &Dispatcher) -> usize {
        let mut kept = 0;
        for set in &self.sets {
            let Some(prev) = old.sets.iter().find(|s| s.id == set.id) else { continue };
            for d in &set.dests {
                let Some(o) = prev.dests.iter().find(|o| o.uri == d.uri && o.addr == d.addr) else { continue };
                d.set_active(o.is_active());
                let forced = o.forced.load(Ordering::Relaxed);
                d.forced.store(forced, Ordering::Relaxed);
                match forced {
                    FORCED_DISABLED => d.set_disabled(true),
                    FORCED_ENABLED => d.set_disabled(false),
                    _ => {}
                }
                kept += 1;
            }
        }
        kept
    }

    /// Index of set `id`.
    pub fn set_index(&self, id: u32) -> Option<usize> {
        self.sets.iter().position(|s| s.id == id)
    }

    /// Pick a destination of set `set` (an index) with the set's algorithm; `None` when no
    /// destination is available. Allocation-free.
    pub fn select(&self, set: usize, key: Key<'_>, cur: &mut Cursor) -> Option<usize> {
        let s = self.sets.get(set)?;
        let n = s.dests.len();
        if n == 0 {
            return None;
        }
        let next_available = |start: usize| (0..n).map(|k| (start + k) % n).find(|&i| s.dests[i].available());
        match s.algorithm {
            Algorithm::RoundRobin => {
                for _ in 0..n {
                    let i = cur.rr[set] as usize % n;
                    cur.rr[set] = cur.rr[set].wrapping_add(1);
                    if s.dests[i].available() {
                        return Some(i);
                    }
                }
                None
            }
            Algorithm::Random => {
                let r = cur.random() as usize % n;
                next_available(r)
            }
            Algorithm::Priority => s.by_priority.iter().map(|&i| i as usize).find(|&i| s.dests[i].available()),
            Algorithm::Weight => {
                let slot = cur.rr[set] as usize % s.weight_slots.len();
                cur.rr[set] = cur.rr[set].wrapping_add(1);
                next_available(s.weight_slots[slot] as usize)
            }
            Algorithm::RelativeWeight => {
                // weights of the available destinations only, recomputed on every pick, so the
                // share of a destination that goes down moves to the others in proportion
                let total: u64 = s.dests.iter().filter(|d| d.available()).map(|d| d.weight as u64).sum();
                if total == 0 {
                    return None;
                }
                let mut r = cur.random() % total;
                for (i, d) in s.dests.iter().enumerate() {
                    if !d.available() {
                        continue;
                    }
                    if r < d.weight as u64 {
                        return Some(i);
                    }
                    r -= d.weight as u64;
                }
                None
            }
            // hash algorithms: hash of the key, then the next available destination
            _ => match key {
                Key::Bytes(b) => next_available((Fnv::new().mix(b).finish() % n as u64) as usize),
                Key::None => next_available(0),
            },
        }
    }

    /// Record a probe answer for (set, dest) carrying sequence `seq` and status `code`. Any
    /// shard may call this; the prober reads it at the probe's deadline.
    pub fn record_answer(&self, set: usize, dest: usize, seq: u32, code: u16) -> bool {
        let Some(d) = self.sets.get(set).and_then(|s| s.dests.get(dest)) else { return false };
        d.answered_code.store(code, Ordering::Relaxed);
        d.answered_seq.store(seq, Ordering::Release);
        true
    }
}

/// 100 slots, each destination appearing in proportion to its weight, spread evenly by smooth
/// weighted round-robin (each step adds every weight to a running score and takes the top
/// scorer, which then pays the total back).
fn weight_table(dests: &[Dest]) -> Vec<u16> {
    let total: i64 = dests.iter().map(|d| d.weight as i64).sum();
    if dests.is_empty() || total == 0 {
        return vec![0; 100];
    }
    let mut score = vec![0i64; dests.len()];
    (0..100)
        .map(|_| {
            for (sc, d) in score.iter_mut().zip(dests) {
                *sc += d.weight as i64;
            }
            let best = (0..dests.len()).max_by_key(|&i| (score[i], std::cmp::Reverse(i))).unwrap_or(0);
            score[best] -= total;
            best as u16
        })
        .collect()
}

/// A probe to send: what the handler needs to write the OPTIONS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSend {
    /// Set index.
    pub set: usize,
    /// Destination index.
    pub dest: usize,
    /// Sequence number (also the CSeq).
    pub seq: u32,
    /// Where to send it.
    pub addr: SocketAddr,
}

/// A change of a destination's health, for logging and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// Set index.
    pub set: usize,
    /// Destination index.
    pub dest: usize,
    /// New state: up (true) or down.
    pub up: bool,
}

#[derive(Clone, Debug)]
struct ProbeSlot {
    sent_seq: u32,
    sent_at: Option<Instant>,
    next_at: Instant,
    evaluated: bool,
    oks: u32,
    fails: u32,
}

/// The prober: decides when to probe which destination and applies the thresholds. Sans IO:
/// the caller sends what [`Prober::tick`] returns and feeds it the clock. Runs on one shard.
#[derive(Clone, Debug)]
pub struct Prober {
    slots: Vec<Vec<ProbeSlot>>,
}

impl Prober {
    /// A prober for `d`, starting now (first probes go out at once).
    pub fn new(d: &Dispatcher, now: Instant) -> Prober {
        let slots = d
            .sets
            .iter()
            .map(|s| {
                s.dests
                    .iter()
                    .map(|_| ProbeSlot { sent_seq: 0, sent_at: None, next_at: now, evaluated: true, oks: 0, fails: 0 })
                    .collect()
            })
            .collect();
        Prober { slots }
    }

    /// Evaluate probes whose timeout has passed, apply the thresholds, and return the probes to
    /// send now (into `send`) and the state changes (into `changes`). No allocation once the
    /// vectors have grown.
    pub fn tick(&mut self, d: &Dispatcher, now: Instant, send: &mut Vec<ProbeSend>, changes: &mut Vec<Transition>) {
        for (si, set) in d.sets.iter().enumerate() {
            let p = &set.probe;
            for (di, dest) in set.dests.iter().enumerate() {
                let slot = &mut self.slots[si][di];
                // 1. the outstanding probe's verdict, once its timeout has passed or an answer came
                if !slot.evaluated {
                    if let Some(sent_at) = slot.sent_at {
                        let answered = dest.answered_seq.load(Ordering::Acquire) == slot.sent_seq;
                        let timed_out = now.duration_since(sent_at) >= p.timeout;
                        if answered || timed_out {
                            slot.evaluated = true;
                            let code = dest.answered_code.load(Ordering::Relaxed);
                            let ok = answered && p.up_codes.iter().any(|r| r.contains(code));
                            if ok {
                                slot.fails = 0;
                                slot.oks = slot.oks.saturating_add(1);
                                if !dest.is_active() && slot.oks >= p.success_threshold {
                                    dest.set_active(true);
                                    changes.push(Transition { set: si, dest: di, up: true });
                                }
                            } else {
                                slot.oks = 0;
                                slot.fails = slot.fails.saturating_add(1);
                                if dest.is_active() && slot.fails >= p.failure_threshold {
                                    dest.set_active(false);
                                    changes.push(Transition { set: si, dest: di, up: false });
                                }
                            }
                        }
                    }
                }
                // 2. the next probe
                if now < slot.next_at || !slot.evaluated {
                    continue;
                }
                let wanted = match p.mode {
                    ProbeMode::None => false,
                    ProbeMode::All => !dest.is_disabled(),
                    ProbeMode::Inactive => !dest.is_disabled() && !dest.is_active(),
                };
                slot.next_at = now + p.interval;
                if !wanted {
                    continue;
                }
                slot.sent_seq = slot.sent_seq.wrapping_add(1).max(1);
                slot.sent_at = Some(now);
                slot.evaluated = false;
                send.push(ProbeSend { set: si, dest: di, seq: slot.sent_seq, addr: dest.addr });
            }
        }
    }

    /// The shortest probe interval of any set (how often [`Prober::tick`] needs to run).
    pub fn min_interval(d: &Dispatcher) -> Option<Duration> {
        d.sets.iter().filter(|s| s.probe.mode != ProbeMode::None).map(|s| s.probe.timeout.min(s.probe.interval)).min()
    }
}

#[cfg(test)]
mod tests;
