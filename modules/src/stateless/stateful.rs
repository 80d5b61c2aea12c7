//! The transaction-stateful proxy core (RFC 3261 §16 over the §17 transactions of
//! `ringsip_proto::transaction`): `relay` creates a proxy transaction on the shard that
//! received the request — a server transaction towards the caller and one client
//! transaction (a *leg*) per branch — and from then on the shard feeds it what arrives and
//! what its timers say.
//!
//! * Requests (§16.2, §17.2.3): a retransmission matches its transaction by the top Via's
//!   branch and sent-by (RFC 2543 requests: Request-URI, From tag, Call-ID, CSeq and the top
//!   Via) and gets the last response again; the ACK of a non-2xx final response is absorbed;
//!   a CANCEL matched to a pending INVITE is answered 200 and cancels every pending leg
//!   (§16.10; a leg without a provisional response yet is cancelled when one comes, §9.1).
//!   An INVITE gets 100 Trying at once.
//! * Responses (§16.7): provisional ones (not 100) go upstream at once, every 2xx goes
//!   upstream and cancels the other legs, a 6xx cancels the other legs, other finals are kept
//!   and the best one (§16.7 step 6: a 6xx, else the lowest class; a 503 goes up as 500)
//!   goes upstream once every leg is done — unless an armed failure route relays again
//!   (serial forking) or replies itself. A non-2xx final response is ACKed hop by hop; the
//!   2xx ACK is end to end (routed like any in-dialog request).
//! * Timeouts (§16.8): no response within Timer B/F (`no_reply_timeout`) is a local 408; an
//!   INVITE leg with a provisional response and no final one within Timer C is cancelled and
//!   counts as a 408 too.
//! * Ownership: a branch names its shard. A response that the kernel delivers to another
//!   shard (SO_REUSEPORT hashes the 4-tuple, not the transaction) is passed to the owner
//!   through a bounded lock-free queue; messages of one 4-tuple always reach the same shard
//!   and the queue is FIFO, so nothing of one transaction is reordered.

use std::net::SocketAddr;
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use ringsip_proto::proxy::{self, Fnv};
use ringsip_proto::transaction::client::{ClientKind, ClientTransaction};
use ringsip_proto::transaction::server::{ServerKind, ServerState, ServerTransaction};
use ringsip_proto::transaction::{Action as TAction, Actions, Code, Event, Transport};
use ringsip_proto::{Edits, HeaderName, Message, Method};
use ringsip_runtime::{Datagram, Outbox};
use tracing::{debug, warn};

use super::table::{self, Cancel, Leg, MAX_LEGS};
use super::{DropReason, Env, Outcome, RouteRun, Shared, StatelessProxy, apply_header_ops, hex, route_ctx};
use crate::route::Failure;

/// What a `relay` in the request route decided, for the transaction it creates.
#[derive(Clone, Copy)]
pub(crate) struct Plan {
    pub dest: SocketAddr,
    pub li: usize,
    pub selected: Option<(usize, usize)>,
    pub on_failure: Option<usize>,
    pub on_reply: Option<usize>,
    pub alts: table::Alts,
    /// The stateless branch of the request (its loop half goes into the stateful ones).
    pub branch: ringsip_proto::proxy::Branch,
    /// Parallel forking: a branch to every available destination of the selected set.
    pub fork: bool,
    /// `anchor_media` ran for it.
    pub media: Option<table::TxnMedia>,
}

/// Queue a copy of `bytes` to `dest` from listen socket `listen`.
fn send_copy(out: &mut Outbox<'_>, listen: usize, dest: SocketAddr, bytes: &[u8]) -> bool {
    out.send(listen, dest, |b| {
        b.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(bytes.len())
    })
}

/// How the last branch of a failed transaction ended (what a failure route sees).
#[derive(Clone, Copy)]
struct Ended {
    timeout: bool,
    replied: bool,
    failed: Option<(usize, usize)>,
}

/// What a failure route decided.
enum Decided {
    /// A new branch went out.
    Branch,
    /// Reply this upstream (code, reason bytes, reason length).
    Reply(u16, [u8; 128], usize),
    /// Let the best failure through.
    Pass,
}

/// Room kept for edits when a message is rewritten into a transaction buffer.
const EDIT_ROOM: usize = 2048;

/// A message one shard passes to the shard that owns its transaction.
pub struct Parcel {
    data: Vec<u8>,
    src: SocketAddr,
    local: SocketAddr,
    listen: usize,
}

/// The hand-off queues of every shard (one each, bounded), and a shared pool of their
/// buffers so that passing a message on allocates nothing in steady state.
pub struct Handoff {
    queues: Vec<ArrayQueue<Parcel>>,
    pool: ArrayQueue<Vec<u8>>,
}

/// Messages one shard's hand-off queue holds.
const HANDOFF_QUEUE: usize = 8192;

impl Handoff {
    /// Queues for `shards` shards.
    pub fn new(shards: usize) -> Handoff {
        Handoff {
            queues: (0..shards.max(1)).map(|_| ArrayQueue::new(HANDOFF_QUEUE)).collect(),
            pool: ArrayQueue::new(HANDOFF_QUEUE),
        }
    }
}

/// The §17.2.3 match key of a request: the top Via's branch, sent-by and the method (ACK and
/// CANCEL look for their INVITE with `invite_class`); for RFC 2543 requests (no magic
/// cookie) the Request-URI, From tag, Call-ID, CSeq number and the whole top Via. The To tag
/// is left out so that the ACK of a non-2xx response (it carries the response's tag) finds
/// its INVITE.
pub(crate) fn server_key(m: &Message<'_>, invite_class: bool) -> Option<u64> {
    let via = m.via().ok()?;
    let class: &[u8] = if invite_class { b"INVITE" } else { m.method_bytes()? };
    let h = if via.is_rfc3261_branch() {
        Fnv::new().mix(via.branch()?).mix(via.host_bytes()).mix_u64(u64::from(via.port().unwrap_or(0))).mix(class)
    } else {
        Fnv::new()
            .mix(m.request_uri_bytes()?)
            .mix(m.from().ok()?.tag().unwrap_or(b""))
            .mix(m.call_id().ok()?)
            .mix_u64(u64::from(m.cseq().ok()?.number))
            .mix(via.as_bytes())
            .mix(class)
    };
    Some(h.finish())
}

