//! `[media]`: the built-in RTP relay (see [`Media`]). `address` and `ports` are required; the
//! other keys have defaults. The cross-checks against `[server]` (ports and addresses the SIP
//! side and the management endpoints already use) are done here, with the server as parsed.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::Duration;

use toml::de::DeValue;

use crate::error::Diag;
use crate::values::{self, show_duration};
use crate::walk::{self, Table, Val};
use crate::{DEFAULT_MEDIA_TIMEOUT, MAX_MEDIA_BATCH_WAIT, Media, Server};

const KEYS: &[&str] =
    &["address", "advertise", "ports", "control", "timeout", "latching", "strict_source", "batch_wait"];

/// `timeout`: 1 s to 24 h.
const TIMEOUT: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(24 * 3600));
/// The lowest first port: ports below are for system services (and need privileges).
const MIN_PORT: u32 = 1024;

pub(crate) fn parse(d: &mut Diag<'_>, t: &Table<'_, '_>, server: Option<&Server>) -> Option<Media> {
    t.check_keys(d, KEYS);
    let mut ok = true;

    let address = match t.get("address") {
        None => {
            d.span(&t.span, "[media] needs `address`: the IP the media ports bind on, like address = \"192.0.2.10\"");
            ok = false;
            None
        }
        Some(v) => ip(d, v, "address", "give the IP the media ports bind on, like \"192.0.2.10\""),
    };
    ok &= address.is_some();

    let advertise = t.get("advertise").and_then(|v| {
        let a = ip(d, v, "advertise", "give the IP phones send media to, like \"203.0.113.5\"")?;
        if let Some(addr) = address
            && addr.is_ipv4() != a.is_ipv4()
        {
            d.span(
                &v.span(),
                format!(
                    "media.advertise {a} is {} but media.address {addr} is {}: phones would send media to an address family the relay does not receive on",
                    family(a),
                    family(addr)
                ),
            );
            return None;
        }
        Some(a)
    });
    ok &= t.get("advertise").is_none() || advertise.is_some();

    let ports = match t.get("ports") {
        None => {
            d.span(&t.span, "[media] needs `ports`: the relay's port range, like ports = \"30000-39999\"");
            ok = false;
            None
        }
        Some(v) => ports(d, v),
    };
    ok &= ports.is_some();

    let control = t.get("control").and_then(|v| {
        let s = walk::string(d, v, "media.control")?;
        values::socket_addr(s, "media.control").map_err(|e| d.span(&v.span(), e)).ok()
    });
    ok &= t.get("control").is_none() || control.is_some();

    let timeout = match duration(d, t, "timeout", values::duration, "\"60s\"", &mut ok) {
        None => Some(DEFAULT_MEDIA_TIMEOUT),
        Some((x, span, text)) if x < TIMEOUT.0 || x > TIMEOUT.1 => {
            d.span(
                &span,
                format!(
                    "media.timeout \"{text}\" is out of range ({} to {})",
                    show_duration(TIMEOUT.0),
                    show_duration(TIMEOUT.1)
                ),
            );
            None
        }
        Some((x, ..)) => Some(x),
    };
    ok &= timeout.is_some();

    let batch_wait = match duration(d, t, "batch_wait", values::fine_duration, "\"0us\" or \"100us\"", &mut ok) {
        None => Some(Duration::ZERO),
        Some((x, span, text)) if x > MAX_MEDIA_BATCH_WAIT => {
            d.span(
                &span,
                format!(
                    "media.batch_wait \"{text}\" is out of range (0us to {}): a shard's wait lingers at most that long for more packets",
                    show_duration(MAX_MEDIA_BATCH_WAIT)
                ),
            );
            None
        }
        Some((x, ..)) => Some(x),
    };
    ok &= batch_wait.is_some();

    let mut flag = |key: &str| -> bool {
        match t.get(key) {
            None => true,
            Some(v) => walk::boolean(d, v, &format!("media.{key}")).unwrap_or_else(|| {
                ok = false;
                true
            }),
        }
    };
    let latching = flag("latching");
    let strict_source = flag("strict_source");

    // Cross-checks with [server]: only between values that were read.
    if let (Some(server), Some(c), Some(v)) = (server, control, t.get("control")) {
        for l in &server.listen {
            if overlap(c.ip(), l.addr.ip()) && c.port() == l.addr.port() {
                d.span(
                    &v.span(),
                    format!(
                        "media.control {c} clashes with server.listen \"{}\" (the same UDP port on the same address): the ng control port needs a port of its own",
                        l.text
                    ),
                );
                ok = false;
            }
        }
    }
    if let (Some(server), Some(address)) = (server, address) {
        if let (Some((lo, hi)), Some(v)) = (ports, t.get("ports")) {
            let range = u32::from(lo)..=u32::from(hi);
            let text = match v.get_ref() {
                DeValue::String(s) => s.to_string(),
                _ => format!("{lo}-{hi}"),
            };
            let mut taken: Vec<(SocketAddr, String)> =
                server.listen.iter().map(|l| (l.addr, format!("server.listen \"{}\" uses", l.text))).collect();
            taken.extend(control.map(|c| (c, format!("media.control {c} uses"))));
            taken.extend(server.metrics.map(|m| (m, format!("server.metrics {m} uses"))));
            taken.extend(server.control_tcp.map(|m| (m, format!("server.control_tcp {m} uses"))));
            for (addr, who) in taken {
                if overlap(address, addr.ip()) && range.contains(&u32::from(addr.port())) {
                    d.span(
                        &v.span(),
                        format!(
                            "media.ports \"{text}\" includes port {}, which {who} on the same address: leave it out of the range",
                            addr.port()
                        ),
                    );
                    ok = false;
                }
            }
        }
    }

    if !ok {
        return None;
    }
    let address = address?;
    let (port_min, port_max) = ports?;
    Some(Media {
        address,
        advertise: advertise.unwrap_or(address),
        port_min,
        port_max,
        control,
        timeout: timeout?,
        latching,
        strict_source,
        batch_wait: batch_wait?,
    })
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// Whether sockets bound on `a` and on `b` (same port) would receive the same datagrams: the
/// same address, or a wildcard of a family that covers the other (`::` also covers IPv4 on a
/// dual-stack host).
fn overlap(a: IpAddr, b: IpAddr) -> bool {
    let covers = |w: IpAddr, x: IpAddr| w.is_unspecified() && (w.is_ipv6() || x.is_ipv4());
    a == b || covers(a, b) || covers(b, a)
}

/// `address` / `advertise`: a literal IP, not a wildcard.
fn ip(d: &mut Diag<'_>, v: &Val<'_>, key: &str, hint: &str) -> Option<IpAddr> {
    let s = walk::string(d, v, &format!("media.{key}"))?;
    let t = s.trim();
    let problem = match t.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => format!("media.{key} \"{s}\" is a wildcard: {hint}"),
        Ok(ip) => return Some(ip),
        Err(_) => {
            if t.strip_prefix('[').and_then(|x| x.strip_suffix(']')).is_some_and(|x| x.parse::<IpAddr>().is_ok()) {
                format!("media.{key} \"{s}\": write the IPv6 address without brackets")
            } else if t.parse::<SocketAddr>().is_ok() {
                format!("media.{key} \"{s}\" is an address without a port (the ports are media.ports)")
            } else if values::is_hostname(t) {
                format!("media.{key} \"{s}\" is a host name: {hint}")
            } else {
                format!("media.{key} \"{s}\" is not an IP address: {hint}")
            }
        }
    };
    d.span(&v.span(), problem);
    None
}

