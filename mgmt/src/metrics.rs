//! The Prometheus endpoint: a plain HTTP/1.0 responder on its own thread, off the shards.
//! Every scrape walks the registered [`Metrics`] of all shards and sums equal series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringsip_runtime::{Kind, Metric, Metrics};
use tracing::{debug, info, warn};

/// Everything that exports metrics.
pub type Registry = Arc<Mutex<Vec<Arc<dyn Metrics>>>>;

struct Series {
    help: String,
    kind: Kind,
    values: BTreeMap<String, u64>,
}

/// Render the registry in the Prometheus text format (version 0.0.4), summing series with
/// the same name and labels across shards (gauges included: each is exported by one shard).
pub fn render(registry: &Registry, extra: &[(&str, &str, Kind, u64)]) -> String {
    let mut series: BTreeMap<String, Series> = BTreeMap::new();
    let mut add = |m: &Metric<'_>| {
        let s = series.entry(m.name.to_string()).or_insert_with(|| Series {
            help: m.help.to_string(),
            kind: m.kind,
            values: BTreeMap::new(),
        });
        let mut labels = String::new();
        if !m.labels.is_empty() {
            labels.push('{');
            for (i, (k, v)) in m.labels.iter().enumerate() {
                if i > 0 {
                    labels.push(',');
                }
                let _ = write!(labels, "{k}=\"{}\"", escape(v));
            }
            labels.push('}');
        }
        *s.values.entry(labels).or_insert(0) += m.value;
    };
    if let Ok(r) = registry.lock() {
        for m in r.iter() {
            m.visit(&mut add);
        }
    }
    for (name, help, kind, value) in extra {
        add(&Metric { name, help, kind: *kind, labels: &[], value: *value });
    }
    let mut out = String::new();
    for (name, s) in &series {
        let _ = writeln!(out, "# HELP {name} {}", s.help);
        let _ = writeln!(out, "# TYPE {name} {}", if s.kind == Kind::Counter { "counter" } else { "gauge" });
        for (labels, v) in &s.values {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    }
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Serve `GET /metrics` on `addr` until `stop` is set. `extra` adds process-level values at
/// each scrape. Returns the bound address (port 0 resolved).
pub fn serve(
    addr: SocketAddr,
    registry: Registry,
    stop: Arc<AtomicBool>,
    extra: impl Fn() -> Vec<(&'static str, &'static str, Kind, u64)> + Send + 'static,
) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    std::thread::Builder::new().name("ringsip-metrics".into()).spawn(move || {
        info!(%local, "Prometheus metrics on http://{local}/metrics");
        // rendering a scrape is management work: the shards go first
        if let Err(e) = ringsip_runtime::priority::lower_current_thread() {
            debug!(error = %e, "cannot lower the metrics thread's priority");
        }
        while !stop.load(Ordering::Acquire) {
            match listener.accept() {
                Ok((stream, peer)) => {
                    if let Err(e) = answer(stream, &registry, &extra) {
                        debug!(%peer, error = %e, "metrics request failed");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => {
                    warn!(error = %e, "metrics listener error");
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    })?;
    Ok(local)
}

fn answer(
    mut stream: TcpStream,
    registry: &Registry,
    extra: &impl Fn() -> Vec<(&'static str, &'static str, Kind, u64)>,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut req = [0u8; 2048];
    let mut n = 0;
    while n < req.len() {
        let r = stream.read(&mut req[n..])?;
        if r == 0 {
            break;
        }
        n += r;
        if req[..n].windows(4).any(|w| w == b"\r\n\r\n") || req[..n].windows(2).any(|w| w == b"\n\n") {
            break;
        }
    }
    let line = req[..n].split(|&b| b == b'\n').next().unwrap_or(b"");
    let (status, body) = if line.starts_with(b"GET /metrics") {
        ("200 OK", render(registry, &extra()))
    } else if line.starts_with(b"GET ") {
        ("404 Not Found", "try /metrics\n".to_string())
    } else {
        ("405 Method Not Allowed", "GET only\n".to_string())
    };
    write!(
        stream,
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringsip_runtime::ShardStats;

    #[test]
    fn sums_shards_and_serves_http() {
        let a = Arc::new(ShardStats::default());
        let b = Arc::new(ShardStats::default());
        a.rx_datagrams.add(3);
        b.rx_datagrams.add(4);
        let registry: Registry = Arc::new(Mutex::new(vec![a.clone() as Arc<dyn Metrics>, b as Arc<dyn Metrics>]));
        let text = render(&registry, &[("ringsip_shards", "shards running", Kind::Gauge, 2)]);
        assert!(text.contains("ringsip_udp_rx_datagrams_total 7\n"), "{text}");
        assert!(text.contains("# TYPE ringsip_shards gauge\nringsip_shards 2\n"), "{text}");
        assert_eq!(text.matches("# TYPE ringsip_udp_rx_datagrams_total counter").count(), 1);

        let stop = Arc::new(AtomicBool::new(false));
        let addr = serve("127.0.0.1:0".parse().unwrap(), registry, stop.clone(), Vec::new).unwrap();
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.0 200 OK\r\n"), "{resp}");
        assert!(resp.contains("ringsip_udp_rx_datagrams_total 7"));
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.0 404"));
        stop.store(true, Ordering::Release);
    }

    #[test]
    fn labels_are_escaped() {
        struct L;
        impl Metrics for L {
            fn visit(&self, sink: &mut dyn FnMut(&Metric<'_>)) {
                sink(&Metric { name: "x", help: "h", kind: Kind::Counter, labels: &[("d", "a\"b\\c")], value: 1 });
            }
        }
        let registry: Registry = Arc::new(Mutex::new(vec![Arc::new(L) as Arc<dyn Metrics>]));
        assert!(render(&registry, &[]).contains("x{d=\"a\\\"b\\\\c\"} 1"));
    }
}
