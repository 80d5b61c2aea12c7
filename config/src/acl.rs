//! `[[acl]]`: named address groups (Kamailio's `permissions` address groups), matched by
//! routes with `$si in acl NAME`. Entries come from inline `entries` and/or a CSV `file`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;

use crate::csvfile::CsvFile;
use crate::error::Diag;
use crate::route::Cidr;
use crate::walk::{self, Table, Val};
use crate::{AclEntry, AclGroup};

const KEYS: &[&str] = &["name", "entries", "file"];
const COLUMNS: &[&str] = &["address", "port", "comment"];

/// The parsed `[[acl]]` section.
pub(crate) type Parsed = walk::Named<AclGroup>;

/// Parse the `acl` key of the top level (an array of tables, `[[acl]]`).
pub(crate) fn parse(d: &mut Diag<'_>, v: &Val<'_>, base: &Path) -> Parsed {
    walk::named_sections(d, v, "acl", "[[acl]]", |d, t, out, lines| parse_group(d, t, base, out, lines))
}

/// A group being filled: its entries and where each was first seen.
struct Entries {
    label: String,
    entries: Vec<AclEntry>,
    seen: HashMap<(Cidr, Option<u16>), String>,
}

impl Entries {
    /// Add an entry, or report it as a duplicate. `Err` carries the message.
    fn add(&mut self, net: Cidr, port: Option<u16>, origin: String) -> Result<(), String> {
        if let Some(first) = self.seen.get(&(net, port)) {
            let shown = show(net, port);
            return Err(format!("{} has {shown} twice: at {first} and at {origin}", self.label));
        }
        self.seen.insert((net, port), origin.clone());
        self.entries.push(AclEntry { net, port, origin });
        Ok(())
    }
}

fn parse_group(
    d: &mut Diag<'_>,
    t: &Table<'_, '_>,
    base: &Path,
    out: &mut Parsed,
    lines: &mut HashMap<String, usize>,
) -> Option<AclGroup> {
    t.check_keys(d, KEYS);
    let errors_before = d.errors.len();
    let name =
        walk::entry_name(d, t, "acl", "[[acl]] needs a `name` (the name routes use), like name = \"trusted\"", lines);
    match &name {
        Some(n) => {
            out.names.insert(n.clone());
        }
        None => out.names_complete = false,
    }
    let label = name.as_ref().map_or_else(|| "this acl group".to_string(), |n| format!("acl \"{n}\""));
    let mut entries = Entries { label, entries: Vec::new(), seen: HashMap::new() };

    if t.get("entries").is_none() && t.get("file").is_none() {
        d.span(
            &t.span,
            format!(
                "{} needs `entries` and/or `file`: the addresses of the group, like entries = [\"192.0.2.10\", \"10.0.0.0/8\"]",
                entries.label
            ),
        );
    }
    if let Some(v) = t.get("entries")
        && let Some(items) = walk::array(d, v, "acl entries")
    {
        for item in items {
            inline_entry(d, item, &mut entries);
        }
    }
    if let Some(v) = t.get("file")
        && let Some(rel) = walk::string(d, v, "acl file")
    {
        csv_entries(d, v.span(), rel, base, &mut entries);
    }

    if d.errors.len() != errors_before {
        return None;
    }
    Some(AclGroup { name: name?, entries: entries.entries })
}

/// The config file's name, for origins (`ringsip.toml:12:5`).
fn file_name(d: &Diag<'_>) -> String {
    d.src.file.file_name().map_or_else(|| d.src.file.display().to_string(), |f| f.to_string_lossy().into_owned())
}

fn inline_entry(d: &mut Diag<'_>, item: &Val<'_>, entries: &mut Entries) {
    let Some(text) = walk::string(d, item, "an acl entry") else {
        return;
    };
    let result = entry(text).and_then(|(net, port)| {
        let (line, col) = d.src.line_col(item.span().start);
        entries.add(net, port, format!("{}:{line}:{col}", file_name(d)))
    });
    if let Err(msg) = result {
        d.span(&item.span(), msg);
    }
}

