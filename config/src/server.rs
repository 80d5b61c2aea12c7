//! `[server]`.

use std::collections::HashMap;
use std::path::PathBuf;

use toml::de::DeValue;

use crate::error::Diag;
use crate::values;
use crate::walk::{self, Table, Val};
use crate::{DEFAULT_BATCH, DEFAULT_LOG, DEFAULT_RCVBUF, DEFAULT_SNDBUF, DEFAULT_STICKY_ENTRIES};
use crate::{MAX_BATCH, MAX_STICKY_ENTRIES, Server};

const KEYS: &[&str] = &[
    "listen",
    "advertise",
    "shards",
    "cpus",
    "control_socket",
    "control_tcp",
    "control_token_file",
    "metrics",
    "log",
    "rcvbuf",
    "sndbuf",
    "batch",
    "sticky_entries",
];

pub(crate) fn parse(d: &mut Diag<'_>, t: &Table<'_, '_>) -> Option<Server> {
    t.check_keys(d, KEYS);
    let mut ok = true;

    let mut listen = Vec::new();
    match t.get("listen") {
        None => {
            d.span(&t.span, "[server] needs `listen`, for example listen = [\"udp:0.0.0.0:5060\"]");
            ok = false;
        }
        Some(v) => {
            let items: Vec<&Val<'_>> = match v.get_ref() {
                DeValue::String(_) => vec![v],
                DeValue::Array(a) => a.iter().collect(),
                _ => {
                    walk::array(d, v, "server.listen");
                    ok = false;
                    Vec::new()
                }
            };
            if items.is_empty() && ok {
                d.span(&v.span(), "server.listen is empty: give at least one address like \"udp:0.0.0.0:5060\"");
                ok = false;
            }
            let mut seen = HashMap::new();
            for item in items {
                let Some(s) = walk::string(d, item, "each server.listen entry") else {
                    ok = false;
                    continue;
                };
                match values::listen(s) {
                    Ok(l) => {
                        let (line, _) = d.src.line_col(item.span().start);
                        if let Some(first) = seen.insert(l.addr, line) {
                            d.span(
                                &item.span(),
                                format!("duplicate listen address {} (already at line {first})", l.addr),
                            );
                            ok = false;
                        } else {
                            listen.push(l);
                        }
                    }
                    Err(e) => {
                        d.span(&item.span(), e);
                        ok = false;
                    }
                }
            }
        }
    }

    let advertise = t.get("advertise").and_then(|v| {
        let s = walk::string(d, v, "server.advertise")?;
        match values::advertise(s) {
            Ok(()) => Some(s.to_string()),
            Err(e) => {
                d.span(&v.span(), e);
                None
            }
        }
    });
    ok &= t.get("advertise").is_none() || advertise.is_some();

    let shards = opt(&mut ok, t.get("shards"), |v| walk::int_in(d, v, "server.shards", 1, 4096).map(|n| n as usize));

    let cpus = opt(&mut ok, t.get("cpus"), |v| cpus(d, v));

    let control_socket = opt(&mut ok, t.get("control_socket"), |v| {
        let s = walk::string(d, v, "server.control_socket")?;
        if s.is_empty() {
            d.span(
                &v.span(),
                "server.control_socket is empty: give a path, or leave the key out for no control socket",
            );
            return None;
        }
        Some(PathBuf::from(s))
    });

    let control_tcp = opt(&mut ok, t.get("control_tcp"), |v| {
        let s = walk::string(d, v, "server.control_tcp")?;
        values::socket_addr(s, "control_tcp").map_err(|e| d.span(&v.span(), e)).ok()
    });
    let control_token_file = opt(&mut ok, t.get("control_token_file"), |v| {
        let s = walk::string(d, v, "server.control_token_file")?;
        if s.is_empty() {
            d.span(&v.span(), "server.control_token_file is empty: give the path of a file holding the token");
            return None;
        }
        Some(PathBuf::from(s))
    });
    if let (Some(_), None) = (&control_tcp, &control_token_file) {
        if let Some(v) = t.get("control_tcp") {
            d.span(
                &v.span(),
                "server.control_tcp needs server.control_token_file: the TCP control listener only serves requests that carry the token",
            );
            ok = false;
        }
    }
    if let (None, Some(_)) = (&control_tcp, &control_token_file) {
        if let Some(v) = t.get("control_token_file") {
            d.span(
                &v.span(),
                "server.control_token_file without server.control_tcp: the token is only for the TCP control listener",
            );
            ok = false;
        }
    }

    let metrics = opt(&mut ok, t.get("metrics"), |v| {
        let s = walk::string(d, v, "server.metrics")?;
        values::socket_addr(s, "metrics").map_err(|e| d.span(&v.span(), e)).ok()
    });

    let log = opt(&mut ok, t.get("log"), |v| {
        let s = walk::string(d, v, "server.log")?;
        if s.trim().is_empty() {
            d.span(&v.span(), "server.log is empty: give a filter like \"info\" or \"warn,ringsip=debug\"");
            return None;
        }
        Some(s.to_string())
    })
    .unwrap_or_else(|| DEFAULT_LOG.to_string());

    let rcvbuf = opt(&mut ok, t.get("rcvbuf"), |v| buffer(d, v, "server.rcvbuf")).unwrap_or(DEFAULT_RCVBUF);
    let sndbuf = opt(&mut ok, t.get("sndbuf"), |v| buffer(d, v, "server.sndbuf")).unwrap_or(DEFAULT_SNDBUF);
    let batch = opt(&mut ok, t.get("batch"), |v| walk::int_in(d, v, "server.batch", 1, MAX_BATCH as i64))
        .map_or(DEFAULT_BATCH, |n| n as usize);

    let sticky_entries = opt(&mut ok, t.get("sticky_entries"), |v| {
        let n = walk::int_in(d, v, "server.sticky_entries", 1, MAX_STICKY_ENTRIES as i64)? as usize;
        if !n.is_power_of_two() {
            let up = n.next_power_of_two();
            d.span(&v.span(), format!("server.sticky_entries = {n} must be a power of two (try {up}, or {})", up / 2));
            return None;
        }
        Some(n)
    })
    .unwrap_or(DEFAULT_STICKY_ENTRIES);

    ok.then_some(Server {
        listen,
        advertise,
        shards,
        cpus,
        control_socket,
        control_tcp,
        control_token_file,
        metrics,
        log,
        rcvbuf,
        sndbuf,
        batch,
        sticky_entries,
    })
}

