//! Property test of the edit-list writer: for any corpus message that validates and any
//! combination of forwarding edits, the written message re-parses to exactly the message an
//! independent model predicts (same start line, same headers in the same order with the same
//! values, same body), and still validates.

use proptest::prelude::*;
use ringsip_proto::chars::{self, CommaSplit};
use ringsip_proto::{Edits, HeaderName, Message};
use ringsip_tests::read_index;
use std::sync::OnceLock;

fn messages() -> &'static [Vec<u8>] {
    static M: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    M.get_or_init(|| {
        let mut out = Vec::new();
        for (folder, dir) in [("rfc4475", "rfc4475"), ("rfc5118", "rfc5118/wire"), ("rfc3665", "rfc3665/messages")] {
            for row in read_index(folder, dir).into_iter().filter(|r| r.valid) {
                let b = std::fs::read(&row.path).unwrap();
                let ok = Message::parse(&b).map(|m| m.validate().is_ok()).unwrap_or(false);
                if ok {
                    out.push(b);
                }
            }
        }
        assert!(out.len() > 200, "only {} corpus messages validate", out.len());
        out
    })
}

#[derive(Clone, Debug)]
enum Op {
    InsertVia(u16),
    RemoveTopVia,
    SetMaxForwards(u8),
    InsertRecordRoute(u16),
    RemoveFirstRoute,
    SetRequestUri(u16),
    ReplaceBody(Vec<u8>),
    AppendHeader(u8, u16),
    RemoveHeader(u8),
}

impl Op {
    fn kind(&self) -> u8 {
        match self {
            Op::InsertVia(_) => 0,
            Op::RemoveTopVia => 1,
            Op::SetMaxForwards(_) => 2,
            Op::InsertRecordRoute(_) => 3,
            Op::RemoveFirstRoute => 4,
            Op::SetRequestUri(_) => 5,
            Op::ReplaceBody(_) => 6,
            Op::AppendHeader(..) => 7,
            Op::RemoveHeader(_) => 8,
        }
    }
}

/// Headers the property test may remove wholesale (no other op touches them).
const REMOVABLE: [HeaderName; 5] =
    [HeaderName::Subject, HeaderName::UserAgent, HeaderName::Allow, HeaderName::Supported, HeaderName::Contact];
const APPENDABLE: [&str; 3] = ["X-Ringsip-Test", "Diversion", "P-Asserted-Identity"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u16>().prop_map(Op::InsertVia),
        Just(Op::RemoveTopVia),
        any::<u8>().prop_map(Op::SetMaxForwards),
        any::<u16>().prop_map(Op::InsertRecordRoute),
        Just(Op::RemoveFirstRoute),
        any::<u16>().prop_map(Op::SetRequestUri),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Op::ReplaceBody),
        (0..3u8, any::<u16>()).prop_map(|(n, v)| Op::AppendHeader(n, v)),
        (0..5u8).prop_map(Op::RemoveHeader),
    ]
}

/// The model: start line, logical headers (name, raw name, trimmed value, whether the line
/// came from the original message, whether it is still there), body. Edits address the
/// original message, so removals only apply to original lines, and removed lines stay as
/// tombstones so later inserts land where the writer puts them.
struct Model {
    start: Vec<u8>,
    headers: Vec<Line>,
    body: Vec<u8>,
}

#[derive(Clone)]
struct Line {
    name: HeaderName,
    raw: Vec<u8>,
    value: Vec<u8>,
    original: bool,
    alive: bool,
}

impl Line {
    fn new(name: HeaderName, raw: &[u8], value: Vec<u8>) -> Line {
        Line { name, raw: raw.to_vec(), value, original: false, alive: true }
    }
}

impl PartialEq for Model {
    fn eq(&self, o: &Model) -> bool {
        fn strip(m: &Model) -> Vec<(HeaderName, &[u8], &[u8])> {
            m.headers.iter().filter(|h| h.alive).map(|h| (h.name, &h.raw[..], &h.value[..])).collect()
        }
        self.start == o.start && self.body == o.body && strip(self) == strip(o)
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.start.escape_ascii())?;
        for h in self.headers.iter().filter(|h| h.alive) {
            writeln!(f, "  {:?} {}: {}", h.name, h.raw.escape_ascii(), h.value.escape_ascii())?;
        }
        write!(f, "  body: {}", self.body.escape_ascii())
    }
}

fn model_of(m: &Message<'_>) -> Model {
    let b = m.as_bytes();
    let nl = b.iter().position(|&c| c == b'\n').unwrap();
    let start = b[..nl].strip_suffix(b"\r").unwrap_or(&b[..nl]).to_vec();
    let headers =
        m.headers().map(|h| Line { original: true, ..Line::new(h.name, h.raw_name, h.value.to_vec()) }).collect();
    Model { start, headers, body: m.body().to_vec() }
}

fn insert_before_first(model: &mut Model, name: HeaderName, raw: &str, value: Vec<u8>) {
    let at = model.headers.iter().position(|h| h.name == name && h.original).unwrap_or(model.headers.len());
    model.headers.insert(at, Line::new(name, raw.as_bytes(), value));
}

