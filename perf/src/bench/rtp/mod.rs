//! `ringsip-bench rtp`: the RTP relay benchmark of `shared/bench/run-rtp-bench.sh` and
//! `shared/bench/rtp/rtp_bench.py` in one Rust process, with the same definitions.
//!
//! Each relay (ringsip with `config/examples/media.toml`; with `--vs-rtpengine` rtpengine
//! with `shared/bench/rtpengine/rtpengine.conf`; with `--vs-floor` the `rtp-floor` of
//! `shared/bench/floor`) is started pinned to `--router-cpus`, in turn, and driven over the ng
//! protocol on 127.0.0.1:2223: `--calls` calls, each two local UDP sockets (legs A and B) set up
//! with `offer`/`answer` and `connect()`ed to the relay port facing them. The sender, on
//! `--gen-cpus`, sends 172-byte RTP packets (12-byte header, 160-byte payload carrying send
//! time, stream id and counter) at `--pps` per stream in both directions of every call, in
//! 1 ms bursts, for `--duration` s. The deferred sink (default) reads nothing during the blast:
//! the packets wait in 4 MB socket buffers with a kernel receive timestamp and are counted
//! after the relay's CPU window (blast + `--drain`) closes, so the relay pays no wake-ups of
//! local readers; `--sink live` reads with epoll from a second thread during the blast.
//!
//! Reported per relay: sent, received, lost, reordered, duplicates, one-way latency (kernel
//! receive timestamp, or read time when live, minus send time), RFC 3550 jitter, and the
//! relay's CPU (schedstat and utime+stime of the process and its threads and descendants over
//! the window) per received packet: rtp_bench.py's `us_per_pkt` without, and (headline) with
//! the relay's idle rate, sampled for `--idle` s with the calls up and no media, subtracted.
//! Ratios are the main relay's µs per packet over each other's (`ringsip/rtpengine`,
//! `ringsip/rtp-floor`). `--rate-search` steps the calls up (`--steps`) and stops at the first
//! step that loses a packet.
//!
//! `--sip-rate N` (module `sipload`) also places N SIP calls/s through ringsip's SIP port
//! (127.0.0.1:5060) during every blast and rate search step, answered as the UAS on
//! 127.0.0.1:5080 (`config/examples/media.toml`'s destination): `stateful`'s load generator on
//! the generator CPUs, INVITE and 200 with SDP, so ringsip anchors each call's media. The relay's
//! CPU then includes the SIP work; a rate search step passes only if no packet was lost and no
//! SIP call failed. rtpengine and the floor have no SIP side: they get no calls.

mod ng;
mod report;
mod sipload;
mod stats;
mod sys;
mod traffic;

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use super::procfs::{self, TreeSnap, cpu_delta, cpu_list_string, parse_cpu_list, slices_delta};
use super::router::{self, Kind, RouterEnv, RouterProc, RouterSpec};
use super::{Fatal, nap_until_stop, usage_error};
use report::{Comparison, RateSearch, RtpResult};
use sipload::SipGen;
use stats::Rx;
use traffic::{Call, SendPlan, SetupOpts};

/// The configuration ringsip runs with unless `--config` is given: SIP on 127.0.0.1:5060, ng
/// on 127.0.0.1:2223, media ports 30000-39999 on 127.0.0.1.
const MEDIA_CONFIG: &str = include_str!("../../../../config/examples/media.toml");

/// The receive side's reading mode (rtp_bench.py's `--sink`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Sink {
    /// Nothing reads during the blast; the socket buffers are drained after the CPU window
    Deferred,
    /// A second thread reads with epoll during the blast
    Live,
}

impl Sink {
    fn name(self) -> &'static str {
        match self {
            Sink::Deferred => "deferred",
            Sink::Live => "live",
        }
    }
}