/// Read an optional key; a present key that fails clears `ok`.
fn opt<'v, T>(ok: &mut bool, v: Option<&'v Val<'v>>, f: impl FnOnce(&'v Val<'v>) -> Option<T>) -> Option<T> {
    let v = v?;
    let r = f(v);
    *ok &= r.is_some();
    r
}

fn cpus(d: &mut Diag<'_>, v: &Val<'_>) -> Option<Vec<usize>> {
    let list = match v.get_ref() {
        DeValue::String(s) => match values::cpu_list(s) {
            Ok(l) => l,
            Err(e) => {
                d.span(&v.span(), e);
                return None;
            }
        },
        DeValue::Array(a) => {
            let mut out = Vec::new();
            let mut good = true;
            for item in a.iter() {
                match walk::int_in(d, item, "each server.cpus entry", 0, 65535) {
                    Some(n) => out.push(n as usize),
                    None => good = false,
                }
            }
            if !good {
                return None;
            }
            out
        }
        other => {
            d.span(
                &v.span(),
                format!(
                    "server.cpus must be a CPU list like \"0-3,6\" or an array like [0, 1, 2], not {}",
                    walk::describe(other)
                ),
            );
            return None;
        }
    };
    if list.is_empty() {
        d.span(&v.span(), "server.cpus is empty: leave the key out to let ringsip choose");
        return None;
    }
    let mut sorted = list.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        d.span(&v.span(), format!("server.cpus lists CPU {} twice", w[0]));
        return None;
    }
    Some(list)
}

fn buffer(d: &mut Diag<'_>, v: &Val<'_>, what: &str) -> Option<usize> {
    let n = match v.get_ref() {
        DeValue::String(s) => match values::size(s) {
            Ok(n) => n,
            Err(e) => {
                d.span(&v.span(), format!("{what}: {e}"));
                return None;
            }
        },
        DeValue::Integer(_) => {
            let i = walk::integer(d, v, what)?;
            if i < 1 {
                d.span(&v.span(), format!("{what} = {i} is out of range (1 byte to 2 GiB - 1)"));
                return None;
            }
            i as u64
        }
        other => {
            d.span(
                &v.span(),
                format!("{what} must be a number of bytes or a size like \"8MiB\", not {}", walk::describe(other)),
            );
            return None;
        }
    };
    if n == 0 || n > i32::MAX as u64 {
        d.span(&v.span(), format!("{what} = {n} bytes is out of range (1 byte to 2 GiB - 1)"));
        return None;
    }
    Some(n as usize)
}
