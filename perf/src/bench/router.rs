//! The routers under test: ringsip, any command (`--router-cmd`, e.g. sip-floor), Kamailio,
//! or an already running process (`--attach`). Started pinned, in the foreground, with the
//! harness's `ROUTER_*` environment; stopped with SIGTERM.

use std::fs::{self, File};
use std::io;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::procfs::{self, cpu_list_string};
use super::sys;

/// How to run one router.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// `ringsip --config FILE --shards N --cpus LIST`
    Ringsip { bin: PathBuf, config: PathBuf },
    /// `sh -c "exec CMD"`
    Command { cmd: String },
    /// `kamailio -f CFG -DD -E -n N -m SHM_MB -M PKG_MB ...`
    Kamailio {
        bin: PathBuf,
        cfg: PathBuf,
        ds_list: PathBuf,
        run_dir: PathBuf,
        /// shared memory (`-m`) and private memory per process (`-M`), MB
        shm_mb: u64,
        pkg_mb: u64,
        extra: Vec<String>,
    },
    /// measure a running process
    Attach { pid: u32 },
}

/// A router of the comparison.
#[derive(Clone, Debug)]
pub(crate) struct RouterSpec {
    pub name: String,
    pub kind: Kind,
}

/// What every router gets (the harness's environment).
#[derive(Clone, Debug)]
pub(crate) struct RouterEnv {
    /// `$ROUTER_MODE`: `stateless` or `stateful` (the harness's MODE; sip-floor only prints it)
    pub mode: &'static str,
    pub listen: SocketAddrV4,
    pub backends: Vec<SocketAddrV4>,
    pub outdir: PathBuf,
    /// CPUs the generator runs on: the orchestrator thread returns to them after a spawn
    pub gen_cpus: Vec<usize>,
}

/// A started (or attached) router.
pub(crate) struct RouterProc {
    pub name: String,
    pub pid: u32,
    child: Option<Child>,
    pub log: Option<PathBuf>,
    exit: Option<ExitStatus>,
}

impl RouterProc {
    /// Start `spec` with `shards` shards/workers pinned to `cpus`.
    pub(crate) fn spawn(
        spec: &RouterSpec,
        shards: usize,
        cpus: &[usize],
        env: &RouterEnv,
    ) -> Result<RouterProc, String> {
        if let Kind::Attach { pid } = spec.kind {
            if !procfs::alive(pid) {
                return Err(format!("--attach {pid}: no such running process"));
            }
            return Ok(RouterProc { name: spec.name.clone(), pid, child: None, log: None, exit: None });
        }
        if procfs::udp_port_bound(env.listen.port()) {
            return Err(format!(
                "UDP port {} is already in use: is another router or benchmark running? (use --attach PID to measure it)",
                env.listen.port()
            ));
        }
        let cpu_list = cpu_list_string(cpus);
        let mut cmd = match &spec.kind {
            Kind::Ringsip { bin, config } => {
                let mut c = Command::new(bin);
                c.arg("--config").arg(config).arg("--shards").arg(shards.to_string()).arg("--cpus").arg(&cpu_list);
                c
            }
            Kind::Command { cmd } => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(format!("exec {cmd}"));
                c
            }
            Kind::Kamailio { bin, cfg, ds_list, run_dir, shm_mb, pkg_mb, extra } => {
                fs::create_dir_all(run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
                let mut c = Command::new(bin);
                c.arg("-f").arg(cfg).args(["-DD", "-E", "-n", &cpus.len().to_string()]);
                c.arg("-m").arg(shm_mb.to_string()).arg("-M").arg(pkg_mb.to_string());
                c.arg("-Y").arg(run_dir).arg("-w").arg(run_dir);
                c.arg("-A").arg(format!("DS_LIST=\"{}\"", ds_list.display()));
                c.args(["-A", "DS_ALG=4", "-A", &format!("LISTEN=udp:{}", env.listen)]);
                c.args(extra);
                c
            }
            Kind::Attach { .. } => unreachable!(),
        };
        let backends = env.backends.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",");
        cmd.env("ROUTER_MODE", env.mode)
            .env("ROUTER_LISTEN", env.listen.to_string())
            .env("ROUTER_BACKENDS", backends)
            .env("ROUTER_WORKERS", shards.to_string())
            .env("BENCH_OUTDIR", &env.outdir);
        let stem = format!("router-{}", spec.name.replace(['/', ' '], "_"));
        let _ = fs::write(env.outdir.join(format!("{stem}.cmd")), format!("{cmd:?}\n"));
        let log = env.outdir.join(format!("{stem}.log"));
        let f = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let f2 = f.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(f).stderr(f2);

