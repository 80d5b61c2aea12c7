use super::*;
use crate::uri::Host;
use std::vec::Vec;

const OPTIONS: &[u8] = b"OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 63104 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

fn err(raw: &[u8]) -> Error {
    match Message::parse(raw) {
        Ok(m) => m.validate().expect_err("should be invalid"),
        Err(e) => e,
    }
}

#[test]
fn index_and_typed_access() {
    let m = Message::parse(OPTIONS).unwrap();
    assert!(m.is_request());
    assert_eq!(m.method(), Some(Method::Options));
    assert_eq!(m.header_count(), 7);
    assert_eq!(m.request_uri().unwrap().host(), Some(Host::Name(b"biloxi.example.com")));
    assert_eq!(m.via().unwrap().host_bytes(), b"pc33.atlanta.example.com");
    assert_eq!(m.call_id().unwrap(), b"a84b4c76e66710");
    assert_eq!(m.from().unwrap().tag(), Some(&b"1928301774"[..]));
    assert!(!m.has_to_tag().unwrap());
    assert_eq!(m.content_length(), Some(0));
    assert_eq!(m.body(), b"");
    // cached: the same reference twice
    assert!(core::ptr::eq(m.via().unwrap(), m.via().unwrap()));
    m.validate().unwrap();
    let names: Vec<_> = m.headers().map(|h| h.name).collect();
    assert_eq!(names[0], HeaderName::Via);
    assert_eq!(m.headers_named(HeaderName::CSeq).next().unwrap().value, b"63104 OPTIONS");
}

#[test]
fn compact_forms_and_case() {
    let raw = b"INVITE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nt: <sip:a@b>\r\nF: <sip:c@d>;tag=9\r\ni: cid\r\ncseq: 1 INVITE\r\nMAX-FORWARDS: 3\r\nc: application/sdp\r\nl: 0\r\n\r\n";
    let m = Message::parse(raw).unwrap();
    m.validate().unwrap();
    assert_eq!(m.call_id().unwrap(), b"cid");
    assert_eq!(m.max_forwards().unwrap(), Some(3));
    assert!(m.content_type().unwrap().unwrap().is_sdp());
    let h = m.headers_named(HeaderName::To).next().unwrap();
    assert_eq!(h.raw_name, b"t");
}

#[test]
fn folding_and_lws() {
    let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n ;branch=z9hG4bK1\r\nTo :\r\n <sip:a@b>\r\nFrom: <sip:c@d>\r\n\t;tag=9\r\nCall-ID: x\r\nCSeq: 1\r\n  OPTIONS\r\nSubject:\r\nl: 0\r\n\r\n";
    let m = Message::parse(raw).unwrap();
    m.validate().unwrap();
    assert_eq!(m.header_count(), 7);
    assert_eq!(m.via().unwrap().branch(), Some(&b"z9hG4bK1"[..]));
    assert_eq!(m.to().unwrap().uri().as_bytes(), b"sip:a@b");
    assert_eq!(m.header(HeaderName::Subject), Some(&b""[..]));
    assert_eq!(m.cseq().unwrap().method, b"OPTIONS");
}

#[test]
fn bare_lf_line_endings_are_accepted() {
    let raw = b"OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nTo: <sip:a@b>\nFrom: <sip:c@d>;tag=9\nCall-ID: x\nCSeq: 1 OPTIONS\n\nbody";
    let m = Message::parse(raw).unwrap();
    m.validate().unwrap();
    assert_eq!(m.body(), b"body");
}

#[test]
fn datagram_framing() {
    let mut raw = OPTIONS.to_vec();
    raw.extend_from_slice(b"trailing junk");
    let m = Message::parse(&raw).unwrap();
    assert_eq!(m.as_bytes(), OPTIONS);
    // leading CRLFs are skipped (RFC 3261 §7.5)
    let mut raw2 = b"\r\n\r\n".to_vec();
    raw2.extend_from_slice(OPTIONS);
    let m = Message::parse(&raw2).unwrap();
    assert_eq!(m.as_bytes(), OPTIONS);
    assert_eq!(m.start_offset(), 4);
    // body shorter than Content-Length
    let raw3 = b"MESSAGE sip:a@b SIP/2.0\r\nl: 10\r\n\r\nshort";
    assert_eq!(Message::parse(raw3).unwrap_err().kind(), ErrorKind::BodyTooShort);
    // no Content-Length on UDP: the rest of the datagram
    let raw4 = b"MESSAGE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\nall of it";
    assert_eq!(Message::parse(raw4).unwrap().body(), b"all of it");
    assert_eq!(Message::parse(b"\r\n\r\n").unwrap_err().kind(), ErrorKind::Empty);
    assert_eq!(Message::parse(b"").unwrap_err().kind(), ErrorKind::Empty);
}

