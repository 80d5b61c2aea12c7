//! `ringsip-bench`: end-to-end benchmarks of a running router.
//!
//! `ringsip-bench lb` is the stateless load-balancer benchmark of `shared/bench/run-sip-bench.sh`
//! in one process: it starts the router pinned to its CPUs, answers as the two UAS (127.0.0.1:5080,
//! :5081) and places calls as the UAC (127.0.0.1:5100) exactly like sipp's `uac.xml`/`uas.xml`,
//! from one thread on the generator CPU, and reports the router's CPU per routed message with the
//! harness's definitions (schedstat and utime+stime of the router and all its descendants, over the
//! load plus a drain, minus the router's idle rate measured before the load).
//!
//! `ringsip-bench stateful` is the same benchmark for the transaction-stateful proxy, the
//! harness's `stateful` mode: the same calls, with the router answering each INVITE with its own
//! 100 Trying (absorbed by the UAC, not counted as routed) and record-routing, so the UAC's ACK
//! and BYE carry the route set (the Record-Route of the 200, reversed, as sipp's `uac.xml` with
//! `rrs="true"`; like sipp they are still sent to the router's address, and with no route set,
//! e.g. through the floor forwarder, they go there too). ringsip runs the built-in
//! `config/examples/stateful-lb.toml`, Kamailio `shared/bench/kamailio/stateful-proxy.cfg` with
//! 4 GB of shared memory; 3,000 calls/s and a 6 s drain by default. Besides µs per routed message
//! it reports µs per call and the 100 Trying and route sets seen, and its ratios are
//! ringsip/kamailio and ringsip/sip-floor (per message and per call). It shares `lb`'s flags,
//! runner and report (`Mode` is what differs).
//!
//! `ringsip-bench push` (module `push`) measures a config push under load: ringsip runs an LCR
//! config with a small prefix tree while calls flow, and a config with a million-prefix tree is
//! loaded, built into a snapshot and pushed over the control socket; it reports each step's time,
//! the daemon's memory, and call-setup latency before, around and after the swap.
//!
//! `ringsip-bench rtp` (module `rtp`) is the RTP relay benchmark of `shared/bench/run-rtp-bench.sh`:
//! calls over the ng protocol, RTP through ringsip's relay (and rtpengine and the floor relay).
//!
//! Modules: `loadgen` (UAC + UAS engine), `sip` (scanner, templates, writers), `timer` (pacing,
//! timer wheel), `hist` (latency histogram), `procfs` (/proc readers), `router` (starting and
//! stopping routers), `report` (result definitions, table, JSON), `push` (the push benchmark),
//! `sys` (the only `unsafe`: recvmmsg/sendmmsg/ppoll/affinity).

mod hist;
mod loadgen;
mod procfs;
mod push;
mod report;
mod router;
mod rtp;
mod sip;
mod sys;
mod timer;

use std::fs;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, CommandFactory, Parser, Subcommand};
use serde::Serialize;

use loadgen::{GenConfig, GenHandle, LoadSpec};
use procfs::{TreeSnap, cpu_list_string, parse_cpu_list};
use report::{Comparison, RampResult, RunResult, Samples};
use router::{Kind, RouterEnv, RouterProc, RouterSpec};

/// The example configuration ringsip runs with unless `--config` is given.
const EXAMPLE_CONFIG: &str = include_str!("../../../config/examples/stateless-lb.toml");

/// The example configuration of `stateful`: the transaction-stateful load balancer.
const STATEFUL_CONFIG: &str = include_str!("../../../config/examples/stateful-lb.toml");

#[derive(Parser, Debug)]
#[command(
    name = "ringsip-bench",
    version,
    about = "End-to-end benchmarks of ringsip (and of Kamailio and the floor forwarder for comparison)."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Stateless load balancer: UAC -> router -> 2 UAS, router CPU per routed message.
    Lb(LbArgs),
    /// Transaction-stateful proxy: lb's calls through a router that answers 100 Trying and
    /// record-routes; router CPU per call and per routed message.
    Stateful(StatefulArgs),
    /// A config push under load: a 1,000,000-prefix mtree is loaded, built and pushed while
    /// calls flow; times of each step, daemon memory, call-setup latency around the swap.
    Push(push::PushArgs),
    /// RTP relay: calls set up over the ng protocol, RTP both ways through the relay, loss,
    /// latency, jitter and relay CPU per packet (vs rtpengine and the floor relay).
    Rtp(rtp::RtpArgs),
}

