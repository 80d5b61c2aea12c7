//! `Message::parse` and `Message::parse_stream` on arbitrary bytes: every typed accessor is
//! exercised and the framing/indexing invariants are checked. Any panic is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsip_proto::addr::NameAddr;
use ringsip_proto::message::Status;
use ringsip_proto::values::ContactValue;
use ringsip_proto::{HeaderName, Message, Params, Uri};

/// Is `inner` a sub-slice of `outer` (by address)? Empty slices may point anywhere (a
/// `b""` constant for an absent part), so they are accepted.
fn within(outer: &[u8], inner: &[u8]) -> bool {
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    inner.is_empty() || (i.start >= o.start && i.end <= o.end)
}

fn check_in(outer: &[u8], inner: &[u8], what: &str) {
    assert!(within(outer, inner), "{what}: slice not inside the input");
}

fn walk_params(buf: &[u8], p: Params<'_>) {
    check_in(buf, p.as_bytes(), "params");
    let _ = p.is_empty();
    for (n, v) in p.iter() {
        check_in(buf, n, "param name");
        if let Some(v) = v {
            check_in(buf, v, "param value");
        }
    }
    let _ = p.get(b"lr");
    let _ = p.value(b"tag");
    let _ = p.contains(b"transport");
}

fn walk_uri(buf: &[u8], u: &Uri<'_>) {
    check_in(buf, u.as_bytes(), "uri");
    let _ = u.scheme();
    let _ = u.is_sip();
    if let Some(x) = u.user() {
        check_in(buf, x, "uri user");
    }
    if let Some(it) = u.user_unescaped() {
        let _ = it.count();
    }
    if let Some(x) = u.password() {
        check_in(buf, x, "uri password");
    }
    if let Some(h) = u.host() {
        let _ = h.ip();
    }
    check_in(buf, u.host_bytes(), "uri host");
    let _ = u.port();
    walk_params(buf, u.params());
    if let Some(x) = u.headers() {
        check_in(buf, x, "uri headers");
    }
    let _ = u.is_loose_router();
    if let Some(x) = u.opaque() {
        check_in(buf, x, "uri opaque");
    }
}

fn walk_name_addr(buf: &[u8], a: &NameAddr<'_>) {
    if let Some(d) = a.display_name() {
        check_in(buf, d, "display name");
    }
    if let Some(it) = a.display_name_unquoted() {
        let _ = it.count();
    }
    walk_uri(buf, a.uri());
    let _ = a.is_bracketed();
    walk_params(buf, a.params());
    if let Some(t) = a.tag() {
        check_in(buf, t, "tag");
    }
}

fn walk_via(buf: &[u8], v: &ringsip_proto::Via<'_>) {
    check_in(buf, v.as_bytes(), "via");
    let _ = v.transport();
    let _ = v.transport().is_reliable();
    check_in(buf, v.transport_bytes(), "via transport");
    let _ = v.host().ip();
    check_in(buf, v.host_bytes(), "via host");
    let _ = v.port();
    walk_params(buf, v.params());
    if let Some(b) = v.branch() {
        check_in(buf, b, "via branch");
    }
    let _ = v.is_rfc3261_branch();
    let _ = v.received();
    let _ = v.rport();
    let _ = v.maddr();
    let _ = v.ttl();
}

/// Everything a caller may ask of a parsed message; returns a summary used to compare a
/// message with its re-parse.
fn exercise(buf: &[u8], msg: &Message<'_>) -> (bool, bool) {
    let valid = msg.validate().is_ok();
    let _ = msg.start_line();
    let _ = msg.is_request();
    let _ = msg.method();
    let _ = msg.method_bytes();
    let _ = msg.status();
    if let Ok(u) = msg.request_uri() {
        walk_uri(buf, u);
    }
    let _ = msg.request_uri_scheme();
    if let Ok(v) = msg.via() {
        walk_via(buf, v);
    }
    for v in msg.vias().flatten() {
        walk_via(buf, &v);
    }
    if let Ok(c) = msg.call_id() {
        check_in(buf, c, "call-id");
    }
    if let Ok(c) = msg.cseq() {
        check_in(buf, c.method, "cseq method");
    }
    if let Ok(a) = msg.from() {
        walk_name_addr(buf, a);
    }
    if let Ok(a) = msg.to() {
        walk_name_addr(buf, a);
    }
    let _ = msg.has_to_tag();
    let _ = msg.max_forwards();
    let _ = msg.expires();
    if let Ok(Some(ct)) = msg.content_type() {
        check_in(buf, ct.kind, "content-type");
        check_in(buf, ct.subtype, "content-subtype");
        walk_params(buf, ct.params);
        let _ = ct.is_sdp();
    }
    let sdp_ok = match msg.sdp() {
        Ok(Some(sdp)) => {
            check_in(buf, sdp.body(), "sdp body");
            for m in sdp.media() {
                check_in(buf, m.section, "sdp media section");
                let _ = m.attributes().count();
                let _ = m.rtpmaps().count();
                let _ = m.fmtps().count();
                let _ = m.formats().count();
            }
            true
        }
        Ok(None) => true,
        Err(_) => false,
    };
    for c in msg.contacts().flatten() {
        if let ContactValue::Addr(a) = c {
            walk_name_addr(buf, &a);
        }
    }
    for a in msg.routes().flatten() {
        walk_name_addr(buf, &a);
    }
    for a in msg.record_routes().flatten() {
        walk_name_addr(buf, &a);
    }
    let mut seen = [false; 256];
    for h in msg.headers() {
        check_in(buf, h.raw_name, "header name");
        check_in(buf, h.value, "header value");
        assert_eq!(h.name, HeaderName::from_bytes(h.raw_name));
        let _ = msg.headers_by_raw_name(h.raw_name).count();
        let k = h.name as usize;
        if !seen[k] {
            seen[k] = true;
            assert!(msg.header(h.name).is_some());
            let _ = msg.first_index(h.name);
            for v in msg.values(h.name).flatten() {
                check_in(buf, v, "header list value");
            }
            assert!(msg.headers_named(h.name).count() >= 1);
        }
    }
    (valid, sdp_ok)
}

