//! `ringsip` — the daemon.
//!
//! ```text
//! ringsip --config FILE [--shards N] [--cpus LIST] [--control PATH]
//!                                                     run in the foreground until SIGINT/SIGTERM
//! ringsip check FILE                                  validate a config, print what it sets up
//! ringsip topology [--cpus LIST] [--shards N]         NUMA nodes, cores, and the shard placement
//! ```
//! Exit status: 0 on a clean stop or a valid config, 1 when the config is invalid or the
//! router cannot start, 2 on a usage error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ringsip_config::Config;
use ringsip_runtime::{Kind, RuntimeConfig, Topology, format_cpu_list, parse_cpu_list};
use tracing::{error, info, warn};

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Largest datagram a shard accepts; bigger ones are dropped and counted (SIP over UDP stays
/// far below this; RFC 3261 §18.1.1 moves anything over 1300 bytes to a stream transport).
const MAX_DATAGRAM: usize = 16 * 1024;

#[derive(Parser)]
#[command(
    name = "ringsip",
    version,
    about = "ringsip: a carrier-grade SIP edge router",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
struct RunArgs {
    /// The configuration file (TOML).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Number of shards (one per CPU); default: the CPUs given, or the config's `shards`.
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// CPUs to run shards on, e.g. "0-3,6"; default: the config's `cpus`, or every online CPU.
    #[arg(long, value_name = "LIST", value_parser = cpu_list)]
    cpus: Option<CpuList>,
    /// Unix control socket for `ringsipctl` (mode 0600); default: the config's
    /// `control_socket`, else none.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
}

/// A CPU list argument ("0-3,6").
#[derive(Clone, Debug)]
struct CpuList(Vec<usize>);

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration file and print what it sets up.
    Check {
        /// The configuration file.
        file: PathBuf,
    },
    /// Print the NUMA nodes and CPUs ringsip sees and the shard placement it would use.
    Topology {
        /// CPUs to place shards on.
        #[arg(long, value_name = "LIST", value_parser = cpu_list)]
        cpus: Option<CpuList>,
        /// Number of shards.
        #[arg(long, value_name = "N")]
        shards: Option<usize>,
    },
}

fn cpu_list(s: &str) -> Result<CpuList, String> {
    parse_cpu_list(s).map(CpuList)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    match cli.command {
        Some(Command::Check { file }) => check(&file),
        Some(Command::Topology { cpus, shards }) => topology(cpus.as_ref().map(|c| c.0.as_slice()), shards),
        None => match cli.run.config {
            Some(file) => run(&file, cli.run.shards, cli.run.cpus.map(|c| c.0), cli.run.control),
            None => {
                eprintln!("ringsip: no configuration given; run `ringsip --config FILE` (see `ringsip --help`)");
                ExitCode::from(2)
            }
        },
    }
}

fn load(file: &std::path::Path) -> Result<Config, ExitCode> {
    ringsip_config::load(file).map_err(|errs| {
        eprintln!("{errs}");
        eprintln!(
            "ringsip: {} invalid ({} error{})",
            file.display(),
            errs.0.len(),
            if errs.0.len() == 1 { "" } else { "s" }
        );
        ExitCode::from(1)
    })
}

