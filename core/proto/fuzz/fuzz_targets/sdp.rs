//! `Sdp::parse` on arbitrary bytes: every media section, attribute, rtpmap and fmtp is
//! walked and every returned slice must lie inside the body (writers turn them into byte
//! ranges with pointer arithmetic). Any panic is a finding.
#![no_main]

use core::ops::Range;

use libfuzzer_sys::fuzz_target;
use ringsip_proto::sdp::{Attribute, Connection, Media, Sdp};

/// Byte range of `inner` inside `outer`; panics when it is not a sub-slice. Empty slices
/// must lie inside too (or at the very end): writers use them as insertion points.
fn range_in(outer: &[u8], inner: &[u8], what: &str) -> Range<usize> {
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    assert!(
        i.start >= o.start && i.end <= o.end,
        "{what}: slice {:?} not inside the body",
        String::from_utf8_lossy(inner)
    );
    let s = i.start as usize - o.start as usize;
    s..s + inner.len()
}

fn check_line_slice(body: &[u8], line: &[u8], what: &str) {
    let r = range_in(body, line, what);
    // a whole line starts at a line start
    assert!(r.start == 0 || body[r.start - 1] == b'\n', "{what}: does not start a line");
}

fn check_attr(body: &[u8], section: Range<usize>, a: &Attribute<'_>) {
    let r = range_in(body, a.line, "attribute line");
    assert!(r.start >= section.start && r.end <= section.end, "attribute outside its section");
    assert!(a.line.starts_with(b"a="), "attribute line does not start with a=");
    check_line_slice(body, a.line, "attribute line");
    let n = range_in(body, a.name, "attribute name");
    assert!(n.start >= r.start && n.end <= r.end);
    assert_eq!(n.start, r.start + 2);
    if let Some(v) = a.value {
        let v = range_in(body, v, "attribute value");
        assert!(v.start >= n.end && v.end <= r.end);
        assert_eq!(body[v.start - 1], b':');
    }
    // the line ends at a line ending or at the end of the body
    assert!(r.end == body.len() || body[r.end - 1] == b'\n', "attribute line does not end a line");
}

fn check_connection(body: &[u8], c: &Connection<'_>, within: &Range<usize>) {
    let l = range_in(body, c.line, "c= line");
    assert!(l.start >= within.start && l.end <= within.end, "c= outside its section");
    for (s, w) in [(c.net_type, "c= nettype"), (c.address, "c= address")] {
        let r = range_in(body, s, w);
        assert!(r.start >= l.start && r.end <= l.end, "{w} outside the c= line");
        assert!(!s.is_empty(), "{w} empty");
    }
    if let Some(s) = c.suffix {
        let r = range_in(body, s, "c= suffix");
        assert!(r.start >= l.start && r.end <= l.end);
    }
    let _ = c.ip();
    let _ = c.is_hold();
}