#[test]
fn stream_framing_is_check_then_parse() {
    let mut two = OPTIONS.to_vec();
    two.extend_from_slice(b"\r\n");
    two.extend_from_slice(OPTIONS);
    for cut in 0..OPTIONS.len() {
        match Message::parse_stream(&OPTIONS[..cut]).unwrap() {
            Status::Incomplete => {}
            Status::Complete(_) => panic!("complete at {cut}"),
        }
    }
    let Status::Complete((m, used)) = Message::parse_stream(&two).unwrap() else { panic!() };
    assert_eq!(used, OPTIONS.len());
    assert_eq!(m.cseq().unwrap().number, 63104);
    let Status::Complete((_, used2)) = Message::parse_stream(&two[used..]).unwrap() else { panic!() };
    assert_eq!(used2, OPTIONS.len() + 2);
    // body arriving in pieces
    let with_body = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\nhello";
    assert!(matches!(Message::parse_stream(&with_body[..with_body.len() - 1]).unwrap(), Status::Incomplete));
    assert!(matches!(Message::parse_stream(with_body).unwrap(), Status::Complete((_, n)) if n == with_body.len()));
    // missing or malformed Content-Length is an error on a stream
    let e = Message::parse_stream(b"MESSAGE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingContentLengthOnStream);
    let e = Message::parse_stream(b"MESSAGE sip:a@b SIP/2.0\r\nl: -999\r\n\r\n").unwrap_err();
    assert_eq!((e.kind(), e.place()), (ErrorKind::ExpectedNumber, Place::Header(HeaderName::ContentLength)));
}

#[test]
fn start_line_errors() {
    let k = |s: &[u8]| err(s).kind();
    assert_eq!(k(b"INVITE  sip:a@b  SIP/2.0\r\n\r\n"), ErrorKind::ExtraWhitespace);
    assert_eq!(k(b"OPTIONS sip:a@b SIP/2.0  \r\n\r\n"), ErrorKind::ExtraWhitespace);
    assert_eq!(k(b"INVITE sip:a@b; lr SIP/2.0\r\n\r\n"), ErrorKind::ExtraWhitespace);
    assert_eq!(k(b"INVITE <sip:a@b> SIP/2.0\r\n\r\n"), ErrorKind::BracketedRequestUri);
    assert_eq!(k(b"INVITE sip:a@b\r\n\r\n"), ErrorKind::BadStartLine);
    // found by fuzzing: no Request-URI between method and version
    assert_eq!(k(b"G SIP/2.0\n"), ErrorKind::BadStartLine);
    assert_eq!(k(b"INVITE SIP/2.0\r\nContent-Length: 0\r\n\r\n"), ErrorKind::BadStartLine);
    assert_eq!(
        Message::parse_stream(b"INVITE SIP/2.0\r\nContent-Length: 0\r\n\r\n").unwrap_err().kind(),
        ErrorKind::BadStartLine
    );
    assert_eq!(k(b"OPTIONS sip:a@b SIP/7.0\r\n\r\n"), ErrorKind::UnsupportedVersion);
    assert_eq!(err(b"OPTIONS sip:a@b SIP/7.0\r\n\r\n").status(), 505);
    assert_eq!(k(b"OPTIONS sip:a@b SIP/2\r\n\r\n"), ErrorKind::BadVersion);
    assert_eq!(k(b"OPT(ONS sip:a@b SIP/2.0\r\n\r\n"), ErrorKind::BadMethod);
    assert_eq!(k(b"SIP/2.0 4294967301 better not break the receiver\r\n\r\n"), ErrorKind::StatusCodeOutOfRange);
    assert_eq!(k(b"SIP/2.0 700 Nope\r\n\r\n"), ErrorKind::StatusCodeOutOfRange);
    assert_eq!(k(b"SIP/2.0 99 Nope\r\n\r\n"), ErrorKind::BadStatusCode);
    assert_eq!(k(b"SIP/2.0  486 Busy Here\r\n\r\n"), ErrorKind::ExtraWhitespace);
    assert_eq!(k(b"SIP/2.0 200 O\x01K\r\n\r\n"), ErrorKind::BadReasonPhrase);
    let m = Message::parse(b"SIP/2.0 100 \r\n\r\n").unwrap();
    assert_eq!(m.start_line(), &StartLine::Response { code: 100, reason: b"" });
    let m = Message::parse(b"SIP/2.0 180\r\n\r\n").unwrap();
    assert_eq!(m.status(), Some(180));
}

#[test]
fn header_section_errors() {
    let k = |s: &[u8]| Message::parse(s).unwrap_err().kind();
    assert_eq!(k(b"OPTIONS sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n"), ErrorKind::NoEndOfHeaders);
    assert_eq!(k(b"OPTIONS sip:a@b SIP/2.0\r\n folded-first: x\r\n\r\n"), ErrorKind::BadHeaderName);
    assert_eq!(k(b"OPTIONS sip:a@b SIP/2.0\r\nFoobar roobar\r\n\r\n"), ErrorKind::MissingColon);
    assert_eq!(k(b"OPTIONS sip:a@b SIP/2.0\r\n: novalue\r\n\r\n"), ErrorKind::BadHeaderName);
    assert_eq!(err(b"OPTIONS sip:a@b SIP/2.0\r\nTo: x\r\r\n\r\n").kind(), ErrorKind::BareCr);
    assert_eq!(k(b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nl: 1\r\n\r\nx"), ErrorKind::DuplicateHeader);
    assert_eq!(k(b"OPTIONS sip:a@b SIP/2.0\r\nTo: a\r\n\rX"), ErrorKind::BareCr);
    let mut many = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
    for _ in 0..=MAX_HEADERS {
        many.extend_from_slice(b"X-A: b\r\n");
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(k(&many), ErrorKind::TooManyHeaders);
    let mut big = b"OPTIONS sip:a@b SIP/2.0\r\nX-A: ".to_vec();
    big.resize(70_000, b'a');
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(k(&big), ErrorKind::HeadersTooLarge);
}

#[test]
fn validation_errors_name_the_header() {
    let insuf = b"INVITE sip:user@example.com SIP/2.0\r\nCSeq: 193942 INVITE\r\nVia: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\r\nl: 0\r\n\r\n";
    let e = err(insuf);
    assert_eq!(e.kind(), ErrorKind::MissingHeader);
    assert_eq!(e.place(), Place::Header(HeaderName::From));
    let mismatch = b"OPTIONS sip:user@example.com SIP/2.0\r\nTo: sip:j.user@example.com\r\nFrom: sip:caller@example.net;tag=34525\r\nCall-ID: m\r\nCSeq: 8 INVITE\r\nVia: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\r\nl: 0\r\n\r\n";
    assert_eq!(err(mismatch).kind(), ErrorKind::CSeqMethodMismatch);
    let dup = b"OPTIONS sip:u@e SIP/2.0\r\nTo: <sip:a@b>\r\nTo: <sip:c@d>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: m\r\nCSeq: 8 OPTIONS\r\nVia: SIP/2.0/UDP h\r\n\r\n";
    let e = err(dup);
    assert_eq!((e.kind(), e.place()), (ErrorKind::DuplicateHeader, Place::Header(HeaderName::To)));
    let esc = b"INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0\r\n\r\n";
    assert_eq!(err(esc).kind(), ErrorKind::HeadersInRequestUri);
    let e = err(b"OPTIONS sip:u@e SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.15;;,;,,\r\n\r\n");
    assert_eq!((e.kind(), e.place()), (ErrorKind::EmptyParam, Place::Header(HeaderName::Via)));
    // the offset points into the Via value
    assert_eq!(e.offset(), 25 + 5 + 23);
    let text = std::format!("{e}");
    assert_eq!(text, "Via: empty parameter (byte 53)");
}

#[test]
fn list_values_across_lines() {
    let raw = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\nVia: SIP/2.0/UDP c;branch=z9hG4bK3\r\nRecord-Route: <sip:p2;lr>,\r\n <sip:p1;lr>\r\nTo: <sip:a@b>;tag=x\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: m\r\nCSeq: 8 INVITE\r\nContact: <sip:a@1.2.3.4>;expires=60, \"x,y\" <sip:b@5.6.7.8>;q=0.5\r\n\r\n";
    let m = Message::parse(raw).unwrap();
    m.validate().unwrap();
    let hosts: Vec<_> = m.vias().map(|v| v.unwrap().host_bytes()).collect();
    assert_eq!(hosts, [&b"a"[..], b"b", b"c"]);
    assert_eq!(m.record_routes().count(), 2);
    assert_eq!(m.contacts().count(), 2);
    assert!(m.has_to_tag().unwrap());
    assert_eq!(m.cseq().unwrap().method, b"INVITE");
}

#[test]
fn sdp_body() {
    let body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let raw =
        [&b"INVITE sip:a@b SIP/2.0\r\nContent-Type: application/sdp\r\nContent-Length: 87\r\n\r\n"[..], body].concat();
    assert_eq!(body.len(), 87);
    let m = Message::parse(&raw).unwrap();
    assert_eq!(m.content_length(), Some(m.body().len() as u32));
    let sdp = m.sdp().unwrap().unwrap();
    assert_eq!(sdp.media()[0].port, 4000);
}

#[test]
fn auth_and_option_tags() {
    let raw = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\nCall-ID: c\r\nCSeq: 2 REGISTER\r\nSupported: path, outbound\r\nSupported: gruu\r\nProxy-Require: foo\r\nAuthorization: Digest username=\"a\", realm=\"example.com\", nonce=\"n\", uri=\"sip:example.com\", response=\"0123456789abcdef0123456789abcdef\", algorithm=SHA-256\r\nl: 0\r\n\r\n";
    let m = Message::parse(raw).unwrap();
    m.validate().unwrap();
    let tags: Vec<_> = m.option_tags(HeaderName::Supported).collect();
    assert_eq!(tags, [&b"path"[..], b"outbound", b"gruu"]);
    assert_eq!(m.option_tags(HeaderName::ProxyRequire).count(), 1);
    assert_eq!(m.option_tags(HeaderName::Require).count(), 0);
    let a = m.auth(HeaderName::Authorization).next().unwrap().unwrap();
    assert!(a.is_digest());
    assert_eq!(a.get(b"algorithm"), Some(&b"SHA-256"[..]));
    let u: Vec<u8> = crate::params::unquote(a.get(b"username").unwrap()).collect();
    assert_eq!(u, b"a");
}

#[test]
fn stream_framing_with_mixed_line_endings() {
    // found by fuzzing: an LF-terminated line followed by a CRLF empty line ends the header
    // section for the indexer, so the stream pre-check must see it too
    let raw = b"MESSAGE sip:a@b SIP/2.0\nl: 2\n\r\nhi";
    let Status::Complete((m, used)) = Message::parse_stream(raw).unwrap() else { panic!("incomplete") };
    assert_eq!((m.body(), used), (&b"hi"[..], raw.len()));
    let raw = b"MESSAGE sip:a@b SIP/2.0\r\nl: 2\r\n\nhi";
    assert!(matches!(Message::parse_stream(raw).unwrap(), Status::Complete(_)));
    assert!(matches!(Message::parse_stream(b"MESSAGE sip:a@b SIP/2.0\nl: 2\n\r").unwrap(), Status::Incomplete));
}

#[test]
fn parse_into_reuses_the_slot() {
    let mut m = Message::new();
    m.parse_into(OPTIONS).unwrap();
    assert_eq!(m.cseq().unwrap().number, 63104);
    let other = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK9\r\nTo: <sip:a@b>;tag=2\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: zz\r\nCSeq: 7 BYE\r\n\r\n";
    m.parse_into(other).unwrap();
    // caches were reset with the new message
    assert_eq!(m.cseq().unwrap().number, 7);
    assert_eq!(m.via().unwrap().host_bytes(), b"x");
    assert_eq!(m.call_id().unwrap(), b"zz");
    assert_eq!(m.status(), Some(200));
    assert!(m.parse_into(b"garbage\r\n\r\n").is_err());
    assert_eq!(m.header_count(), 0);
    m.parse_into(OPTIONS).unwrap();
    assert_eq!(m.header_count(), 7);
    assert_eq!(m.max_forwards().unwrap(), Some(70));
}