/// Is `a` a better final response than `b` (RFC 3261 §16.7 step 6)? A 6xx beats the rest;
/// otherwise the lowest class wins, and within a class the first one stays.
fn better(a: u16, b: u16) -> bool {
    if b == 0 {
        return true;
    }
    let (ca, cb) = (a / 100, b / 100);
    if cb == 6 {
        return false;
    }
    ca == 6 || ca < cb
}

/// A shard's write buffer: zeroed once at its full size, so writing a message into it
/// neither allocates nor clears memory; `bytes` is what the last write produced.
#[derive(Default)]
pub(crate) struct Scratch {
    buf: Vec<u8>,
    len: usize,
}

impl Scratch {
    /// A buffer of `size` bytes.
    pub fn new(size: usize) -> Scratch {
        Scratch { buf: vec![0; size], len: 0 }
    }

    /// Write with `write`, given room for `len` bytes (at most the buffer's size); false
    /// (and nothing kept) when it did not fit.
    pub fn write(&mut self, len: usize, write: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
        let room = len.min(self.buf.len());
        self.len = write(&mut self.buf[..room]).unwrap_or(0);
        self.len > 0
    }

    /// What the last write produced.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl StatelessProxy {
    /// The transactions' clock for `t`.
    fn ms(&self, t: Instant) -> u64 {
        self.txns.ms(t)
    }

    /// A request that belongs to a transaction of this shard: a retransmission, the ACK of a
    /// non-2xx final response, or a CANCEL. Returns whether it was handled.
    pub(crate) fn txn_request(&mut self, m: &Message<'_>, d: &Datagram<'_>, out: &mut Outbox<'_>) -> bool {
        if self.txns.held() == 0 {
            return false;
        }
        let method = m.method();
        let invite_class = matches!(method, Some(Method::Invite | Method::Ack | Method::Cancel));
        let Some(key) = server_key(m, invite_class) else { return false };
        let Some(i) = self.txns.find(key) else { return self.lingering_request(key, m, d, out) };
        let now = self.ms(d.now);
        match method {
            Some(Method::Cancel) => {
                self.cancel_txn(i, m, d, now, out);
                true
            }
            Some(Method::Ack) => {
                // the ACK of a non-2xx final response is the transaction's (§17.2.1); a 2xx
                // ACK with the INVITE's branch (RFC 2543 clients) goes end to end
                if !matches!(self.txns.slots[i].server.state(), ServerState::Completed | ServerState::Confirmed) {
                    return false;
                }
                self.txn_stats.absorbed.inc();
                self.server_event(i, Event::Request { ack: true }, now, out);
                self.settle(i);
                true
            }
            _ => {
                self.txn_stats.absorbed.inc();
                self.server_event(i, Event::Request { ack: false }, now, out);
                self.settle(i);
                true
            }
        }
    }

    /// A request for a lingering transaction: a retransmission gets the final response
    /// again (a non-INVITE) or nothing (an answered INVITE); a CANCEL gets 200 and changes
    /// nothing (§9.2); an ACK goes on through the route (the 2xx ACK is end to end).
    fn lingering_request(&mut self, key: u64, m: &Message<'_>, d: &Datagram<'_>, out: &mut Outbox<'_>) -> bool {
        let Some(l) = self.txns.find_lingering(key) else { return false };
        match m.method() {
            Some(Method::Ack) => false,
            Some(Method::Cancel) => {
                self.reply(m, d, 200, b"OK", None, out);
                true
            }
            _ => {
                self.txn_stats.absorbed.inc();
                if !l.resp.is_empty() {
                    let r = &l.resp;
                    if send_copy(out, l.listen, l.upstream, r) {
                        self.txn_stats.retransmissions.inc();
                    }
                }
                true
            }
        }
    }

    /// Feed the server transaction of `i` and carry out what it asks.
    fn server_event(&mut self, i: usize, ev: Event, now: u64, out: &mut Outbox<'_>) {
        let mut acts = Actions::new();
        if self.txns.slots[i].server.handle(ev, now, &mut acts).is_err() {
            return;
        }
        for a in &acts {
            let t = &mut self.txns.slots[i];
            t.server_timer(a);
            if *a == TAction::Retransmit && !t.resp.is_empty() {
                let resp = &t.resp;
                if send_copy(out, t.listen, t.upstream, resp) {
                    self.txn_stats.retransmissions.inc();
                }
            }
        }
    }

    /// Re-arm the timers of `i`, or free it when it is over. Called once at the end of
    /// each entry point (a request, a response, a timer), never in between, so nothing
    /// disappears under the code that handles an event.
    fn settle(&mut self, i: usize) {
        let t = &self.txns.slots[i];
        if !t.live {
            return;
        }
        if t.finished() {
            self.txns.release(i);
        } else if let Some(until) = lingers(t) {
            // from now on it only absorbs retransmissions: a few dozen bytes, the slot is free
            self.txns.linger(i, until);
        } else {
            self.txns.trim(i);
            self.txns.rearm(i);
        }
        self.txn_stats.live.set(self.txns.live as u64);
        self.txn_stats.lingering.set(self.txns.lingering() as u64);
    }

