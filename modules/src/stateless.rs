//! The stateless proxy (RFC 3261 §16.11): the per-shard [`Handler`] that runs the route
//! program on each request, forwards requests and responses, answers statelessly, and (on
//! shard 0) probes the dispatcher's destinations.
//!
//! Per request: the fields the proxy uses are checked (a malformed one gets `400` with the
//! reason in a `Warning`), ringsip's own entry is removed from the top of the Route set
//! (loose routing, §16.4), the request route runs, and a `forward` inserts ringsip's Via
//! (with a branch computed statelessly, so retransmissions and the CANCEL of an INVITE get the
//! same one), sets `received`/`rport` on the previous hop's Via (§18.2.1, RFC 3581), takes one
//! off Max-Forwards (`483` at zero) and refuses loops (`482`, §16.3).
//!
//! Per response: the top Via must be ringsip's (else dropped), probe answers are recorded,
//! everything else loses that Via and goes to the next Via's received/rport or sent-by.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringsip_config::{Algorithm, Config};
use ringsip_proto::proxy::{self, Branch, Fnv};
use ringsip_proto::{Edits, HeaderName, Message, Method, Via, chars};
use ringsip_runtime::{Datagram, Handler, HandlerFactory, Metrics, Outbox, ShardInfo, ShardStats};
use tracing::{debug, info, warn};

use crate::dispatcher::{Cursor, Dispatcher, Key, ProbeSend, Prober, Transition};
use crate::route::{Action, Ctx, Myself, Program, Pv, Rule, Table, ip_text, itoa};
use crate::stats::{DestStats, DropReason, ProxyStats, TxnStats};
use crate::sticky::Sticky;

/// Branch prefix of health probes: `z9hG4bKrsP<set>.<dest>.<seq>`.
pub const PROBE_PREFIX: &[u8] = b"z9hG4bKrsP";

/// How long the stickiness table remembers an INVITE's destination: Timer C is 3 minutes,
/// but a CANCEL or a non-2xx ACK comes within Timer B (64·T1 = 32 s).
const STICKY_TTL: Duration = Duration::from_secs(32);

/// Where metrics of every shard are registered (read by the exporter).
pub type Registry = Arc<Mutex<Vec<Arc<dyn Metrics>>>>;

/// One config snapshot as every shard runs it: read-only once published, except the
/// dispatcher's atomic health. A push builds a new one and publishes it with one atomic
/// pointer store ([`Published`]); each shard picks it up at its next batch.
#[derive(Debug)]
pub struct Shared {
    /// The snapshot's header (version, hash, build time); zero for configs not loaded from a
    /// snapshot (tests, benchmarks).
    pub meta: crate::snapshot::Meta,
    /// The config it was compiled from (tree entries left out: the trees are in `program`).
    pub config: Config,
    /// The `[[htable]]` tables. They outlive snapshots: a push keeps every table whose name
    /// it still configures (entries and all) and drops the others.
    pub htables: crate::htable::Tables,
    /// The dispatcher (health shared across shards).
    pub dispatcher: Arc<Dispatcher>,
    /// The compiled routes.
    pub program: Program,
    /// Per set: the pseudo-variable of algorithm 7.
    pub hash_pv: Vec<Option<Pv>>,
    /// Configured advertised host (`host[:port]`) for Via, if any.
    pub advertise: Option<String>,
    /// Stickiness table entries per shard.
    pub sticky_entries: usize,
}

/// Where the daemon publishes the current snapshot; shards load it once per batch.
pub type Published = Arc<arc_swap::ArcSwap<Shared>>;

impl Shared {
    /// Build from a validated config (tests and benchmarks; the daemon goes through a
    /// snapshot, [`Shared::from_snapshot`]).
    pub fn new(cfg: &Config) -> Result<Shared, String> {
        let dispatcher = Arc::new(Dispatcher::new(&cfg.dispatcher));
        let program =
            Program::compile(&cfg.routes, &cfg.mtrees, &cfg.htables, &cfg.acls, |id| dispatcher.set_index(id))?;
        let htables = htables_for(cfg, None);
        Ok(Shared::assemble(cfg.clone(), crate::snapshot::Meta::default(), dispatcher, program, htables))
    }

    /// Build from a checked snapshot. With `previous` (the snapshot running now), run-time
    /// state carries over by name: dispatcher health and operator overrides of destinations
    /// with the same set id and URI.
    pub fn from_snapshot(
        opened: crate::snapshot::Opened,
        previous: Option<&Shared>,
    ) -> Result<Shared, crate::snapshot::SnapshotError> {
        use crate::snapshot::SnapshotError;
        let cfg = opened.config;
        let dispatcher = Arc::new(Dispatcher::new(&cfg.dispatcher));
        let set_index = |id| dispatcher.set_index(id);
        let mut tables = Vec::with_capacity(opened.trees.len());
        for (t, (tree, distinct)) in cfg.mtrees.iter().zip(opened.trees) {
            tables.push(Table::new(&t.name, tree, &distinct, &set_index).map_err(SnapshotError::Invalid)?);
        }
        let names = cfg.mtrees.iter().map(|t| t.name.clone()).collect();
        let htable_names = cfg.htables.iter().map(|t| t.name.clone()).collect();
        let program = Program::with_tables(&cfg.routes, names, tables, htable_names, &cfg.acls, set_index)
            .map_err(SnapshotError::Invalid)?;
        for s in &cfg.dispatcher.sets {
            if s.algorithm == Algorithm::HashPv && s.hash_pv.is_none() {
                return Err(SnapshotError::Invalid(format!("dispatcher set {} uses hash-pv without hash_pv", s.id)));
            }
        }
        // everything is checked: from here on the running state is touched (tables kept by
        // name are reconfigured and reseeded)
        if let Some(prev) = previous {
            dispatcher.inherit(&prev.dispatcher);
        }
        let htables = htables_for(&cfg, previous.map(|p| &p.htables));
        Ok(Shared::assemble(cfg, opened.meta, dispatcher, program, htables))
    }

    fn assemble(
        cfg: Config,
        meta: crate::snapshot::Meta,
        dispatcher: Arc<Dispatcher>,
        program: Program,
        htables: crate::htable::Tables,
    ) -> Shared {
        let hash_pv = cfg.dispatcher.sets.iter().map(|s| s.hash_pv.as_ref().map(crate::route::compile_pv)).collect();
        Shared {
            meta,
            dispatcher,
            program,
            hash_pv,
            advertise: cfg.server.advertise.clone(),
            sticky_entries: cfg.server.sticky_entries,
            config: cfg,
            htables,
        }
    }
}

/// The htables of `cfg`: the previous snapshot's tables of the same names (their entries
/// kept, their settings updated), new empty tables for new names; then every seed entry is
/// written (a seed overwrites a run-time value of the same key).
fn htables_for(cfg: &Config, previous: Option<&crate::htable::Tables>) -> crate::htable::Tables {
    use crate::htable::{Spec, Tables, Value};
    let specs: Vec<Spec> = cfg
        .htables
        .iter()
        .map(|t| Spec { name: t.name.clone(), max_entries: t.max_entries, autoexpire: t.autoexpire })
        .collect();
    let mut tables = match previous {
        Some(p) => p.reconcile(&specs),
        None => Tables::new(&specs),
    };
    // the flood detector keeps its counts across a push that leaves its settings alone
    tables.pike = cfg.pike.as_ref().map(|pk| {
        match previous
            .and_then(|p| p.pike.as_ref())
            .filter(|old| old.same_settings(pk.window, pk.limit, pk.max_sources))
        {
            Some(old) => old.clone(),
            None => Arc::new(crate::pike::Pike::new(pk.window, pk.limit, pk.max_sources)),
        }
    });
    let now = Instant::now();
    for t in &cfg.htables {
        let Some(table) = tables.by_name(&t.name) else { continue };
        for seed in &t.seeds {
            let value = match &seed.value {
                ringsip_config::HtableValue::Int(i) => Value::Int(*i),
                ringsip_config::HtableValue::Text(s) => Value::Text(s.as_bytes().into()),
            };
            if let Err(e) = table.set(seed.key.as_bytes(), value, seed.expires, now) {
                warn!(table = %t.name, key = %seed.key, error = %e, "seed entry not written");
            }
        }
    }
    tables
}