fn remove_first_value(model: &mut Model, name: HeaderName) {
    let Some(i) = model.headers.iter().position(|h| h.name == name && h.original && h.alive) else { return };
    let v = model.headers[i].value.clone();
    let mut split = CommaSplit::new(&v);
    split.next();
    match split.next() {
        None => model.headers[i].alive = false,
        Some(second) => {
            let second = chars::trim(second.unwrap());
            let at = chars::offset_in(&v, second);
            model.headers[i].value = v[at..].to_vec();
        }
    }
}

fn set_or_append(model: &mut Model, name: HeaderName, raw: &str, value: Vec<u8>) {
    match model.headers.iter().position(|h| h.name == name && h.original && h.alive) {
        Some(i) => model.headers[i].value = value,
        None => model.headers.push(Line::new(name, raw.as_bytes(), value)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn edits_reparse_to_the_model(idx in any::<prop::sample::Index>(), raw_ops in proptest::collection::vec(op(), 0..8)) {
        let all = messages();
        let bytes = &all[idx.index(all.len())];
        let msg = Message::parse(bytes).unwrap();
        // one op of each kind, so no two edits touch the same bytes
        let mut seen = [false; 9];
        let ops: Vec<Op> = raw_ops.into_iter().filter(|o| !std::mem::replace(&mut seen[o.kind() as usize], true)).collect();

        let values: Vec<Vec<u8>> = ops.iter().map(|o| match o {
            Op::InsertVia(n) => format!("SIP/2.0/UDP 192.0.2.{}:5060;branch=z9hG4bK-rs-{n};rport", n % 250).into_bytes(),
            Op::InsertRecordRoute(n) => format!("<sip:192.0.2.1:{};lr;r={n}>", 1024 + n % 60000).into_bytes(),
            Op::SetRequestUri(n) => format!("sip:u{n}@[2001:db8::{n:x}]:5070;transport=udp").into_bytes(),
            Op::AppendHeader(_, n) => format!("<sip:hdr{n}@example.com>").into_bytes(),
            _ => Vec::new(),
        }).collect();

        let mut expected = model_of(&msg);
        let mut edits = Edits::new();
        for (o, v) in ops.iter().zip(&values) {
            match o {
                Op::InsertVia(_) => {
                    edits.insert_header_first(&msg, HeaderName::Via, v).unwrap();
                    insert_before_first(&mut expected, HeaderName::Via, "Via", v.clone());
                }
                Op::RemoveTopVia => {
                    edits.remove_top_via(&msg).unwrap();
                    remove_first_value(&mut expected, HeaderName::Via);
                }
                Op::SetMaxForwards(n) => {
                    edits.set_max_forwards(&msg, *n).unwrap();
                    set_or_append(&mut expected, HeaderName::MaxForwards, "Max-Forwards", n.to_string().into_bytes());
                }
                Op::InsertRecordRoute(_) => {
                    edits.insert_header_first(&msg, HeaderName::RecordRoute, v).unwrap();
                    insert_before_first(&mut expected, HeaderName::RecordRoute, "Record-Route", v.clone());
                }
                Op::RemoveFirstRoute => {
                    if msg.first_index(HeaderName::Route).is_some() {
                        edits.remove_first_value(&msg, HeaderName::Route).unwrap();
                        remove_first_value(&mut expected, HeaderName::Route);
                    }
                }
                Op::SetRequestUri(_) => {
                    if let Some(old) = msg.request_uri_bytes() {
                        edits.set_request_uri(&msg, v).unwrap();
                        let sp1 = expected.start.iter().position(|&c| c == b' ').unwrap();
                        let mut s = expected.start[..sp1 + 1].to_vec();
                        s.extend_from_slice(v);
                        s.extend_from_slice(&expected.start[sp1 + 1 + old.len()..]);
                        expected.start = s;
                    }
                }
                Op::ReplaceBody(b) => {
                    edits.replace_body(&msg, b).unwrap();
                    expected.body = b.clone();
                    set_or_append(&mut expected, HeaderName::ContentLength, "Content-Length", b.len().to_string().into_bytes());
                }
                Op::AppendHeader(n, _) => {
                    let name = APPENDABLE[*n as usize];
                    edits.append_header(&msg, name.as_bytes(), v).unwrap();
                    expected.headers.push(Line::new(HeaderName::from_bytes(name.as_bytes()), name.as_bytes(), v.clone()));
                }
                Op::RemoveHeader(n) => {
                    let name = REMOVABLE[*n as usize];
                    edits.remove_header(&msg, name).unwrap();
                    for h in expected.headers.iter_mut().filter(|h| h.name == name && h.original) {
                        h.alive = false;
                    }
                }
            }
        }

        let len = edits.output_len(&msg).unwrap();
        let mut out = vec![0u8; len];
        prop_assert_eq!(edits.write(&msg, &mut out).unwrap(), len);
        let re = Message::parse(&out).unwrap_or_else(|e| panic!("re-parse: {e}\n{}", String::from_utf8_lossy(&out)));
        let has_via = expected.headers.iter().any(|h| h.name == HeaderName::Via && h.alive);
        prop_assert_eq!(model_of(&re), expected);
        // The edits keep the message valid, unless they removed its only Via.
        match re.validate() {
            Ok(()) => prop_assert!(has_via),
            Err(e) if !has_via => {
                prop_assert_eq!((e.kind(), e.place()), (ringsip_proto::ErrorKind::MissingHeader, ringsip_proto::Place::Header(HeaderName::Via)))
            }
            Err(e) => panic!("re-validate: {e}\n{}", String::from_utf8_lossy(&out)),
        }
    }
}