    /// `relay`: create the transaction and send its first branch: `fwd` is the request as
    /// relayed, with a placeholder branch (empty when it did not fit).
    pub(crate) fn relay(
        &mut self,
        m: &Message<'_>,
        d: &Datagram<'_>,
        plan: Plan,
        fwd: Scratch,
        mi: usize,
        out: &mut Outbox<'_>,
    ) {
        let invite = m.method() == Some(Method::Invite);
        let Some(key) = server_key(m, invite) else {
            self.fwd_scratch = fwd;
            return self.stats.dropped(DropReason::Unanswerable);
        };
        // a retransmission of a request whose transaction lingers is absorbed there (the
        // route only runs for a request that matched nothing, so this is a race-free check)
        let Some(i) = self.txns.alloc(key) else {
            self.fwd_scratch = fwd;
            self.txn_stats.refused.inc();
            let mut ra = [0u8; 40];
            let n = {
                let p = b"Retry-After: ";
                ra[..p.len()].copy_from_slice(p);
                let mut nb = [0u8; 20];
                let v = proxy::dec(u64::from(self.txns.limits.retry_after), &mut nb);
                ra[p.len()..p.len() + v.len()].copy_from_slice(v);
                p.len() + v.len()
            };
            let extra: &[u8] = if self.txns.limits.retry_after > 0 { &ra[..n] } else { b"" };
            debug!(shard = self.shard, limit = self.txns.limits.max, "transaction table full; 503 with Retry-After");
            return self.reply_with(m, d, 503, b"Service Unavailable", None, (!extra.is_empty()).then_some(extra), out);
        };
        self.txn_stats.created.inc();
        self.txn_stats.live.set(self.txns.live as u64);
        let now = self.ms(d.now);
        let timers = self.txns.limits.timers;
        let loop_hash = table::get_hex(&plan.branch.loop_part()[proxy::BRANCH_PREFIX.len()..]).unwrap_or(0);
        let upstream = m.via().map(|v| proxy::reply_hop(v, d.src)).unwrap_or(d.src);
        let mut req = Vec::new();
        self.txns.pool.store(&mut req, m.buffer());
        let mut stored_fwd = Vec::new();
        self.txns.pool.store(&mut stored_fwd, fwd.bytes());
        let branch_at = self.branch_finder.find(fwd.bytes()).unwrap_or(0);
        self.fwd_scratch = fwd;
        let fwd = stored_fwd;
        let mut resp = Vec::new();
        let t = &mut self.txns.slots[i];
        let mut acts = Actions::new();
        t.invite = invite;
        t.server = ServerTransaction::new(
            if invite { ServerKind::Invite } else { ServerKind::NonInvite },
            Transport::Unreliable,
            timers,
            now,
            &mut acts,
        );
        t.src = d.src;
        t.local = d.local;
        t.listen = d.listen;
        t.upstream = upstream;
        t.loop_hash = loop_hash;
        hex(Fnv::new().mix_u64(key).mix_u64(u64::from(t.gen_)).finish(), &mut t.tag);
        t.failure_route = plan.on_failure;
        t.reply_route = plan.on_reply;
        t.media = plan.media;
        t.alts = plan.alts;
        t.branch_at = branch_at;
        let written = !fwd.is_empty();
        t.fwd = fwd;

        // 100 Trying at once (§16.2: a stateful proxy answers an INVITE with it; §17.2.1)
        if invite
            && self.out_scratch.write(m.buffer().len() + 256, |b| {
                proxy::write_reply(m, d.src, 100, b"Trying", b"", &[b"Server: ringsip"], b)
            })
        {
            self.txns.pool.store(&mut resp, self.out_scratch.bytes());
            let r = &resp;
            if send_copy(out, d.listen, upstream, r) {
                self.stats.reply(100);
            }
            let t = &mut self.txns.slots[i];
            let mut a = Actions::new();
            let _ = t.server.handle(Event::TuResponse(Code(100)), now, &mut a);
            for x in &a {
                t.server_timer(x);
            }
        }
        let t = &mut self.txns.slots[i];
        t.req = req;
        t.resp = resp;
        if !written {
            self.stats.dropped(DropReason::Write);
            self.local_final(i, 500, b"Server Internal Error", now, out);
        } else {
            self.stats.forwarded_requests[mi].inc();
            self.start_leg(i, plan.dest, plan.li, plan.selected, now, out);
            if plan.fork {
                self.fork_rest(i, &plan, now, out);
            }
        }
        self.settle(i);
    }

    /// `fork`: the other available destinations of the selected set get a branch each, at
    /// once (up to [`MAX_LEGS`]).
    fn fork_rest(&mut self, i: usize, plan: &Plan, now: u64, out: &mut Outbox<'_>) {
        let Some((set, _)) = plan.selected else { return };
        let alts = self.txns.slots[i].alts;
        for k in 0..alts.len as usize {
            let (s, d) = (alts.list[k].0 as usize, alts.list[k].1 as usize);
            if s != set || Some((s, d)) == plan.selected || self.txns.slots[i].legs.len() >= MAX_LEGS {
                continue;
            }
            let Some(dest) = self.shared.dispatcher.sets.get(s).and_then(|x| x.dests.get(d)) else { continue };
            if !dest.available() {
                continue;
            }
            let addr = dest.addr;
            if let Some(c) = self.dests.selected.get(s).and_then(|x| x.get(d)) {
                c.inc();
            }
            let li = self.our_listen_for(&addr, self.txns.slots[i].listen);
            self.start_leg(i, addr, li, Some((s, d)), now, out);
        }
        // a forked set is used up: `select next` goes on after it
        let t = &mut self.txns.slots[i];
        while t.alts.pos < t.alts.len && t.alts.list[t.alts.pos as usize].0 as usize == set {
            t.alts.pos += 1;
        }
    }

    /// Send the relayed request on a new leg to `dest`.
    fn start_leg(
        &mut self,
        i: usize,
        dest: SocketAddr,
        li: usize,
        dest_ref: Option<(usize, usize)>,
        now: u64,
        out: &mut Outbox<'_>,
    ) {
        let shard = self.shard;
        let timers = self.txns.limits.timers;
        let t = &mut self.txns.slots[i];
        let no = t.next_leg;
        t.next_leg = t.next_leg.wrapping_add(1);
        let b = table::write_branch(t.loop_hash, shard, i as u32, t.gen_, no & 0xf);
        if let Some(dst) = t.fwd.get_mut(t.branch_at..t.branch_at + b.len()) {
            dst.copy_from_slice(&b);
        }
        let fwd = &t.fwd;
        let sent = send_copy(out, li, dest, fwd);
        let mut acts = Actions::new();
        let kind = if t.invite { ClientKind::Invite } else { ClientKind::NonInvite };
        let client = ClientTransaction::start(kind, Transport::Unreliable, timers, now, &mut acts);
        t.legs.push(Leg {
            no: no & 0xf,
            client,
            dest,
            listen: li,
            dest_ref,
            replied: false,
            provisional: false,
            done: false,
            code: 0,
            timeout: false,
            timer_c: None,
            cancel: Cancel::No,
        });
        self.txn_stats.branches.inc();
        if !sent {
            self.stats.dropped(DropReason::Write);
        }
        self.txns.rearm(i);
    }

