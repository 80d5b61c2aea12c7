//! Parse a message, apply a few proxy edits chosen by the input, write, re-parse: the output
//! must parse, validate and show exactly the edits. Any panic is a finding.
//!
//! Input layout: `data[0] % 8` = number of ops `n`, then `n` two-byte ops `(kind, arg)`,
//! then the SIP message. (The seed corpus is the SIP messages with such a prefix.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsip_proto::edit::WriteError;
use ringsip_proto::{Edits, HeaderName, MAX_HEADERS, Message};

const NEW_VIA: &[u8] = b"SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKfuzz1;rport";
const NEW_VIA_BRANCH: &[u8] = b"z9hG4bKfuzz1";
const NEW_RR: &[u8] = b"<sip:192.0.2.9;lr>";
const NEW_RR_URI: &[u8] = b"sip:192.0.2.9;lr";
const NEW_RURI: &[u8] = b"sip:bob@192.0.2.20:5070;transport=udp";
const BODIES: [&[u8]; 4] = [
    b"",
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n",
    b"hello\r\n\r\nworld",
    b"x",
];

#[derive(Default, Debug)]
struct Applied {
    via_inserted: bool,
    via_removed: bool,
    max_forwards: Option<u8>,
    rr_inserted: bool,
    route_removed: bool,
    body: Option<&'static [u8]>,
    ruri: bool,
    ext_header: bool,
}

fn trimmed(v: &[u8]) -> &[u8] {
    let mut a = 0;
    let mut b = v.len();
    while a < b && matches!(v[a], b' ' | b'\t' | b'\r' | b'\n') {
        a += 1;
    }
    while b > a && matches!(v[b - 1], b' ' | b'\t' | b'\r' | b'\n') {
        b -= 1;
    }
    &v[a..b]
}

/// The header lines no edit touches, as (name, value).
fn other_lines<'a>(m: &Message<'a>) -> Vec<(&'a [u8], &'a [u8])> {
    m.headers()
        .filter(|h| {
            !matches!(
                h.name,
                HeaderName::Via | HeaderName::Route | HeaderName::RecordRoute | HeaderName::MaxForwards | HeaderName::ContentLength
            ) && h.raw_name != b"X-Fuzz"
        })
        .map(|h| (h.raw_name, h.value))
        .collect()
}

/// Whole header lines the applied removals delete (a top Via or first Route alone on its
/// line).
fn msg_lines_removed(msg: &Message<'_>, a: &Applied) -> usize {
    let alone = |name: HeaderName| msg.header(name).is_some_and(|v| ringsip_proto::chars::CommaSplit::new(v).count() == 1);
    (a.via_removed && alone(HeaderName::Via)) as usize + (a.route_removed && alone(HeaderName::Route)) as usize
}

