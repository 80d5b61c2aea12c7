//! Parsing of the small value syntaxes: durations, sizes, addresses, URIs, CPU lists, codes.
//! Each returns a plain message on error; the caller knows where the value is.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::{CodeRange, Listen, Transport};

/// The closest candidate to `word` by edit distance, if close enough to be a likely typo.
pub(crate) fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let dist = edit_distance(&word.to_ascii_lowercase(), &c.to_ascii_lowercase());
        if dist <= limit && best.is_none_or(|(b, _)| dist < b) {
            best = Some((dist, c));
        }
    }
    best.map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A SIP token (RFC 3261 §25.1): methods, header names.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// `"500ms"`, `"2s"`, `"1m"`, `"1h"`.
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s, false)
}

/// [`duration`], and microseconds too (`"250us"`, `"250µs"`): for waits shorter than a
/// millisecond (`media.batch_wait`).
pub(crate) fn fine_duration(s: &str) -> Result<Duration, String> {
    parse_duration(s, true)
}

fn parse_duration(s: &str, micros: bool) -> Result<Duration, String> {
    let units = if micros { "us, ms, s, m, h" } else { "ms, s, m, h" };
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    let unit = unit.trim_start();
    if num.is_empty() {
        let first = if micros { "\"250us\", \"500ms\"" } else { "\"500ms\"" };
        return Err(format!(
            "\"{s}\" is not a duration (write a whole number and a unit: {first}, \"2s\", \"1m\", \"1h\")"
        ));
    }
    let n: u64 = num.parse().map_err(|_| format!("\"{s}\" is too large"))?;
    let d = match unit {
        "us" | "µs" if micros => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "" if micros => {
            return Err(format!("duration \"{s}\" needs a unit: \"{n}us\" or \"{n}ms\" (units: {units})"));
        }
        "" => return Err(format!("duration \"{s}\" needs a unit: \"{n}s\" or \"{n}ms\" (units: {units})")),
        _ => return Err(format!("unknown unit \"{unit}\" in duration \"{s}\" (units: {units})")),
    };
    Ok(d)
}

/// Human form of a duration for messages: `"2s"`, `"500ms"`, `"250us"` (`"0s"` for zero).
pub(crate) fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if d.subsec_nanos() % 1_000_000 != 0 {
        return match d.subsec_nanos() % 1000 {
            0 => format!("{}us", d.as_micros()),
            _ => format!("{}ns", d.as_nanos()),
        };
    }
    if ms % 1000 == 0 { format!("{}s", ms / 1000) } else { format!("{ms}ms") }
}

/// `"8MiB"`, `"512KiB"`, `"4M"`, `"65536"`: binary units (K = KiB = 1024).
pub(crate) fn size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    if num.is_empty() {
        return Err(format!("\"{s}\" is not a size (write bytes or a number with a unit: \"512KiB\", \"8MiB\")"));
    }
    let n: u64 = num.parse().map_err(|_| format!("size \"{s}\" is too large"))?;
    let mult: u64 = match unit.trim_start() {
        "" | "B" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        u => {
            return Err(format!(
                "unknown unit \"{u}\" in size \"{s}\" (units: KiB, MiB, GiB, or K, M, G; all powers of 1024)"
            ));
        }
    };
    n.checked_mul(mult).ok_or_else(|| format!("size \"{s}\" is too large"))
}

/// A port number from text, 1..=65535.
fn port(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("\"{s}\" is not a port number"));
    }
    match s.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => Err(format!("port {s} out of range (1-65535)")),
    }
}

/// Does `s` look like a DNS host name (RFC 1123 labels)?
pub(crate) fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && !s.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
}

/// The host and optional port of `host[:port]`, `[v6][:port]` or a bare IPv6 address.
/// The host keeps no brackets.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>, bool), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(format!("\"{s}\": missing \"]\" after the IPv6 address"));
        };
        let host = &rest[..end];
        let after = &rest[end + 1..];
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, Some(p), true)),
            None if after.is_empty() => Ok((host, None, true)),
            None => Err(format!("\"{s}\": unexpected \"{after}\" after the address")),
        };
    }
    if s.matches(':').count() > 1 {
        return Err(format!("\"{s}\": an IPv6 address with a port goes in brackets, like \"[2001:db8::1]:5060\""));
    }
    match s.split_once(':') {
        Some((h, p)) => Ok((h, Some(p), false)),
        None => Ok((s, None, false)),
    }
}

/// A literal IP (IPv6 only when `bracketed`).
fn ip_literal(host: &str, bracketed: bool) -> Option<IpAddr> {
    if bracketed { host.parse::<Ipv6Addr>().ok().map(IpAddr::V6) } else { host.parse().ok() }
}

