//! The load generator: sipp `uac.xml` and `uas.xml` in one pinned thread.
//!
//! * UAC sockets (calls spread round-robin over them) and one socket per UAS, all non-blocking; one `ppoll` per loop turn,
//!   then `recvmmsg` (64) on the readable ones; everything a turn produces leaves with one
//!   `sendmmsg` per socket.
//! * Calls start on an absolute schedule (`Pacer`); retransmissions and timeouts are timers on
//!   a 1 ms wheel, never cancelled (a timer whose call moved on is ignored when it fires).
//! * The UAC's messages come from templates with the call number patched in; ACK/BYE and
//!   the UAS's responses are byte copies of the received headers. No per-message `format!`,
//!   and after warm-up no allocation (buffers are pooled).
//! * The call number is in the Call-ID, so a response finds its call by index.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::hist::Histogram;
use super::procfs::thread_sched;
use super::sip::{
    self, InDialog, NUM_W, RespSpec, Scan, UacTemplates, UasParts, digits, hash64, parse_digits, write_in_dialog,
    write_response,
};
use super::sys::{self, BATCH, RecvBatch};
use super::timer::{Pacer, Timer, Wheel};

/// Generator settings.
#[derive(Clone, Debug)]
pub(crate) struct GenConfig {
    /// UAC sockets; call n uses socket n mod len (more than one spreads the calls over the
    /// router's SO_REUSEPORT shards, which hash on the 4-tuple)
    pub uac: Vec<SocketAddrV4>,
    pub uas: Vec<SocketAddrV4>,
    /// SO_RCVBUF / SO_SNDBUF of every socket (sipp -buff_size)
    pub sock_buf: usize,
    /// first retransmission interval (sipp `retrans="500"`)
    pub t1_ms: u64,
    /// a call fails when an expected response is missing this long (sipp -recv_timeout)
    pub timeout_ms: u64,
    pub cpus: Vec<usize>,
    /// the called number's prefix: call n dials `dial` + n as 10 digits (`None`: sipp's
    /// `service`)
    pub dial: Option<String>,
}

/// One load: `calls` calls at `rate` calls/s through `target`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoadSpec {
    pub target: SocketAddrV4,
    pub rate: f64,
    pub calls: u64,
    /// start the calls due within each tick together at its start (0: each on its own time)
    pub tick_ns: u64,
    /// keep every call's (INVITE send time, setup latency) in `LoadStats::setup_samples`
    /// (preallocated for `calls`: nothing is allocated per call)
    pub samples: bool,
}

/// Cumulative message counters, published every loop turn.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    /// datagrams received by the UAC sockets
    pub uac_rx: u64,
    /// ... of which 100 Trying (not routed: a stateful router makes them)
    pub uac_rx_100: u64,
    /// ... of which answers to readiness probes
    pub uac_rx_probe: u64,
    /// ... of which unparsable or for no known call
    pub uac_rx_stray: u64,
    /// first 2xx answers to INVITE that carried Record-Route (a record-routing router: the
    /// call's ACK and BYE carry the route set)
    pub uac_rx_route_set: u64,
    /// 200 answers to readiness probes
    pub probe_ok: u64,
    /// datagrams received by the UAS sockets
    pub uas_rx: u64,
    /// ... of which OPTIONS (the router's health probes: not routed)
    pub uas_rx_options: u64,
    /// ... of which retransmitted INVITE / BYE
    pub uas_rx_retrans: u64,
    /// ... of which unparsable, responses or ACK for no dialog
    pub uas_rx_stray: u64,
    /// UAS retransmissions sent: 200 OK until ACK (timer G), answers to retransmitted requests
    pub uas_retrans: u64,
    /// 200 OK never acknowledged
    pub uas_no_ack: u64,
    pub tx: u64,
    pub send_errors: u64,
    pub truncated: u64,
}

/// Result of one load, from the generator's side.
#[derive(Clone, Debug, Default)]
pub(crate) struct LoadStats {
    pub attempted: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub fail_timeout_invite: u64,
    pub fail_timeout_bye: u64,
    pub fail_unexpected: u64,
    pub fail_other: u64,
    /// status code -> count, of unexpected final responses
    pub unexpected: BTreeMap<u16, u64>,
    /// INVITE -> 200, µs
    pub setup: Histogram,
    /// with `LoadSpec::samples`: per answered call (INVITE sent, µs after `run_start`; INVITE
    /// -> 200, µs), in the order the 200s arrived
    pub setup_samples: Vec<(u32, u32)>,
    /// when the first INVITE was sent
    pub run_start: Option<Instant>,
    /// BYE -> 200, µs
    pub bye: Histogram,
    pub retrans_invite: u64,
    pub retrans_bye: u64,
    /// ACKs re-sent for retransmitted 200s
    pub acks_resent: u64,
    pub dup_responses: u64,
    /// first INVITE to the end of the last call
    pub load_s: f64,
    /// first to last INVITE
    pub start_s: f64,
    /// the generator thread's CPU over the load
    pub gen_cpu_s: f64,
    /// times the generator thread was scheduled in over the load
    pub gen_wakeups: u64,
    /// worst lateness of a call start behind its schedule
    pub max_lag_ms: f64,
    pub aborted: bool,
}

impl LoadStats {
    /// Failed calls by reason, for reports (reasons with no call left out).
    pub(crate) fn fail_reasons(&self) -> BTreeMap<String, u64> {
        [
            ("timeout_invite", self.fail_timeout_invite),
            ("timeout_bye", self.fail_timeout_bye),
            ("unexpected_response", self.fail_unexpected),
            (if self.aborted { "aborted" } else { "other" }, self.fail_other),
        ]
        .into_iter()
        .filter(|&(_, v)| v > 0)
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Unexpected final responses by status code, for reports.
    pub(crate) fn unexpected_statuses(&self) -> BTreeMap<String, u64> {
        self.unexpected.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }
}

enum Cmd {
    Probe(SocketAddrV4),
    Run(LoadSpec),
    Abort,
}

/// The generator thread, seen from the orchestrator.
pub(crate) struct GenHandle {
    tx: Option<Sender<Cmd>>,
    done: Receiver<LoadStats>,
    shared: Arc<Mutex<Counters>>,
    thread: Option<JoinHandle<()>>,
}

fn bind(addr: SocketAddrV4, buf: usize) -> io::Result<UdpSocket> {
    let s = UdpSocket::bind(addr).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot bind UDP {addr}: {e} (is another benchmark running?)"))
    })?;
    s.set_nonblocking(true)?;
    let r = socket2::SockRef::from(&s);
    r.set_recv_buffer_size(buf)?;
    r.set_send_buffer_size(buf)?;
    Ok(s)
}

