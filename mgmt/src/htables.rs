//! The htable commands of the control socket, and the htable metrics.

use std::time::{Duration, Instant};

use ringsip_modules::htable::{Htable, Value as HValue};
use ringsip_modules::stateless::Shared;
use ringsip_runtime::{Kind, Metric};
use serde_json::{Value as J, json};

use crate::control::{ErrorKind, Response, Value};

fn table<'s>(cur: &'s Shared, name: &str) -> Result<&'s Htable, Response> {
    cur.htables.by_name(name).map(|t| &**t).ok_or_else(|| {
        let known: Vec<&str> = cur.htables.iter().map(|t| t.name()).collect();
        Response::err(
            ErrorKind::NotFound,
            if known.is_empty() {
                format!("htable {name} does not exist (the running config has no htables)")
            } else {
                format!("htable {name} does not exist (tables: {})", known.join(", "))
            },
        )
    })
}

fn value_json(v: &HValue) -> J {
    match v {
        HValue::Int(i) => json!(i),
        HValue::Text(t) => json!(String::from_utf8_lossy(t)),
    }
}

fn remaining(r: Option<Duration>) -> J {
    r.map_or(J::Null, |d| json!(d.as_secs_f64().ceil() as u64))
}

/// `htable get`.
pub fn get(cur: &Shared, name: &str, key: &str) -> Response {
    let t = match table(cur, name) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match t.get(key.as_bytes(), Instant::now(), value_json) {
        Some(v) => Response::ok(json!({ "table": name, "key": key, "value": v })),
        None => Response::err(ErrorKind::NotFound, format!("no key {key:?} in htable {name}")),
    }
}

/// `htable set`.
pub fn set(cur: &Shared, name: &str, key: &str, value: Value, expires: Option<u64>) -> Response {
    let t = match table(cur, name) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if key.is_empty() || key.len() > 255 {
        return Response::err(ErrorKind::BadRequest, "a key is 1 to 255 bytes");
    }
    let v = match &value {
        Value::Int(i) => HValue::Int(*i),
        Value::Text(s) => HValue::Text(s.as_bytes().into()),
    };
    match t.set(key.as_bytes(), v, expires.map(Duration::from_secs), Instant::now()) {
        Ok(()) => Response::ok(json!({ "table": name, "key": key, "value": crate::plane::value_json(&value) })),
        Err(e) => Response::err(ErrorKind::Refused, format!("htable {name}: {e}")),
    }
}

/// `htable delete`.
pub fn delete(cur: &Shared, name: &str, key: &str) -> Response {
    let t = match table(cur, name) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if t.delete(key.as_bytes()) {
        Response::ok(json!({ "table": name, "key": key, "deleted": true }))
    } else {
        Response::err(ErrorKind::NotFound, format!("no key {key:?} in htable {name}"))
    }
}

/// `htable dump`: one table's entries, or every table's size.
pub fn dump(cur: &Shared, name: Option<&str>) -> Response {
    let now = Instant::now();
    match name {
        None => Response::ok(json!({
            "tables": cur.htables.iter().map(|t| {
                let spec = t.spec();
                json!({
                    "name": t.name(),
                    "entries": t.len(),
                    "max_entries": spec.max_entries,
                    "autoexpire_s": spec.autoexpire.map(|d| d.as_secs()),
                })
            }).collect::<Vec<_>>()
        })),
        Some(name) => {
            let t = match table(cur, name) {
                Ok(t) => t,
                Err(r) => return r,
            };
            let entries: Vec<J> = t
                .dump(now)
                .into_iter()
                .map(|(k, v, left)| {
                    json!({
                        "key": String::from_utf8_lossy(&k),
                        "value": value_json(&v),
                        "expires_in_s": remaining(left),
                    })
                })
                .collect();
            Response::ok(json!({ "table": name, "entries": entries }))
        }
    }
}

/// `htable flush`.
pub fn flush(cur: &Shared, name: &str) -> Response {
    let t = match table(cur, name) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let n = t.flush();
    Response::ok(json!({ "table": name, "removed": n }))
}

/// htable sizes and counters, per table.
pub fn visit(cur: &Shared, sink: &mut dyn FnMut(&Metric<'_>)) {
    for t in cur.htables.iter() {
        let labels = [("table", t.name())];
        let st = t.stats();
        let mut m = |name: &str, help: &str, kind: Kind, value: u64| {
            sink(&Metric { name, help, kind, labels: &labels, value });
        };
        m("ringsip_htable_entries", "entries in an htable (expired ones until swept)", Kind::Gauge, t.len() as u64);
        m("ringsip_htable_sets_total", "htable writes", Kind::Counter, st.sets);
        m("ringsip_htable_incs_total", "htable increments", Kind::Counter, st.incs);
        m("ringsip_htable_deletes_total", "htable deletions", Kind::Counter, st.deletes);
        m("ringsip_htable_refused_full_total", "htable writes refused: table full", Kind::Counter, st.refused_full);
        m("ringsip_htable_expired_total", "htable entries removed by expiry", Kind::Counter, st.expired);
    }
}