/// `ringsip-bench rtp`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "One call: an ng offer (leg A's SDP) and answer (leg B's SDP), then RTP A -> relay -> B and \
B -> relay -> A, each leg's socket connected to the relay port facing it. Offered load = calls x 2 x pps \
(250 calls = 25,000 packets/s at 50 pps).\n\n\
us/pkt: relay CPU (schedstat; u+s = utime+stime) over the blast and --drain, minus its idle rate x that \
window, divided by the packets received (the raw figure, rtp_bench.py's us_per_pkt, is in the notes and \
the JSON). Ratios: the main relay (ringsip) over each other one, medians over --reps.\n\n\
Exit status: 0 the runs completed (lost packets are reported, not fatal), 1 a relay could not be started \
or died, or calls could not be set up (the results are still printed), 2 usage error, 130 interrupted.\n\n\
--sip-rate N: N SIP calls/s through ringsip (--sip-target) during every blast and rate search step, placed as the \
UAC (--sip-uac) and answered as the UAS (--sip-uas, ringsip's destination) by `ringsip-bench stateful`'s \
generator on --gen-cpus: INVITE with an SDP offer, 100 Trying (ringsip's), 180, 200 with an SDP answer, ACK and \
BYE along the route set. ringsip anchors each call's media, so its CPU per packet includes the SIP work; a rate \
search step passes only with no packet lost and no SIP call failed.")]
pub(crate) struct RtpArgs {
    /// Calls set up through the relay; each carries 2 RTP streams
    #[arg(long, value_name = "N", default_value_t = 250)]
    calls: usize,
    /// Seconds of RTP
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    duration: f64,
    /// Packets per second of each stream (50 = 20 ms ptime)
    #[arg(long, value_name = "PPS", default_value_t = 50.0, visible_alias = "pps-per-stream")]
    pps: f64,
    /// RTP payload bytes (160: 20 ms of PCMU, 172-byte packets); at least 16
    #[arg(long, value_name = "BYTES", default_value_t = 160)]
    payload: usize,
    /// Sender burst granularity: when nothing is due it sleeps at least this long, so packets leave in
    /// bursts of pps x tick (0: each packet at its own time, far more generator CPU)
    #[arg(long, value_name = "MS", default_value_t = 1.0)]
    tick_ms: f64,
    /// Receive side: deferred (drained after the CPU window, kernel receive timestamps) or live
    #[arg(long, value_enum, default_value_t = Sink::Deferred)]
    sink: Sink,
    /// CPUs of the relay (its worker threads: one per CPU)
    #[arg(long, value_name = "LIST", default_value = "1", visible_alias = "relay-cpus")]
    router_cpus: String,
    /// CPUs of the generator (sender, sink) and of this program
    #[arg(long, value_name = "LIST", default_value = "0")]
    gen_cpus: String,
    /// The relays' ng control address (ringsip's comes from its config)
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:2223")]
    ng: SocketAddrV4,
    /// Local port of call i's leg A is base + 4i, of leg B base + 4i + 2
    #[arg(long, value_name = "PORT", default_value_t = 40000)]
    base_port: u16,
    /// SO_RCVBUF and SO_SNDBUF of the leg sockets (deferred: a socket holds duration x pps packets)
    #[arg(long, value_name = "BYTES", default_value_t = 4 * 1024 * 1024, visible_alias = "sockbuf")]
    sock_buf: usize,
    /// Seconds of relay CPU sampled with the calls up and no media (subtracted)
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    idle: f64,
    /// Seconds after the last packet that relay CPU is still counted
    #[arg(long, value_name = "S", default_value_t = 0.5)]
    drain: f64,
    /// ringsip configuration [default: config/examples/media.toml: SIP on 127.0.0.1:5060, ng on
    /// 127.0.0.1:2223, media ports 30000-39999]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// ringsip binary [default: `ringsip` next to this program, built with cargo if missing]
    #[arg(long, value_name = "PATH")]
    ringsip: Option<PathBuf>,
    /// Run this relay command instead of ringsip (foreground, ng on --ng; gets NG_ADDR and RELAY_WORKERS)
    #[arg(long, value_name = "CMD")]
    relay_cmd: Option<String>,
    /// Label of that relay [default: the command's name]
    #[arg(long, value_name = "NAME")]
    relay_name: Option<String>,
    /// Also run rtpengine (userspace forwarding, --num-threads = relay CPUs) and print the ratio
    #[arg(long)]
    vs_rtpengine: bool,
    /// rtpengine configuration [default: ../shared/bench/rtpengine/rtpengine.conf from the repo root]
    #[arg(long, value_name = "FILE")]
    rtpengine_conf: Option<PathBuf>,
    /// rtpengine binary (Debian package rtpengine-daemon)
    #[arg(long, value_name = "PATH", default_value = "rtpengine")]
    rtpengine_bin: String,
    /// Also run the floor relay (rtp-floor of shared/bench/floor, built with cargo into a temp dir)
    #[arg(long)]
    vs_floor: bool,
    /// The floor's cargo project [default: ../shared/bench/floor from the repo root]
    #[arg(long, value_name = "DIR")]
    floor_dir: Option<PathBuf>,
    /// Repetitions (relays interleaved: floor, ringsip, rtpengine, floor, ...)
    #[arg(long, value_name = "R", default_value_t = 1)]
    reps: u32,
    /// Find the highest loss-free rate: run --steps calls for --step-duration s each, stopping at the
    /// first step that loses a packet
    #[arg(long, visible_alias = "ramp")]
    rate_search: bool,
    /// Calls of the rate search's steps
    #[arg(long, value_name = "N,...", value_delimiter = ',', default_value = "250,500,1000,1500,2000,2500")]
    steps: Vec<usize>,
    /// Seconds of RTP per rate search step
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    step_duration: f64,
    /// JSON: to FILE (and the table on stdout), or alone on stdout without FILE
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    json: Option<Option<PathBuf>>,
    /// SIP calls/s placed through ringsip (and answered) during every blast and rate search step
    /// (0: none; rtpengine and the floor get none)
    #[arg(long, value_name = "CPS", default_value_t = 0.0)]
    sip_rate: f64,
    /// ringsip's SIP address (media.toml's listen)
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:5060")]
    sip_target: SocketAddrV4,
    /// The UAS answering the SIP calls (media.toml's destination)
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:5080")]
    sip_uas: SocketAddrV4,
    /// The UAC placing them
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:5100")]
    sip_uac: SocketAddrV4,
    /// Keep the work directory (configs, relay logs)
    #[arg(long)]
    keep: bool,
    /// No progress messages on stderr
    #[arg(long, short)]
    quiet: bool,
}

fn say(a: &RtpArgs, msg: impl AsRef<str>) {
    if !a.quiet {
        eprintln!("ringsip-bench: {}", msg.as_ref());
    }
}

/// The JSON document.
#[derive(Serialize)]
struct Output<'a> {
    tool: &'static str,
    command: &'static str,
    version: &'static str,
    settings: Settings,
    runs: &'a [RtpResult],
    rate_searches: &'a [RateSearch],
    comparison: Comparison,
    errors: &'a [String],
    ok: bool,
}

#[derive(Serialize)]
struct Settings {
    ng: String,
    router_cpus: String,
    gen_cpus: String,
    calls: usize,
    duration_s: f64,
    pps_per_stream: f64,
    offered_pps: f64,
    payload: usize,
    rtp_bytes: usize,
    tick_ms: f64,
    sink: Sink,
    sock_buf: usize,
    idle_s: f64,
    drain_s: f64,
    reps: u32,
    relays: Vec<String>,
    rate_search: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<Vec<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step_duration_s: Option<f64>,
    /// `--sip-rate`: SIP calls/s through ringsip during each blast (0: none)
    sip_rate_cps: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sip: Option<SipSettings>,
}

/// Where the SIP calls go (`--sip-rate`).
#[derive(Serialize)]
struct SipSettings {
    target: String,
    uas: String,
    uac: String,
    /// the relays that got SIP calls, and those that did not (no SIP side)
    relays: Vec<String>,
    skipped: Vec<String>,
    /// the generator thread's CPUs (shared with the RTP sender)
    gen_cpus: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<String>,
}

/// Entry point of `ringsip-bench rtp`.
pub(crate) fn rtp(a: RtpArgs) -> ExitCode {
    if !(a.duration > 0.0 && a.step_duration > 0.0 && a.pps > 0.0 && a.pps.is_finite()) {
        usage_error("--duration, --step-duration and --pps must be > 0".into());
    }
    if !(a.idle >= 0.0 && a.drain >= 0.0 && a.tick_ms >= 0.0 && a.tick_ms.is_finite()) {
        usage_error("--idle, --drain and --tick-ms must be >= 0".into());
    }
    if a.calls == 0 || a.reps == 0 || a.steps.is_empty() || a.steps.contains(&0) {
        usage_error("--calls, --reps and every --steps value must be >= 1".into());
    }
    if a.payload < stats::META || a.payload > 1400 {
        usage_error(format!("--payload must be {}..=1400 bytes", stats::META));
    }
    if a.sock_buf == 0 {
        usage_error("--sock-buf must be > 0".into());
    }
    if !a.ng.ip().is_loopback() {
        usage_error(format!("--ng {}: only loopback addresses are used", a.ng));
    }
    if !(a.sip_rate >= 0.0 && a.sip_rate.is_finite()) {
        usage_error("--sip-rate must be >= 0".into());
    }
    let sip_addrs = [a.sip_target, a.sip_uas, a.sip_uac];
    if a.sip_rate > 0.0 && sip_addrs.iter().any(|s| !s.ip().is_loopback()) {
        usage_error("--sip-target, --sip-uas and --sip-uac: only loopback addresses are used".into());
    }
    let most_calls = if a.rate_search { a.steps.iter().copied().max().unwrap_or(0) } else { a.calls };
    if u32::from(a.base_port) + 4 * most_calls as u32 > 65536 {
        usage_error(format!("{most_calls} calls need 4 ports each above --base-port {}: lower it", a.base_port));
    }
    check_ports(&a, most_calls);
    let relay_cpus = parse_cpu_list(&a.router_cpus).unwrap_or_else(|e| usage_error(e));
    let gen_cpus = parse_cpu_list(&a.gen_cpus).unwrap_or_else(|e| usage_error(e));
    if relay_cpus.iter().any(|c| gen_cpus.contains(c)) {
        eprintln!("ringsip-bench: warning: relay CPUs {} overlap generator CPUs {}", a.router_cpus, a.gen_cpus);
    }
    let (stop, workdir) = match super::run_setup("ringsip-bench-rtp") {
        Ok(x) => x,
        Err(code) => return code,
    };
    let result = run(&a, &relay_cpus, &gen_cpus, &workdir, &stop);
    if a.keep || !matches!(result, Ok(true)) {
        say(&a, format!("work directory (configs, relay logs) kept: {}", workdir.display()));
    } else {
        let _ = fs::remove_dir_all(&workdir);
    }
    super::exit_code(result, &stop)
}

/// The configuration text ringsip runs with (`None` with `--relay-cmd` or an unreadable file).
fn ringsip_config_text(a: &RtpArgs) -> Option<String> {
    if a.relay_cmd.is_some() {
        return None;
    }
    match &a.config {
        Some(p) => fs::read_to_string(p).ok(),
        None => Some(MEDIA_CONFIG.to_string()),
    }
}

/// Our RTP legs' ports (`--base-port`, 4 per call) must not include the relays' ng port,
/// ringsip's SIP port or, with `--sip-rate`, the SIP generator's (a usage error); overlapping
/// ringsip's media port range, or leaving it too few pairs for the SIP calls, is warned about.
fn check_ports(a: &RtpArgs, most_calls: usize) {
    let first = u32::from(a.base_port);
    let legs = first..=first + 4 * most_calls as u32 - 1;
    let one = |p: u16| u32::from(p)..=u32::from(p);
    let mut reserved = vec![("the ng port (--ng)".to_string(), one(a.ng.port()))];
    if a.relay_cmd.is_none() {
        reserved.push(("ringsip's SIP port (--sip-target)".into(), one(a.sip_target.port())));
    }
    if a.sip_rate > 0.0 {
        reserved.push(("the SIP UAS (--sip-uas)".into(), one(a.sip_uas.port())));
        reserved.push(("the SIP UAC (--sip-uac)".into(), one(a.sip_uac.port())));
        if a.sip_uas == a.sip_uac || a.sip_uas == a.sip_target || a.sip_uac == a.sip_target {
            usage_error("--sip-target, --sip-uas and --sip-uac must differ".into());
        }
    }
    let bad = sipload::clashes(&legs, &reserved);
    if !bad.is_empty() {
        usage_error(format!(
            "the RTP legs' ports {}-{} (--base-port + 4 per call) include {}: move --base-port",
            legs.start(),
            legs.end(),
            bad.join(", ")
        ));
    }
    let text = ringsip_config_text(a);
    let Some(media) = text.as_deref().and_then(|t| sipload::config_value(t, "ports")) else { return };
    let Some(range) = sipload::parse_port_range(&media) else { return };
    let r = u32::from(*range.start())..=u32::from(*range.end());
    if !sipload::clashes(&legs, &[(String::new(), r.clone())]).is_empty() {
        eprintln!(
            "ringsip-bench: warning: the RTP legs' ports {}-{} overlap ringsip's media ports {media}: move --base-port",
            legs.start(),
            legs.end()
        );
    }
    let pairs = (r.end() - r.start() + 1) as usize / 2;
    if a.sip_rate > 0.0 && 2 * most_calls + 8 > pairs {
        eprintln!(
            "ringsip-bench: warning: {most_calls} calls take {} of ringsip's {pairs} media port pairs ({media}, 2 per \
             call): the SIP calls, anchored from the same pool, may find none left and fail",
            2 * most_calls
        );
    }
}

/// Single-quote `s` for `sh -c`.
fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"/._-=:,+@".contains(&c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// rtp-floor built from shared/bench/floor into the temp target dir `lb --vs-floor` uses.
fn floor_binary(a: &RtpArgs) -> Result<PathBuf, Fatal> {
    super::build_floor(a.floor_dir.as_deref(), "rtp-floor", |m| say(a, m))
}

/// rtpengine, installed with apt-get (package rtpengine-daemon) when missing and we are root.
fn rtpengine_binary(a: &RtpArgs) -> Result<PathBuf, Fatal> {
    if let Some(p) = router::which(&a.rtpengine_bin) {
        return Ok(p);
    }
    let cmd = "apt-get install -y rtpengine-daemon";
    if super::sys::euid() == 0 && router::which("apt-get").is_some() {
        say(a, format!("rtpengine is not installed: running `{cmd}`"));
        let ok = router::run_visible(
            Command::new("apt-get")
                .args(["install", "-y", "rtpengine-daemon"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
        .map(|s| s.success())
        .unwrap_or(false);
        if ok {
            if let Some(p) = router::which(&a.rtpengine_bin) {
                return Ok(p);
            }
        }
        return Err(Fatal(format!("`{cmd}` did not provide {}", a.rtpengine_bin)));
    }
    Err(Fatal(format!("rtpengine is not installed; install it with: sudo {cmd}")))
}

/// A relay of the comparison, or why it cannot run.
struct Relay {
    spec: Result<RouterSpec, String>,
    name: String,
    /// has a SIP side (ringsip): gets the `--sip-rate` calls
    sip: bool,
}

/// ringsip (or `--relay-cmd`): what cannot be prepared is this relay's error, not the run's.
fn main_relay(a: &RtpArgs, relay_cpus: &[usize], workdir: &Path) -> Relay {
    if let Some(cmd) = &a.relay_cmd {
        let first = cmd.split_whitespace().next().unwrap_or("custom");
        let base = Path::new(first).file_name().and_then(|s| s.to_str()).unwrap_or("custom").to_string();
        let name = a.relay_name.clone().unwrap_or(base);
        let cmd = format!("env NG_ADDR={} RELAY_WORKERS={} {cmd}", a.ng, relay_cpus.len());
        return Relay { spec: Ok(RouterSpec { name: name.clone(), kind: Kind::Command { cmd } }), name, sip: false };
    }
    let name = a.relay_name.clone().unwrap_or("ringsip".into());
    let prepare = || -> Result<RouterSpec, String> {
        let bin = super::ringsip_binary(a.ringsip.as_deref(), a.quiet, false).map_err(|Fatal(e)| e)?;
        let config = match &a.config {
            Some(c) => c.clone(),
            None => {
                let text = patched_media_config(MEDIA_CONFIG, &workdir.join("ringsip.sock"));
                let p = workdir.join("media.toml");
                fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
                p
            }
        };
        Ok(RouterSpec { name: name.clone(), kind: Kind::Ringsip { bin, config } })
    };
    Relay { spec: prepare(), name, sip: true }
}

/// The media example with this run's control socket (so a daemon of another run or of the
/// system is not disturbed); everything else as written.
fn patched_media_config(template: &str, control: &Path) -> String {
    let mut out = String::new();
    for line in template.lines() {
        if line.trim_start().starts_with("control_socket") {
            out.push_str(&format!("control_socket = \"{}\"", control.display()));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// What a measurement needs.
struct Ctx<'a> {
    a: &'a RtpArgs,
    stop: &'a AtomicBool,
    clk: u64,
    relay_cpus: &'a [usize],
    gen_cpus: String,
}

fn run(
    a: &RtpArgs,
    relay_cpus: &[usize],
    gen_cpus: &[usize],
    workdir: &Path,
    stop: &AtomicBool,
) -> Result<bool, Fatal> {
    // ---- the relays (builds happen before pinning: they may use every CPU)
    let mut relays = Vec::new();
    if a.vs_floor {
        let bin = floor_binary(a)?;
        let cmd =
            format!("env NG_ADDR={} RELAY_WORKERS={} {}", a.ng, relay_cpus.len(), sh_quote(&bin.display().to_string()));
        relays.push(Relay {
            spec: Ok(RouterSpec { name: "rtp-floor".into(), kind: Kind::Command { cmd } }),
            name: "rtp-floor".into(),
            sip: false,
        });
    }
    let main = main_relay(a, relay_cpus, workdir);
    let main_name = main.name.clone();
    if let Err(e) = &main.spec {
        // its problem does not stop the others
        eprintln!("ringsip-bench: {main_name} cannot run: {e}");
    }
    relays.push(main);
    if a.vs_rtpengine {
        let bin = rtpengine_binary(a)?;
        let conf = match &a.rtpengine_conf {
            Some(c) => c.clone(),
            None => super::shared_bench("rtpengine/rtpengine.conf").ok_or_else(|| {
                Fatal("shared/bench/rtpengine/rtpengine.conf not found (use --rtpengine-conf)".into())
            })?,
        };
        let mut cmd = format!(
            "{} --config-file={} --num-threads={} --foreground --pidfile={}",
            sh_quote(&bin.display().to_string()),
            sh_quote(&conf.display().to_string()),
            relay_cpus.len(),
            sh_quote(&workdir.join("rtpengine.pid").display().to_string()),
        );
        if a.ng != SocketAddrV4::new(Ipv4Addr::LOCALHOST, 2223) {
            cmd.push_str(&format!(" --listen-ng={}", a.ng));
        }
        relays.push(Relay {
            spec: Ok(RouterSpec { name: "rtpengine".into(), kind: Kind::Command { cmd } }),
            name: "rtpengine".into(),
            sip: false,
        });
    }

    // ---- pin ourselves
    if let Err(e) = super::sys::set_thread_affinity(gen_cpus) {
        eprintln!("ringsip-bench: warning: cannot pin to CPUs {}: {e}", a.gen_cpus);
    }
    let most_calls = if a.rate_search { a.steps.iter().copied().max().unwrap_or(0) } else { a.calls };
    let want_fds = 2 * most_calls as u64 + 256;
    let have = sys::raise_nofile(want_fds);
    if have < want_fds {
        return Err(Fatal(format!("{most_calls} calls need {want_fds} open files; the limit is {have} (ulimit -n)")));
    }
    if a.sink == Sink::Deferred {
        warn_deferred_memory(a, most_calls);
    }
    let env = RouterEnv {
        mode: "rtp",
        listen: a.ng,
        backends: Vec::new(),
        outdir: workdir.to_path_buf(),
        gen_cpus: gen_cpus.to_vec(),
    };
    let ctx = Ctx { a, stop, clk: super::sys::clk_tck(), relay_cpus, gen_cpus: cpu_list_string(gen_cpus) };
    let sip_gen = start_sip(a, &relays, gen_cpus)?;

    let mut runs: Vec<RtpResult> = Vec::new();
    let mut searches: Vec<RateSearch> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    'all: for rep in 1..=a.reps {
        for relay in &relays {
            if stop.load(Ordering::Relaxed) {
                break 'all;
            }
            let base = RtpResult {
                relay: relay.name.clone(),
                rep,
                relay_cpus: cpu_list_string(relay_cpus),
                gen_cpus: ctx.gen_cpus.clone(),
                sink: a.sink.name().into(),
                ..Default::default()
            };
            let started = relay.spec.as_ref().map_err(Clone::clone).and_then(|spec| {
                say(a, format!("{} rep {rep}: starting", spec.name));
                start_relay(&ctx, spec, &env)
            });
            let sip = sip_gen.as_ref().filter(|_| relay.sip);
            let started = started.and_then(|mut p| match sip.map(|g| g.wait_routing(|| p.alive(), stop)) {
                Some(Err(e)) => {
                    p.stop();
                    Err(format!("SIP: {e}; log tail:\n{}", p.log_tail(20)))
                }
                _ => Ok(p),
            });
            let mut proc = match started {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("ringsip-bench: {}: {e}", relay.name);
                    errors.push(format!("{} (rep {rep}): {e}", relay.name));
                    runs.push(RtpResult { error: Some(e), ..base });
                    continue;
                }
            };
            if a.rate_search {
                let s = rate_search(&ctx, &mut proc, &base, sip);
                if let Some(bad) = s.steps.iter().find(|r| r.error.is_some() || !r.relay_alive) {
                    errors.push(format!(
                        "{} (rep {rep}, {} calls): {}",
                        relay.name,
                        bad.calls,
                        bad.error.as_deref().unwrap_or("relay died")
                    ));
                }
                searches.push(s);
            } else {
                say(
                    a,
                    format!(
                        "{}: {} calls, {} pps for {} s",
                        relay.name,
                        a.calls,
                        a.calls as f64 * 2.0 * a.pps,
                        a.duration
                    ),
                );
                let r = measure(&ctx, &mut proc, a.calls, a.duration, base, sip);
                say(
                    a,
                    format!(
                        "{}: {} sent, {} received, {} lost, {} us/pkt (sched), relay {} % CPU",
                        relay.name,
                        r.sent,
                        r.rx.received,
                        r.rx.lost,
                        fmt3(r.us_per_pkt_sched),
                        fmt3(r.relay_util_sched_pct)
                    ),
                );
                if let Some(s) = &r.sip {
                    say(a, format!("{}: SIP {}", relay.name, sip_summary(s)));
                }
                if let Some(e) = &r.error {
                    errors.push(format!("{} (rep {rep}): {e}", relay.name));
                } else if !r.relay_alive {
                    errors.push(format!("{} (rep {rep}): relay died during the run", relay.name));
                }
                runs.push(r);
            }
            proc.stop();
        }
    }

    let comparison = report::compare(&runs, &searches, &main_name);
    let ok = errors.is_empty();
    let out = Output {
        tool: "ringsip-bench",
        command: "rtp",
        version: env!("CARGO_PKG_VERSION"),
        settings: Settings {
            ng: a.ng.to_string(),
            router_cpus: a.router_cpus.clone(),
            gen_cpus: a.gen_cpus.clone(),
            calls: a.calls,
            duration_s: a.duration,
            pps_per_stream: a.pps,
            offered_pps: a.calls as f64 * 2.0 * a.pps,
            payload: a.payload,
            rtp_bytes: stats::RTP_HDR + a.payload,
            tick_ms: a.tick_ms,
            sink: a.sink,
            sock_buf: a.sock_buf,
            idle_s: a.idle,
            drain_s: a.drain,
            reps: a.reps,
            relays: relays.iter().map(|r| r.name.clone()).collect(),
            rate_search: a.rate_search,
            steps: a.rate_search.then(|| a.steps.clone()),
            step_duration_s: a.rate_search.then_some(a.step_duration),
            sip_rate_cps: a.sip_rate,
            sip: sip_gen.as_ref().map(|g| SipSettings {
                target: g.target.to_string(),
                uas: g.uas.to_string(),
                uac: g.uac.to_string(),
                relays: relays.iter().filter(|r| r.sip).map(|r| r.name.clone()).collect(),
                skipped: relays.iter().filter(|r| !r.sip).map(|r| r.name.clone()).collect(),
                gen_cpus: g.cpus.clone(),
                metrics: g.metrics.map(|m| m.to_string()),
            }),
        },
        runs: &runs,
        rate_searches: &searches,
        comparison,
        errors: &errors,
        ok,
    };
    drop(sip_gen);
    let json = serde_json::to_string_pretty(&out).map_err(|e| Fatal(format!("JSON: {e}")))?;
    match &a.json {
        Some(None) => println!("{json}"),
        Some(Some(path)) => {
            fs::write(path, format!("{json}\n")).map_err(|e| Fatal(format!("{}: {e}", path.display())))?;
            print_human(a, &out);
        }
        None => print_human(a, &out),
    }
    Ok(ok)
}

/// `--sip-rate`: the SIP generator, when a relay has a SIP side (ringsip); the others are
/// named as skipped.
fn start_sip(a: &RtpArgs, relays: &[Relay], gen_cpus: &[usize]) -> Result<Option<SipGen>, Fatal> {
    if a.sip_rate <= 0.0 {
        return Ok(None);
    }
    let skipped: Vec<&str> = relays.iter().filter(|r| !r.sip).map(|r| r.name.as_str()).collect();
    if !skipped.is_empty() {
        eprintln!(
            "ringsip-bench: --sip-rate: SIP calls are skipped for {} (no SIP side: only ringsip gets them)",
            skipped.join(", ")
        );
    }
    if !relays.iter().any(|r| r.sip && r.spec.is_ok()) {
        return Ok(None);
    }
    let metrics = ringsip_config_text(a)
        .and_then(|t| sipload::config_value(&t, "metrics"))
        .and_then(|m| m.parse::<std::net::SocketAddr>().ok());
    let g = SipGen::start(a.sip_target, a.sip_uas, a.sip_uac, a.sip_rate, gen_cpus, metrics)
        .map_err(|e| Fatal(format!("--sip-rate: the SIP generator: {e}")))?;
    say(
        a,
        format!(
            "SIP: {} calls/s through {} during every blast, UAS {}, UAC {}, generator on CPUs {} (with the RTP sender)",
            a.sip_rate, a.sip_target, a.sip_uas, a.sip_uac, g.cpus
        ),
    );
    Ok(Some(g))
}

/// One line of a blast's SIP calls.
fn sip_summary(s: &sipload::SipResult) -> String {
    let lat = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
    let mut line = format!(
        "{}/{} calls ok, {} failed, {} retransmissions, setup p50/p99 {}/{} us",
        s.succeeded,
        s.attempted,
        s.failed,
        s.retrans(),
        lat(s.setup_latency_us.p50),
        lat(s.setup_latency_us.p99)
    );
    if let Some(why) = s.failure() {
        line.push_str(&format!(" -- FAILED: {why}"));
    }
    line
}

fn fmt3(v: f64) -> String {
    if v.is_finite() { format!("{v:.3}") } else { "-".into() }
}

/// Deferred: every packet of the blast waits in a socket buffer. Warn when one socket's share
/// or all of them may not fit (the loss would be the benchmark's own).
fn warn_deferred_memory(a: &RtpArgs, calls: usize) {
    // truesize of a ~200-byte datagram on loopback, about (measured: 768 B)
    const TRUESIZE: f64 = 1024.0;
    let secs = if a.rate_search { a.step_duration } else { a.duration };
    let per_sock = secs * a.pps * TRUESIZE;
    let rmem_max: f64 =
        fs::read_to_string("/proc/sys/net/core/rmem_max").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(212_992.0);
    // the kernel doubles SO_RCVBUF (capped at rmem_max) for its bookkeeping
    let effective = 2.0 * (a.sock_buf as f64).min(rmem_max);
    if per_sock > effective {
        eprintln!(
            "ringsip-bench: warning: deferred sink: a socket must hold ~{:.1} MB ({} s x {} pps) but gets {:.1} MB: \
             packets will drop at the benchmark's sockets (use --sink live, a shorter --duration, or raise \
             net.core.rmem_max)",
            per_sock / 1e6,
            secs,
            a.pps,
            effective / 1e6
        );
    }
    let total = per_sock * 2.0 * calls as f64;
    let pressure = fs::read_to_string("/proc/sys/net/ipv4/udp_mem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map(|pages| pages * 4096.0);
    if let Some(p) = pressure {
        if total > p {
            eprintln!(
                "ringsip-bench: warning: deferred sink: ~{:.0} MB queued at once exceeds net.ipv4.udp_mem's \
                 pressure threshold ({:.0} MB): use --sink live or a shorter --duration",
                total / 1e6,
                p / 1e6
            );
        }
    }
}

/// Start a relay and wait until its ng port answers `ping` with `pong`.
fn start_relay(ctx: &Ctx<'_>, spec: &RouterSpec, env: &RouterEnv) -> Result<RouterProc, String> {
    let mut r = RouterProc::spawn(spec, ctx.relay_cpus.len(), ctx.relay_cpus, env)?;
    let died = |r: &mut RouterProc| {
        format!(
            "relay exited during start-up ({}); log tail:\n{}",
            r.exit_status().map_or("?".into(), |s| s.to_string()),
            r.log_tail(20)
        )
    };
    let mut ng = ng::Ng::new(ctx.a.ng).map_err(|e| format!("ng client: {e}"))?;
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let err = match ng.ping(Duration::from_millis(200)) {
            Ok(()) => break,
            Err(e) => e,
        };
        if !r.alive() {
            return Err(died(&mut r));
        }
        if Instant::now() > end || ctx.stop.load(Ordering::Relaxed) {
            return Err(format!("no pong on ng {} within 15 s ({err}); log tail:\n{}", ctx.a.ng, r.log_tail(20)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    nap_until_stop(ctx.stop, 0.5); // every worker initialised (as the harness)
    if !r.alive() {
        return Err(died(&mut r));
    }
    Ok(r)
}

/// Step the calls up until a step is not clean.
fn rate_search(ctx: &Ctx<'_>, proc: &mut RouterProc, base: &RtpResult, sip: Option<&SipGen>) -> RateSearch {
    let a = ctx.a;
    let mut out = RateSearch {
        relay: base.relay.clone(),
        rep: base.rep,
        relay_shards: ctx.relay_cpus.len(),
        sip_rate_cps: sip.map(|g| g.rate),
        ..Default::default()
    };
    for (k, &calls) in a.steps.iter().enumerate() {
        let pps = calls as f64 * 2.0 * a.pps;
        say(
            a,
            format!("{} rate search step {}: {calls} calls, {pps} pps for {} s", base.relay, k + 1, a.step_duration),
        );
        let r = measure(ctx, proc, calls, a.step_duration, RtpResult { step: Some(k as u32 + 1), ..base.clone() }, sip);
        say(
            a,
            format!(
                "  {} sent, {} lost, {} us/pkt (sched), relay {} % CPU, sender {} pps",
                r.sent,
                r.rx.lost,
                fmt3(r.us_per_pkt_sched),
                fmt3(r.relay_util_sched_pct),
                r.achieved_send_pps.round()
            ),
        );
        if let Some(s) = &r.sip {
            say(a, format!("  SIP {}", sip_summary(s)));
        }
        let clean = r.clean();
        let reason = if ctx.stop.load(Ordering::Relaxed) {
            Some("interrupted".to_string())
        } else if let Some(e) = &r.error {
            Some(format!("error: {e}"))
        } else if !r.relay_alive {
            Some("the relay died".into())
        } else if r.rx.lost > 0 {
            let mut why = format!("{} of {} packets lost ({:.3} %)", r.rx.lost, r.sent, r.rx.loss_pct);
            if r.gen_sock_drops > 0 {
                why.push_str(&format!(", {} of them at the benchmark's own sockets", r.gen_sock_drops));
            }
            why.push_str(&format!(", relay at {:.0} % CPU", r.relay_util_sched_pct));
            if let Some(sip) = r.sip.as_ref().and_then(sipload::SipResult::failure) {
                why.push_str(&format!("; and {sip}"));
            }
            Some(why)
        } else if let Some(why) = r.sip.as_ref().and_then(sipload::SipResult::failure) {
            Some(why)
        } else if r.generator_limited() {
            Some(format!("generator-limited: sent {:.0} of {pps} pps", r.achieved_send_pps))
        } else {
            None
        };
        if clean {
            out.max_clean_calls = Some(calls);
            out.max_clean_pps = Some(pps);
            out.max_clean_pps_per_shard = Some(pps / out.relay_shards.max(1) as f64);
        }
        out.steps.push(r);
        if let Some(why) = reason {
            out.stopped_at_calls = Some(calls);
            out.stop_reason = why;
            return out;
        }
    }
    out.stop_reason = "last step clean (no limit found: add --steps)".into();
    out
}

/// Snapshots around the blast.
struct Window {
    s0: TreeSnap,
    s1: TreeSnap,
    snmp0: std::collections::HashMap<String, u64>,
    snmp1: std::collections::HashMap<String, u64>,
    other_cpu_s: f64,
    sink_cpu_s: f64,
    sink_errors: Vec<String>,
}

/// One blast through a started relay: set up `calls` calls, measure, delete them. With `sip`,
/// SIP calls flow through the relay during the blast.
fn measure(
    ctx: &Ctx<'_>,
    proc: &mut RouterProc,
    calls: usize,
    duration: f64,
    mut res: RtpResult,
    sip: Option<&SipGen>,
) -> RtpResult {
    let a = ctx.a;
    let pid = proc.pid;
    res.calls = calls;
    res.streams = 2 * calls;
    res.pps_per_stream = a.pps;
    res.offered_pps = res.streams as f64 * a.pps;
    res.duration_s = duration;
    res.rtp_bytes = stats::RTP_HDR + a.payload;
    res.tick_ms = a.tick_ms;
    res.relay_alive = true;
    let mut ng = match ng::Ng::new(a.ng) {
        Ok(n) => n,
        Err(e) => {
            res.error = Some(format!("ng client: {e}"));
            return res;
        }
    };
    let opts = SetupOpts {
        base_port: a.base_port,
        sock_buf: a.sock_buf,
        timestamps: a.sink == Sink::Deferred,
        run_tag: format!("{}{}{}", res.relay, res.rep, res.step.map_or(String::new(), |s| format!("s{s}"))),
    };
    let t = Instant::now();
    let (legs, err) = traffic::setup_calls(&mut ng, calls, &opts, ctx.stop);
    res.setup_s = t.elapsed().as_secs_f64();
    if let Some(e) = err {
        let n = legs.len();
        let (deleted, _) = traffic::delete_calls(&mut ng, &legs);
        res.deleted = deleted;
        res.error = Some(format!("call setup: {e} ({n} of {calls} calls were set up)"));
        res.relay_alive = proc.alive();
        return res;
    }
    let plan = SendPlan {
        pps: res.offered_pps,
        duration_s: duration,
        tick: Duration::from_secs_f64(a.tick_ms / 1e3),
        payload: a.payload,
    };
    let relay_ports: Vec<u16> = legs.iter().flat_map(|c| [c.a.relay.port(), c.b.relay.port()]).collect();
    let gen_ports: Vec<u16> = legs.iter().flat_map(|c| [c.a.port, c.b.port]).collect();
    let mut rx = Rx::new(res.streams, traffic::max_counter(&plan, res.streams));

    // ---- idle with the calls up, then the blast (and the SIP calls: their metrics are read
    // outside the CPU windows)
    let sip_before = sip.map(|g| g.before(duration));
    let s_idle = TreeSnap::take(pid);
    nap_until_stop(ctx.stop, a.idle);
    let rdrops0 = procfs::sock_drops(&relay_ports);
    let gdrops0 = procfs::sock_drops(&gen_ports);
    let (ready, sink_stop) = (AtomicBool::new(false), AtomicBool::new(false));
    let senders = Call::senders(&legs);
    let mut send = traffic::SendStats::default();
    let w = std::thread::scope(|sc| {
        let live = (a.sink == Sink::Live).then(|| {
            sc.spawn(|| {
                let c0 = procfs::thread_sched().0;
                let errs = traffic::live_sink(&legs, &mut rx, &ready, &sink_stop);
                (errs, procfs::thread_sched().0.saturating_sub(c0) as f64 / 1e9)
            })
        });
        if live.is_some() {
            while !ready.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            nap_until_stop(ctx.stop, 0.2); // the sink is polling (as the script)
        }
        let snmp0 = procfs::snmp_udp();
        let ticks0 = procfs::all_ticks();
        if let (Some(g), Some(b)) = (sip, &sip_before) {
            g.start_load(b);
        }
        let s0 = TreeSnap::take(pid);
        send = traffic::blast(&senders, &plan, ctx.stop);
        let ticks1 = procfs::all_ticks();
        nap_until_stop(ctx.stop, a.drain);
        let s1 = TreeSnap::take(pid);
        let snmp1 = procfs::snmp_udp();
        let mut exclude: Vec<u32> = s0.procs.keys().chain(s1.procs.keys()).copied().collect();
        exclude.push(std::process::id());
        let other_cpu_s = procfs::other_cpu_s(&ticks0, &ticks1, &exclude, ctx.clk);
        let (sink_errors, sink_cpu_s) = match live {
            Some(h) => {
                sink_stop.store(true, Ordering::Release);
                h.join().unwrap_or_else(|_| (vec!["the live sink panicked".into()], 0.0))
            }
            None => (Vec::new(), 0.0),
        };
        Window { s0, s1, snmp0, snmp1, other_cpu_s, sink_cpu_s, sink_errors }
    });
    // the calls still in progress end now (outside the window: a few ms at most, unless they fail)
    res.sip = sip.zip(sip_before).map(|(g, b)| g.finish(b, || proc.alive(), ctx.stop));
    let (sink_errors, sink_cpu_s) = if a.sink == Sink::Deferred {
        // the CPU window is closed: now read what queued up
        let c0 = procfs::thread_sched().0;
        let errs = traffic::drain(&legs, &mut rx);
        (errs, procfs::thread_sched().0.saturating_sub(c0) as f64 / 1e9)
    } else {
        (w.sink_errors, w.sink_cpu_s)
    };
    res.relay_sock_drops = procfs::sock_drops(&relay_ports).saturating_sub(rdrops0);
    res.gen_sock_drops = procfs::sock_drops(&gen_ports).saturating_sub(gdrops0);
    res.relay_alive = proc.alive();

    // ---- teardown
    let (deleted, delete_errors) = traffic::delete_calls(&mut ng, &legs);
    res.deleted = deleted;
    res.delete_errors = delete_errors;
    drop(legs);
    res.relay_alive &= proc.alive();

    // ---- the figures
    res.sent = send.sent;
    res.send_errors = send.errors;
    if let Some(e) = &send.first_error {
        res.sink_errors.push(format!("send: {e}"));
    }
    if send.interrupted {
        res.error = Some("interrupted".into());
    }
    res.sink_errors.extend(sink_errors);
    res.achieved_send_pps = if send.send_s > 0.0 { send.sent as f64 / send.send_s } else { f64::NAN };
    res.sender_max_lag_ms = send.max_lag_ms;
    res.gen_send_cpu_s = send.cpu_s;
    res.gen_send_cpu_pct = if send.send_s > 0.0 { 100.0 * send.cpu_s / send.send_s } else { f64::NAN };
    res.gen_sink_cpu_s = sink_cpu_s;
    res.rx = rx.summary(send.sent);
    let d = |k: &str| w.snmp1.get(k).copied().unwrap_or(0).saturating_sub(w.snmp0.get(k).copied().unwrap_or(0));
    res.udp_rcvbuf_errors = d("RcvbufErrors");
    res.udp_in_errors = d("InErrors");
    res.other_cpu_pct = if send.send_s > 0.0 { 100.0 * w.other_cpu_s / send.send_s } else { f64::NAN };
    relay_cpu(&mut res, &s_idle, &w.s0, &w.s1, ctx.clk);
    if !res.relay_alive {
        res.relay_exit = Some(proc.exit_status().map_or("gone".into(), |s| s.to_string()));
        eprintln!("ringsip-bench: {} died during the run; log tail:\n{}", res.relay, proc.log_tail(20));
        for v in
            [&mut res.us_per_pkt_sched, &mut res.us_per_pkt, &mut res.us_per_pkt_sched_raw, &mut res.us_per_pkt_raw]
        {
            *v = f64::NAN;
        }
    }
    res
}

/// The relay's CPU over the window (rtp_bench.py's definitions), per received packet, with and
/// without the idle rate measured from `idle` to `s0`.
fn relay_cpu(res: &mut RtpResult, idle: &TreeSnap, s0: &TreeSnap, s1: &TreeSnap, clk: u64) {
    let (u, sy, sc) = cpu_delta(s0, s1, clk);
    let win = s1.at.duration_since(s0.at).as_secs_f64();
    let (idle_sched, idle_us) = super::report::idle_rate(idle, s0, clk);
    let got = res.rx.received;
    let per = |cpu_s: f64| if got > 0 { cpu_s * 1e6 / got as f64 } else { f64::NAN };
    res.window_s = win;
    res.relay_user_s = u;
    res.relay_sys_s = sy;
    res.relay_cpu_s = u + sy;
    res.relay_cpu_sched_s = sc;
    res.relay_idle_cpu_pct = 100.0 * idle_sched;
    res.us_per_pkt_sched_raw = per(sc);
    res.us_per_pkt_raw = per(u + sy);
    res.us_per_pkt_sched = per(sc - idle_sched * win);
    res.us_per_pkt = per(u + sy - idle_us * win);
    res.relay_util_sched_pct = if win > 0.0 { 100.0 * sc / win } else { f64::NAN };
    res.relay_wakeups_per_pkt = if got > 0 { slices_delta(s0, s1) as f64 / got as f64 } else { f64::NAN };
    res.relay_threads =
        s1.procs.keys().filter_map(|p| fs::read_dir(format!("/proc/{p}/task")).ok()).map(|d| d.count()).sum();
}

fn print_human(a: &RtpArgs, out: &Output<'_>) {
    let load = if a.rate_search {
        let steps: Vec<String> = a.steps.iter().map(ToString::to_string).collect();
        format!(
            "rate search over {} calls x 2 streams x {} pps, {} s per step",
            steps.join(","),
            a.pps,
            a.step_duration
        )
    } else {
        format!(
            "{} calls x 2 streams x {} pps = {} pps for {} s",
            a.calls,
            a.pps,
            a.calls as f64 * 2.0 * a.pps,
            a.duration
        )
    };
    println!(
        "ringsip-bench rtp: {load}, {}-byte RTP, ng {}; relay CPUs {}, generator CPUs {}, {} sink",
        stats::RTP_HDR + a.payload,
        a.ng,
        a.router_cpus,
        a.gen_cpus,
        a.sink.name()
    );
    let rows: Vec<RtpResult> =
        out.runs.iter().cloned().chain(out.rate_searches.iter().flat_map(|s| s.steps.iter().cloned())).collect();
    if let Some(sip) = &out.settings.sip {
        let mut line = format!(
            "SIP: {} calls/s through {} (UAS {}, UAC {}) during every blast{}, generator thread on CPUs {} (shared \
             with the RTP sender); relay CPU and us/pkt include the SIP calls' work",
            a.sip_rate,
            sip.target,
            sip.uas,
            sip.uac,
            if a.rate_search { " and rate search step" } else { "" },
            sip.gen_cpus
        );
        if !sip.skipped.is_empty() {
            line.push_str(&format!("; skipped for {} (no SIP side)", sip.skipped.join(", ")));
        }
        println!("{line}");
    } else if a.sip_rate > 0.0 {
        println!("SIP: --sip-rate {} skipped: no relay with a SIP side (only ringsip has one)", a.sip_rate);
    }
    println!();
    print!("{}", report::table(&rows));
    let sip_table = report::sip_table(&rows);
    if !sip_table.is_empty() {
        println!();
        println!("SIP calls during the blast (setup = INVITE -> 200, us; retrans = UAC INVITE+BYE / UAS):");
        print!("{sip_table}");
    }
    println!();
    print!("{}", report::notes(&rows));
    for s in out.rate_searches {
        println!();
        let with_sip = s.sip_rate_cps.map_or(String::new(), |r| {
            format!(" with {r} SIP calls/s answered (a step passes only if no SIP call failed)")
        });
        let per_shard = match s.max_clean_pps_per_shard {
            Some(p) if s.relay_shards > 1 => format!(", {p:.0} pps per relay CPU of {}", s.relay_shards),
            Some(_) => ", 1 relay CPU".into(),
            None => String::new(),
        };
        println!(
            "rate search {} (rep {}): highest loss-free {} ({} calls{per_shard}){with_sip}; stopped at {} calls: {}",
            s.relay,
            s.rep,
            s.max_clean_pps.map_or("none".into(), |p| format!("{p:.0} pps")),
            s.max_clean_calls.map_or("-".into(), |c| c.to_string()),
            s.stopped_at_calls.map_or("-".into(), |c| c.to_string()),
            s.stop_reason
        );
    }
    let c = &out.comparison;
    if c.us_per_pkt_sched.len() > 1 {
        println!();
        let m: Vec<String> = c.us_per_pkt_sched.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
        println!("median us/pkt (sched, idle subtracted) over the repetitions: {}", m.join(", "));
        for (k, v) in &c.ratios {
            println!("  {k}: {v:.2}x");
        }
    }
    if c.max_clean_pps.len() > 1 {
        println!();
        let m: Vec<String> = c.max_clean_pps.iter().map(|(k, v)| format!("{k} {v:.0}")).collect();
        println!("highest loss-free pps: {}", m.join(", "));
        for (k, v) in &c.max_clean_pps_ratios {
            println!("  {k}: {v:.2}x");
        }
    }
    if !out.errors.is_empty() {
        println!();
        for e in out.errors {
            println!("ERROR {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[command(flatten)]
        a: RtpArgs,
    }

    #[test]
    fn rtp_cli_defaults_and_aliases() {
        let p = |args: &[&str]| T::try_parse_from(std::iter::once("x").chain(args.iter().copied())).map(|t| t.a);
        let a = p(&[]).unwrap();
        assert_eq!((a.calls, a.duration, a.pps, a.payload, a.tick_ms), (250, 10.0, 50.0, 160, 1.0));
        assert_eq!((a.router_cpus.as_str(), a.gen_cpus.as_str(), a.sink), ("1", "0", Sink::Deferred));
        assert_eq!((a.idle, a.drain, a.sock_buf, a.base_port), (1.0, 0.5, 4 << 20, 40000));
        assert_eq!(a.ng.to_string(), "127.0.0.1:2223");
        assert_eq!(a.steps, vec![250, 500, 1000, 1500, 2000, 2500]);
        assert!(a.json.is_none() && !a.rate_search && !a.vs_rtpengine && !a.vs_floor);
        assert_eq!(a.sip_rate, 0.0);
        let sip = (a.sip_target.to_string(), a.sip_uas.to_string(), a.sip_uac.to_string());
        assert_eq!(sip, ("127.0.0.1:5060".into(), "127.0.0.1:5080".into(), "127.0.0.1:5100".into()));
        let a = p(&["--relay-cpus", "1,0", "--pps-per-stream", "25", "--json", "--ramp", "--sink", "live"]).unwrap();
        assert_eq!((a.router_cpus.as_str(), a.pps, a.sink), ("1,0", 25.0, Sink::Live));
        assert_eq!(a.json, Some(None));
        assert!(a.rate_search);
        let a = p(&["--json", "/tmp/r.json", "--vs-rtpengine", "--vs-floor", "--steps", "100,200"]).unwrap();
        assert_eq!(a.json, Some(Some(PathBuf::from("/tmp/r.json"))));
        assert!(a.vs_rtpengine && a.vs_floor);
        assert_eq!(a.steps, vec![100, 200]);
        let a = p(&["--sip-rate", "200", "--sip-uas", "127.0.0.1:5090"]).unwrap();
        assert_eq!((a.sip_rate, a.sip_uas.port()), (200.0, 5090));
        assert!(p(&["--sink", "later"]).is_err());
        assert!(p(&["--bogus"]).is_err());
    }

    #[test]
    fn rtp_embedded_media_config_is_what_the_benchmark_assumes() {
        // the ng address of --ng's default, loopback media in the relay ports of rtpengine.conf
        assert!(MEDIA_CONFIG.contains("[media]"));
        assert!(MEDIA_CONFIG.contains("\"127.0.0.1:2223\""));
        assert!(MEDIA_CONFIG.contains("\"30000-39999\""));
        assert!(MEDIA_CONFIG.contains("address = \"127.0.0.1\""));
        let c = patched_media_config(MEDIA_CONFIG, Path::new("/tmp/w/ringsip.sock"));
        assert_eq!(c.lines().count(), MEDIA_CONFIG.lines().count());
    }

    #[test]
    fn rtp_media_config_patch_and_quoting() {
        let t = "# media\n[server]\ncontrol_socket = \"/run/ringsip.sock\"\nlisten = [\"udp:127.0.0.1:5060\"]\n";
        let c = patched_media_config(t, Path::new("/tmp/w/ringsip.sock"));
        assert!(c.contains("control_socket = \"/tmp/w/ringsip.sock\"") && c.contains("udp:127.0.0.1:5060"), "{c}");
        assert_eq!(c.lines().count(), t.lines().count());
        assert_eq!(sh_quote("/tmp/a-b/rtp_floor"), "/tmp/a-b/rtp_floor");
        assert_eq!(sh_quote("/tmp/a b/it's"), r"'/tmp/a b/it'\''s'");
    }
}