/// Builds a [`StatelessProxy`] per shard.
pub struct Factory {
    /// The published snapshot.
    pub current: Published,
    /// Metrics registry.
    pub registry: Registry,
    /// The shards' hand-off queues, made by the first shard that starts.
    handoff: std::sync::OnceLock<Arc<stateful::Handoff>>,
}

impl Factory {
    /// A factory whose shards run `shared` (until something publishes another snapshot in
    /// [`Factory::current`]).
    pub fn new(shared: Arc<Shared>, registry: Registry) -> Factory {
        Factory { current: Arc::new(arc_swap::ArcSwap::new(shared)), registry, handoff: std::sync::OnceLock::new() }
    }
}

impl HandlerFactory for Factory {
    type Handler = StatelessProxy;

    fn make(&self, shard: &ShardInfo, io_stats: Arc<ShardStats>) -> StatelessProxy {
        let shared = self.current.load_full();
        let d = &shared.dispatcher;
        let stats = Arc::new(ProxyStats::new(d, shard.place.shard == 0));
        let txn_stats = Arc::new(TxnStats { shard: shard.place.shard.to_string(), ..TxnStats::default() });
        if let Ok(mut r) = self.registry.lock() {
            r.push(io_stats);
            r.push(stats.clone());
            r.push(txn_stats.clone());
        }
        let now = Instant::now();
        let handoff = self.handoff.get_or_init(|| Arc::new(stateful::Handoff::new(shard.shards))).clone();
        // generations start somewhere different on every start, so branches are unique
        // across restarts too
        let seed = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
            as u32)
            .wrapping_mul(0x9E37_79B9)
            ^ (shard.place.shard as u32).wrapping_mul(0x85EB_CA6B);
        let mut p = StatelessProxy {
            shard: shard.place.shard,
            listen: shard.listen.clone(),
            sent_by: Vec::new(),
            myself: Myself { addrs: shard.listen.clone(), names: Vec::new() },
            sel: Selector {
                cursor: Cursor::new(d, 0x9E37_79B9 ^ (shard.place.shard as u64 + 1)),
                sticky: Sticky::new(shared.sticky_entries, STICKY_TTL),
            },
            prober: (shard.place.shard == 0).then(|| Prober::new(d, now)),
            probes: Vec::new(),
            changes: Vec::new(),
            dests: stats.dests.load_full(),
            current: arc_swap::Cache::new(self.current.clone()),
            txns: table::Table::new(limits(&shared.config), now, seed),
            txn_stats,
            handoff,
            drain_pending: false,
            // room for the largest datagram plus edits: writing never grows them
            fwd_scratch: stateful::Scratch::new(SCRATCH_BYTES),
            out_scratch: stateful::Scratch::new(SCRATCH_BYTES),
            branch_finder: memchr::memmem::Finder::new(&table::write_branch(0, 0, 0, 0, 0)).into_owned(),
            media: None,
            shards: shard.shards,
            shared,
            stats,
        };
        if let (Some(cfg), Some(ports)) = (&p.shared.config.media, shard.media_ports.clone()) {
            let ms = Arc::new(media::MediaRelayStats { shard: shard.place.shard.to_string(), ..Default::default() });
            match media::MediaState::new(cfg, ports, now, ms.clone()) {
                Ok(m) => {
                    if let Ok(mut r) = self.registry.lock() {
                        r.push(ms);
                    }
                    p.media = Some(m);
                }
                Err(e) => warn!(shard = shard.place.shard, error = %e, "media relay not started on this shard"),
            }
        }
        p.set_names();
        p
    }
}

/// What a route run reads for message `m` of datagram `d`.
fn route_ctx<'m, 'a>(m: &'m Message<'a>, d: &Datagram<'_>, myself: &'m Myself, shared: &'m Shared) -> Ctx<'m, 'a> {
    Ctx {
        msg: m,
        src: d.src,
        local: d.local,
        du: None,
        myself,
        trees: &shared.program.trees,
        mt: None,
        htables: &shared.htables,
        acls: &shared.program.acls,
        now: d.now,
        failure: None,
    }
}

fn host_of(hostport: &str) -> &str {
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    hostport.split(':').next().unwrap_or(hostport)
}

/// One shard's stateless proxy.
pub struct StatelessProxy {
    shard: usize,
    listen: Vec<SocketAddr>,
    sent_by: Vec<Box<[u8]>>,
    myself: Myself,
    sel: Selector,
    prober: Option<Prober>,
    probes: Vec<ProbeSend>,
    changes: Vec<Transition>,
    /// The snapshot this shard runs (refreshed from `current` once per batch).
    shared: Arc<Shared>,
    current: arc_swap::Cache<Published, Arc<Shared>>,
    stats: Arc<ProxyStats>,
    /// The media relay of this shard, when `[media]` is configured.
    media: Option<media::MediaState>,
    /// How many shards run.
    shards: usize,
    /// This shard's per-destination counters for `shared`'s dispatcher.
    dests: Arc<DestStats>,
    /// This shard's transactions.
    txns: table::Table,
    txn_stats: Arc<TxnStats>,
    /// Every shard's hand-off queue.
    handoff: Arc<stateful::Handoff>,
    /// The hand-off queue is looked at before the first datagram of a batch.
    drain_pending: bool,
    /// Where a relayed request is written before its transaction exists.
    fwd_scratch: stateful::Scratch,
    /// Where the transaction layer writes a message before keeping it in a pooled buffer.
    out_scratch: stateful::Scratch,
    /// Finds the placeholder branch in a relayed request (built once).
    branch_finder: memchr::memmem::Finder<'static>,
}

/// Capacity of a shard's write scratch buffers (the largest datagram plus edits).
const SCRATCH_BYTES: usize = 65_536 + 8192;

/// What a route decided.
#[derive(Clone, Copy, Debug)]
enum Outcome<'p> {
    Forward(Option<SocketAddr>),
    Relay(Option<SocketAddr>),
    Reply(u16, &'p [u8]),
    Drop,
    End,
}

/// Header changes a route asked for: (action, rendered value range in the scratch buffer).
#[derive(Clone, Copy)]
struct HeaderOp<'p> {
    action: &'p Action,
    value: (usize, usize),
}

const MAX_HEADER_OPS: usize = 8;

pub(crate) struct RouteRun<'p> {
    outcome: Outcome<'p>,
    selected: Option<(usize, usize)>,
    ops: arrayvec::ArrayVec<HeaderOp<'p>, MAX_HEADER_OPS>,
    /// After `lookup ... all`: the tree and the distinct values of every match, longest first.
    chain: Chain,
    /// `record_route` ran.
    record_route: bool,
    /// `on_failure` / `on_reply` armed these named routes.
    on_failure: Option<usize>,
    on_reply: Option<usize>,
    /// What `select next` walks: built by `select`, carried by the transaction.
    alts: table::Alts,
    /// In a failure route: the destination of the branch that failed (for `mark_down`).
    failed: Option<(usize, usize)>,
    /// `fork`: a branch to every available destination of the selected set.
    fork: bool,
    /// `anchor_media` ran, with these flags.
    anchor: Option<ringsip_config::AnchorFlags>,
}