    /// A response to one of this shard's branches (or another shard's: passed on). Returns
    /// false when no transaction takes it.
    pub(crate) fn txn_response(
        &mut self,
        m: &Message<'_>,
        d: &Datagram<'_>,
        id: table::BranchId,
        out: &mut Outbox<'_>,
    ) -> bool {
        if id.shard != self.shard {
            return self.hand_off(id.shard, d);
        }
        let Some(i) = self.txns.get(id.slot, id.gen_) else { return false };
        let Some(li) = self.txns.slots[i].legs.iter().position(|l| l.no == id.leg) else { return false };
        let now = self.ms(d.now);
        let code = m.status().unwrap_or(0);
        let Ok(cseq) = m.cseq() else {
            self.stats.dropped(DropReason::BadResponse);
            return true;
        };
        if cseq.method == b"CANCEL" {
            // the answer to our CANCEL: nothing goes upstream
            let leg = &mut self.txns.slots[i].legs[li];
            if matches!(leg.cancel, Cancel::Sent { .. }) && code >= 200 {
                leg.cancel = Cancel::Done;
            }
            self.settle(i);
            return true;
        }
        let mut acts = Actions::new();
        let r = self.txns.slots[i].legs[li].client.handle(Event::Response(Code(code)), now, &mut acts);
        if r.is_err() {
            // a 2xx retransmission after the leg ended goes upstream statelessly
            return !(200..300).contains(&code);
        }
        // the hop-by-hop ACK first, then what the response means for the transaction
        if acts.iter().any(|a| matches!(a, TAction::SendAck(_))) {
            self.send_hop_ack(i, li, m, out);
        }
        for a in acts {
            if let TAction::PassUp(c) = a {
                self.pass_up(i, li, m, d, c.0, now, out);
            }
            if !self.txns.slots[i].live {
                return true;
            }
        }
        self.settle(i);
        true
    }

    /// Pass a message to the shard that owns its transaction.
    pub(super) fn hand_off(&self, shard: usize, d: &Datagram<'_>) -> bool {
        let Some(q) = self.handoff.queues.get(shard) else { return false };
        let mut data = self.handoff.pool.pop().unwrap_or_default();
        data.clear();
        data.extend_from_slice(d.data);
        match q.push(Parcel { data, src: d.src, local: d.local, listen: d.listen }) {
            Ok(()) => self.txn_stats.handoffs.inc(),
            Err(p) => {
                let _ = self.handoff.pool.push(p.data);
                self.stats.dropped(DropReason::HandoffFull);
            }
        }
        true
    }

    /// Handle what other shards passed to this one.
    pub(crate) fn drain_handoff(&mut self, now: Instant, out: &mut Outbox<'_>) {
        let handoff = self.handoff.clone();
        let Some(q) = handoff.queues.get(self.shard) else { return };
        // bounded: what is queued now, so a busy sender cannot starve this shard's own work
        for _ in 0..q.len() {
            let Some(p) = q.pop() else { break };
            self.txn_stats.handoffs_in.inc();
            let d = Datagram { data: &p.data, src: p.src, local: p.local, listen: p.listen, now };
            self.datagram_inner(&d, out);
            let _ = handoff.pool.push(p.data);
        }
    }

    /// §16.7 for one response a leg passed up.
    #[allow(clippy::too_many_arguments)]
    fn pass_up(
        &mut self,
        i: usize,
        li: usize,
        m: &Message<'_>,
        d: &Datagram<'_>,
        code: u16,
        now: u64,
        out: &mut Outbox<'_>,
    ) {
        let timer_c = self.txns.limits.timers.c;
        let t = &mut self.txns.slots[i];
        let leg = &mut t.legs[li];
        leg.replied = true;
        if code < 200 {
            leg.provisional = true;
            if t.invite && !leg.done {
                // Timer C starts, and restarts with every provisional response (§16.6 step 11)
                leg.timer_c = Some(now.saturating_add(timer_c));
            }
            if leg.cancel == Cancel::Wanted {
                self.send_cancel(i, li, now, out);
            }
            let t = &self.txns.slots[i];
            if code == 100 || t.final_sent || t.legs[li].done {
                return;
            }
            if self.forward_up(i, m, d, code, false, out) {
                let mut a = Actions::new();
                let t = &mut self.txns.slots[i];
                let _ = t.server.handle(Event::TuResponse(Code(code)), now, &mut a);
                for x in &a {
                    t.server_timer(x);
                }
            }
            return;
        }
        leg.done = true;
        leg.code = code;
        leg.timer_c = None;
        if (200..300).contains(&code) {
            // every 2xx goes upstream (§16.7 step 9), the first one as the final response
            let first = !t.final_sent;
            t.final_sent = true;
            if first && t.invite {
                t.accepted_until = Some(now.saturating_add(self.txns.limits.timers.t1x64()));
            }
            if self.forward_up(i, m, d, code, false, out) && first {
                let mut a = Actions::new();
                let t = &mut self.txns.slots[i];
                let _ = t.server.handle(Event::TuResponse(Code(code)), now, &mut a);
                for x in &a {
                    t.server_timer(x);
                }
            }
            self.cancel_pending(i, now, out);
            return;
        }
        // 3xx-6xx: keep the best; a 6xx ends the forking (§16.7 step 5 ... 10)
        if better(code, t.best_code) && !t.final_sent {
            t.best_code = code;
            if self.rewrite_response(i, m, d, code) {
                let tx = &mut self.txns;
                tx.pool.store(&mut tx.slots[i].best, self.out_scratch.bytes());
            } else {
                self.txns.slots[i].best.clear();
            }
        }
        if code >= 600 {
            self.cancel_pending(i, now, out);
        }
        self.after_leg(i, li, now, out);
    }

