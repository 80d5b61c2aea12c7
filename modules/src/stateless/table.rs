//! A shard's transaction table: a slab of proxy transactions, the §17.2.3 match map, a
//! deadline heap, a buffer pool, and the branch ids that name a transaction (and its shard)
//! on the wire.
//!
//! Everything here is owned by one shard and touched by it alone. Memory is reused, not
//! freed: a freed slot keeps its leg vector's capacity for the next transaction, message
//! buffers go back to the pool, the map and the heap keep their capacity. So in steady state
//! a transaction allocates nothing; the table grows to the high-water mark of live
//! transactions, which `max_per_shard` bounds.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::time::Instant;

use ringsip_proto::transaction::client::ClientTransaction;
use ringsip_proto::transaction::server::{ServerKind, ServerTransaction};
use ringsip_proto::transaction::{Action as TAction, Timer, Timers, Transport};

/// Prefix of a stateful branch: the magic cookie, `rs` for ringsip, `T` for a transaction.
pub(crate) const TXN_PREFIX: &[u8] = b"z9hG4bKrsT";

/// A stateful branch: prefix, 16 hex digits of the loop hash (§16.3 step 4), then shard (2),
/// slot (8), generation (8) and leg (1) in hex.
pub(crate) const TXN_BRANCH_LEN: usize = TXN_PREFIX.len() + 16 + 2 + 8 + 8 + 1;

/// Most legs (branches) a transaction keeps: serial failover adds one per attempt, parallel
/// forking one per destination.
pub(crate) const MAX_LEGS: usize = 16;

/// Capacities of pooled buffers: a message is kept in the smallest class it fits, so a
/// buffer is at most twice the message and a freed one fits the next message of its class
/// without growing (no allocation in steady state once each class has its population).
pub(crate) const CLASSES: [usize; 7] = [512, 1024, 2048, 4096, 8192, 16384, 32768];

/// Most buffers a class keeps when they come back.
const POOL_MAX: usize = 65536;

/// Pooled message buffers, by size class.
#[derive(Default)]
pub(crate) struct Pool {
    classes: [Vec<Vec<u8>>; CLASSES.len()],
}

impl Pool {
    /// An empty buffer that holds at least `len` bytes.
    pub fn take(&mut self, len: usize) -> Vec<u8> {
        match CLASSES.iter().position(|&c| c >= len) {
            Some(k) => self.classes[k].pop().unwrap_or_else(|| Vec::with_capacity(CLASSES[k])),
            None => Vec::with_capacity(len),
        }
    }

    /// Give a buffer back (only one of a class's exact capacity is kept).
    pub fn give(&mut self, mut b: Vec<u8>) {
        if let Some(k) = CLASSES.iter().position(|&c| c == b.capacity()) {
            if self.classes[k].len() < POOL_MAX {
                b.clear();
                self.classes[k].push(b);
            }
        }
    }

    /// Put `bytes` into `buf`, swapping in a pooled buffer of the right class when `buf` is
    /// too small (or much too big, so a large buffer does not hold a small message).
    pub fn store(&mut self, buf: &mut Vec<u8>, bytes: &[u8]) {
        let cap = buf.capacity();
        if cap < bytes.len() || cap > 2 * bytes.len().max(CLASSES[0]) {
            let old = std::mem::replace(buf, self.take(bytes.len()));
            self.give(old);
        }
        buf.clear();
        buf.extend_from_slice(bytes);
    }
}

