//! `/proc` readers: the router's CPU (all descendants, like `shared/bench/tools/benchlib.py`
//! `snap`), UDP socket drops and the kernel's UDP counters. Parsers take strings so they are
//! tested on fixed text.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::time::Instant;

/// Fields of `/proc/PID/stat` the benchmark uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub ppid: u32,
    pub state: u8,
    /// clock ticks, all threads including exited ones
    pub utime: u64,
    pub stime: u64,
}

/// Parse `/proc/PID/stat`. The command name may contain spaces and parentheses, so fields
/// are counted from the last `)`.
pub(crate) fn parse_stat(s: &str) -> Option<Stat> {
    let rp = s.rfind(')')?;
    let f: Vec<&str> = s.get(rp + 2..)?.split_ascii_whitespace().collect();
    // f[0]=state f[1]=ppid ... f[11]=utime f[12]=stime
    Some(Stat {
        state: *f.first()?.as_bytes().first()?,
        ppid: f.get(1)?.parse().ok()?,
        utime: f.get(11)?.parse().ok()?,
        stime: f.get(12)?.parse().ok()?,
    })
}

/// `/proc/PID/task/TID/schedstat`: (`sum_exec_runtime` ns, timeslices = times scheduled in).
pub(crate) fn parse_schedstat(s: &str) -> Option<(u64, u64)> {
    let mut f = s.split_ascii_whitespace();
    let ns = f.next()?.parse().ok()?;
    let slices = f.nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    Some((ns, slices))
}

/// Sum of (`sum_exec_runtime`, timeslices) over the live threads of `pid`.
pub(crate) fn sched(pid: u32) -> (u64, u64) {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else { return (0, 0) };
    dir.flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| parse_schedstat(&s))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// (CPU ns, timeslices) of the calling thread (`/proc/thread-self/schedstat`).
pub(crate) fn thread_sched() -> (u64, u64) {
    fs::read_to_string("/proc/thread-self/schedstat").ok().and_then(|s| parse_schedstat(&s)).unwrap_or((0, 0))
}

/// utime+stime ticks of every process: a coarse view of what else ran on the machine.
pub(crate) fn all_ticks() -> HashMap<u32, u64> {
    proc_table().into_iter().map(|(p, s)| (p, s.utime + s.stime)).collect()
}

/// CPU seconds used between two [`all_ticks`] by processes not in `exclude` (new processes
/// count fully, processes that exited in between are missed).
pub(crate) fn other_cpu_s(a: &HashMap<u32, u64>, b: &HashMap<u32, u64>, exclude: &[u32], clk_tck: u64) -> f64 {
    let t: u64 = b
        .iter()
        .filter(|(p, _)| !exclude.contains(p))
        .map(|(p, &v)| v.saturating_sub(a.get(p).copied().unwrap_or(0)))
        .sum();
    t as f64 / clk_tck.max(1) as f64
}

/// pid -> stat of every process.
pub(crate) fn proc_table() -> HashMap<u32, Stat> {
    let mut tab = HashMap::new();
    let Ok(dir) = fs::read_dir("/proc") else { return tab };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(st) = fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| parse_stat(&s)) {
            tab.insert(pid, st);
        }
    }
    tab
}

/// `roots` and all their descendants present in `tab`, sorted.
pub(crate) fn descendants(roots: &[u32], tab: &HashMap<u32, Stat>) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, st) in tab {
        children.entry(st.ppid).or_default().push(pid);
    }
    let mut out = Vec::new();
    let mut todo: Vec<u32> = roots.iter().copied().filter(|r| tab.contains_key(r)).collect();
    while let Some(p) = todo.pop() {
        if out.contains(&p) {
            continue;
        }
        out.push(p);
        if let Some(c) = children.get(&p) {
            todo.extend(c);
        }
    }
    out.sort_unstable();
    out
}

/// Is `pid` running (exists and is not a zombie)?
pub(crate) fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat(&s))
        .is_some_and(|st| st.state != b'Z' && st.state != b'X')
}

/// CPU counters of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ProcCpu {
    pub utime: u64,
    pub stime: u64,
    pub sched_ns: u64,
    /// times its threads were scheduled in (~ wake-ups)
    pub slices: u64,
}

