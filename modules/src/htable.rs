//! htable: named in-memory key/value tables shared by every shard (Kamailio's `htable`
//! module).
//!
//! A table maps byte-string keys (a source IP as text, a user, a Call-ID…) to a [`Value`]: an
//! integer or a byte string. Every shard reads and writes the same [`Htable`] through an
//! `Arc`; a snapshot of the config holds its tables in [`Tables`], and a new snapshot keeps
//! the tables (and their entries) whose names it still configures ([`Tables::reconcile`]).
//!
//! * Reads ([`Htable::get`], [`Htable::get_int`], [`Htable::exists`]) take no lock and
//!   allocate nothing: the table is a [`papaya`] concurrent hash map (lock-free, memory
//!   reclaimed by epochs), looked up by `&[u8]`.
//! * Writes ([`Htable::set`], [`Htable::inc`]) are atomic read-modify-writes of one entry
//!   (papaya's `compute`): an increment is never lost, whatever the number of shards. They
//!   allocate (the key, and a new entry that replaces the old one), so they are slower than
//!   reads.
//! * Keys come from the network (attackers choose source IPs and header values), so the
//!   hasher is foldhash with a random seed per process and per table.
//!
//! ## Expiry
//!
//! An entry may have a deadline: per entry (`expires` in [`Htable::set`]) or, when none is
//! given, the table's `autoexpire`, counted from the last write ([`Htable::inc`] refreshes it
//! too, as in Kamailio). Deadlines are milliseconds since an epoch the table fixes when it is
//! created; the time is always passed in by the caller (`now`), so the module does no I/O and
//! tests choose their clock. A read treats an expired entry as absent without removing it;
//! [`Htable::sweep`], which a management thread calls every second, removes them. Until then
//! an expired entry still counts in [`Htable::len`] and against `max_entries`, and a write to
//! its key starts afresh (an increment from 0).
//!
//! ## `max_entries`
//!
//! The number of entries is kept exactly in an atomic counter: a new key first reserves a slot
//! (refused with [`HtError::Full`] when the count is at the limit), then is inserted; a write
//! that turns out to replace an existing key gives its slot back. Overwriting an existing key
//! is always allowed, even at the limit. The table therefore never holds more than
//! `max_entries` keys. One narrow race remains: when two writers insert the *same* new key
//! while a single slot is left, the one that finds the slot reserved by the other may be
//! refused although its write would have been an overwrite.
//!
//! ## Growth
//!
//! The map grows by copying into a table twice the size, incrementally (papaya's default):
//! writes that find the old table full copy a chunk of it along, so no write stalls for a
//! whole copy (with blocking resizes, the write that fills a table of a million keys stalls
//! for about 200 ms on the 2-core VM below; incremental, the worst write is about 1 ms).
//! papaya 0.2's `compute` never helps such a copy along, so new keys are inserted with
//! `try_insert`, which does (a table filled through `compute` alone stays half-copied, and a
//! read then probes the old table to its limit before the new one: 205 ns per hit instead of
//! 13 ns for 4096 keys). A copy left unfinished when new keys stop coming makes reads of the
//! keys already moved probe both tables until [`Htable::sweep`] runs: it walks the table, which
//! finishes the copy (on the management thread).
//!
//! ## Memory barriers
//!
//! papaya is used without its default `fast-barrier` feature. With it, a reader's guard costs
//! a plain store instead of a `SeqCst` one, but a writer retiring replaced entries calls
//! `membarrier(2)`, which interrupts every core running a thread of the process, every shard
//! included; on the VM below that made two-thread writes 2–3 times slower (500–960 ns) and
//! did not make reads measurably faster.
//!
//! ## Measured
//!
//! `cargo bench -p ringsip-perf --bench htable -- --warm-up-time 1 --measurement-time 3`
//! (criterion, median ns per operation per thread) on a 2-core VM (KVM guest), a table of
//! 4096 IPv4-text keys (`10.1.x.y`) with an autoexpire, keys rotating:
//!
//! | operation                 | 1 thread | 2 threads, one shared table |
//! |---------------------------|---------:|----------------------------:|
//! | `get_int`, hit            |       25 |                          26 |
//! | `get_int`, miss           |       10 |                          10 |
//! | `set`, existing key (Int) |       79 |                   230–600 * |
//! | `inc`, existing key       |       82 |                   220–600 * |
//! | `inc`, both on one key    |          |                   240–550 * |
//!
//! \* Writes from two threads at once vary from run to run between the two figures (five
//! runs): each write allocates an entry and frees (through the epoch collector) the one it
//! replaced, and half the time goes to the allocator and to cache lines of the table moving
//! between the cores. Reads do not slow down while the other thread reads.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use foldhash::fast::RandomState;
use papaya::{Compute, HashMap, Operation};