/// A transaction that only absorbs retransmissions now (an answered non-INVITE until Timer
/// J, an answered INVITE until RFC 6026's Timer L): its key, when it ends, and for a
/// non-INVITE the response to send again. The slot it came from is free already.
#[derive(Debug)]
pub(crate) struct Linger {
    pub key: u64,
    seq: u64,
    pub until: u64,
    pub upstream: SocketAddr,
    pub listen: usize,
    /// The final response (non-INVITE); empty for an INVITE (the UAS retransmits its 2xx).
    pub resp: Vec<u8>,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn put_hex(v: u64, digits: usize, out: &mut [u8]) {
    for (i, o) in out[..digits].iter_mut().enumerate() {
        *o = HEX[((v >> (4 * (digits - 1 - i))) & 0xf) as usize];
    }
}

pub(crate) fn get_hex(b: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &c in b {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

/// The branch of leg `leg` of transaction (`slot`, `gen`) on `shard`.
pub(crate) fn write_branch(loop_hash: u64, shard: usize, slot: u32, gen_: u32, leg: u8) -> [u8; TXN_BRANCH_LEN] {
    let mut b = [0u8; TXN_BRANCH_LEN];
    let p = TXN_PREFIX.len();
    b[..p].copy_from_slice(TXN_PREFIX);
    put_hex(loop_hash, 16, &mut b[p..]);
    put_hex(shard as u64 & 0xff, 2, &mut b[p + 16..]);
    put_hex(u64::from(slot), 8, &mut b[p + 18..]);
    put_hex(u64::from(gen_), 8, &mut b[p + 26..]);
    put_hex(u64::from(leg) & 0xf, 1, &mut b[p + 34..]);
    b
}

/// Where a stateful branch points: shard, slot, generation, leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BranchId {
    pub shard: usize,
    pub slot: u32,
    pub gen_: u32,
    pub leg: u8,
}

/// Parse a branch ringsip wrote statefully; `None` for any other branch.
pub(crate) fn parse_branch(b: &[u8]) -> Option<BranchId> {
    if b.len() != TXN_BRANCH_LEN || !b.starts_with(TXN_PREFIX) {
        return None;
    }
    let p = TXN_PREFIX.len();
    get_hex(&b[p..p + 16])?;
    Some(BranchId {
        shard: get_hex(&b[p + 16..p + 18])? as usize,
        slot: get_hex(&b[p + 18..p + 26])? as u32,
        gen_: get_hex(&b[p + 26..p + 34])? as u32,
        leg: get_hex(&b[p + 34..p + 35])? as u8,
    })
}

/// The loop-hash part of a stateful branch (prefix + 16 hex digits).
pub(crate) fn loop_part(b: &[u8]) -> &[u8] {
    &b[..(TXN_PREFIX.len() + 16).min(b.len())]
}

/// A hasher for keys that already are well-mixed 64-bit hashes.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Where a leg stands with its CANCEL (RFC 3261 §9.1: only after a provisional response).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cancel {
    /// Not cancelled.
    No,
    /// Cancelled before any provisional response: sent when one arrives.
    Wanted,
    /// Sent; retransmitted (Timer E rules) until answered or `until`.
    Sent { next: u64, interval: u64, until: u64 },
    /// Answered or given up.
    Done,
}

/// One branch of a proxy transaction: a client transaction towards one destination.
#[derive(Clone, Debug)]
pub(crate) struct Leg {
    /// Leg number, in the branch id.
    pub no: u8,
    pub client: ClientTransaction,
    pub dest: SocketAddr,
    pub listen: usize,
    /// The dispatcher destination (set index, destination index), when one was selected.
    pub dest_ref: Option<(usize, usize)>,
    /// Any response arrived.
    pub replied: bool,
    /// A provisional response arrived (a CANCEL may be sent).
    pub provisional: bool,
    /// The leg's outcome is decided (a final response, or a local timeout).
    pub done: bool,
    /// The final status (408 for a local timeout).
    pub code: u16,
    /// Ended by a local timeout.
    pub timeout: bool,
    /// Timer C (INVITE, after a provisional response).
    pub timer_c: Option<u64>,
    pub cancel: Cancel,
}

impl Leg {
    /// Nothing of this leg runs any more (its client transaction and its CANCEL are over).
    pub fn finished(&self) -> bool {
        self.client.state() == ringsip_proto::transaction::client::ClientState::Terminated
            && !matches!(self.cancel, Cancel::Sent { .. })
    }

    /// Its earliest deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        let mut d = self.client.next_timer().map(|(_, at)| at);
        for x in [self.timer_c, if let Cancel::Sent { next, .. } = self.cancel { Some(next) } else { None }]
            .into_iter()
            .flatten()
        {
            d = Some(d.map_or(x, |d: u64| d.min(x)));
        }
        d
    }
}

/// Alternatives a `select` built for `select next`: (set, destination) pairs in order.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Alts {
    pub list: [(u16, u16); 16],
    pub len: u8,
    pub pos: u8,
}

impl Alts {
    pub fn clear(&mut self) {
        self.len = 0;
        self.pos = 0;
    }
    pub fn push(&mut self, set: usize, dest: usize) {
        if (self.len as usize) < self.list.len() && !self.contains(set, dest) {
            self.list[self.len as usize] = (set as u16, dest as u16);
            self.len += 1;
        }
    }
    pub fn contains(&self, set: usize, dest: usize) -> bool {
        self.list[..self.len as usize].contains(&(set as u16, dest as u16))
    }
}