impl RouteRun<'_> {
    fn new(outcome: Outcome<'_>) -> RouteRun<'_> {
        RouteRun {
            outcome,
            selected: None,
            ops: arrayvec::ArrayVec::new(),
            chain: Chain::default(),
            record_route: false,
            on_failure: None,
            on_reply: None,
            alts: table::Alts::default(),
            failed: None,
            fork: false,
            anchor: None,
        }
    }
}

/// How a request's next hop follows its Route set: how many of ringsip's own entries to
/// pop, and the Request-URI to restore after a strict router (§16.4).
pub(crate) struct Hop<'a> {
    pop: usize,
    strict_uri: Option<&'a [u8]>,
}

/// Most matches `lookup ... all` keeps (prefixes of one number rarely nest deeper).
const MAX_CHAIN: usize = 8;

#[derive(Clone, Copy, Default)]
struct Chain {
    tree: usize,
    values: [u32; MAX_CHAIN],
    len: usize,
}

enum Flow {
    Next,
    Return,
    Stop,
}

/// The mutable selection state of a shard.
struct Selector {
    cursor: Cursor,
    sticky: Sticky,
}

/// What a route run works with: the shard's read-only parts and its selection state.
struct Env<'p, 'm> {
    shared: &'p Shared,
    dests: &'m DestStats,
    stats: &'m ProxyStats,
    sel: &'m mut Selector,
    /// When the message's batch was received.
    now: Instant,
}

impl<'p> Env<'p, '_> {
    /// Run a route; `depth` guards against runaway recursion (the config refuses cycles).
    fn run(
        &mut self,
        rules: &'p [Rule],
        ctx: &mut Ctx<'_, '_>,
        run: &mut RouteRun<'p>,
        scratch: &mut [u8],
        used: &mut usize,
        depth: usize,
    ) -> Flow {
        if depth > 16 {
            run.outcome = Outcome::Drop;
            return Flow::Stop;
        }
        for rule in rules {
            if let Some(cond) = &rule.cond {
                if !ctx.eval(cond) {
                    continue;
                }
            }
            for action in &rule.actions {
                match self.act(action, ctx, run, scratch, used, depth) {
                    Flow::Next => {}
                    other => return other,
                }
            }
        }
        Flow::Next
    }

    fn act(
        &mut self,
        action: &'p Action,
        ctx: &mut Ctx<'_, '_>,
        run: &mut RouteRun<'p>,
        scratch: &mut [u8],
        used: &mut usize,
        depth: usize,
    ) -> Flow {
        let shared = self.shared;
        match action {
            Action::Forward(target) => {
                run.outcome = Outcome::Forward(target.as_ref().map(|(a, _)| *a));
                Flow::Stop
            }
            Action::Reply(code, reason) => {
                run.outcome = Outcome::Reply(*code, reason);
                Flow::Stop
            }
            Action::Drop => {
                run.outcome = Outcome::Drop;
                Flow::Stop
            }
            Action::Return => Flow::Return,
            Action::Route(i) => match self.run(&shared.program.named[*i], ctx, run, scratch, used, depth + 1) {
                Flow::Stop => Flow::Stop,
                Flow::Next | Flow::Return => Flow::Next,
            },
            Action::Select(set, otherwise) => match self.select(*set, ctx) {
                Some(dest) => {
                    run.selected = Some((*set, dest));
                    run.alts.clear();
                    self.add_alts(&mut run.alts, *set, dest);
                    run.alts.pos = 1;
                    ctx.du = None;
                    Flow::Next
                }
                None => match otherwise {
                    Some(o) => self.act(o, ctx, run, scratch, used, depth),
                    None => Flow::Next,
                },
            },
            Action::Lookup(tree, key, all, otherwise) => {
                let table = &shared.program.trees[*tree];
                run.chain.len = 0;
                let found = match key.render(ctx, &mut scratch[*used..]) {
                    Some(n) => {
                        let key = &scratch[*used..*used + n];
                        if *all {
                            run.chain.tree = *tree;
                            run.chain.len = table.chain(key, &mut run.chain.values);
                        }
                        table.longest_index(key)
                    }
                    None => None,
                };
                ctx.mt = found.map(|v| (*tree, v));
                match (found, otherwise) {
                    (None, Some(o)) => self.act(o, ctx, run, scratch, used, depth),
                    _ => Flow::Next,
                }
            }
            Action::SelectLookup(otherwise) => {
                let chain = run.chain;
                let table = ctx.mt.map(|(t, _)| &shared.program.trees[t]);
                // the longest match's value, then (after `lookup ... all`) the shorter ones'
                let longest = ctx.mt.and_then(|(t, v)| shared.program.trees[t].value(v));
                let mut tried = [usize::MAX; 16];
                let mut n_tried = 0;
                for k in 0..chain.len.max(1) {
                    let value = if chain.len == 0 { longest } else { table.and_then(|t| t.distinct(chain.values[k])) };
                    let Some(value) = value else { continue };
                    if let Some((set, dest)) = self.select_from(value, ctx, &mut tried, &mut n_tried) {
                        run.selected = Some((set, dest));
                        // alternatives: this set's other destinations, then every set of
                        // this and the shorter prefixes, in order
                        run.alts.clear();
                        self.add_alts(&mut run.alts, set, dest);
                        for j in k..chain.len.max(1) {
                            let v =
                                if chain.len == 0 { longest } else { table.and_then(|t| t.distinct(chain.values[j])) };
                            for &s in v.map(|v| &v.sets[..]).unwrap_or(&[]) {
                                if s != set {
                                    self.add_alts(&mut run.alts, s, usize::MAX);
                                }
                            }
                        }
                        run.alts.pos = 1;
                        ctx.du = None;
                        return Flow::Next;
                    }
                }
                match otherwise {
                    Some(o) => self.act(o, ctx, run, scratch, used, depth),
                    None => Flow::Next,
                }
            }
            Action::SetHeader(_, _, t) | Action::AppendHeader(_, t) => {
                let Some(n) = t.render(ctx, &mut scratch[*used..]) else {
                    run.outcome = Outcome::Drop;
                    return Flow::Stop;
                };
                if run.ops.try_push(HeaderOp { action, value: (*used, *used + n) }).is_err() {
                    warn!("more than {MAX_HEADER_OPS} header changes in one route; the rest are ignored");
                }
                *used += n;
                Flow::Next
            }
            Action::RemoveHeader(..) => {
                let _ = run.ops.try_push(HeaderOp { action, value: (0, 0) });
                Flow::Next
            }
            Action::Sht(w) => {
                // a failed write is counted and the route goes on: a full ban table must not
                // turn into dropped calls
                if let Err(e) = ctx.write_sht(w, &mut scratch[*used..]) {
                    self.stats.htable_write_errors.inc();
                    let table = shared.program.htable_names.get(w.table()).map_or("?", String::as_str);
                    debug!(table, error = %e, "htable write from a route failed; the route goes on");
                }
                Flow::Next
            }
            Action::Relay(target) => {
                run.outcome = Outcome::Relay(target.as_ref().map(|(a, _)| *a));
                Flow::Stop
            }
            Action::RecordRoute => {
                run.record_route = true;
                Flow::Next
            }
            Action::AnchorMedia(flags) => {
                run.anchor = Some(*flags);
                Flow::Next
            }
            Action::Fork => {
                run.fork = true;
                run.outcome = Outcome::Relay(None);
                Flow::Stop
            }
            Action::OnFailure(r) => {
                run.on_failure = Some(*r);
                Flow::Next
            }
            Action::OnReply(r) => {
                run.on_reply = Some(*r);
                Flow::Next
            }
            Action::SelectNext(otherwise) => {
                // the next alternative that is up (and not the one that just failed)
                let d = &shared.dispatcher;
                while run.alts.pos < run.alts.len {
                    let (set, dest) = run.alts.list[run.alts.pos as usize];
                    run.alts.pos += 1;
                    let (set, dest) = (set as usize, dest as usize);
                    if Some((set, dest)) != run.failed
                        && d.sets.get(set).and_then(|s| s.dests.get(dest)).is_some_and(|x| x.available())
                    {
                        self.dests.selected[set][dest].inc();
                        run.selected = Some((set, dest));
                        ctx.du = None;
                        return Flow::Next;
                    }
                }
                match otherwise {
                    Some(o) => self.act(o, ctx, run, scratch, used, depth),
                    None => Flow::Next,
                }
            }
            Action::MarkDown => {
                if let Some((set, dest)) = run.failed {
                    let d = &shared.dispatcher.sets[set].dests[dest];
                    if d.is_active() {
                        d.mark_active(false);
                        self.stats.dest_transitions.inc();
                        warn!(set = shared.dispatcher.sets[set].id, destination = %d.uri, "destination marked down after a failed branch; probes bring it back");
                    }
                }
                Flow::Next
            }
        }
    }

    /// Add the destinations of `set` to `alts`: `first` (when it is one of them), then the
    /// others in the set's order after it.
    fn add_alts(&self, alts: &mut table::Alts, set: usize, first: usize) {
        let Some(s) = self.shared.dispatcher.sets.get(set) else { return };
        let n = s.dests.len();
        let start = if first < n { first } else { 0 };
        for k in 0..n {
            alts.push(set, (start + k) % n);
        }
    }

    /// Pick a destination from the sets of an mtree value. Weighted values draw the first set
    /// in proportion to the weights, then try the others by descending weight; unweighted
    /// values try their sets in order. Sets already in `tried` are skipped (a set that had
    /// nothing available for a longer prefix has nothing for a shorter one either).
    fn select_from(
        &mut self,
        value: &crate::route::MtValue,
        ctx: &Ctx<'_, '_>,
        tried: &mut [usize; 16],
        n_tried: &mut usize,
    ) -> Option<(usize, usize)> {
        let (sets, weights) = (&value.sets[..], &value.weights[..]);
        let first = if weights.is_empty() {
            None
        } else {
            let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
            let mut r = self.sel.cursor.random_below(total);
            weights.iter().position(|&w| {
                if r < u64::from(w) {
                    true
                } else {
                    r -= u64::from(w);
                    false
                }
            })
        };
        let order = first.into_iter().chain((0..sets.len()).filter(|&i| Some(i) != first));
        for i in order {
            let set = sets[i];
            if tried[..*n_tried].contains(&set) {
                continue;
            }
            if *n_tried < tried.len() {
                tried[*n_tried] = set;
                *n_tried += 1;
            }
            if let Some(dest) = self.select(set, ctx) {
                return Some((set, dest));
            }
        }
        None
    }

    /// Pick a destination of `set` for `m`: the one a recent INVITE of the same call went to
    /// (CANCEL, ACK, and anything that is not an initial INVITE), else the set's algorithm.
    fn select(&mut self, set: usize, ctx: &Ctx<'_, '_>) -> Option<usize> {
        let m = ctx.msg;
        let d = &self.shared.dispatcher;
        let call_id = m.call_id().unwrap_or(b"");
        let from_tag = m.from().ok().and_then(|f| f.tag()).unwrap_or(b"");
        let key = Fnv::new().mix(call_id).mix(from_tag).finish();
        let initial_invite = m.method() == Some(Method::Invite) && m.to().ok().is_none_or(|t| t.tag().is_none());
        let now = self.now;
        if !initial_invite {
            if let Some(dest) = self.sel.sticky.get(key, set, now) {
                if d.sets[set].dests[dest].available() {
                    self.dests.selected[set][dest].inc();
                    return Some(dest);
                }
            }
        }
        let mut hbuf = [0u8; 48];
        let mut nbuf = [0u8; 20];
        let hash_key: Key<'_> = match d.sets[set].algorithm {
            Algorithm::HashCallId => Key::Bytes(call_id),
            Algorithm::HashFromUri => m.from().map_or(Key::None, |f| Key::Bytes(f.uri().as_bytes())),
            Algorithm::HashToUri => m.to().map_or(Key::None, |t| Key::Bytes(t.uri().as_bytes())),
            Algorithm::HashRUriUser => m.request_uri().ok().and_then(|u| u.user()).map_or(Key::None, Key::Bytes),
            Algorithm::HashAuthUser => auth_user(m).map_or(Key::None, Key::Bytes),
            Algorithm::HashPv => match self.shared.hash_pv[set].as_ref().map(|pv| ctx.fetch(pv)) {
                Some(crate::route::Val::Bytes(b)) => Key::Bytes(b),
                Some(crate::route::Val::Int(i)) => Key::Bytes(itoa(i, &mut nbuf)),
                Some(crate::route::Val::Ip(ip)) => Key::Bytes(ip_text(ip, &mut hbuf)),
                _ => Key::None,
            },
            _ => Key::None,
        };
        let dest = d.select(set, hash_key, &mut self.sel.cursor)?;
        if initial_invite {
            self.sel.sticky.put(key, set, dest, now);
        }
        self.dests.selected[set][dest].inc();
        Some(dest)
    }
}