/// A value of an htable entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// An integer (what [`Htable::inc`] works on).
    Int(i64),
    /// A byte string.
    Text(Box<[u8]>),
}

/// The settings of one table.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// The table's name (unique in a config).
    pub name: String,
    /// The most entries the table holds: new keys are refused beyond it. `None`: unbounded.
    pub max_entries: Option<usize>,
    /// How long an entry lives after its last write when the write gives no expiry of its
    /// own. `None` (or zero): entries live until deleted. Kept at millisecond resolution.
    pub autoexpire: Option<Duration>,
}

/// Why a write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HtError {
    /// The key is new and the table already holds `max` entries (expired ones included until
    /// they are swept). The caller knows which table it wrote to.
    Full {
        /// The table's `max_entries`.
        max: usize,
    },
    /// [`Htable::inc`] on a key that holds a text value.
    NotInteger,
    /// [`Htable::inc`] would overflow an `i64`.
    Overflow,
}

impl fmt::Display for HtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HtError::Full { max } => write!(f, "htable full (max_entries = {max})"),
            HtError::NotInteger => write!(f, "htable value is not an integer"),
            HtError::Overflow => write!(f, "htable integer overflow"),
        }
    }
}

impl std::error::Error for HtError {}

/// Counters of one table since it was created (they survive reconfiguration).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HtStats {
    /// Successful [`Htable::set`]s.
    pub sets: u64,
    /// Successful [`Htable::inc`]s.
    pub incs: u64,
    /// Entries removed by [`Htable::delete`] and [`Htable::flush`].
    pub deletes: u64,
    /// Writes refused with [`HtError::Full`].
    pub refused_full: u64,
    /// Expired entries removed by [`Htable::sweep`].
    pub expired: u64,
}

/// What the map holds for a key.
#[derive(Debug)]
struct Entry {
    value: Value,
    /// Milliseconds since the table's epoch; [`NEVER`]: no deadline.
    deadline: u64,
}

/// The deadline of an entry that does not expire.
const NEVER: u64 = 0;

impl Entry {
    #[inline]
    fn expired(&self, now_ms: u64) -> bool {
        self.deadline != NEVER && now_ms >= self.deadline
    }
}

/// The counters, on cache lines of their own: every write updates one, and they must not
/// share a line with what reads use (the map, the epoch) or with `autoexpire_ms`.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Counters {
    sets: AtomicU64,
    incs: AtomicU64,
    deletes: AtomicU64,
    refused_full: AtomicU64,
    expired: AtomicU64,
}

/// A duration in whole milliseconds, rounded up (so that a non-zero duration stays non-zero),
/// saturating.
fn ceil_ms(d: Duration) -> u64 {
    let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// A value alone on its cache lines (two, for the adjacent-line prefetcher).
#[derive(Debug)]
#[repr(align(128))]
struct Padded<T>(T);

/// One named table. Shared by every shard through an `Arc`; every method takes `&self`.
pub struct Htable {
    name: String,
    map: HashMap<Box<[u8]>, Entry, RandomState>,
    /// Keys in the map plus slots reserved by inserts in progress: never below the number of
    /// keys, never above `max` (except after `max` was lowered).
    count: Padded<AtomicUsize>,
    /// `max_entries`; `usize::MAX`: unbounded.
    max: AtomicUsize,
    /// `autoexpire` in milliseconds; 0: none.
    autoexpire_ms: AtomicU64,
    /// Deadlines are milliseconds since this instant.
    epoch: Instant,
    stats: Counters,
}

impl fmt::Debug for Htable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Htable").field("spec", &self.spec()).field("len", &self.len()).finish()
    }
}