/// One proxy transaction: the server transaction towards the caller and its legs.
#[derive(Debug)]
pub(crate) struct Txn {
    pub gen_: u32,
    pub live: bool,
    /// Its key in the match map.
    pub key: u64,
    pub invite: bool,
    pub server: ServerTransaction,
    /// Deadlines of the server transaction's running timers (it reports them as actions).
    pub sdl: [Option<(Timer, u64)>; 3],
    /// Where the request came from, on which listen socket.
    pub src: SocketAddr,
    pub local: SocketAddr,
    pub listen: usize,
    /// Where responses go (the request's top Via, fixed with received/rport).
    pub upstream: SocketAddr,
    pub loop_hash: u64,
    /// To tag of responses ringsip generates.
    pub tag: [u8; 16],
    /// The request as received.
    pub req: Vec<u8>,
    /// The request as relayed (with ringsip's Via); legs differ only in the branch at
    /// `branch_at`.
    pub fwd: Vec<u8>,
    pub branch_at: usize,
    /// The last response sent upstream (retransmitted by the server transaction).
    pub resp: Vec<u8>,
    /// The best final response so far (§16.7), not yet sent; empty for a local 408.
    pub best: Vec<u8>,
    pub best_code: u16,
    pub legs: Vec<Leg>,
    pub next_leg: u8,
    /// Named routes armed by `on_failure` / `on_reply`.
    pub failure_route: Option<usize>,
    pub reply_route: Option<usize>,
    pub alts: Alts,
    /// A CANCEL matched it.
    pub cancelled: bool,
    /// A final response went upstream.
    pub final_sent: bool,
    /// The deadline the heap holds for it.
    pub armed: Option<u64>,
    /// An INVITE answered 2xx stays until then (RFC 6026's Accepted state, Timer L =
    /// 64·T1), absorbing retransmitted INVITEs that would otherwise be relayed again.
    pub accepted_until: Option<u64>,
    /// The route anchored its media (`anchor_media`).
    pub media: Option<TxnMedia>,
}

/// How a transaction's media is anchored, in one byte (a transaction slot stays within
/// 512 bytes): the `anchor_media` flags, whether the request carried an offer (so a
/// response's SDP is the answer; without one, the response's SDP is a late offer), and
/// whether it is an initial INVITE (no To tag: its failure ends the call's media).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TxnMedia(u8);

impl TxnMedia {
    const ICE_REMOVE: u8 = 1;
    const ASYMMETRIC: u8 = 2;
    const TRUST_ADDRESS: u8 = 4;
    const REPLACE_ORIGIN: u8 = 8;
    const OFFERED: u8 = 16;
    const INITIAL: u8 = 32;

    pub fn new(flags: ringsip_config::AnchorFlags, offered: bool, initial: bool) -> TxnMedia {
        let bit = |on: bool, b: u8| if on { b } else { 0 };
        TxnMedia(
            bit(flags.ice_remove, Self::ICE_REMOVE)
                | bit(flags.asymmetric, Self::ASYMMETRIC)
                | bit(flags.trust_address, Self::TRUST_ADDRESS)
                | bit(flags.replace_origin, Self::REPLACE_ORIGIN)
                | bit(offered, Self::OFFERED)
                | bit(initial, Self::INITIAL),
        )
    }

    pub fn flags(self) -> ringsip_config::AnchorFlags {
        ringsip_config::AnchorFlags {
            ice_remove: self.0 & Self::ICE_REMOVE != 0,
            asymmetric: self.0 & Self::ASYMMETRIC != 0,
            trust_address: self.0 & Self::TRUST_ADDRESS != 0,
            replace_origin: self.0 & Self::REPLACE_ORIGIN != 0,
        }
    }

    pub fn offered(self) -> bool {
        self.0 & Self::OFFERED != 0
    }

    pub fn initial(self) -> bool {
        self.0 & Self::INITIAL != 0
    }
}

impl Txn {
    fn empty(timers: Timers) -> Txn {
        let mut a = ringsip_proto::transaction::Actions::new();
        Txn {
            gen_: 0,
            live: false,
            key: 0,
            invite: false,
            server: ServerTransaction::new(ServerKind::NonInvite, Transport::Unreliable, timers, 0, &mut a),
            sdl: [None; 3],
            src: SocketAddr::from(([0, 0, 0, 0], 0)),
            local: SocketAddr::from(([0, 0, 0, 0], 0)),
            listen: 0,
            upstream: SocketAddr::from(([0, 0, 0, 0], 0)),
            loop_hash: 0,
            tag: [b'0'; 16],
            req: Vec::new(),
            fwd: Vec::new(),
            branch_at: 0,
            resp: Vec::new(),
            best: Vec::new(),
            best_code: 0,
            legs: Vec::new(),
            next_leg: 0,
            failure_route: None,
            media: None,
            reply_route: None,
            alts: Alts::default(),
            cancelled: false,
            final_sent: false,
            armed: None,
            accepted_until: None,
        }
    }

