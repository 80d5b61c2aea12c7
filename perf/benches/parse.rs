//! ringsip-proto against rsip on the same messages, in one run.
//!
//! Groups, each with one benchmark per sample message (`invite`, `ok_200`, `ack`,
//! `register`) and throughput in bytes so criterion shows MB/s:
//!
//! * `index`: [`Message::parse_into`] alone (framing + header index) into a reused slot, as
//!   a receive loop parses; `index_move`: the by-value [`Message::parse`].
//! * `proxy_fields`: parse + what a stateless proxy reads ([`proxy_fields`]).
//! * `forward`: parse + proxy fields + the forwarding edit list + write into a reused
//!   2 KiB buffer ([`forward`]).
//! * `validate`: parse + [`Message::validate`] (the full grammar check sipcheck runs).
//! * `rsip`: `rsip::SipMessage::try_from(&[u8])`.
//! * `rsip_proxy_fields`: rsip parse + the same fields through rsip's typed API.
//!
//! What rsip does differently, and why `rsip_proxy_fields` is only "as close as rsip
//! allows":
//!
//! * rsip's parse already copies every header value into its own `String` (and the body
//!   into a `Vec<u8>`), classifies each header name by a chain of case-insensitive string
//!   compares, and fully parses the Request-URI / status line. ringsip indexes byte ranges
//!   into the caller's buffer and parses typed values lazily, on first use.
//! * A typed header in rsip is built from the untyped one by `typed()`, which clones the
//!   header's `String` and runs a nom tokenizer that allocates a `Vec` of parameters, each
//!   an owned `String`. The header is found by a linear scan of a `Vec<Header>` enum.
//!   ringsip finds a header through a per-name first-index table.
//! * rsip has no `rport` accessor: it is a `Param::Other("rport", value)` found by a scan
//!   of the Via params comparing strings. Branch and received have typed params.
//! * rsip's Max-Forwards is `str::parse::<u32>()` of the untyped value; ringsip's is
//!   range-checked to 0–255.
//! * rsip's typed Route is the whole comma list (`Vec<UriWithParams>`); we take the first.
//!   ringsip parses only the first element (`routes().next()`).
//! * rsip checks far less than ringsip's `validate` (unknown header names and most header
//!   grammars are never looked at), so there is no rsip counterpart of `validate`.
//! * rsip has no edit-list writer: forwarding with rsip would mean mutating the owned
//!   message and re-serialising it with `to_string()`, so there is no rsip `forward` group.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringsip_perf::proxy::{forward, proxy_fields};
use ringsip_perf::samples::ALL;
use ringsip_proto::Message;
use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::message::{HasHeaders, HeadersExt};

/// The fields of [`ringsip_perf::proxy::ProxyFields`], read through rsip.
#[derive(Debug)]
#[allow(dead_code)] // only black-boxed
struct RsipFields<'m> {
    via_branch: Option<rsip::param::Branch>,
    via_host: rsip::Host,
    via_port: Option<rsip::Port>,
    via_rport: Option<Option<rsip::param::OtherParamValue>>,
    max_forwards: Option<u32>,
    request_uri: Option<&'m rsip::Uri>,
    first_route: Option<rsip::UriWithParams>,
    call_id: &'m str,
    cseq: rsip::typed::CSeq,
}

fn rsip_proxy_fields(msg: &rsip::SipMessage) -> Result<RsipFields<'_>, rsip::Error> {
    let via = msg.via_header()?.typed()?;
    let via_rport = via.params.iter().find_map(|p| match p {
        rsip::Param::Other(name, value) if name.value().eq_ignore_ascii_case("rport") => Some(value.clone()),
        _ => None,
    });
    let request_uri = match msg {
        rsip::SipMessage::Request(r) => Some(r.uri()),
        rsip::SipMessage::Response(_) => None,
    };
    // Absent in responses. `max_forwards_header()` would build an error with an owned
    // `String` for that; find it the way rsip's `header_opt!` does instead, which is cheaper.
    let max_forwards = match msg.headers().iter().find_map(|h| match h {
        rsip::Header::MaxForwards(m) => Some(m),
        _ => None,
    }) {
        Some(h) => Some(h.num()?),
        None => None,
    };
    let first_route = match msg.route_header() {
        Some(route) => route.typed()?.0.0.into_iter().next(),
        None => None,
    };
    Ok(RsipFields {
        via_branch: via.branch().cloned(),
        via_host: via.uri.host_with_port.host,
        via_port: via.uri.host_with_port.port,
        via_rport,
        max_forwards,
        request_uri,
        first_route,
        call_id: msg.call_id_header()?.value(),
        cseq: msg.cseq_header()?.typed()?,
    })
}