impl Htable {
    /// An empty table with `spec`'s settings. Its epoch (the origin of its deadlines) is now.
    pub fn new(spec: &Spec) -> Htable {
        let t = Htable {
            name: spec.name.clone(),
            map: HashMap::builder().hasher(RandomState::default()).build(),
            count: Padded(AtomicUsize::new(0)),
            max: AtomicUsize::new(usize::MAX),
            autoexpire_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            stats: Counters::default(),
        };
        t.reconfigure(spec);
        t
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table's current settings (`autoexpire` at millisecond resolution; a zero
    /// `autoexpire` reads back as `None`, `max_entries = Some(usize::MAX)` as `None`).
    pub fn spec(&self) -> Spec {
        let max = self.max.load(Ordering::Relaxed);
        let ms = self.autoexpire_ms.load(Ordering::Relaxed);
        Spec {
            name: self.name.clone(),
            max_entries: (max != usize::MAX).then_some(max),
            autoexpire: (ms != 0).then(|| Duration::from_millis(ms)),
        }
    }

    /// Apply `spec`'s `max_entries` and `autoexpire` from now on (the name is not changed).
    /// Existing entries keep their deadlines; when the table holds more entries than the new
    /// maximum, they stay, and new keys are refused until it is below.
    pub fn reconfigure(&self, spec: &Spec) {
        self.max.store(spec.max_entries.unwrap_or(usize::MAX), Ordering::Relaxed);
        self.autoexpire_ms.store(spec.autoexpire.map_or(0, ceil_ms), Ordering::Relaxed);
    }

    /// `now` in milliseconds since the epoch (0 before it).
    #[inline]
    fn now_ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The deadline of an entry written at `now_ms` with the table's autoexpire.
    #[inline]
    fn auto_deadline(&self, now_ms: u64) -> u64 {
        match self.autoexpire_ms.load(Ordering::Relaxed) {
            0 => NEVER,
            ms => now_ms.saturating_add(ms),
        }
    }

    /// Reserve a slot for a new key; false when the table is full.
    #[inline]
    fn reserve(&self) -> bool {
        let max = self.max.load(Ordering::Relaxed);
        self.count.0.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| (c < max).then_some(c + 1)).is_ok()
    }

    /// Give back a slot (an entry removed, or a reservation not used).
    #[inline]
    fn release(&self) {
        self.count.0.fetch_sub(1, Ordering::AcqRel);
    }

    /// Call `f` with the value of `key`, if the key is present and not expired. Takes no lock
    /// and allocates nothing.
    #[inline]
    pub fn get<R>(&self, key: &[u8], now: Instant, f: impl FnOnce(&Value) -> R) -> Option<R> {
        let map = self.map.pin();
        let e = map.get(key)?;
        if e.expired(self.now_ms(now)) { None } else { Some(f(&e.value)) }
    }

    /// The value of `key` if it is present, not expired and an integer.
    #[inline]
    pub fn get_int(&self, key: &[u8], now: Instant) -> Option<i64> {
        self.get(key, now, |v| match v {
            Value::Int(n) => Some(*n),
            Value::Text(_) => None,
        })
        .flatten()
    }

    /// Whether `key` is present and not expired.
    #[inline]
    pub fn exists(&self, key: &[u8], now: Instant) -> bool {
        self.get(key, now, |_| ()).is_some()
    }