        // the child inherits the spawning thread's CPU mask (like `taskset -c LIST cmd`)
        if let Err(e) = sys::set_thread_affinity(cpus) {
            eprintln!("ringsip-bench: warning: cannot pin the router to CPUs {cpu_list}: {e}");
        }
        let spawned = cmd.spawn();
        if let Err(e) = sys::set_thread_affinity(&env.gen_cpus) {
            eprintln!("ringsip-bench: warning: cannot pin to CPUs {:?}: {e}", env.gen_cpus);
        }
        let child = spawned.map_err(|e| format!("cannot start {}: {e} ({:?})", spec.name, cmd))?;
        Ok(RouterProc { name: spec.name.clone(), pid: child.id(), child: Some(child), log: Some(log), exit: None })
    }

    /// Still running?
    pub(crate) fn alive(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match &mut self.child {
            Some(c) => match c.try_wait() {
                Ok(Some(st)) => {
                    self.exit = Some(st);
                    false
                }
                Ok(None) => true,
                Err(_) => procfs::alive(self.pid),
            },
            None => procfs::alive(self.pid),
        }
    }

    /// How it ended, if it did.
    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        self.exit
    }

    /// SIGTERM, wait up to 8 s, then SIGKILL it and its descendants. Attached processes are
    /// left alone.
    pub(crate) fn stop(&mut self) {
        if self.child.is_none() || !self.alive() {
            return;
        }
        let tree = procfs::descendants(&[self.pid], &procfs::proc_table());
        let _ = sys::kill(self.pid, sys::SIGTERM);
        let end = Instant::now() + Duration::from_secs(8);
        while Instant::now() < end {
            if !self.alive() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.alive() {
            eprintln!("ringsip-bench: {} ignored SIGTERM for 8 s: killing it", self.name);
        }
        for p in tree.iter().rev() {
            if procfs::alive(*p) {
                let _ = sys::kill(*p, sys::SIGKILL);
            }
        }
        if let Some(c) = &mut self.child {
            if self.exit.is_none() {
                self.exit = c.wait().ok();
            }
        }
        // children of a killed parent may linger a moment
        for p in tree {
            let end = Instant::now() + Duration::from_secs(2);
            while procfs::alive(p) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// The last `n` lines of its log.
    pub(crate) fn log_tail(&self, n: usize) -> String {
        let Some(p) = &self.log else { return String::new() };
        let t = fs::read_to_string(p).unwrap_or_default();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for RouterProc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `bin` in $PATH (or the sbin directories), or `bin` itself when it is a path.
pub(crate) fn which(bin: &str) -> Option<PathBuf> {
    if bin.contains('/') {
        let p = PathBuf::from(bin);
        return p.is_file().then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}

/// Run a command to completion with its output on our stderr.
pub(crate) fn run_visible(cmd: &mut Command) -> io::Result<ExitStatus> {
    cmd.stdin(Stdio::null()).stdout(Stdio::from(io::stderr().as_fd_clone()?)).status()
}

trait StderrClone {
    fn as_fd_clone(&self) -> io::Result<std::os::fd::OwnedFd>;
}

impl StderrClone for io::Stderr {
    fn as_fd_clone(&self) -> io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        self.as_fd().try_clone_to_owned()
    }
}
