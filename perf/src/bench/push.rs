//! `ringsip-bench push`: a config push under load, the management-plane measurement
//! ("a snapshot with a 1,000,000-prefix mtree is pushed under load: record the build time, the
//! transfer, the swap itself, and the p99 latency of calls around the swap").
//!
//! 1. Two LCR configs (like `config/examples/lcr.toml`) are written into the work directory,
//!    identical but for their prefix table: `--start-prefixes` rows (ringsip starts with it) and
//!    `--prefixes` rows (pushed). The rows are random distinct E.164-like prefixes from a fixed
//!    seed, plus the `--dial` prefix, which every call's number starts with, so both trees route
//!    every call (set 1 = the first UAS, set 2 = the second).
//! 2. ringsip starts pinned on the small config with a control socket; the generator places
//!    calls at `--rate` for `--duration` s, keeping each call's (INVITE sent, setup latency).
//! 3. At `--push-at` s, on `--build-cpus` (ringsipctl's side): `ringsip_config::load` of the
//!    big config (parse), `snapshot::build` (build), then `control::call` push (round trip:
//!    transfer + the daemon's check, compile and swap, which it reports). The daemon's RSS is read
//!    before and `--settle` s after the install.
//! 4. Call-setup latency (INVITE sent → 200 received) is summarised by when the INVITE was sent:
//!    before the push, from the push's start to `--settle` s after the install, and after; plus
//!    a timeline of `--window-ms` windows. Failed calls and retransmissions are counted over the
//!    whole run (a clean run has none).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use clap::Args;
use ringsip_mgmt::control::{self, Command as Ctl, Endpoint, Request, Response};
use ringsip_modules::snapshot;
use serde::Serialize;

use super::hist::percentile_sorted;
use super::loadgen::{Counters, GenConfig, GenHandle, LoadSpec, LoadStats};
use super::procfs::{self, cpu_list_string, parse_cpu_list};
use super::report::Latency;
use super::router::{Kind, RouterEnv, RouterProc, RouterSpec};
use super::{Fatal, ReadyCheck, nap_until_stop, ringsip_binary, start_router_with, sys, timer, usage_error};

/// The characters of the tree's prefixes (as in `config/examples/lcr.toml`).
const ALPHABET: &str = "0123456789+";
/// The value of the dialled prefix's row.
const DIAL_VALUE: &str = "1;2";
/// Largest `--prefixes`: the random prefixes must stay far from filling their space.
const MAX_PREFIXES: usize = 50_000_000;

