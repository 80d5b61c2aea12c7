//! `[dispatcher]`: destination sets, their destinations (inline and CSV) and probing.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::DeValue;

use crate::csvfile::{CsvFile, csv_msg};
use crate::error::Diag;
use crate::values::{self, closest, show_duration};
use crate::walk::{self, Table, Val};
use crate::{Algorithm, CodeRange, DEFAULT_PROBE_INTERVAL, Destination, Dispatcher, MIN_PROBE_INTERVAL};
use crate::{Probe, ProbeMode, Set, lang};

const DISPATCHER_KEYS: &[&str] = &["probe", "set"];
const SET_KEYS: &[&str] = &["id", "name", "algorithm", "hash_pv", "destinations", "destinations_csv", "probe"];
const DEST_KEYS: &[&str] = &["uri", "weight", "priority", "attrs", "state"];
const PROBE_KEYS: &[&str] =
    &["mode", "method", "interval", "timeout", "failure_threshold", "success_threshold", "up_codes", "from"];

/// What the routes need to know about the dispatcher, even when it has errors.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) dispatcher: Dispatcher,
    /// Every set id that was read.
    pub(crate) ids: BTreeSet<u32>,
    /// False when some set's id could not be read (then unknown ids are not reported).
    pub(crate) ids_complete: bool,
}

pub(crate) fn parse(d: &mut Diag<'_>, t: &Table<'_, '_>, first_ip: Option<IpAddr>, base: &Path) -> Parsed {
    t.check_keys(d, DISPATCHER_KEYS);
    let mut out = Parsed { ids_complete: true, ..Parsed::default() };
    let defaults = match t.get("probe") {
        Some(v) => probe_layer(d, v, "dispatcher.probe"),
        None => ProbeLayer::default(),
    };
    // Report a bad default once even when no set uses it.
    finish_probe(d, &defaults, first_ip);
    let Some(sets) = t.get("set") else {
        return out;
    };
    if !matches!(sets.get_ref(), DeValue::Array(_)) {
        out.ids_complete = false;
    }
    let mut lines: HashMap<u32, usize> = HashMap::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for st in walk::tables(d, sets, "dispatcher.set", "[[dispatcher.set]]") {
        let set = parse_set(d, &st, &defaults, first_ip, base, &mut out, &mut lines, &mut names);
        if let Some(set) = set {
            out.dispatcher.sets.push(set);
        }
    }
    out.dispatcher.sets.sort_by_key(|s| s.id);
    out
}