/// CPU of a process tree at one instant.
#[derive(Debug, Clone)]
pub(crate) struct TreeSnap {
    pub at: Instant,
    pub procs: BTreeMap<u32, ProcCpu>,
}

impl TreeSnap {
    /// Snapshot `root` and its descendants.
    pub(crate) fn take(root: u32) -> TreeSnap {
        let tab = proc_table();
        let procs = descendants(&[root], &tab)
            .into_iter()
            .map(|p| {
                let (sched_ns, slices) = sched(p);
                (p, ProcCpu { utime: tab[&p].utime, stime: tab[&p].stime, sched_ns, slices })
            })
            .collect();
        TreeSnap { at: Instant::now(), procs }
    }
}

/// CPU spent between two snapshots, in seconds: (user, system, schedstat). As the harness:
/// processes that exited between them are lost, new ones count fully.
pub(crate) fn cpu_delta(a: &TreeSnap, b: &TreeSnap, clk_tck: u64) -> (f64, f64, f64) {
    let (mut u, mut s, mut sc) = (0i128, 0i128, 0i128);
    for (pid, cb) in &b.procs {
        let ca = a.procs.get(pid).copied().unwrap_or_default();
        u += i128::from(cb.utime) - i128::from(ca.utime);
        s += i128::from(cb.stime) - i128::from(ca.stime);
        sc += i128::from(cb.sched_ns) - i128::from(ca.sched_ns);
    }
    let tck = clk_tck.max(1) as f64;
    (u as f64 / tck, s as f64 / tck, sc as f64 / 1e9)
}

/// Times the tree's threads were scheduled in between two snapshots (same accounting rule).
pub(crate) fn slices_delta(a: &TreeSnap, b: &TreeSnap) -> u64 {
    b.procs.iter().map(|(p, cb)| cb.slices.saturating_sub(a.procs.get(p).map_or(0, |c| c.slices))).sum()
}

/// One socket line of `/proc/net/udp`: local port and the `drops` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UdpSock {
    pub local_port: u16,
    pub drops: u64,
}

/// Parse `/proc/net/udp` or `/proc/net/udp6`.
pub(crate) fn parse_net_udp(text: &str) -> Vec<UdpSock> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            Some(UdpSock { local_port: port, drops: f.last()?.parse().ok()? })
        })
        .collect()
}

fn udp_sockets() -> Vec<UdpSock> {
    let mut v = Vec::new();
    for f in ["/proc/net/udp", "/proc/net/udp6"] {
        if let Ok(t) = fs::read_to_string(f) {
            v.extend(parse_net_udp(&t));
        }
    }
    v
}

/// Sum of the drops of every socket bound to one of `ports` (all SO_REUSEPORT shards).
pub(crate) fn sock_drops(ports: &[u16]) -> u64 {
    udp_sockets().iter().filter(|s| ports.contains(&s.local_port)).map(|s| s.drops).sum()
}

/// Is some socket bound to UDP `port`?
pub(crate) fn udp_port_bound(port: u16) -> bool {
    udp_sockets().iter().any(|s| s.local_port == port)
}

/// The `Udp:` counters of `/proc/net/snmp` (InDatagrams, RcvbufErrors, InErrors, ...).
pub(crate) fn parse_snmp_udp(text: &str) -> HashMap<String, u64> {
    let rows: Vec<Vec<&str>> =
        text.lines().filter(|l| l.starts_with("Udp:")).map(|l| l.split_ascii_whitespace().collect()).collect();
    let mut out = HashMap::new();
    if rows.len() >= 2 {
        for (k, v) in rows[0].iter().zip(&rows[1]).skip(1) {
            if let Ok(v) = v.parse() {
                out.insert((*k).to_string(), v);
            }
        }
    }
    out
}

/// UDP counters now.
pub(crate) fn snmp_udp() -> HashMap<String, u64> {
    fs::read_to_string("/proc/net/snmp").map(|t| parse_snmp_udp(&t)).unwrap_or_default()
}

