//! Random and mutated input never makes the parser panic or hang: every entry point returns
//! a verdict, and what it returns is consistent (ranges in bounds, framed bytes inside the
//! input). Runs on the stable toolchain in CI; the cargo-fuzz targets in `core/proto/fuzz`
//! go deeper.

use proptest::prelude::*;
use ringsip_proto::{Edits, HeaderName, Message, Status, Uri, sdp::Sdp};
use ringsip_tests::read_index;
use std::sync::OnceLock;

fn corpus() -> &'static [Vec<u8>] {
    static M: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    M.get_or_init(|| {
        let mut out = Vec::new();
        for (folder, dir) in [("rfc4475", "rfc4475"), ("rfc5118", "rfc5118/wire"), ("rfc3665", "rfc3665/messages")] {
            for row in read_index(folder, dir) {
                out.push(std::fs::read(&row.path).unwrap());
            }
        }
        out
    })
}

/// Exercise everything a receiver might call; assert internal consistency.
fn exercise(input: &[u8]) {
    if let Ok(m) = Message::parse(input) {
        let framed = m.as_bytes();
        let base = input.as_ptr() as usize;
        assert!(framed.as_ptr() as usize >= base && framed.as_ptr() as usize + framed.len() <= base + input.len());
        if let Some(cl) = m.content_length() {
            assert_eq!(m.body().len(), cl as usize);
        }
        let mut last = 0;
        for (i, e) in m.entries().iter().enumerate() {
            let line = m.line_range(i);
            assert!(line.start >= last && line.end <= m.header_end() && m.header_end() < m.body_offset());
            assert!(e.value_range().start <= e.value_range().end && e.value_range().end <= line.end);
            assert!(!m.raw_name(i).is_empty());
            last = line.end;
        }
        let _ = m.validate();
        let _ = m.request_uri();
        let _ = m.via().map(|v| (v.branch(), v.received(), v.rport()));
        let _ = m.vias().count();
        // the shortcuts give exactly what the general paths give
        let after: Vec<String> = m.vias_after_top().map(|v| format!("{v:?}")).collect();
        let skipped: Vec<String> = m.vias().skip(1).map(|v| format!("{v:?}")).collect();
        assert_eq!(after, skipped, "vias_after_top() != vias().skip(1)");
        for a in [m.from(), m.to()].into_iter().flatten() {
            assert_eq!(a.tag(), a.params().value(b"tag"), "cached tag != scanned tag");
        }
        if let Ok(first) = Message::parse(input) {
            // without via() having run first
            let after: Vec<String> = first.vias_after_top().map(|v| format!("{v:?}")).collect();
            assert_eq!(after, skipped, "vias_after_top() on a fresh message");
        }
        let _ = m.cseq();
        let _ = m.from().map(|f| f.tag());
        let _ = m.to().map(|t| t.display_name_unquoted().map(|d| d.count()));
        let _ = m.max_forwards();
        let _ = m.expires();
        let _ = m.content_type();
        let _ = m.contacts().count();
        let _ = m.routes().count();
        let _ = m.record_routes().count();
        let _ = m.sdp();
        for name in ringsip_proto::header::ALL {
            let _ = m.values(*name).count();
        }
        // forwarding edits on whatever parsed: either written or refused, never a panic
        let mut e = Edits::new();
        let _ = e.insert_header_first(&m, HeaderName::Via, b"SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKfuzz");
        let _ = e.remove_top_via(&m);
        let _ = e.set_max_forwards(&m, 69);
        let _ = e.replace_body(&m, b"x");
        if let Ok(n) = e.output_len(&m) {
            let mut out = vec![0u8; n];
            assert_eq!(e.write(&m, &mut out), Ok(n));
        }
    }
    if let Ok(Status::Complete((_, used))) = Message::parse_stream(input) {
        assert!(used <= input.len());
    }
    let _ = Uri::parse(input);
    let _ = Sdp::parse(input);
}

fn mutation() -> impl Strategy<Value = (usize, u8, u8)> {
    (any::<usize>(), 0..5u8, any::<u8>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(input in proptest::collection::vec(any::<u8>(), 0..1500)) {
        exercise(&input);
    }

    #[test]
    fn sip_shaped_random_text(input in "[A-Za-z0-9 :;,<>@\"\\\\=/.\r\n\t\\[\\]%?-]{0,600}") {
        exercise(input.as_bytes());
        let mut framed = b"INVITE sip:a@b SIP/2.0\r\n".to_vec();
        framed.extend_from_slice(input.as_bytes());
        exercise(&framed);
    }

    #[test]
    fn mutated_corpus_messages(idx in any::<prop::sample::Index>(), muts in proptest::collection::vec(mutation(), 1..8)) {
        let all = corpus();
        let mut m = all[idx.index(all.len())].clone();
        for (pos, kind, byte) in muts {
            if m.is_empty() {
                break;
            }
            let p = pos % m.len();
            match kind {
                0 => m[p] = byte,
                1 => { m.remove(p); }
                2 => m.insert(p, byte),
                3 => m.truncate(p),
                _ => m.insert(p, [b'\r', b'\n', b' ', b',', b';', b'"', b'<', b':'][byte as usize % 8]),
            }
        }
        exercise(&m);
    }
}

#[test]
fn every_prefix_of_every_corpus_message() {
    for msg in corpus() {
        for cut in 0..=msg.len() {
            exercise(&msg[..cut]);
        }
    }
}