#[allow(clippy::too_many_arguments)]
fn parse_set(
    d: &mut Diag<'_>,
    t: &Table<'_, '_>,
    defaults: &ProbeLayer,
    first_ip: Option<IpAddr>,
    base: &Path,
    out: &mut Parsed,
    lines: &mut HashMap<u32, usize>,
    names: &mut HashMap<String, usize>,
) -> Option<Set> {
    t.check_keys(d, SET_KEYS);
    let errors_before = d.errors.len();

    let id = match t.get("id") {
        None => {
            d.span(&t.span, "[[dispatcher.set]] needs an `id` (the number `select` refers to), like id = 1");
            None
        }
        Some(v) => walk::int_in(d, v, "set id", 0, i64::from(u32::MAX)).map(|n| (n as u32, v.span())),
    };
    let id = match id {
        Some((id, span)) => {
            let (line, _) = d.src.line_col(span.start);
            if let Some(first) = lines.get(&id) {
                d.span(&span, format!("duplicate set id {id} (already used at line {first})"));
            } else {
                lines.insert(id, line);
            }
            out.ids.insert(id);
            Some(id)
        }
        None => {
            out.ids_complete = false;
            None
        }
    };
    let label = id.map_or_else(|| "this set".to_string(), |id| format!("set {id}"));

    let name = t.get("name").and_then(|v| {
        let s = walk::string(d, v, "set name")?;
        if s.trim().is_empty() || s.chars().any(char::is_control) {
            d.span(&v.span(), "set name must be non-empty text on one line");
            return None;
        }
        let (line, _) = d.src.line_col(v.span().start);
        if let Some(first) = names.insert(s.to_string(), line) {
            d.span(&v.span(), format!("duplicate set name \"{s}\" (already used at line {first})"));
        }
        Some(s.to_string())
    });

    let algorithm = match t.get("algorithm") {
        None => {
            d.span(&t.span, format!("{label} needs an `algorithm`, like algorithm = \"round-robin\""));
            None
        }
        Some(v) => algorithm(d, v),
    };

    let hash_pv = match (algorithm, t.get("hash_pv")) {
        (Some(Algorithm::HashPv), None) => {
            let at = t.get("algorithm").map_or(t.span.clone(), |v| v.span());
            d.span(&at, "algorithm hash-pv (7) needs hash_pv, the value to hash, like hash_pv = \"$hdr(X-Account)\"");
            None
        }
        (Some(a), Some(_)) if a != Algorithm::HashPv => {
            d.span(
                &t.key_span("hash_pv"),
                format!(
                    "hash_pv is only used by algorithm hash-pv (7); {label} uses {} ({}): remove hash_pv or change the algorithm",
                    a.name(),
                    a.number()
                ),
            );
            None
        }
        (_, Some(v)) => {
            let s = walk::string(d, v, "hash_pv");
            s.and_then(|s| match lang::parse_pv(s) {
                Ok(pv @ (crate::route::Pv::Status | crate::route::Pv::Reason)) => {
                    d.span(&v.span(), format!("hash_pv {pv} is only set on replies; select runs on requests"));
                    None
                }
                Ok(pv) => Some(pv),
                Err(e) => {
                    let at = d.in_string(&v.span(), s, e.at);
                    d.at(at, format!("hash_pv: {}", e.msg));
                    None
                }
            })
        }
        _ => None,
    };

    // Destinations: inline first, then CSV rows.
    let mut dests = Vec::new();
    let mut seen: HashMap<SocketAddr, String> = HashMap::new();
    let mut any_source = false;
    if let Some(v) = t.get("destinations") {
        any_source = true;
        if let Some(items) = walk::array(d, v, "destinations") {
            for item in items {
                if let Some(dest) = inline_destination(d, item) {
                    let (line, _) = d.src.line_col(item.span().start);
                    if let Some(first) = seen.get(&dest.addr) {
                        d.span(&item.span(), format!("{label} lists {} twice (first at {first})", dest.addr));
                    } else {
                        seen.insert(dest.addr, format!("line {line}"));
                        dests.push(dest);
                    }
                }
            }
        }
    }
    let mut csv_ok = true;
    if let Some(v) = t.get("destinations_csv") {
        any_source = true;
        if let Some(rel) = walk::string(d, v, "destinations_csv") {
            csv_ok = csv_destinations(d, v.span(), rel, base, &label, &mut dests, &mut seen);
        }
    }
    let clean = d.errors.len() == errors_before;
    if !any_source {
        d.span(
            &t.span,
            format!(
                "{label} has no destinations: add destinations = [\"sip:IP:PORT\"] or destinations_csv = \"file.csv\""
            ),
        );
    } else if dests.is_empty() && clean && csv_ok {
        let at = t.get("destinations").or(t.get("destinations_csv")).map_or(t.span.clone(), |v| v.span());
        d.span(&at, format!("{label} has no destinations: give at least one"));
    }

    if algorithm == Some(Algorithm::Weight) && !dests.is_empty() && d.errors.len() == errors_before {
        let sum: u64 = dests.iter().map(|x| u64::from(x.weight)).sum();
        if sum != 100 {
            let at = t.get("algorithm").map_or(t.span.clone(), |v| v.span());
            d.span(
                &at,
                format!(
                    "with algorithm weight (9) the weights of {label} must add up to 100 (they are percentages); they add up to {sum}"
                ),
            );
        }
    }

    let mut layer = defaults.clone();
    if let Some(v) = t.get("probe") {
        layer = layer.with(probe_layer(d, v, "probe"));
    }
    let probe = finish_probe(d, &layer, first_ip);

    Some(Set { id: id?, name, algorithm: algorithm?, hash_pv, destinations: dests, probe: probe? })
}