#[derive(Args, Debug, Clone)]
#[command(after_help = "Exit status: 0 the run completed (failed calls are reported, not fatal), \
1 a router could not be started or died, 2 usage error.")]
struct LbArgs {
    /// Offered call rate, calls/s (with --ramp: the first step) [default: 8000, with --ramp 2000]
    #[arg(long, value_name = "CPS")]
    rate: Option<f64>,
    /// Seconds of offered load
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    duration: f64,
    /// Number of calls (instead of rate x duration)
    #[arg(long, value_name = "N")]
    calls: Option<u64>,
    /// Shard counts to run, one run each (a sweep): `--shards 1,2`
    #[arg(long, value_name = "N,...", value_delimiter = ',', default_value = "1")]
    shards: Vec<usize>,
    /// CPUs of the router; a run with N shards gets the first N
    #[arg(long, value_name = "LIST", default_value = "1")]
    router_cpus: String,
    /// CPUs of the generator (UAC + UAS thread) and of this program
    #[arg(long, value_name = "LIST", default_value = "0")]
    gen_cpus: String,
    /// ringsip configuration [default: config/examples/stateless-lb.toml, built in]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// ringsip binary [default: `ringsip` next to this program, built with cargo if missing]
    #[arg(long, value_name = "PATH")]
    ringsip: Option<PathBuf>,
    /// Run this router command instead of ringsip (foreground; gets ROUTER_LISTEN, ROUTER_BACKENDS,
    /// ROUTER_WORKERS, ROUTER_MODE, BENCH_OUTDIR like the shared harness)
    #[arg(long, value_name = "CMD", conflicts_with = "attach")]
    router_cmd: Option<String>,
    /// Label of the router in the results [default: ringsip, the command's name, attached:PID]
    #[arg(long, value_name = "NAME")]
    router_name: Option<String>,
    /// Measure this already running router process (and its descendants): start nothing
    #[arg(long, value_name = "PID", conflicts_with_all = ["vs_kamailio", "vs_floor"])]
    attach: Option<u32>,
    /// The router's SIP address
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:5060")]
    target: SocketAddrV4,
    /// UDP ports of the UAS responders (the router's destinations), on the target's IP
    #[arg(long, value_name = "P,...", value_delimiter = ',', default_value = "5080,5081")]
    uas_ports: Vec<u16>,
    /// UDP port of the (first) UAC socket
    #[arg(long, value_name = "PORT", default_value_t = 5100)]
    uac_port: u16,
    /// UAC sockets (ports uac-port, uac-port+1, ...), calls spread round-robin: a router with
    /// SO_REUSEPORT shards hashes each source 4-tuple to one shard, so use >= shards
    #[arg(long, value_name = "K", default_value_t = 1)]
    uac_sockets: u16,
    /// Print one JSON object instead of the table
    #[arg(long)]
    json: bool,
    /// Raise the rate step by step until calls fail or are retransmitted
    #[arg(long)]
    ramp: bool,
    /// Seconds per ramp step
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    step_duration: f64,
    /// Rate factor between ramp steps
    #[arg(long, value_name = "X", default_value_t = 1.25)]
    ramp_factor: f64,
    /// Last ramp step rate
    #[arg(long, value_name = "CPS", default_value_t = 400_000.0)]
    max_rate: f64,
    /// Also run the same load through Kamailio (tuned: -x tlsf -b 4194304) and print the ratio
    #[arg(long)]
    vs_kamailio: bool,
    /// Kamailio configuration [default: ../shared/bench/kamailio/stateless-lb.cfg from the repo root]
    #[arg(long, value_name = "FILE")]
    kamailio_cfg: Option<PathBuf>,
    /// Kamailio binary
    #[arg(long, value_name = "PATH", default_value = "kamailio")]
    kamailio_bin: String,
    /// Extra Kamailio arguments (the tuned build of the baseline)
    #[arg(long, value_name = "ARGS", default_value = "-x tlsf -b 4194304", allow_hyphen_values = true)]
    kamailio_extra: String,
    /// Also run the floor forwarder (shared/bench/floor, built with cargo into a temp dir)
    #[arg(long)]
    vs_floor: bool,
    /// The floor's cargo project [default: ../shared/bench/floor from the repo root]
    #[arg(long, value_name = "DIR")]
    floor_dir: Option<PathBuf>,
    /// Repetitions (routers interleaved: floor, ringsip, kamailio, floor, ...)
    #[arg(long, value_name = "R", default_value_t = 1)]
    reps: u32,
    /// Seconds of router idle CPU sampled before the load (subtracted)
    #[arg(long, value_name = "S", default_value_t = 2.0)]
    idle: f64,
    /// Seconds after the last call that router CPU is still counted
    #[arg(long, value_name = "S", default_value_t = 2.0)]
    drain: f64,
    /// First retransmission interval of INVITE/BYE (doubling), ms
    #[arg(long, value_name = "MS", default_value_t = 500)]
    t1_ms: u64,
    /// A call fails when an expected response is this late (sipp -recv_timeout), ms
    #[arg(long, value_name = "MS", default_value_t = 8000)]
    recv_timeout_ms: u64,
    /// Calls due within one tick start together at its start, like sipp's 1 ms loop (0: every
    /// call at its own time, which wakes the router once per INVITE)
    #[arg(long, value_name = "US", default_value_t = 1000)]
    tick_us: u64,
    /// Socket buffer size of the generator's sockets (sipp -buff_size)
    #[arg(long, value_name = "BYTES", default_value_t = 4 * 1024 * 1024)]
    sock_buf: usize,
    /// Keep the work directory (configs, router logs)
    #[arg(long)]
    keep: bool,
    /// No progress messages on stderr
    #[arg(long, short)]
    quiet: bool,
}

/// `ringsip-bench stateful`: `lb`'s flags with the stateful defaults, and Kamailio's memory.
#[derive(Args, Debug, Clone)]
#[command(
    after_help = "One call: INVITE, 100 Trying (made by the router: not a routed message), 180, 200, ACK, \
BYE, 200 = six routed messages. ACK and BYE carry the route set (the 200's Record-Route reversed) and, \
like sipp's uac.xml, are sent to --target; without a route set (the floor forwarder sends no 100 and \
no Record-Route: it is the floor of both modes) they go there too.\n\n\
Ratios: ringsip/kamailio and ringsip/sip-floor of the median router CPU per routed message and per \
call over the repetitions (routers interleaved: floor, ringsip, kamailio, floor, ...).\n\n\
Exit status: 0 the run completed (failed calls are reported, not fatal), 1 a router could not be \
started or died, 2 usage error.",
    mut_arg("rate", |a| a.help(
        "Offered call rate, calls/s (with --ramp: the first step) [default: 3000, with --ramp 2000]"
    )),
    mut_arg("config", |a| a.help(
        "ringsip configuration, relaying statefully [default: config/examples/stateful-lb.toml, built in]"
    )),
    mut_arg("vs_kamailio", |a| a.help(
        "Also run the same load through Kamailio's stateful proxy (tuned: -x tlsf -b 4194304, \
         shared memory --kamailio-shm-mb) and print the ratios"
    )),
    mut_arg("kamailio_cfg", |a| a.help(
        "Kamailio configuration [default: ../shared/bench/kamailio/stateful-proxy.cfg from the repo root]"
    )),
    mut_arg("drain", |a| a.default_value("6").help(
        "Seconds after the last call that router CPU is still counted (the harness's stateful drain: \
         Kamailio frees a transaction 5 s after it ends)"
    )),
)]
struct StatefulArgs {
    #[command(flatten)]
    run: LbArgs,
    /// Kamailio's shared memory (-m), MB: its transactions live there
    #[arg(long, value_name = "MB", default_value_t = 4096)]
    kamailio_shm_mb: u64,
}

/// Entry point of the `ringsip-bench` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Lb(a) => lb(a),
        Cmd::Stateful(a) => stateful(a),
        Cmd::Push(a) => push::push(a),
        Cmd::Rtp(a) => rtp::rtp(a),
    }
}

fn usage_error(msg: String) -> ! {
    Cli::command().error(clap::error::ErrorKind::ValueValidation, msg).exit()
}

macro_rules! progress {
    ($a:expr, $($t:tt)*) => {
        if !$a.quiet {
            eprintln!("ringsip-bench: {}", format!($($t)*));
        }
    };
}

/// The JSON document of `--json`.
#[derive(Serialize)]
struct Output<'a> {
    tool: &'static str,
    command: &'static str,
    version: &'static str,
    settings: Settings,
    runs: &'a [RunResult],
    ramps: &'a [RampResult],
    comparisons: Vec<Comparison>,
    errors: &'a [String],
    ok: bool,
}

#[derive(Serialize)]
struct Settings {
    target: String,
    uas: Vec<String>,
    uac: String,
    router_cpus: String,
    gen_cpus: String,
    rate: f64,
    duration_s: Option<f64>,
    calls: Option<u64>,
    shards: Vec<usize>,
    reps: u32,
    routers: Vec<String>,
    idle_s: f64,
    drain_s: f64,
    ramp: bool,
    /// `stateful --vs-kamailio`: Kamailio's `-m`, MB
    #[serde(skip_serializing_if = "Option::is_none")]
    kamailio_shm_mb: Option<u64>,
}