fn check(file: &std::path::Path) -> ExitCode {
    let cfg = match load(file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let started = std::time::Instant::now();
    // the same path as the daemon and `ringsipctl push`: build the snapshot, check it, compile it
    let built = ringsip_modules::snapshot::build(&cfg, 1, ringsip_modules::snapshot::unix_ms_now());
    let build_time = started.elapsed();
    let shared = built.and_then(|bytes| {
        let opened = ringsip_modules::snapshot::open(&bytes)?;
        ringsip_modules::stateless::Shared::from_snapshot(opened, None).map(|s| (bytes.len(), s))
    });
    let (snapshot_bytes, shared) = match shared {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    let built = build_time;
    println!("{}: valid", file.display());
    for l in &cfg.server.listen {
        println!("  listen {}", l.text);
    }
    for s in &cfg.dispatcher.sets {
        println!(
            "  dispatcher set {} ({}, algorithm {}): {} destination{}, probing {:?} every {:?}",
            s.id,
            s.algorithm.name(),
            s.algorithm.number(),
            s.destinations.len(),
            if s.destinations.len() == 1 { "" } else { "s" },
            s.probe.mode,
            s.probe.interval
        );
    }
    for (t, tree) in cfg.mtrees.iter().zip(&shared.program.trees) {
        println!(
            "  mtree {} ({}, alphabet {}): {} prefix{}, {} distinct value{}, {} nodes, {} KiB",
            t.name,
            match t.kind {
                ringsip_config::MtreeKind::Sets => "sets",
                ringsip_config::MtreeKind::Text => "text",
                ringsip_config::MtreeKind::Int => "int",
            },
            t.alphabet,
            tree.len(),
            if tree.len() == 1 { "" } else { "es" },
            tree.distinct_values(),
            if tree.distinct_values() == 1 { "" } else { "s" },
            tree.nodes(),
            tree.memory_bytes().div_ceil(1024)
        );
    }
    for g in &cfg.acls {
        println!("  acl {}: {} entr{}", g.name, g.entries.len(), if g.entries.len() == 1 { "y" } else { "ies" });
    }
    for t in &cfg.htables {
        println!(
            "  htable {}: {}, {}, {} seed entr{}",
            t.name,
            t.max_entries.map_or("grows without bound".to_string(), |n| format!("at most {n} entries")),
            t.autoexpire.map_or("entries never expire".to_string(), |d| format!(
                "entries expire {}s after their last write",
                d.as_secs()
            )),
            t.seeds.len(),
            if t.seeds.len() == 1 { "y" } else { "ies" }
        );
    }
    println!("  transactions: {}", cfg.transactions);
    if let Some(m) = &cfg.media {
        println!("  media: {m}");
    }
    if let Some(p) = &cfg.pike {
        println!("  pike: {p}");
    }
    println!(
        "  snapshot: {} bytes, content hash {}, built in {:.2} ms",
        snapshot_bytes,
        shared.meta.hash_hex(),
        built.as_secs_f64() * 1e3
    );
    println!(
        "  routes: request {} rule{}, reply {}, named {}",
        cfg.routes.request.rules.len(),
        if cfg.routes.request.rules.len() == 1 { "" } else { "s" },
        cfg.routes.reply.as_ref().map_or("none".to_string(), |r| format!("{} rules", r.rules.len())),
        cfg.routes.named.len()
    );
    ExitCode::SUCCESS
}

fn topology(cpus: Option<&[usize]>, shards: Option<usize>) -> ExitCode {
    let topo = match Topology::read() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ringsip: cannot read the CPU topology: {e}");
            return ExitCode::from(1);
        }
    };
    print!("{topo}");
    match topo.place(cpus, shards) {
        Ok(p) => {
            println!("placement ({} shard{}):", p.shards.len(), if p.shards.len() == 1 { "" } else { "s" });
            print!("{p}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringsip: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(file: &std::path::Path, shards: Option<usize>, cpus: Option<Vec<usize>>, control: Option<PathBuf>) -> ExitCode {
    let cfg = match load(file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let filter = std::env::var("RINGSIP_LOG").unwrap_or_else(|_| cfg.server.log.clone());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let topo = match Topology::read() {
        Ok(t) => t,
        Err(e) => {
            error!("cannot read the CPU topology: {e}");
            return ExitCode::from(1);
        }
    };
    let cpus = cpus.or_else(|| cfg.server.cpus.clone());
    let placement = match topo.place(cpus.as_deref(), shards.or(cfg.server.shards)) {
        Ok(p) => p,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(1);
        }
    };
    // the config goes through the same snapshot path as every later push
    let built = std::time::Instant::now();
    let opened = ringsip_modules::snapshot::build(&cfg, 1, ringsip_modules::snapshot::unix_ms_now())
        .and_then(|bytes| ringsip_modules::snapshot::open(&bytes).map(|o| (bytes, o)))
        .and_then(|(bytes, o)| ringsip_modules::stateless::Shared::from_snapshot(o, None).map(|s| (bytes, s)));
    let (snapshot_bytes, shared) = match opened {
        Ok((b, s)) => (b, Arc::new(s)),
        Err(e) => {
            error!("{}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    info!(
        version = shared.meta.version,
        hash = %shared.meta.hash_hex(),
        bytes = snapshot_bytes.len(),
        build_ms = built.elapsed().as_millis() as u64,
        "config snapshot built"
    );
    let registry: ringsip_mgmt::metrics::Registry = Arc::new(Mutex::new(Vec::new()));
    let factory = Arc::new(ringsip_modules::stateless::Factory::new(shared, registry.clone()));
    let published = factory.current.clone();
    let media = match &cfg.media {
        None => None,
        Some(m) => {
            let shard_ports = match ringsip_media::ports::split(m.ports(), placement.shards.len()) {
                Ok(p) => p,
                Err(e) => {
                    error!(ports = %format!("{}-{}", m.port_min, m.port_max), shards = placement.shards.len(), "media ports: {e}");
                    return ExitCode::from(1);
                }
            };
            // every media port is a socket held for the daemon's lifetime
            let want = u64::from(m.port_max - m.port_min) + 1 + 4096;
            match ringsip_runtime::media::raise_nofile(want) {
                Ok(n) if n < want => {
                    error!(
                        have = n,
                        need = want,
                        "too few file descriptors for the media ports: raise the hard limit (ulimit -Hn, LimitNOFILE=) or narrow media.ports"
                    );
                    return ExitCode::from(1);
                }
                Ok(_) => {}
                Err(e) => warn!("cannot raise the open-file limit: {e}"),
            }
            Some(ringsip_runtime::MediaSetup {
                addr: m.address,
                shard_ports,
                control: m.control,
                min_wait: m.batch_wait,
            })
        }
    };
    let rt = RuntimeConfig {
        listen: cfg.server.listen.iter().map(|l| l.addr).collect(),
        placement: placement.clone(),
        rcvbuf: cfg.server.rcvbuf,
        sndbuf: cfg.server.sndbuf,
        batch: cfg.server.batch,
        max_datagram: MAX_DATAGRAM,
        // how late a transaction timer or a message another shard passed on may be handled
        // on an idle shard (a busy one looks at both after every batch)
        tick: Duration::from_millis(10),
        media,
    };
    let stop = Arc::new(AtomicBool::new(false));
    info!(
        config = %file.display(),
        shards = placement.shards.len(),
        cpus = %format_cpu_list(&placement.shards.iter().map(|s| s.cpu).collect::<Vec<_>>()),
        "ringsip starting"
    );
    let running = match ringsip_runtime::start(rt, factory, stop.clone()) {
        Ok(r) => r,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(1);
        }
    };
    for r in &running.ready {
        for (addr, b) in &r.sockets {
            info!(
                shard = r.shard,
                listen = %addr,
                rcvbuf_requested = b.rcv_requested,
                rcvbuf_granted = b.rcv_granted,
                sndbuf_requested = b.snd_requested,
                sndbuf_granted = b.snd_granted,
                "socket bound (SO_REUSEPORT); the kernel reports granted buffers doubled, capped by net.core.{{r,w}}mem_max without CAP_NET_ADMIN"
            );
            if b.rcv_granted < b.rcv_requested {
                warn!(listen = %addr, "receive buffer smaller than requested: raise net.core.rmem_max (see docs/tuning.md)");
            }
        }
    }
    if let Some(m) = cfg.server.metrics {
        let listen: Vec<_> = cfg.server.listen.iter().map(|l| l.addr).collect();
        let n = placement.shards.len() as u64;
        let extra = move || {
            let drops: u64 = listen.iter().filter_map(|a| ringsip_runtime::udp::kernel_drops(*a)).sum();
            vec![
                ("ringsip_shards", "shards running", Kind::Gauge, n),
                (
                    "ringsip_udp_kernel_drops",
                    "datagrams the kernel dropped on the listen sockets (receive buffer full)",
                    Kind::Gauge,
                    drops,
                ),
            ]
        };
        if let Err(e) = ringsip_mgmt::metrics::serve(m, registry.clone(), stop.clone(), extra) {
            error!("metrics endpoint {m}: {e}");
            running.stop();
            let _ = running.join();
            return ExitCode::from(1);
        }
    }
    let views = placement
        .shards
        .iter()
        .zip(&running.stats)
        .map(|(p, io)| ringsip_mgmt::plane::ShardView { shard: p.shard, cpu: p.cpu, node: p.node, io: io.clone() })
        .collect();
    let plane = Arc::new(ringsip_mgmt::plane::Plane::new(
        published,
        snapshot_bytes,
        std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf()).display().to_string(),
        views,
        registry.clone(),
    ));
    if let Ok(mut r) = registry.lock() {
        r.push(plane.clone());
    }
    plane.spawn_sweeper(stop.clone());
    let endpoints = match serve_control(&cfg, control, &plane, &stop) {
        Ok(e) => e,
        Err(msg) => {
            error!("{msg}");
            stop.store(true, Ordering::Release);
            running.stop();
            let _ = running.join();
            return ExitCode::from(1);
        }
    };

    // wait for SIGINT/SIGTERM
    let mut signals =
        match signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM]) {
            Ok(s) => s,
            Err(e) => {
                error!("cannot install signal handlers: {e}");
                running.stop();
                let _ = running.join();
                return ExitCode::from(1);
            }
        };
    if let Some(sig) = signals.forever().next() {
        info!(signal = sig, "stopping");
    }
    stop.store(true, Ordering::Release);
    ringsip_mgmt::listen::wake(endpoints.0.as_deref(), endpoints.1);
    running.stop();
    match running.join() {
        Ok(()) => {
            info!("ringsip stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Start the control listeners: the Unix socket (`--control`, else the config's
/// `control_socket`) and the TCP listener when configured (with its token).
fn serve_control(
    cfg: &Config,
    control: Option<PathBuf>,
    plane: &Arc<ringsip_mgmt::plane::Plane>,
    stop: &Arc<AtomicBool>,
) -> Result<(Option<PathBuf>, Option<std::net::SocketAddr>), String> {
    let unix = control.or_else(|| cfg.server.control_socket.clone());
    if let Some(path) = &unix {
        ringsip_mgmt::listen::serve_unix(path, plane.clone(), stop.clone())
            .map_err(|e| format!("control socket {}: {e}", path.display()))?;
    }
    let mut tcp = None;
    if let (Some(addr), Some(token_file)) = (cfg.server.control_tcp, &cfg.server.control_token_file) {
        let base = cfg.source.parent().unwrap_or(std::path::Path::new("."));
        let path = base.join(token_file);
        let token = std::fs::read_to_string(&path)
            .map_err(|e| format!("control token file {}: {e}", path.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if token.len() < 16 {
            return Err(format!(
                "control token file {}: the token must be at least 16 characters (it guards routing changes)",
                path.display()
            ));
        }
        tcp = Some(
            ringsip_mgmt::listen::serve_tcp(addr, token, plane.clone(), stop.clone())
                .map_err(|e| format!("control TCP listener {addr}: {e}"))?,
        );
    }
    Ok((unix, tcp))
}