    /// The response `m` as it goes upstream, written into `buf`: ringsip's Via removed, the
    /// transaction's reply route (or the global one) applied, a 503 turned into a 500
    /// (§16.7 step 6). False when the route dropped it or it did not fit.
    fn rewrite_response(&mut self, i: usize, m: &Message<'_>, d: &Datagram<'_>, code: u16) -> bool {
        let shared: &Shared = &self.shared;
        let program = &shared.program;
        let reply_route = self.txns.slots[i].reply_route;
        let rules = match reply_route {
            Some(r) => program.named.get(r).map(Vec::as_slice),
            None => program.reply.as_deref(),
        };
        let mut scratch = [0u8; 2048];
        let mut used = 0;
        let mut run = RouteRun::new(Outcome::Forward(None));
        if let Some(rules) = rules {
            let mut ctx = route_ctx(m, d, &self.myself, shared);
            run.outcome = Outcome::End;
            let mut env = Env { shared, dests: &self.dests, stats: &self.stats, sel: &mut self.sel, now: d.now };
            let _ = env.run(rules, &mut ctx, &mut run, &mut scratch, &mut used, 0);
            if matches!(run.outcome, Outcome::Drop) {
                self.stats.dropped(DropReason::Route);
                return false;
            }
        }
        // an anchored INVITE's provisional or 2xx with SDP: its answer (or a late offer)
        let mut body = None;
        if let (Some(tm), Some(media)) = (self.txns.slots[i].media, self.media.as_mut())
            && (101..300).contains(&code)
            && super::media_sdp(media, m, d, false, !tm.offered(), tm.flags()).is_some()
        {
            body = media.body_len;
        }
        let body = body.and_then(|n| self.media.as_ref().map(|md| &md.body[..n]));
        let mut e = Edits::new();
        let ok = (|| -> Result<(), ringsip_proto::WriteError> {
            e.remove_top_via(m)?;
            if let Some(b) = body {
                e.replace_body(m, b)?;
            }
            if code == 503 {
                // "A proxy which receives a 503 ... SHOULD NOT forward it upstream" (§16.7)
                let line_end = memchr::memmem::find(m.buffer(), b"\r\n").unwrap_or(0);
                e.replace(0..line_end, b"SIP/2.0 500 Server Internal Error")?;
            }
            apply_header_ops(&mut e, m, &run.ops, &scratch)
        })();
        ok.is_ok() && self.out_scratch.write(m.buffer().len() + EDIT_ROOM, |b| e.write(m, b).ok())
    }

    /// Forward response `m` upstream now (provisional or 2xx). Returns whether it went.
    fn forward_up(
        &mut self,
        i: usize,
        m: &Message<'_>,
        d: &Datagram<'_>,
        code: u16,
        _final: bool,
        out: &mut Outbox<'_>,
    ) -> bool {
        if !self.rewrite_response(i, m, d, code) {
            return false;
        }
        let tx = &mut self.txns;
        tx.pool.store(&mut tx.slots[i].resp, self.out_scratch.bytes());
        let t = &tx.slots[i];
        let r = &t.resp;
        let sent = send_copy(out, t.listen, t.upstream, r);
        if sent {
            let class = ((code / 100).clamp(1, 6) - 1) as usize;
            self.stats.forwarded_responses[class].inc();
        }
        sent
    }

    /// A leg is done: when every leg is, the failure route decides, else the best response
    /// goes upstream.
    fn after_leg(&mut self, i: usize, li: usize, now: u64, out: &mut Outbox<'_>) {
        let t = &self.txns.slots[i];
        if t.final_sent || t.legs.iter().any(|l| !l.done) {
            return;
        }
        let leg = &t.legs[li];
        let ended = Ended { timeout: leg.timeout, replied: leg.replied, failed: leg.dest_ref };
        if let Some(route) = self.txns.slots[i].failure_route.take() {
            self.txn_stats.failure_routes.inc();
            if self.run_failure(i, route, ended, now, out) {
                return;
            }
        }
        self.send_best(i, now, out);
    }

    /// Run failure route `route` for transaction `i`. True when it took care of the
    /// response (a new branch, or its own reply).
    fn run_failure(&mut self, i: usize, route: usize, ended: Ended, now: u64, out: &mut Outbox<'_>) -> bool {
        let req = std::mem::take(&mut self.txns.slots[i].req);
        let decided = self.run_failure_on(i, &req, route, ended, now, out);
        if !self.txns.slots[i].live {
            self.txns.give(req);
            return true;
        }
        self.txns.slots[i].req = req;
        match decided {
            Decided::Branch => true,
            Decided::Reply(code, reason, n) => {
                self.local_final(i, code, &reason[..n], now, out);
                true
            }
            Decided::Pass => false,
        }
    }