    /// Record a server-transaction timer action.
    pub fn server_timer(&mut self, a: &TAction) {
        match *a {
            TAction::Start { timer, at } => {
                if let Some(s) = self.sdl.iter_mut().find(|s| s.is_some_and(|(t, _)| t == timer)) {
                    *s = Some((timer, at));
                } else if let Some(s) = self.sdl.iter_mut().find(|s| s.is_none()) {
                    *s = Some((timer, at));
                }
            }
            TAction::Stop(timer) => {
                for s in &mut self.sdl {
                    if s.is_some_and(|(t, _)| t == timer) {
                        *s = None;
                    }
                }
            }
            TAction::Terminated => self.sdl = [None; 3],
            _ => {}
        }
    }

    /// The earliest deadline of anything in it.
    pub fn next_deadline(&self) -> Option<u64> {
        let mut d = self.sdl.iter().flatten().map(|&(_, at)| at).chain(self.accepted_until).min();
        for l in &self.legs {
            if let Some(x) = l.next_deadline() {
                d = Some(d.map_or(x, |d| d.min(x)));
            }
        }
        d
    }

    /// Over: the server transaction and every leg have ended.
    pub fn finished(&self) -> bool {
        self.server.state() == ringsip_proto::transaction::server::ServerState::Terminated
            && self.accepted_until.is_none()
            && self.legs.iter().all(Leg::finished)
    }
}

/// Transaction settings of a snapshot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub timers: Timers,
    pub max: usize,
    pub retry_after: u32,
}

/// A shard's transactions.
pub(crate) struct Table {
    pub slots: Vec<Txn>,
    free: Vec<u32>,
    map: hashbrown::HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
    pub live: usize,
    epoch: Instant,
    pub limits: Limits,
    pub pool: Pool,
    next_gen: u32,
    /// Lingering transactions, oldest first (they all last 64·T1, so this is deadline order).
    lingering: std::collections::VecDeque<Linger>,
    linger_map: hashbrown::HashMap<u64, u64, BuildHasherDefault<IdHasher>>,
    linger_seq: u64,
}

impl Table {
    /// An empty table; generations start at `seed` so branches differ across restarts.
    pub fn new(limits: Limits, epoch: Instant, seed: u32) -> Table {
        let reserve = limits.max.min(4096);
        Table {
            slots: Vec::with_capacity(reserve),
            free: Vec::with_capacity(reserve),
            map: hashbrown::HashMap::with_capacity_and_hasher(reserve, BuildHasherDefault::default()),
            heap: BinaryHeap::with_capacity(reserve * 2),
            live: 0,
            epoch,
            limits,
            pool: Pool::default(),
            next_gen: seed,
            lingering: std::collections::VecDeque::with_capacity(reserve),
            linger_map: hashbrown::HashMap::with_capacity_and_hasher(reserve, BuildHasherDefault::default()),
            linger_seq: 0,
        }
    }