impl StatelessProxy {
    /// Via sent-by and `myself` names from the snapshot's `advertise`.
    fn set_names(&mut self) {
        let adv = &self.shared.advertise;
        self.sent_by = self
            .listen
            .iter()
            .map(|a| match adv {
                Some(adv) => adv.as_bytes().into(),
                None => a.to_string().into_bytes().into(),
            })
            .collect();
        self.myself.names = adv.iter().map(|a| host_of(a).as_bytes().into()).collect();
    }

    /// Pick up a newly published snapshot, if any: one atomic load when nothing changed.
    /// On a change, the shard's own state moves over by name: round-robin positions restart,
    /// stickiness entries follow their destinations (or are forgotten with them), the
    /// per-destination counters carry their totals, and shard 0 restarts its prober on the
    /// new sets (health itself was carried over when the snapshot was built). The old
    /// snapshot is freed when the last shard lets go of it.
    fn refresh(&mut self) {
        let cur = self.current.load();
        if Arc::ptr_eq(cur, &self.shared) {
            return;
        }
        let started = Instant::now();
        let new = cur.clone();
        let old = std::mem::replace(&mut self.shared, new);
        let d = &self.shared.dispatcher;
        self.sel.cursor = Cursor::new(d, 0x9E37_79B9 ^ (self.shard as u64 + 1));
        let (od, nd) = (&old.dispatcher, d);
        self.sel.sticky.remap(|set, dest| {
            let os = od.sets.get(set)?;
            let odest = os.dests.get(dest)?;
            let ns = nd.sets.iter().position(|s| s.id == os.id)?;
            let ndest = nd.sets[ns].dests.iter().position(|x| x.uri == odest.uri && x.addr == odest.addr)?;
            Some((ns, ndest))
        });
        let dests = Arc::new(DestStats::new(d, Some(&self.dests)));
        self.stats.dests.store(dests.clone());
        self.dests = dests;
        if self.prober.is_some() {
            self.prober = Some(Prober::new(d, Instant::now()));
        }
        self.set_names();
        self.txns.limits = limits(&self.shared.config);
        if self.txns.live > 0 {
            self.remap_txns(&old);
        }
        // the old snapshot is freed by whoever lets go last: the daemon keeps a reference
        // until no shard holds one, so that is not this shard
        drop(old);
        let took = started.elapsed();
        self.stats.adopted.inc();
        self.stats.adopt_ns.set(took.as_nanos() as u64);
        debug!(
            shard = self.shard,
            version = self.shared.meta.version,
            took_us = took.as_micros() as u64,
            "shard runs the new snapshot"
        );
    }

