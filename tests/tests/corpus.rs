//! Every message of the shared corpus (RFC 4475, RFC 5118 `wire/`, RFC 3665) gets the verdict
//! its folder's `INDEX.tsv` lists, and every invalid one is refused for the right reason.
//!
//! Where RFC 4475 lets an element choose, ringsip is strict, because a proxy must never
//! forward the malformation and stripping it silently hides a broken peer:
//! * `lwsstart` (two SP in the Request-Line): rejected; the RFC allows a liberal element to
//!   accept but it must not forward the extra SP. Rejecting is simpler and safe.
//! * `trws` (trailing SP after SIP/2.0): rejected for the same reason.
//! * `baddate` (Date in EST): rejected. RFC 3261 §20.17 fixes GMT; ringsip parses every
//!   header it knows fully, and a proxy that later uses Date (e.g. for logging or Identity)
//!   must not act on a wrong one.
//! * `badbranch` (branch is just the magic cookie): accepted; it parses, and the transaction
//!   layer falls back to RFC 2543 matching.
//! * `escruri` (?headers in the Request-URI): rejected (RFC 3261 §19.1.1 table).

use ringsip_proto::{ErrorKind, HeaderName, Message, Place};
use ringsip_tests::{corpus_dir, read_index};

fn verdict(bytes: &[u8]) -> Result<(), ringsip_proto::Error> {
    Message::parse(bytes)?.validate()
}

fn check_folder(folder: &str, messages: &str) -> usize {
    let rows = read_index(folder, messages);
    let mut wrong = Vec::new();
    for row in &rows {
        let bytes = std::fs::read(&row.path).unwrap_or_else(|e| panic!("{}: {e}", row.path.display()));
        let got = verdict(&bytes);
        if got.is_ok() != row.valid {
            wrong.push(format!(
                "{}: expected {}, got {:?}",
                row.name,
                if row.valid { "valid" } else { "invalid" },
                got
            ));
        }
    }
    assert!(wrong.is_empty(), "{folder}: {} wrong verdicts:\n{}", wrong.len(), wrong.join("\n"));
    rows.len()
}

#[test]
fn rfc4475_verdicts() {
    assert_eq!(check_folder("rfc4475", "rfc4475"), 50);
}

#[test]
fn rfc5118_wire_verdicts() {
    assert_eq!(check_folder("rfc5118", "rfc5118/wire"), 12);
}

#[test]
fn rfc3665_verdicts() {
    assert_eq!(check_folder("rfc3665", "rfc3665/messages"), 181);
}

fn load(rel: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(rel)).unwrap()
}