    /// Milliseconds since the table's epoch (the transactions' clock).
    pub fn ms(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// The instant of transaction time `ms`.
    pub fn instant(&self, ms: u64) -> Instant {
        self.epoch + std::time::Duration::from_millis(ms)
    }

    /// The transaction with match key `key`.
    pub fn find(&self, key: u64) -> Option<usize> {
        self.map.get(&key).map(|&i| i as usize)
    }

    /// The transaction a branch names, if it is still the same one.
    pub fn get(&self, slot: u32, gen_: u32) -> Option<usize> {
        let t = self.slots.get(slot as usize)?;
        (t.live && t.gen_ == gen_).then_some(slot as usize)
    }

    /// A new transaction under `key`, or `None` when the table is full.
    pub fn alloc(&mut self, key: u64) -> Option<usize> {
        if self.live >= self.limits.max {
            return None;
        }
        let i = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.slots.push(Txn::empty(self.limits.timers));
                self.slots.len() - 1
            }
        };
        self.next_gen = self.next_gen.wrapping_add(1);
        let t = &mut self.slots[i];
        t.gen_ = self.next_gen;
        t.live = true;
        t.key = key;
        self.map.insert(key, i as u32);
        self.live += 1;
        Some(i)
    }

    /// Free transaction `i`: its buffers go back to the pool, its slot to the free list.
    pub fn release(&mut self, i: usize) {
        let t = &mut self.slots[i];
        if !t.live {
            return;
        }
        t.live = false;
        if self.map.get(&t.key) == Some(&(i as u32)) {
            self.map.remove(&t.key);
        }
        let bufs = [
            std::mem::take(&mut t.req),
            std::mem::take(&mut t.fwd),
            std::mem::take(&mut t.resp),
            std::mem::take(&mut t.best),
        ];
        t.legs.clear();
        t.sdl = [None; 3];
        t.armed = None;
        t.accepted_until = None;
        t.failure_route = None;
        t.reply_route = None;
        t.alts.clear();
        t.cancelled = false;
        t.final_sent = false;
        t.best_code = 0;
        t.next_leg = 0;
        for b in bufs {
            self.give(b);
        }
        self.free.push(i as u32);
        self.live -= 1;
    }

    /// Transactions held: live slots and lingering ones.
    pub fn held(&self) -> usize {
        self.live + self.lingering.len()
    }

    /// Lingering transactions.
    pub fn lingering(&self) -> usize {
        self.lingering.len()
    }

    /// Move transaction `i` to the lingering store until `until` and free its slot. The
    /// store holds at most `max_per_shard` × 4 entries; beyond that the oldest ends early.
    pub fn linger(&mut self, i: usize, until: u64) {
        let t = &mut self.slots[i];
        let resp = if t.invite { Vec::new() } else { std::mem::take(&mut t.resp) };
        let (key, upstream, listen) = (t.key, t.upstream, t.listen);
        self.release(i);
        if self.lingering.len() >= self.limits.max.saturating_mul(4) {
            self.expire_one();
        }
        self.linger_seq += 1;
        let seq = self.linger_seq;
        self.linger_map.insert(key, seq);
        self.lingering.push_back(Linger { key, seq, until, upstream, listen, resp });
    }

    /// The lingering transaction with match key `key`.
    pub fn find_lingering(&self, key: u64) -> Option<&Linger> {
        let seq = *self.linger_map.get(&key)?;
        let front = self.lingering.front()?.seq;
        self.lingering.get(seq.checked_sub(front)? as usize).filter(|l| l.seq == seq)
    }

    /// End the lingering transactions whose time is up; returns how many.
    pub fn expire_lingering(&mut self, now: u64) -> usize {
        let mut n = 0;
        while self.lingering.front().is_some_and(|l| l.until <= now) {
            self.expire_one();
            n += 1;
        }
        n
    }

    fn expire_one(&mut self) {
        if let Some(l) = self.lingering.pop_front() {
            if self.linger_map.get(&l.key) == Some(&l.seq) {
                self.linger_map.remove(&l.key);
            }
            self.pool.give(l.resp);
        }
    }

    /// Once the final response went upstream and every leg has ended, only the response is
    /// still needed (to answer retransmissions until Timer J or I): the request buffers and
    /// the legs go back now, not when the transaction ends.
    pub fn trim(&mut self, i: usize) {
        let t = &mut self.slots[i];
        if !t.final_sent || t.req.capacity() == 0 && t.fwd.capacity() == 0 || !t.legs.iter().all(Leg::finished) {
            return;
        }
        t.legs.clear();
        let mut bufs =
            [std::mem::take(&mut t.req), std::mem::take(&mut t.fwd), std::mem::take(&mut t.best), Vec::new()];
        if t.accepted_until.is_some() {
            // nothing is retransmitted from the Accepted state: the UAS retransmits its 2xx
            bufs[3] = std::mem::take(&mut t.resp);
        }
        for b in bufs {
            self.give(b);
        }
    }

    /// Give a buffer back.
    pub fn give(&mut self, b: Vec<u8>) {
        self.pool.give(b);
    }

    /// Make sure the heap wakes transaction `i` at its earliest deadline.
    pub fn rearm(&mut self, i: usize) {
        let t = &mut self.slots[i];
        if !t.live {
            return;
        }
        let Some(d) = t.next_deadline() else { return };
        if t.armed.is_none_or(|a| d < a) {
            t.armed = Some(d);
            self.heap.push(Reverse((d, i as u32, t.gen_)));
        }
    }

    /// The next transaction with a deadline at or before `now` (ms), if any. Stale heap
    /// entries (a freed slot, an earlier arming) are skipped.
    pub fn due(&mut self, now: u64) -> Option<usize> {
        while let Some(&Reverse((at, i, g))) = self.heap.peek() {
            if at > now {
                return None;
            }
            self.heap.pop();
            let Some(t) = self.slots.get_mut(i as usize) else { continue };
            if !t.live || t.gen_ != g || t.armed != Some(at) {
                continue;
            }
            t.armed = None;
            return Some(i as usize);
        }
        None
    }

    /// Entries in the deadline heap (for tests of its bound).
    #[cfg(test)]
    pub fn heap_len(&self) -> usize {
        self.heap.len()
    }

    /// Live slot indices (for remapping on a snapshot change).
    pub fn live_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots.iter().enumerate().filter(|(_, t)| t.live).map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_round_trip_and_foreign_ones_are_refused() {
        let b = write_branch(0x0123_4567_89ab_cdef, 3, 0xdead, 0xbeef_0001, 7);
        assert_eq!(b.len(), TXN_BRANCH_LEN);
        assert_eq!(parse_branch(&b), Some(BranchId { shard: 3, slot: 0xdead, gen_: 0xbeef_0001, leg: 7 }));
        assert!(parse_branch(b"z9hG4bK776asdhds").is_none());
        let mut bad = b;
        bad[TXN_PREFIX.len() + 20] = b'x';
        assert!(parse_branch(&bad).is_none());
        assert!(loop_part(&b).ends_with(b"0123456789abcdef"));
    }

    fn limits(max: usize) -> Limits {
        Limits { timers: Timers::default(), max, retry_after: 5 }
    }

    #[test]
    fn slots_are_reused_with_a_new_generation_and_the_limit_holds() {
        let mut t = Table::new(limits(2), Instant::now(), 100);
        let a = t.alloc(1).unwrap();
        let b = t.alloc(2).unwrap();
        assert!(t.alloc(3).is_none(), "full at max");
        let ga = t.slots[a].gen_;
        assert_eq!(t.find(1), Some(a));
        t.release(a);
        assert_eq!(t.find(1), None);
        assert!(t.get(a as u32, ga).is_none(), "a freed transaction's branch matches nothing");
        let c = t.alloc(3).unwrap();
        assert_eq!(c, a, "slot reused");
        assert_ne!(t.slots[c].gen_, ga);
        assert_eq!(t.live, 2);
        let _ = b;
    }

    #[test]
    fn the_heap_wakes_at_the_earliest_deadline_and_skips_stale_entries() {
        let mut t = Table::new(limits(8), Instant::now(), 0);
        let i = t.alloc(9).unwrap();
        t.slots[i].server_timer(&TAction::Start { timer: Timer::J, at: 500 });
        t.rearm(i);
        t.slots[i].server_timer(&TAction::Start { timer: Timer::G, at: 100 });
        t.rearm(i);
        assert_eq!(t.heap_len(), 2);
        assert_eq!(t.due(99), None);
        assert_eq!(t.due(100), Some(i));
        // the later entry is stale (armed was moved to 100 and then cleared)
        t.slots[i].server_timer(&TAction::Stop(Timer::G));
        t.rearm(i);
        assert_eq!(t.due(499), None);
        assert_eq!(t.due(500), Some(i));
        t.release(i);
        assert_eq!(t.due(u64::MAX), None);
    }
}

#[cfg(test)]
mod size {
    use super::*;

    /// The documented per-transaction cost (docs/proto.md, "Memory") stays true.
    #[test]
    fn txn_media_packs_its_flags() {
        let f = ringsip_config::AnchorFlags {
            ice_remove: true,
            asymmetric: false,
            trust_address: true,
            replace_origin: false,
        };
        let m = TxnMedia::new(f, true, false);
        assert_eq!((m.flags(), m.offered(), m.initial()), (f, true, false));
        let g = ringsip_config::AnchorFlags {
            ice_remove: false,
            asymmetric: true,
            trust_address: false,
            replace_origin: true,
        };
        let m = TxnMedia::new(g, false, true);
        assert_eq!((m.flags(), m.offered(), m.initial()), (g, false, true));
    }

    #[test]
    fn a_transaction_costs_what_the_docs_say() {
        let (txn, leg) = (std::mem::size_of::<Txn>(), std::mem::size_of::<Leg>());
        println!("Txn {txn} B, Leg {leg} B");
        assert!(txn <= 512, "Txn is {txn} bytes");
        assert!(leg <= 256, "Leg is {leg} bytes");
    }
}