/// Fatal problems: exit status 1.
pub(crate) struct Fatal(String);

/// What `lb` and `stateful` differ in. Everything else (flags, generator, runner, report) is
/// shared: the calls are the same, INVITE, 180, 200, ACK, BYE, 200 along the route set.
#[derive(Clone, Copy, Debug)]
struct Mode {
    /// the subcommand: the JSON's `command`, the table's title
    command: &'static str,
    /// `$ROUTER_MODE` of the routers (the shared harness's MODE)
    router_mode: &'static str,
    /// `--rate` without `--ramp`
    default_rate: f64,
    /// ringsip's built-in configuration, and its file name in the work directory
    config: &'static str,
    config_name: &'static str,
    /// Kamailio's default configuration, below shared/bench
    kamailio_cfg: &'static str,
    /// Kamailio's `-m` and `-M`, MB
    kamailio_shm_mb: u64,
    kamailio_pkg_mb: u64,
    /// the transaction-stateful report: 100 Trying and route sets counted, µs per call in the
    /// table, ratios `ringsip/other` ([`report::Ratios::MainOverEach`])
    stateful: bool,
}

/// `ringsip-bench lb`.
const LB: Mode = Mode {
    command: "lb",
    router_mode: "stateless",
    default_rate: 8000.0,
    config: EXAMPLE_CONFIG,
    config_name: "stateless-lb.toml",
    kamailio_cfg: "kamailio/stateless-lb.cfg",
    kamailio_shm_mb: 1024,
    kamailio_pkg_mb: 32,
    stateful: false,
};

/// `ringsip-bench stateful` (Kamailio's `-m` from `--kamailio-shm-mb`).
const STATEFUL: Mode = Mode {
    command: "stateful",
    router_mode: "stateful",
    default_rate: 3000.0,
    config: STATEFUL_CONFIG,
    config_name: "stateful-lb.toml",
    kamailio_cfg: "kamailio/stateful-proxy.cfg",
    kamailio_shm_mb: 4096,
    kamailio_pkg_mb: 32,
    stateful: true,
};

impl Mode {
    fn ratios(&self) -> report::Ratios {
        if self.stateful { report::Ratios::MainOverEach } else { report::Ratios::Lb }
    }
}

fn lb(a: LbArgs) -> ExitCode {
    calls(a, LB)
}

fn stateful(s: StatefulArgs) -> ExitCode {
    if s.kamailio_shm_mb == 0 {
        usage_error("--kamailio-shm-mb must be >= 1".into());
    }
    calls(s.run, Mode { kamailio_shm_mb: s.kamailio_shm_mb, ..STATEFUL })
}

/// `lb` and `stateful`: calls through the routers, one after the other.
fn calls(mut a: LbArgs, mode: Mode) -> ExitCode {
    let rate = a.rate.unwrap_or(if a.ramp { 2000.0 } else { mode.default_rate });
    a.rate = Some(rate);
    if !(rate.is_finite() && rate > 0.0) {
        usage_error(format!("--rate must be > 0 (got {rate})"));
    }
    if !(a.duration > 0.0 && a.step_duration > 0.0 && a.idle >= 0.0 && a.drain >= 0.0) {
        usage_error("--duration/--step-duration must be > 0, --idle/--drain >= 0".into());
    }
    if a.ramp_factor <= 1.0 {
        usage_error("--ramp-factor must be > 1".into());
    }
    if a.shards.is_empty() || a.shards.contains(&0) || a.reps == 0 || a.uas_ports.is_empty() {
        usage_error("--shards must be >= 1, --reps >= 1, --uas-ports not empty".into());
    }
    if a.uac_sockets == 0 || u32::from(a.uac_port) + u32::from(a.uac_sockets) > 65536 {
        usage_error("--uac-sockets must be >= 1 and the ports must fit below 65536".into());
    }
    if a.calls == Some(0) {
        usage_error("--calls must be >= 1".into());
    }
    let router_cpus = parse_cpu_list(&a.router_cpus).unwrap_or_else(|e| usage_error(e));
    let gen_cpus = parse_cpu_list(&a.gen_cpus).unwrap_or_else(|e| usage_error(e));
    if router_cpus.iter().any(|c| gen_cpus.contains(c)) {
        eprintln!("ringsip-bench: warning: router CPUs {} overlap generator CPUs {}", a.router_cpus, a.gen_cpus);
    }

    let (stop, workdir) = match run_setup("ringsip-bench") {
        Ok(x) => x,
        Err(code) => return code,
    };
    let result = calls_in(&a, &mode, rate, &router_cpus, &gen_cpus, &workdir, &stop);
    if a.keep || !matches!(result, Ok(true)) {
        progress!(a, "work directory (configs, router logs) kept: {}", workdir.display());
    } else {
        let _ = fs::remove_dir_all(&workdir);
    }
    exit_code(result, &stop)
}

/// The repository root (this crate's parent directory, or the current directory).
fn repo_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf);
    match p {
        Some(p) if p.join("Cargo.toml").is_file() => p,
        _ => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    }
}

/// `shared/bench/<sub>`: `../shared/bench` next to the repository, or below the current dir.
fn shared_bench(sub: &str) -> Option<PathBuf> {
    let root = repo_root();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    [root.join("../shared/bench"), cwd.join("../shared/bench"), cwd.join("shared/bench"), root.join("shared/bench")]
        .into_iter()
        .map(|p| p.join(sub))
        .find(|p| p.exists())
        .map(|p| fs::canonicalize(&p).unwrap_or(p))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// `ringsip` next to this executable (`explicit`: that file), built with `$CARGO build
/// --release --bin ringsip` when missing and we were started by cargo. With `rebuild`, that
/// build runs even when the binary exists (a no-op when it is up to date): `push` needs a
/// daemon that reads the snapshots this program builds.
fn ringsip_binary(explicit: Option<&Path>, quiet: bool, rebuild: bool) -> Result<PathBuf, Fatal> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(Fatal(format!("--ringsip {}: no such file", p.display())))
        };
    }
    let exe = std::env::current_exe().map_err(|e| Fatal(format!("cannot locate this executable: {e}")))?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let candidates = [dir.join("ringsip"), dir.join("../release/ringsip")];
    let cargo = std::env::var("CARGO").ok();
    if candidates[0].is_file() && !(rebuild && cargo.is_some()) {
        return Ok(candidates[0].clone());
    }
    if let Some(cargo) = cargo {
        if !quiet {
            let what = if candidates[0].is_file() { "is rebuilt if stale" } else { "is missing" };
            eprintln!(
                "ringsip-bench: {} {what}: running `{cargo} build --release --bin ringsip`",
                candidates[0].display()
            );
        }
        let st = router::run_visible(
            Command::new(&cargo).args(["build", "--release", "--bin", "ringsip"]).current_dir(repo_root()),
        )
        .map_err(|e| Fatal(format!("cannot run {cargo}: {e}")))?;
        if !st.success() {
            return Err(Fatal(format!(
                "`cargo build --release --bin ringsip` failed ({st}). Benchmark another router with --router-cmd, \
                 e.g. --router-cmd /tmp/ringsip-floor/release/sip-floor"
            )));
        }
        if let Some(p) = candidates.iter().find(|p| p.is_file()) {
            return Ok(p.clone());
        }
    }
    Err(Fatal(format!(
        "the ringsip binary is not at {} and this program was not started by cargo: build it with \
         `cargo build --release --bin ringsip`, pass --ringsip PATH, or run another router with --router-cmd",
        candidates[0].display()
    )))
}