    fn our_listen_for(&self, dest: &SocketAddr, preferred: usize) -> usize {
        if self.listen.get(preferred).is_some_and(|l| l.is_ipv4() == dest.is_ipv4()) {
            return preferred;
        }
        self.listen.iter().position(|l| l.is_ipv4() == dest.is_ipv4()).unwrap_or(preferred)
    }

    /// Is this Via one ringsip wrote (its sent-by is one of ringsip's)?
    fn is_our_sent_by(&self, v: &Via<'_>) -> bool {
        let port = v.port().unwrap_or(5060);
        match v.host().ip() {
            Some(ip) => self.listen.iter().any(|l| l.ip() == ip && l.port() == port),
            None => self.myself.names.iter().any(|n| n.eq_ignore_ascii_case(v.host_bytes())),
        }
    }

    fn reply(
        &self,
        m: &Message<'_>,
        d: &Datagram<'_>,
        code: u16,
        reason: &[u8],
        warning: Option<&[u8]>,
        out: &mut Outbox<'_>,
    ) {
        self.reply_with(m, d, code, reason, warning, None, out)
    }

    /// [`StatelessProxy::reply`] with one more header line (`Name: value`), like
    /// `Retry-After`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reply_with(
        &self,
        m: &Message<'_>,
        d: &Datagram<'_>,
        code: u16,
        reason: &[u8],
        warning: Option<&[u8]>,
        header: Option<&[u8]>,
        out: &mut Outbox<'_>,
    ) {
        if m.method() == Some(Method::Ack) {
            // an ACK is never answered
            self.stats.dropped(DropReason::Ack);
            return;
        }
        let Ok(via) = m.via() else {
            self.stats.dropped(DropReason::Unanswerable);
            return;
        };
        let dest = proxy::reply_hop(via, d.src);
        // a To tag that is the same for every retransmission of the request
        let mut tag = [0u8; 16];
        let h =
            Fnv::new().mix(m.call_id().unwrap_or(b"")).mix(m.from().ok().and_then(|f| f.tag()).unwrap_or(b"")).finish();
        hex(h, &mut tag);
        let mut warn_line = [0u8; 256];
        let mut extra: arrayvec::ArrayVec<&[u8], 3> = arrayvec::ArrayVec::new();
        extra.push(b"Server: ringsip");
        if let Some(w) = warning {
            let prefix = b"Warning: 399 ringsip \"";
            let w = &w[..w.len().min(warn_line.len() - prefix.len() - 1)];
            warn_line[..prefix.len()].copy_from_slice(prefix);
            warn_line[prefix.len()..prefix.len() + w.len()].copy_from_slice(w);
            // a quoted string: no quotes or backslashes inside
            for b in &mut warn_line[prefix.len()..prefix.len() + w.len()] {
                if *b == b'"' || *b == b'\\' {
                    *b = b'\'';
                }
            }
            warn_line[prefix.len() + w.len()] = b'"';
            extra.push(&warn_line[..prefix.len() + w.len() + 1]);
        }
        if let Some(h) = header {
            extra.push(h);
        }
        let li = self.our_listen_for(&dest, d.listen);
        if out.send(li, dest, |buf| proxy::write_reply(m, d.src, code, reason, &tag, &extra, buf)) {
            self.stats.reply(code);
        } else {
            self.stats.dropped(DropReason::Write);
        }
    }

    fn request(&mut self, m: &Message<'_>, d: &Datagram<'_>, out: &mut Outbox<'_>) {
        let method = m.method_bytes().unwrap_or(b"");
        let mi = ProxyStats::method_index(method);
        self.stats.requests[mi].inc();
        // the fields a stateless proxy reads must be sound (RFC 3261 §16.3 step 1)
        if let Err(e) = m.via() {
            self.stats.parse_errors.inc();
            self.stats.dropped(DropReason::Unanswerable);
            debug!(src = %d.src, error = %e, "request without a usable Via dropped");
            return;
        }
        let checked = m
            .request_uri()
            .map(|_| ())
            .and(m.cseq().map(|_| ()))
            .and(m.call_id().map(|_| ()))
            .and(m.from().map(|_| ()))
            .and(m.to().map(|_| ()))
            .and(m.max_forwards().map(|_| ()));
        if let Err(e) = checked {
            self.stats.parse_errors.inc();
            let mut why = [0u8; 200];
            let n = {
                use std::io::Write;
                let mut c = std::io::Cursor::new(&mut why[..]);
                let _ = write!(c, "{e}");
                c.position() as usize
            };
            self.reply(m, d, e.status(), b"Bad Request", Some(&why[..n]), out);
            return;
        }
        if m.cseq().is_ok_and(|c| c.method != method) {
            self.stats.parse_errors.inc();
            self.reply(m, d, 400, b"Bad Request", Some(b"CSeq method does not match the request method"), out);
            return;
        }

        // an in-dialog request of a call whose media another shard anchored goes there (its
        // Record-Route named the shard), retransmissions included
        if self.shards > 1
            && self.media.is_some()
            && let Some(owner) = self.media_owner(m)
            && owner != self.shard
            && owner < self.shards
        {
            self.hand_off(owner, d);
            return;
        }

        // a retransmission, a CANCEL or the ACK of a transaction this shard holds is the
        // transaction's (§17.2.3), before any route runs
        if self.txn_request(m, d, out) {
            return;
        }

        // loose routing: drop ringsip's own entries from the top of the Route set (§16.4; a
        // double Record-Route leaves two)
        let mut pop = 0;
        let mut next_route = None;
        for r in m.routes() {
            match &r {
                Ok(v) if self.myself.has_uri(v.uri()) => pop += 1,
                _ => {
                    next_route = Some(r);
                    break;
                }
            }
        }
        if let Some(Err(e)) = &next_route {
            self.stats.parse_errors.inc();
            let _ = e;
            self.reply(m, d, 400, b"Bad Request", Some(b"malformed Route"), out);
            return;
        }
        // the previous hop was a strict router (§16.4): the Request-URI is a Record-Route
        // value of ringsip's, and the real target is the last Route value
        let strict = pop == 0
            && next_route.is_some()
            && m.request_uri().is_ok_and(|u| u.user().is_none() && self.myself.has_uri(u));
        let mut strict_uri: Option<&[u8]> = None;
        if strict {
            let routes: arrayvec::ArrayVec<_, 16> = m.routes().filter_map(Result::ok).take(16).collect();
            if let Some(last) = routes.last() {
                strict_uri = Some(last.uri().as_bytes());
                next_route = if routes.len() > 1 { Some(Ok(routes[0])) } else { None };
            }
        }
        let hop = Hop { pop, strict_uri };

        let shared: &Shared = &self.shared;
        let program = &shared.program;
        let mut scratch = [0u8; 2048];
        let mut used = 0;
        let mut run = RouteRun::new(Outcome::End);
        let mut ctx = route_ctx(m, d, &self.myself, shared);
        let mut env = Env { shared, dests: &self.dests, stats: &self.stats, sel: &mut self.sel, now: d.now };
        let _ = env.run(&program.request, &mut ctx, &mut run, &mut scratch, &mut used, 0);

        let outcome = run.outcome;
        match outcome {
            Outcome::Reply(code, reason) => self.reply(m, d, code, reason, None, out),
            Outcome::Drop => self.stats.dropped(DropReason::Route),
            Outcome::End => {
                self.stats.dropped(DropReason::RouteEnd);
                debug!(src = %d.src, "request route ended without a decision; dropped");
            }
            Outcome::Forward(explicit) | Outcome::Relay(explicit) => {
                let dest = match explicit {
                    Some(a) => Some(a),
                    None => match run.selected {
                        Some((set, dest)) => Some(self.shared.dispatcher.sets[set].dests[dest].addr),
                        None => match (&next_route, strict_uri) {
                            (Some(Ok(r)), _) => uri_addr(r.uri()),
                            (_, Some(u)) => ringsip_proto::Uri::parse(u).ok().as_ref().and_then(uri_addr),
                            _ => m.request_uri().ok().and_then(uri_addr),
                        },
                    },
                };
                let Some(dest) = dest else {
                    self.stats.dropped(DropReason::Unresolvable);
                    debug!(src = %d.src, "next hop is a host name; ringsip does no DNS on the hot path");
                    return;
                };
                let txn_media = match (run.anchor, self.media.as_mut()) {
                    (Some(flags), Some(media)) => anchor_request(media, m, d, flags),
                    _ => None,
                };
                if matches!(outcome, Outcome::Relay(_)) && !matches!(m.method(), Some(Method::Ack | Method::Cancel)) {
                    // an ACK, and a CANCEL that matched no transaction, go on statelessly
                    // (§16.10: "the element MUST statelessly forward the CANCEL")
                    let Some((mf, branch)) = self.forward_checks(m, d, out) else { return };
                    let li = self.our_listen_for(&dest, d.listen);
                    // written now, with a placeholder branch the transaction fills in
                    let placeholder = table::write_branch(0, 0, 0, 0, 0);
                    let mut fwd = std::mem::take(&mut self.fwd_scratch);
                    fwd.write(m.buffer().len() + 2048, |b| {
                        self.write_forwarded(m, d, li, &placeholder, mf, &hop, &run, &scratch, b)
                    });
                    let plan = stateful::Plan {
                        dest,
                        li,
                        selected: run.selected,
                        on_failure: run.on_failure,
                        on_reply: run.on_reply,
                        alts: run.alts,
                        branch,
                        fork: run.fork,
                        media: txn_media,
                    };
                    // the route's borrows of the snapshot end here
                    drop(run);
                    self.relay(m, d, plan, fwd, mi, out);
                } else {
                    self.forward_request(m, d, dest, &hop, &run, &scratch, mi, out);
                }
            }
        }
    }

    /// The shard holding the media of the dialog of in-dialog request `m`: the `rsm` parameter
    /// of its top Route entry when that entry is ringsip's.
    fn media_owner(&self, m: &Message<'_>) -> Option<usize> {
        let top = m.routes().next()?.ok()?;
        if !self.myself.has_uri(top.uri()) {
            return None;
        }
        let v = top.uri().params().get(b"rsm")??;
        std::str::from_utf8(v).ok()?.parse().ok()
    }

    /// Max-Forwards and loop checks before a request is forwarded (§16.6 step 3, §16.3 steps
    /// 3 and 4), answering 483 or 482 itself: the new Max-Forwards and the request's
    /// stateless branch (its loop half also goes into stateful branches), or `None` when it
    /// was answered or dropped.
    pub(crate) fn forward_checks(
        &self,
        m: &Message<'_>,
        d: &Datagram<'_>,
        out: &mut Outbox<'_>,
    ) -> Option<(u8, Branch)> {
        let mf = match m.max_forwards() {
            Ok(Some(0)) => {
                self.reply(m, d, 483, b"Too Many Hops", None, out);
                return None;
            }
            Ok(Some(n)) => n - 1,
            _ => 70,
        };
        let Some(branch) = Branch::for_request(m) else {
            self.stats.dropped(DropReason::Unanswerable);
            return None;
        };
        // one of ringsip's Vias (stateless or stateful branch) with the same loop half: a loop
        // (§16.3 step 4); one pass over the Vias for both kinds
        let hash = &branch.loop_part()[proxy::BRANCH_PREFIX.len()..];
        let looped = |v: &Via<'_>| {
            v.branch().is_some_and(|b| {
                (Branch::is_ours(b) && b.starts_with(branch.loop_part())
                    || b.starts_with(table::TXN_PREFIX) && table::loop_part(b).ends_with(hash))
                    && self.is_our_sent_by(v)
            })
        };
        if m.via().is_ok_and(looped) || m.vias_after_top().filter_map(Result::ok).any(|v| looped(&v)) {
            self.reply(m, d, 482, b"Loop Detected", None, out);
            return None;
        }
        Some((mf, branch))
    }

    #[allow(clippy::too_many_arguments)]
    fn forward_request(
        &self,
        m: &Message<'_>,
        d: &Datagram<'_>,
        dest: SocketAddr,
        hop: &Hop<'_>,
        run: &RouteRun<'_>,
        scratch: &[u8],
        mi: usize,
        out: &mut Outbox<'_>,
    ) {
        let Some((mf, branch)) = self.forward_checks(m, d, out) else { return };
        let li = self.our_listen_for(&dest, d.listen);
        if out.send(li, dest, |obuf| self.write_forwarded(m, d, li, branch.as_bytes(), mf, hop, run, scratch, obuf)) {
            self.stats.forwarded_requests[mi].inc();
        } else {
            self.stats.dropped(DropReason::Write);
        }
    }

    /// Write request `m` as forwarded from listen socket `li` into `obuf` (RFC 3261 §16.6):
    /// ringsip's Via with `branch` on top, `received`/`rport` on the previous hop's Via
    /// (§18.2.1, RFC 3581 §4), Max-Forwards `mf`, ringsip's own Route entries popped (and a
    /// strict router's Request-URI restored, §16.4), Record-Route when the route asked for
    /// it (double when the request leaves on another listen socket, RFC 5658), and the
    /// route's header changes. `None` when the result does not fit.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_forwarded(
        &self,
        m: &Message<'_>,
        d: &Datagram<'_>,
        li: usize,
        branch: &[u8],
        mf: u8,
        hop: &Hop<'_>,
        run: &RouteRun<'_>,
        scratch: &[u8],
        obuf: &mut [u8],
    ) -> Option<usize> {
        // our Via
        let mut via = [0u8; 160];
        let mut n = 0;
        for part in [&b"SIP/2.0/UDP "[..], &self.sent_by[li], b";branch=", branch] {
            via.get_mut(n..n + part.len())?.copy_from_slice(part);
            n += part.len();
        }
        let via = &via[..n];

        // received/rport on the previous hop's Via (RFC 3261 §18.2.1, RFC 3581 §4)
        let top = m.via().ok()?;
        let buf = m.buffer();
        let top_end = chars::offset_in(buf, top.as_bytes()) + top.as_bytes().len();
        let mut recv_param = [0u8; 64];
        let mut recv_len = 0;
        if proxy::needs_received(top, d.src.ip()) || top.rport().is_some() {
            let prefix = b";received=";
            recv_param[..prefix.len()].copy_from_slice(prefix);
            let mut ib = [0u8; 48];
            let ip = ip_text(d.src.ip(), &mut ib);
            recv_param[prefix.len()..prefix.len() + ip.len()].copy_from_slice(ip);
            recv_len = prefix.len() + ip.len();
        }
        let mut rport_value = [0u8; 8];
        let mut rport_len = 0;
        let mut rport_at = None;
        if top.rport() == Some(None)
            && let Some((name, None)) = top.params().iter().find(|(n, _)| n.eq_ignore_ascii_case(b"rport"))
        {
            rport_at = Some(chars::offset_in(buf, name) + name.len());
            rport_value[0] = b'=';
            let mut pb = [0u8; 20];
            let p = itoa(d.src.port() as i64, &mut pb);
            rport_value[1..1 + p.len()].copy_from_slice(p);
            rport_len = 1 + p.len();
        }
        // Record-Route: the socket it leaves on, then (double) the one it came in on
        let mut rr = [0u8; 2 * 96 + 8];
        let mut rr_len = 0;
        if run.record_route {
            let mut put = |b: &[u8]| -> Option<()> {
                rr.get_mut(rr_len..rr_len + b.len())?.copy_from_slice(b);
                rr_len += b.len();
                Some(())
            };
            // an anchored call's media lives on this shard: the dialog's later requests,
            // which may reach another shard (the callee's), are passed here (`rsm`)
            let mut mark = [0u8; 32];
            let mut mark_len = 0;
            if run.anchor.is_some() && self.shards > 1 {
                let p = b";rsm=";
                mark[..p.len()].copy_from_slice(p);
                let mut nb = [0u8; 20];
                let v = itoa(self.shard as i64, &mut nb);
                mark[p.len()..p.len() + v.len()].copy_from_slice(v);
                mark_len = p.len() + v.len();
            }
            let mark = &mark[..mark_len];
            put(b"<sip:")?;
            put(&self.sent_by[li])?;
            put(mark)?;
            put(b";lr>")?;
            if li != d.listen {
                put(b", <sip:")?;
                put(&self.sent_by[d.listen])?;
                put(mark)?;
                put(b";lr>")?;
            }
        }

        let mut e = Edits::new();
        let ok = (|| -> Result<(), ringsip_proto::WriteError> {
            e.insert_header_first(m, HeaderName::Via, via)?;
            if let Some(at) = rport_at {
                e.insert(at, &rport_value[..rport_len])?;
            }
            if recv_len > 0 {
                e.insert(top_end, &recv_param[..recv_len])?;
            }
            e.set_max_forwards(m, mf)?;
            if hop.pop > 0 {
                e.remove_first_values(m, HeaderName::Route, hop.pop)?;
            }
            if let Some(u) = hop.strict_uri {
                e.set_request_uri(m, u)?;
                e.remove_last_value(m, HeaderName::Route)?;
            }
            if rr_len > 0 {
                e.insert_header_first(m, HeaderName::RecordRoute, &rr[..rr_len])?;
            }
            if run.anchor.is_some()
                && let Some(md) = &self.media
                && let Some(n) = md.body_len
            {
                e.replace_body(m, &md.body[..n])?;
            }
            apply_header_ops(&mut e, m, &run.ops, scratch)
        })();
        ok.ok()?;
        e.write(m, obuf).ok()
    }

    fn response(&mut self, m: &Message<'_>, d: &Datagram<'_>, out: &mut Outbox<'_>) {
        let code = m.status().unwrap_or(0);
        let class = ((code / 100).clamp(1, 6) - 1) as usize;
        self.stats.responses[class].inc();
        let top = match m.via() {
            Ok(v) => v,
            Err(_) => {
                self.stats.parse_errors.inc();
                return self.stats.dropped(DropReason::BadResponse);
            }
        };
        if !self.is_our_sent_by(top) {
            return self.stats.dropped(DropReason::NotOurVia);
        }
        let branch = top.branch().unwrap_or(b"");
        if let Some(id) = table::parse_branch(branch) {
            if self.txn_response(m, d, id, out) {
                return;
            }
            // no transaction (any more): a 2xx to an INVITE still goes upstream (§16.7 step
            // 5: every 2xx is forwarded), anything else is a stray
            let invite_2xx = (200..300).contains(&code) && m.cseq().is_ok_and(|c| c.method == b"INVITE");
            if !invite_2xx {
                self.txn_stats.stray.inc();
                return self.stats.dropped(DropReason::NoTransaction);
            }
        } else if let Some(rest) = branch.strip_prefix(PROBE_PREFIX) {
            self.stats.probe_answers.inc();
            if let Some((set, dest, seq)) = parse_probe_branch(rest) {
                self.shared.dispatcher.record_answer(set, dest, seq, code);
            }
            return;
        }
        if !Branch::is_ours(branch) && table::parse_branch(branch).is_none() {
            return self.stats.dropped(DropReason::NotOurVia);
        }
        let next = match m.vias_after_top().next() {
            Some(Ok(v)) => v,
            Some(Err(_)) => {
                self.stats.parse_errors.inc();
                return self.stats.dropped(DropReason::BadResponse);
            }
            None => return self.stats.dropped(DropReason::NoNextVia),
        };
        let Some(dest) = proxy::next_hop(&next) else {
            return self.stats.dropped(DropReason::Unresolvable);
        };

        let shared: &Shared = &self.shared;
        let program = &shared.program;
        let mut scratch = [0u8; 2048];
        let mut used = 0;
        let mut run = RouteRun::new(Outcome::Forward(None));
        if let Some(rules) = &program.reply {
            let mut ctx = route_ctx(m, d, &self.myself, shared);
            run.outcome = Outcome::End;
            let mut env = Env { shared, dests: &self.dests, stats: &self.stats, sel: &mut self.sel, now: d.now };
            let _ = env.run(rules, &mut ctx, &mut run, &mut scratch, &mut used, 0);
            match run.outcome {
                Outcome::Drop => return self.stats.dropped(DropReason::Route),
                Outcome::Reply(..) => return self.stats.dropped(DropReason::ReplyToResponse),
                // the reply route ends by forwarding, explicitly or by running out of rules
                Outcome::End | Outcome::Forward(_) | Outcome::Relay(_) => {}
            }
        }
        let mut e = Edits::new();
        let ok = e.remove_top_via(m).and_then(|_| apply_header_ops(&mut e, m, &run.ops, &scratch));
        if ok.is_err() {
            return self.stats.dropped(DropReason::Write);
        }
        let li = self.our_listen_for(&dest, d.listen);
        if out.send(li, dest, |obuf| e.write(m, obuf).ok()) {
            self.stats.forwarded_responses[class].inc();
        } else {
            self.stats.dropped(DropReason::Write);
        }
    }

    fn send_probes(&mut self, now: Instant, out: &mut Outbox<'_>) {
        let Some(prober) = self.prober.as_mut() else { return };
        let d = self.shared.dispatcher.clone();
        self.probes.clear();
        self.changes.clear();
        prober.tick(&d, now, &mut self.probes, &mut self.changes);
        for c in &self.changes {
            let set = &d.sets[c.set];
            let dest = &set.dests[c.dest];
            if c.up {
                info!(set = set.id, destination = %dest.uri, "destination is up: answering probes again");
            } else {
                warn!(set = set.id, destination = %dest.uri, "destination is down: probes failed; skipped until it answers");
            }
            self.stats.dest_transitions.inc();
        }
        for p in &self.probes {
            let li = self.our_listen_for(&p.addr, 0);
            let sent_by = &self.sent_by[li];
            let probe = &d.sets[p.set].probe;
            let shard = self.shard;
            let local_ip = self.listen[li].ip();
            let sent =
                out.send(li, p.addr, |buf| write_probe(buf, p, sent_by, &probe.method, &probe.from, shard, local_ip));
            if sent {
                self.stats.probes_sent.inc();
            }
        }
    }
}