fn check_index(data: &[u8], msg: &Message<'_>) {
    let buf = msg.buffer();
    assert_eq!(buf.as_ptr(), data.as_ptr());
    assert_eq!(buf.len(), data.len());
    let bytes = msg.as_bytes();
    check_in(data, bytes, "as_bytes");
    assert_eq!(bytes.as_ptr() as usize - data.as_ptr() as usize, msg.start_offset());
    assert_eq!(msg.start_offset() + bytes.len(), msg.end_offset());
    assert!(msg.start_offset() < msg.body_offset(), "start after body");
    assert!(msg.body_offset() <= msg.end_offset(), "body offset past the end");
    assert!(msg.end_offset() <= data.len());
    // only CR / LF before the start line
    assert!(data[..msg.start_offset()].iter().all(|&b| b == b'\r' || b == b'\n'));
    let body = msg.body();
    check_in(data, body, "body");
    assert_eq!(body.len(), msg.end_offset() - msg.body_offset());
    if let Some(cl) = msg.content_length() {
        assert_eq!(body.len(), cl as usize, "body length differs from Content-Length");
        assert!(msg.header(HeaderName::ContentLength).is_some());
    } else {
        assert!(msg.header(HeaderName::ContentLength).is_none());
        assert_eq!(msg.end_offset(), data.len(), "no Content-Length: body is the rest");
    }
    // header index: in bounds and in order
    let entries = msg.entries();
    assert_eq!(entries.len(), msg.header_count());
    let first_line_end = memchr_nl(data, msg.start_offset()).expect("start line has no LF") + 1;
    let mut prev_end = first_line_end;
    for (i, e) in entries.iter().enumerate() {
        let l = msg.line_range(i);
        let raw_name = msg.raw_name(i);
        check_in(data, raw_name, "raw name");
        let n = e.start()..e.start() + raw_name.len();
        let v = e.value_range();
        assert_eq!(l.start, e.start());
        assert_eq!(l.start, prev_end, "header lines not contiguous");
        assert!(n.start < n.end, "empty header name");
        assert!(n.end < v.start, "value starts before the colon");
        assert!(v.start <= v.end, "value range reversed");
        assert!(v.end <= l.end, "value past line end");
        assert!(l.end <= msg.body_offset(), "header line past the body");
        assert_eq!(data[l.end - 1], b'\n', "header line does not end with LF");
        assert_eq!(HeaderName::from_bytes(&data[n.clone()]), e.name());
        // the colon sits between the name and the value
        assert!(data[n.end..v.start].contains(&b':'), "no colon before the value");
        prev_end = l.end;
    }
    assert_eq!(msg.header_end(), prev_end, "header_end is not the end of the last line");
    // then the empty line
    let blank = &data[prev_end..msg.body_offset()];
    assert!(blank == b"\r\n" || blank == b"\n", "header section not closed by an empty line");
}

fn memchr_nl(data: &[u8], from: usize) -> Option<usize> {
    data[from..].iter().position(|&b| b == b'\n').map(|p| from + p)
}

fn check_stream(data: &[u8]) {
    let Ok(Status::Complete((m, used))) = Message::parse_stream(data) else {
        return;
    };
    assert!(used <= data.len(), "used past the input");
    assert_eq!(used, m.end_offset());
    assert!(m.content_length().is_some(), "stream message without Content-Length");
    check_index(data, &m);
    // the same bytes alone frame the same message (framing must not depend on octets after
    // the message)
    match Message::parse_stream(&data[..used]) {
        Ok(Status::Complete((m2, used2))) => {
            assert_eq!(used2, used, "framing changed when trailing octets were removed");
            assert_eq!(m2.header_count(), m.header_count());
        }
        other => panic!("message of {used} bytes framed only with trailing octets present: {other:?}"),
    }
    // a shorter prefix is never a complete message
    let mut cuts = [used.saturating_sub(1), used / 2, m.body_offset().saturating_sub(1), m.body_offset()];
    cuts.sort_unstable();
    for k in cuts {
        if k >= used {
            continue;
        }
        match Message::parse_stream(&data[..k]) {
            Ok(Status::Complete((_, u))) => {
                assert!(u <= k, "prefix framed past its end");
                panic!("prefix of {k} bytes framed as a complete message of {u} bytes, full framing is {used}");
            }
            Ok(Status::Incomplete) => {}
            Err(e) => panic!("prefix of {k} bytes of a valid stream message is an error: {e:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_stream(data);
    let Ok(msg) = Message::parse(data) else {
        return;
    };
    check_index(data, &msg);
    let (valid, sdp_ok) = exercise(data, &msg);

    // the framed bytes alone parse to the same message
    let framed = msg.as_bytes();
    let again = Message::parse(framed).expect("framed bytes do not parse again");
    assert_eq!(again.header_count(), msg.header_count(), "header count changed on re-parse");
    assert_eq!(again.start_line(), msg.start_line(), "start line changed on re-parse");
    assert_eq!(again.body(), msg.body());
    assert_eq!(again.content_length(), msg.content_length());
    assert_eq!(again.start_offset(), 0);
    assert_eq!(again.end_offset(), framed.len());
    let (valid2, sdp_ok2) = exercise(framed, &again);
    assert_eq!(valid, valid2, "validate() differs on re-parse");
    assert_eq!(sdp_ok, sdp_ok2, "sdp() differs on re-parse");
});