/// An example config (`template`) with the listen address, destinations and control socket of
/// this run.
fn patched_config(template: &str, target: SocketAddrV4, uas: &[SocketAddrV4], control: &Path) -> String {
    let dests = uas.iter().map(|u| format!("\"sip:{u}\"")).collect::<Vec<_>>().join(", ");
    let mut out = String::new();
    for line in template.lines() {
        let t = line.trim_start();
        if t.starts_with("listen") && t.contains("udp:") {
            out.push_str(&format!("listen = [\"udp:{target}\"]"));
        } else if t.starts_with("destinations") {
            out.push_str(&format!("destinations = [{dests}]"));
        } else if t.starts_with("control_socket") {
            out.push_str(&format!("control_socket = \"{}\"", control.display()));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// sip-floor built from shared/bench/floor into a temp target dir.
fn floor_binary(a: &LbArgs) -> Result<PathBuf, Fatal> {
    build_floor(a.floor_dir.as_deref(), "sip-floor", |m| progress!(a, "{m}"))
}

/// Floor forwarder `bin` (`sip-floor`, `rtp-floor`) built from shared/bench/floor (or `dir`)
/// into a temp target dir shared by every run; `say` reports the build.
pub(crate) fn build_floor(dir: Option<&Path>, bin: &str, say: impl Fn(String)) -> Result<PathBuf, Fatal> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => shared_bench("floor")
            .ok_or_else(|| Fatal("shared/bench/floor not found next to the repository (use --floor-dir)".into()))?,
    };
    let target = std::env::temp_dir().join("ringsip-bench-floor-target");
    say(format!("building {bin} from {} into {}", dir.display(), target.display()));
    let st = router::run_visible(
        Command::new(cargo())
            .args(["build", "--release", "--quiet", "--bin", bin, "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target),
    )
    .map_err(|e| Fatal(format!("cannot run cargo: {e}")))?;
    let path = target.join("release").join(bin);
    if !st.success() || !path.is_file() {
        return Err(Fatal(format!("building the floor failed ({st}): {}", dir.display())));
    }
    Ok(path)
}

/// Kamailio, installed with apt-get when missing and we are root.
fn kamailio_binary(a: &LbArgs) -> Result<PathBuf, Fatal> {
    if let Some(p) = router::which(&a.kamailio_bin) {
        return Ok(p);
    }
    let cmd = "apt-get install -y kamailio";
    if sys::euid() == 0 && router::which("apt-get").is_some() {
        progress!(a, "kamailio is not installed: running `{cmd}`");
        let install = || {
            router::run_visible(
                Command::new("apt-get").args(["install", "-y", "kamailio"]).env("DEBIAN_FRONTEND", "noninteractive"),
            )
        };
        let ok = install().map(|s| s.success()).unwrap_or(false)
            || (router::run_visible(Command::new("apt-get").arg("update")).is_ok()
                && install().map(|s| s.success()).unwrap_or(false));
        if ok {
            if let Some(p) = router::which(&a.kamailio_bin) {
                return Ok(p);
            }
        }
        return Err(Fatal(format!("`{cmd}` did not provide {}", a.kamailio_bin)));
    }
    Err(Fatal(format!("kamailio is not installed; install it with: sudo {cmd}")))
}

fn calls_in(
    a: &LbArgs,
    mode: &Mode,
    rate: f64,
    router_cpus: &[usize],
    gen_cpus: &[usize],
    workdir: &Path,
    stop: &AtomicBool,
) -> Result<bool, Fatal> {
    let ip = *a.target.ip();
    let uas: Vec<SocketAddrV4> = a.uas_ports.iter().map(|&p| SocketAddrV4::new(ip, p)).collect();
    let uacs: Vec<SocketAddrV4> = (0..a.uac_sockets).map(|k| SocketAddrV4::new(ip, a.uac_port + k)).collect();

    // ---- the routers (builds happen before pinning: they may use every CPU)
    let mut specs = Vec::new();
    if a.vs_floor {
        specs.push(RouterSpec {
            name: "sip-floor".into(),
            kind: Kind::Command { cmd: floor_binary(a)?.display().to_string() },
        });
    }
    let main = if let Some(pid) = a.attach {
        RouterSpec { name: a.router_name.clone().unwrap_or(format!("attached:{pid}")), kind: Kind::Attach { pid } }
    } else if let Some(cmd) = &a.router_cmd {
        let first = cmd.split_whitespace().next().unwrap_or("custom");
        let base = Path::new(first).file_name().and_then(|s| s.to_str()).unwrap_or("custom").to_string();
        RouterSpec { name: a.router_name.clone().unwrap_or(base), kind: Kind::Command { cmd: cmd.clone() } }
    } else {
        let bin = ringsip_binary(a.ringsip.as_deref(), a.quiet, false)?;
        let config = match &a.config {
            Some(c) => c.clone(),
            None => {
                let p = workdir.join(mode.config_name);
                fs::write(&p, patched_config(mode.config, a.target, &uas, &workdir.join("ringsip.sock")))
                    .map_err(|e| Fatal(format!("{}: {e}", p.display())))?;
                p
            }
        };
        RouterSpec { name: a.router_name.clone().unwrap_or("ringsip".into()), kind: Kind::Ringsip { bin, config } }
    };
    let main_name = main.name.clone();
    specs.push(main);
    if a.vs_kamailio {
        let bin = kamailio_binary(a)?;
        let cfg = match &a.kamailio_cfg {
            Some(c) => c.clone(),
            None => shared_bench(mode.kamailio_cfg)
                .ok_or_else(|| Fatal(format!("shared/bench/{} not found (use --kamailio-cfg)", mode.kamailio_cfg)))?,
        };
        let ds_list = workdir.join("dispatcher.list");
        let list: String = uas.iter().map(|u| format!("1 sip:{u}\n")).collect();
        fs::write(&ds_list, list).map_err(|e| Fatal(format!("{}: {e}", ds_list.display())))?;
        let extra = a.kamailio_extra.split_whitespace().map(String::from).collect();
        specs.push(RouterSpec {
            name: "kamailio".into(),
            kind: Kind::Kamailio {
                bin,
                cfg,
                ds_list,
                run_dir: workdir.join("kamailio-run"),
                shm_mb: mode.kamailio_shm_mb,
                pkg_mb: mode.kamailio_pkg_mb,
                extra,
            },
        });
    }

    // ---- pin ourselves, start the generator
    if let Err(e) = sys::set_thread_affinity(gen_cpus) {
        eprintln!("ringsip-bench: warning: cannot pin to CPUs {}: {e}", a.gen_cpus);
    }
    let lg = GenHandle::start(GenConfig {
        uac: uacs.clone(),
        uas: uas.clone(),
        sock_buf: a.sock_buf,
        t1_ms: a.t1_ms,
        timeout_ms: a.recv_timeout_ms,
        cpus: gen_cpus.to_vec(),
        dial: None,
    })
    .map_err(|e| Fatal(e.to_string()))?;
    let env = RouterEnv {
        mode: mode.router_mode,
        listen: a.target,
        backends: uas.clone(),
        outdir: workdir.to_path_buf(),
        gen_cpus: gen_cpus.to_vec(),
    };
    let ctx = Ctx {
        a,
        mode,
        lg: &lg,
        stop,
        clk: sys::clk_tck(),
        router_ports: vec![a.target.port()],
        gen_ports: a.uas_ports.iter().copied().chain(uacs.iter().map(|u| u.port())).collect(),
        gen_cpus: cpu_list_string(gen_cpus),
    };

    let mut runs = Vec::new();
    let mut ramps = Vec::new();
    let mut errors = Vec::new();
    'all: for &shards in &a.shards {
        let cpus: Vec<usize> = router_cpus.iter().copied().take(shards).collect();
        if shards > router_cpus.len() && a.attach.is_none() {
            eprintln!(
                "ringsip-bench: warning: {shards} shards but only {} router CPU(s) ({}): ringsip wants one CPU per \
                 shard; pass --router-cpus with {shards} CPUs (e.g. --router-cpus 1,0, sharing the generator's CPU)",
                router_cpus.len(),
                a.router_cpus
            );
        }
        for rep in 1..=a.reps {
            for spec in &specs {
                if stop.load(Ordering::Relaxed) {
                    break 'all;
                }
                progress!(a, "{} shards={shards} rep={rep}: starting", spec.name);
                let base = RunResult {
                    router: spec.name.clone(),
                    shards,
                    rep,
                    router_cpus: if a.attach.is_some() { "-".into() } else { cpu_list_string(&cpus) },
                    gen_cpus: ctx.gen_cpus.clone(),
                    ..Default::default()
                };
                let mut router = match start_router(&ctx, spec, shards, &cpus, &env) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("ringsip-bench: {}: {e}", spec.name);
                        errors.push(format!("{} (shards {shards}, rep {rep}): {e}", spec.name));
                        runs.push(RunResult { error: Some(e), ..base });
                        continue;
                    }
                };
                let idle = sample_idle(&ctx, &router);
                if a.ramp {
                    let rr = ramp(&ctx, &mut router, idle, rate, base);
                    if rr.limit == "router died" {
                        errors.push(format!("{} (shards {shards}, rep {rep}): router died", spec.name));
                    }
                    ramps.push(rr);
                } else {
                    let calls = a.calls.unwrap_or_else(|| timer::calls_for(rate, a.duration));
                    let spec_l = LoadSpec { target: a.target, rate, calls, tick_ns: a.tick_us * 1000, samples: false };
                    progress!(a, "{}: {calls} calls at {rate} calls/s", spec.name);
                    let r = measure(&ctx, &mut router, idle, spec_l, base);
                    progress!(
                        a,
                        "{}: {}/{} calls ok, {:.3} us/msg (sched), router {:.1} % CPU",
                        spec.name,
                        r.succeeded,
                        r.attempted,
                        r.us_per_msg_sched,
                        r.router_util_sched_pct
                    );
                    if !r.router_alive {
                        errors.push(format!("{} (shards {shards}, rep {rep}): router died during the run", spec.name));
                    }
                    runs.push(r);
                }
                router.stop();
                if let Some(st) = router.exit_status() {
                    if !st.success() && a.attach.is_none() && !stop.load(Ordering::Relaxed) {
                        // SIGTERM'd routers usually exit 0 (or by the signal): only report oddities
                        if st.code().is_some_and(|c| c != 0) {
                            progress!(
                                a,
                                "{} exited with {st} after SIGTERM; log tail:\n{}",
                                spec.name,
                                router.log_tail(5)
                            );
                        }
                    }
                }
            }
        }
    }
    drop(lg);

    let all_rows: Vec<RunResult> =
        runs.iter().cloned().chain(ramps.iter().flat_map(|r| r.steps.iter().cloned())).collect();
    let comparisons = if a.ramp { Vec::new() } else { report::compare(&runs, &main_name, mode.ratios()) };
    let ok = errors.is_empty();
    if a.json {
        let out = Output {
            tool: "ringsip-bench",
            command: mode.command,
            version: env!("CARGO_PKG_VERSION"),
            settings: Settings {
                target: a.target.to_string(),
                uas: uas.iter().map(ToString::to_string).collect(),
                uac: uacs.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
                router_cpus: a.router_cpus.clone(),
                gen_cpus: a.gen_cpus.clone(),
                rate,
                duration_s: if a.ramp { Some(a.step_duration) } else { a.calls.is_none().then_some(a.duration) },
                calls: a.calls,
                shards: a.shards.clone(),
                reps: a.reps,
                routers: specs.iter().map(|s| s.name.clone()).collect(),
                idle_s: a.idle,
                drain_s: a.drain,
                ramp: a.ramp,
                kamailio_shm_mb: (mode.stateful && a.vs_kamailio).then_some(mode.kamailio_shm_mb),
            },
            runs: &runs,
            ramps: &ramps,
            comparisons,
            errors: &errors,
            ok,
        };
        match serde_json::to_string_pretty(&out) {
            Ok(s) => println!("{s}"),
            Err(e) => return Err(Fatal(format!("JSON: {e}"))),
        }
    } else {
        print_human(a, mode, &all_rows, &ramps, &comparisons, &main_name, &errors);
    }
    Ok(ok)
}