    fn run_failure_on(
        &mut self,
        i: usize,
        req: &[u8],
        route: usize,
        ended: Ended,
        now: u64,
        out: &mut Outbox<'_>,
    ) -> Decided {
        let Ended { timeout, replied, failed } = ended;
        let mut m = Message::new();
        if m.parse_into(req).is_err() {
            return Decided::Pass;
        }
        let t = &self.txns.slots[i];
        let code = if t.best_code == 0 { 408 } else { t.best_code };
        let cancelled = t.cancelled;
        let reason: &'static [u8] = if timeout { b"Request Timeout" } else { reason_of(code) };
        let d = Datagram { data: req, src: t.src, local: t.local, listen: t.listen, now: self.txns.instant(now) };
        let shared: &Shared = &self.shared;
        let Some(rules) = shared.program.named.get(route) else { return Decided::Pass };
        let mut scratch = [0u8; 2048];
        let mut used = 0;
        let mut run = RouteRun::new(Outcome::End);
        run.alts = t.alts;
        run.failed = failed;
        let mut ctx = route_ctx(&m, &d, &self.myself, shared);
        ctx.failure = Some(Failure { cancelled, timeout, replied, code, reason });
        let mut env = Env { shared, dests: &self.dests, stats: &self.stats, sel: &mut self.sel, now: d.now };
        let _ = env.run(rules, &mut ctx, &mut run, &mut scratch, &mut used, 0);
        let t = &mut self.txns.slots[i];
        t.alts = run.alts;
        t.failure_route = run.on_failure;
        if run.on_reply.is_some() {
            t.reply_route = run.on_reply;
        }
        let outcome = run.outcome;
        let selected = run.selected;
        match outcome {
            Outcome::Relay(explicit) | Outcome::Forward(explicit) => {
                if cancelled {
                    debug!(shard = self.shard, "failure route relayed a cancelled transaction; no new branch (§16.10)");
                    return Decided::Pass;
                }
                if t.legs.len() >= MAX_LEGS || t.next_leg >= 16 {
                    warn!(
                        shard = self.shard,
                        "a transaction ran out of branches ({MAX_LEGS}); the failure goes upstream"
                    );
                    return Decided::Pass;
                }
                let dest = match explicit {
                    Some(a) => Some(a),
                    None => selected.map(|(s, x)| self.shared.dispatcher.sets[s].dests[x].addr),
                };
                let Some(dest) = dest else {
                    debug!(
                        shard = self.shard,
                        "failure route relayed without a new destination; the failure goes upstream"
                    );
                    return Decided::Pass;
                };
                if !run.ops.is_empty() {
                    // header changes of the failure route apply to this and later branches
                    let fwd = std::mem::take(&mut self.txns.slots[i].fwd);
                    let mut fm = Message::new();
                    let ok = fm.parse_into(&fwd).is_ok() && {
                        let mut e = Edits::new();
                        apply_header_ops(&mut e, &fm, &run.ops, &scratch).is_ok()
                            && self.out_scratch.write(fwd.len() + EDIT_ROOM, |b| e.write(&fm, b).ok())
                    };
                    let tx = &mut self.txns;
                    let t = &mut tx.slots[i];
                    let at = t.branch_at;
                    t.fwd = fwd;
                    if ok {
                        let mut old = [0u8; table::TXN_BRANCH_LEN];
                        if let Some(b) = t.fwd.get(at..at + old.len()) {
                            old.copy_from_slice(b);
                        }
                        t.branch_at = memchr::memmem::find(self.out_scratch.bytes(), &old).unwrap_or(at);
                        tx.pool.store(&mut tx.slots[i].fwd, self.out_scratch.bytes());
                    }
                }
                drop(run);
                let li = self.our_listen_for(&dest, self.txns.slots[i].listen);
                self.start_leg(i, dest, li, selected, now, out);
                Decided::Branch
            }
            Outcome::Reply(code, reason) => {
                let reason: &[u8] = reason;
                let mut r = [0u8; 128];
                let n = reason.len().min(r.len());
                r[..n].copy_from_slice(&reason[..n]);
                Decided::Reply(code, r, n)
            }
            Outcome::Drop | Outcome::End => Decided::Pass,
        }
    }

    /// Send the best final response upstream (a local 408, or 487 for a cancelled
    /// transaction, when no leg answered).
    fn send_best(&mut self, i: usize, now: u64, out: &mut Outbox<'_>) {
        let t = &mut self.txns.slots[i];
        if t.final_sent {
            return;
        }
        if t.best.is_empty() {
            let (code, reason): (u16, &[u8]) =
                if t.cancelled { (487, b"Request Terminated") } else { (408, b"Request Timeout") };
            return self.local_final(i, code, reason, now, out);
        }
        std::mem::swap(&mut t.best, &mut t.resp);
        t.final_sent = true;
        self.end_failed_media(i);
        let t = &mut self.txns.slots[i];
        let code = if t.best_code == 503 { 500 } else { t.best_code };
        let r = &t.resp;
        if send_copy(out, t.listen, t.upstream, r) {
            let class = ((code / 100).clamp(1, 6) - 1) as usize;
            self.stats.forwarded_responses[class].inc();
        }
        self.server_event(i, Event::TuResponse(Code(code)), now, out);
    }

    /// An anchored initial INVITE failed: its call's media ends.
    fn end_failed_media(&mut self, i: usize) {
        let t = &self.txns.slots[i];
        let (Some(tm), Some(media)) = (t.media, self.media.as_mut()) else { return };
        if !t.invite || !tm.initial() {
            return;
        }
        let mut m = Message::new();
        if m.parse_into(&t.req).is_ok()
            && let Ok(call_id) = m.call_id()
        {
            media.end(call_id);
        }
    }

    /// A final response ringsip makes itself, sent through the server transaction.
    fn local_final(&mut self, i: usize, code: u16, reason: &[u8], now: u64, out: &mut Outbox<'_>) {
        if code >= 300 {
            self.end_failed_media(i);
        }
        let req = std::mem::take(&mut self.txns.slots[i].req);
        let mut m = Message::new();
        let t = &self.txns.slots[i];
        let (tag, src) = (t.tag, t.src);
        let ok = m.parse_into(&req).is_ok()
            && self
                .out_scratch
                .write(req.len() + 512, |b| proxy::write_reply(&m, src, code, reason, &tag, &[b"Server: ringsip"], b));
        let tx = &mut self.txns;
        if ok {
            tx.pool.store(&mut tx.slots[i].resp, self.out_scratch.bytes());
        }
        let t = &mut tx.slots[i];
        t.req = req;
        t.final_sent = true;
        if ok {
            let r = &t.resp;
            if send_copy(out, t.listen, t.upstream, r) {
                self.stats.reply(code);
            }
        }
        self.server_event(i, Event::TuResponse(Code(code)), now, out);
    }