    /// Set `key` to `value`. `expires`: how long the entry lives from now (`Some(ZERO)`:
    /// forever); `None`: the table's `autoexpire`, or forever without one. A new key is
    /// refused with [`HtError::Full`] when the table holds `max_entries` entries; an existing
    /// key (even expired, not yet swept) is always overwritten.
    pub fn set(&self, key: &[u8], value: Value, expires: Option<Duration>, now: Instant) -> Result<(), HtError> {
        let now_ms = self.now_ms(now);
        let deadline = match expires {
            None => self.auto_deadline(now_ms),
            Some(Duration::ZERO) => NEVER,
            Some(d) => now_ms.saturating_add(ceil_ms(d)),
        };
        // papaya may call the closure more than once (after losing a race), and each call must
        // hand over a value: an integer costs nothing to copy, a text one allocation.
        self.write(key, |_| Operation::Insert(Entry { value: value.clone(), deadline }))?;
        self.stats.sets.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Add `by` to the integer at `key` and return the new value. A missing or expired key
    /// starts from 0 (a new key may be refused with [`HtError::Full`]); a text value gives
    /// [`HtError::NotInteger`]; an `i64` overflow gives [`HtError::Overflow`]. With an
    /// `autoexpire`, the entry's deadline is renewed (autoexpire counts from the last write);
    /// without, it keeps its deadline. Atomic: concurrent increments are never lost.
    pub fn inc(&self, key: &[u8], by: i64, now: Instant) -> Result<i64, HtError> {
        let now_ms = self.now_ms(now);
        let auto = self.auto_deadline(now_ms);
        let n = self.write(key, |cur| match cur {
            Some(e) if !e.expired(now_ms) => match e.value {
                Value::Int(n) => match n.checked_add(by) {
                    Some(m) => {
                        let deadline = if auto == NEVER { e.deadline } else { auto };
                        Operation::Insert(Entry { value: Value::Int(m), deadline })
                    }
                    None => Operation::Abort(HtError::Overflow),
                },
                Value::Text(_) => Operation::Abort(HtError::NotInteger),
            },
            // Missing, or expired (then it starts afresh, in the same slot).
            _ => Operation::Insert(Entry { value: Value::Int(by), deadline: auto }),
        })?;
        self.stats.incs.fetch_add(1, Ordering::Relaxed);
        // `inc` only ever writes integers.
        n.ok_or(HtError::NotInteger)
    }

    /// The write protocol of [`set`](Self::set) and [`inc`](Self::inc), which keeps the entry
    /// count exact. `op(current)` gives the entry to write over `current` (or an error), or
    /// the entry to insert when `current` is `None`; it may be called more than once.
    /// Returns the written value when it is an integer.
    ///
    /// An existing key (expired or not) is updated atomically with papaya's `compute`. A new
    /// key first reserves a slot in the count, then is inserted with `try_insert`; if another
    /// writer inserted the key meanwhile, the slot is given back and the write becomes an
    /// update. New keys go through `try_insert` rather than `compute` because papaya 0.2's
    /// `compute` never helps an incremental resize along (see "Growth" in the module docs).
    fn write<F>(&self, key: &[u8], mut op: F) -> Result<Option<i64>, HtError>
    where
        F: FnMut(Option<&Entry>) -> Operation<Entry, HtError>,
    {
        let map = self.map.pin();
        let int = |e: &Entry| match e.value {
            Value::Int(n) => Some(n),
            Value::Text(_) => None,
        };
        // The entry for a new key, handed back by a `try_insert` that lost a race.
        let mut fresh: Option<Entry> = None;
        let mut full_retried = false;
        loop {
            // An existing key: update it.
            let result = map.compute(Box::from(key), |cur| match cur {
                Some((_, e)) => match op(Some(e)) {
                    Operation::Insert(e) => Operation::Insert(e),
                    Operation::Remove => Operation::Remove,
                    Operation::Abort(err) => Operation::Abort(Some(err)),
                },
                None => Operation::Abort(None),
            });
            match result {
                Compute::Updated { new: (_, e), .. } => return Ok(int(e)),
                Compute::Aborted(Some(err)) => return Err(err),
                Compute::Aborted(None) => {}
                // Neither happens (a missing key aborts, `op` never removes); were they to,
                // the count would follow.
                Compute::Inserted(_, e) => {
                    self.count.0.fetch_add(1, Ordering::AcqRel);
                    return Ok(int(e));
                }
                Compute::Removed(..) => {
                    self.release();
                    return Ok(None);
                }
            }
            // A new key: reserve its slot, then insert.
            if !self.reserve() {
                // Full. A racing writer may have just inserted this very key: then this write
                // is an overwrite, which is always allowed. Look once more.
                if !full_retried && map.contains_key(key) {
                    full_retried = true;
                    continue;
                }
                self.stats.refused_full.fetch_add(1, Ordering::Relaxed);
                return Err(HtError::Full { max: self.max.load(Ordering::Relaxed) });
            }
            let entry = match fresh.take() {
                Some(e) => e,
                None => match op(None) {
                    Operation::Insert(e) => e,
                    Operation::Abort(err) => {
                        self.release();
                        return Err(err);
                    }
                    Operation::Remove => {
                        self.release();
                        return Ok(None);
                    }
                },
            };
            match map.try_insert(Box::from(key), entry) {
                // The reserved slot is now the key's.
                Ok(e) => return Ok(int(e)),
                Err(occupied) => {
                    self.release();
                    fresh = Some(occupied.not_inserted);
                }
            }
        }
    }

    /// Remove `key`; true if it was present (expired or not).
    pub fn delete(&self, key: &[u8]) -> bool {
        if self.map.pin().remove(key).is_some() {
            self.release();
            self.stats.deletes.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Remove every entry; returns how many were removed. Keys written while the flush runs
    /// may survive it.
    pub fn flush(&self) -> usize {
        let map = self.map.pin();
        let mut n = 0;
        for k in map.keys() {
            if map.remove(&**k).is_some() {
                self.release();
                n += 1;
            }
        }
        self.stats.deletes.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// The number of entries, including expired ones that [`sweep`](Self::sweep) has not yet
    /// removed (and, for an instant, inserts in progress).
    pub fn len(&self) -> usize {
        self.count.0.load(Ordering::Relaxed)
    }

    /// Whether [`len`](Self::len) is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The unexpired entries, sorted by key, each with its remaining lifetime (`None`: it does
    /// not expire). For the control socket: allocates.
    pub fn dump(&self, now: Instant) -> Vec<(Vec<u8>, Value, Option<Duration>)> {
        let now_ms = self.now_ms(now);
        let map = self.map.pin();
        let mut out: Vec<(Vec<u8>, Value, Option<Duration>)> = map
            .iter()
            .filter(|(_, e)| !e.expired(now_ms))
            .map(|(k, e)| {
                let left = (e.deadline != NEVER).then(|| Duration::from_millis(e.deadline - now_ms));
                (k.to_vec(), e.value.clone(), left)
            })
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Remove the entries expired at `now`; returns how many were removed.
    pub fn sweep(&self, now: Instant) -> usize {
        let now_ms = self.now_ms(now);
        let map = self.map.pin();
        let mut n = 0;
        for (k, e) in map.iter() {
            if e.expired(now_ms) && matches!(map.remove_if(&**k, |_, e| e.expired(now_ms)), Ok(Some(_))) {
                self.release();
                n += 1;
            }
        }
        self.stats.expired.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// The table's counters.
    pub fn stats(&self) -> HtStats {
        let s = &self.stats;
        HtStats {
            sets: s.sets.load(Ordering::Relaxed),
            incs: s.incs.load(Ordering::Relaxed),
            deletes: s.deletes.load(Ordering::Relaxed),
            refused_full: s.refused_full.load(Ordering::Relaxed),
            expired: s.expired.load(Ordering::Relaxed),
        }
    }
}

/// The tables of one config snapshot, in config order, found by name or by index.
#[derive(Debug, Default)]
pub struct Tables {
    tables: Vec<Arc<Htable>>,
    /// (name, index in `tables`), sorted by name.
    names: Vec<(Box<str>, usize)>,
    /// The `[pike]` flood detector (the `flooding` condition), kept across snapshots like the
    /// tables while its settings stay the same.
    pub pike: Option<Arc<crate::pike::Pike>>,
}

impl Tables {
    /// New empty tables for `specs`, in that order. A repeated name keeps its first spec.
    pub fn new(specs: &[Spec]) -> Tables {
        Tables::build(specs, |spec| Arc::new(Htable::new(spec)))
    }

    /// The tables of a new config snapshot: a table whose name is configured in both keeps its
    /// `Arc`, hence its entries and counters, and is reconfigured with its new spec (the old
    /// snapshot, which shares it, sees the new settings too); a new name gets a new empty
    /// table; a table whose name is no longer configured is left out (dropped with the last
    /// snapshot that holds it).
    pub fn reconcile(&self, specs: &[Spec]) -> Tables {
        Tables::build(specs, |spec| match self.by_name(&spec.name) {
            Some(t) => {
                t.reconfigure(spec);
                Arc::clone(t)
            }
            None => Arc::new(Htable::new(spec)),
        })
    }

    fn build(specs: &[Spec], mut make: impl FnMut(&Spec) -> Arc<Htable>) -> Tables {
        let mut out =
            Tables { tables: Vec::with_capacity(specs.len()), names: Vec::with_capacity(specs.len()), pike: None };
        for spec in specs {
            if let Err(at) = out.names.binary_search_by(|(n, _)| (**n).cmp(spec.name.as_str())) {
                out.names.insert(at, (spec.name.as_str().into(), out.tables.len()));
                out.tables.push(make(spec));
            }
        }
        out
    }

    /// The index of the table named `name` (stable for this snapshot: routes compile it).
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.binary_search_by(|(n, _)| (**n).cmp(name)).ok().map(|at| self.names[at].1)
    }

    /// The table at `index`.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&Arc<Htable>> {
        self.tables.get(index)
    }

    /// The table named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Arc<Htable>> {
        self.index(name).and_then(|i| self.tables.get(i))
    }

    /// The tables, in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Htable>> {
        self.tables.iter()
    }

    /// The number of tables.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether there are no tables.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

#[cfg(test)]
mod tests;
