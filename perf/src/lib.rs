//! # ringsip-perf — benchmarks for the protocol core
//!
//! * [`samples`]: the benchmark messages (a carrier INVITE with SDP, its 200 OK, the ACK,
//!   a digest REGISTER).
//! * [`proxy`]: the work a stateless proxy does per message (read its fields, build the
//!   forwarding edit list, write), shared by `benches/parse.rs` and the zero-allocation
//!   test in `tests/no_alloc.rs` so both measure exactly the same code.
//!
//! * [`lb`]: one shard's stateless load balancer driven with whole calls without sockets,
//!   shared by `benches/lb.rs` (ns per routed message) and `tests/no_alloc_lb.rs`.
//!
//! * [`stateful`]: the same for the transaction-stateful load balancer
//!   (`config/examples/stateful-lb.toml`: `relay`, record-routing) on a virtual clock, with
//!   the BYE transactions living until Timer J; shared by `benches/stateful.rs` and
//!   `tests/no_alloc_stateful.rs`.
//!
//! * [`bench`]: `ringsip-bench`, the end-to-end benchmark of a running router
//!   (`cargo run --release --bin ringsip-bench -- lb`, `-- stateful` for the
//!   transaction-stateful proxy).
//!
//! Run the comparison with rsip with `cargo bench -p ringsip-perf --bench parse`.
#![deny(missing_docs)]

pub mod bench;
pub mod lb;
pub mod proxy;
pub mod samples;
pub mod stateful;

#[cfg(test)]
mod tests {
    use ringsip_proto::{HeaderName, Message};

    use crate::samples::{ACK, ALL, INVITE, OK_200, REGISTER};

    #[test]
    fn invite_is_realistic_size() {
        assert!((850..=950).contains(&INVITE.len()), "INVITE is {} bytes", INVITE.len());
    }

    #[test]
    fn all_parse_frame_exactly_and_validate() {
        for (name, raw) in ALL {
            let msg = Message::parse(raw).unwrap_or_else(|e| panic!("{name}: {e}"));
            msg.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            // Content-Length is the body length: nothing is left over or missing
            assert_eq!(msg.content_length(), Some(msg.body().len() as u32), "{name}");
            assert_eq!(msg.end_offset(), raw.len(), "{name}");
            assert_eq!(msg.start_offset(), 0, "{name}");
        }
    }

    #[test]
    fn sample_contents() {
        let invite = Message::parse(INVITE).unwrap();
        let sdp = invite.sdp().unwrap().expect("INVITE carries SDP");
        assert_eq!(sdp.media().len(), 1);
        assert_eq!(invite.routes().count(), 2);
        assert_eq!(invite.via().unwrap().rport(), Some(None));
        assert!(invite.from().unwrap().display_name().is_some());
        assert!(invite.header(HeaderName::PAssertedIdentity).is_some());

        let ok = Message::parse(OK_200).unwrap();
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.vias().count(), 2);
        assert!(ok.has_to_tag().unwrap());
        assert!(ok.sdp().unwrap().is_some());
        assert!(ok.record_routes().count() >= 1);

        let ack = Message::parse(ACK).unwrap();
        assert!(ack.has_to_tag().unwrap());
        assert_eq!(ack.routes().count(), 2);
        assert!(ack.body().is_empty());

        let reg = Message::parse(REGISTER).unwrap();
        assert_eq!(reg.expires().unwrap(), Some(3600));
        assert!(reg.header(HeaderName::Authorization).unwrap().starts_with(b"Digest "));
        assert!(reg.contacts().count() == 1);
    }

    #[test]
    fn rsip_accepts_all_samples() {
        for (name, raw) in ALL {
            let msg = rsip::SipMessage::try_from(raw).unwrap_or_else(|e| panic!("rsip rejects {name}: {e:?}"));
            // rsip keeps everything after the blank line as the body
            let ours = Message::parse(raw).unwrap();
            assert_eq!(msg.body().as_slice(), ours.body(), "{name}");
            // and it saw every header line: the comparison covers the same work
            use rsip::message::HasHeaders;
            assert_eq!(msg.headers().iter().count(), ours.header_count(), "{name}");
        }
    }

    #[test]
    fn forwarding_round_trips() {
        use crate::proxy::{forward, proxy_fields};
        let mut out = [0u8; 2048];
        for (name, raw) in ALL {
            let msg = Message::parse(raw).unwrap();
            let fields = proxy_fields(&msg).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(fields.via_branch.is_some(), "{name}");
            let n = forward(&msg, &fields, &mut out).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let fwd = Message::parse(&out[..n]).unwrap_or_else(|e| panic!("{name} forwarded: {e}"));
            fwd.validate().unwrap_or_else(|e| panic!("{name} forwarded: {e}"));
            assert_eq!(fwd.body(), msg.body(), "{name}");
            if msg.is_request() {
                assert_eq!(fwd.vias().count(), msg.vias().count() + 1, "{name}");
                assert!(fwd.via().unwrap().is_rfc3261_branch(), "{name}");
                assert_eq!(fwd.max_forwards().unwrap(), Some(msg.max_forwards().unwrap().unwrap() - 1), "{name}");
                // our own Route entry was popped (REGISTER has none)
                let popped = usize::from(fields.first_route.is_some());
                assert_eq!(fwd.routes().count() + popped, msg.routes().count(), "{name}");
                let rr = fwd.record_routes().count();
                assert_eq!(rr, usize::from(name == "invite"), "{name}");
            } else {
                assert_eq!(fwd.vias().count(), msg.vias().count() - 1, "{name}");
            }
        }
    }
}