/// Read a CSV file of `address[,port][,comment]` rows.
fn csv_entries(d: &mut Diag<'_>, span: Range<usize>, rel: &str, base: &Path, entries: &mut Entries) {
    let Some(f) = CsvFile::open(d, &span, "acl file", rel, base) else {
        return;
    };
    let mut rdr = f.reader();
    let Some((headers, header_line)) = f.headers(d, &mut rdr) else {
        return;
    };
    if headers.is_empty() {
        let msg =
            "the file is empty: it needs a header row naming the columns (address and optionally port and comment)";
        d.push(f.err(1, None, msg.to_string()));
        return;
    }
    let found = f.columns(d, &headers, header_line, COLUMNS);
    let mut header_ok = found.is_some();
    let found = found.unwrap_or_default();
    if header_ok && !found.contains("address") {
        let found = headers.iter().collect::<Vec<_>>().join(",");
        let msg = format!("the header row needs the column address (port and comment are optional); found \"{found}\"");
        d.push(f.err(header_line, None, msg));
        header_ok = false;
    }
    if !header_ok {
        return;
    }
    let at = |name: &str| headers.iter().position(|h| h == name);
    let (address_at, port_at) = (at("address").unwrap_or(0), at("port"));
    f.rows(d, &mut rdr, &headers, |d, row, line, rec| {
        let address = &rec[address_at];
        let result = entry(address).and_then(|(net, port)| {
            let port = match (port, port_at.map(|i| &rec[i])) {
                (p, None | Some("")) => p,
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "the port is given twice: in the address \"{address}\" and in the port column (leave one out)"
                    ));
                }
                (None, Some(p)) => Some(port_number(p)?),
            };
            entries.add(net, port, format!("{rel} row {row}"))
        });
        if let Err(msg) = result {
            d.push(f.err(line, Some(row), msg));
        }
    });
}

/// An entry as written: an address or network, optionally with a port (`192.0.2.10`,
/// `10.0.0.0/8:5060`, `[2001:db8::1]:5060`, `[2001:db8::]/32:5060`).
pub(crate) fn entry(text: &str) -> Result<(Cidr, Option<u16>), String> {
    const LIKE: &str =
        "like 192.0.2.10, 10.0.0.0/8 or 2001:db8::/32, optionally with a port: 192.0.2.10:5060, [2001:db8::1]:5060";
    if text.trim().is_empty() {
        return Err(format!("the address is empty: give an address or a network, {LIKE}"));
    }
    let not_an_address = || format!("\"{text}\" is not an IP address or network ({LIKE})");
    if let Some(rest) = text.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return Err(format!("\"{text}\" has no closing ]: write IPv6 addresses with a port as [2001:db8::1]:5060"));
        };
        let (len, port) = match after.strip_prefix('/') {
            Some(l) => match l.split_once(':') {
                Some((l, p)) => (Some(l), Some(p)),
                None => (Some(l), None),
            },
            None if after.is_empty() => (None, None),
            None => match after.strip_prefix(':') {
                Some(p) => (None, Some(p)),
                None => return Err(not_an_address()),
            },
        };
        let net_text = match len {
            Some(l) => format!("{inner}/{l}"),
            None => inner.to_string(),
        };
        let net = network(&net_text, text)?;
        if net.addr.is_ipv4() {
            return Err(format!(
                "\"{text}\": brackets are for IPv6 addresses; write IPv4 ones without them, like 192.0.2.10:5060"
            ));
        }
        let port = port.map(port_number).transpose()?;
        return Ok((net, port));
    }
    match text.matches(':').count() {
        // IPv4 with a port (an IPv6 address has at least two colons)
        1 => {
            let (net, port) = text.split_once(':').unwrap_or((text, ""));
            let cidr = network(net, text)?;
            Ok((cidr, Some(port_number(port)?)))
        }
        _ => {
            if let Some((addr, rest)) = text.split_once('/')
                && let Some((len, port)) = rest.split_once(':')
            {
                return Err(format!(
                    "\"{text}\": an IPv6 network with a port goes in brackets, like [{addr}]/{len}:{port}"
                ));
            }
            Ok((network(text, text)?, None))
        }
    }
}

/// A network (`10.0.0.0/8`) or an address (a /32 or /128). `whole` is the entry as written,
/// for messages.
fn network(net: &str, whole: &str) -> Result<Cidr, String> {
    let (addr, len) = match net.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (net, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return Err(format!(
            "\"{whole}\" is not an IP address or network (like 192.0.2.10, 10.0.0.0/8 or 2001:db8::/32, optionally with a port: 192.0.2.10:5060, [2001:db8::1]:5060)"
        ));
    };
    let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= max && !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(format!("prefix length \"{l}\" in \"{whole}\" is out of range (0-{max})")),
        },
    };
    let masked = crate::lang::mask(ip, len);
    if masked != ip {
        return Err(format!("{net} has host bits set: did you mean {masked}/{len}?"));
    }
    Ok(Cidr { addr: ip, len })
}

/// A port, 1–65535.
fn port_number(p: &str) -> Result<u16, String> {
    match p.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n as u16),
        Ok(_) if p.bytes().all(|b| b.is_ascii_digit()) => Err(format!("port {p} is out of range (1-65535)")),
        _ if p.is_empty() => Err("the port is missing after \":\" (1-65535)".to_string()),
        _ if p.bytes().all(|b| b.is_ascii_digit()) => Err(format!("port {p} is out of range (1-65535)")),
        _ => Err(format!("\"{p}\" is not a port (a number 1-65535)")),
    }
}