fn check_media(sdp: &Sdp<'_>, body: &[u8], m: &Media<'_>, prev_end: usize) -> usize {
    let sec = range_in(body, m.section, "media section");
    assert!(sec.start >= prev_end, "media sections overlap or are out of order");
    assert!(m.section.starts_with(b"m="), "media section does not start with m=");
    check_line_slice(body, m.section, "media section");
    let line = range_in(body, m.line, "m= line");
    assert_eq!(line.start, sec.start + 2);
    assert!(line.end <= sec.end);
    for (s, w) in [(m.media, "m= media"), (m.port_bytes, "m= port"), (m.proto, "m= proto"), (m.formats, "m= formats")] {
        let r = range_in(body, s, w);
        assert!(r.start >= line.start && r.end <= line.end, "{w} outside the m= line");
    }
    assert!(!m.port_bytes.is_empty());
    assert!(m.port_bytes.iter().all(u8::is_ascii_digit), "port bytes are not digits");
    let port: u32 = std::str::from_utf8(m.port_bytes).unwrap().parse().unwrap();
    assert_eq!(port, m.port as u32, "port differs from its bytes");
    let _ = m.port_count;
    if let Some(c) = &m.connection {
        check_connection(body, c, &sec);
    }
    if let Some(r) = &m.rtcp {
        let l = range_in(body, r.line, "rtcp line");
        assert!(l.start >= sec.start && l.end <= sec.end);
        let p = range_in(body, r.port_bytes, "rtcp port");
        assert!(p.start >= l.start && p.end <= l.end);
        let port: u32 = std::str::from_utf8(r.port_bytes).unwrap().parse().unwrap();
        assert_eq!(port, r.port as u32);
        if let Some((nt, _, addr)) = r.connection {
            for s in [nt, addr] {
                let x = range_in(body, s, "rtcp address");
                assert!(x.start >= l.start && x.end <= l.end);
            }
        }
    }
    let _ = (m.rtcp_mux, m.direction, m.ptime);
    let mut n = 0;
    for a in m.attributes() {
        check_attr(body, sec.clone(), &a);
        n += 1;
    }
    assert!(n <= m.section.iter().filter(|&&b| b == b'\n').count() + 1);
    for r in m.rtpmaps() {
        let l = range_in(body, r.line, "rtpmap line");
        assert!(l.start >= sec.start && l.end <= sec.end);
        let e = range_in(body, r.encoding, "rtpmap encoding");
        assert!(e.start >= l.start && e.end <= l.end);
        if let Some(ch) = r.channels {
            let c = range_in(body, ch, "rtpmap channels");
            assert!(c.start >= e.end && c.end <= l.end);
        }
        assert!(r.payload <= 127, "payload type out of range");
        let _ = r.clock_rate;
        let found = m.rtpmap(r.payload).expect("rtpmap() misses an rtpmap the iterator yields");
        assert_eq!(found.payload, r.payload);
    }
    for f in m.fmtps() {
        let l = range_in(body, f.line, "fmtp line");
        assert!(l.start >= sec.start && l.end <= sec.end);
        for s in [f.format, f.params] {
            let x = range_in(body, s, "fmtp field");
            assert!(x.start >= l.start && x.end <= l.end);
        }
        assert!(m.fmtp(f.format).is_some());
    }
    for f in m.formats() {
        let x = range_in(body, f, "format");
        assert!(x.start >= line.start && x.end <= line.end);
        assert!(!f.is_empty());
    }
    let _ = m.is_rtp();
    assert!(sdp.media_connection(m).is_some(), "media without a connection");
    let _ = sdp.media_direction(m);
    sec.end
}

fuzz_target!(|data: &[u8]| {
    let sdp = match Sdp::parse(data) {
        Ok(s) => s,
        Err(e) => {
            assert!(e.offset() <= data.len(), "error offset {} past the body ({})", e.offset(), data.len());
            return;
        }
    };
    let body = sdp.body();
    assert_eq!(body.as_ptr(), data.as_ptr());
    assert_eq!(body.len(), data.len());
    let session = range_in(body, sdp.session_section(), "session section");
    assert_eq!(session.start, 0);
    assert!(sdp.session_section().starts_with(b"v="));
    let o = sdp.origin();
    let ol = range_in(body, o.line, "o= line");
    assert!(ol.end <= session.end);
    for (s, w) in [
        (o.username, "o= username"),
        (o.session_id, "o= sess-id"),
        (o.session_version, "o= sess-version"),
        (o.net_type, "o= nettype"),
        (o.address, "o= address"),
    ] {
        let r = range_in(body, s, w);
        assert!(r.start >= ol.start && r.end <= ol.end, "{w} outside the o= line");
        assert!(!s.is_empty(), "{w} empty");
    }
    let _ = o.addr_type;
    let sn = range_in(body, sdp.session_name(), "s= value");
    assert!(sn.end <= session.end);
    if let Some(c) = sdp.connection() {
        check_connection(body, c, &session);
    }
    let _ = sdp.direction();
    for a in sdp.attributes() {
        check_attr(body, session.clone(), &a);
    }
    let mut prev_end = session.end;
    for m in sdp.media() {
        prev_end = check_media(&sdp, body, m, prev_end);
    }
    // the same bytes in another buffer give the same index
    let copy = data.to_vec();
    let again = Sdp::parse(&copy).expect("copy of a valid body does not parse");
    assert_eq!(again.media().len(), sdp.media().len());
    for (a, b) in again.media().iter().zip(sdp.media()) {
        assert_eq!(a, b);
    }
});