fn algorithm(d: &mut Diag<'_>, v: &Val<'_>) -> Option<Algorithm> {
    let from_number = |d: &mut Diag<'_>, n: i64| -> Option<Algorithm> {
        if let Some(a) = Algorithm::from_number(n) {
            return Some(a);
        }
        let msg = match n {
            10 => "algorithm 10 (call load) is not available yet: it needs per-destination call counts".to_string(),
            12 => "algorithm 12 (parallel forking to every destination) is the `fork` action in ringsip: \
                   select the set with another algorithm, then `fork` instead of `relay`"
                .to_string(),
            13 => "algorithm 13 (latency-optimized) is not available yet: it needs latency statistics".to_string(),
            _ => format!(
                "unknown algorithm {n} (numbers 0-9 and 11; 10 and 13 are not available yet, 12 is the `fork` action)"
            ),
        };
        d.span(&v.span(), msg);
        None
    };
    match v.get_ref() {
        DeValue::Integer(_) => {
            let n = walk::integer(d, v, "algorithm")?;
            from_number(d, n)
        }
        DeValue::String(s) => {
            if let Some(a) = Algorithm::from_name(s) {
                return Some(a);
            }
            if let Ok(n) = s.trim().parse::<i64>() {
                return from_number(d, n);
            }
            match s.as_ref() {
                "call-load" => return from_number(d, 10),
                "parallel" => return from_number(d, 12),
                "latency" | "latency-optimized" => return from_number(d, 13),
                _ => {}
            }
            let names = Algorithm::ALL.map(Algorithm::name);
            let msg = match closest(s, names) {
                Some(c) => format!("unknown algorithm \"{s}\" (expected a name like \"{c}\" or a number 0-11)"),
                None => format!("unknown algorithm \"{s}\" (expected one of {}, or a number 0-11)", names.join(", ")),
            };
            d.span(&v.span(), msg);
            None
        }
        other => {
            d.span(
                &v.span(),
                format!(
                    "algorithm must be a name like \"round-robin\" or a number 0-11, not {}",
                    walk::describe(other)
                ),
            );
            None
        }
    }
}

/// The fields of a destination as text, from a TOML table or a CSV row.
struct DestFields<'a> {
    uri: &'a str,
    weight: Option<Result<i64, String>>,
    priority: Option<Result<i64, String>>,
    attrs: Option<&'a str>,
    state: Option<&'a str>,
}

/// Validate a destination; on error, which field and the message.
fn destination(f: DestFields<'_>) -> Result<Destination, (&'static str, String)> {
    let addr = values::sip_uri(f.uri.trim()).map_err(|e| ("uri", e))?;
    let weight = match f.weight {
        None => 1,
        Some(Err(e)) => return Err(("weight", e)),
        Some(Ok(n)) => {
            u32::try_from(n).map_err(|_| ("weight", format!("weight {n} is out of range (0 to 4294967295)")))?
        }
    };
    let priority = match f.priority {
        None => 0,
        Some(Err(e)) => return Err(("priority", e)),
        Some(Ok(n)) => {
            i32::try_from(n).map_err(|_| ("priority", format!("priority {n} is out of range (a 32-bit integer)")))?
        }
    };
    let attrs = f.attrs.unwrap_or("");
    if attrs.contains(['\r', '\n']) {
        return Err(("attrs", "attrs cannot contain a line break".to_string()));
    }
    let disabled = match f.state.map(str::trim) {
        None | Some("active") => false,
        Some("disabled") => true,
        Some(s) => return Err(("state", format!("state \"{s}\" is not \"active\" or \"disabled\""))),
    };
    Ok(Destination { uri: f.uri.trim().to_string(), addr, weight, priority, attrs: attrs.to_string(), disabled })
}