/// Refuse to benchmark anything that does not parse: a parser that fails fast would win.
fn check_samples() {
    let mut out = [0u8; 2048];
    for (name, raw) in ALL {
        let msg = Message::parse(raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        msg.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        let f = proxy_fields(&msg).unwrap_or_else(|e| panic!("{name}: {e}"));
        forward(&msg, &f, &mut out).unwrap_or_else(|e| panic!("{name}: {e}"));
        let r = rsip::SipMessage::try_from(raw).unwrap_or_else(|e| panic!("rsip {name}: {e:?}"));
        let rf = rsip_proxy_fields(&r).unwrap_or_else(|e| panic!("rsip {name}: {e:?}"));
        assert_eq!(rf.call_id.as_bytes(), f.call_id, "{name}");
        assert_eq!(rf.cseq.seq, f.cseq.number, "{name}");
        assert_eq!(rf.max_forwards, f.max_forwards.map(u32::from), "{name}");
        assert_eq!(rf.via_branch.map(|b| b.to_string().into_bytes()), f.via_branch.map(<[u8]>::to_vec), "{name}");
        assert_eq!(rf.first_route.is_some(), f.first_route.is_some(), "{name}");
        assert_eq!(rf.via_rport.is_some(), f.via_rport.is_some(), "{name}");
    }
}

fn benches(c: &mut Criterion) {
    check_samples();
    let settings = |g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>| {
        g.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(50);
    };

    // `index`, `proxy_fields` and `forward` parse the way a receive loop does: into one
    // `Message` slot reused for every datagram (`parse_into`), so the ~1 KiB index is filled
    // in place. `index_move` is the by-value `Message::parse` for comparison.
    let mut g = c.benchmark_group("index");
    settings(&mut g);
    for (name, raw) in ALL {
        g.throughput(Throughput::Bytes(raw.len() as u64));
        let mut msg = Message::new();
        g.bench_function(name, |b| {
            b.iter(|| {
                msg.parse_into(black_box(raw)).unwrap();
                black_box(&msg);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("index_move");
    settings(&mut g);
    for (name, raw) in ALL {
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let msg = Message::parse(black_box(raw)).unwrap();
                black_box(&msg);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("proxy_fields");
    settings(&mut g);
    for (name, raw) in ALL {
        g.throughput(Throughput::Bytes(raw.len() as u64));
        let mut msg = Message::new();
        g.bench_function(name, |b| {
            b.iter(|| {
                msg.parse_into(black_box(raw)).unwrap();
                black_box(proxy_fields(&msg).unwrap());
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("forward");
    settings(&mut g);
    let mut out = [0u8; 2048];
    for (name, raw) in ALL {
        g.throughput(Throughput::Bytes(raw.len() as u64));
        let mut msg = Message::new();
        g.bench_function(name, |b| {
            b.iter(|| {
                msg.parse_into(black_box(raw)).unwrap();
                let fields = black_box(proxy_fields(&msg).unwrap());
                let n = forward(&msg, &fields, &mut out).unwrap();
                black_box(&out[..n]);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("validate");
    settings(&mut g);
    for (name, raw) in ALL {
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let msg = Message::parse(black_box(raw)).unwrap();
                black_box(msg.validate().is_ok())
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("rsip");
    settings(&mut g);
    for (name, raw) in ALL {
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function(name, |b| b.iter(|| rsip::SipMessage::try_from(black_box(raw)).unwrap()));
    }
    g.finish();

    let mut g = c.benchmark_group("rsip_proxy_fields");
    settings(&mut g);
    for (name, raw) in ALL {
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let msg = rsip::SipMessage::try_from(black_box(raw)).unwrap();
                black_box(&rsip_proxy_fields(&msg).unwrap());
                msg
            })
        });
    }
    g.finish();
}

criterion_group!(parse, benches);
criterion_main!(parse);