/// `udp:IP:PORT` or `udp:[IPv6]:PORT`.
pub(crate) fn listen(s: &str) -> Result<Listen, String> {
    let Some((scheme, rest)) = s.split_once(':') else {
        return Err(format!("listen \"{s}\" must look like \"udp:IP:PORT\" (for example \"udp:0.0.0.0:5060\")"));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "udp" => {}
        t @ ("tcp" | "tls" | "sctp" | "ws" | "wss") => {
            return Err(format!("listen \"{s}\": {t} is not supported yet (only udp)"));
        }
        _ => return Err(format!("listen \"{s}\" must start with a transport: \"udp:IP:PORT\"")),
    }
    let (host, p, bracketed) = split_host_port(rest).map_err(|e| format!("listen {e}"))?;
    let Some(p) = p else {
        return Err(format!("listen \"{s}\" needs a port: \"udp:{rest}:5060\""));
    };
    let Some(ip) = ip_literal(host, bracketed) else {
        return Err(if is_hostname(host) {
            format!(
                "listen \"{s}\": \"{host}\" is a host name; listen needs an IP address (such as 0.0.0.0 or 192.0.2.1)"
            )
        } else {
            format!("listen \"{s}\": \"{host}\" is not an IP address")
        });
    };
    let port = port(p).map_err(|e| format!("listen \"{s}\": {e}"))?;
    Ok(Listen { transport: Transport::Udp, addr: SocketAddr::new(ip, port), text: s.to_string() })
}

/// `host[:port]` for `advertise`: a literal IP (IPv6 in brackets) or a host name.
pub(crate) fn advertise(s: &str) -> Result<(), String> {
    let (host, p, bracketed) = split_host_port(s).map_err(|e| format!("advertise {e}"))?;
    if let Some(p) = p {
        port(p).map_err(|e| format!("advertise \"{s}\": {e}"))?;
    }
    if ip_literal(host, bracketed).is_some() || (!bracketed && is_hostname(host)) {
        Ok(())
    } else {
        Err(format!("advertise \"{s}\": \"{host}\" is neither an IP address nor a host name"))
    }
}

/// `IP:PORT` for `metrics`.
pub(crate) fn socket_addr(s: &str, what: &str) -> Result<SocketAddr, String> {
    let (host, p, bracketed) = split_host_port(s).map_err(|e| format!("{what} {e}"))?;
    let Some(p) = p else {
        return Err(format!("{what} \"{s}\" needs a port, like \"127.0.0.1:9090\""));
    };
    let Some(ip) = ip_literal(host, bracketed) else {
        return Err(format!("{what} \"{s}\": \"{host}\" is not an IP address (write it like \"127.0.0.1:9090\")"));
    };
    Ok(SocketAddr::new(ip, port(p).map_err(|e| format!("{what} \"{s}\": {e}"))?))
}

const NO_DNS: &str = "host names need DNS, which ringsip does not do on the hot path; use an IP address";

/// `sip:IP[:port][;params]`: a destination or an explicit forward target. Port 5060 when
/// absent; `transport` may only be `udp`.
pub(crate) fn sip_uri(s: &str) -> Result<SocketAddr, String> {
    let Some((scheme, rest)) = s.split_once(':') else {
        return Err(format!("\"{s}\" is not a SIP URI (expected sip:IP[:port], like \"sip:192.0.2.10:5060\")"));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "sip" => {}
        "sips" => {
            return Err(format!("\"{s}\": sips needs TLS, which ringsip does not support yet; use sip:IP[:port]"));
        }
        "tel" => return Err(format!("\"{s}\": a tel URI has no address to send to; use sip:IP[:port]")),
        _ => return Err(format!("\"{s}\" is not a SIP URI (expected sip:IP[:port], like \"sip:192.0.2.10:5060\")")),
    }
    if rest.contains('@') {
        return Err(format!("\"{s}\": a destination is an address, without a user part: sip:IP[:port][;params]"));
    }
    if rest.contains('?') {
        return Err(format!("\"{s}\": URI headers (?...) are not allowed here"));
    }
    let mut parts = rest.split(';');
    let hostport = parts.next().unwrap_or("");
    for param in parts {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        if !is_token(name) {
            return Err(format!("\"{s}\": \"{param}\" is not a valid URI parameter"));
        }
        if name.eq_ignore_ascii_case("transport") && !value.eq_ignore_ascii_case("udp") {
            return Err(format!("\"{s}\": transport={value} is not supported yet (only udp)"));
        }
    }
    let (host, p, bracketed) = split_host_port(hostport).map_err(|e| format!("\"{s}\": {e}"))?;
    if host.is_empty() {
        return Err(format!("\"{s}\" has no host"));
    }
    let Some(ip) = ip_literal(host, bracketed) else {
        return Err(if !bracketed && is_hostname(host) {
            format!("\"{s}\": {NO_DNS}")
        } else {
            format!("\"{s}\": \"{host}\" is not an IP address")
        });
    };
    let port = match p {
        Some(p) => port(p).map_err(|e| format!("\"{s}\": {e}"))?,
        None => 5060,
    };
    Ok(SocketAddr::new(ip, port))
}