impl GenHandle {
    /// Bind the sockets (errors are reported here) and start the thread.
    pub(crate) fn start(cfg: GenConfig) -> io::Result<GenHandle> {
        let mut socks = Vec::new();
        for &a in cfg.uac.iter().chain(&cfg.uas) {
            socks.push(bind(a, cfg.sock_buf)?);
        }
        let (tx, rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let shared = Arc::new(Mutex::new(Counters::default()));
        let sh = Arc::clone(&shared);
        let thread = std::thread::Builder::new().name("ringsip-bench-gen".into()).spawn(move || {
            if let Err(e) = sys::set_thread_affinity(&cfg.cpus) {
                eprintln!("ringsip-bench: warning: cannot pin the generator to CPUs {:?}: {e}", cfg.cpus);
            }
            sys::set_timer_slack(1_000);
            let g = Gen::new(cfg, socks, sh);
            g.run(rx, done_tx);
        })?;
        Ok(GenHandle { tx: Some(tx), done, shared, thread: Some(thread) })
    }

    fn send(&self, c: Cmd) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(c);
        }
    }

    pub(crate) fn counters(&self) -> Counters {
        *self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Send one OPTIONS through `target` (see `Counters::probe_ok`).
    pub(crate) fn probe(&self, target: SocketAddrV4) {
        self.send(Cmd::Probe(target));
    }

    pub(crate) fn start_load(&self, spec: LoadSpec) {
        self.send(Cmd::Run(spec));
    }

    /// Fail every call in progress and end the load now.
    pub(crate) fn abort(&self) {
        self.send(Cmd::Abort);
    }

    /// The load's result once it ended.
    pub(crate) fn wait_done(&self, timeout: Duration) -> Result<LoadStats, RecvTimeoutError> {
        self.done.recv_timeout(timeout)
    }
}

impl Drop for GenHandle {
    fn drop(&mut self) {
        self.tx = None; // the thread ends when the channel closes
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ------------------------------------------------------------------ engine

const K_INV: u8 = 1;
const K_BYE: u8 = 2;
const K_UAS: u8 = 3;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    Free,
    Inviting,
    Proceeding,
    ByeSent,
    ByeProceeding,
    Done,
    Failed,
}

#[derive(Clone, Copy, Debug)]
struct Call {
    n: u64,
    st: St,
    retx_ms: u32,
    bye_buf: u32,
    t_inv: u64,
    t_bye: u64,
}

const NO_BUF: u32 = u32::MAX;
const FREE_CALL: Call = Call { n: u64::MAX, st: St::Free, retx_ms: 0, bye_buf: NO_BUF, t_inv: 0, t_bye: 0 };

enum Fail {
    TimeoutInvite,
    TimeoutBye,
    Unexpected(u16),
    Other,
}

/// Reusable byte buffers.
#[derive(Default)]
struct Pool {
    bufs: Vec<Vec<u8>>,
    free: Vec<u32>,
}

impl Pool {
    fn get(&mut self) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.bufs[i as usize].clear();
                i
            }
            None => {
                self.bufs.push(Vec::with_capacity(1024));
                (self.bufs.len() - 1) as u32
            }
        }
    }
    fn put(&mut self, i: u32) {
        if i != NO_BUF {
            self.free.push(i);
        }
    }
}

/// Outgoing datagrams of one socket, sent together.
struct Tx {
    fd: RawFd,
    data: Vec<u8>,
    ents: Vec<(u32, u32, SocketAddrV4)>,
    sent: u64,
    errors: u64,
}