fn inline_destination(d: &mut Diag<'_>, v: &Val<'_>) -> Option<Destination> {
    match v.get_ref() {
        DeValue::String(s) => {
            destination(DestFields { uri: s, weight: None, priority: None, attrs: None, state: None })
                .map_err(|(_, e)| d.span(&v.span(), e))
                .ok()
        }
        DeValue::Table(map) => {
            let t = Table::new(map, v.span(), "a destination");
            t.check_keys(d, DEST_KEYS);
            let Some(uv) = t.get("uri") else {
                d.span(&t.span, "a destination table needs a `uri`, like { uri = \"sip:192.0.2.10:5060\" }");
                return None;
            };
            let uri = walk::string(d, uv, "uri");
            let int = |d: &mut Diag<'_>, key: &str| -> Option<Option<Result<i64, String>>> {
                match t.get(key) {
                    None => Some(None),
                    Some(x) => walk::integer(d, x, key).map(|n| Some(Ok(n))),
                }
            };
            let weight = int(d, "weight");
            let priority = int(d, "priority");
            let attrs = t.get("attrs").map(|x| walk::string(d, x, "attrs"));
            let state = t.get("state").map(|x| walk::string(d, x, "state"));
            let (Some(uri), Some(weight), Some(priority)) = (uri, weight, priority) else {
                return None;
            };
            if attrs == Some(None) || state == Some(None) {
                return None;
            }
            let fields = DestFields { uri, weight, priority, attrs: attrs.flatten(), state: state.flatten() };
            destination(fields)
                .map_err(|(field, e)| {
                    let at = t.get(field).map_or(v.span(), |x| x.span());
                    d.span(&at, e);
                })
                .ok()
        }
        other => {
            d.span(
                &v.span(),
                format!(
                    "a destination must be a URI string like \"sip:192.0.2.10:5060\" or a table {{ uri = \"...\", weight = 1 }}, not {}",
                    walk::describe(other)
                ),
            );
            None
        }
    }
}

/// One CSV row, by column name (the header row names the columns; only `uri` is required).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvRow {
    uri: Option<String>,
    weight: Option<String>,
    priority: Option<String>,
    attrs: Option<String>,
    state: Option<String>,
}

/// Read a CSV table of destinations. Returns false when the file could not be used at all.
fn csv_destinations(
    d: &mut Diag<'_>,
    span: Range<usize>,
    rel: &str,
    base: &Path,
    label: &str,
    dests: &mut Vec<Destination>,
    seen: &mut HashMap<SocketAddr, String>,
) -> bool {
    let Some(f) = CsvFile::open(d, &span, "destinations_csv", rel, base) else {
        return false;
    };
    let mut rdr = f.reader();
    let Some((headers, header_line)) = f.headers(d, &mut rdr) else {
        return false;
    };
    let mut header_ok = true;
    let mut columns = BTreeSet::new();
    for h in headers.iter() {
        if !DEST_KEYS.contains(&h) {
            let list = DEST_KEYS.join(", ");
            let msg = match closest(h, DEST_KEYS.iter().copied()) {
                Some(c) => format!("unknown column \"{h}\" in the header row (did you mean \"{c}\"? columns: {list})"),
                None => format!("unknown column \"{h}\" in the header row (columns: {list})"),
            };
            d.push(f.err(header_line, None, msg));
            header_ok = false;
        } else if !columns.insert(h.to_string()) {
            d.push(f.err(header_line, None, format!("column \"{h}\" appears twice in the header row")));
            header_ok = false;
        }
    }
    if header_ok && !columns.contains("uri") {
        d.push(f.err(
            header_line,
            None,
            format!("the header row needs a `uri` column (columns: {}); found \"{}\"", DEST_KEYS.join(", "), {
                headers.iter().collect::<Vec<_>>().join(",")
            }),
        ));
        header_ok = false;
    }
    if !header_ok {
        return false;
    }
    for (i, rec) in rdr.records().enumerate() {
        let row = i + 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                d.push(f.err(f.line_of(e.position()), Some(row), csv_msg(&e)));
                continue;
            }
        };
        let line = f.line_of(rec.position());
        if rec.len() > headers.len() {
            let msg = format!("this row has {} fields but the header row names only {}", rec.len(), headers.len());
            d.push(f.err(line, Some(row), msg));
            continue;
        }
        let r: CsvRow = match rec.deserialize(Some(&headers)) {
            Ok(r) => r,
            Err(e) => {
                d.push(f.err(line, Some(row), csv_msg(&e)));
                continue;
            }
        };
        let Some(uri) = r.uri.as_deref() else {
            d.push(f.err(line, Some(row), "uri is empty".to_string()));
            continue;
        };
        let num = |what: &str, s: &Option<String>| {
            s.as_deref().map(|s| s.parse::<i64>().map_err(|_| format!("{what} \"{s}\" is not a whole number")))
        };
        let fields = DestFields {
            uri,
            weight: num("weight", &r.weight),
            priority: num("priority", &r.priority),
            attrs: r.attrs.as_deref(),
            state: r.state.as_deref(),
        };
        match destination(fields) {
            Ok(dest) => {
                if let Some(first) = seen.get(&dest.addr) {
                    d.push(f.err(line, Some(row), format!("{label} lists {} twice (first at {first})", dest.addr)));
                } else {
                    seen.insert(dest.addr, format!("{rel} row {row}"));
                    dests.push(dest);
                }
            }
            Err((_, e)) => d.push(f.err(line, Some(row), e)),
        }
    }
    true
}