/// A `forward` / `relay` target (`action` names it in messages): `udp:IP:PORT` or
/// `sip:IP[:PORT][;params]`.
pub(crate) fn target(s: &str, action: &str) -> Result<SocketAddr, String> {
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("udp:") {
        let (_, rest) = s.split_at(4);
        let (host, p, bracketed) = split_host_port(rest).map_err(|e| format!("{action} target {e}"))?;
        let Some(ip) = ip_literal(host, bracketed) else {
            return Err(if !bracketed && is_hostname(host) {
                format!("{action} target \"{s}\": {NO_DNS}")
            } else {
                format!("{action} target \"{s}\": \"{host}\" is not an IP address")
            });
        };
        let Some(p) = p else {
            return Err(format!("{action} target \"{s}\" needs a port: \"udp:{rest}:5060\""));
        };
        Ok(SocketAddr::new(ip, port(p).map_err(|e| format!("{action} target \"{s}\": {e}"))?))
    } else if ["tcp:", "tls:", "sctp:", "ws:", "wss:"].iter().any(|p| lower.starts_with(p)) {
        let t = &lower[..lower.find(':').unwrap_or(0)];
        Err(format!("{action} target \"{s}\": {t} is not supported yet (only udp)"))
    } else if lower.starts_with("sip:") || lower.starts_with("sips:") || lower.starts_with("tel:") {
        sip_uri(s)
    } else {
        Err(format!("{action} target \"{s}\" must be \"udp:IP:PORT\" or \"sip:IP[:PORT]\""))
    }
}

/// `"0-3,6"`.
pub(crate) fn cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let num = |t: &str| {
            t.trim().parse::<usize>().map_err(|_| format!("cpus \"{s}\": \"{}\" is not a CPU number", t.trim()))
        };
        if let Some((a, b)) = part.split_once('-') {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(format!("cpus \"{s}\": range {part} goes backwards (write {b}-{a})"));
            }
            if b - a > 4096 {
                return Err(format!("cpus \"{s}\": range {part} is too large"));
            }
            out.extend(a..=b);
        } else {
            out.push(num(part)?);
        }
    }
    Ok(out)
}