#[test]
fn invalid_messages_are_refused_for_the_right_reason() {
    use ErrorKind as K;
    use HeaderName as H;
    let cases: &[(&str, ErrorKind, Place)] = &[
        ("rfc4475/badinv01.sip", K::EmptyParam, Place::Header(H::Via)),
        ("rfc4475/clerr.sip", K::BodyTooShort, Place::Body),
        ("rfc4475/ncl.sip", K::ExpectedNumber, Place::Header(H::ContentLength)),
        ("rfc4475/scalar02.sip", K::NumberOutOfRange, Place::Header(H::CSeq)),
        ("rfc4475/scalarlg.sip", K::NumberOutOfRange, Place::Header(H::CSeq)),
        ("rfc4475/quotbal.sip", K::UnterminatedQuote, Place::Header(H::To)),
        ("rfc4475/ltgtruri.sip", K::BracketedRequestUri, Place::StartLine),
        ("rfc4475/lwsruri.sip", K::ExtraWhitespace, Place::StartLine),
        ("rfc4475/lwsstart.sip", K::ExtraWhitespace, Place::StartLine),
        ("rfc4475/trws.sip", K::ExtraWhitespace, Place::StartLine),
        ("rfc4475/escruri.sip", K::HeadersInRequestUri, Place::StartLine),
        ("rfc4475/baddate.sip", K::BadDate, Place::Header(H::Date)),
        ("rfc4475/regbadct.sip", K::UnbracketedUriSpecials, Place::Header(H::Contact)),
        ("rfc4475/badaspec.sip", K::BadNameAddr, Place::Header(H::To)),
        ("rfc4475/baddn.sip", K::NoEndOfHeaders, Place::Message),
        ("rfc4475/badvers.sip", K::UnsupportedVersion, Place::StartLine),
        ("rfc4475/mismatch01.sip", K::CSeqMethodMismatch, Place::Header(H::CSeq)),
        ("rfc4475/mismatch02.sip", K::CSeqMethodMismatch, Place::Header(H::CSeq)),
        ("rfc4475/bigcode.sip", K::StatusCodeOutOfRange, Place::StartLine),
        ("rfc4475/insuf.sip", K::MissingHeader, Place::Header(H::From)),
        ("rfc4475/multi01.sip", K::DuplicateHeader, Place::Header(H::CSeq)),
        ("rfc4475/mcl01.sip", K::DuplicateHeader, Place::Header(H::ContentLength)),
        ("rfc4475/test.sip", K::BadStartLine, Place::StartLine),
        ("rfc5118/wire/ipv6-bad.sip", K::BadHost, Place::StartLine),
        ("rfc3665/messages/3.9_F06.sip", K::ExtraWhitespace, Place::StartLine),
    ];
    for (file, kind, place) in cases {
        let e = verdict(&load(file)).expect_err(file);
        assert_eq!((e.kind(), e.place()), (*kind, *place), "{file}: {e}");
    }
    // badvers is answered 505, the rest 400 (RFC 4475 §3.1.2.15)
    assert_eq!(verdict(&load("rfc4475/badvers.sip")).unwrap_err().status(), 505);
    assert_eq!(verdict(&load("rfc4475/badinv01.sip")).unwrap_err().status(), 400);
}

#[test]
fn wsinv_reads_through_all_the_whitespace() {
    let b = load("rfc4475/wsinv.sip");
    let m = Message::parse(&b).unwrap();
    m.validate().unwrap();
    assert_eq!(m.to().unwrap().tag(), Some(&b"1918181833n"[..]));
    assert_eq!(m.from().unwrap().tag(), Some(&b"98asjd8"[..]));
    let d: Vec<u8> = m.from().unwrap().display_name_unquoted().unwrap().collect();
    assert_eq!(d, br#"J Rosenberg \""#);
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    assert_eq!(m.cseq().unwrap().number, 9);
    let vias: Vec<_> = m.vias().map(|v| v.unwrap().host_bytes()).collect();
    assert_eq!(vias, [&b"192.0.2.2"[..], b"spindle.example.com", b"192.168.255.111"]);
    assert_eq!(m.header(H::Subject), Some(&b""[..]));
    assert_eq!(m.body().len(), 150);
    let route = m.routes().next().unwrap().unwrap();
    assert!(route.uri().is_loose_router());
    use HeaderName as H;
}

#[test]
fn escapes_and_nul() {
    let b = load("rfc4475/esc01.sip");
    let m = Message::parse(&b).unwrap();
    let user: Vec<u8> = m.request_uri().unwrap().user_unescaped().unwrap().collect();
    assert_eq!(user, b"sips:user@example.com");
    let ringsip_proto::ContactValue::Addr(c) = m.contacts().next().unwrap().unwrap() else { panic!() };
    let (_, v) = c.uri().params().iter().nth(1).unwrap();
    let v: Vec<u8> = ringsip_proto::params::unescape(v.unwrap()).collect();
    assert_eq!(v, b"value%41");
    // escnull: two distinct contacts, NUL not a terminator
    let b = load("rfc4475/escnull.sip");
    let m = Message::parse(&b).unwrap();
    let users: Vec<Vec<u8>> = m
        .contacts()
        .map(|c| match c.unwrap() {
            ringsip_proto::ContactValue::Addr(a) => a.uri().user_unescaped().unwrap().collect(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(users, [vec![0u8], vec![0u8, 0u8]]);
    // esc02: RE%47IST%45R is not REGISTER, C%6Fntact is not Contact
    let b = load("rfc4475/esc02.sip");
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.method(), Some(ringsip_proto::Method::Other));
    assert_eq!(m.contacts().count(), 2);
}

#[test]
fn dblreq_trailing_octets_are_not_part_of_the_message() {
    let b = load("rfc4475/dblreq.sip");
    let m = Message::parse(&b).unwrap();
    m.validate().unwrap();
    assert_eq!(m.method(), Some(ringsip_proto::Method::Register));
    assert_eq!(m.content_length(), Some(0));
    assert!(m.as_bytes().len() < b.len());
    assert!(m.as_bytes().ends_with(b"\r\n\r\n"));
    assert!(!m.as_bytes().windows(6).any(|w| w == b"INVITE"));
}

#[test]
fn unusual_but_legal() {
    let b = load("rfc4475/intmeth.sip");
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.method_bytes(), Some(&b"!interesting-Method0123456789_*+`.%indeed'~"[..]));
    assert_eq!(m.cseq().unwrap().method, m.method_bytes().unwrap());
    let b = load("rfc4475/longreq.sip");
    let m = Message::parse(&b).unwrap();
    assert!(m.vias().count() > 30);
    let b = load("rfc4475/mpart01.sip");
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.body().len(), m.content_length().unwrap() as usize);
    assert!(m.body().contains(&0));
    let b = load("rfc4475/unkscm.sip");
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.request_uri_scheme().unwrap(), ringsip_proto::Scheme::Other);
    let b = load("rfc4475/zeromf.sip");
    assert_eq!(Message::parse(&b).unwrap().max_forwards().unwrap(), Some(0));
    let b = load("rfc4475/inv2543.sip");
    let m = Message::parse(&b).unwrap();
    assert!(!m.via().unwrap().is_rfc3261_branch());
    assert_eq!(m.via().unwrap().branch(), None);
    let b = load("rfc4475/badbranch.sip");
    assert!(!Message::parse(&b).unwrap().via().unwrap().is_rfc3261_branch());
    let b = load("rfc4475/bext01.sip");
    let m = Message::parse(&b).unwrap();
    let tags: Vec<_> = ringsip_proto::values::option_tags(m.header(HeaderName::ProxyRequire).unwrap()).collect();
    assert_eq!(tags, [&b"noProxiesSupportThis"[..], b"norDoAnyProxiesSupportThis"]);
}