fn write_probe(
    buf: &mut [u8],
    p: &ProbeSend,
    sent_by: &[u8],
    method: &str,
    from: &str,
    shard: usize,
    ip: IpAddr,
) -> Option<usize> {
    use std::io::Write;
    let mut c = std::io::Cursor::new(buf);
    write!(
        c,
        "{method} sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {sent_by};branch={prefix}{set}.{dest}.{seq}\r\nMax-Forwards: 70\r\nFrom: <{from}>;tag=rsprobe{shard}\r\nTo: <sip:{addr}>\r\nCall-ID: rsprobe-{set}-{dest}-{seq}@{ip}\r\nCSeq: {seq} {method}\r\nContent-Length: 0\r\n\r\n",
        addr = p.addr,
        sent_by = String::from_utf8_lossy(sent_by),
        prefix = std::str::from_utf8(PROBE_PREFIX).unwrap_or_default(),
        set = p.set,
        dest = p.dest,
        seq = p.seq,
    )
    .ok()?;
    Some(c.position() as usize)
}

fn parse_probe_branch(rest: &[u8]) -> Option<(usize, usize, u32)> {
    let s = std::str::from_utf8(rest).ok()?;
    let mut it = s.split('.');
    let set = it.next()?.parse().ok()?;
    let dest = it.next()?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    it.next().is_none().then_some((set, dest, seq))
}