fn print_human(
    a: &LbArgs,
    mode: &Mode,
    rows: &[RunResult],
    ramps: &[RampResult],
    comparisons: &[Comparison],
    main: &str,
    errors: &[String],
) {
    println!(
        "ringsip-bench {}: UAC {}:{}{} -> router {} -> UAS {:?}; router CPUs {}, generator CPUs {}",
        mode.command,
        a.target.ip(),
        a.uac_port,
        if a.uac_sockets > 1 { format!("..{}", a.uac_port + a.uac_sockets - 1) } else { String::new() },
        a.target,
        a.uas_ports,
        a.router_cpus,
        a.gen_cpus
    );
    println!();
    print!("{}", report::table(rows, mode.stateful));
    println!();
    print!("{}", report::notes(rows));
    for r in ramps {
        println!();
        println!(
            "ramp {} (shards {}, rep {}): highest clean rate {} calls/s; stopped at {} calls/s ({}): {}",
            r.router,
            r.shards,
            r.rep,
            r.max_clean_cps.map_or("none".into(), |v| format!("{v:.0}")),
            r.stopped_at_cps.map_or("-".into(), |v| format!("{v:.0}")),
            r.stop_reason,
            r.limit
        );
    }
    for c in comparisons {
        println!();
        let means: Vec<String> = c.us_per_msg_sched.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
        println!("shards {}: median us/msg (sched) over the repetitions: {}", c.shards, means.join(", "));
        for (k, v) in &c.ratios {
            println!("  {k}: {v:.2}x");
        }
        if !c.us_per_call_sched.is_empty() {
            let means: Vec<String> = c.us_per_call_sched.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
            println!("shards {}: median us/call (sched) over the repetitions: {}", c.shards, means.join(", "));
            for (k, v) in &c.ratios_per_call {
                println!("  {k}: {v:.2}x");
            }
        }
    }
    if !errors.is_empty() {
        println!();
        for e in errors {
            println!("ERROR {e}");
        }
    }
    let _ = main;
}

