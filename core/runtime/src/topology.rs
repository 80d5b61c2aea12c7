//! CPU and NUMA topology from `/sys`, and the shard placement built on it.
//!
//! Shards are placed one per CPU, never more shards than CPUs. CPUs are taken node by node
//! (all CPUs of NUMA node 0 in the order given, then node 1, …), so consecutive shards share a
//! node and a shard's memory, allocated on its own pinned thread, is node-local (first touch).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Parse a Linux CPU list (`"0-3,6,8-9"`). Errors name the bad part.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.trim().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let a: usize = a.parse().map_err(|_| format!("bad CPU number {a:?} in {part:?}"))?;
        let b: usize = b.parse().map_err(|_| format!("bad CPU number {b:?} in {part:?}"))?;
        if b < a {
            return Err(format!("CPU range {part:?} runs backwards"));
        }
        if b - a > 4096 {
            return Err(format!("CPU range {part:?} is implausibly large"));
        }
        for c in a..=b {
            if out.contains(&c) {
                return Err(format!("CPU {c} is listed twice"));
            }
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err("empty CPU list".into());
    }
    Ok(out)
}

/// Render a CPU list compactly (`[0,1,2,5]` → `"0-2,5"`).
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { sorted[i].to_string() } else { format!("{}-{}", sorted[i], sorted[j]) });
        i = j + 1;
    }
    parts.join(",")
}

/// The machine as `/sys` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Online CPUs.
    pub online: Vec<usize>,
    /// NUMA node → its CPUs (a single node 0 holding every CPU when `/sys` has no nodes).
    pub nodes: BTreeMap<usize, Vec<usize>>,
}

impl Topology {
    /// Read `/sys/devices/system/{cpu,node}`.
    pub fn read() -> Result<Topology, String> {
        Self::read_from(Path::new("/sys/devices/system"))
    }

    /// Read from another root (tests).
    pub fn read_from(root: &Path) -> Result<Topology, String> {
        let online_path = root.join("cpu/online");
        let online = std::fs::read_to_string(&online_path)
            .map_err(|e| format!("{}: {e}", online_path.display()))
            .and_then(|s| parse_cpu_list(&s))?;
        let mut nodes = BTreeMap::new();
        if let Ok(dir) = std::fs::read_dir(root.join("node")) {
            for entry in dir.flatten() {
                let name = entry.file_name();
                let Some(id) = name.to_str().and_then(|n| n.strip_prefix("node")).and_then(|n| n.parse().ok()) else {
                    continue;
                };
                let list = std::fs::read_to_string(entry.path().join("cpulist")).unwrap_or_default();
                // a memory-only node has an empty cpulist
                if let Ok(cpus) = parse_cpu_list(&list) {
                    let cpus: Vec<usize> = cpus.into_iter().filter(|c| online.contains(c)).collect();
                    if !cpus.is_empty() {
                        nodes.insert(id, cpus);
                    }
                }
            }
        }
        if nodes.is_empty() {
            nodes.insert(0, online.clone());
        }
        Ok(Topology { online, nodes })
    }

    /// The NUMA node of `cpu`.
    pub fn node_of(&self, cpu: usize) -> Option<usize> {
        self.nodes.iter().find(|(_, cpus)| cpus.contains(&cpu)).map(|(n, _)| *n)
    }

    /// Place `shards` shards (default: one per CPU) on `cpus` (default: every online CPU).
    pub fn place(&self, cpus: Option<&[usize]>, shards: Option<usize>) -> Result<Placement, String> {
        let wanted: Vec<usize> = match cpus {
            Some(list) => {
                for c in list {
                    if !self.online.contains(c) {
                        return Err(format!("CPU {c} is not online (online: {})", format_cpu_list(&self.online)));
                    }
                }
                list.to_vec()
            }
            None => self.online.clone(),
        };
        // node by node, keeping the given order inside a node
        let mut ordered = Vec::with_capacity(wanted.len());
        for node_cpus in self.nodes.values() {
            ordered.extend(wanted.iter().copied().filter(|c| node_cpus.contains(c)));
        }
        let rest: Vec<usize> = wanted.iter().copied().filter(|c| !ordered.contains(c)).collect();
        ordered.extend(rest);
        let n = shards.unwrap_or(ordered.len());
        if n == 0 {
            return Err("at least one shard is needed".into());
        }
        if n > ordered.len() {
            return Err(format!(
                "{n} shards need {n} CPUs but only {} are given ({}); ringsip runs one shard per core",
                ordered.len(),
                format_cpu_list(&ordered)
            ));
        }
        let shards = ordered[..n]
            .iter()
            .enumerate()
            .map(|(i, &cpu)| ShardPlace { shard: i, cpu, node: self.node_of(cpu).unwrap_or(0) })
            .collect();
        Ok(Placement { shards })
    }
}

