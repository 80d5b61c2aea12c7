//! The management plane inside the daemon: holds the published snapshot, answers control
//! requests, builds and swaps new snapshots off the hot path, and exports its own metrics.
//!
//! A push: check the header and the version, check and load the archive
//! ([`snapshot::open`]), compile it against the running snapshot so run-time state carries
//! over ([`Shared::from_snapshot`]), then publish it with one atomic pointer store. Shards
//! pick it up at their next batch. Any failure before the store leaves the running snapshot
//! untouched. Pushes and rollbacks are serialised by one mutex; shards never take it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringsip_modules::snapshot::{self, Meta};
use ringsip_modules::stateless::{Published, Shared};
use ringsip_runtime::{Kind, Metric, Metrics, ShardStats};
use serde_json::{Value as J, json};
use tracing::{info, warn};

use crate::control::{Command, ErrorKind, Response, Value};
use crate::metrics::Registry;

/// One shard as `status` shows it.
#[derive(Clone, Debug)]
pub struct ShardView {
    /// Shard index.
    pub shard: usize,
    /// CPU it is pinned to.
    pub cpu: usize,
    /// NUMA node.
    pub node: usize,
    /// Its IO counters.
    pub io: Arc<ShardStats>,
}

struct History {
    /// The running snapshot's bytes and where it came from.
    current: (Arc<Vec<u8>>, String),
    /// The one before it (what `rollback` restores).
    previous: Option<(Arc<Vec<u8>>, String)>,
    /// Highest version ever installed: a push must be above it.
    highest: u64,
}

/// The daemon's management plane.
pub struct Plane {
    published: Published,
    history: Mutex<History>,
    started: Instant,
    shards: Vec<ShardView>,
    registry: Registry,
    swaps: AtomicU64,
    refused: AtomicU64,
    last_swap_ns: AtomicU64,
    /// Per shard: (rx, tx) datagrams per second over the last second, from the sampler.
    load: Mutex<Vec<(f64, f64)>>,
    /// Snapshots replaced by a push, kept until no shard holds them, so that their memory is
    /// freed here (by the sweeper) rather than on the shard that lets go last.
    retired: Mutex<Vec<Arc<Shared>>>,
}