#[test]
fn ipv6_torture() {
    use std::net::IpAddr;
    let m_of = |f: &str| load(&format!("rfc5118/wire/{f}.sip"));
    let b = m_of("port-unambiguous");
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.request_uri().unwrap().port(), Some(5070));
    let b = m_of("port-ambiguous");
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.request_uri().unwrap().port(), None);
    let b = m_of("via-received-param-no-delim");
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.via().unwrap().received(), Some("2001:db8::9:255".parse::<IpAddr>().unwrap()));
    let b = m_of("mult-ip-in-header");
    let m = Message::parse(&b).unwrap();
    let ports: Vec<_> = m.vias().map(|v| v.unwrap().port()).collect();
    assert_eq!(ports, [Some(6050), None, None]);
    for f in ["ipv6-in-sdp", "mult-ip-in-sdp", "ipv4-mapped-ipv6"] {
        let b = m_of(f);
        let m = Message::parse(&b).unwrap();
        let sdp = m.sdp().unwrap().unwrap_or_else(|| panic!("{f}: no sdp"));
        assert_eq!(sdp.media().len(), 2, "{f}");
        for media in sdp.media() {
            assert!(sdp.media_connection(media).is_some(), "{f}");
        }
    }
}

#[test]
fn every_sdp_body_in_the_valid_corpus_parses() {
    let mut n = 0;
    for (folder, messages) in [("rfc4475", "rfc4475"), ("rfc5118", "rfc5118/wire"), ("rfc3665", "rfc3665/messages")] {
        for row in read_index(folder, messages).into_iter().filter(|r| r.valid) {
            let b = std::fs::read(&row.path).unwrap();
            let m = Message::parse(&b).unwrap();
            match m.sdp() {
                Ok(Some(_)) => n += 1,
                Ok(None) => {}
                Err(e) => panic!("{}: {e}", row.name),
            }
        }
    }
    assert!(n > 50, "only {n} SDP bodies");
}
