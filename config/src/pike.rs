//! `[pike]`: flood detection per source IP (see [`Pike`]). `limit` is required; `window`
//! and `max_sources` are optional.

use std::time::Duration;

use crate::Pike;
use crate::error::Diag;
use crate::values::{self, show_duration};
use crate::walk::{self, Table};

const KEYS: &[&str] = &["window", "limit", "max_sources"];

/// `window`: 100 ms to 60 s.
const WINDOW: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(60));
/// `limit`: 1 to 1,000,000 requests per window.
const LIMIT: (i64, i64) = (1, 1_000_000);
/// `max_sources`: 1,000 to 100,000,000.
const MAX_SOURCES: (i64, i64) = (1_000, 100_000_000);

/// Default `window`: Kamailio pike's usual 2 s sampling unit.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(2);
/// Default `max_sources`.
pub const DEFAULT_MAX_SOURCES: usize = 1_000_000;

pub(crate) fn parse(d: &mut Diag<'_>, t: &Table<'_, '_>) -> Option<Pike> {
    t.check_keys(d, KEYS);
    let mut ok = true;
    let window = match walk::duration_key(d, t, "pike", "window", values::duration, "\"2s\"", &mut ok) {
        None => Some(DEFAULT_WINDOW),
        Some((x, span, text)) if x < WINDOW.0 || x > WINDOW.1 => {
            d.span(
                &span,
                format!(
                    "pike.window \"{text}\" is out of range ({} to {})",
                    show_duration(WINDOW.0),
                    show_duration(WINDOW.1)
                ),
            );
            None
        }
        Some((x, ..)) => Some(x),
    };
    let limit = match t.get("limit") {
        None => {
            d.span(&t.span, "[pike] needs `limit`: the most requests one source may send per window, like limit = 200");
            None
        }
        Some(v) => walk::int_in(d, v, "pike.limit", LIMIT.0, LIMIT.1).map(|n| n as u32),
    };
    let max_sources = match t.get("max_sources") {
        None => Some(DEFAULT_MAX_SOURCES),
        Some(v) => walk::int_in(d, v, "pike.max_sources", MAX_SOURCES.0, MAX_SOURCES.1).map(|n| n as usize),
    };
    if !ok {
        return None;
    }
    Some(Pike { window: window?, limit: limit?, max_sources: max_sources? })
}