fn uri_addr(u: &ringsip_proto::Uri<'_>) -> Option<SocketAddr> {
    let ip = u.host()?.ip()?;
    let port = u.port().unwrap_or(if u.scheme() == ringsip_proto::Scheme::Sips { 5061 } else { 5060 });
    Some(SocketAddr::new(ip, port))
}

fn auth_user<'a>(m: &Message<'a>) -> Option<&'a [u8]> {
    for name in [HeaderName::Authorization, HeaderName::ProxyAuthorization] {
        if let Some(Ok(a)) = m.auth(name).next() {
            if let Some(u) = a.get(b"username") {
                let u = u.strip_prefix(b"\"").and_then(|u| u.strip_suffix(b"\"")).unwrap_or(u);
                return Some(u);
            }
        }
    }
    None
}

fn apply_header_ops<'e>(
    e: &mut Edits<'e>,
    m: &Message<'_>,
    ops: &[HeaderOp<'e>],
    scratch: &'e [u8],
) -> Result<(), ringsip_proto::WriteError> {
    for op in ops {
        let value = &scratch[op.value.0..op.value.1];
        match op.action {
            Action::SetHeader(name, raw, _) => {
                remove_named(e, m, *name, raw)?;
                e.append_header(m, raw, value)?;
            }
            Action::AppendHeader(raw, _) => e.append_header(m, raw, value)?,
            Action::RemoveHeader(name, raw) => remove_named(e, m, *name, raw)?,
            _ => {}
        }
    }
    Ok(())
}