/// An entry shown as written in messages: `10.0.0.0/8`, `192.0.2.10:5060`, `[2001:db8::1]:5060`.
fn show(net: Cidr, port: Option<u16>) -> String {
    let full = net.len == if net.addr.is_ipv4() { 32 } else { 128 };
    let n = if full { net.addr.to_string() } else { format!("{}/{}", net.addr, net.len) };
    match (port, net.addr) {
        (None, _) => n,
        (Some(p), IpAddr::V4(_)) => format!("{n}:{p}"),
        (Some(p), IpAddr::V6(_)) if full => format!("[{n}]:{p}"),
        (Some(p), IpAddr::V6(a)) => format!("[{a}]/{}:{p}", net.len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(a: &str, len: u8) -> Cidr {
        Cidr { addr: a.parse().unwrap(), len }
    }

    #[test]
    fn entries() {
        assert_eq!(entry("192.0.2.10"), Ok((cidr("192.0.2.10", 32), None)));
        assert_eq!(entry("10.0.0.0/8"), Ok((cidr("10.0.0.0", 8), None)));
        assert_eq!(entry("0.0.0.0/0"), Ok((cidr("0.0.0.0", 0), None)));
        assert_eq!(entry("2001:db8::/32"), Ok((cidr("2001:db8::", 32), None)));
        assert_eq!(entry("2001:db8::1"), Ok((cidr("2001:db8::1", 128), None)));
        assert_eq!(entry("192.0.2.10:5060"), Ok((cidr("192.0.2.10", 32), Some(5060))));
        assert_eq!(entry("10.0.0.0/8:5060"), Ok((cidr("10.0.0.0", 8), Some(5060))));
        assert_eq!(entry("[2001:db8::1]:5060"), Ok((cidr("2001:db8::1", 128), Some(5060))));
        assert_eq!(entry("[2001:db8::1]"), Ok((cidr("2001:db8::1", 128), None)));
        assert_eq!(entry("[2001:db8::/32]:5061"), Ok((cidr("2001:db8::", 32), Some(5061))));
        assert_eq!(entry("[2001:db8::]/32:5061"), Ok((cidr("2001:db8::", 32), Some(5061))));
        assert_eq!(entry("192.0.2.10:65535"), Ok((cidr("192.0.2.10", 32), Some(65535))));
    }

    #[test]
    fn bad_entries() {
        let e = |t: &str| entry(t).unwrap_err();
        assert_eq!(e("10.1.2.3/8"), "10.1.2.3/8 has host bits set: did you mean 10.0.0.0/8?");
        assert_eq!(e("10.1.2.3/8:5060"), "10.1.2.3/8 has host bits set: did you mean 10.0.0.0/8?");
        assert_eq!(e("[2001:db8::1/32]:5060"), "2001:db8::1/32 has host bits set: did you mean 2001:db8::/32?");
        assert_eq!(e("192.0.2.10:0"), "port 0 is out of range (1-65535)");
        assert_eq!(e("192.0.2.10:65536"), "port 65536 is out of range (1-65535)");
        assert_eq!(e("192.0.2.10:99999999999"), "port 99999999999 is out of range (1-65535)");
        assert_eq!(e("192.0.2.10:sip"), "\"sip\" is not a port (a number 1-65535)");
        assert_eq!(e("192.0.2.10:"), "the port is missing after \":\" (1-65535)");
        assert_eq!(e("10.0.0.0/33"), "prefix length \"33\" in \"10.0.0.0/33\" is out of range (0-32)");
        assert_eq!(e("10.0.0.0/"), "prefix length \"\" in \"10.0.0.0/\" is out of range (0-32)");
        assert!(e("gw.example.com").starts_with("\"gw.example.com\" is not an IP address or network"));
        assert!(e("").starts_with("the address is empty"));
        assert!(e("[2001:db8::1:5060").contains("no closing ]"));
        assert!(e("[192.0.2.1]:5060").contains("brackets are for IPv6"));
        assert!(e("[2001:db8::1]5060").contains("is not an IP address"));
        assert_eq!(
            e("2001:db8::/32:5060"),
            "\"2001:db8::/32:5060\": an IPv6 network with a port goes in brackets, like [2001:db8::]/32:5060"
        );
    }

    #[test]
    fn shown() {
        assert_eq!(show(cidr("10.0.0.0", 8), None), "10.0.0.0/8");
        assert_eq!(show(cidr("192.0.2.1", 32), Some(5060)), "192.0.2.1:5060");
        assert_eq!(show(cidr("2001:db8::1", 128), Some(5060)), "[2001:db8::1]:5060");
        assert_eq!(show(cidr("2001:db8::", 32), Some(5060)), "[2001:db8::]/32:5060");
    }
}