struct Ctx<'a> {
    a: &'a LbArgs,
    mode: &'a Mode,
    lg: &'a GenHandle,
    stop: &'a AtomicBool,
    clk: u64,
    router_ports: Vec<u16>,
    gen_ports: Vec<u16>,
    gen_cpus: String,
}

fn nap(ctx: &Ctx<'_>, secs: f64) {
    nap_until_stop(ctx.stop, secs);
}

/// Start the router and wait until its port is bound and it forwards an OPTIONS probe.
fn start_router(
    ctx: &Ctx<'_>,
    spec: &RouterSpec,
    shards: usize,
    cpus: &[usize],
    env: &RouterEnv,
) -> Result<RouterProc, String> {
    let rc = ReadyCheck { lg: ctx.lg, stop: ctx.stop, target: ctx.a.target, uas_ports: &ctx.a.uas_ports };
    start_router_with(&rc, spec, shards, cpus, env)
}

/// What `start_router_with` needs to see a router ready.
struct ReadyCheck<'a> {
    lg: &'a GenHandle,
    stop: &'a AtomicBool,
    target: SocketAddrV4,
    uas_ports: &'a [u16],
}

/// Sleep `secs`, waking early on `stop`.
fn nap_until_stop(stop: &AtomicBool, secs: f64) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20).min(end.saturating_duration_since(Instant::now())));
    }
}

/// [`start_router`] without the `lb` context.
fn start_router_with(
    ctx: &ReadyCheck<'_>,
    spec: &RouterSpec,
    shards: usize,
    cpus: &[usize],
    env: &RouterEnv,
) -> Result<RouterProc, String> {
    let mut r = RouterProc::spawn(spec, shards, cpus, env)?;
    let died = |r: &mut RouterProc| {
        format!(
            "router exited during start-up ({}); log tail:\n{}",
            r.exit_status().map_or("?".into(), |s| s.to_string()),
            r.log_tail(20)
        )
    };
    let port = ctx.target.port();
    let end = Instant::now() + Duration::from_secs(15);
    while !procfs::udp_port_bound(port) {
        if !r.alive() {
            return Err(died(&mut r));
        }
        if Instant::now() > end || ctx.stop.load(Ordering::Relaxed) {
            return Err(format!("router did not bind UDP port {port} within 15 s; log tail:\n{}", r.log_tail(20)));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // it must route: an OPTIONS through it reaches a UAS and the 200 comes back
    let k0 = ctx.lg.counters().probe_ok;
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        ctx.lg.probe(ctx.target);
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(10));
            if ctx.lg.counters().probe_ok > k0 {
                nap_until_stop(ctx.stop, 0.5); // let every worker finish initialising (as the harness)
                return Ok(r);
            }
        }
        if !r.alive() {
            return Err(died(&mut r));
        }
        if Instant::now() > end || ctx.stop.load(Ordering::Relaxed) {
            return Err(format!(
                "router bound UDP port {port} but did not route an OPTIONS to the UAS {:?} and back within 15 s; log tail:\n{}",
                ctx.uas_ports,
                r.log_tail(20)
            ));
        }
    }
}

/// The router's idle CPU rate (schedstat, utime+stime) before the load.
fn sample_idle(ctx: &Ctx<'_>, r: &RouterProc) -> (f64, f64) {
    if ctx.a.idle <= 0.0 {
        return (0.0, 0.0);
    }
    let a = TreeSnap::take(r.pid);
    nap(ctx, ctx.a.idle);
    let b = TreeSnap::take(r.pid);
    report::idle_rate(&a, &b, ctx.clk)
}

/// One load with the snapshots around it.
fn measure(ctx: &Ctx<'_>, r: &mut RouterProc, idle: (f64, f64), spec: LoadSpec, mut res: RunResult) -> RunResult {
    res.offered_cps = spec.rate;
    res.calls_planned = spec.calls;
    let snmp0 = procfs::snmp_udp();
    let rdrops0 = procfs::sock_drops(&ctx.router_ports);
    let gdrops0 = procfs::sock_drops(&ctx.gen_ports);
    let c0 = ctx.lg.counters();
    let ticks0 = procfs::all_ticks();
    let t0 = TreeSnap::take(r.pid);
    ctx.lg.start_load(spec);
    let mut alive = true;
    let mut aborted = false;
    let stats = loop {
        match ctx.lg.wait_done(Duration::from_millis(100)) {
            Ok(s) => break s,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break loadgen::LoadStats::default(),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if alive && !r.alive() {
                    alive = false;
                }
                if !aborted && (!alive || ctx.stop.load(Ordering::Relaxed)) {
                    ctx.lg.abort();
                    aborted = true;
                }
            }
        }
    };
    let t1 = TreeSnap::take(r.pid);
    let ticks1 = procfs::all_ticks();
    alive &= r.alive();
    let mut exclude: Vec<u32> = t0.procs.keys().chain(t1.procs.keys()).copied().collect();
    exclude.push(std::process::id());
    let other_cpu_s = procfs::other_cpu_s(&ticks0, &ticks1, &exclude, ctx.clk);
    nap(ctx, ctx.a.drain);
    let t2 = TreeSnap::take(r.pid);
    let c2 = ctx.lg.counters();
    let snmp2 = procfs::snmp_udp();
    alive &= r.alive();
    let d = |k: &str| snmp2.get(k).copied().unwrap_or(0).saturating_sub(snmp0.get(k).copied().unwrap_or(0));
    let s = Samples {
        idle_rate: idle,
        t0: &t0,
        t1: &t1,
        t2: &t2,
        c0,
        c2,
        stats: &stats,
        router_drops: procfs::sock_drops(&ctx.router_ports).saturating_sub(rdrops0),
        gen_drops: procfs::sock_drops(&ctx.gen_ports).saturating_sub(gdrops0),
        rcvbuf_errors: d("RcvbufErrors"),
        in_errors: d("InErrors"),
        clk_tck: ctx.clk,
        other_cpu_s,
    };
    report::compute(&mut res, &s);
    if ctx.mode.stateful {
        report::count_stateful(&mut res, &c0, &c2);
    }
    res.router_alive = alive;
    if !alive {
        // its CPU went with it: no per-message figure
        for v in
            [&mut res.us_per_msg_sched, &mut res.us_per_msg, &mut res.us_per_msg_sched_raw, &mut res.us_per_msg_raw]
        {
            *v = f64::NAN;
        }
        res.router_exit = Some(r.exit_status().map_or("gone".into(), |s| s.to_string()));
        eprintln!("ringsip-bench: {} died during the run; log tail:\n{}", r.name, r.log_tail(20));
    }
    res
}

