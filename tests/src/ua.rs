//! A small SIP user agent for media tests: it places or answers one call with SDP over UDP
//! through a proxy (following Record-Route), and owns an RTP socket whose traffic the test
//! drives itself. Just enough RFC 3261 for one INVITE/200/ACK/BYE dialog on loopback with
//! no loss; what a test checks is what the proxy did to the messages and the media.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// One SIP message as text, with a few accessors.
#[derive(Clone, Debug)]
pub struct Msg(pub String);

impl Msg {
    /// The first line.
    pub fn first_line(&self) -> &str {
        self.0.lines().next().unwrap_or("")
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        let l = self.first_line();
        l.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        let l = self.first_line();
        if l.starts_with("SIP/2.0") { None } else { l.split(' ').next() }
    }

    /// Values of header `name` (case-insensitive, full names only), in order.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        let head = self.0.split("\r\n\r\n").next().unwrap_or("");
        head.split("\r\n")
            .skip(1)
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
            .collect()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    /// The body.
    pub fn body(&self) -> &str {
        self.0.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }

    /// The `tag` parameter of header `name` (From/To).
    pub fn tag(&self, name: &str) -> Option<String> {
        let v = self.header(name)?;
        v.split(';').find_map(|p| p.trim().strip_prefix("tag=")).map(str::to_string)
    }

    /// The media address of the first m= line of the SDP body (its c= address, session or
    /// media level, and port).
    pub fn sdp_media(&self) -> Option<SocketAddr> {
        let b = self.body();
        let mut ip = None;
        let mut port = None;
        for l in b.lines() {
            if let Some(c) = l.strip_prefix("c=IN IP4 ") {
                ip = Some(c.trim().to_string());
            }
            if let Some(m) = l.strip_prefix("m=audio ") {
                port = m.split(' ').next().and_then(|p| p.parse::<u16>().ok());
            }
        }
        format!("{}:{}", ip?, port?).parse().ok()
    }
}

