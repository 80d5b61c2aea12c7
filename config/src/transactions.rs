//! `[transactions]`: the timers and limits of the transaction-stateful proxy (see
//! [`Transactions`]). Every key is optional.

use std::ops::Range;
use std::time::Duration;

use toml::de::DeValue;

use crate::error::Diag;
use crate::values::{self, show_duration};
use crate::walk::{self, Table};
use crate::{DEFAULT_MAX_TRANSACTIONS_PER_SHARD, DEFAULT_RETRY_AFTER, DEFAULT_T1, DEFAULT_T2, DEFAULT_T4};
use crate::{DEFAULT_TIMER_C, Transactions};

const KEYS: &[&str] = &["t1", "t2", "t4", "timer_c", "no_reply_timeout", "max_per_shard", "retry_after"];

/// `t1`: 10 ms to 10 s.
const T1: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(10));
/// `t2`: up to 60 s (and at least `t1`).
const MAX_T2: Duration = Duration::from_secs(60);
/// `t4`: 1 s to 60 s.
const T4: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));
/// `timer_c`: 1 s to 24 h.
const TIMER_C: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(24 * 3600));
/// The shortest `no_reply_timeout` (the longest is 64*`t1`).
const MIN_NO_REPLY: Duration = Duration::from_millis(100);
/// `max_per_shard`: 16 to 10,000,000.
const MAX_PER_SHARD: (i64, i64) = (16, 10_000_000);
/// `retry_after`: 0 to 3600 seconds.
const MAX_RETRY_AFTER: i64 = 3600;

pub(crate) fn parse(d: &mut Diag<'_>, t: &Table<'_, '_>) -> Option<Transactions> {
    t.check_keys(d, KEYS);
    let mut ok = true;

    let mut ranged = |d: &mut Diag<'_>, key: &str, (lo, hi): (Duration, Duration)| -> Option<Duration> {
        let (x, span, text) = duration(d, t, key, &mut ok)?;
        if x < lo || x > hi {
            d.span(
                &span,
                format!(
                    "transactions.{key} \"{text}\" is out of range ({} to {})",
                    show_duration(lo),
                    show_duration(hi)
                ),
            );
            ok = false;
            return None;
        }
        Some(x)
    };
    let t1 = ranged(d, "t1", T1);
    let t4 = ranged(d, "t4", T4);
    let timer_c = ranged(d, "timer_c", TIMER_C);

    // t2: at least t1 (default 4 s, or t1 when t1 is longer).
    let t1_ok = t.get("t1").is_none() || t1.is_some();
    let t1 = t1.unwrap_or(DEFAULT_T1);
    let t2 = match duration(d, t, "t2", &mut ok) {
        None => Some(DEFAULT_T2.max(t1)),
        Some((x, span, text)) => {
            if x > MAX_T2 {
                d.span(
                    &span,
                    format!("transactions.t2 \"{text}\" is out of range (at most {})", show_duration(MAX_T2)),
                );
                None
            } else if t1_ok && x < t1 {
                d.span(
                    &span,
                    format!(
                        "transactions.t2 \"{text}\" is shorter than t1 ({}): T2 caps retransmission intervals that start at T1, so it must be at least t1",
                        show_duration(t1)
                    ),
                );
                None
            } else {
                Some(x)
            }
        }
    };
    ok &= t2.is_some();

    // no_reply_timeout: 100 ms to 64*t1 (default 64*t1).
    let max_no_reply = t1 * 64;
    let no_reply_timeout = match duration(d, t, "no_reply_timeout", &mut ok) {
        None => Some(max_no_reply),
        Some((x, span, text)) => {
            if x < MIN_NO_REPLY {
                d.span(
                    &span,
                    format!(
                        "transactions.no_reply_timeout \"{text}\" is too short (at least {})",
                        show_duration(MIN_NO_REPLY)
                    ),
                );
                None
            } else if t1_ok && x > max_no_reply {
                d.span(
                    &span,
                    format!(
                        "transactions.no_reply_timeout \"{text}\" is longer than 64*t1 ({}): RFC 3261's Timers B and F are 64*T1, so a longer wait needs a longer t1",
                        show_duration(max_no_reply)
                    ),
                );
                None
            } else {
                Some(x)
            }
        }
    };
    ok &= no_reply_timeout.is_some();

    let max_per_shard = match t.get("max_per_shard") {
        None => Some(DEFAULT_MAX_TRANSACTIONS_PER_SHARD),
        Some(v) => {
            walk::int_in(d, v, "transactions.max_per_shard", MAX_PER_SHARD.0, MAX_PER_SHARD.1).map(|n| n as usize)
        }
    };
    let retry_after = match t.get("retry_after") {
        None => Some(DEFAULT_RETRY_AFTER),
        Some(v) => walk::int_in(d, v, "transactions.retry_after", 0, MAX_RETRY_AFTER).map(|n| n as u32),
    };
    ok &= max_per_shard.is_some() && retry_after.is_some();

    if !ok || !t1_ok {
        return None;
    }
    Some(Transactions {
        t1,
        t2: t2?,
        t4: t4.unwrap_or(DEFAULT_T4),
        timer_c: timer_c.unwrap_or(DEFAULT_TIMER_C),
        no_reply_timeout: no_reply_timeout?,
        max_per_shard: max_per_shard?,
        retry_after: retry_after?,
    })
}

/// A duration key: `None` when absent; when present but unreadable, the problem is reported,
/// `ok` is cleared and `None` returned. Otherwise the duration, its span and the text.
fn duration<'t>(
    d: &mut Diag<'_>,
    t: &Table<'t, '_>,
    key: &str,
    ok: &mut bool,
) -> Option<(Duration, Range<usize>, &'t str)> {
    let v = t.get(key)?;
    let what = format!("transactions.{key}");
    let read = match v.get_ref() {
        DeValue::Integer(i) => {
            d.span(&v.span(), format!("{what} = {i} needs a unit: write \"{i}ms\" or \"{i}s\""));
            None
        }
        _ => walk::string(d, v, &what).and_then(|s| match values::duration(s) {
            Ok(x) => Some((x, v.span(), s)),
            Err(e) => {
                d.span(&v.span(), format!("{what}: {e}"));
                None
            }
        }),
    };
    *ok &= read.is_some();
    read
}