/// Raise the rate until a step fails, retransmits or the generator cannot keep up.
fn ramp(ctx: &Ctx<'_>, r: &mut RouterProc, idle: (f64, f64), start: f64, base: RunResult) -> RampResult {
    let a = ctx.a;
    let mut out = RampResult { router: base.router.clone(), shards: base.shards, rep: base.rep, ..Default::default() };
    let mut rate = start;
    let mut step = 0u32;
    loop {
        step += 1;
        let calls = timer::calls_for(rate, a.step_duration);
        progress!(a, "{} ramp step {step}: {rate:.0} calls/s for {} s", out.router, a.step_duration);
        let res = measure(
            ctx,
            r,
            idle,
            LoadSpec { target: a.target, rate, calls, tick_ns: a.tick_us * 1000, samples: false },
            RunResult { step: Some(step), ..base.clone() },
        );
        progress!(
            a,
            "  {}/{} ok, retrans {}/{}, router {:.1} % CPU, generator {:.1} % CPU, {:.3} us/msg",
            res.succeeded,
            res.attempted,
            res.retrans_uac,
            res.retrans_uas,
            res.router_util_sched_pct,
            res.gen_cpu_pct,
            res.us_per_msg_sched
        );
        let is_clean = report::clean(&res);
        let gen_lim = report::generator_limited(&res);
        let died = !res.router_alive;
        out.steps.push(res.clone());
        if is_clean {
            // (clean with the generator at its limit still counts; the ramp ends there)
            out.max_clean_cps = Some(rate);
        }
        let stop_reason = if ctx.stop.load(Ordering::Relaxed) {
            Some(("interrupted".to_string(), "interrupted".to_string()))
        } else if died {
            Some(("the router died".into(), "router died".into()))
        } else if !is_clean || gen_lim {
            let mut why = Vec::new();
            if res.failed > 0 {
                why.push(format!("{} failed calls", res.failed));
            }
            if res.retrans_uac + res.retrans_uas > 0 {
                why.push(format!("{}/{} retransmissions (uac/uas)", res.retrans_uac, res.retrans_uas));
            }
            if gen_lim {
                why.push(format!(
                    "generator at {:.0} % CPU, started {:.0} of {:.0} calls/s",
                    res.gen_cpu_pct, res.attempted_cps, res.offered_cps
                ));
            }
            if res.router_sock_drops > 0 {
                why.push(format!("{} datagrams dropped at the router's socket", res.router_sock_drops));
            }
            why.push(format!("router at {:.0} % CPU", res.router_util_sched_pct));
            Some((why.join(", "), report::limit_verdict(&res).to_string()))
        } else if rate * a.ramp_factor > a.max_rate {
            Some(("--max-rate reached".into(), "max rate reached (no limit found)".into()))
        } else {
            None
        };
        if let Some((why, limit)) = stop_reason {
            out.stopped_at_cps = Some(rate);
            out.stop_reason = why;
            out.limit = limit;
            return out;
        }
        rate = (rate * a.ramp_factor).round();
    }
}

/// The exit status of a subcommand: 130 when interrupted, 0 when every run was clean, 1 when
/// a run failed or could not be made (the reason printed).
fn exit_code(result: Result<bool, Fatal>, stop: &AtomicBool) -> ExitCode {
    match result {
        _ if stop.load(Ordering::Relaxed) => ExitCode::from(130),
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Fatal(msg)) => {
            eprintln!("ringsip-bench: error: {msg}");
            ExitCode::from(1)
        }
    }
}