    /// A CANCEL matched transaction `i` (§16.10): 200 to the CANCEL, then every pending leg
    /// is cancelled; the INVITE gets its final response from the legs (a 487, normally).
    fn cancel_txn(&mut self, i: usize, m: &Message<'_>, d: &Datagram<'_>, now: u64, out: &mut Outbox<'_>) {
        self.reply(m, d, 200, b"OK", None, out);
        let t = &mut self.txns.slots[i];
        if t.final_sent || t.cancelled || !t.invite {
            return;
        }
        t.cancelled = true;
        self.txn_stats.cancels.inc();
        self.cancel_pending(i, now, out);
        self.settle(i);
    }

    /// Cancel every leg still waiting for a final response.
    fn cancel_pending(&mut self, i: usize, now: u64, out: &mut Outbox<'_>) {
        if !self.txns.slots[i].invite {
            return;
        }
        for li in 0..self.txns.slots[i].legs.len() {
            let leg = &mut self.txns.slots[i].legs[li];
            if leg.done || leg.cancel != Cancel::No {
                continue;
            }
            if leg.provisional {
                self.send_cancel(i, li, now, out);
            } else {
                // §9.1: not before a provisional response; Timer B ends the leg otherwise
                leg.cancel = Cancel::Wanted;
            }
        }
    }

    /// Send (or resend) the CANCEL of leg `li`.
    fn send_cancel(&mut self, i: usize, li: usize, now: u64, out: &mut Outbox<'_>) {
        let timers = self.txns.limits.timers;
        let t = &mut self.txns.slots[i];
        let leg = &mut t.legs[li];
        let (dest, listen, no) = (leg.dest, leg.listen, leg.no);
        leg.cancel = match leg.cancel {
            Cancel::Sent { interval, until, .. } => {
                if now >= until {
                    Cancel::Done
                } else {
                    let interval = (interval * 2).min(timers.t2);
                    Cancel::Sent { next: now + interval, interval, until }
                }
            }
            _ => Cancel::Sent { next: now + timers.t1, interval: timers.t1, until: now + timers.t1x64() },
        };
        if leg.cancel == Cancel::Done {
            return;
        }
        let branch = table::write_branch(t.loop_hash, self.shard, i as u32, t.gen_, no);
        let fwd = &t.fwd;
        let sent_by = &self.sent_by[listen];
        out.send(listen, dest, |b| write_in_txn(fwd, b"CANCEL", sent_by, &branch, None, b));
    }

    /// The hop-by-hop ACK of a non-2xx final response on leg `li` (§17.1.1.3).
    fn send_hop_ack(&mut self, i: usize, li: usize, resp: &Message<'_>, out: &mut Outbox<'_>) {
        let t = &self.txns.slots[i];
        let leg = &t.legs[li];
        let branch = table::write_branch(t.loop_hash, self.shard, i as u32, t.gen_, leg.no);
        let to = resp.header(HeaderName::To);
        let fwd = &t.fwd;
        let sent_by = &self.sent_by[leg.listen];
        out.send(leg.listen, leg.dest, |b| write_in_txn(fwd, b"ACK", sent_by, &branch, to, b));
    }

    /// Run the timers of this shard's transactions that are due at `now`.
    pub(crate) fn txn_timers(&mut self, now: Instant, out: &mut Outbox<'_>) {
        let now = self.ms(now);
        if self.txns.expire_lingering(now) > 0 {
            self.txn_stats.lingering.set(self.txns.lingering() as u64);
        }
        // bounded per tick: a burst of expiries cannot stall the shard's receive loop
        for _ in 0..4096 {
            let Some(i) = self.txns.due(now) else { break };
            self.fire(i, now, out);
        }
    }

    /// Everything of transaction `i` that is due at `now`.
    fn fire(&mut self, i: usize, now: u64, out: &mut Outbox<'_>) {
        if self.txns.slots[i].accepted_until.is_some_and(|l| l <= now) {
            self.txns.slots[i].accepted_until = None;
        }
        // the server transaction's timers
        loop {
            let t = &self.txns.slots[i];
            if !t.live {
                return;
            }
            let Some((timer, _)) = t.sdl.iter().flatten().copied().find(|&(_, at)| at <= now) else { break };
            for s in &mut self.txns.slots[i].sdl {
                if s.is_some_and(|(x, _)| x == timer) {
                    *s = None;
                }
            }
            self.server_event(i, Event::Timer(timer), now, out);
        }
        if !self.txns.slots[i].live {
            return;
        }
        let n = self.txns.slots[i].legs.len();
        for li in 0..n {
            if li >= self.txns.slots[i].legs.len() {
                break;
            }
            // the client transaction's timers
            while let Some((timer, at)) = self.txns.slots[i].legs[li].client.next_timer() {
                if at > now {
                    break;
                }
                let mut acts = Actions::new();
                let _ = self.txns.slots[i].legs[li].client.handle(Event::Timer(timer), now, &mut acts);
                for a in acts {
                    match a {
                        TAction::Retransmit => {
                            let t = &self.txns.slots[i];
                            let leg = &t.legs[li];
                            let b = table::write_branch(t.loop_hash, self.shard, i as u32, t.gen_, leg.no);
                            let fwd = &t.fwd;
                            let at = t.branch_at;
                            if out.send(leg.listen, leg.dest, |o| {
                                let dst = o.get_mut(..fwd.len())?;
                                dst.copy_from_slice(fwd);
                                dst.get_mut(at..at + b.len())?.copy_from_slice(&b);
                                Some(fwd.len())
                            }) {
                                self.txn_stats.retransmissions.inc();
                            }
                        }
                        TAction::Timeout => self.leg_timeout(i, li, now, out),
                        _ => {}
                    }
                    if !self.txns.slots[i].live {
                        return;
                    }
                }
                let _ = timer;
            }
            let leg = &self.txns.slots[i].legs[li];
            // Timer C (§16.8): cancel a leg with a provisional response, treat it as a 408
            if leg.timer_c.is_some_and(|c| c <= now) {
                self.txns.slots[i].legs[li].timer_c = None;
                if !self.txns.slots[i].legs[li].done {
                    if self.txns.slots[i].legs[li].cancel == Cancel::No {
                        self.send_cancel(i, li, now, out);
                    }
                    self.leg_timeout(i, li, now, out);
                    if !self.txns.slots[i].live {
                        return;
                    }
                }
            }
            // the CANCEL's retransmissions
            if let Cancel::Sent { next, .. } = self.txns.slots[i].legs[li].cancel {
                if next <= now {
                    self.send_cancel(i, li, now, out);
                }
            }
        }
        self.settle(i);
    }