impl Tx {
    fn new(fd: RawFd) -> Tx {
        Tx { fd, data: Vec::with_capacity(BATCH * 1024), ents: Vec::with_capacity(BATCH), sent: 0, errors: 0 }
    }
    fn commit(&mut self, start: usize, dst: SocketAddrV4) {
        self.ents.push((start as u32, (self.data.len() - start) as u32, dst));
        if self.ents.len() >= BATCH {
            self.flush();
        }
    }
    fn push(&mut self, bytes: &[u8], dst: SocketAddrV4) {
        let s = self.data.len();
        self.data.extend_from_slice(bytes);
        self.commit(s, dst);
    }
    fn flush(&mut self) {
        let mut i = 0;
        while i < self.ents.len() {
            match sys::sendmmsg(self.fd, &self.data, &self.ents[i..]) {
                Ok(0) | Err(_) => {
                    // the first one failed (full send buffer, ENOBUFS): it is lost, the
                    // retransmission timers recover
                    self.errors += 1;
                    i += 1;
                }
                Ok(n) => {
                    self.sent += n as u64;
                    i += n;
                }
            }
        }
        self.data.clear();
        self.ents.clear();
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum UasSt {
    Answered,
    Confirmed,
}

struct UasEntry {
    key: u64,
    cid: Vec<u8>,
    tag: u64,
    st: UasSt,
    seq: u32,
    t: u64,
    retx_ms: u32,
    buf: u32,
    dst: SocketAddrV4,
    si: u8,
}

/// The keys are already hashes: pass them through.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, b: &[u8]) {
        self.0 = hash64(b);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

struct Run {
    spec: LoadSpec,
    pacer: Pacer,
    started: u64,
    active: u64,
    t_first: u64,
    t_last_start: u64,
    t_end: u64,
    cpu0: (u64, u64),
    max_lag_ns: u64,
}

/// How long the UAS keeps a dialog that never got its BYE.
const UAS_EXPIRE_MS: u64 = 32_000;
/// RFC 3261 T2: the cap of non-INVITE (and 2xx) retransmission intervals.
const T2_MS: u32 = 4_000;
/// Longest sleep between loop turns (commands are checked at least this often).
const IDLE_WAIT: Duration = Duration::from_millis(20);

struct Gen {
    cfg: GenConfig,
    _socks: Vec<UdpSocket>,
    fds: Vec<RawFd>,
    tx: Vec<Tx>,
    base: Instant,
    wheel: Wheel,
    fired: Vec<Timer>,
    calls: Vec<Call>,
    mask: u64,
    next_n: u64,
    pool: Pool,
    /// per UAC socket, for `target`
    tpls: Vec<UacTemplates>,
    n_uac: usize,
    target: SocketAddrV4,
    rid: u32,
    call_suffix: Vec<u8>,
    probe_suffix: Vec<u8>,
    probe_n: u64,
    uas_parts: Vec<UasParts>,
    uas_map: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    uas: Vec<UasEntry>,
    uas_free: Vec<u32>,
    uas_tag: u64,
    run: Option<Run>,
    stats: LoadStats,
    c: Counters,
    shared: Arc<Mutex<Counters>>,
}

impl Gen {
    fn new(cfg: GenConfig, socks: Vec<UdpSocket>, shared: Arc<Mutex<Counters>>) -> Gen {
        let fds: Vec<RawFd> = socks.iter().map(AsRawFd::as_raw_fd).collect();
        let rid = std::process::id();
        let uas_parts = cfg.uas.iter().map(|&a| UasParts::new(a)).collect();
        let base = Instant::now();
        Gen {
            tx: fds.iter().map(|&fd| Tx::new(fd)).collect(),
            fds,
            _socks: socks,
            base,
            wheel: Wheel::new(0),
            fired: Vec::new(),
            calls: vec![FREE_CALL; 4096],
            mask: 4095,
            next_n: 1,
            pool: Pool::default(),
            tpls: Vec::new(),
            n_uac: cfg.uac.len(),
            target: cfg.uac[0],
            rid,
            call_suffix: sip::call_suffix(cfg.uac[0], rid).into_bytes(),
            probe_suffix: sip::probe_suffix(cfg.uac[0], rid).into_bytes(),
            probe_n: 0,
            uas_parts,
            uas_map: HashMap::default(),
            uas: Vec::new(),
            uas_free: Vec::new(),
            uas_tag: u64::from(rid) << 32,
            run: None,
            stats: LoadStats::default(),
            c: Counters::default(),
            shared,
            cfg,
        }
    }

    /// The UAC socket of call `n`.
    fn uac_of(&self, n: u64) -> usize {
        (n % self.n_uac as u64) as usize
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn templates(&mut self, target: SocketAddrV4) {
        if self.tpls.is_empty() || self.target != target {
            let dial = self.cfg.dial.as_deref();
            self.tpls = self.cfg.uac.iter().map(|&u| UacTemplates::with_dial(u, target, self.rid, dial)).collect();
            self.target = target;
        }
    }

    fn run(mut self, cmds: Receiver<Cmd>, done: Sender<LoadStats>) {
        let mut rx = RecvBatch::new();
        let mut ready = vec![false; self.fds.len()];
        let mut hot = vec![false; self.fds.len()];
        loop {
            loop {
                match cmds.try_recv() {
                    Ok(Cmd::Probe(t)) => self.send_probe(t),
                    Ok(Cmd::Run(spec)) => self.start_run(spec),
                    Ok(Cmd::Abort) => self.abort_run(),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            }
            let now = self.now();
            self.pace(now);
            self.fire_timers(now);

            for si in 0..self.fds.len() {
                hot[si] = false;
                if !ready[si] {
                    continue;
                }
                for _ in 0..8 {
                    let n = rx.recv(self.fds[si]).unwrap_or_default();
                    if n == 0 {
                        break;
                    }
                    let now = self.now();
                    for k in 0..n {
                        let (data, from, trunc) = rx.get(k);
                        if trunc {
                            self.c.truncated += 1;
                            continue;
                        }
                        if si < self.n_uac {
                            self.on_uac(data, now);
                        } else {
                            self.on_uas(si, data, from, now);
                        }
                    }
                    if n < BATCH {
                        break;
                    }
                    hot[si] = true;
                }
            }
            for t in &mut self.tx {
                t.flush();
            }
            self.c.tx = self.tx.iter().map(|t| t.sent).sum();
            self.c.send_errors = self.tx.iter().map(|t| t.errors).sum();
            *self.shared.lock().unwrap_or_else(PoisonError::into_inner) = self.c;

            if self.run.as_ref().is_some_and(|r| r.started >= r.spec.calls && r.active == 0) {
                let stats = self.finish_run();
                if done.send(stats).is_err() {
                    return;
                }
            }

            // sleep until data, the next call or the next timer
            let now = self.now();
            let mut wait = IDLE_WAIT;
            if hot.iter().any(|&h| h) {
                wait = Duration::ZERO;
            }
            if let Some(r) = &self.run {
                if r.started < r.spec.calls {
                    let at = r.pacer.wake_at(r.started, r.spec.tick_ns);
                    wait = wait.min(Duration::from_nanos(at.saturating_sub(now)));
                }
            }
            if let Some(d) = self.wheel.next_in(IDLE_WAIT.as_millis() as u64) {
                let at = (now / 1_000_000 + d) * 1_000_000;
                wait = wait.min(Duration::from_nanos(at.saturating_sub(now)));
            }
            if sys::poll_in(&self.fds, &mut ready, Some(wait)).is_err() {
                ready.iter_mut().for_each(|r| *r = true);
            }
        }
    }

    // -------------------------------------------------------------- runs

    fn start_run(&mut self, spec: LoadSpec) {
        if self.run.is_some() {
            return;
        }
        self.templates(spec.target);
        // room for every call that can still be alive: two timeouts and a margin
        let live = spec.rate * (2 * self.cfg.timeout_ms + 6_000) as f64 / 1000.0;
        let want = (live.min(spec.calls as f64 + 1.0) as u64).clamp(4096, 1 << 22).next_power_of_two();
        if want > self.calls.len() as u64 {
            self.calls = vec![FREE_CALL; want as usize];
            self.mask = want - 1;
        }
        self.stats = LoadStats::default();
        if spec.samples {
            // every call at most once; the cap keeps a mistaken huge run from eating memory
            self.stats.setup_samples = Vec::with_capacity(spec.calls.min(1 << 26) as usize);
        }
        let now = self.now();
        self.run = Some(Run {
            spec,
            pacer: Pacer::new(now, spec.rate),
            started: 0,
            active: 0,
            t_first: now,
            t_last_start: now,
            t_end: now,
            cpu0: thread_sched(),
            max_lag_ns: 0,
        });
    }

    fn finish_run(&mut self) -> LoadStats {
        let Some(r) = self.run.take() else { return LoadStats::default() };
        let mut s = std::mem::take(&mut self.stats);
        s.load_s = r.t_end.saturating_sub(r.t_first) as f64 / 1e9;
        s.start_s = r.t_last_start.saturating_sub(r.t_first) as f64 / 1e9;
        let cpu = thread_sched();
        s.gen_cpu_s = cpu.0.saturating_sub(r.cpu0.0) as f64 / 1e9;
        s.gen_wakeups = cpu.1.saturating_sub(r.cpu0.1);
        s.max_lag_ms = r.max_lag_ns as f64 / 1e6;
        s.run_start = Some(self.base + Duration::from_nanos(r.t_first));
        s
    }

    fn abort_run(&mut self) {
        if self.run.is_none() {
            return;
        }
        for i in 0..self.calls.len() {
            if matches!(self.calls[i].st, St::Inviting | St::Proceeding | St::ByeSent | St::ByeProceeding) {
                self.fail(i, Fail::Other, self.now());
            }
        }
        self.stats.aborted = true;
        if let Some(r) = &mut self.run {
            r.spec.calls = r.started;
            r.active = 0;
        }
    }

    fn pace(&mut self, now: u64) {
        let Some(r) = &self.run else { return };
        if r.started >= r.spec.calls {
            return;
        }
        let due = r.pacer.due_count(r.pacer.tick_end(now, r.spec.tick_ns)).min(r.spec.calls);
        let limit = due.min(r.started + 512);
        while self.run.as_ref().is_some_and(|r| r.started < limit) {
            self.start_call(now);
        }
    }

    fn start_call(&mut self, now: u64) {
        let Some(r) = &mut self.run else { return };
        let lag = now.saturating_sub(r.pacer.due(r.started));
        r.max_lag_ns = r.max_lag_ns.max(lag);
        if r.started == 0 {
            r.t_first = now;
        }
        r.started += 1;
        r.active += 1;
        r.t_last_start = now;
        let target = r.spec.target;
        let n = self.next_n;
        self.next_n += 1;
        let idx = (n & self.mask) as usize;
        if matches!(self.calls[idx].st, St::Inviting | St::Proceeding | St::ByeSent | St::ByeProceeding) {
            self.fail(idx, Fail::Other, now); // table too small: cannot happen with the sizing above
        }
        self.calls[idx] =
            Call { n, st: St::Inviting, retx_ms: self.cfg.t1_ms as u32, bye_buf: NO_BUF, t_inv: now, t_bye: 0 };
        self.stats.attempted += 1;
        let u = self.uac_of(n);
        if let Some(tpl) = self.tpls.get(u) {
            let tx = &mut self.tx[u];
            let s = tx.data.len();
            tpl.invite.render(&mut tx.data, &digits(n));
            tx.commit(s, target);
        }
        self.wheel.add(now / 1_000_000 + self.cfg.t1_ms, Timer { kind: K_INV, idx: idx as u32, seq: n as u32 });
    }

    fn fail(&mut self, idx: usize, why: Fail, now: u64) {
        let c = &mut self.calls[idx];
        c.st = St::Failed;
        self.pool.put(c.bye_buf);
        c.bye_buf = NO_BUF;
        let s = &mut self.stats;
        s.failed += 1;
        match why {
            Fail::TimeoutInvite => s.fail_timeout_invite += 1,
            Fail::TimeoutBye => s.fail_timeout_bye += 1,
            Fail::Unexpected(code) => {
                s.fail_unexpected += 1;
                *s.unexpected.entry(code).or_default() += 1;
            }
            Fail::Other => s.fail_other += 1,
        }
        self.call_ended(now);
    }

    fn call_ended(&mut self, now: u64) {
        if let Some(r) = &mut self.run {
            r.active = r.active.saturating_sub(1);
            r.t_end = now;
        }
    }

    fn send_probe(&mut self, target: SocketAddrV4) {
        let tpl = UacTemplates::new(self.cfg.uac[0], target, self.rid);
        self.probe_n += 1;
        let tx = &mut self.tx[0];
        let s = tx.data.len();
        tpl.probe.render(&mut tx.data, &digits(self.probe_n));
        tx.commit(s, target);
    }

    // -------------------------------------------------------------- timers

    fn fire_timers(&mut self, now: u64) {
        let now_ms = now / 1_000_000;
        let mut fired = std::mem::take(&mut self.fired);
        self.wheel.expire(now_ms, &mut fired);
        for t in fired.drain(..) {
            match t.kind {
                K_INV => self.invite_timer(t, now),
                K_BYE => self.bye_timer(t, now),
                K_UAS => self.uas_timer(t, now),
                _ => {}
            }
        }
        self.fired = fired;
    }

    fn invite_timer(&mut self, t: Timer, now: u64) {
        let idx = t.idx as usize;
        let c = self.calls[idx];
        if c.n as u32 != t.seq || !matches!(c.st, St::Inviting | St::Proceeding) {
            return;
        }
        let now_ms = now / 1_000_000;
        let deadline = c.t_inv / 1_000_000 + self.cfg.timeout_ms;
        if now_ms >= deadline {
            self.fail(idx, Fail::TimeoutInvite, now);
            return;
        }
        let mut next = deadline;
        if c.st == St::Inviting {
            let u = self.uac_of(c.n);
            if let Some(tpl) = self.tpls.get(u) {
                let tx = &mut self.tx[u];
                let s = tx.data.len();
                tpl.invite.render(&mut tx.data, &digits(c.n));
                tx.commit(s, self.target);
                self.stats.retrans_invite += 1;
            }
            let r = c.retx_ms.saturating_mul(2);
            self.calls[idx].retx_ms = r;
            next = next.min(now_ms + u64::from(r));
        }
        self.wheel.add(next, t);
    }

    fn bye_timer(&mut self, t: Timer, now: u64) {
        let idx = t.idx as usize;
        let c = self.calls[idx];
        if c.n as u32 != t.seq || !matches!(c.st, St::ByeSent | St::ByeProceeding) {
            return;
        }
        let now_ms = now / 1_000_000;
        let deadline = c.t_bye / 1_000_000 + self.cfg.timeout_ms;
        if now_ms >= deadline {
            self.fail(idx, Fail::TimeoutBye, now);
            return;
        }
        let mut next = deadline;
        if c.st == St::ByeSent && c.bye_buf != NO_BUF {
            let u = self.uac_of(c.n);
            self.tx[u].push(&self.pool.bufs[c.bye_buf as usize], self.target);
            self.stats.retrans_bye += 1;
            let r = c.retx_ms.saturating_mul(2).min(T2_MS);
            self.calls[idx].retx_ms = r;
            next = next.min(now_ms + u64::from(r));
        }
        self.wheel.add(next, t);
    }

    fn uas_timer(&mut self, t: Timer, now: u64) {
        let i = t.idx as usize;
        let Some(e) = self.uas.get_mut(i) else { return };
        if e.seq != t.seq {
            return;
        }
        let now_ms = now / 1_000_000;
        let t0 = e.t / 1_000_000;
        if e.st == UasSt::Answered {
            if now_ms >= t0 + self.cfg.timeout_ms {
                e.st = UasSt::Confirmed; // give up retransmitting
                self.pool.put(e.buf);
                e.buf = NO_BUF;
                self.c.uas_no_ack += 1;
                self.wheel.add(t0 + UAS_EXPIRE_MS, t);
            } else {
                if e.buf != NO_BUF {
                    self.tx[e.si as usize].push(&self.pool.bufs[e.buf as usize], e.dst);
                    self.c.uas_retrans += 1;
                }
                e.retx_ms = e.retx_ms.saturating_mul(2).min(T2_MS);
                self.wheel.add((now_ms + u64::from(e.retx_ms)).min(t0 + self.cfg.timeout_ms), t);
            }
        } else if now_ms >= t0 + UAS_EXPIRE_MS {
            self.uas_free_entry(i);
        } else {
            self.wheel.add(t0 + UAS_EXPIRE_MS, t);
        }
    }

    // -------------------------------------------------------------- UAC

    fn on_uac(&mut self, data: &[u8], now: u64) {
        self.c.uac_rx += 1;
        let Some(sc) = Scan::parse(data) else {
            self.c.uac_rx_stray += 1;
            return;
        };
        if sc.request {
            self.c.uac_rx_stray += 1;
            return;
        }
        let cid = sc.call_id(data).unwrap_or_default();
        let n = parse_digits(cid);
        let is_probe = n.is_some() && &cid[NUM_W..] == self.probe_suffix.as_slice();
        if sc.status == 100 && !is_probe {
            // (answers to probes, 100 or not, are counted once: as probe answers)
            self.c.uac_rx_100 += 1;
        }
        let Some(n) = n else {
            self.c.uac_rx_stray += 1;
            return;
        };
        let rest = &cid[NUM_W..];
        if is_probe {
            self.c.uac_rx_probe += 1;
            if sc.status == 200 {
                self.c.probe_ok += 1;
            }
            return;
        }
        let idx = (n & self.mask) as usize;
        let c = self.calls[idx];
        if rest != self.call_suffix.as_slice() || c.n != n || c.st == St::Free {
            self.c.uac_rx_stray += 1;
            return;
        }
        let Some(method) = sc.cseq_method(data) else {
            self.c.uac_rx_stray += 1;
            return;
        };
        let status = sc.status;
        let active = |s: St| matches!(s, St::Inviting | St::Proceeding);
        if method == b"INVITE" {
            match status {
                100..=199 => {
                    if c.st == St::Inviting {
                        self.calls[idx].st = St::Proceeding;
                    }
                }
                200..=299 if active(c.st) => {
                    if sc.n_rrs > 0 {
                        self.c.uac_rx_route_set += 1;
                    }
                    let us = now.saturating_sub(c.t_inv) / 1_000;
                    self.stats.setup.record(us);
                    let s = &mut self.stats.setup_samples;
                    if s.len() < s.capacity() {
                        // (no allocation: the vector was sized for every call at the start)
                        let t0 = self.run.as_ref().map_or(0, |r| r.t_first);
                        let sent = c.t_inv.saturating_sub(t0) / 1_000;
                        s.push((sent.min(u64::from(u32::MAX)) as u32, us.min(u64::from(u32::MAX)) as u32));
                    }
                    self.answered(idx, n, data, &sc, now);
                }
                200..=299 => {
                    // a retransmitted 200: its ACK was lost, send it again
                    self.send_ack(n, data, &sc);
                    self.stats.acks_resent += 1;
                }
                _ if active(c.st) => {
                    self.send_nack(n, data, &sc);
                    self.fail(idx, Fail::Unexpected(status), now);
                }
                _ => {
                    self.send_nack(n, data, &sc);
                    self.stats.dup_responses += 1;
                }
            }
        } else if method == b"BYE" {
            let bye_active = matches!(c.st, St::ByeSent | St::ByeProceeding);
            match status {
                100..=199 => {
                    if c.st == St::ByeSent {
                        self.calls[idx].st = St::ByeProceeding;
                    }
                }
                200..=299 if bye_active => {
                    self.stats.bye.record(now.saturating_sub(c.t_bye) / 1_000);
                    let c = &mut self.calls[idx];
                    c.st = St::Done;
                    self.pool.put(c.bye_buf);
                    c.bye_buf = NO_BUF;
                    self.stats.succeeded += 1;
                    self.call_ended(now);
                }
                _ if bye_active && status >= 300 => self.fail(idx, Fail::Unexpected(status), now),
                _ => self.stats.dup_responses += 1,
            }
        } else {
            self.c.uac_rx_stray += 1;
        }
    }

    /// First 2xx to the INVITE: ACK, then BYE at once (sipp's `<pause/>` is 0 ms).
    fn answered(&mut self, idx: usize, n: u64, data: &[u8], sc: &Scan, now: u64) {
        let u = self.uac_of(n);
        let Some(tpl) = self.tpls.get(u) else { return };
        let num = digits(n);
        let tx = &mut self.tx[u];
        let s = tx.data.len();
        if !write_in_dialog(&mut tx.data, tpl, InDialog::Ack, &num, data, sc) {
            tx.data.truncate(s);
            self.fail(idx, Fail::Unexpected(sc.status), now);
            return;
        }
        tx.commit(s, self.target);
        let b = self.pool.get();
        let buf = &mut self.pool.bufs[b as usize];
        write_in_dialog(buf, tpl, InDialog::Bye, &num, data, sc);
        self.tx[u].push(buf, self.target);
        let c = &mut self.calls[idx];
        c.st = St::ByeSent;
        c.t_bye = now;
        c.retx_ms = self.cfg.t1_ms as u32;
        c.bye_buf = b;
        self.wheel.add(now / 1_000_000 + self.cfg.t1_ms, Timer { kind: K_BYE, idx: idx as u32, seq: n as u32 });
    }

    fn send_ack(&mut self, n: u64, data: &[u8], sc: &Scan) {
        let u = self.uac_of(n);
        let Some(tpl) = self.tpls.get(u) else { return };
        let tx = &mut self.tx[u];
        let s = tx.data.len();
        if write_in_dialog(&mut tx.data, tpl, InDialog::Ack, &digits(n), data, sc) {
            tx.commit(s, self.target);
        } else {
            tx.data.truncate(s);
        }
    }

    /// ACK of a non-2xx final response (same transaction, RFC 3261 §17.1.1.3).
    fn send_nack(&mut self, n: u64, data: &[u8], sc: &Scan) {
        let u = self.uac_of(n);
        let Some(tpl) = self.tpls.get(u) else { return };
        let tag = sc.to_tag(data).unwrap_or(b"none");
        let num = digits(n);
        let tx = &mut self.tx[u];
        let s = tx.data.len();
        tpl.nack_a.render(&mut tx.data, &num);
        tx.data.extend_from_slice(tag);
        tpl.ack_b.render(&mut tx.data, &num);
        tx.data.extend_from_slice(&tpl.tail);
        tx.commit(s, self.target);
    }

    // -------------------------------------------------------------- UAS

    fn on_uas(&mut self, si: usize, data: &[u8], from: SocketAddrV4, now: u64) {
        self.c.uas_rx += 1;
        let Some(sc) = Scan::parse(data) else {
            self.c.uas_rx_stray += 1;
            return;
        };
        if !sc.request {
            self.c.uas_rx_stray += 1;
            return;
        }
        match sc.method(data) {
            b"INVITE" => self.uas_invite(si, data, &sc, from, now),
            b"ACK" => {
                let e = self.uas_lookup(si, data, &sc);
                match e {
                    Some(i) if self.uas[i].st == UasSt::Answered => {
                        let e = &mut self.uas[i];
                        e.st = UasSt::Confirmed;
                        self.pool.put(e.buf);
                        e.buf = NO_BUF;
                    }
                    Some(_) => {} // a re-sent ACK
                    None => self.c.uas_rx_stray += 1,
                }
            }
            b"BYE" => {
                self.respond(si, data, &sc, from, b"SIP/2.0 200 OK", None, false);
                match self.uas_lookup(si, data, &sc) {
                    Some(i) => self.uas_free_entry(i),
                    None => {
                        // the dialog ended with the first BYE: this is a retransmission
                        self.c.uas_rx_retrans += 1;
                        self.c.uas_retrans += 1;
                    }
                }
            }
            b"OPTIONS" => {
                self.c.uas_rx_options += 1;
                self.respond(si, data, &sc, from, b"SIP/2.0 200 OK", None, false);
            }
            _ => self.respond(si, data, &sc, from, b"SIP/2.0 200 OK", None, false),
        }
    }

    fn uas_key(si: usize, cid: &[u8]) -> u64 {
        hash64(cid) ^ (si as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn uas_lookup(&self, si: usize, data: &[u8], sc: &Scan) -> Option<usize> {
        let cid = sc.call_id(data)?;
        let &i = self.uas_map.get(&Self::uas_key(si, cid))?;
        let e = &self.uas[i as usize];
        (e.cid == cid).then_some(i as usize)
    }

    fn uas_free_entry(&mut self, i: usize) {
        let e = &mut self.uas[i];
        if self.uas_map.get(&e.key) == Some(&(i as u32)) {
            self.uas_map.remove(&e.key);
        }
        self.pool.put(e.buf);
        e.buf = NO_BUF;
        e.seq = e.seq.wrapping_add(1);
        self.uas_free.push(i as u32);
    }

    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        si: usize,
        data: &[u8],
        sc: &Scan,
        from: SocketAddrV4,
        status: &[u8],
        to_tag: Option<u64>,
        invite: bool,
    ) {
        let parts = &self.uas_parts[si - self.n_uac];
        let spec = RespSpec {
            status_line: status,
            to_tag: Some(to_tag.unwrap_or_else(|| hash64(sc.call_id(data).unwrap_or_default()))),
            record_route: invite,
            contact: &parts.contact,
            body: (invite && status.starts_with(b"SIP/2.0 2")).then_some((&b"application/sdp"[..], &parts.sdp[..])),
        };
        let tx = &mut self.tx[si];
        let s = tx.data.len();
        if write_response(&mut tx.data, data, sc, &spec) {
            tx.commit(s, from);
        } else {
            tx.data.truncate(s);
            self.c.uas_rx_stray += 1;
        }
    }

    fn uas_invite(&mut self, si: usize, data: &[u8], sc: &Scan, from: SocketAddrV4, now: u64) {
        if sc.to_tag(data).is_some() {
            // re-INVITE: accept
            self.respond(si, data, sc, from, b"SIP/2.0 200 OK", None, true);
            return;
        }
        if let Some(i) = self.uas_lookup(si, data, sc) {
            // retransmitted INVITE: the same 200 again
            let tag = self.uas[i].tag;
            self.c.uas_rx_retrans += 1;
            self.c.uas_retrans += 1;
            self.respond(si, data, sc, from, b"SIP/2.0 200 OK", Some(tag), true);
            return;
        }
        let Some(cid) = sc.call_id(data) else {
            self.c.uas_rx_stray += 1;
            return;
        };
        self.uas_tag += 1;
        let tag = self.uas_tag;
        let key = Self::uas_key(si, cid);
        let i = match self.uas_free.pop() {
            Some(i) => i as usize,
            None => {
                self.uas.push(UasEntry {
                    key: 0,
                    cid: Vec::with_capacity(64),
                    tag: 0,
                    st: UasSt::Answered,
                    seq: 0,
                    t: 0,
                    retx_ms: 0,
                    buf: NO_BUF,
                    dst: from,
                    si: 0,
                });
                self.uas.len() - 1
            }
        };
        self.respond(si, data, sc, from, b"SIP/2.0 180 Ringing", Some(tag), true);
        // the 200 is kept for retransmission until the ACK
        let parts = &self.uas_parts[si - self.n_uac];
        let spec = RespSpec {
            status_line: b"SIP/2.0 200 OK",
            to_tag: Some(tag),
            record_route: true,
            contact: &parts.contact,
            body: Some((b"application/sdp", &parts.sdp)),
        };
        let b = self.pool.get();
        let buf = &mut self.pool.bufs[b as usize];
        write_response(buf, data, sc, &spec);
        self.tx[si].push(buf, from);
        let e = &mut self.uas[i];
        e.key = key;
        e.cid.clear();
        e.cid.extend_from_slice(cid);
        e.tag = tag;
        e.st = UasSt::Answered;
        e.seq = e.seq.wrapping_add(1);
        e.t = now;
        e.retx_ms = self.cfg.t1_ms as u32;
        e.buf = b;
        e.dst = from;
        e.si = si as u8;
        let seq = e.seq;
        if let Some(old) = self.uas_map.insert(key, i as u32) {
            // a hash collision with a live dialog: the old one is forgotten
            if old as usize != i {
                self.uas[old as usize].seq = self.uas[old as usize].seq.wrapping_add(1);
                self.pool.put(std::mem::replace(&mut self.uas[old as usize].buf, NO_BUF));
                self.uas_free.push(old);
            }
        }
        self.wheel.add(now / 1_000_000 + self.cfg.t1_ms, Timer { kind: K_UAS, idx: i as u32, seq });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// What the fake router saw.
    #[derive(Default, Debug)]
    struct Seen {
        trying_sent: u64,
        /// in-dialog requests (ACK, BYE) carrying exactly the router's own Route
        routed_by_route: u64,
        /// in-dialog requests without a Route
        no_route: u64,
        /// messages that did not parse or validate, or were misrouted
        bad: Vec<String>,
    }

    /// The sent-by of a Via line (`Via: SIP/2.0/UDP 127.0.0.1:5100;branch=...`).
    fn sent_by(line: &[u8]) -> Option<SocketAddrV4> {
        let v = std::str::from_utf8(line).ok()?;
        let rest = v.split_once("UDP ")?.1;
        rest.split(';').next()?.trim().parse().ok()
    }

    /// The host:port of a `sip:user@host:port` Request-URI.
    fn ruri_addr(uri: &[u8]) -> Option<SocketAddrV4> {
        let v = std::str::from_utf8(uri).ok()?;
        let hp = v.rsplit_once('@').map_or(v.trim_start_matches("sip:"), |(_, h)| h);
        hp.split(';').next()?.parse().ok()
    }

    /// A minimal router on `sock`. `stateful`: as a transaction-stateful proxy on the wire (it
    /// answers each new INVITE with its own 100 Trying, adds its Via and, on INVITEs, a
    /// Record-Route, forwards in-dialog requests along their Route to the Request-URI and
    /// pops its Via off the responses). Else the floor forwarder: everything unchanged,
    /// requests by Call-ID hash, responses to the top Via.
    fn fake_router(sock: UdpSocket, stateful: bool, uas: Vec<SocketAddrV4>, stop: Arc<AtomicBool>) -> Seen {
        let me = match sock.local_addr() {
            Ok(std::net::SocketAddr::V4(a)) => a,
            other => panic!("{other:?}"),
        };
        let my_route = format!("sip:{me};lr");
        let mut seen = Seen::default();
        let mut buf = vec![0u8; 65536];
        let mut branch = 0u64;
        sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, std::net::SocketAddr::V4(src))) = sock.recv_from(&mut buf) else { continue };
            let data = &buf[..n];
            let Some(sc) = sip::Scan::parse(data) else {
                seen.bad.push("unparsable".into());
                continue;
            };
            if !sc.request {
                // a response: pop our Via, send to the next one
                let top = sc.vias[0].line(data);
                let (out, next): (Vec<u8>, &[u8]) = if stateful {
                    let (s, e) = (sc.vias[0].line.0 as usize, sc.vias[0].line.1 as usize + 2);
                    if sent_by(top) != Some(me) || sc.n_vias < 2 {
                        seen.bad.push(format!("response without our Via on top: {}", String::from_utf8_lossy(data)));
                        continue;
                    }
                    ([&data[..s], &data[e..]].concat(), sc.vias[1].line(data))
                } else {
                    (data.to_vec(), top)
                };
                match sent_by(next) {
                    Some(dst) => {
                        let _ = sock.send_to(&out, dst);
                    }
                    None => seen.bad.push("response with an unusable Via".into()),
                }
                continue;
            }
            match ringsip_proto::Message::parse(data) {
                Ok(m) => {
                    if let Err(e) = m.validate() {
                        seen.bad.push(format!("{e}: {}", String::from_utf8_lossy(data)));
                    }
                }
                Err(e) => seen.bad.push(format!("{e}: {}", String::from_utf8_lossy(data))),
            }
            let method = sc.method(data);
            let in_dialog = sc.to_tag(data).is_some();
            let route_line = memchr::memmem::find(data, b"\r\nRoute: ").map(|p| p + 2);
            let mut out = Vec::with_capacity(n + 128);
            let dst = if in_dialog && stateful {
                let Some(rs) = route_line else {
                    seen.no_route += 1;
                    seen.bad.push(format!("in-dialog request without a Route: {}", String::from_utf8_lossy(data)));
                    continue;
                };
                let re = rs + memchr::memmem::find(&data[rs..], b"\r\n").unwrap() + 2;
                let route = &data[rs + 7..re - 2];
                if route != format!("<{my_route}>").as_bytes() {
                    seen.bad.push(format!("route set {}", String::from_utf8_lossy(route)));
                }
                seen.routed_by_route += 1;
                // loose routing: our Route entry goes, the Request-URI says where
                out.extend_from_slice(&data[..rs]);
                out.extend_from_slice(&data[re..]);
                let Some(d) = ruri_addr(&data[sc.ruri.0 as usize..sc.ruri.1 as usize]) else {
                    seen.bad.push("Request-URI without an address".into());
                    continue;
                };
                d
            } else {
                if in_dialog {
                    if route_line.is_some() {
                        seen.bad.push("the floor sent no Record-Route, yet a Route came".into());
                    }
                    seen.no_route += 1;
                }
                out.extend_from_slice(data);
                uas[(sip::hash64(sc.call_id(data).unwrap_or_default()) % uas.len() as u64) as usize]
            };
            if stateful {
                if method == b"INVITE" && !in_dialog {
                    let mut t = Vec::new();
                    let spec = sip::RespSpec {
                        status_line: b"SIP/2.0 100 Trying",
                        to_tag: None,
                        record_route: false,
                        contact: b"",
                        body: None,
                    };
                    assert!(sip::write_response(&mut t, data, &sc, &spec));
                    let _ = sock.send_to(&t, src);
                    seen.trying_sent += 1;
                }
                // our Via (and Record-Route on INVITEs) after the request line
                let rl = memchr::memchr(b'\n', &out).unwrap() + 1;
                branch += 1;
                let mut add = format!("Via: SIP/2.0/UDP {me};branch=z9hG4bKfake{branch}\r\n");
                if method == b"INVITE" {
                    add.push_str(&format!("Record-Route: <{my_route}>\r\n"));
                }
                out.splice(rl..rl, add.bytes());
            }
            let _ = sock.send_to(&out, dst);
        }
        seen
    }

    /// The generator's calls through a stateful router (100 Trying, Record-Route, ACK and BYE
    /// along the route set) and through the floor (no 100, no route set: ACK and BYE go to
    /// the router's address): every call completes, nothing is retransmitted or stray, and
    /// the 100s and route sets are counted.
    #[test]
    fn calls_through_a_stateful_router_and_the_floor() {
        let cpus = sys::thread_affinity().unwrap_or_default();
        for (stateful, base) in [(true, 26_000u16), (false, 26_200)] {
            let ip = std::net::Ipv4Addr::LOCALHOST;
            let router = SocketAddrV4::new(ip, base + 60);
            let uas = vec![SocketAddrV4::new(ip, base + 80), SocketAddrV4::new(ip, base + 81)];
            let sock = UdpSocket::bind(router).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let (st2, uas2) = (Arc::clone(&stop), uas.clone());
            let rt = std::thread::spawn(move || fake_router(sock, stateful, uas2, st2));
            let lg = GenHandle::start(GenConfig {
                uac: vec![SocketAddrV4::new(ip, base + 100)],
                uas,
                sock_buf: 1 << 20,
                // (long: a loaded test machine must not turn a late answer into a retransmission)
                t1_ms: 2_000,
                timeout_ms: 8_000,
                cpus: cpus.clone(),
                dial: None,
            })
            .unwrap();
            let end = Instant::now() + Duration::from_secs(5);
            while lg.counters().probe_ok == 0 && Instant::now() < end {
                lg.probe(router);
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(lg.counters().probe_ok > 0, "stateful={stateful}: the probe did not come back");
            let c0 = lg.counters();
            lg.start_load(LoadSpec { target: router, rate: 1000.0, calls: 300, tick_ns: 1_000_000, samples: false });
            let s = lg.wait_done(Duration::from_secs(30)).expect("the load ends");
            let c = lg.counters();
            drop(lg);
            stop.store(true, Ordering::Relaxed);
            let seen = rt.join().unwrap();
            assert!(seen.bad.is_empty(), "stateful={stateful}: {:#?}", &seen.bad[..seen.bad.len().min(3)]);
            assert_eq!((s.attempted, s.succeeded, s.failed), (300, 300, 0), "stateful={stateful}: {s:?}");
            let retrans = (s.retrans_invite, s.retrans_bye, s.acks_resent, s.dup_responses);
            assert_eq!(retrans, (0, 0, 0, 0), "stateful={stateful}");
            assert_eq!(c.uac_rx_stray - c0.uac_rx_stray, 0, "stateful={stateful}");
            assert_eq!(c.uas_rx_stray - c0.uas_rx_stray, 0, "stateful={stateful}");
            assert_eq!(c.uas_retrans - c0.uas_retrans, 0, "stateful={stateful}");
            assert_eq!(s.setup.count(), 300);
            // 180, 200, 200 (BYE) at the UAC besides the 100s; INVITE, ACK, BYE at the UAS
            let trying = c.uac_rx_100 - c0.uac_rx_100;
            assert_eq!(c.uac_rx - c0.uac_rx - trying, 900, "stateful={stateful}");
            assert_eq!(c.uas_rx - c0.uas_rx, 900, "stateful={stateful}");
            let route_sets = c.uac_rx_route_set - c0.uac_rx_route_set;
            if stateful {
                assert_eq!((trying, seen.trying_sent), (300, 300));
                assert_eq!(route_sets, 300);
                assert_eq!((seen.routed_by_route, seen.no_route), (600, 0));
            } else {
                assert_eq!((trying, route_sets), (0, 0));
                assert_eq!((seen.routed_by_route, seen.no_route), (0, 600));
            }
        }
    }
}