/// Where one shard runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardPlace {
    /// Shard index.
    pub shard: usize,
    /// The CPU it is pinned to.
    pub cpu: usize,
    /// That CPU's NUMA node.
    pub node: usize,
}

/// The placement of every shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// One entry per shard, in shard order.
    pub shards: Vec<ShardPlace>,
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "online CPUs: {}", format_cpu_list(&self.online))?;
        for (node, cpus) in &self.nodes {
            writeln!(f, "NUMA node {node}: CPUs {}", format_cpu_list(cpus))?;
        }
        Ok(())
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.shards {
            writeln!(f, "shard {} -> CPU {} (NUMA node {})", s.shard, s.cpu, s.node)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,6, 8-9\n"), Ok(vec![0, 1, 2, 3, 6, 8, 9]));
        assert_eq!(parse_cpu_list("1"), Ok(vec![1]));
        assert!(parse_cpu_list("3-1").unwrap_err().contains("backwards"));
        assert!(parse_cpu_list("1,1").unwrap_err().contains("twice"));
        assert!(parse_cpu_list("x").unwrap_err().contains("bad CPU"));
        assert!(parse_cpu_list("").is_err());
        assert_eq!(format_cpu_list(&[5, 0, 1, 2]), "0-2,5");
    }

    fn fake_sys(online: &str, nodes: &[(usize, &str)]) -> tempdir::Dir {
        let d = tempdir::Dir::new();
        std::fs::create_dir_all(d.path().join("cpu")).unwrap();
        std::fs::write(d.path().join("cpu/online"), online).unwrap();
        for (n, list) in nodes {
            let p = d.path().join(format!("node/node{n}"));
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("cpulist"), list).unwrap();
        }
        d
    }

    #[test]
    fn placement_is_node_by_node() {
        let d = fake_sys("0-7\n", &[(0, "0-3\n"), (1, "4-7\n"), (2, "\n")]);
        let t = Topology::read_from(d.path()).unwrap();
        assert_eq!(t.nodes.len(), 2, "memory-only node 2 is ignored");
        // CPUs given across nodes in mixed order: node 0's first, in the order given
        let p = t.place(Some(&[5, 1, 4, 0]), None).unwrap();
        let cpus: Vec<_> = p.shards.iter().map(|s| (s.cpu, s.node)).collect();
        assert_eq!(cpus, [(1, 0), (0, 0), (5, 1), (4, 1)]);
        let p = t.place(None, Some(3)).unwrap();
        assert_eq!(p.shards.iter().map(|s| s.cpu).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(t.place(Some(&[1]), Some(2)).unwrap_err().contains("one shard per core"));
        assert!(t.place(Some(&[9]), None).unwrap_err().contains("not online"));
        assert!(t.place(None, Some(0)).is_err());
    }

    #[test]
    fn no_numa_nodes_means_one_node() {
        let d = fake_sys("0-1\n", &[]);
        let t = Topology::read_from(d.path()).unwrap();
        assert_eq!(t.nodes[&0], vec![0, 1]);
        assert_eq!(t.place(None, None).unwrap().shards.len(), 2);
    }

    #[test]
    fn this_machine() {
        let t = Topology::read().unwrap();
        assert!(!t.online.is_empty());
        assert!(t.place(None, None).is_ok());
    }

    /// A throwaway directory (no tempfile dependency for one test helper).
    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "ringsip-topo-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