    /// Leg `li` ended by a local timeout: a 408 for the failure logic (§16.7 step 2, §16.8).
    fn leg_timeout(&mut self, i: usize, li: usize, now: u64, out: &mut Outbox<'_>) {
        let t = &mut self.txns.slots[i];
        let leg = &mut t.legs[li];
        if leg.done {
            return;
        }
        leg.done = true;
        leg.timeout = true;
        leg.code = 408;
        leg.timer_c = None;
        if leg.cancel == Cancel::Wanted {
            leg.cancel = Cancel::Done;
        }
        self.txn_stats.timeouts.inc();
        if let Some((set, d)) = leg.dest_ref {
            debug!(shard = self.shard, set, destination = d, "branch timed out");
        }
        if better(408, t.best_code) && t.best.is_empty() {
            t.best_code = 408;
        }
        self.after_leg(i, li, now, out);
    }

    /// A snapshot replaced `old`: route and dispatcher indices the live transactions hold
    /// move over by name (a route or destination that is gone is forgotten).
    pub(crate) fn remap_txns(&mut self, old: &Shared) {
        let new = self.shared.clone();
        let route = |r: Option<usize>| -> Option<usize> {
            let name = old.program.names.get(r?)?;
            new.program.names.iter().position(|n| n == name)
        };
        let dest = |(s, d): (usize, usize)| -> Option<(usize, usize)> {
            let os = old.dispatcher.sets.get(s)?;
            let od = os.dests.get(d)?;
            let ns = new.dispatcher.sets.iter().position(|x| x.id == os.id)?;
            let nd = new.dispatcher.sets[ns].dests.iter().position(|x| x.uri == od.uri && x.addr == od.addr)?;
            Some((ns, nd))
        };
        let live: Vec<usize> = self.txns.live_slots().collect();
        for i in live {
            let t = &mut self.txns.slots[i];
            t.failure_route = route(t.failure_route);
            t.reply_route = route(t.reply_route);
            let mut alts = table::Alts { pos: 0, ..Default::default() };
            for k in t.alts.pos as usize..t.alts.len as usize {
                let (s, d) = t.alts.list[k];
                if let Some((s, d)) = dest((s as usize, d as usize)) {
                    alts.push(s, d);
                }
            }
            t.alts = alts;
            for l in &mut t.legs {
                l.dest_ref = l.dest_ref.and_then(dest);
            }
        }
    }
}

/// When `t` only absorbs retransmissions any more, how long it has to: an answered
/// non-INVITE until Timer J (its branches are done; late responses to them are strays), an
/// answered INVITE whose branches have all ended until Timer L (RFC 6026).
fn lingers(t: &table::Txn) -> Option<u64> {
    if !t.final_sent {
        return None;
    }
    if t.invite {
        let all_ended = t.legs.iter().all(table::Leg::finished);
        return (all_ended && t.server.state() == ServerState::Terminated).then_some(t.accepted_until).flatten();
    }
    if t.server.state() != ServerState::Completed || t.legs.iter().any(|l| !l.done) {
        return None;
    }
    t.sdl.iter().flatten().find(|(timer, _)| *timer == ringsip_proto::transaction::Timer::J).map(|&(_, at)| at)
}

/// Reason phrase of a status code a failure route sees.
fn reason_of(code: u16) -> &'static [u8] {
    match code {
        408 => b"Request Timeout",
        480 => b"Temporarily Unavailable",
        486 => b"Busy Here",
        487 => b"Request Terminated",
        500 => b"Server Internal Error",
        503 => b"Service Unavailable",
        504 => b"Server Time-out",
        600 => b"Busy Everywhere",
        603 => b"Decline",
        _ => b"",
    }
}

/// A CANCEL or ACK for a leg, built from the relayed request `fwd` (§9.1, §17.1.1.3): its
/// Request-URI, ringsip's Via with the leg's `branch`, its Route set, From, To (`to` from the
/// response for an ACK), Call-ID, the CSeq number with `method`, Max-Forwards 70, no body.
fn write_in_txn(
    fwd: &[u8],
    method: &[u8],
    sent_by: &[u8],
    branch: &[u8],
    to: Option<&[u8]>,
    out: &mut [u8],
) -> Option<usize> {
    let mut m = Message::new();
    m.parse_into(fwd).ok()?;
    let mut n = 0;
    let mut put = |b: &[u8]| -> Option<()> {
        out.get_mut(n..n + b.len())?.copy_from_slice(b);
        n += b.len();
        Some(())
    };
    put(method)?;
    put(b" ")?;
    put(m.request_uri_bytes()?)?;
    put(b" SIP/2.0\r\nVia: SIP/2.0/UDP ")?;
    put(sent_by)?;
    put(b";branch=")?;
    put(branch)?;
    put(b"\r\n")?;
    let buf = m.buffer();
    for (k, e) in m.entries().iter().enumerate() {
        match e.name() {
            HeaderName::Route | HeaderName::From | HeaderName::CallId => {
                put(&buf[m.line_range(k)])?;
            }
            HeaderName::To => {
                if let Some(to) = to {
                    put(b"To: ")?;
                    put(to)?;
                    put(b"\r\n")?;
                } else {
                    put(&buf[m.line_range(k)])?;
                }
            }
            _ => {}
        }
    }
    let mut nb = [0u8; 20];
    put(b"CSeq: ")?;
    put(proxy::dec(u64::from(m.cseq().ok()?.number), &mut nb))?;
    put(b" ")?;
    put(method)?;
    put(b"\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")?;
    Some(n)
}