/// Parse a CPU list like `0-2,5` (taskset syntax).
pub(crate) fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("bad CPU list {s:?}");
        if let Some((a, b)) = part.split_once('-') {
            let (a, b): (usize, usize) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
            if a > b {
                return Err(bad());
            }
            out.extend(a..=b);
        } else {
            out.push(part.parse().map_err(|_| bad())?);
        }
    }
    if out.is_empty() {
        return Err(format!("empty CPU list {s:?}"));
    }
    Ok(out)
}

/// `[1, 2, 3, 5]` -> `"1,2,3,5"`.
pub(crate) fn cpu_list_string(cpus: &[usize]) -> String {
    cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (sip floor) (x)) S 4200 4242 4200 0 -1 4194560 1184 0 0 0 137 2461 0 0 20 0 1 0 \
                        36125 5087232 389 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_with_odd_comm() {
        let st = parse_stat(STAT).unwrap();
        assert_eq!(st, Stat { ppid: 4200, state: b'S', utime: 137, stime: 2461 });
        assert!(parse_stat("12 (x) S 1").is_none());
    }

    #[test]
    fn schedstat() {
        assert_eq!(parse_schedstat("2465412345 112233 9876\n"), Some((2_465_412_345, 9876)));
        assert_eq!(parse_schedstat("17"), Some((17, 0)));
        assert_eq!(parse_schedstat(""), None);
    }

    #[test]
    fn tree() {
        let st = |ppid| Stat { ppid, state: b'S', utime: 0, stime: 0 };
        let tab: HashMap<u32, Stat> =
            [(1, st(0)), (10, st(1)), (11, st(10)), (12, st(10)), (13, st(12)), (20, st(1))].into_iter().collect();
        assert_eq!(descendants(&[10], &tab), vec![10, 11, 12, 13]);
        assert_eq!(descendants(&[99], &tab), Vec::<u32>::new());
    }

    #[test]
    fn delta_like_the_harness() {
        let now = Instant::now();
        let p = |u, s, n| ProcCpu { utime: u, stime: s, sched_ns: n, slices: n / 1000 };
        let a = TreeSnap { at: now, procs: [(1, p(100, 50, 1_000_000_000)), (2, p(10, 10, 500_000_000))].into() };
        // pid 2 exited (lost), pid 3 is new (counts fully)
        let b = TreeSnap { at: now, procs: [(1, p(150, 70, 1_700_000_000)), (3, p(5, 5, 100_000_000))].into() };
        let (u, s, sc) = cpu_delta(&a, &b, 100);
        assert!((u - 0.55).abs() < 1e-9, "{u}");
        assert!((s - 0.25).abs() < 1e-9, "{s}");
        assert!((sc - 0.8).abs() < 1e-9, "{sc}");
        assert_eq!(slices_delta(&a, &b), 700_000 + 100_000);
        let t0: HashMap<u32, u64> = [(1, 10), (2, 10), (5, 100)].into();
        let t1: HashMap<u32, u64> = [(1, 60), (2, 30), (5, 400), (6, 50)].into();
        assert!((other_cpu_s(&t0, &t1, &[5], 100) - 1.2).abs() < 1e-12);
    }

    #[test]
    fn net_udp() {
        let t = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  120: 0100007F:13C4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81234 2 0000000000000000 17\n\
  121: 0100007F:13C4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81235 2 0000000000000000 3\n\
  140: 0100007F:13D8 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 81236 2 0000000000000000 0\n";
        let v = parse_net_udp(t);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0], UdpSock { local_port: 5060, drops: 17 });
        assert_eq!(v[2].local_port, 5080);
        let sum: u64 = v.iter().filter(|s| s.local_port == 5060).map(|s| s.drops).sum();
        assert_eq!(sum, 20);
    }

    #[test]
    fn snmp() {
        let t = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                 Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n\
                 Udp: 1152000 3 1655 1152010 1655 0 0 0 0\n\
                 UdpLite: InDatagrams NoPorts\nUdpLite: 0 0\n";
        let m = parse_snmp_udp(t);
        assert_eq!(m["InDatagrams"], 1_152_000);
        assert_eq!(m["RcvbufErrors"], 1655);
        assert_eq!(m["InErrors"], 1655);
        assert!(!m.contains_key("Udp:"));
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("1").unwrap(), vec![1]);
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert_eq!(cpu_list_string(&[1, 3]), "1,3");
    }
}