/// Probe settings as given at one level (dispatcher default or set), each optional.
#[derive(Debug, Clone, Default)]
struct ProbeLayer {
    mode: Option<ProbeMode>,
    method: Option<String>,
    interval: Option<(Duration, Range<usize>)>,
    timeout: Option<(Duration, Range<usize>)>,
    failure_threshold: Option<u32>,
    success_threshold: Option<u32>,
    up_codes: Option<Vec<CodeRange>>,
    from: Option<String>,
    /// A key failed to read: the final probe is not valid.
    bad: bool,
}

impl ProbeLayer {
    /// `self` overridden key by key by `over`.
    fn with(self, over: ProbeLayer) -> ProbeLayer {
        ProbeLayer {
            mode: over.mode.or(self.mode),
            method: over.method.or(self.method),
            interval: over.interval.or(self.interval),
            timeout: over.timeout.or(self.timeout),
            failure_threshold: over.failure_threshold.or(self.failure_threshold),
            success_threshold: over.success_threshold.or(self.success_threshold),
            up_codes: over.up_codes.or(self.up_codes),
            from: over.from.or(self.from),
            bad: self.bad || over.bad,
        }
    }
}

fn probe_layer(d: &mut Diag<'_>, v: &Val<'_>, what: &str) -> ProbeLayer {
    let mut l = ProbeLayer::default();
    let Some(t) = walk::table(d, v, what) else {
        l.bad = true;
        return l;
    };
    t.check_keys(d, PROBE_KEYS);
    let before = d.errors.len();
    if let Some(v) = t.get("mode") {
        l.mode = walk::string(d, v, "probe.mode").and_then(|s| match s {
            "all" => Some(ProbeMode::All),
            "inactive" => Some(ProbeMode::Inactive),
            "none" => Some(ProbeMode::None),
            _ => {
                d.span(&v.span(), format!("probe mode \"{s}\" is not \"all\", \"inactive\" or \"none\""));
                None
            }
        });
    }
    if let Some(v) = t.get("method") {
        l.method = walk::string(d, v, "probe.method").and_then(|s| {
            if values::is_token(s) {
                Some(s.to_string())
            } else {
                d.span(&v.span(), format!("probe method \"{s}\" is not a SIP method name (like OPTIONS)"));
                None
            }
        });
    }
    let dur = |d: &mut Diag<'_>, key: &str, min: Duration| -> Option<(Duration, Range<usize>)> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => {
                d.span(&v.span(), format!("probe.{key} = {i} needs a unit: write \"{i}s\" or \"{i}ms\""));
                None
            }
            _ => {
                let s = walk::string(d, v, &format!("probe.{key}"))?;
                match values::duration(s) {
                    Ok(x) if x < min => {
                        d.span(
                            &v.span(),
                            format!("probe.{key} \"{s}\" is too short (at least {})", show_duration(min)),
                        );
                        None
                    }
                    Ok(x) => Some((x, v.span())),
                    Err(e) => {
                        d.span(&v.span(), format!("probe.{key}: {e}"));
                        None
                    }
                }
            }
        }
    };
    l.interval = dur(d, "interval", MIN_PROBE_INTERVAL);
    l.timeout = dur(d, "timeout", Duration::from_millis(1));
    if let Some(v) = t.get("failure_threshold") {
        l.failure_threshold = walk::int_in(d, v, "probe.failure_threshold", 1, 1_000_000).map(|n| n as u32);
    }
    if let Some(v) = t.get("success_threshold") {
        l.success_threshold = walk::int_in(d, v, "probe.success_threshold", 1, 1_000_000).map(|n| n as u32);
    }
    if let Some(v) = t.get("up_codes")
        && let Some(items) = walk::array(d, v, "probe.up_codes")
    {
        let mut codes = Vec::new();
        for item in items {
            let r = match item.get_ref() {
                DeValue::Integer(_) => walk::integer(d, item, "an up_codes entry").map(|n| n.to_string()),
                _ => walk::string(d, item, "an up_codes entry").map(str::to_string),
            };
            if let Some(text) = r {
                match values::code_range(&text) {
                    Ok(c) => codes.push(c),
                    Err(e) => d.span(&item.span(), format!("probe.up_codes: {e}")),
                }
            }
        }
        if items.is_empty() {
            d.span(&v.span(), "probe.up_codes is empty: no answer would count (the default is [\"2xx\"])");
        }
        l.up_codes = Some(codes);
    }
    if let Some(v) = t.get("from") {
        l.from = walk::string(d, v, "probe.from").and_then(|s| {
            let lower = s.to_ascii_lowercase();
            let uri_like = (lower.starts_with("sip:") || lower.starts_with("sips:"))
                && s.len() > 5
                && !s.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\"".contains(c));
            if uri_like {
                Some(s.to_string())
            } else {
                d.span(&v.span(), format!("probe.from \"{s}\" must be a SIP URI like \"sip:ringsip@192.0.2.1\""));
                None
            }
        });
    }
    l.bad = d.errors.len() != before;
    l
}