/// What every subcommand sets up: a stop flag raised by SIGINT/SIGTERM, and a work directory
/// (`<tmp>/<name>-<pid>`) for configs and router logs.
pub(crate) fn run_setup(name: &str) -> Result<(Arc<AtomicBool>, PathBuf), ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
    }
    let workdir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    if let Err(e) = fs::create_dir_all(&workdir) {
        eprintln!("ringsip-bench: cannot create {}: {e}", workdir.display());
        return Err(ExitCode::from(1));
    }
    Ok((stop, workdir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_config_is_the_example_and_patches_ports() {
        assert!(EXAMPLE_CONFIG.contains("udp:127.0.0.1:5060"));
        let t: SocketAddrV4 = "127.0.0.1:15060".parse().unwrap();
        let uas: Vec<SocketAddrV4> = vec!["127.0.0.1:15080".parse().unwrap(), "127.0.0.1:15081".parse().unwrap()];
        let c = patched_config(EXAMPLE_CONFIG, t, &uas, Path::new("/tmp/x/ringsip.sock"));
        assert!(c.contains("listen = [\"udp:127.0.0.1:15060\"]"), "{c}");
        assert!(c.contains("destinations = [\"sip:127.0.0.1:15080\", \"sip:127.0.0.1:15081\"]"), "{c}");
        assert!(c.contains("control_socket = \"/tmp/x/ringsip.sock\""), "{c}");
        assert!(!c.contains("127.0.0.1:5060\""));
        assert!(c.parse::<toml::Table>().is_ok());
        // the rest of the file is unchanged
        assert_eq!(c.lines().count(), EXAMPLE_CONFIG.lines().count());
    }

    #[test]
    fn cli_parses_the_readme_commands() {
        let p = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        let Cmd::Lb(a) = p(&["ringsip-bench", "lb"]).unwrap().cmd else { panic!("not lb") };
        assert_eq!(a.shards, vec![1]);
        assert_eq!(a.router_cpus, "1");
        assert_eq!(a.target.to_string(), "127.0.0.1:5060");
        let Cmd::Lb(a) =
            p(&["x", "lb", "--shards", "1,2", "--vs-kamailio", "--vs-floor", "--reps", "3", "--json"]).unwrap().cmd
        else {
            panic!("not lb")
        };
        assert_eq!(a.shards, vec![1, 2]);
        assert!(a.vs_kamailio && a.vs_floor && a.json);
        let Cmd::Lb(a) =
            p(&["x", "lb", "--router-cmd", "/tmp/f/sip-floor", "--rate", "500", "--duration", "2"]).unwrap().cmd
        else {
            panic!("not lb")
        };
        assert_eq!(a.router_cmd.as_deref(), Some("/tmp/f/sip-floor"));
        assert!(p(&["x", "lb", "--attach", "12", "--vs-kamailio"]).is_err());
        assert!(p(&["x", "lb", "--attach", "12", "--router-cmd", "y"]).is_err());
        assert!(p(&["x", "lb", "--bogus"]).is_err());
        assert_eq!(p(&["x", "lb", "--bogus"]).unwrap_err().exit_code(), 2);
        let Cmd::Push(a) = p(&["x", "push"]).unwrap().cmd else { panic!("not push") };
        assert_eq!(
            (a.prefixes, a.start_prefixes, a.rate, a.duration, a.push_at),
            (1_000_000, 1_000, 2000.0, 20.0, 8.0)
        );
        assert_eq!((a.router_cpus.as_str(), a.gen_cpus.as_str(), a.build_cpus.as_deref()), ("1", "0", None));
        assert_eq!(a.build_priority, push::Priority::Idle);
        let Cmd::Push(a) = p(&["x", "push", "--prefixes", "5000", "--build-priority", "normal", "--json"]).unwrap().cmd
        else {
            panic!("not push")
        };
        assert!(a.prefixes == 5000 && a.json && a.build_priority == push::Priority::Normal);
        assert!(p(&["x", "push", "--build-priority", "low"]).is_err());
        Cli::command().debug_assert();
    }

    #[test]
    fn stateful_embedded_config_patches_ports() {
        assert!(STATEFUL_CONFIG.contains("udp:127.0.0.1:5060"));
        // the stateful example: it relays (statefully) and record-routes
        assert!(STATEFUL_CONFIG.contains("\"relay\"") && STATEFUL_CONFIG.contains("record_route"));
        assert!(STATEFUL_CONFIG.contains("127.0.0.1:5080") && STATEFUL_CONFIG.contains("127.0.0.1:5081"));
        let t: SocketAddrV4 = "127.0.0.1:15060".parse().unwrap();
        let uas: Vec<SocketAddrV4> = vec!["127.0.0.1:15080".parse().unwrap(), "127.0.0.1:15081".parse().unwrap()];
        let c = patched_config(STATEFUL_CONFIG, t, &uas, Path::new("/tmp/x/ringsip.sock"));
        assert!(c.contains("listen = [\"udp:127.0.0.1:15060\"]"), "{c}");
        assert!(c.contains("destinations = [\"sip:127.0.0.1:15080\", \"sip:127.0.0.1:15081\"]"), "{c}");
        // nothing of the default addresses is left outside comments (a multi-line list would
        // leave some)
        for l in c.lines().filter(|l| !l.trim_start().starts_with('#')) {
            assert!(!["127.0.0.1:5060", "127.0.0.1:5080", "127.0.0.1:5081"].iter().any(|a| l.contains(a)), "{l}\n{c}");
        }
        assert!(c.parse::<toml::Table>().is_ok());
        assert_eq!(c.lines().count(), STATEFUL_CONFIG.lines().count());
    }

    #[test]
    fn stateful_shares_lb_flags_with_its_own_defaults() {
        let p = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        let Cmd::Stateful(s) = p(&["x", "stateful"]).unwrap().cmd else { panic!("not stateful") };
        assert_eq!(s.kamailio_shm_mb, 4096);
        let a = &s.run;
        assert_eq!((a.rate, a.duration, a.drain, a.idle), (None, 10.0, 6.0, 2.0));
        assert_eq!((a.shards.clone(), a.router_cpus.as_str(), a.gen_cpus.as_str()), (vec![1], "1", "0"));
        assert_eq!(a.kamailio_extra, "-x tlsf -b 4194304");
        assert_eq!(a.uas_ports, vec![5080, 5081]);
        // lb keeps its own drain
        let Cmd::Lb(a) = p(&["x", "lb"]).unwrap().cmd else { panic!("not lb") };
        assert_eq!(a.drain, 2.0);
        let Cmd::Stateful(s) = p(&[
            "x",
            "stateful",
            "--vs-kamailio",
            "--vs-floor",
            "--reps",
            "3",
            "--json",
            "--rate",
            "500",
            "--kamailio-shm-mb",
            "1024",
            "--drain",
            "1",
        ])
        .unwrap()
        .cmd
        else {
            panic!("not stateful")
        };
        assert!(s.run.vs_kamailio && s.run.vs_floor && s.run.json);
        assert_eq!((s.run.reps, s.run.rate, s.run.drain, s.kamailio_shm_mb), (3, Some(500.0), 1.0, 1024));
        assert!(p(&["x", "stateful", "--attach", "12", "--vs-floor"]).is_err());
        assert!(p(&["x", "lb", "--kamailio-shm-mb", "1024"]).is_err());
        assert_eq!(p(&["x", "stateful", "--bogus"]).unwrap_err().exit_code(), 2);

        // the help says what stateful runs; lb's is unchanged
        let help = |name: &str| {
            let mut c = Cli::command();
            c.find_subcommand_mut(name).unwrap().render_long_help().to_string()
        };
        let h = help("stateful");
        for want in [
            "default: 3000, with --ramp 2000",
            "config/examples/stateful-lb.toml",
            "kamailio/stateful-proxy.cfg",
            "--kamailio-shm-mb",
            "[default: 4096]",
            "[default: 6]",
            "100 Trying",
            "ringsip/kamailio",
        ] {
            assert!(h.contains(want), "stateful help lacks {want:?}:\n{h}");
        }
        assert!(!h.contains("stateless-lb"), "{h}");
        let h = help("lb");
        for want in
            ["default: 8000, with --ramp 2000", "stateless-lb.toml", "kamailio/stateless-lb.cfg", "[default: 2]"]
        {
            assert!(h.contains(want), "lb help lacks {want:?}:\n{h}");
        }
        assert!(!h.contains("stateful") && !h.contains("kamailio-shm-mb"), "{h}");
    }

    #[test]
    fn modes() {
        assert_eq!((LB.command, LB.router_mode, LB.default_rate), ("lb", "stateless", 8000.0));
        assert_eq!((LB.kamailio_shm_mb, LB.kamailio_pkg_mb, LB.ratios()), (1024, 32, report::Ratios::Lb));
        assert_eq!((STATEFUL.command, STATEFUL.router_mode, STATEFUL.default_rate), ("stateful", "stateful", 3000.0));
        assert_eq!(STATEFUL.kamailio_cfg, "kamailio/stateful-proxy.cfg");
        assert_eq!((STATEFUL.kamailio_shm_mb, STATEFUL.ratios()), (4096, report::Ratios::MainOverEach));
        assert!(std::ptr::eq(LB.config, EXAMPLE_CONFIG) && std::ptr::eq(STATEFUL.config, STATEFUL_CONFIG));
    }
}
