//! The benchmark messages: realistic carrier-trunk SIP traffic as byte strings.
//!
//! Every message frames exactly (Content-Length is the body length), passes
//! [`ringsip_proto::Message::validate`] and is accepted by rsip too (see the tests), so the
//! parsers are compared on the same input. The proxy in these flows is [`PROXY_HOST`].

/// An initial INVITE from a carrier trunk (929 bytes): top Via with `branch` and `rport`, a
/// two-entry loose Route set whose first entry is this proxy ([`PROXY_HOST`]), From with a
/// display name and tag, Call-ID, CSeq, Contact, Allow, Supported, User-Agent,
/// P-Asserted-Identity and an audio SDP offer (PCMU, PCMA, telephone-event; `a=rtpmap`,
/// `a=fmtp`, `a=ptime`, `a=sendrecv`) with a correct Content-Length.
pub const INVITE: &[u8] = b"INVITE sip:+14155550123@sip.ringsip.example;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.45:5060;branch=z9hG4bK3f1c9a7b2e4d8f60;rport\r\n\
Max-Forwards: 69\r\n\
Route: <sip:192.0.2.10;lr>, <sip:core2.ringsip.example;lr>\r\n\
From: \"Alice Carrier\" <sip:+12125550100@203.0.113.45;user=phone>;tag=as5f3c1a9b\r\n\
To: <sip:+14155550123@sip.ringsip.example;user=phone>\r\n\
Call-ID: 7b2f4e9c1d3a58e6f0a4@203.0.113.45\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:+12125550100@203.0.113.45:5060>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\n\
Supported: replaces, timer\r\n\
User-Agent: CarrierSBC/4.2\r\n\
P-Asserted-Identity: <sip:+12125550100@203.0.113.45;user=phone>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 238\r\n\
\r\n\
v=0\r\n\
o=- 3912841163 3912841163 IN IP4 203.0.113.45\r\n\
s=-\r\n\
c=IN IP4 203.0.113.46\r\n\
t=0 0\r\n\
m=audio 16384 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// The 200 OK answering [`INVITE`] as it reaches this proxy from the UAS side (862 bytes):
/// this proxy's Via on top of the carrier's, the Record-Route set, a To tag, the UAS Contact
/// and an SDP answer.
pub const OK_200: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK77ae1c04d2b95f13\r\n\
Via: SIP/2.0/UDP 203.0.113.45:5060;branch=z9hG4bK3f1c9a7b2e4d8f60;rport=5060;received=203.0.113.45\r\n\
Record-Route: <sip:core2.ringsip.example;lr>, <sip:192.0.2.10;lr>\r\n\
From: \"Alice Carrier\" <sip:+12125550100@203.0.113.45;user=phone>;tag=as5f3c1a9b\r\n\
To: <sip:+14155550123@sip.ringsip.example;user=phone>;tag=8f2d93c1\r\n\
Call-ID: 7b2f4e9c1d3a58e6f0a4@203.0.113.45\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:+14155550123@198.51.100.20:5060>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\n\
Supported: timer\r\n\
Server: PBX/7.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 210\r\n\
\r\n\
v=0\r\n\
o=- 1704201 1704201 IN IP4 198.51.100.20\r\n\
s=-\r\n\
c=IN IP4 198.51.100.21\r\n\
t=0 0\r\n\
m=audio 40002 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// The in-dialog ACK for [`OK_200`] (429 bytes): the Request-URI is the UAS Contact, the
/// Route set is the reversed Record-Route (this proxy first), From and To carry tags, no
/// body.
pub const ACK: &[u8] = b"ACK sip:+14155550123@198.51.100.20:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.45:5060;branch=z9hG4bK9d04e61b7a3c2f85;rport\r\n\
Max-Forwards: 70\r\n\
Route: <sip:192.0.2.10;lr>, <sip:core2.ringsip.example;lr>\r\n\
From: \"Alice Carrier\" <sip:+12125550100@203.0.113.45;user=phone>;tag=as5f3c1a9b\r\n\
To: <sip:+14155550123@sip.ringsip.example;user=phone>;tag=8f2d93c1\r\n\
Call-ID: 7b2f4e9c1d3a58e6f0a4@203.0.113.45\r\n\
CSeq: 102 ACK\r\n\
Content-Length: 0\r\n\
\r\n";

/// A REGISTER from a desk phone answering a digest challenge (638 bytes): Authorization
/// with `Digest` credentials (qop, nc, cnonce), Contact with `expires`, and Expires.
pub const REGISTER: &[u8] = b"REGISTER sip:sip.ringsip.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.20.30.40:5060;branch=z9hG4bK6a1f0e52c93d7b84;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:2001@sip.ringsip.example>;tag=c91e5a07\r\n\
To: <sip:2001@sip.ringsip.example>\r\n\
Call-ID: 1f3b8e2d-4c6a-4e9b-a0d7@10.20.30.40\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:2001@10.20.30.40:5060;transport=udp>;expires=3600\r\n\
Authorization: Digest username=\"2001\", realm=\"sip.ringsip.example\", nonce=\"5f2b7c1e9a0d4b38\", uri=\"sip:sip.ringsip.example\", response=\"4f0e6a2b9c7d1e358a6b0c2d4e6f8a1b\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001\r\n\
Expires: 3600\r\n\
User-Agent: DeskPhone/3.1\r\n\
Content-Length: 0\r\n\
\r\n";

/// The address of the proxy these flows pass through (its Via, Record-Route and Route).
pub const PROXY_HOST: &[u8] = b"192.0.2.10";

/// All four messages with a short name, in benchmark order.
pub const ALL: [(&str, &[u8]); 4] = [("invite", INVITE), ("ok_200", OK_200), ("ack", ACK), ("register", REGISTER)];