/// A time as milliseconds with three decimals.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Plane {
    /// A plane for a daemon that runs `published`, built from `bytes` (read from `source`).
    pub fn new(
        published: Published,
        bytes: Vec<u8>,
        source: String,
        shards: Vec<ShardView>,
        registry: Registry,
    ) -> Plane {
        let version = published.load().meta.version;
        Plane {
            published,
            history: Mutex::new(History { current: (Arc::new(bytes), source), previous: None, highest: version }),
            started: Instant::now(),
            shards,
            registry,
            swaps: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            last_swap_ns: AtomicU64::new(0),
            load: Mutex::new(Vec::new()),
            retired: Mutex::new(Vec::new()),
        }
    }

    /// Every second, off the shards, until `stop`: remove expired htable entries and sample
    /// each shard's load for `status`.
    pub fn spawn_sweeper(self: &Arc<Self>, stop: Arc<std::sync::atomic::AtomicBool>) {
        let plane = self.clone();
        let spawned = std::thread::Builder::new().name("ringsip-sweeper".into()).spawn(move || {
            if let Err(e) = ringsip_runtime::priority::lower_current_thread() {
                warn!(error = %e, "cannot lower the sweeper's priority");
            }
            let counts = |p: &Plane| -> Vec<(u64, u64)> {
                p.shards.iter().map(|s| (s.io.rx_datagrams.get(), s.io.tx_datagrams.get())).collect()
            };
            let mut before = (Instant::now(), counts(&plane));
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_secs(1));
                plane.free_retired();
                let cur = plane.current();
                let now = Instant::now();
                for t in cur.htables.iter() {
                    t.sweep(now);
                }
                if let Some(p) = &cur.htables.pike {
                    p.sweep(now);
                }
                let after = (now, counts(&plane));
                let secs = after.0.duration_since(before.0).as_secs_f64().max(1e-3);
                let rates = before
                    .1
                    .iter()
                    .zip(&after.1)
                    .map(|(b, a)| (a.0.saturating_sub(b.0) as f64 / secs, a.1.saturating_sub(b.1) as f64 / secs))
                    .collect();
                if let Ok(mut l) = plane.load.lock() {
                    *l = rates;
                }
                before = after;
            }
        });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start the htable sweeper: expired entries stay until overwritten");
        }
    }

    /// Free the replaced snapshots that no shard holds any more; returns how many are still
    /// held.
    pub fn free_retired(&self) -> usize {
        let freed = match self.retired.lock() {
            Ok(mut r) => {
                // only the list holds it: take it out and drop it outside the lock
                let (gone, kept): (Vec<_>, Vec<_>) = r.drain(..).partition(|s| Arc::strong_count(s) == 1);
                *r = kept;
                gone
            }
            Err(_) => Vec::new(),
        };
        drop(freed);
        self.retired.lock().map_or(0, |r| r.len())
    }

    /// The snapshot running now.
    pub fn current(&self) -> Arc<Shared> {
        self.published.load_full()
    }

    /// Answer one request (`payload`: the snapshot bytes of a push).
    pub fn handle(&self, command: Command, payload: Option<Vec<u8>>) -> Response {
        match command {
            Command::Status => self.status(),
            Command::Push { source, .. } => match payload {
                Some(bytes) => self.push(bytes, source),
                None => Response::err(ErrorKind::BadRequest, "push without snapshot bytes"),
            },
            Command::Rollback => self.rollback(),
            Command::Stats => self.stats(),
            Command::DispatcherList => self.dispatcher_list(),
            Command::DispatcherSetState { set, destination, state } => self.set_state(set, &destination, &state),
            Command::MtreeMatch { tree, key, all } => self.mtree_match(&tree, &key, all),
            Command::MtreeSummary => self.mtree_summary(),
            Command::HtableGet { table, key } => crate::htables::get(&self.current(), &table, &key),
            Command::HtableSet { table, key, value, expires } => {
                crate::htables::set(&self.current(), &table, &key, value, expires)
            }
            Command::HtableDelete { table, key } => crate::htables::delete(&self.current(), &table, &key),
            Command::HtableDump { table } => crate::htables::dump(&self.current(), table.as_deref()),
            Command::HtableFlush { table } => crate::htables::flush(&self.current(), &table),
            Command::PikeTop { limit } => self.pike_top(limit.unwrap_or(20)),
        }
    }

    fn refuse(&self, why: impl Into<String>) -> Response {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let why = why.into();
        warn!(reason = %why, "snapshot refused; the running snapshot keeps serving");
        Response::err(ErrorKind::Refused, why)
    }

    /// Install a pushed snapshot.
    pub fn push(&self, bytes: Vec<u8>, source: String) -> Response {
        let received = Instant::now();
        let Ok(mut h) = self.history.lock() else {
            return Response::err(ErrorKind::Internal, "the management plane's state is poisoned");
        };
        let meta = match snapshot::header(&bytes) {
            Ok(m) => m,
            Err(e) => return self.refuse(e.to_string()),
        };
        if meta.version <= h.highest {
            return self.refuse(format!(
                "version {} is not newer than version {} already installed (ringsipctl push numbers versions from `status`; another push may have raced this one: push again)",
                meta.version, h.highest
            ));
        }
        let (response, ok) = self.install(&bytes, &source, received, "push");
        if ok {
            h.highest = meta.version;
            let prev = std::mem::replace(&mut h.current, (Arc::new(bytes), source));
            h.previous = Some(prev);
        }
        response
    }

    /// Go back to the previous snapshot (run-time state carries over as on a push).
    pub fn rollback(&self) -> Response {
        let received = Instant::now();
        let Ok(mut h) = self.history.lock() else {
            return Response::err(ErrorKind::Internal, "the management plane's state is poisoned");
        };
        let Some((bytes, source)) = h.previous.clone() else {
            return Response::err(ErrorKind::NotFound, "nothing to roll back to: no snapshot ran before this one");
        };
        let (response, ok) = self.install(&bytes, &source, received, "rollback");
        if ok {
            let prev = std::mem::replace(&mut h.current, (bytes, source));
            h.previous = Some(prev);
        }
        response
    }

    /// Check, compile and publish `bytes`; the caller holds the history lock.
    fn install(&self, bytes: &[u8], source: &str, received: Instant, what: &str) -> (Response, bool) {
        let opened = match snapshot::open(bytes) {
            Ok(o) => o,
            Err(e) => return (self.refuse(e.to_string()), false),
        };
        let checked = received.elapsed();
        let old = self.published.load_full();
        let new = match Shared::from_snapshot(opened, Some(&old)) {
            Ok(s) => s,
            Err(e) => return (self.refuse(e.to_string()), false),
        };
        let compiled = received.elapsed();
        if old.config.media.is_some() != new.config.media.is_some() {
            return (
                self.refuse(if new.config.media.is_some() {
                    "the snapshot adds [media]: the media relay binds its ports when ringsip starts, so a running daemon cannot start it (anchor_media would anchor nothing); restart ringsip with this config"
                } else {
                    "the snapshot removes [media]: the media relay of the running daemon holds calls and ports; restart ringsip with this config"
                }),
                false,
            );
        }
        let changes = changes(&old, &new);
        let warnings = restart_only(&old.config, &new.config);
        let meta = new.meta;
        let swap_start = Instant::now();
        self.published.store(Arc::new(new));
        let swap = swap_start.elapsed();
        if let Ok(mut r) = self.retired.lock() {
            r.push(old);
        }
        self.swaps.fetch_add(1, Ordering::Relaxed);
        self.last_swap_ns.store(swap.as_nanos() as u64, Ordering::Relaxed);
        info!(
            what,
            version = meta.version,
            hash = %meta.hash_hex(),
            source,
            check_ms = ms(checked),
            compile_ms = ms(compiled - checked),
            swap_ns = swap.as_nanos() as u64,
            changes = changes.len(),
            "snapshot installed"
        );
        for w in &warnings {
            warn!(version = meta.version, "{w}");
        }
        let result = json!({
            "version": meta.version,
            "hash": meta.hash_hex(),
            "built_unix_ms": meta.built_unix_ms,
            "source": source,
            "bytes": bytes.len(),
            "check_ms": ms(checked),
            "compile_ms": ms(compiled - checked),
            "swap_ns": swap.as_nanos() as u64,
            "changes": changes,
            "warnings": warnings,
        });
        (Response::ok(result), true)
    }

    fn status(&self) -> Response {
        let cur = self.current();
        let (source, previous) = match self.history.lock() {
            Ok(h) => (h.current.1.clone(), h.previous.as_ref().and_then(|p| snapshot::header(&p.0).ok())),
            Err(_) => (String::new(), None),
        };
        let (highest, load) =
            (self.history.lock().map_or(0, |h| h.highest), self.load.lock().map(|l| l.clone()).unwrap_or_default());
        let shards: Vec<J> = self
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (rx_s, tx_s) = load.get(i).copied().unwrap_or((0.0, 0.0));
                json!({
                    "shard": s.shard,
                    "cpu": s.cpu,
                    "node": s.node,
                    "rx_datagrams": s.io.rx_datagrams.get(),
                    "tx_datagrams": s.io.tx_datagrams.get(),
                    "rx_per_s": rx_s.round(),
                    "tx_per_s": tx_s.round(),
                    "rx_batches": s.io.rx_batches.get(),
                })
            })
            .collect();
        Response::ok(json!({
            "version": cur.meta.version,
            "hash": cur.meta.hash_hex(),
            "built_unix_ms": cur.meta.built_unix_ms,
            "source": source,
            "previous_version": previous.map(|m: Meta| m.version),
            "highest_version": highest,
            "uptime_s": self.started.elapsed().as_secs(),
            "swaps": self.swaps.load(Ordering::Relaxed),
            "refused": self.refused.load(Ordering::Relaxed),
            "retired_held": self.retired.lock().map_or(0, |r| r.len()),
            "shards": shards,
        }))
    }

    fn stats(&self) -> Response {
        let text = crate::metrics::render(&self.registry, &[]);
        let mut series = serde_json::Map::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if let Some((name, value)) = line.rsplit_once(' ') {
                if let Ok(v) = value.parse::<u64>() {
                    series.insert(name.to_string(), json!(v));
                }
            }
        }
        Response::ok(json!({ "series": series, "text": text }))
    }

    fn dispatcher_list(&self) -> Response {
        let cur = self.current();
        let sets: Vec<J> = cur
            .dispatcher
            .sets
            .iter()
            .zip(&cur.config.dispatcher.sets)
            .map(|(s, c)| {
                json!({
                    "id": s.id,
                    "name": c.name,
                    "algorithm": s.algorithm.name(),
                    "destinations": s.dests.iter().map(|d| json!({
                        "uri": d.uri,
                        "address": d.addr.to_string(),
                        "state": d.state_name(),
                        "probed": if d.is_active() { "up" } else { "down" },
                        "forced": d.forced().map(|dis| if dis { "disabled" } else { "enabled" }),
                        "weight": d.weight,
                        "priority": d.priority,
                        "attrs": d.attrs,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        Response::ok(json!({ "sets": sets }))
    }

    fn set_state(&self, set: u32, destination: &str, state: &str) -> Response {
        let cur = self.current();
        let Some(s) = cur.dispatcher.sets.iter().find(|s| s.id == set) else {
            return Response::err(ErrorKind::NotFound, format!("dispatcher set {set} does not exist"));
        };
        let Some(d) = s.dests.iter().find(|d| d.uri == destination || d.addr.to_string() == destination) else {
            return Response::err(
                ErrorKind::NotFound,
                format!("set {set} has no destination {destination} (give its URI as configured or IP:port)"),
            );
        };
        match state {
            "disabled" => d.force_disabled(true),
            "enabled" => d.force_disabled(false),
            "active" => d.mark_active(true),
            "inactive" => d.mark_active(false),
            other => {
                return Response::err(
                    ErrorKind::BadRequest,
                    format!("unknown state {other:?}: use disabled, enabled, active or inactive"),
                );
            }
        }
        info!(set, destination = %d.uri, state, "destination state set by the operator");
        Response::ok(json!({ "set": set, "destination": d.uri, "state": d.state_name() }))
    }

    fn mtree_match(&self, tree: &str, key: &str, all: bool) -> Response {
        let cur = self.current();
        let Some(i) = cur.program.tree_names.iter().position(|n| n == tree) else {
            return Response::err(ErrorKind::NotFound, format!("mtree {tree} does not exist"));
        };
        let t = &cur.program.trees[i];
        let mut matches = Vec::new();
        for (len, v) in t.matches(key.as_bytes()) {
            matches.push(json!({
                "prefix": key.get(..len).unwrap_or(key),
                "value": String::from_utf8_lossy(&v.text),
            }));
            if !all {
                break;
            }
        }
        if matches.is_empty() {
            return Response::err(ErrorKind::NotFound, format!("no prefix of {key:?} in mtree {tree}"));
        }
        Response::ok(json!({ "tree": tree, "key": key, "matches": matches }))
    }

    fn pike_top(&self, n: usize) -> Response {
        let cur = self.current();
        let (Some(pike), Some(cfg)) = (&cur.htables.pike, &cur.config.pike) else {
            return Response::err(ErrorKind::NotFound, "the running config has no [pike] (no flood detection)");
        };
        let top: Vec<J> = pike
            .top(n.min(10_000), Instant::now())
            .into_iter()
            .map(|t| json!({ "source": t.ip.to_string(), "requests": t.rate, "flooding": t.flooding }))
            .collect();
        Response::ok(json!({
            "window_ms": cfg.window.as_millis() as u64,
            "limit": cfg.limit,
            "sources": pike.sources(),
            "top": top,
        }))
    }

    fn mtree_summary(&self) -> Response {
        let cur = self.current();
        let trees: Vec<J> = cur
            .config
            .mtrees
            .iter()
            .zip(&cur.program.trees)
            .map(|(c, t)| {
                json!({
                    "name": c.name,
                    "type": kind_name(c.kind),
                    "alphabet": c.alphabet,
                    "prefixes": t.len(),
                    "nodes": t.nodes(),
                    "distinct_values": t.distinct_values(),
                    "memory_bytes": t.memory_bytes(),
                })
            })
            .collect();
        Response::ok(json!({ "version": cur.meta.version, "trees": trees }))
    }
}

fn kind_name(k: ringsip_config::MtreeKind) -> &'static str {
    match k {
        ringsip_config::MtreeKind::Sets => "sets",
        ringsip_config::MtreeKind::Text => "text",
        ringsip_config::MtreeKind::Int => "int",
    }
}

/// What a new snapshot changes, one line each, for the operator.
pub fn changes(old: &Shared, new: &Shared) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut out = Vec::new();
    let (o, n) = (&old.config, &new.config);
    // dispatcher
    let osets: BTreeMap<u32, &ringsip_config::Set> = o.dispatcher.sets.iter().map(|s| (s.id, s)).collect();
    let nsets: BTreeMap<u32, &ringsip_config::Set> = n.dispatcher.sets.iter().map(|s| (s.id, s)).collect();
    for (id, s) in &nsets {
        match osets.get(id) {
            None => out.push(format!("dispatcher set {id} added ({} destinations)", s.destinations.len())),
            Some(p) => {
                if p.algorithm != s.algorithm {
                    out.push(format!("dispatcher set {id}: algorithm {} → {}", p.algorithm.name(), s.algorithm.name()));
                }
                for d in &s.destinations {
                    match p.destinations.iter().find(|x| x.uri == d.uri) {
                        None => out.push(format!("dispatcher set {id}: destination {} added", d.uri)),
                        Some(x) if x != d => out.push(format!("dispatcher set {id}: destination {} changed", d.uri)),
                        Some(_) => {}
                    }
                }
                for d in &p.destinations {
                    if !s.destinations.iter().any(|x| x.uri == d.uri) {
                        out.push(format!("dispatcher set {id}: destination {} removed", d.uri));
                    }
                }
                if p.probe != s.probe {
                    out.push(format!("dispatcher set {id}: probing changed"));
                }
            }
        }
    }
    for id in osets.keys().filter(|id| !nsets.contains_key(id)) {
        out.push(format!("dispatcher set {id} removed"));
    }
    // trees
    for (i, t) in n.mtrees.iter().enumerate() {
        let size = new.program.trees[i].len();
        match o.mtrees.iter().position(|x| x.name == t.name) {
            None => out.push(format!("mtree {} added ({size} prefixes)", t.name)),
            Some(j) => {
                let before = &old.program.trees[j];
                if before.tree().image() != new.program.trees[i].tree().image() || o.mtrees[j] != *t {
                    out.push(format!("mtree {}: {} → {size} prefixes", t.name, before.len()));
                }
            }
        }
    }
    for t in o.mtrees.iter().filter(|t| !n.mtrees.iter().any(|x| x.name == t.name)) {
        out.push(format!("mtree {} removed", t.name));
    }
    // htables
    for t in &n.htables {
        match o.htables.iter().find(|x| x.name == t.name) {
            None => out.push(format!("htable {} added", t.name)),
            Some(p) if p != t => out.push(format!("htable {}: settings or seeds changed (entries kept)", t.name)),
            Some(_) => {}
        }
    }
    for t in o.htables.iter().filter(|t| !n.htables.iter().any(|x| x.name == t.name)) {
        out.push(format!("htable {} removed (its entries are dropped)", t.name));
    }
    // acl groups
    for g in &n.acls {
        match o.acls.iter().find(|x| x.name == g.name) {
            None => out.push(format!("acl {} added ({} entries)", g.name, g.entries.len())),
            Some(p) if p.entries.iter().map(|e| (e.net, e.port)).ne(g.entries.iter().map(|e| (e.net, e.port))) => {
                out.push(format!("acl {}: {} → {} entries", g.name, p.entries.len(), g.entries.len()))
            }
            Some(_) => {}
        }
    }
    for g in o.acls.iter().filter(|g| !n.acls.iter().any(|x| x.name == g.name)) {
        out.push(format!("acl {} removed", g.name));
    }
    // routes
    if format!("{:?}", o.routes) != format!("{:?}", n.routes) {
        out.push("routes changed".to_string());
    }
    if o.server.advertise != n.server.advertise {
        out.push(format!("advertise: {:?} → {:?}", o.server.advertise, n.server.advertise));
    }
    if out.is_empty() {
        out.push("no change in routing (same content)".to_string());
    }
    out
}

/// Settings that a push cannot change on a running daemon (they need a restart).
pub fn restart_only(o: &ringsip_config::Config, n: &ringsip_config::Config) -> Vec<String> {
    let (a, b) = (&o.server, &n.server);
    let mut out = Vec::new();
    let mut check = |what: &str, same: bool| {
        if !same {
            out.push(format!("server.{what} changed: it takes effect at the next restart; the running value stays"));
        }
    };
    check("listen", a.listen == b.listen);
    check("shards", a.shards == b.shards);
    check("cpus", a.cpus == b.cpus);
    check("control_socket", a.control_socket == b.control_socket);
    check("metrics", a.metrics == b.metrics);
    check("log", a.log == b.log);
    check("rcvbuf", a.rcvbuf == b.rcvbuf);
    check("sndbuf", a.sndbuf == b.sndbuf);
    check("batch", a.batch == b.batch);
    check("sticky_entries", a.sticky_entries == b.sticky_entries);
    if o.media != n.media {
        out.push("media changed: the relay's address, ports and timers take effect at the next restart; the running values stay".into());
    }
    out
}

impl Metrics for Plane {
    fn visit(&self, sink: &mut dyn FnMut(&Metric<'_>)) {
        let cur = self.current();
        if let Some(p) = &cur.htables.pike {
            use std::sync::atomic::Ordering::Relaxed;
            for (name, help, kind, value) in [
                ("ringsip_pike_sources", "source IPs the flood detector tracks", Kind::Gauge, p.sources() as u64),
                (
                    "ringsip_pike_requests_total",
                    "requests counted by the flood detector",
                    Kind::Counter,
                    p.counted.load(Relaxed),
                ),
                (
                    "ringsip_pike_flooding_total",
                    "requests found over the flood limit (flooding was true)",
                    Kind::Counter,
                    p.over.load(Relaxed),
                ),
                (
                    "ringsip_pike_untracked_total",
                    "requests from new sources not tracked because max_sources was reached",
                    Kind::Counter,
                    p.untracked.load(Relaxed),
                ),
            ] {
                sink(&Metric { name, help, kind, labels: &[], value });
            }
        }
        sink(&Metric {
            name: "ringsip_snapshot_version",
            help: "version of the config snapshot running",
            kind: Kind::Gauge,
            labels: &[],
            value: cur.meta.version,
        });
        sink(&Metric {
            name: "ringsip_snapshot_swaps_total",
            help: "snapshots installed by push or rollback since start",
            kind: Kind::Counter,
            labels: &[],
            value: self.swaps.load(Ordering::Relaxed),
        });
        sink(&Metric {
            name: "ringsip_snapshot_refused_total",
            help: "snapshots refused (the running one kept serving)",
            kind: Kind::Counter,
            labels: &[],
            value: self.refused.load(Ordering::Relaxed),
        });
        sink(&Metric {
            name: "ringsip_snapshot_last_swap_nanoseconds",
            help: "time the last snapshot's pointer store took",
            kind: Kind::Gauge,
            labels: &[],
            value: self.last_swap_ns.load(Ordering::Relaxed),
        });
        sink(&Metric {
            name: "ringsip_uptime_seconds",
            help: "seconds since the daemon started",
            kind: Kind::Gauge,
            labels: &[],
            value: self.started.elapsed().as_secs(),
        });
        crate::htables::visit(&cur, sink);
    }
}

/// htable values on the wire.
pub(crate) fn value_json(v: &Value) -> J {
    match v {
        Value::Int(i) => json!(i),
        Value::Text(t) => json!(t),
    }
}