fn remove_named(
    e: &mut Edits<'_>,
    m: &Message<'_>,
    name: HeaderName,
    raw: &[u8],
) -> Result<(), ringsip_proto::WriteError> {
    if name != HeaderName::Other {
        e.remove_header(m, name)?;
        return Ok(());
    }
    for i in 0..m.header_count() {
        if m.entries()[i].name() == HeaderName::Other && m.raw_name(i).eq_ignore_ascii_case(raw) {
            e.remove_header_at(m, i)?;
        }
    }
    Ok(())
}

fn hex(v: u64, out: &mut [u8; 16]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out.iter_mut().enumerate() {
        *o = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

impl Handler for StatelessProxy {
    fn batch_start(&mut self) {
        self.refresh();
        self.drain_pending = true;
    }

    fn datagram(&mut self, d: &Datagram<'_>, out: &mut Outbox<'_>) {
        if self.drain_pending {
            self.drain_pending = false;
            self.drain_handoff(d.now, out);
        }
        self.datagram_inner(d, out);
    }

    fn tick(&mut self, now: Instant, out: &mut Outbox<'_>) {
        // an idle shard lets go of an old snapshot too
        self.refresh();
        self.drain_handoff(now, out);
        self.txn_timers(now, out);
        self.send_probes(now, out);
        if let Some(m) = &mut self.media {
            m.tick(now);
        }
    }

    #[inline]
    fn media_packet(&mut self, port: u16, src: SocketAddr, data: &[u8], now: Instant) -> Option<(u16, SocketAddr)> {
        self.media.as_mut()?.packet(port, src, data.len(), now)
    }

    fn media_ports_unavailable(&mut self, ports: &[u16]) {
        if let Some(m) = &mut self.media {
            m.withhold(ports);
        }
    }

    fn media_control(&mut self, data: &[u8], _src: SocketAddr, now: Instant, reply: &mut [u8]) -> usize {
        self.media.as_mut().map_or(0, |m| m.control(data, now, reply))
    }
}

impl StatelessProxy {
    /// One datagram, received or passed on by another shard.
    fn datagram_inner(&mut self, d: &Datagram<'_>, out: &mut Outbox<'_>) {
        // keep-alives (CRLF) and empty datagrams are not errors
        if d.data.iter().all(|&b| b == b'\r' || b == b'\n') {
            return;
        }
        let mut m = Message::new();
        if let Err(e) = m.parse_into(d.data) {
            self.stats.parse_errors.inc();
            self.stats.dropped(DropReason::Unparsable);
            debug!(src = %d.src, error = %e, "unparsable datagram dropped");
            return;
        }
        if m.is_request() { self.request(&m, d, out) } else { self.response(&m, d, out) }
    }
}

/// The transaction settings of a config.
fn limits(cfg: &Config) -> table::Limits {
    let t = &cfg.transactions;
    let ms = |d: Duration| d.as_millis() as u64;
    table::Limits {
        timers: ringsip_proto::transaction::Timers {
            t1: ms(t.t1),
            t2: ms(t.t2),
            t4: ms(t.t4),
            c: ms(t.timer_c),
            no_reply: ms(t.no_reply_timeout),
        },
        max: t.max_per_shard,
        retry_after: t.retry_after,
    }
}

/// Anchor the media of request `m` (the route ran `anchor_media`): an INVITE or UPDATE with
/// SDP is an offer (its rewritten body is left in `media.body`), an ACK or PRACK with SDP
/// the answer to a late offer, a BYE or CANCEL ends the call's media. Returns what its
/// transaction must remember (INVITE/UPDATE).
fn anchor_request(
    media: &mut media::MediaState,
    m: &Message<'_>,
    d: &Datagram<'_>,
    flags: ringsip_config::AnchorFlags,
) -> Option<table::TxnMedia> {
    media.body_len = None;
    let method = m.method()?;
    match method {
        Method::Bye | Method::Cancel => {
            if let Ok(call_id) = m.call_id() {
                media.end(call_id);
            }
            None
        }
        Method::Invite | Method::Update => {
            let offered = media_sdp(media, m, d, true, true, flags).is_some();
            let initial = method == Method::Invite && m.to().is_ok_and(|t| t.tag().is_none());
            Some(table::TxnMedia::new(flags, offered, initial))
        }
        Method::Ack | Method::Prack => {
            let _ = media_sdp(media, m, d, true, false, flags);
            None
        }
        _ => None,
    }
}

/// Rewrite the SDP body of `m`, when it has one, as sent by its From party (`from_sender`)
/// or its To party, as an offer that may start the call (`create`) or an answer. `Some`
/// when `media.body` holds the rewritten body.
pub(crate) fn media_sdp(
    media: &mut media::MediaState,
    m: &Message<'_>,
    d: &Datagram<'_>,
    from_sender: bool,
    create: bool,
    flags: ringsip_config::AnchorFlags,
) -> Option<usize> {
    media.body_len = None;
    let is_sdp = m.content_type().ok().flatten().is_some_and(|ct| ct.is_sdp()) && !m.body().is_empty();
    if !is_sdp {
        return None;
    }
    let s = media::SipSdp {
        call_id: m.call_id().ok()?,
        from_tag: m.from().ok()?.tag()?,
        to_tag: m.to().ok().and_then(|t| t.tag()),
        body: m.body(),
        from_sender,
        create,
        source: d.src.ip(),
        flags,
    };
    media.sip(&s, d.now).ok()
}

pub mod media;
mod stateful;
mod table;

#[cfg(test)]
mod media_tests;
#[cfg(test)]
mod stateful_tests;
#[cfg(test)]
mod tests;