/// Defaults filled in; the timeout checked against the interval.
fn finish_probe(d: &mut Diag<'_>, l: &ProbeLayer, first_ip: Option<IpAddr>) -> Option<Probe> {
    let interval = l.interval.as_ref().map_or(DEFAULT_PROBE_INTERVAL, |(x, _)| *x);
    let timeout = l.timeout.as_ref().map_or(interval, |(x, _)| *x);
    if timeout > interval {
        let at = l.timeout.as_ref().map(|(_, s)| s.clone()).unwrap_or_default();
        d.span(
            &at,
            format!(
                "probe timeout {} is longer than the probe interval {} (it must be at most the interval)",
                show_duration(timeout),
                show_duration(interval)
            ),
        );
        return None;
    }
    if l.bad {
        return None;
    }
    let from = l.from.clone().unwrap_or_else(|| match first_ip {
        Some(IpAddr::V6(ip)) => format!("sip:ringsip@[{ip}]"),
        Some(ip) => format!("sip:ringsip@{ip}"),
        None => "sip:ringsip@127.0.0.1".to_string(),
    });
    Some(Probe {
        mode: l.mode.unwrap_or_default(),
        method: l.method.clone().unwrap_or_else(|| "OPTIONS".to_string()),
        interval,
        timeout,
        failure_threshold: l.failure_threshold.unwrap_or(3),
        success_threshold: l.success_threshold.unwrap_or(1),
        up_codes: l.up_codes.clone().unwrap_or_else(|| vec![CodeRange { lo: 200, hi: 299 }]),
        from,
    })
}