/// Header lines the applied edits add (minus none removed: removals here never delete a
/// whole header section). Found by fuzzing (F2): a message near `MAX_HEADERS` plus these
/// lines would not parse at the next hop, so `output_len`/`write` must refuse it.
fn lines_added(msg: &Message<'_>, a: &Applied) -> usize {
    a.via_inserted as usize
        + a.rr_inserted as usize
        + a.ext_header as usize
        + (a.max_forwards.is_some() && msg.header(HeaderName::MaxForwards).is_none()) as usize
        + (a.body.is_some() && msg.content_length().is_none()) as usize
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = (n % 8) as usize;
    if rest.len() < 2 * n {
        return;
    }
    let (ops, raw) = rest.split_at(2 * n);
    let Ok(msg) = Message::parse(raw) else { return };
    if msg.validate().is_err() {
        return;
    }

    // what the original says
    let vias: Vec<&[u8]> = msg.vias().map(|v| v.unwrap().as_bytes()).collect();
    let routes: Vec<&[u8]> = msg.routes().map(|r| r.expect("route of a valid message").uri().as_bytes()).collect();
    let rrs: Vec<&[u8]> = msg.record_routes().map(|r| r.expect("record-route of a valid message").uri().as_bytes()).collect();
    let ext_count = msg.headers_by_raw_name(b"X-Fuzz").count();

    let mut edits = Edits::new();
    let mut a = Applied::default();
    for op in ops.chunks(2) {
        let (kind, arg) = (op[0], op[1]);
        match kind % 8 {
            0 if !a.via_inserted => {
                edits.insert_header_first(&msg, HeaderName::Via, NEW_VIA).unwrap();
                a.via_inserted = true;
            }
            // keep at least one Via
            1 if !a.via_removed && (vias.len() >= 2 || a.via_inserted) => {
                edits.remove_top_via(&msg).expect("remove_top_via on a valid message");
                a.via_removed = true;
            }
            2 if a.max_forwards.is_none() => {
                edits.set_max_forwards(&msg, arg).unwrap();
                a.max_forwards = Some(arg);
            }
            3 if !a.rr_inserted => {
                edits.insert_header_first(&msg, HeaderName::RecordRoute, NEW_RR).unwrap();
                a.rr_inserted = true;
            }
            4 if !a.route_removed && !routes.is_empty() => {
                edits.remove_first_value(&msg, HeaderName::Route).expect("remove first Route of a valid message");
                a.route_removed = true;
            }
            5 if a.body.is_none() => {
                let b = BODIES[arg as usize % BODIES.len()];
                edits.replace_body(&msg, b).unwrap();
                a.body = Some(b);
            }
            6 if !a.ruri && msg.is_request() => {
                edits.set_request_uri(&msg, NEW_RURI).unwrap();
                a.ruri = true;
            }
            7 if !a.ext_header => {
                edits.append_header(&msg, b"X-Fuzz", b"1").unwrap();
                a.ext_header = true;
            }
            _ => {}
        }
    }

    // removing the top Via or first Route never removes a whole line here only when the line
    // holds more values; count the worst case (no line removed) and check both directions
    let removed = msg_lines_removed(&msg, &a);
    let over = msg.header_count() + lines_added(&msg, &a) - removed > MAX_HEADERS;
    let need = match edits.output_len(&msg) {
        Ok(n) => {
            assert!(!over, "edits past MAX_HEADERS were accepted ({a:?})");
            n
        }
        Err(WriteError::TooManyHeaders) => {
            assert!(over, "TooManyHeaders below the limit ({a:?})");
            return;
        }
        Err(e) => panic!("output_len: {e}"),
    };
    let mut out = vec![0u8; need];
    let w = edits.write(&msg, &mut out).expect("write into output_len bytes");
    assert_eq!(w, need, "write length differs from output_len");
    if need > 0 {
        let mut small = vec![0u8; need - 1];
        assert_eq!(edits.write(&msg, &mut small), Err(WriteError::OutputTooSmall(need)));
    }
    if edits.is_empty() {
        assert_eq!(&out[..], msg.as_bytes(), "no edits must be the identity");
    }

    let fwd = match Message::parse(&out) {
        Ok(m) => m,
        Err(e) => panic!("edited message does not parse: {e} ({a:?})\n{}", String::from_utf8_lossy(&out)),
    };
    if let Err(e) = fwd.validate() {
        panic!("edited message does not validate: {e} ({a:?})\n{}", String::from_utf8_lossy(&out));
    }
    assert_eq!(fwd.end_offset(), out.len(), "edited message not framed to its end ({a:?})");

    // Via
    let fvias: Vec<&[u8]> = fwd.vias().map(|v| v.unwrap().as_bytes()).collect();
    let mut expect: Vec<&[u8]> = Vec::new();
    if a.via_inserted {
        expect.push(NEW_VIA);
    }
    expect.extend(vias.iter().skip(a.via_removed as usize).copied());
    assert_eq!(fvias, expect, "Vias after edits ({a:?})");
    if a.via_inserted {
        assert_eq!(fwd.via().unwrap().branch(), Some(NEW_VIA_BRANCH));
    }
    // Max-Forwards
    match a.max_forwards {
        Some(v) => assert_eq!(fwd.max_forwards().unwrap(), Some(v), "Max-Forwards ({a:?})"),
        None => assert_eq!(fwd.max_forwards().unwrap(), msg.max_forwards().unwrap()),
    }
    // Record-Route
    let frrs: Vec<&[u8]> = fwd.record_routes().map(|r| r.unwrap().uri().as_bytes()).collect();
    let mut expect: Vec<&[u8]> = Vec::new();
    if a.rr_inserted {
        expect.push(NEW_RR_URI);
    }
    expect.extend(rrs.iter().copied());
    assert_eq!(frrs, expect, "Record-Routes after edits ({a:?})");
    // Route
    let froutes: Vec<&[u8]> = fwd.routes().map(|r| r.unwrap().uri().as_bytes()).collect();
    let expect: Vec<&[u8]> = routes.iter().skip(a.route_removed as usize).copied().collect();
    assert_eq!(froutes, expect, "Routes after edits ({a:?})");
    // body and Content-Length
    match a.body {
        Some(b) => {
            assert_eq!(fwd.body(), b, "body ({a:?})");
            assert_eq!(fwd.content_length(), Some(b.len() as u32), "Content-Length ({a:?})");
        }
        None => {
            assert_eq!(fwd.body(), msg.body(), "body changed ({a:?})");
            assert_eq!(fwd.content_length(), msg.content_length());
        }
    }
    // Request-URI
    if a.ruri {
        assert_eq!(fwd.request_uri().unwrap().as_bytes(), NEW_RURI);
    } else {
        assert_eq!(fwd.request_uri_bytes(), msg.request_uri_bytes());
    }
    assert_eq!(fwd.method_bytes(), msg.method_bytes());
    assert_eq!(fwd.status(), msg.status());
    // extension header
    let fext = fwd.headers_by_raw_name(b"X-Fuzz").collect::<Vec<_>>();
    assert_eq!(fext.len(), ext_count + a.ext_header as usize, "X-Fuzz count ({a:?})");
    if a.ext_header {
        assert_eq!(fext.last().unwrap().value, b"1");
    }
    // untouched headers stay as they were
    assert_eq!(fwd.call_id().unwrap(), msg.call_id().unwrap());
    let (c1, c2) = (fwd.cseq().unwrap(), msg.cseq().unwrap());
    assert_eq!((c1.number, c1.method), (c2.number, c2.method));
    assert_eq!(trimmed(fwd.header(HeaderName::From).unwrap()), trimmed(msg.header(HeaderName::From).unwrap()));
    assert_eq!(trimmed(fwd.header(HeaderName::To).unwrap()), trimmed(msg.header(HeaderName::To).unwrap()));
    assert_eq!(other_lines(&fwd), other_lines(&msg), "other headers changed ({a:?})");
});