/// An SDP offer or answer for audio at `ip:port`.
pub fn sdp(ip: &str, port: u16, session: u32) -> String {
    format!(
        "v=0\r\no=- {session} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// A user agent: a SIP socket and an RTP socket on 127.0.0.1.
pub struct Ua {
    /// The SIP socket.
    pub sip: UdpSocket,
    /// The RTP socket (its port goes into SDP unless the test says otherwise).
    pub rtp: UdpSocket,
    /// The RTCP socket, on the RTP port + 1.
    pub rtcp: UdpSocket,
    /// Its user name.
    pub user: String,
    tag: String,
    cseq: u32,
    branch: u32,
    /// The last INVITE sent (a CANCEL copies its Via, From, To, Call-ID and CSeq number).
    last_invite: Option<Msg>,
}

impl Ua {
    /// A UA named `user` on fresh loopback ports.
    pub fn new(user: &str) -> Ua {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        // an RTP port whose next port is free too (RTCP)
        let (rtp, rtcp) = loop {
            let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let p = rtp.local_addr().unwrap().port();
            if p < u16::MAX
                && let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", p + 1))
            {
                break (rtp, rtcp);
            }
        };
        for s in [&rtp, &rtcp] {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        }
        Ua { sip, rtp, rtcp, user: user.to_string(), tag: format!("{user}-tag"), cseq: 0, branch: 0, last_invite: None }
    }

    /// Its SIP address.
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip.local_addr().unwrap()
    }

    /// Its RTP address.
    pub fn rtp_addr(&self) -> SocketAddr {
        self.rtp.local_addr().unwrap()
    }

    fn via(&mut self) -> String {
        self.branch += 1;
        format!("SIP/2.0/UDP {};branch=z9hG4bK-{}-{}", self.sip_addr(), self.user, self.branch)
    }

    /// Send raw text to `to`.
    pub fn send(&self, to: SocketAddr, text: &str) {
        self.sip.send_to(text.as_bytes(), to).unwrap();
    }

    /// The next SIP message within `timeout` for which `want` holds (others are skipped).
    pub fn recv_until(&self, timeout: Duration, mut want: impl FnMut(&Msg) -> bool) -> Option<(Msg, SocketAddr)> {
        let end = Instant::now() + timeout;
        let mut buf = [0u8; 65536];
        while Instant::now() < end {
            if let Ok((n, from)) = self.sip.recv_from(&mut buf) {
                let m = Msg(String::from_utf8_lossy(&buf[..n]).into_owned());
                if want(&m) {
                    return Some((m, from));
                }
            }
        }
        None
    }

    /// Send an INVITE for `callee` (user part) with `body` to the proxy at `proxy`; return
    /// the INVITE's Call-ID.
    pub fn invite(&mut self, proxy: SocketAddr, callee: &str, call_id: &str, body: &str) -> String {
        self.cseq += 1;
        let via = self.via();
        let me = self.sip_addr();
        let text = format!(
            "INVITE sip:{callee}@{proxy} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: <sip:{u}@{me}>;tag={tag}\r\nTo: <sip:{callee}@{proxy}>\r\nCall-ID: {call_id}\r\nCSeq: {c} INVITE\r\nContact: <sip:{u}@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{body}",
            u = self.user,
            tag = self.tag,
            c = self.cseq,
            len = body.len()
        );
        self.send(proxy, &text);
        self.last_invite = Some(Msg(text));
        call_id.to_string()
    }

    /// CANCEL the last INVITE (RFC 3261 §9.1: its Request-URI, top Via, From, To, Call-ID and
    /// CSeq number).
    pub fn cancel(&self, proxy: SocketAddr) {
        let inv = self.last_invite.as_ref().expect("an INVITE to cancel");
        let uri = inv.first_line().split(' ').nth(1).unwrap_or("");
        let n = inv.header("CSeq").and_then(|c| c.split(' ').next()).unwrap_or("1");
        let t = format!(
            "CANCEL {uri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {n} CANCEL\r\nContent-Length: 0\r\n\r\n",
            inv.header("Via").unwrap_or(""),
            inv.header("From").unwrap_or(""),
            inv.header("To").unwrap_or(""),
            inv.header("Call-ID").unwrap_or("")
        );
        self.send(proxy, &t);
    }

    /// Answer a request `req` (received from `from`) with `code` and an optional SDP body,
    /// copying Via, From, To (adding this UA's tag), Call-ID, CSeq and Record-Route.
    pub fn respond(&self, req: &Msg, from: SocketAddr, code: u16, reason: &str, body: Option<&str>) {
        let mut t = format!("SIP/2.0 {code} {reason}\r\n");
        for v in req.headers("Via") {
            t += &format!("Via: {v}\r\n");
        }
        for rr in req.headers("Record-Route") {
            t += &format!("Record-Route: {rr}\r\n");
        }
        t += &format!("From: {}\r\n", req.header("From").unwrap_or(""));
        let to = req.header("To").unwrap_or("");
        if to.contains(";tag=") || code == 100 {
            t += &format!("To: {to}\r\n");
        } else {
            t += &format!("To: {to};tag={}\r\n", self.tag);
        }
        t += &format!(
            "Call-ID: {}\r\nCSeq: {}\r\n",
            req.header("Call-ID").unwrap_or(""),
            req.header("CSeq").unwrap_or("")
        );
        t += &format!("Contact: <sip:{}@{}>\r\n", self.user, self.sip_addr());
        match body {
            Some(b) => t += &format!("Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}", b.len()),
            None => t += "Content-Length: 0\r\n\r\n",
        }
        self.send(from, &t);
    }

    /// An in-dialog request (ACK or BYE) after `ok` (the 2xx of this UA's INVITE): sent to the
    /// proxy with the route set (the 2xx's Record-Route, reversed) to the remote Contact.
    pub fn in_dialog(&mut self, proxy: SocketAddr, ok: &Msg, method: &str) {
        let cseq_n = if method == "ACK" {
            ok.header("CSeq").and_then(|c| c.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(1)
        } else {
            self.cseq += 1;
            self.cseq
        };
        let via = self.via();
        let contact = ok.header("Contact").unwrap_or("").trim_matches(|c| c == '<' || c == '>').to_string();
        let mut routes: Vec<&str> =
            ok.headers("Record-Route").iter().flat_map(|h| h.split(',')).map(str::trim).collect();
        routes.reverse();
        let mut t = format!("{method} {contact} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n");
        for r in routes {
            t += &format!("Route: {r}\r\n");
        }
        t += &format!(
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq_n} {method}\r\nContent-Length: 0\r\n\r\n",
            ok.header("From").unwrap_or(""),
            ok.header("To").unwrap_or(""),
            ok.header("Call-ID").unwrap_or("")
        );
        self.send(proxy, &t);
    }
}

impl Ua {
    /// An in-dialog request from the callee's side of the dialog `inv` (the INVITE this UA
    /// answered): to the proxy, with the route set (the INVITE's Record-Route, in order), to
    /// the caller's Contact, with an optional SDP body.
    pub fn in_dialog_as_callee(&mut self, proxy: SocketAddr, inv: &Msg, method: &str, body: Option<&str>) {
        self.cseq += 1;
        let via = self.via();
        let contact = inv.header("Contact").unwrap_or("").trim_matches(|c| c == '<' || c == '>').to_string();
        let mut t = format!("{method} {contact} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n");
        for r in inv.headers("Record-Route").iter().flat_map(|h| h.split(',')).map(str::trim) {
            t += &format!("Route: {r}\r\n");
        }
        t += &format!(
            "From: {};tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {method}\r\nContact: <sip:{}@{}>\r\n",
            inv.header("To").unwrap_or(""),
            self.tag,
            inv.header("From").unwrap_or(""),
            inv.header("Call-ID").unwrap_or(""),
            self.cseq,
            self.user,
            self.sip_addr()
        );
        match body {
            Some(b) => t += &format!("Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}", b.len()),
            None => t += "Content-Length: 0\r\n\r\n",
        }
        self.send(proxy, &t);
    }
}

/// An RTP packet: a 12-byte header (version 2, PCMU) with `seq` and `ssrc`, then `payload`
/// bytes of `fill`.
pub fn rtp(seq: u16, ssrc: u32, fill: u8, payload: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.resize(12 + payload, fill);
    p
}