/// `"2xx"`, `"200"`, `"400-499"`.
pub(crate) fn code_range(s: &str) -> Result<CodeRange, String> {
    let t = s.trim();
    let code = |c: &str| -> Result<u16, String> {
        match c.parse::<u16>() {
            Ok(n) if c.len() == 3 && (100..=699).contains(&n) => Ok(n),
            _ => Err(format!(
                "\"{s}\" is not a status code or range (write \"2xx\", \"200\" or \"400-499\"; codes 100-699)"
            )),
        }
    };
    if let Some(class) = t.strip_suffix("xx").or_else(|| t.strip_suffix("XX")) {
        return match class.parse::<u16>() {
            Ok(c) if class.len() == 1 && (1..=6).contains(&c) => Ok(CodeRange { lo: c * 100, hi: c * 100 + 99 }),
            _ => Err(format!("\"{s}\" is not a status class (1xx to 6xx)")),
        };
    }
    if let Some((a, b)) = t.split_once('-') {
        let (lo, hi) = (code(a.trim())?, code(b.trim())?);
        if lo > hi {
            return Err(format!("\"{s}\" goes backwards (write \"{hi}-{lo}\")"));
        }
        return Ok(CodeRange { lo, hi });
    }
    let c = code(t)?;
    Ok(CodeRange { lo: c, hi: c })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(duration("2").unwrap_err().contains("needs a unit"));
        assert!(duration("2 days").unwrap_err().contains("unknown unit"));
        assert!(duration("fast").is_err());
        assert!(duration("1.5s").is_err());
        // microseconds only where asked for
        assert!(duration("250us").unwrap_err().contains("unknown unit \"us\""));
        assert_eq!(fine_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(fine_duration("250µs").unwrap(), Duration::from_micros(250));
        assert_eq!(fine_duration("0us").unwrap(), Duration::ZERO);
        assert_eq!(fine_duration("2ms").unwrap(), Duration::from_millis(2));
        assert_eq!(
            fine_duration("5").unwrap_err(),
            "duration \"5\" needs a unit: \"5us\" or \"5ms\" (units: us, ms, s, m, h)"
        );
        assert_eq!(show_duration(Duration::from_micros(250)), "250us");
        assert_eq!(show_duration(Duration::from_micros(1500)), "1500us");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(show_duration(Duration::ZERO), "0s");
        assert_eq!(show_duration(Duration::from_nanos(1)), "1ns");
    }

    #[test]
    fn sizes() {
        assert_eq!(size("8MiB").unwrap(), 8 << 20);
        assert_eq!(size("512KiB").unwrap(), 512 << 10);
        assert_eq!(size("4M").unwrap(), 4 << 20);
        assert_eq!(size("4096").unwrap(), 4096);
        assert!(size("4MB").is_err());
    }

    #[test]
    fn listens() {
        let l = listen("udp:127.0.0.1:5060").unwrap();
        assert_eq!(l.addr, "127.0.0.1:5060".parse::<std::net::SocketAddr>().unwrap());
        let l = listen("udp:[::1]:5060").unwrap();
        assert_eq!(l.addr, "[::1]:5060".parse::<std::net::SocketAddr>().unwrap());
        assert!(listen("tcp:127.0.0.1:5060").unwrap_err().contains("not supported yet"));
        assert!(listen("udp:localhost:5060").unwrap_err().contains("host name"));
        assert!(listen("udp:127.0.0.1").unwrap_err().contains("needs a port"));
        assert!(listen("udp:127.0.0.1:0").unwrap_err().contains("out of range"));
        assert!(listen("udp:::1:5060").unwrap_err().contains("brackets"));
        assert!(listen("127.0.0.1:5060").is_err());
    }

    #[test]
    fn uris() {
        assert_eq!(sip_uri("sip:127.0.0.1").unwrap(), "127.0.0.1:5060".parse::<std::net::SocketAddr>().unwrap());
        assert_eq!(
            sip_uri("sip:[2001:db8::1]:5080;lr").unwrap(),
            "[2001:db8::1]:5080".parse::<std::net::SocketAddr>().unwrap()
        );
        assert!(sip_uri("sip:10.0.0.1;transport=UDP").is_ok());
        assert!(sip_uri("sip:10.0.0.1;transport=tcp").unwrap_err().contains("not supported yet"));
        assert!(sip_uri("sip:gw.example.com").unwrap_err().contains("host names need DNS"));
        assert!(sip_uri("sips:10.0.0.1").is_err());
        assert!(sip_uri("tel:+15551234").is_err());
        assert!(sip_uri("sip:10.0.0.1:70000").unwrap_err().contains("port 70000 out of range"));
        assert!(sip_uri("sip:alice@10.0.0.1").is_err());
        assert_eq!(
            target("udp:10.0.0.1:5070", "forward").unwrap(),
            "10.0.0.1:5070".parse::<std::net::SocketAddr>().unwrap()
        );
        assert!(target("udp:10.0.0.1", "forward").is_err());
    }

    #[test]
    fn advertise_hosts() {
        assert!(advertise("sip.example.com").is_ok());
        assert!(advertise("sip.example.com:5070").is_ok());
        assert!(advertise("203.0.113.5").is_ok());
        assert!(advertise("[2001:db8::5]:5060").is_ok());
        assert!(advertise("2001:db8::5").is_err());
        assert!(advertise("bad_host!").is_err());
        assert!(advertise("sip.example.com:0").is_err());
    }

    #[test]
    fn cpus_and_codes() {
        assert_eq!(cpu_list("0-3,6").unwrap(), vec![0, 1, 2, 3, 6]);
        assert!(cpu_list("3-1").is_err());
        assert_eq!(code_range("2xx").unwrap(), CodeRange { lo: 200, hi: 299 });
        assert_eq!(code_range("404").unwrap(), CodeRange { lo: 404, hi: 404 });
        assert_eq!(code_range("400-499").unwrap(), CodeRange { lo: 400, hi: 499 });
        assert!(code_range("7xx").is_err());
        assert!(code_range("99").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(closest("round-robbin", ["round-robin", "random"]), Some("round-robin"));
        assert_eq!(closest("lisen", ["listen", "log"]), Some("listen"));
        assert_eq!(closest("zzzzzz", ["listen", "log"]), None);
    }
}