/// `ports = "MIN-MAX"`.
fn ports(d: &mut Diag<'_>, v: &Val<'_>) -> Option<(u16, u16)> {
    let s = match v.get_ref() {
        DeValue::String(s) => s.as_ref(),
        other => {
            d.span(
                &v.span(),
                format!("media.ports must be a range \"MIN-MAX\" like \"30000-39999\", not {}", walk::describe(other)),
            );
            return None;
        }
    };
    let r = port_range(s);
    r.map_err(|m| d.span(&v.span(), format!("media.ports \"{s}\"{m}"))).ok()
}

/// The range of `"MIN-MAX"`; a message to follow `media.ports "..."` on error.
fn port_range(s: &str) -> Result<(u16, u16), String> {
    let Some((a, b)) = s.split_once('-') else {
        return Err(": write the range as \"MIN-MAX\", like \"30000-39999\"".to_string());
    };
    let num = |x: &str| -> Result<u32, String> {
        let x = x.trim();
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                ": \"{x}\" is not a port number (write the range as \"MIN-MAX\", like \"30000-39999\")"
            ));
        }
        match x.parse::<u32>() {
            Ok(p) if p <= 65535 => Ok(p),
            _ => Err(format!(": port {x} is out of range (at most 65535)")),
        }
    };
    let (lo, hi) = (num(a)?, num(b)?);
    if lo > hi {
        return Err(format!(" goes backwards (write \"{hi}-{lo}\")"));
    }
    if lo == hi {
        return Err(" holds one port: RTP and RTCP need two (an even port and the odd one after it)".to_string());
    }
    if lo < MIN_PORT {
        return Err(format!(": the first port must be at least {MIN_PORT} (the ports below are for system services)"));
    }
    if lo % 2 != 0 {
        return Err(": the first port must be even (RTP on even ports, RTCP on the next odd one)".to_string());
    }
    Ok((lo as u16, hi as u16))
}

/// A `[media]` duration key (see [`walk::duration_key`]).
fn duration<'t>(
    d: &mut Diag<'_>,
    t: &Table<'t, '_>,
    key: &str,
    read: fn(&str) -> Result<Duration, String>,
    example: &str,
    ok: &mut bool,
) -> Option<(Duration, Range<usize>, &'t str)> {
    walk::duration_key(d, t, "media", key, read, example, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(port_range("30000-39999"), Ok((30000, 39999)));
        assert_eq!(port_range(" 1024 - 1025 "), Ok((1024, 1025)));
        assert_eq!(port_range("65534-65535"), Ok((65534, 65535)));
        for (s, m) in [
            ("30000", "write the range"),
            ("30000-", "\"\" is not a port number"),
            ("a-b", "\"a\" is not a port number"),
            ("30000-70000", "port 70000 is out of range"),
            ("39999-30000", "goes backwards (write \"30000-39999\")"),
            ("30000-30000", "holds one port"),
            ("80-1000", "at least 1024"),
            ("30001-39999", "must be even"),
        ] {
            let e = port_range(s).unwrap_err();
            assert!(e.contains(m), "{s}: {e}");
        }
    }

    #[test]
    fn overlaps() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(overlap(ip("127.0.0.1"), ip("127.0.0.1")));
        assert!(overlap(ip("0.0.0.0"), ip("127.0.0.1")));
        assert!(overlap(ip("127.0.0.1"), ip("::")));
        assert!(overlap(ip("::"), ip("::1")));
        assert!(!overlap(ip("0.0.0.0"), ip("::1")));
        assert!(!overlap(ip("127.0.0.1"), ip("127.0.0.2")));
    }
}