#[derive(Args, Debug, Clone)]
#[command(after_help = "Exit status: 0 the snapshot was installed and the router ran to the end (failed calls and \
retransmissions are reported, not fatal: `clean` in the report), 1 the router could not be started, died or \
refused the push, 2 usage error.")]
pub(crate) struct PushArgs {
    /// Prefixes in the pushed tree (random, distinct, E.164-like, and the --dial prefix)
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub prefixes: usize,
    /// Prefixes in the tree ringsip starts with
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub start_prefixes: usize,
    /// Offered call rate, calls/s
    #[arg(long, value_name = "CPS", default_value_t = 2000.0)]
    pub rate: f64,
    /// Seconds of offered load
    #[arg(long, value_name = "S", default_value_t = 20.0)]
    pub duration: f64,
    /// Seconds into the load at which the push starts (with loading the config)
    #[arg(long, value_name = "S", default_value_t = 8.0)]
    pub push_at: f64,
    /// Seconds after the install that still count as "around the swap"
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub settle: f64,
    /// Width of the windows of the latency timeline, ms
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub window_ms: u64,
    /// Called numbers: call n dials PREFIX followed by n in 10 digits; both trees route PREFIX
    #[arg(long, value_name = "PREFIX", default_value = "+4930")]
    pub dial: String,
    /// Seed of the random prefixes (the same seed writes the same tables)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Router shards
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub shards: usize,
    /// CPUs of the router
    #[arg(long, value_name = "LIST", default_value = "1")]
    pub router_cpus: String,
    /// CPUs of the generator (UAC + UAS thread) and of this program
    #[arg(long, value_name = "LIST", default_value = "0")]
    pub gen_cpus: String,
    /// CPUs of the config load, snapshot build and push (ringsipctl's side) [default: --gen-cpus]
    #[arg(long, value_name = "LIST")]
    pub build_cpus: Option<String>,
    /// Scheduling of the config load, build and push: `idle` (SCHED_IDLE: it only uses CPU time
    /// the generator leaves, so the latencies are the router's) or `normal` (it competes)
    #[arg(long, value_name = "P", value_enum, default_value_t = Priority::Idle)]
    pub build_priority: Priority,
    /// ringsip binary [default: `ringsip` next to this program, built with cargo when started by cargo]
    #[arg(long, value_name = "PATH")]
    pub ringsip: Option<PathBuf>,
    /// The router's SIP address
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:5060")]
    pub target: SocketAddrV4,
    /// UDP ports of the two UAS, the destinations of dispatcher sets 1 and 2, on the target's IP
    #[arg(long, value_name = "P1,P2", value_delimiter = ',', default_value = "5080,5081")]
    pub uas_ports: Vec<u16>,
    /// UDP port of the UAC socket
    #[arg(long, value_name = "PORT", default_value_t = 5100)]
    pub uac_port: u16,
    /// Print one JSON object instead of the report
    #[arg(long)]
    pub json: bool,
    /// First retransmission interval of INVITE/BYE (doubling), ms
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub t1_ms: u64,
    /// A call fails when an expected response is this late, ms
    #[arg(long, value_name = "MS", default_value_t = 8000)]
    pub recv_timeout_ms: u64,
    /// Calls due within one tick start together at its start (0: each at its own time)
    #[arg(long, value_name = "US", default_value_t = 1000)]
    pub tick_us: u64,
    /// Socket buffer size of the generator's sockets
    #[arg(long, value_name = "BYTES", default_value_t = 4 * 1024 * 1024)]
    pub sock_buf: usize,
    /// Keep the work directory (configs, prefix tables, router log)
    #[arg(long)]
    pub keep: bool,
    /// No progress messages on stderr
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--build-priority`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Priority {
    /// SCHED_IDLE
    Idle,
    /// SCHED_OTHER, nice 0
    Normal,
}

fn say(a: &PushArgs, msg: impl AsRef<str>) {
    if !a.quiet {
        eprintln!("ringsip-bench: {}", msg.as_ref());
    }
}

/// `ringsip-bench push`.
pub(crate) fn push(a: PushArgs) -> ExitCode {
    if !(a.rate.is_finite() && a.rate > 0.0) {
        usage_error(format!("--rate must be > 0 (got {})", a.rate));
    }
    if !(a.duration.is_finite() && a.duration > 0.0 && a.push_at > 0.0 && a.push_at < a.duration) {
        usage_error("--duration must be > 0 and --push-at between 0 and --duration".into());
    }
    if !(a.settle.is_finite() && a.settle >= 0.0) || a.window_ms < 10 {
        usage_error("--settle must be >= 0 and --window-ms >= 10".into());
    }
    if a.prefixes == 0 || a.start_prefixes == 0 || a.prefixes.max(a.start_prefixes) > MAX_PREFIXES {
        usage_error(format!("--prefixes and --start-prefixes must be between 1 and {MAX_PREFIXES}"));
    }
    if a.dial.is_empty() || a.dial.len() > 40 || !a.dial.chars().all(|c| ALPHABET.contains(c)) {
        usage_error(format!("--dial must be 1 to 40 characters of {ALPHABET:?} (got {:?})", a.dial));
    }
    if a.uas_ports.len() != 2 || a.shards == 0 {
        usage_error("--uas-ports must name two ports (sets 1 and 2) and --shards be >= 1".into());
    }
    let router_cpus = parse_cpu_list(&a.router_cpus).unwrap_or_else(|e| usage_error(e));
    let gen_cpus = parse_cpu_list(&a.gen_cpus).unwrap_or_else(|e| usage_error(e));
    let build_cpus = match &a.build_cpus {
        Some(l) => parse_cpu_list(l).unwrap_or_else(|e| usage_error(e)),
        None => gen_cpus.clone(),
    };
    if router_cpus.iter().any(|c| gen_cpus.contains(c)) {
        eprintln!("ringsip-bench: warning: router CPUs {} overlap generator CPUs {}", a.router_cpus, a.gen_cpus);
    }

    let (stop, workdir) = match super::run_setup("ringsip-bench-push") {
        Ok(x) => x,
        Err(code) => return code,
    };
    let cpus = Cpus { router: router_cpus, generator: gen_cpus, build: build_cpus };
    let result = push_in(&a, &cpus, &workdir, &stop);
    if a.keep || !matches!(result, Ok(true)) {
        say(&a, format!("work directory (configs, prefix tables, router log) kept: {}", workdir.display()));
    } else {
        let _ = fs::remove_dir_all(&workdir);
    }
    super::exit_code(result, &stop)
}

struct Cpus {
    router: Vec<usize>,
    generator: Vec<usize>,
    build: Vec<usize>,
}

// ------------------------------------------------------------------ tables and configs

/// splitmix64: a small deterministic generator (the tables only need to be reproducible).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Digits after the `+` of the random prefixes, and how often each length is drawn (%).
const LENGTHS: [(u32, u64); 5] = [(5, 2), (6, 8), (7, 30), (8, 35), (9, 25)];

/// A `+` and `len` digits (the first not 0) as one number: the length above the digits.
fn key(len: u32, digits: u64) -> u64 {
    (u64::from(len) << 40) | digits
}

/// The key of `prefix` when it has the random prefixes' shape.
fn key_of(prefix: &str) -> Option<u64> {
    let d = prefix.strip_prefix('+')?;
    let len = d.len() as u32;
    let shaped = LENGTHS.iter().any(|&(l, _)| l == len) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0');
    shaped.then(|| d.parse().ok().map(|v| key(len, v))).flatten()
}

/// Write `n` rows of `prefix,value`: `dial` first (value `1;2`), then `n - 1` random distinct
/// prefixes (`+`, 5 to 9 digits, the first not 0) with values `1`, `2`, `1;2` or `2;1`.
/// Returns the file's size.
fn write_table(path: &Path, n: usize, dial: &str, seed: u64) -> io::Result<u64> {
    let mut rng = Rng(seed);
    let mut seen: HashSet<u64> = HashSet::with_capacity(n);
    if let Some(k) = key_of(dial) {
        seen.insert(k);
    }
    let mut per_len = [0u64; LENGTHS.len()];
    let mut w = BufWriter::with_capacity(1 << 20, fs::File::create(path)?);
    writeln!(w, "# ringsip-bench push: {n} prefixes, seed {seed}")?;
    writeln!(w, "prefix,value")?;
    writeln!(w, "{dial},{DIAL_VALUE}")?;
    let values = ["1", "2", "1;2", "2;1"];
    let mut written = 1;
    while written < n {
        let mut pick = rng.below(100);
        let mut li = 0;
        while li + 1 < LENGTHS.len() && pick >= LENGTHS[li].1 {
            pick -= LENGTHS[li].1;
            li += 1;
        }
        let len = LENGTHS[li].0;
        let space = 9 * 10u64.pow(len - 1);
        if per_len[li] >= space / 2 {
            continue; // this length is half full: draw another (n is far below the total)
        }
        let digits = 10u64.pow(len - 1) + rng.below(space);
        if !seen.insert(key(len, digits)) {
            continue;
        }
        per_len[li] += 1;
        writeln!(w, "+{digits},{}", values[rng.below(4) as usize])?;
        written += 1;
    }
    w.flush()?;
    drop(w);
    Ok(fs::metadata(path)?.len())
}

/// An LCR config like `config/examples/lcr.toml`: sets 1 and 2 are the two UAS, the tree
/// `routes` is read from `csv` (next to the config), and OPTIONS (the benchmark's readiness
/// probe to `sip:ping@...`) go to set 1.
fn config_text(target: SocketAddrV4, uas: [SocketAddrV4; 2], control: &Path, csv: &str) -> String {
    let control = control.display();
    let [u1, u2] = uas;
    format!(
        r#"# ringsip-bench push: an LCR config (as config/examples/lcr.toml) whose prefix tree is {csv}

[server]
listen = ["udp:{target}"]
control_socket = "{control}"

[[dispatcher.set]]
id = 1
name = "carrier-a"
algorithm = "round-robin"
destinations = ["sip:{u1}"]
probe = {{ method = "OPTIONS", interval = "2s", failure_threshold = 2, success_threshold = 1 }}

[[dispatcher.set]]
id = 2
name = "carrier-b"
algorithm = "round-robin"
destinations = ["sip:{u2}"]
probe = {{ method = "OPTIONS", interval = "2s", failure_threshold = 2, success_threshold = 1 }}

[[mtree]]
name = "routes"
type = "sets"
alphabet = "{ALPHABET}"
file = "{csv}"

[[route.request]]
name = "max-forwards"
if = "$hdr(Max-Forwards) == 0"
do = 'reply 483 "Too Many Hops"'

[[route.request]]
name = "in-dialog"
if = "has_totag and $rd != myself"
do = "forward"

[[route.request]]
name = "probe"                       # ringsip-bench's readiness probe (OPTIONS sip:ping@...)
if = "$rm == OPTIONS"
do = ['select 1 else reply 503 "No destination"', "forward"]

[[route.request]]
name = "lcr"
do = [
  'lookup routes $rU else reply 404 "No route"',
  'select $mt else reply 503 "No available gateways"',
  "forward",
]
"#
    )
}

/// The two configs and their tables in `dir`: (start config, pushed config).
fn write_configs(a: &PushArgs, uas: [SocketAddrV4; 2], dir: &Path) -> Result<(PathBuf, PathBuf), Fatal> {
    let control = dir.join("ringsip.sock");
    let mut out = Vec::new();
    for (stem, n, seed) in [("start", a.start_prefixes, a.seed), ("pushed", a.prefixes, a.seed.wrapping_add(1))] {
        let csv = format!("routes-{stem}.csv");
        let t = Instant::now();
        let size = write_table(&dir.join(&csv), n, &a.dial, seed)
            .map_err(|e| Fatal(format!("{}: {e}", dir.join(&csv).display())))?;
        say(a, format!("wrote {csv}: {} prefixes, {:.1} MB in {:.2} s", thousands(n as u64), mb(size), secs(t)));
        let cfg = dir.join(format!("lcr-{stem}.toml"));
        fs::write(&cfg, config_text(a.target, uas, &control, &csv))
            .map_err(|e| Fatal(format!("{}: {e}", cfg.display())))?;
        out.push(cfg);
    }
    let pushed = out.pop().unwrap_or_default();
    let start = out.pop().unwrap_or_default();
    Ok((start, pushed))
}

// ------------------------------------------------------------------ results

/// The push, step by step.
#[derive(Clone, Debug, Default, Serialize)]
struct PushFigures {
    /// installed by the daemon
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    config: String,
    prefixes: usize,
    /// `ringsip_config::load` of the config and its CSV file
    parse_ms: f64,
    /// `snapshot::build`: the tree sorted and laid out, config and tree serialised
    build_ms: f64,
    snapshot_bytes: u64,
    /// `control::call` push: connect, send, the daemon's check + compile + swap, the answer
    round_trip_ms: f64,
    /// round trip minus the daemon's check, compile and swap: the transfer of the bytes (and
    /// the framing, the daemon's read and its lock)
    transfer_ms: f64,
    /// the daemon's figures, from its answer
    version: u64,
    hash: String,
    check_ms: f64,
    compile_ms: f64,
    swap_ns: u64,
    changes: serde_json::Value,
    warnings: serde_json::Value,
    /// the daemon's VmRSS just before the push, kB
    rss_before_kb: Option<u64>,
    /// ... `--settle` s after the install
    rss_after_kb: Option<u64>,
    /// ... at the end of the load
    rss_end_kb: Option<u64>,
    /// the daemon's VmHWM (peak RSS) `--settle` s after the install, kB
    peak_rss_kb: Option<u64>,
    /// seconds after the first INVITE: the push started (config load), the bytes went out,
    /// the daemon's answer arrived (the install is complete)
    started_s: f64,
    sent_s: f64,
    installed_s: f64,
}

/// Setup latency of the calls whose INVITE was sent in `[from_s, to_s)`.
#[derive(Clone, Debug, Serialize)]
struct Phase {
    /// `before`, `around` (= `build` + `install`), `after`, `whole_run`
    name: &'static str,
    what: &'static str,
    from_s: f64,
    to_s: f64,
    latency: Latency,
}

/// One window of the timeline.
#[derive(Clone, Debug, Serialize)]
struct Window {
    from_s: f64,
    latency: Latency,
}

/// The calls over the whole run.
#[derive(Clone, Debug, Default, Serialize)]
struct Calls {
    planned: u64,
    attempted: u64,
    succeeded: u64,
    failed: u64,
    fail_reasons: BTreeMap<String, u64>,
    unexpected_statuses: BTreeMap<String, u64>,
    retrans_invite: u64,
    retrans_bye: u64,
    /// 200s re-sent by the UAS (no ACK yet) and answers to retransmitted requests
    retrans_uas: u64,
    /// first INVITE to the end of the last call
    load_s: f64,
    /// CPU seconds other processes used during the load (> 10 % of a core: a disturbed run)
    other_cpu_s: f64,
    /// worst lateness of a call start behind its schedule (the generator's own disturbance)
    gen_max_lag_ms: f64,
    /// setup latency of every call
    setup: Latency,
}

#[derive(Serialize)]
struct Settings {
    target: String,
    uas: Vec<String>,
    uac: String,
    router_cpus: String,
    gen_cpus: String,
    build_cpus: String,
    build_priority: Priority,
    shards: usize,
    rate: f64,
    duration_s: f64,
    push_at_s: f64,
    settle_s: f64,
    window_ms: u64,
    dial: String,
    start_prefixes: usize,
    prefixes: usize,
    seed: u64,
}

#[derive(Serialize)]
struct Output<'a> {
    tool: &'static str,
    command: &'static str,
    version: &'static str,
    settings: Settings,
    push: &'a PushFigures,
    calls: &'a Calls,
    /// before, during (push start to install + settle; split into build and install), after
    phases: &'a [Phase],
    windows: &'a [Window],
    router_alive: bool,
    /// `status` after the load: the version running
    running_version: Option<u64>,
    errors: &'a [String],
    /// push installed, router alive, no error
    ok: bool,
    /// ok, and no failed call and no retransmission
    clean: bool,
}

// ------------------------------------------------------------------ the run

fn push_in(a: &PushArgs, cpus: &Cpus, workdir: &Path, stop: &AtomicBool) -> Result<bool, Fatal> {
    let ip = *a.target.ip();
    let uas = [SocketAddrV4::new(ip, a.uas_ports[0]), SocketAddrV4::new(ip, a.uas_ports[1])];
    let uac = SocketAddrV4::new(ip, a.uac_port);

    // ---- tables, configs and the binary first: they may use every CPU
    let (start_cfg, pushed_cfg) = write_configs(a, uas, workdir)?;
    let bin = ringsip_binary(a.ringsip.as_deref(), a.quiet, true)?;

    if let Err(e) = sys::set_thread_affinity(&cpus.generator) {
        eprintln!("ringsip-bench: warning: cannot pin to CPUs {}: {e}", a.gen_cpus);
    }
    let lg = GenHandle::start(GenConfig {
        uac: vec![uac],
        uas: uas.to_vec(),
        sock_buf: a.sock_buf,
        t1_ms: a.t1_ms,
        timeout_ms: a.recv_timeout_ms,
        cpus: cpus.generator.clone(),
        dial: Some(a.dial.clone()),
    })
    .map_err(|e| Fatal(e.to_string()))?;
    let env = RouterEnv {
        mode: "stateless",
        listen: a.target,
        backends: uas.to_vec(),
        outdir: workdir.to_path_buf(),
        gen_cpus: cpus.generator.clone(),
    };
    let spec = RouterSpec { name: "ringsip".into(), kind: Kind::Ringsip { bin, config: start_cfg } };
    let router_cpus: Vec<usize> = cpus.router.iter().copied().take(a.shards).collect();
    say(a, format!("starting ringsip ({} shard(s) on CPUs {})", a.shards, cpu_list_string(&router_cpus)));
    let rc = ReadyCheck { lg: &lg, stop, target: a.target, uas_ports: &a.uas_ports };
    let mut router = start_router_with(&rc, &spec, a.shards, &router_cpus, &env).map_err(Fatal)?;
    let ep = Endpoint::Unix(workdir.join("ringsip.sock"));
    let version0 = daemon_version(&ep, stop).map_err(|e| Fatal(format!("{e}; log tail:\n{}", router.log_tail(20))))?;

    // ---- warm-up: the dialled numbers must route (a 404 here means the tree misses them)
    let warm = LoadSpec {
        target: a.target,
        rate: a.rate.min(1000.0),
        calls: timer::calls_for(a.rate.min(1000.0), 0.5),
        tick_ns: a.tick_us * 1000,
        samples: false,
    };
    let w = run_load(&lg, warm, &mut router, stop, |_| {});
    if !router.alive() {
        return Err(Fatal(format!("ringsip died during the warm-up; log tail:\n{}", router.log_tail(20))));
    }
    if w.failed > 0 {
        return Err(Fatal(format!(
            "{} of {} warm-up calls to {}... failed (unexpected responses {:?}): the route does not carry them",
            w.failed, w.attempted, a.dial, w.unexpected
        )));
    }

    // ---- the load, with the push at --push-at
    let calls = timer::calls_for(a.rate, a.duration);
    say(
        a,
        format!(
            "{} calls at {} calls/s; the push of {} prefixes at {} s",
            calls,
            a.rate,
            thousands(a.prefixes as u64),
            a.push_at
        ),
    );
    let c0 = lg.counters();
    let ticks0 = procfs::all_ticks();
    let spec_l = LoadSpec { target: a.target, rate: a.rate, calls, tick_ns: a.tick_us * 1000, samples: true };
    let t_load = Instant::now();
    let mut fig = PushFigures { config: pushed_cfg.display().to_string(), prefixes: a.prefixes, ..Default::default() };
    let mut marks: Option<Marks> = None;
    let mut built = None;
    let pid = router.pid;
    let stats = run_load(&lg, spec_l, &mut router, stop, |router_alive| {
        if marks.is_none() && router_alive && t_load.elapsed().as_secs_f64() >= a.push_at {
            let (m, b) = do_push(a, cpus, &pushed_cfg, &ep, version0 + 1, pid, &mut fig, stop);
            marks = Some(m);
            built = b;
        }
    });
    drop(built);
    fig.rss_end_kb = mem_kb(pid).0;
    let c1 = lg.counters();
    let other_cpu_s = procfs::other_cpu_s(&ticks0, &procfs::all_ticks(), &[pid, std::process::id()], sys::clk_tck());
    let router_alive = router.alive();
    let mut errors = Vec::new();
    if !router_alive {
        errors.push(format!("ringsip died during the run; log tail:\n{}", router.log_tail(20)));
    }
    if marks.is_none() && !stop.load(Ordering::Relaxed) {
        errors.push("the push did not happen (the load ended first)".into());
    }
    if let Some(e) = &fig.error {
        errors.push(format!("push: {e}"));
    }
    let running_version = if router_alive {
        status(&ep).ok().and_then(|r| r.result.get("version").and_then(|v| v.as_u64()))
    } else {
        None
    };
    if fig.ok && running_version.is_some_and(|v| v != fig.version) {
        errors.push(format!("the daemon runs version {running_version:?} after the push of version {}", fig.version));
    }
    router.stop();
    drop(lg);

    // ---- figures
    let start = stats.run_start.unwrap_or(t_load);
    let off = |t: Instant| t.saturating_duration_since(start).as_secs_f64();
    if let Some(m) = &marks {
        fig.started_s = off(m.started);
        fig.sent_s = off(m.sent);
        fig.installed_s = off(m.done);
    }
    let end_s = stats.start_s + 1e-6;
    let (phases, windows) = latency_phases(&stats, &fig, a.settle, a.window_ms, end_s);
    let mut calls_r = calls_summary(&stats, calls, &c0, &c1);
    calls_r.other_cpu_s = other_cpu_s;
    let ok = fig.ok && router_alive && errors.is_empty();
    let clean = ok && calls_r.failed == 0 && calls_r.retrans_invite + calls_r.retrans_bye + calls_r.retrans_uas == 0;

    if a.json {
        let out = Output {
            tool: "ringsip-bench",
            command: "push",
            version: env!("CARGO_PKG_VERSION"),
            settings: Settings {
                target: a.target.to_string(),
                uas: uas.iter().map(ToString::to_string).collect(),
                uac: uac.to_string(),
                router_cpus: cpu_list_string(&router_cpus),
                gen_cpus: cpu_list_string(&cpus.generator),
                build_cpus: cpu_list_string(&cpus.build),
                build_priority: a.build_priority,
                shards: a.shards,
                rate: a.rate,
                duration_s: a.duration,
                push_at_s: a.push_at,
                settle_s: a.settle,
                window_ms: a.window_ms,
                dial: a.dial.clone(),
                start_prefixes: a.start_prefixes,
                prefixes: a.prefixes,
                seed: a.seed,
            },
            push: &fig,
            calls: &calls_r,
            phases: &phases,
            windows: &windows,
            router_alive,
            running_version,
            errors: &errors,
            ok,
            clean,
        };
        match serde_json::to_string_pretty(&out) {
            Ok(s) => println!("{s}"),
            Err(e) => return Err(Fatal(format!("JSON: {e}"))),
        }
    } else {
        let head = format!(
            "ringsip-bench push: {} calls/s for {} s through ringsip {} ({} shard(s) on CPUs {}; generator on CPUs {}, \
             config load, build and push on CPUs {} at {} priority)",
            a.rate,
            a.duration,
            a.target,
            a.shards,
            cpu_list_string(&router_cpus),
            cpu_list_string(&cpus.generator),
            cpu_list_string(&cpus.build),
            match a.build_priority {
                Priority::Idle => "SCHED_IDLE",
                Priority::Normal => "normal",
            }
        );
        print!("{}", human(&head, a, &fig, &calls_r, &phases, &windows, clean, &errors));
    }
    Ok(ok)
}

/// When the push's steps happened.
struct Marks {
    started: Instant,
    sent: Instant,
    done: Instant,
}

/// Load, build and push the config; then wait `--settle` s and read the daemon's memory.
#[allow(clippy::too_many_arguments)]
fn do_push(
    a: &PushArgs,
    cpus: &Cpus,
    cfg_path: &Path,
    ep: &Endpoint,
    version: u64,
    pid: u32,
    fig: &mut PushFigures,
    stop: &AtomicBool,
) -> (Marks, Option<Built>) {
    let (rss, _) = mem_kb(pid);
    fig.rss_before_kb = rss;
    let now = Instant::now();
    let mut marks = Marks { started: now, sent: now, done: now };
    // its own thread: pinned to --build-cpus, at --build-priority
    let result = std::thread::scope(|s| {
        let steps = s.spawn(|| {
            if let Err(e) = sys::set_thread_affinity(&cpus.build) {
                eprintln!("ringsip-bench: warning: cannot pin the build to CPUs {:?}: {e}", cpus.build);
            }
            if a.build_priority == Priority::Idle {
                if let Err(e) = sched_idle() {
                    eprintln!("ringsip-bench: warning: the build runs at normal priority: {e}");
                }
            }
            push_steps(cfg_path, ep, version, fig, &mut marks)
        });
        steps.join().unwrap_or_else(|_| Err("the push thread panicked".into()))
    });
    let built = match result {
        Ok(b) => {
            eprint_push(a, fig);
            Some(b)
        }
        Err(e) => {
            say(a, format!("push failed: {e}"));
            fig.error = Some(e);
            None
        }
    };
    let wait = a.settle - marks.done.elapsed().as_secs_f64();
    if wait > 0.0 {
        nap_until_stop(stop, wait);
    }
    let (rss, hwm) = mem_kb(pid);
    fig.rss_after_kb = rss;
    fig.peak_rss_kb = hwm;
    (marks, built)
}

/// Put the calling thread in SCHED_IDLE (`chrt --idle --pid 0 TID`): it then runs only when
/// its CPU has nothing else to do and never delays the generator sharing that CPU.
fn sched_idle() -> Result<(), String> {
    let link = fs::read_link("/proc/thread-self").map_err(|e| format!("/proc/thread-self: {e}"))?;
    let tid = link.file_name().and_then(|s| s.to_str()).ok_or("no thread id in /proc/thread-self")?.to_string();
    let out = std::process::Command::new("chrt")
        .args(["--idle", "--pid", "0", &tid])
        .output()
        .map_err(|e| format!("cannot run chrt (util-linux): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("chrt --idle --pid 0 {tid}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Load, build, push: the figures into `fig`, the times into `marks`.
fn push_steps(
    cfg_path: &Path,
    ep: &Endpoint,
    version: u64,
    fig: &mut PushFigures,
    marks: &mut Marks,
) -> Result<Built, String> {
    let started = Instant::now();
    *marks = Marks { started, sent: started, done: started };
    let cfg = ringsip_config::load(cfg_path).map_err(|e| format!("{}: {e}", cfg_path.display()))?;
    let parsed = Instant::now();
    fig.parse_ms = ms(parsed - started);
    let bytes = snapshot::build(&cfg, version, snapshot::unix_ms_now()).map_err(|e| e.to_string())?;
    let sent = Instant::now();
    marks.sent = sent;
    fig.build_ms = ms(sent - parsed);
    fig.snapshot_bytes = bytes.len() as u64;
    let req = Request {
        token: None,
        command: Ctl::Push { source: cfg_path.display().to_string(), bytes: bytes.len() as u64 },
    };
    let resp = control::call(ep, &req, Some(&bytes)).map_err(|e| e.to_string());
    let done = Instant::now();
    marks.done = done;
    fig.round_trip_ms = ms(done - sent);
    let resp = resp?;
    if !resp.ok {
        return Err(format!("the daemon refused the snapshot ({:?}): {}", resp.kind, resp.error.unwrap_or_default()));
    }
    let r = &resp.result;
    let f = |k: &str| r.get(k).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
    fig.version = r.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0);
    fig.hash = r.get("hash").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    fig.check_ms = f("check_ms");
    fig.compile_ms = f("compile_ms");
    fig.swap_ns = r.get("swap_ns").and_then(serde_json::Value::as_u64).unwrap_or(0);
    fig.changes = r.get("changes").cloned().unwrap_or_default();
    fig.warnings = r.get("warnings").cloned().unwrap_or_default();
    let daemon_ms = fig.check_ms + fig.compile_ms + fig.swap_ns as f64 / 1e6;
    fig.transfer_ms = ((fig.round_trip_ms - daemon_ms) * 1e3).round() / 1e3;
    fig.ok = true;
    Ok(Built { _config: cfg, _bytes: bytes })
}

/// The pushed config and snapshot, freed after the load: unmapping a few hundred MB while
/// calls are measured would stall this process's generator thread.
struct Built {
    _config: ringsip_config::Config,
    _bytes: Vec<u8>,
}

fn eprint_push(a: &PushArgs, f: &PushFigures) {
    say(
        a,
        format!(
            "pushed version {}: parse {:.1} ms, build {:.1} ms, {:.1} MB, round trip {:.1} ms (check {:.1}, compile {:.1}, swap {} ns)",
            f.version,
            f.parse_ms,
            f.build_ms,
            mb(f.snapshot_bytes),
            f.round_trip_ms,
            f.check_ms,
            f.compile_ms,
            f.swap_ns
        ),
    );
}

/// Run one load to its end, calling `tick(router alive)` every few ms meanwhile; abort on
/// `stop` or when the router dies.
fn run_load(
    lg: &GenHandle,
    spec: LoadSpec,
    router: &mut RouterProc,
    stop: &AtomicBool,
    mut tick: impl FnMut(bool),
) -> LoadStats {
    lg.start_load(spec);
    let mut aborted = false;
    loop {
        match lg.wait_done(Duration::from_millis(5)) {
            Ok(s) => return s,
            Err(RecvTimeoutError::Disconnected) => return LoadStats::default(),
            Err(RecvTimeoutError::Timeout) => {
                let alive = router.alive();
                if !aborted && (!alive || stop.load(Ordering::Relaxed)) {
                    lg.abort();
                    aborted = true;
                }
                if !aborted {
                    tick(alive);
                }
            }
        }
    }
}

fn status(ep: &Endpoint) -> Result<Response, String> {
    let r = control::call(ep, &Request { token: None, command: Ctl::Status }, None).map_err(|e| e.to_string())?;
    if r.ok { Ok(r) } else { Err(r.error.unwrap_or_else(|| "status failed".into())) }
}

/// The version the daemon runs, once its control socket answers (up to 10 s).
fn daemon_version(ep: &Endpoint, stop: &AtomicBool) -> Result<u64, String> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match status(ep) {
            Ok(r) => {
                return r
                    .result
                    .get("version")
                    .and_then(serde_json::Value::as_u64)
                    .ok_or_else(|| format!("status without a version: {}", r.result));
            }
            Err(e) if Instant::now() > end || stop.load(Ordering::Relaxed) => {
                return Err(format!("the control socket {ep} did not answer `status`: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// VmRSS and VmHWM of `pid`, kB.
fn mem_kb(pid: u32) -> (Option<u64>, Option<u64>) {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    parse_mem(&text)
}

fn parse_mem(status: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn latency_of(mut v: Vec<u32>) -> Latency {
    v.sort_unstable();
    let n = v.len() as u64;
    let sum: u64 = v.iter().map(|&x| u64::from(x)).sum();
    let p = |q: f64| percentile_sorted(&v, q).map(u64::from);
    Latency {
        n,
        p50: p(50.0),
        p99: p(99.0),
        p999: p(99.9),
        max: v.last().map(|&x| u64::from(x)),
        mean: if n == 0 { f64::NAN } else { sum as f64 / n as f64 },
    }
}

/// Latency by phase (before, during = build + install, after) and by window. `end_s`: the last
/// INVITE's send time (just past it).
fn latency_phases(
    stats: &LoadStats,
    fig: &PushFigures,
    settle: f64,
    window_ms: u64,
    end_s: f64,
) -> (Vec<Phase>, Vec<Window>) {
    let samples = &stats.setup_samples;
    let between = |from: f64, to: f64| {
        let (f, t) = ((from * 1e6) as u64, (to * 1e6) as u64);
        samples.iter().filter(|&&(s, _)| (f..t).contains(&u64::from(s))).map(|&(_, l)| l).collect::<Vec<u32>>()
    };
    let mut phases = Vec::new();
    let pushed = fig.started_s > 0.0;
    if pushed {
        let around_end = (fig.installed_s + settle).min(end_s);
        for (name, what, from, to) in [
            ("before", "before the push", 0.0, fig.started_s),
            ("around", "around the swap: push start to install + settle", fig.started_s, around_end),
            ("build", "config load and snapshot build", fig.started_s, fig.sent_s),
            ("install", "transfer, check, compile, swap + settle", fig.sent_s, around_end),
            ("after", "after", around_end, end_s),
        ] {
            phases.push(Phase { name, what, from_s: from, to_s: to, latency: latency_of(between(from, to)) });
        }
    }
    phases.push(Phase {
        name: "whole_run",
        what: "whole run",
        from_s: 0.0,
        to_s: end_s,
        latency: latency_of(between(0.0, end_s)),
    });

    let w_us = window_ms * 1000;
    let n_windows = ((end_s * 1e6) as u64).div_ceil(w_us).max(1) as usize;
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); n_windows];
    for &(s, l) in samples {
        if let Some(b) = buckets.get_mut((u64::from(s) / w_us) as usize) {
            b.push(l);
        }
    }
    let windows = buckets
        .into_iter()
        .enumerate()
        .map(|(i, b)| Window { from_s: (i as u64 * w_us) as f64 / 1e6, latency: latency_of(b) })
        .collect();
    (phases, windows)
}

fn calls_summary(s: &LoadStats, planned: u64, c0: &Counters, c1: &Counters) -> Calls {
    let mut fail_reasons = BTreeMap::new();
    for (k, v) in [
        ("timeout_invite", s.fail_timeout_invite),
        ("timeout_bye", s.fail_timeout_bye),
        ("unexpected_response", s.fail_unexpected),
        ("other", s.fail_other),
    ] {
        if v > 0 {
            fail_reasons.insert(k.to_string(), v);
        }
    }
    Calls {
        planned,
        attempted: s.attempted,
        succeeded: s.succeeded,
        failed: s.failed,
        fail_reasons,
        unexpected_statuses: s.unexpected.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        retrans_invite: s.retrans_invite,
        retrans_bye: s.retrans_bye,
        retrans_uas: c1.uas_retrans.saturating_sub(c0.uas_retrans),
        load_s: s.load_s,
        other_cpu_s: 0.0,
        gen_max_lag_ms: s.max_lag_ms,
        setup: (&s.setup).into(),
    }
}

// ------------------------------------------------------------------ the report

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn mib_kb(kb: Option<u64>) -> String {
    kb.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration given in ms: `1234.5 ms`, `65.9 ms`, `0.35 ms`, `35 µs`, `1.8 µs`.
fn dur_ms(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else if v >= 0.1 {
        format!("{v:.2} ms")
    } else if v >= 0.01 {
        format!("{:.0} µs", v * 1e3)
    } else {
        format!("{:.1} µs", v * 1e3)
    }
}

/// µs below 10 ms, else ms.
fn lat(us: Option<u64>) -> String {
    match us {
        None => "-".into(),
        Some(v) if v < 10_000 => format!("{v} µs"),
        Some(v) => format!("{:.1} ms", v as f64 / 1000.0),
    }
}

#[allow(clippy::too_many_arguments)]
fn human(
    head: &str,
    a: &PushArgs,
    f: &PushFigures,
    c: &Calls,
    phases: &[Phase],
    windows: &[Window],
    clean: bool,
    errors: &[String],
) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{head}");
    let _ = writeln!(
        o,
        "tree \"routes\": {} prefixes at start; at {} s a config with {} prefixes is loaded, built and pushed",
        thousands(a.start_prefixes as u64),
        a.push_at,
        thousands(a.prefixes as u64)
    );
    let _ = writeln!(o);
    if let Some(e) = &f.error {
        let _ = writeln!(
            o,
            "push of {} prefixes FAILED after parse {:.1} ms, build {:.1} ms, round trip {:.1} ms: {e}",
            thousands(f.prefixes as u64),
            f.parse_ms,
            f.build_ms,
            f.round_trip_ms
        );
    } else if f.ok {
        let _ = writeln!(o, "push of {} prefixes (version {})", thousands(f.prefixes as u64), f.version);
        let rows: [(&str, &str, String); 8] = [
            ("parse", "ringsip_config::load: TOML + CSV, validated", dur_ms(f.parse_ms)),
            (
                "build",
                "snapshot::build: tree sorted, laid out, rkyv",
                format!("{}  ({:.1} MB snapshot)", dur_ms(f.build_ms), mb(f.snapshot_bytes)),
            ),
            ("round trip", "control::call push, until the daemon's answer", dur_ms(f.round_trip_ms)),
            ("  transfer", "round trip - the daemon's check, compile, swap", dur_ms(f.transfer_ms)),
            ("  check", "daemon: header, hash, bytecheck, trees loaded", dur_ms(f.check_ms)),
            ("  compile", "daemon: run-time structures, state carried over", dur_ms(f.compile_ms)),
            ("  swap", "daemon: the atomic pointer store", dur_ms(f.swap_ns as f64 / 1e6)),
            (
                "daemon RSS",
                "before -> settle after the install (peak)",
                format!(
                    "{} -> {} ({}); end {}",
                    mib_kb(f.rss_before_kb),
                    mib_kb(f.rss_after_kb),
                    mib_kb(f.peak_rss_kb),
                    mib_kb(f.rss_end_kb)
                ),
            ),
        ];
        for (k, what, v) in rows {
            let _ = writeln!(o, "  {k:<12} {what:<50} {v}");
        }
        let _ = writeln!(
            o,
            "  (t = {:.2} s push start, {:.2} s bytes sent, {:.2} s installed; t: seconds after the first INVITE)",
            f.started_s, f.sent_s, f.installed_s
        );
    } else {
        let _ = writeln!(o, "push: not done");
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "call setup latency (INVITE sent -> 200 received), calls by when their INVITE was sent:");
    let _ = writeln!(
        o,
        "  {:<50} {:>13} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "phase", "t (s)", "calls", "p50", "p99", "p99.9", "max"
    );
    for p in phases {
        let l = &p.latency;
        let indent = if matches!(p.name, "build" | "install") { "  " } else { "" };
        let _ = writeln!(
            o,
            "  {:<50} {:>13} {:>7} {:>9} {:>9} {:>9} {:>9}",
            format!("{indent}{}", p.what),
            format!("{:.2}-{:.2}", p.from_s, p.to_s),
            l.n,
            lat(l.p50),
            lat(l.p99),
            lat(l.p999),
            lat(l.max)
        );
    }
    if f.started_s > 0.0 {
        let _ = writeln!(o);
        let _ = writeln!(o, "{} ms windows around the push:", a.window_ms);
        let from = f.started_s - 1.0;
        let to = f.installed_s + a.settle + 1.0;
        let w_s = a.window_ms as f64 / 1000.0;
        for w in windows.iter().filter(|w| w.from_s + w_s > from && w.from_s < to) {
            let l = &w.latency;
            let mut mark = Vec::new();
            for (t, what) in [(f.started_s, "push start"), (f.sent_s, "sent"), (f.installed_s, "installed")] {
                if (w.from_s..w.from_s + w_s).contains(&t) {
                    mark.push(what);
                }
            }
            let _ = writeln!(
                o,
                "  {:>6.1} s {:>6} calls  p50 {:>9}  p99 {:>9}  max {:>9}  {}",
                w.from_s,
                l.n,
                lat(l.p50),
                lat(l.p99),
                lat(l.max),
                if mark.is_empty() { String::new() } else { format!("<- {}", mark.join(", ")) }
            );
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "calls: {} attempted, {} ok, {} failed{}; retransmissions: {} INVITE, {} BYE, {} by the UAS; generator max lag {:.1} ms",
        c.attempted,
        c.succeeded,
        c.failed,
        if c.fail_reasons.is_empty() {
            String::new()
        } else {
            format!(" {:?} {:?}", c.fail_reasons, c.unexpected_statuses)
        },
        c.retrans_invite,
        c.retrans_bye,
        c.retrans_uas,
        c.gen_max_lag_ms
    );
    let busy = if c.load_s > 0.0 { 100.0 * c.other_cpu_s / c.load_s } else { 0.0 };
    let _ = writeln!(
        o,
        "other processes used {:.1} CPU-s during the {:.1} s load ({busy:.0} % of a core){}",
        c.other_cpu_s,
        c.load_s,
        if busy > 10.0 { ": a DISTURBED run, repeat it on a quiet machine" } else { "" }
    );
    let _ = writeln!(
        o,
        "{}",
        if clean {
            "clean: the push was installed with no failed call and no retransmission"
        } else {
            "NOT CLEAN: see the errors, failed calls or retransmissions above"
        }
    );
    for e in errors {
        let _ = writeln!(o, "ERROR {e}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_distinct_deterministic_and_route_the_dialled_numbers() {
        let dir = std::env::temp_dir().join(format!("ringsip-bench-push-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.csv");
        let b = dir.join("b.csv");
        write_table(&a, 5000, "+4930", 7).unwrap();
        write_table(&b, 5000, "+4930", 7).unwrap();
        let text = fs::read_to_string(&a).unwrap();
        assert_eq!(text, fs::read_to_string(&b).unwrap());
        let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).skip(1).collect();
        assert_eq!(rows.len(), 5000);
        assert_eq!(rows[0], "+4930,1;2");
        let prefixes: HashSet<&str> = rows.iter().map(|r| r.split(',').next().unwrap()).collect();
        assert_eq!(prefixes.len(), 5000);

        // the config loads, builds, and its tree routes a dialled number
        let uas = ["127.0.0.1:5080".parse().unwrap(), "127.0.0.1:5081".parse().unwrap()];
        let cfg_path = dir.join("lcr.toml");
        fs::write(&cfg_path, config_text("127.0.0.1:5060".parse().unwrap(), uas, &dir.join("s.sock"), "a.csv"))
            .unwrap();
        let cfg = ringsip_config::load(&cfg_path).unwrap_or_else(|e| panic!("{e}"));
        let bytes = snapshot::build(&cfg, 2, 0).unwrap();
        assert!(snapshot::header(&bytes).unwrap().version == 2);
        let (t, _) = ringsip_modules::route::build_tree(&cfg.mtrees[0]).unwrap();
        assert_eq!(t.len(), 5000);
        assert!(t.longest(b"+49300000000001").is_some());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn memory_and_latency_summaries() {
        let s = "Name:\tringsip\nVmHWM:\t  150000 kB\nVmRSS:\t   98765 kB\n";
        assert_eq!(parse_mem(s), (Some(98765), Some(150000)));
        assert_eq!(parse_mem(""), (None, None));
        let l = latency_of((1..=100).rev().collect());
        assert_eq!((l.n, l.p50, l.p99, l.max), (100, Some(50), Some(99), Some(100)));
        assert_eq!(latency_of(Vec::new()).p99, None);
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(lat(Some(9_999)), "9999 µs");
        assert_eq!(lat(Some(12_345)), "12.3 ms");
        assert_eq!(dur_ms(2152.24), "2152.2 ms");
        assert_eq!(dur_ms(0.35), "0.35 ms");
        assert_eq!(dur_ms(0.035), "35 µs");
        assert_eq!(dur_ms(0.001822), "1.8 µs");
        assert_eq!(dur_ms(f64::NAN), "-");
    }

    #[test]
    fn phases_split_the_samples_by_send_time() {
        let stats = LoadStats {
            // (sent µs, latency µs)
            setup_samples: vec![(100_000, 10), (1_100_000, 20), (1_600_000, 30), (2_500_000, 40), (3_900_000, 50)],
            ..Default::default()
        };
        let fig = PushFigures { started_s: 1.0, sent_s: 1.5, installed_s: 1.8, ..Default::default() };
        let (p, w) = latency_phases(&stats, &fig, 1.0, 500, 4.0);
        let n: Vec<u64> = p.iter().map(|p| p.latency.n).collect();
        // before, around (1.0-2.8), build (1.0-1.5), install (1.5-2.8), after, whole
        assert_eq!(n, vec![1, 3, 1, 2, 1, 5]);
        assert_eq!(p[3].latency.max, Some(40));
        assert_eq!(w.len(), 8);
        assert_eq!(w[2].latency.n, 1);
        assert_eq!(w[7].latency.max, Some(50));
    }
}
